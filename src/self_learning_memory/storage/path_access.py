"""Why a path of the embedded store cannot be used, said in one line with what to do.

Root ignores file modes, but not a read-only file system, a regular file where the data
directory should be, or a directory where ``memory.db`` should be: each of these used to escape
as a bare driver error (``FileExistsError``, ``CantOpenError``) or as "retry" advice. The
result is a :class:`~self_learning_memory.errors.StorageAccessError` (exit 7, not retried).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import StorageAccessError

__all__ = ["data_dir_error", "database_error"]

_FIX = "or choose another data directory (--data-dir or MEMORY_DATA_DIR)"


def _read_only(path: Path) -> bool:
    """The file system under ``path`` (or its nearest existing parent) is mounted read-only."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def data_dir_error(directory: Path, exc: OSError) -> StorageAccessError:
    """The data directory (or a parent) could not be created."""
    blocker = next((p for p in (directory, *directory.parents) if p.is_file()), None)
    if blocker is not None or exc.errno in (errno.EEXIST, errno.ENOTDIR):
        where = blocker or directory
        return StorageAccessError(
            f"The data directory {directory} cannot be created: {where} is a regular file. "
            f"Move the file away {_FIX}."
        )
    if exc.errno == errno.EROFS or _read_only(directory):
        return StorageAccessError(
            f"The data directory {directory} is on a read-only file system. Remount it "
            f"writable {_FIX}."
        )
    return StorageAccessError(
        f"The data directory {directory} cannot be created ({exc.strerror or exc}). Make it "
        f"writable {_FIX}."
    )


def database_error(path: Path, exc: Exception) -> StorageAccessError | None:
    """A database file that cannot be opened or written because of its path (None: not a
    path problem, e.g. a lock or a full disk)."""
    if path.is_dir():
        return StorageAccessError(
            f"The database {path} is a directory, not a file. Move it away {_FIX}."
        )
    if _read_only(path):
        return StorageAccessError(
            f"The database {path} is on a read-only file system ({exc}). Remount it writable "
            f"{_FIX}."
        )
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return StorageAccessError(
            f"The database {path} or its directory is not writable ({exc}). Make {path} and "
            f"{path.parent} writable {_FIX}."
        )
    return None
