"""The restore lock: a restore and the processes opening the embedded store take turns.

``backup restore --force`` refuses while another process holds the store (its POSIX locks on
``memory.db-shm`` or the cache's ``lock.mdb``, seen in ``/proc/locks``). A check alone leaves a
window: a process that opens the store after the last check and before the swap would write to
the replaced files. So the check and the swap run under an exclusive ``flock`` on
``<data dir>/.restore.lock``, and every opener (the SQLite connection, the LMDB cache) holds the
same lock shared while it opens, until its own lock on the store is visible:

- an opener that got the shared lock first has finished opening, holds the store, and is named
  by the restore's check, which refuses;
- an opener that comes while the restore holds the lock waits (up to ``OPEN_WAIT_S``) and then
  opens the restored files, or gives up with :class:`InvalidStateError`.

``flock`` locks belong to an open file description, so two openers in one process exclude a
restore in that process too. The lock file is never removed (removing a lock file others may
have open would let two holders lock two different files). A directory where the lock file
cannot be created (read-only) cannot be restored into either, so the opener goes on without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidStateError

__all__ = ["LOCK_NAME", "OPEN_WAIT_S", "restore_exclusive", "store_opening"]

log = logging.getLogger(__name__)

LOCK_NAME = ".restore.lock"
OPEN_WAIT_S = 60.0  # how long an opener waits for a restore's swap (milliseconds normally)
RESTORE_WAIT_S = 10.0  # how long a restore waits for openers (each holds it for one open)


def _open_lock_file(data_dir: Path) -> int | None:
    try:
        return os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        try:
            return os.open(data_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None


def _acquire(fd: int, mode: int, wait_s: float) -> bool:
    """Take ``mode`` on ``fd`` within ``wait_s`` seconds; False when it stayed taken."""
    deadline = time.monotonic() + wait_s
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.05)


@contextlib.contextmanager
def store_opening(data_dir: Path, *, wait_s: float | None = None) -> Iterator[None]:
    """Hold the restore lock shared while the store in ``data_dir`` is opened. Blocking (call
    it off the event loop). Raises :class:`InvalidStateError` when a restore holds it for
    longer than ``wait_s`` (default ``OPEN_WAIT_S``)."""
    fd = _open_lock_file(data_dir)
    if fd is None:
        yield
        return
    try:
        wait = OPEN_WAIT_S if wait_s is None else wait_s
        if not _acquire(fd, fcntl.LOCK_SH, 0.0):
            log.warning(
                "A restore is in progress in %s; waiting up to %.0f s for it to finish before "
                "opening the store.",
                data_dir,
                wait,
            )
            if not _acquire(fd, fcntl.LOCK_SH, wait):
                raise InvalidStateError(
                    f"A restore is in progress in {data_dir}: the store was not opened "
                    f"(waited {wait:.0f} s). Open it again once `memory-cli backup restore` "
                    "has finished."
                )
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def restore_exclusive(data_dir: Path, *, wait_s: float = RESTORE_WAIT_S) -> Iterator[None]:
    """Hold the restore lock exclusively: no process can open the store in ``data_dir`` until
    it is released. Raises :class:`InvalidStateError` when openers keep it for ``wait_s``."""
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if not _acquire(fd, fcntl.LOCK_EX, wait_s):
            raise InvalidStateError(
                f"The store in {data_dir} is being opened by other processes (the restore lock "
                f"stayed shared for {wait_s:.0f} s). Nothing was restored: stop them and run the "
                "restore again."
            )
        yield
    finally:
        os.close(fd)
