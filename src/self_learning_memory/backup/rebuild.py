"""Write the episodes the embedded store lost back from the LMDB cache's copies.

``memory-cli storage rebuild-from-cache`` calls :func:`rebuild_from_cache`. Two cases, one
command:

- **rebuild**: the store file is missing, empty (0 bytes) or not a database at all. Every store
  file there is (``memory.db``, ``-wal``, ``-shm``, ``-journal``) is moved aside to
  ``<name>.before-rebuild-<UTC time>`` (never deleted), a new store is created and every episode
  the cache holds is written into it.
- **merge**: the store opens but lacks episodes the cache holds (emptied, replaced, or the
  acknowledged writes of a damaged write-ahead log: see :mod:`.cache_loss`). Only the missing
  episodes are added; nothing the store has is touched.

Episodes are written row for row through the transfer adapter (``storage/transfer.py``, the
path ``storage migrate`` uses), not through the learning path, so each comes back exactly as it
was cached: steps, outcome, reward, reflection, metadata and its pattern and heuristic ids. The
cache's pattern and heuristic index (kept by the synchronizer, on for a remote primary) is
written too, with the links to the recovered episodes. Then every recovered episode is read
back and compared with its cached copy, and the store's counts are checked.

What the cache cannot give back is reported, not guessed: episodes never completed (only
completed episodes are cached), those evicted from a full cache, embeddings (never cached:
``storage reindex`` rebuilds them), and patterns or heuristics outside the cached index.
Retrieval feedback (``retrieval_uses``, ``episode_usage``) is not cached either: recovered
episodes come back without it (neutral ``usefulness``).

Refused while another process holds the store or the cache (the file locks that
``storage connections`` lists): it would write behind their back.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import apsw

from ..errors import (
    CapabilityUnavailableError,
    DataIntegrityError,
    InvalidStateError,
    SelfLearningMemoryError,
)
from ..model.episode import Episode
from ..storage.cache_codec import decode
from ..storage.cache_loss import REBUILD_COMMAND
from ..storage.factory import CACHE_DIRNAME, open_store
from ..storage.lmdb_cache import EpisodeCache
from ..storage.maintenance import lock_holders
from ..storage.transfer import transfer_adapter
from ..storage.wal_check import check_wal, clear_wal_loss, note_wal_loss, read_wal_loss
from .rebuild_patterns import LearnedPlan, plan_learned

if TYPE_CHECKING:
    from ..config import MemoryConfig
    from ..storage.backend import StorageBackend

__all__ = ["REBUILD_COMMAND", "RebuildReport", "rebuild_from_cache"]

_BATCH = 200
_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass
class RebuildReport:
    data_dir: str
    store: str
    cache: str
    dry_run: bool
    mode: str  # "rebuild" (a new store) or "merge" (missing episodes added to the store)
    store_state: str  # "missing", "empty", "not a database" or "present"
    cached_episodes: int = 0
    unreadable_entries: int = 0  # cache entries that fail their checksum or do not decode
    already_in_store: int = 0
    to_recover: int = 0
    recovered: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("episodes", "steps", "patterns", "heuristics"), 0)
    )
    moved_aside: list[str] = field(default_factory=list)
    not_recoverable: list[str] = field(default_factory=list)
    counts_before: dict[str, int] = field(default_factory=dict)
    counts_after: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    wal_loss: dict[str, object] | None = None  # committed WAL frames a crash left damaged

    @property
    def verified(self) -> bool:
        return not self.dry_run and not self.problems


def refuse_if_in_use(db: Path, cache_dir: Path) -> None:
    """Another process with the store or the cache open would keep writing to the files this
    moves aside, or miss what it writes: stop first."""
    watched = [db, db.with_name(db.name + "-shm"), cache_dir / "lock.mdb"]
    holders = [p for p in lock_holders(watched) or [] if p != os.getpid()]
    if holders:
        raise InvalidStateError(
            f"The store {db} or its cache is in use by {len(holders)} other process(es) (pid "
            f"{', '.join(map(str, holders))}). Nothing was changed: stop them (MCP servers, "
            "library processes) and run the rebuild again."
        )


def _store_state(db: Path) -> tuple[str, set[str] | None]:
    """How the store file is, and the episode ids it holds (None: none to keep)."""
    try:
        size = db.stat().st_size
    except FileNotFoundError:
        return "missing", None
    if size == 0:
        return "empty", None
    flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
    if db.with_name(db.name + "-wal").exists():  # its frames count: read through the WAL
        conn = apsw.Connection(f"file:{quote(str(db))}", flags=flags)
    else:  # the file is all there is: read it as it is, creating no -wal/-shm next to it
        conn = apsw.Connection(f"file:{quote(str(db))}?immutable=1", flags=flags)
    try:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'episodes'"
        ).fetchone()
        if has is None:
            return "present", set()
        return "present", {str(r[0]) for r in conn.execute("SELECT episode_id FROM episodes")}
    except apsw.NotADBError:
        return "not a database", None
    except (apsw.CorruptError, UnicodeDecodeError) as exc:
        raise DataIntegrityError(
            f"The store {db} is damaged ({exc}): its episode ids cannot be read, so the cache's "
            f"copies cannot be merged into it. Back up the data directory, move {db.name} and "
            f"its -wal/-shm files aside, then run `{REBUILD_COMMAND}` to start a new store "
            "from the cache."
        ) from exc
    finally:
        conn.close()


def _read_cache(cache_dir: Path, config: MemoryConfig) -> tuple[list[Episode], int, object]:
    """The cached episodes, the count of unreadable entries and the index (patterns,
    heuristics) the synchronizer keeps, or what went wrong reading it."""
    from ..storage.sync import read_heuristic_index, read_pattern_index

    if not (cache_dir / "data.mdb").is_file():
        raise InvalidStateError(
            f"There is no cache at {cache_dir} to rebuild the store from (no data.mdb)."
        )
    cache = EpisodeCache(cache_dir, max_entries=config.cache.max_episodes)
    cache.open()
    try:
        if cache.disabled is not None:
            raise DataIntegrityError(
                f"The cache {cache_dir} cannot be read ({cache.disabled}), so nothing can be "
                "rebuilt from it. Restore the store from a backup (`memory-cli backup restore`)."
            )
        episodes: list[Episode] = []
        bad = 0
        for key, data in cache.raw_items():
            episode = decode(data)
            if episode is None or episode.episode_id != key:
                bad += 1
            else:
                episodes.append(episode)
        index: object
        try:
            index = (read_pattern_index(cache), read_heuristic_index(cache))
        except Exception as exc:  # a damaged index loses the index only, not the episodes
            index = f"{type(exc).__name__}: {exc}"
        return episodes, bad, index
    finally:
        cache.close()


def _move_aside(db: Path) -> list[str]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved: list[str] = []
    for suffix in _SUFFIXES:
        path = db.with_name(db.name + suffix)
        if path.exists() or path.is_symlink():
            target = path.with_name(f"{path.name}.before-rebuild-{stamp}")
            os.rename(path, target)
            moved.append(str(target))
    return moved


def _same(cached: Episode, stored: Episode) -> list[str]:
    a, b = cached.model_dump(mode="json"), stored.model_dump(mode="json")
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


async def rebuild_from_cache(
    data_dir: Path, config: MemoryConfig, *, dry_run: bool = False
) -> RebuildReport:
    """Rebuild the embedded store in ``data_dir`` from its cache, or add back the cached
    episodes it lacks (see the module docstring). Nothing is changed with ``dry_run``."""
    storage, cache = open_store(config.storage.url, data_dir, config)
    caps = storage.capabilities
    db = caps.local_file
    if db is None or caps.maintenance is None or caps.transfer is None:
        raise CapabilityUnavailableError(
            f"Rebuilding from the cache works on the embedded SQLite store; this memory uses "
            f"{storage.name}. Restore that store from its own backups."
        )
    cache_dir = cache.path if cache is not None else db.parent / CACHE_DIRNAME
    await asyncio.to_thread(refuse_if_in_use, db, cache_dir)
    # before anything reads the store: SQLite's recovery would forget lost WAL frames
    wal = await asyncio.to_thread(check_wal if dry_run else note_wal_loss, db)
    wal = wal or await asyncio.to_thread(read_wal_loss, db)
    state, present = await asyncio.to_thread(_store_state, db)
    episodes, bad, index = await asyncio.to_thread(_read_cache, cache_dir, config)
    report = RebuildReport(
        data_dir=str(data_dir),
        store=str(db),
        cache=str(cache_dir),
        dry_run=dry_run,
        mode="merge" if present is not None else "rebuild",
        store_state=state,
        cached_episodes=len(episodes),
        unreadable_entries=bad,
    )
    report.wal_loss = None if wal is None else asdict(wal)
    todo = [e for e in episodes if present is None or str(e.episode_id) not in present]
    todo.sort(key=lambda e: (e.start_time, str(e.episode_id)))
    report.already_in_store = len(episodes) - len(todo)
    report.to_recover = len(todo)
    _notes(report, index, config)
    if dry_run:
        return report
    if not todo and present is not None:
        await asyncio.to_thread(clear_wal_loss, db)  # nothing the cache holds was lost
        return report
    if present is None:
        report.moved_aside = await asyncio.to_thread(_move_aside, db)
    try:
        await _write(report, storage, db, todo, index, config)
    except SelfLearningMemoryError as exc:
        if not report.moved_aside:
            raise
        plain = type(exc).__init__ is SelfLearningMemoryError.__init__
        raise (type(exc) if plain else DataIntegrityError)(
            f"{exc.message} The rebuild stopped; the old store files are kept at "
            f"{', '.join(report.moved_aside)}, and running the rebuild again completes the new "
            "store."
        ) from exc
    return report


async def _write(
    report: RebuildReport,
    storage: StorageBackend,
    db: Path,
    todo: list[Episode],
    index: object,
    config: MemoryConfig,
) -> None:
    async with storage:
        adapter = transfer_adapter(storage)
        report.counts_before = await adapter.counts()
        for start in range(0, len(todo), _BATCH):
            await adapter.import_episodes(todo[start : start + _BATCH])
        report.recovered["episodes"] = len(todo)
        report.recovered["steps"] = sum(len(e.steps) for e in todo)
        cached_index = index if isinstance(index, tuple) else ([], [])
        plan = await plan_learned(storage, cached_index, todo, config.extraction)
        await adapter.import_patterns(plan.patterns)
        await adapter.import_heuristics(plan.heuristics)
        report.counts_after = await adapter.counts()
        for kind in ("patterns", "heuristics"):
            report.recovered[kind] = report.counts_after[kind] - report.counts_before[kind]
        _unsupplied(report, plan)
        await _verify(report, storage, todo)
        if not report.problems:
            await asyncio.to_thread(clear_wal_loss, db)


def _notes(report: RebuildReport, index: object, config: MemoryConfig) -> None:
    notes = report.not_recoverable
    notes.append("episodes never completed and their steps: only completed episodes are cached")
    notes.append("embeddings: never cached; run `memory-cli storage reindex` to compute them again")
    if report.cached_episodes >= config.cache.max_episodes:
        notes.append(
            f"episodes evicted from the full cache (it keeps the {config.cache.max_episodes} "
            "most recently used)"
        )
    if report.unreadable_entries:
        notes.append(f"{report.unreadable_entries} cache entries that do not decode")
    if isinstance(index, str):
        notes.append(f"the cached pattern and heuristic index cannot be read ({index})")


def _unsupplied(report: RebuildReport, plan: LearnedPlan) -> None:
    if plan.lost_patterns or plan.lost_heuristics:
        report.not_recoverable.append(
            f"{plan.lost_patterns} pattern(s) and {plan.lost_heuristics} heuristic(s) the "
            "recovered episodes refer to: neither in the store, nor in the cache's index, nor "
            "extracted again (the extraction settings changed); the episodes keep their ids"
        )
    if plan.extracted:
        report.not_recoverable.append(
            f"usage counts of the {plan.extracted} pattern(s)/heuristic(s) extracted again "
            "from the recovered episodes (retrievals and applications start over)"
        )


async def _verify(report: RebuildReport, storage: StorageBackend, todo: list[Episode]) -> None:
    """Every recovered episode reads back equal to its cached copy; the counts add up."""
    for start in range(0, len(todo), _BATCH):
        batch = todo[start : start + _BATCH]
        stored = {
            e.episode_id: e for e in await storage.get_episodes([e.episode_id for e in batch])
        }
        for episode in batch:
            found = stored.get(episode.episode_id)
            if found is None:
                report.problems.append(f"episode {episode.episode_id} is not in the store")
            elif fields := _same(episode, found):
                report.problems.append(
                    f"episode {episode.episode_id} differs from its cached copy: {', '.join(fields)}"
                )
    before, after = report.counts_before, report.counts_after
    for kind in ("episodes", "steps"):
        want = before.get(kind, 0) + report.recovered[kind]
        if after.get(kind) != want:
            report.problems.append(f"the store holds {after.get(kind)} {kind}, expected {want}")
    del report.problems[100:]
