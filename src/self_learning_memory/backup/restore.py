"""Restoring a backup: verify, build the store in a staging directory, check it, then swap it
into the data directory (the old store and its cache set aside, removed once the swap holds)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from ..errors import DataIntegrityError, InvalidStateError, ValidationError
from ..storage.restore_lock import LOCK_NAME
from ..storage.sqlite_connection import scalar
from . import export
from .decode import check_store
from .manifest import (
    CACHE_DIRNAME,
    DB_FILENAME,
    STORE_ENTRIES,
    BackupFormat,
    BackupManifest,
    Progress,
    RestoreReport,
    count_rows,
    decompress_limit,
    fsync_dir,
    gunzip_file,
    read_manifest,
)
from .verify import verify_backup

__all__ = ["holds_store", "restore_backup"]


# -- restore -------------------------------------------------------------------------------
def holds_store(data_dir: Path) -> bool:
    return any((data_dir / name).exists() for name in STORE_ENTRIES)


def _stage_sync(
    path: Path, manifest: BackupManifest, staging: Path, progress: Progress | None
) -> None:
    import apsw

    from ..storage.migrations import SQLITE_MIGRATIONS

    data = path / manifest.data_file()
    db = staging / DB_FILENAME
    if manifest.format == BackupFormat.sqlite:
        if manifest.compressed:
            gunzip_file(data, db, decompress_limit(manifest))
        else:
            shutil.copyfile(data, db)
        return
    plain = data
    if manifest.compressed:
        plain = staging / data.name.removesuffix(".gz")
        gunzip_file(data, plain, decompress_limit(manifest))
    conn = apsw.Connection(str(db))
    try:
        with conn:  # the schema the export was taken from; the library migrates it up later
            for version, sql in SQLITE_MIGRATIONS:
                if version <= manifest.schema_version:
                    conn.execute(sql)
            conn.execute(f"PRAGMA user_version={int(manifest.schema_version)}")
        conn.execute("PRAGMA foreign_keys=ON")
        total = manifest.counts.episodes

        def tick(n: int) -> None:
            if progress:
                progress("restore", min(n, total), total)

        with conn:
            export.import_records(
                conn,
                plain,
                manifest.format.value,
                schema_version=manifest.schema_version,
                progress=tick,
            )
    except apsw.Error as exc:
        raise DataIntegrityError(f"{data.name} cannot be loaded: {exc}.") from exc
    finally:
        conn.close()
    if plain != data:
        plain.unlink()


def _check_staged(db: Path, manifest: BackupManifest) -> None:
    import apsw

    conn = apsw.Connection(str(db))
    try:
        check = conn.execute("PRAGMA integrity_check(5)").fetchall()
        if [tuple(r) for r in check] != [("ok",)]:
            raise DataIntegrityError(f"The restored database fails the integrity check: {check}.")
        if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise DataIntegrityError("The restored database has rows whose parent is missing.")
        version = int(scalar(conn, "PRAGMA user_version"))
        if version != manifest.schema_version:
            raise DataIntegrityError(
                f"{manifest.data_file()} has schema version {version}, the manifest says "
                f"{manifest.schema_version}."
            )
        counts = count_rows(conn)
        try:
            check_store(conn)  # every row as the library reads it, before the swap
        except DataIntegrityError as exc:
            raise DataIntegrityError(
                f"{manifest.data_file()}: {exc.message.rstrip('.')}; nothing was restored."
            ) from exc
    except apsw.Error as exc:
        raise DataIntegrityError(f"The restored database cannot be read: {exc}.") from exc
    finally:
        conn.close()
    if counts != manifest.counts:
        raise DataIntegrityError(
            f"The restored store holds {counts.model_dump()}, the manifest says "
            f"{manifest.counts.model_dump()}."
        )


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:120]


def refuse_if_in_use(data_dir: Path) -> None:
    """Refuse while any process holds the store or its cache open: a restore swaps the files
    under them, and what they write afterwards goes to the replaced files and is lost. The
    holders are the processes with a POSIX lock on ``memory.db``/``-shm`` or the cache's
    ``lock.mdb`` (the ``memory-cli storage connections`` check)."""
    from ..storage.maintenance import lock_holders

    db = data_dir / DB_FILENAME
    watched = [db, db.with_name(db.name + "-shm"), data_dir / CACHE_DIRNAME / "lock.mdb"]
    holders = lock_holders(watched) or []
    if holders:
        listed = ", ".join(f"pid {pid} ({_command(pid)})" for pid in holders)
        raise InvalidStateError(
            f"The store in {data_dir} is in use by {len(holders)} other process(es): {listed}. "
            "Nothing was restored: stop them (MCP servers, library processes) and run the "
            "restore again, or restore into a new directory."
        )


def _swap_sync(staging: Path, data_dir: Path) -> bool:
    """Move the staged store into ``data_dir``; the old store and its cache go aside first and
    come back if the move fails. Returns whether an existing store was replaced."""
    from ..storage.restore_lock import restore_exclusive

    # Under the exclusive restore lock no process can open the store (every opener takes it
    # shared while opening): whoever the last check does not see cannot come in before the
    # rename, and opens the restored files afterwards.
    with restore_exclusive(data_dir):
        return _swap_locked(staging, data_dir)


def _swap_locked(staging: Path, data_dir: Path) -> bool:
    old = data_dir / f".restore-old-{secrets.token_hex(4)}"
    moved: list[str] = []
    replaced = holds_store(data_dir)
    refuse_if_in_use(data_dir)  # checked again right before the swap, under the lock
    try:
        if replaced:
            old.mkdir()
            for name in STORE_ENTRIES:
                if (data_dir / name).exists():
                    os.replace(data_dir / name, old / name)
                    moved.append(name)
        for name in (f"{DB_FILENAME}-wal", f"{DB_FILENAME}-shm"):
            if (staging / name).exists():
                raise DataIntegrityError(f"The restored database left {name} behind; not swapped.")
        os.replace(staging / DB_FILENAME, data_dir / DB_FILENAME)
        fsync_dir(data_dir)
    except BaseException:
        for name in moved:
            with contextlib.suppress(OSError):
                os.replace(old / name, data_dir / name)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return replaced


async def restore_backup(
    path: str | Path,
    data_dir: str | Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore a backup into ``data_dir`` (empty, or holding a store only with ``force``).

    The backup is verified and the new store built and checked in a staging directory before
    anything in ``data_dir`` is touched; a corrupt backup raises :class:`DataIntegrityError`
    and leaves the target as it was. The target's cache is removed, never reused.
    """
    from ..storage.sqlite import SQLiteStorage

    report = await verify_backup(path, deep=False)
    if not report.ok:
        raise DataIntegrityError(
            f"The backup {report.path} is corrupt, nothing was restored: "
            f"{'; '.join(report.problems)}."
        )
    source, target, manifest, staging, created = await asyncio.to_thread(
        _prepare_sync, path, data_dir, force
    )
    swapped = False
    try:
        await asyncio.to_thread(_stage_sync, source, manifest, staging, progress)
        await asyncio.to_thread(_check_staged, staging / DB_FILENAME, manifest)
        storage = SQLiteStorage(staging / DB_FILENAME)  # the library opens it and migrates it
        await storage.initialize()
        await storage.close()
        replaced = await asyncio.to_thread(_swap_sync, staging, target)
        swapped = True
    finally:
        await asyncio.to_thread(_cleanup_sync, staging, target, created and not swapped)
    return RestoreReport(
        backup_id=manifest.backup_id,
        format=manifest.format,
        data_dir=target,
        replaced_existing=replaced,
        counts=manifest.counts,
    )


def _prepare_sync(
    path: str | Path, data_dir: str | Path, force: bool
) -> tuple[Path, Path, BackupManifest, Path, bool]:
    source = Path(path).expanduser()
    target = Path(data_dir).expanduser()
    manifest = read_manifest(source)
    if target.exists() and not target.is_dir():
        raise ValidationError("data_dir", f"{target} exists and is not a directory")
    if holds_store(target) and not force:
        raise InvalidStateError(
            f"The data directory {target} already holds a store; restore into an empty "
            "directory, or pass force (--force) to replace it."
        )
    if holds_store(target):
        refuse_if_in_use(target)
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=target))
    return source, target, manifest, staging, created


def _cleanup_sync(staging: Path, target: Path, remove_target: bool) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if remove_target:
        with contextlib.suppress(OSError):
            (target / LOCK_NAME).unlink(missing_ok=True)  # ours: the directory is new
            target.rmdir()  # only if still empty: we created it for this restore
