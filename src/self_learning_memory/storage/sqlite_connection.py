"""One apsw connection on one dedicated thread, with safe write transactions.

- WAL journal, foreign keys on, a busy timeout; every write transaction starts with
  ``BEGIN IMMEDIATE`` so that lock waits happen at the start (where SQLite's busy handler
  applies) and never as a failed upgrade half-way through.
- A lock that outlasts the busy timeout is retried with backoff inside a total budget, then
  raised as :class:`StorageUnavailableError`: "database is locked" never reaches the caller.
- All calls run on the connection's own thread, so the event loop never blocks on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import apsw

from ..errors import DataIntegrityError, StorageUnavailableError
from .path_access import data_dir_error, database_error
from .restore_lock import store_opening

__all__ = ["SQLiteConnection", "scalar"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT = (apsw.BusyError, apsw.LockedError)


def scalar(conn: apsw.Connection, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> Any:
    """The first column of the first row of a query that always returns a row."""
    row = conn.execute(sql, args).fetchone()
    if row is None:
        raise DataIntegrityError(f"The query {sql!r} returned no row.")
    return row[0]


class SQLiteConnection:
    def __init__(
        self,
        path: Path,
        *,
        migrations: list[tuple[int, str]],
        busy_timeout_ms: int = 30_000,
        synchronous: str = "normal",
        lock_budget_s: float = 120.0,
    ) -> None:
        self.path = path
        self._migrations = migrations
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous.upper()
        self._lock_budget_s = lock_budget_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: apsw.Connection | None = None
        self._thread_id: int | None = None
        self.busy_retries = 0
        self.commits = 0

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        try:
            await self.call(self._open_sync)
        except BaseException:
            await self.close()  # no connection or thread left behind
            raise

    def _open_sync(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise data_dir_error(self.path.parent, exc) from exc
        with store_opening(self.path.parent):  # a restore cannot swap the files mid-open
            self._connect_sync()
        conn = self._connection()
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA temp_store=MEMORY")
        self._migrate()

    def _connect_sync(self) -> None:
        """Open the file and switch to WAL: from then on this connection's lock on the
        ``-shm`` file shows the store as in use (what a restore checks)."""
        try:
            conn = apsw.Connection(str(self.path))
        except apsw.Error as exc:
            raise database_error(self.path, exc) or StorageUnavailableError(
                f"Cannot open the database {self.path}: {exc}."
            ) from exc
        conn.set_busy_timeout(self._busy_timeout_ms)
        self._conn = conn
        self._thread_id = threading.get_ident()
        try:
            self._retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchall())
        except (apsw.NotADBError, apsw.CorruptError) as exc:
            raise DataIntegrityError(
                f"The database file {self.path} is corrupt or not a database: {exc}."
            ) from exc
        except (apsw.CantOpenError, apsw.ReadOnlyError) as exc:  # e.g. a read-only directory
            raise database_error(self.path, exc) or StorageUnavailableError(
                f"Cannot open the database {self.path}: {exc}."
            ) from exc

    def _migrate(self) -> None:
        conn = self._connection()

        def current(c: apsw.Connection) -> int:
            return int(scalar(c, "PRAGMA user_version"))

        for version, sql in self._migrations:

            def apply(c: apsw.Connection, version: int = version, sql: str = sql) -> None:
                if current(c) >= version:
                    return  # another process applied it while we waited for the lock
                c.execute(sql)
                c.execute(f"PRAGMA user_version={version}")
                log.info("applied schema migration %d to %s", version, self.path)

            if current(conn) < version:
                self._transaction(apply)

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self.call(self._close_sync)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _close_sync(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(apsw.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()
            self._conn = None

    def version(self) -> int:
        """PRAGMA data_version (other connections' commits) plus this connection's commits."""
        conn = self._connection()
        return int(scalar(conn, "PRAGMA data_version")) * 1_000_000 + self.commits

    # -- running work ----------------------------------------------------------------------
    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StorageUnavailableError("The database is closed.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def read(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run ``fn(conn)`` on the connection's thread (autocommit: one consistent statement)."""
        return await self.call(self._read_sync, fn)

    async def read_snapshot(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run ``fn(conn)`` inside a read transaction: every statement sees one snapshot."""
        return await self.call(self._snapshot_sync, fn)

    async def write(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run ``fn(conn)`` inside one ``BEGIN IMMEDIATE`` transaction; all or nothing."""
        return await self.call(self._transaction, fn)

    def _connection(self) -> apsw.Connection:
        if self._conn is None:
            raise StorageUnavailableError("The database is closed.")
        return self._conn

    def _read_sync(self, fn: Callable[[apsw.Connection], T]) -> T:
        conn = self._connection()
        return self._retry_locked(lambda: self._translate(fn, conn))

    def _snapshot_sync(self, fn: Callable[[apsw.Connection], T]) -> T:
        conn = self._connection()

        def attempt() -> T:
            conn.execute("BEGIN")
            try:
                result = self._translate(fn, conn)
            finally:
                conn.execute("COMMIT")
            return result

        return self._retry_locked(attempt)

    def _transaction(self, fn: Callable[[apsw.Connection], T]) -> T:
        conn = self._connection()

        def attempt() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = self._translate(fn, conn)
                conn.execute("COMMIT")
                self.commits += 1
            except BaseException:
                if not conn.get_autocommit():
                    conn.execute("ROLLBACK")
                raise
            return result

        return self._retry_locked(attempt)

    def _retry_locked(self, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._lock_budget_s
        delay = 0.01
        while True:
            try:
                return attempt()
            except _TRANSIENT as exc:
                self.busy_retries += 1
                if time.monotonic() >= deadline:
                    raise StorageUnavailableError(
                        f"The database {self.path} stayed locked for more than "
                        f"{self._lock_budget_s:.0f} s: {exc}."
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)

    def _translate(self, fn: Callable[[apsw.Connection], T], conn: apsw.Connection) -> T:
        try:
            return fn(conn)
        except _TRANSIENT:
            raise
        except (apsw.CorruptError, apsw.NotADBError) as exc:
            raise DataIntegrityError(f"The database file is corrupt: {exc}.") from exc
        except UnicodeDecodeError as exc:  # a damaged page leaves bytes that are not text
            raise DataIntegrityError(
                f"A stored text value in {self.path} is not valid UTF-8 (a damaged database "
                f"page): {exc}."
            ) from exc
        except (apsw.CantOpenError, apsw.ReadOnlyError) as exc:
            raise database_error(self.path, exc) or StorageUnavailableError(
                f"The database could not be written: {exc}."
            ) from exc
        except (apsw.FullError, apsw.IOError) as exc:
            raise StorageUnavailableError(f"The database could not be written: {exc}.") from exc
        except apsw.ConstraintError as exc:
            raise DataIntegrityError(f"A database constraint failed: {exc}.") from exc
