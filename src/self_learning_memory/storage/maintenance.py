"""Maintenance of the embedded store: what it holds on disk, VACUUM, integrity checks and what
is open. ``memory-cli storage`` is a thin front end over these functions.

    storage, cache = embedded_parts(memory)
    report = await vacuum(storage, cache)            # bytes before and after (recounts row_counts)
    check = await check_integrity(storage)           # integrity_check, foreign keys, FTS, counts

Everything runs on the store's own connection thread (never on the event loop), outside any
transaction, with the store's lock retries.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apsw

from ..errors import CapabilityUnavailableError, DataIntegrityError
from .migrations import SQLITE_MIGRATIONS
from .migrations.sqlite import COUNTED_ROWS, RECOUNT_ROWS
from .sqlite_connection import scalar

if TYPE_CHECKING:
    from .backend import StorageBackend
    from .capabilities import Maintenance
    from .lmdb_cache import EpisodeCache

__all__ = [
    "SCHEMA_VERSION",
    "IntegrityReport",
    "StoreInfo",
    "VacuumReport",
    "check_integrity",
    "connections",
    "embedded_parts",
    "file_sizes",
    "lock_holders",
    "store_info",
    "vacuum",
]

SCHEMA_VERSION = max(version for version, _ in SQLITE_MIGRATIONS)
MAX_INTEGRITY_MESSAGES = 100


def embedded_parts(memory: Any) -> tuple[Maintenance, EpisodeCache | None]:
    """The maintenance handle of an embedded memory's store (``capabilities.maintenance``, also
    behind the resilience wrapper) and its LMDB cache, or a clear error otherwise."""
    storage: StorageBackend = memory.storage
    maintenance = storage.capabilities.maintenance
    if maintenance is None:
        raise CapabilityUnavailableError(
            f"This maintenance operation needs the embedded SQLite store; the memory uses "
            f"'{storage.name}'."
        )
    return maintenance, memory.cache


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def file_sizes(storage: Maintenance, cache: EpisodeCache | None) -> dict[str, int]:
    """Bytes on disk: the database, its WAL and shared-memory files, the cache file."""
    db = storage.path
    sizes = {
        "database": _size(db),
        "wal": _size(db.with_name(db.name + "-wal")),
        "shm": _size(db.with_name(db.name + "-shm")),
        "cache": 0 if cache is None else _size(cache.path / "data.mdb"),
    }
    sizes["total"] = sum(sizes.values())
    return sizes


@dataclass(frozen=True)
class StoreInfo:
    path: str
    schema_version: int
    expected_schema_version: int
    page_size: int
    page_count: int
    freelist_pages: int
    journal_mode: str
    synchronous: str
    busy_timeout_ms: int
    foreign_keys: bool
    auto_vacuum: str
    sqlite_version: str

    @property
    def reclaimable_bytes(self) -> int:
        return self.freelist_pages * self.page_size


_SYNCHRONOUS = {0: "off", 1: "normal", 2: "full", 3: "extra"}
_AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental"}


def _pragma(conn: apsw.Connection, name: str) -> Any:
    row = conn.execute(f"PRAGMA {name}").fetchone()
    return None if row is None else row[0]


def _info(conn: apsw.Connection, path: Path) -> StoreInfo:
    return StoreInfo(
        path=str(path),
        schema_version=int(_pragma(conn, "user_version")),
        expected_schema_version=SCHEMA_VERSION,
        page_size=int(_pragma(conn, "page_size")),
        page_count=int(_pragma(conn, "page_count")),
        freelist_pages=int(_pragma(conn, "freelist_count")),
        journal_mode=str(_pragma(conn, "journal_mode")),
        synchronous=_SYNCHRONOUS.get(int(_pragma(conn, "synchronous")), "?"),
        busy_timeout_ms=int(_pragma(conn, "busy_timeout")),
        foreign_keys=bool(_pragma(conn, "foreign_keys")),
        auto_vacuum=_AUTO_VACUUM.get(int(_pragma(conn, "auto_vacuum")), "?"),
        sqlite_version=apsw.sqlite_lib_version(),
    )


async def store_info(storage: Maintenance) -> StoreInfo:
    return await storage.run_maintenance(lambda c: _info(c, storage.path))


@dataclass(frozen=True)
class VacuumReport:
    dry_run: bool
    before: dict[str, int]
    after: dict[str, int] | None
    reclaimable_bytes: int  # free pages plus the WAL file: what VACUUM can give back at most
    freelist_pages_before: int
    freelist_pages_after: int | None
    checkpoint: dict[str, int] | None  # busy, wal frames, checkpointed frames
    cache: dict[str, object] | None
    notes: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int | None:
        return None if self.after is None else self.before["total"] - self.after["total"]


def _count_drift(conn: apsw.Connection) -> list[str]:
    """Where the counts the store keeps (``row_counts``, migration 9: the embedding coverage
    reads them) differ from the rows': ``name: kept N, rows M`` (none on a sound store; a
    store of an older schema has none to compare)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'row_counts'").fetchone() is None:
        return []
    rows = {str(name): int(n) for name, n in conn.execute(COUNTED_ROWS)}
    kept = {str(name): int(n) for name, n in conn.execute("SELECT name, n FROM row_counts")}
    return [
        f"{name}: kept {kept.get(name, 0)}, rows {rows.get(name, 0)}"
        for name in sorted(rows.keys() | kept.keys())
        if kept.get(name, 0) != rows.get(name, 0)
    ]


