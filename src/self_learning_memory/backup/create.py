"""Creating a backup: an online snapshot of the SQLite store, then an optional export and
compression, written into a hidden directory that is renamed when complete."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataIntegrityError, InvalidStateError, NotFoundError, ValidationError
from ..storage.sqlite_connection import scalar
from . import export
from .manifest import (
    DB_FILENAME,
    MANIFEST,
    PAGES_PER_STEP,
    BackupFile,
    BackupFormat,
    BackupInfo,
    BackupManifest,
    Progress,
    count_rows,
    dir_size,
    fsync_dir,
    gzip_file,
    sha256,
)

if TYPE_CHECKING:
    from ..core.memory import SelfLearningMemory

__all__ = ["create_backup"]


# -- create --------------------------------------------------------------------------------
def _snapshot(source_db: Path, target: Path, progress: Progress | None) -> None:
    """Copy ``source_db`` to ``target`` with the online backup API, under one read transaction
    (so a multi-step copy is one consistent snapshot and never restarts under writes)."""
    import apsw

    src = apsw.Connection(str(source_db), flags=apsw.SQLITE_OPEN_READONLY)
    dst = apsw.Connection(str(target))
    try:
        src.set_busy_timeout(30_000)
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchall()  # start the snapshot
        with dst.backup("main", src, "main") as copy:
            while not copy.done:
                copy.step(PAGES_PER_STEP)
                if progress:
                    progress("snapshot", copy.page_count - copy.remaining, copy.page_count)
        src.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    except apsw.Error as exc:
        raise DataIntegrityError(f"Cannot snapshot {source_db}: {exc}.") from exc
    finally:
        dst.close()
        src.close()


def _create_sync(
    source_db: Path,
    dest_dir: Path,
    fmt: BackupFormat,
    compress: bool,
    embeddings: bool,
    progress: Progress | None,
) -> BackupInfo:
    import apsw

    from ..version import __version__

    now = datetime.now(UTC)
    backup_id = f"backup_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"
    dest_dir.mkdir(parents=True, exist_ok=True)
    work = dest_dir / f".{backup_id}.partial"
    work.mkdir()
    try:
        snapshot = work / DB_FILENAME
        _snapshot(source_db, snapshot, progress)
        conn = apsw.Connection(str(snapshot))
        try:
            if not embeddings:
                with conn:
                    has = conn.execute("SELECT 1 FROM sqlite_master WHERE name='embeddings'")
                    if has.fetchall():
                        conn.execute("DELETE FROM embeddings")
                conn.execute("VACUUM")
            counts = count_rows(conn)
            schema = int(scalar(conn, "PRAGMA user_version"))
            data = snapshot
            if fmt != BackupFormat.sqlite:
                data = work / export.EXPORT_FILES[fmt]
                total = counts.episodes

                def tick(n: int) -> None:
                    if progress:
                        progress("export", min(n, total), total)

                conn.execute("BEGIN")
                export.write(
                    conn,
                    data,
                    fmt.value,
                    header={"backup_id": backup_id, "schema_version": schema},
                    embeddings=embeddings,
                    progress=tick,
                )
                conn.execute("COMMIT")
        finally:
            conn.close()
        if fmt != BackupFormat.sqlite:
            snapshot.unlink()
        plain_size = data.stat().st_size if compress else None
        if compress:
            data = gzip_file(data, progress)
        manifest = BackupManifest(
            backup_id=backup_id,
            created_at=now,
            format=fmt,
            compressed=compress,
            embeddings=embeddings,
            schema_version=schema,
            package_version=__version__,
            source=str(source_db.parent),
            counts=counts,
            files=[
                BackupFile(
                    name=data.name,
                    size_bytes=data.stat().st_size,
                    sha256=sha256(data),
                    plain_size_bytes=plain_size,
                )
            ],
        )
        with (work / MANIFEST).open("w", encoding="utf-8") as f:
            f.write(manifest.model_dump_json(indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        final = dest_dir / backup_id
        work.rename(final)
        fsync_dir(dest_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupInfo(path=final, manifest=manifest, size_bytes=dir_size(final))


def _source_db(source: str | Path | SelfLearningMemory | None) -> Path:
    from ..paths import resolve_data_dir

    if source is None or isinstance(source, str | Path):
        data_dir = resolve_data_dir(source)
    else:
        storage_path = source.storage.capabilities.local_file
        if storage_path is not None and storage_path.suffix == ".db":
            return storage_path
        if source.data_dir is None:
            raise InvalidStateError(
                "This memory has no embedded SQLite store to back up (only the embedded store "
                "can be backed up with create_backup)."
            )
        data_dir = source.data_dir
    db = data_dir / DB_FILENAME
    if not db.is_file():
        raise NotFoundError("store", str(db))
    return db


async def create_backup(
    source: str | Path | SelfLearningMemory | None,
    dest_dir: str | Path,
    *,
    format: BackupFormat | str = BackupFormat.sqlite,
    compress: bool = False,
    embeddings: bool = True,
    progress: Progress | None = None,
) -> BackupInfo:
    """Back up the store of a data directory (or of an open memory) into a new directory under
    ``dest_dir``. An open memory's buffered steps are flushed first, so they are included."""
    try:
        fmt = BackupFormat(format)
    except ValueError as exc:
        raise ValidationError(
            "format", f"'{format}' is not a backup format", ", ".join(BackupFormat)
        ) from exc
    memory = None if source is None or isinstance(source, str | Path) else source
    if memory is not None:
        await memory.flush_steps()
    return await asyncio.to_thread(
        _create_checked, source, dest_dir, fmt, compress, embeddings, progress
    )


def _create_checked(
    source: str | Path | SelfLearningMemory | None,
    dest_dir: str | Path,
    fmt: BackupFormat,
    compress: bool,
    embeddings: bool,
    progress: Progress | None,
) -> BackupInfo:
    db = _source_db(source)
    dest = Path(dest_dir).expanduser()
    if dest.exists() and not dest.is_dir():
        raise ValidationError("dest_dir", f"{dest} exists and is not a directory")
    try:
        return _create_sync(db, dest, fmt, compress, embeddings, progress)
    except PermissionError as exc:
        raise ValidationError("dest_dir", f"{dest} is not writable: {exc.strerror}") from exc
