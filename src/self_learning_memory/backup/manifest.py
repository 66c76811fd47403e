"""The backup manifest, its models, and the file helpers every backup step shares."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import pydantic

from ..errors import DataIntegrityError
from ..storage.sqlite_connection import scalar
from .export import EXPORT_FILES

if TYPE_CHECKING:
    import apsw

__all__ = [
    "BackupCounts",
    "BackupFile",
    "BackupFormat",
    "BackupInfo",
    "BackupManifest",
    "RestoreReport",
    "VerifyReport",
    "decompress_limit",
]

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
DB_FILENAME = "memory.db"  # the same name as storage.factory.DB_FILENAME (kept import-light)
CACHE_DIRNAME = "cache"
STORE_ENTRIES = (DB_FILENAME, f"{DB_FILENAME}-wal", f"{DB_FILENAME}-shm", CACHE_DIRNAME)
PAGES_PER_STEP = 256

# stage ("snapshot", "export", "compress", "restore"), done, total
Progress = Callable[[str, int, int], None]


class BackupFormat(StrEnum):
    sqlite = "sqlite"
    json = "json"
    jsonl = "jsonl"
    sql = "sql"


class BackupCounts(pydantic.BaseModel):
    episodes: int = 0
    steps: int = 0
    patterns: int = 0
    heuristics: int = 0
    embeddings: int = 0


class BackupFile(pydantic.BaseModel):
    name: str
    size_bytes: int
    sha256: str
    # size before compression (absent in older manifests): bounds what decompression may write
    plain_size_bytes: int | None = pydantic.Field(default=None, ge=0)

    @pydantic.field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value in (".", "..") or "\x00" in value:
            raise ValueError(f"{value!r} is not a plain file name")
        return value


class BackupManifest(pydantic.BaseModel):
    manifest_version: int = MANIFEST_VERSION
    backup_id: str
    created_at: datetime
    format: BackupFormat
    compressed: bool
    embeddings: bool
    schema_version: int
    package_version: str
    source: str
    counts: BackupCounts
    files: list[BackupFile]

    def data_file(self) -> str:
        name = DB_FILENAME if self.format == "sqlite" else EXPORT_FILES[self.format]
        return name + (".gz" if self.compressed else "")


class BackupInfo(pydantic.BaseModel):
    path: Path
    manifest: BackupManifest | None
    size_bytes: int
    problem: str | None = None


class VerifyReport(pydantic.BaseModel):
    path: Path
    backup_id: str | None
    ok: bool
    problems: list[str]
    files_checked: int
    deep: bool


class RestoreReport(pydantic.BaseModel):
    backup_id: str
    format: BackupFormat
    data_dir: Path
    replaced_existing: bool
    counts: BackupCounts


# -- helpers -------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def latest_schema() -> int:
    from ..storage.migrations import SQLITE_MIGRATIONS

    return max(v for v, _ in SQLITE_MIGRATIONS)


def count_rows(conn: apsw.Connection) -> BackupCounts:
    def count(table: str) -> int:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        return int(scalar(conn, f"SELECT count(*) FROM {table}")) if found else 0

    return BackupCounts(
        episodes=count("episodes"),
        steps=count("steps"),
        patterns=count("patterns"),
        heuristics=count("heuristics"),
        embeddings=count("embeddings"),
    )


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def gzip_file(path: Path, progress: Progress | None) -> Path:
    target = path.with_name(path.name + ".gz")
    total, done = path.stat().st_size, 0
    with path.open("rb") as src, gzip.open(target, "wb", compresslevel=6) as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            dst.write(chunk)
            done += len(chunk)
            if progress:
                progress("compress", done, total)
    path.unlink()
    return target


# Decompression never writes more than the manifest's recorded plain size plus this margin, nor
# more than the absolute cap (older manifests record no plain size).
DECOMPRESS_MARGIN_BYTES = 1 << 20
MAX_DECOMPRESSED_BYTES = 64 << 30


def decompress_limit(manifest: BackupManifest) -> int:
    recorded = [f.plain_size_bytes for f in manifest.files if f.plain_size_bytes is not None]
    if not recorded:
        return MAX_DECOMPRESSED_BYTES
    return min(MAX_DECOMPRESSED_BYTES, max(recorded) + DECOMPRESS_MARGIN_BYTES)


def gunzip_file(path: Path, target: Path, limit: int = MAX_DECOMPRESSED_BYTES) -> None:
    """Decompress ``path`` into ``target``, refusing as soon as more than ``limit`` bytes come out
    (a small .gz can expand ~1000-fold: a decompression bomb fills the disk before any check)."""
    written = 0
    try:
        with gzip.open(path, "rb") as src, target.open("wb") as dst:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise DataIntegrityError(
                        f"{path.name} decompresses to more than {limit} bytes (the manifest's "
                        "recorded size plus a margin, at most "
                        f"{MAX_DECOMPRESSED_BYTES} bytes); refused as a decompression bomb."
                    )
                dst.write(chunk)
    except (OSError, EOFError) as exc:
        raise DataIntegrityError(f"{path.name} cannot be decompressed: {exc}.") from exc


# -- reading ----------------------------------------------------------------------------------
def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def read_manifest(path: Path) -> BackupManifest:
    file = path / MANIFEST
    if not file.is_file():
        raise DataIntegrityError(f"{file} is missing.")
    try:
        return BackupManifest.model_validate_json(file.read_bytes())
    except (OSError, pydantic.ValidationError) as exc:
        first = str(exc).splitlines()[0:3]
        raise DataIntegrityError(f"{file} is not a valid manifest: {' '.join(first)}.") from exc