def _recount(conn: apsw.Connection) -> list[str]:
    """Count the kept counts again from the rows, in one write transaction (another writer's
    commit cannot fall between the count and the write); what differed before."""
    with conn:
        drift = _count_drift(conn)
        if drift:
            conn.execute(RECOUNT_ROWS)
    return drift


def _orphans(conn: apsw.Connection) -> int:
    """Full-text rows that no longer point at an episode (they are linked by rowid)."""
    return int(
        scalar(
            conn,
            "SELECT count(*) FROM episodes_fts WHERE rowid NOT IN (SELECT rowid FROM episodes)",
        )
    )


async def vacuum(
    storage: Maintenance, cache: EpisodeCache | None, *, dry_run: bool = False
) -> VacuumReport:
    """Rebuild the database file without free pages (SQLite ``VACUUM``), then truncate the WAL.

    With ``dry_run`` only the estimate is computed. The cache (LMDB) reuses its free pages
    itself and is not rewritten while other processes may have it mapped; its use is reported.
    """
    before = file_sizes(storage, cache)
    info = await store_info(storage)
    cache_info = None if cache is None else await asyncio.to_thread(cache.env_info)
    notes = []
    if cache_info is not None:
        notes.append(
            "The LMDB cache is not rewritten: it reuses freed pages and is bounded by its map "
            "size, and other processes may have it open."
        )
    reclaimable = info.reclaimable_bytes + before["wal"]
    if dry_run:
        return VacuumReport(
            dry_run=True,
            before=before,
            after=None,
            reclaimable_bytes=reclaimable,
            freelist_pages_before=info.freelist_pages,
            freelist_pages_after=None,
            checkpoint=None,
            cache=cache_info,
            notes=notes,
        )

    def run(conn: apsw.Connection) -> tuple[int, int, tuple[int, int, int], list[str]]:
        recounted = _recount(conn)
        orphans = _orphans(conn)
        conn.execute("VACUUM")
        row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone() or (0, 0, 0)
        busy, frames, done = row
        return orphans, _orphans(conn), (int(busy), int(frames), int(done)), recounted

    orphans_before, orphans_after, (busy, frames, done), recounted = await storage.run_maintenance(
        run
    )
    if recounted:
        notes.append(
            "The counts the store keeps for the embedding coverage differed from the rows and "
            f"were counted again ({'; '.join(recounted)})."
        )
    if orphans_after > orphans_before:  # VACUUM renumbered rowids: the full-text links broke
        raise DataIntegrityError(
            f"After VACUUM {orphans_after} full-text rows no longer match an episode "
            f"(before: {orphans_before}); run `memory-cli storage verify`."
        )
    if busy:
        notes.append(
            "Another process was reading: the WAL could not be truncated completely; it will be "
            "at the next checkpoint."
        )
    after_info = await store_info(storage)
    return VacuumReport(
        dry_run=False,
        before=before,
        after=file_sizes(storage, cache),
        reclaimable_bytes=reclaimable,
        freelist_pages_before=info.freelist_pages,
        freelist_pages_after=after_info.freelist_pages,
        checkpoint={"busy": busy, "wal_frames": frames, "checkpointed_frames": done},
        cache=cache_info,
        notes=notes,
    )


@dataclass(frozen=True)
class IntegrityReport:
    ok: bool
    integrity_check: list[str]  # ["ok"] when the file is sound
    foreign_key_violations: list[dict[str, object]]
    fts_orphans: int  # full-text rows without their episode
    fts_missing: int  # completed episodes without a full-text row
    fts_check: str  # "ok" or FTS5's own integrity-check error
    count_drift: list[str]  # kept counts (row_counts) that differ from the rows'
    schema_version: int
    expected_schema_version: int
    problems: list[str]


