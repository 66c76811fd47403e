"""Finding backups: listing a backup directory, and resolving an id or a path to a backup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from ..errors import DataIntegrityError, NotFoundError
from .manifest import MANIFEST, BackupInfo, dir_size, read_manifest

__all__ = ["list_backups", "resolve_backup"]


def _list_sync(dest_dir: str | Path) -> list[BackupInfo]:
    root = Path(dest_dir).expanduser()
    if not root.is_dir():
        raise NotFoundError("backup directory", str(root))
    found: list[BackupInfo] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith(".") or not (entry / MANIFEST).exists():
            continue
        try:
            found.append(
                BackupInfo(path=entry, manifest=read_manifest(entry), size_bytes=dir_size(entry))
            )
        except DataIntegrityError as exc:
            found.append(
                BackupInfo(
                    path=entry, manifest=None, size_bytes=dir_size(entry), problem=exc.message
                )
            )
    epoch = datetime.min.replace(tzinfo=UTC)
    found.sort(key=lambda b: b.manifest.created_at if b.manifest else epoch, reverse=True)
    return found


async def list_backups(dest_dir: str | Path) -> list[BackupInfo]:
    """The backups under ``dest_dir``, newest first (a broken manifest is listed with its
    problem rather than hidden)."""
    return await asyncio.to_thread(_list_sync, dest_dir)


def resolve_backup(ref: str | Path, root: str | Path | None = None) -> Path:
    """A backup directory from a path, or from an id under ``root``."""
    path = Path(ref).expanduser()
    if (path / MANIFEST).exists() or (path.is_dir() and root is None):
        return path
    if root is not None:
        candidate = Path(root).expanduser() / str(ref)
        if "/" not in str(ref) and candidate.is_dir():
            return candidate
    raise NotFoundError("backup", str(ref))
