"""Verifying a backup: manifest, sizes, checksums and (deep) the content: its counts, its
schema version, and every row decoded by the library's codec (:mod:`.decode`)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from ..errors import DataIntegrityError, NotFoundError
from ..storage.sqlite_connection import scalar
from . import export
from .decode import check_row, check_store
from .manifest import (
    DB_FILENAME,
    BackupCounts,
    BackupFormat,
    BackupManifest,
    VerifyReport,
    count_rows,
    decompress_limit,
    gunzip_file,
    latest_schema,
    read_manifest,
    sha256,
)

__all__ = ["verify_backup"]


# -- verify --------------------------------------------------------------------------------
def _named(name: str, exc: DataIntegrityError) -> str:
    message = exc.message.rstrip(".")
    return message if message.startswith(name) else f"{name}: {message}"


def _deep_check(path: Path, manifest: BackupManifest, problems: list[str]) -> None:
    import apsw

    data = path / manifest.data_file()
    with tempfile.TemporaryDirectory(prefix="slm-verify-") as tmp:
        plain = data
        if manifest.compressed:
            plain = Path(tmp) / data.name.removesuffix(".gz")
            gunzip_file(data, plain, decompress_limit(manifest))
        if manifest.format == BackupFormat.sqlite:
            # a private copy: opening the backup itself could leave journal files beside it
            if plain == data:
                plain = Path(tmp) / DB_FILENAME
                shutil.copyfile(data, plain)
            conn = apsw.Connection(str(plain))
            try:
                check = conn.execute("PRAGMA integrity_check(5)").fetchall()
                if [tuple(r) for r in check] != [("ok",)]:
                    problems.append(f"{data.name} fails the integrity check: {check}")
                    return
                version = int(scalar(conn, "PRAGMA user_version"))
                if version != manifest.schema_version:
                    problems.append(
                        f"{data.name} has schema version {version}, the manifest says "
                        f"{manifest.schema_version}"
                    )
                counts = count_rows(conn)
                check_store(conn)
            except DataIntegrityError as exc:
                problems.append(_named(data.name, exc))
                return
            except apsw.Error as exc:
                problems.append(f"{data.name} is not a readable SQLite database: {exc}")
                return
            finally:
                conn.close()
        else:
            try:
                header, tables = export.scan(plain, manifest.format.value, check_row)
                export.check_schema_version(data, header, manifest.schema_version)
            except DataIntegrityError as exc:
                problems.append(_named(data.name, exc))
                return
            counts = BackupCounts(
                episodes=tables.get("episodes", 0),
                steps=tables.get("steps", 0),
                patterns=tables.get("patterns", 0),
                heuristics=tables.get("heuristics", 0),
                embeddings=tables.get("embeddings", 0),
            )
        if counts != manifest.counts:
            problems.append(
                f"{data.name} holds {counts.model_dump()}, the manifest says "
                f"{manifest.counts.model_dump()}"
            )


def _verify_sync(where: str | Path, deep: bool) -> VerifyReport:
    path = Path(where).expanduser()
    if not path.is_dir():
        raise NotFoundError("backup", str(path))
    problems: list[str] = []
    checked = 0
    manifest: BackupManifest | None = None
    try:
        manifest = read_manifest(path)
    except DataIntegrityError as exc:
        problems.append(exc.message.rstrip("."))
    if manifest is not None:
        listed = {f.name for f in manifest.files}
        if manifest.data_file() not in listed:
            problems.append(f"the manifest does not list the data file {manifest.data_file()}")
        if manifest.schema_version > latest_schema():
            problems.append(
                f"schema version {manifest.schema_version} is newer than this library's "
                f"{latest_schema()}; upgrade self-learning-memory to restore it"
            )
        elif manifest.schema_version < 1:
            problems.append(
                f"schema version {manifest.schema_version} is not one this library knows "
                f"(1 to {latest_schema()})"
            )
        for entry in manifest.files:
            file = path / entry.name
            checked += 1
            if file.is_symlink():  # lstat: never follow a link out of the backup
                problems.append(
                    f"{entry.name} is a symbolic link; a backup's files must be regular files"
                )
            elif not file.is_file():
                problems.append(f"{entry.name} is missing")
            elif (size := file.stat().st_size) != entry.size_bytes:
                problems.append(
                    f"{entry.name} is {size} bytes, the manifest says {entry.size_bytes} "
                    f"({'truncated' if size < entry.size_bytes else 'changed'})"
                )
            elif sha256(file) != entry.sha256:
                problems.append(f"{entry.name} has changed: its sha256 does not match the manifest")
        if deep and not problems:
            try:
                _deep_check(path, manifest, problems)
            except DataIntegrityError as exc:
                problems.append(exc.message.rstrip("."))
    return VerifyReport(
        path=path,
        backup_id=manifest.backup_id if manifest else None,
        ok=not problems,
        problems=problems,
        files_checked=checked,
        deep=deep,
    )


async def verify_backup(path: str | Path, *, deep: bool = True) -> VerifyReport:
    """Check a backup: the manifest, each file's size and sha256 and, with ``deep``, that the
    content reads back with the manifest's counts. Problems are reported, not raised."""
    return await asyncio.to_thread(_verify_sync, path, deep)