def _integrity(conn: apsw.Connection) -> IntegrityReport:
    messages = [
        str(r[0]) for r in conn.execute(f"PRAGMA integrity_check({MAX_INTEGRITY_MESSAGES})")
    ]
    violations: list[dict[str, object]] = [
        {"table": t, "rowid": rowid, "parent": parent, "constraint": fkid}
        for t, rowid, parent, fkid in conn.execute("PRAGMA foreign_key_check")
    ][:MAX_INTEGRITY_MESSAGES]
    try:
        conn.execute("INSERT INTO episodes_fts(episodes_fts) VALUES ('integrity-check')")
        fts_check = "ok"
    except apsw.Error as exc:
        fts_check = f"{type(exc).__name__}: {exc}"
    orphans = _orphans(conn)
    missing = int(
        scalar(
            conn,
            "SELECT count(*) FROM episodes WHERE end_time IS NOT NULL "
            "AND rowid NOT IN (SELECT rowid FROM episodes_fts)",
        )
    )
    version = int(_pragma(conn, "user_version"))
    drift = _count_drift(conn)
    problems = []
    if messages != ["ok"]:
        problems.append(f"integrity_check reported {len(messages)} problem(s): {messages[0]}")
    if violations:
        problems.append(f"{len(violations)} foreign key violation(s)")
    if fts_check != "ok":
        problems.append(f"the full-text index failed its check: {fts_check}")
    if orphans:
        problems.append(f"{orphans} full-text row(s) without their episode")
    if missing:
        problems.append(f"{missing} completed episode(s) missing from the full-text index")
    if drift:
        problems.append(
            f"the counts the store keeps differ from the rows ({'; '.join(drift)}): "
            "`memory-cli storage vacuum` counts them again"
        )
    if version != SCHEMA_VERSION:
        problems.append(f"schema version {version}, expected {SCHEMA_VERSION}")
    return IntegrityReport(
        ok=not problems,
        integrity_check=messages,
        foreign_key_violations=violations,
        fts_orphans=orphans,
        fts_missing=missing,
        fts_check=fts_check,
        count_drift=drift,
        schema_version=version,
        expected_schema_version=SCHEMA_VERSION,
        problems=problems,
    )


async def check_integrity(storage: Maintenance) -> IntegrityReport:
    """``PRAGMA integrity_check``, ``foreign_key_check``, the full-text index's own check and
    its links to the episodes, the counts the store keeps against its rows, and the schema
    version."""
    return await storage.run_maintenance(_integrity)


def lock_holders(paths: list[Path]) -> list[int] | None:
    """Processes holding a POSIX lock on any of ``paths``, from ``/proc/locks`` (Linux): every
    SQLite connection in WAL mode keeps a shared lock on the ``-shm`` file, every LMDB
    environment one on ``lock.mdb``. None where this cannot be told."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    wanted = set()
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        wanted.add(f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}")
    pids: set[int] = set()
    for line in text.splitlines():
        tokens = line.split()
        for i, token in enumerate(tokens[1:], start=1):
            if token in wanted and tokens[i - 1].isdigit():
                pids.add(int(tokens[i - 1]))
    return sorted(pids)


async def connections(storage: Maintenance, cache: EpisodeCache | None) -> dict[str, object]:
    """What this process has open, and which other processes have the same data open (those
    holding a lock on the store's or the cache's files)."""
    info = await store_info(storage)
    cache_info = None if cache is None else await asyncio.to_thread(cache.env_info)
    db = storage.path
    watched = [db.with_name(db.name + "-shm"), db]
    if cache is not None:
        watched.append(cache.path / "lock.mdb")
    holders = await asyncio.to_thread(lock_holders, watched)
    return {
        "mode": "embedded",
        "pid": os.getpid(),
        "store": {
            "path": str(db),
            "journal_mode": info.journal_mode,
            "wal_enabled": info.journal_mode.lower() == "wal",
            "wal_bytes": _size(db.with_name(db.name + "-wal")),
            "busy_timeout_ms": info.busy_timeout_ms,
            "synchronous": info.synchronous,
            "foreign_keys": info.foreign_keys,
            "connections_in_this_process": 1,
        },
        "cache": cache_info,
        "other_processes": None if holders is None else [p for p in holders if p != os.getpid()],
        "other_processes_source": "file locks in /proc/locks"
        if holders is not None
        else "unknown on this platform",
    }
