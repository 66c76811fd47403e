"""The Turso store (extra ``turso``): the embedded SQLite schema and queries over ``libsql``.

``libsql://`` URL plus auth token, opened as an *embedded replica*: a local file that libsql
keeps in sync with the remote database (``libsql.connect(local, sync_url=..., auth_token=...)``;
reads are local, writes go to the remote). ``TursoStorage`` is :class:`SQLiteStorage` with a
different connection layer: :class:`_LibsqlConn` makes a libsql connection look like the apsw
connection the SQLite store's SQL is written against (iterable cursors, ``changes()``,
``get_autocommit()``, multi-statement migrations, apsw's error classes), so every query,
migration and transaction rule is shared and nothing is copied.

**Degraded start.** ``libsql.connect`` raises at once when the remote is unreachable. Instead of
failing, the store then opens a plain local file next to the replica (``<replica>.offline.db``)
and serves and records there; :attr:`TursoStorage.degraded` says so and health reports it.
:meth:`TursoStorage.reconnect` tries the remote again and, once it answers, copies what was
recorded offline into it with the row-level transfer (``storage/migrate.py``; idempotent) and
removes the offline file. What was tested here: the local-file mode (``libsql.connect`` on a
plain file) and the degraded start against a refused address; a real remote round-trip could
not be tested on this machine.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import apsw

from ..errors import CapabilityUnavailableError, StorageUnavailableError
from ..model.records import HealthReport
from .migrations import SQLITE_MIGRATIONS
from .sqlite import SQLiteStorage
from .sqlite_connection import SQLiteConnection

__all__ = ["TURSO_EXTRA", "TursoStorage"]

log = logging.getLogger(__name__)
TURSO_EXTRA = "pip install 'self-learning-memory[turso]'"


def _libsql() -> Any:
    try:
        import libsql  # type: ignore[import-untyped]
    except ImportError as exc:
        raise CapabilityUnavailableError(
            f"The Turso store needs the libsql package: {TURSO_EXTRA}."
        ) from exc
    return libsql


def _translated(exc: Exception) -> Exception:
    """libsql raises ValueError for SQLite errors: give them apsw's classes (which the SQLite
    store's lock retries and error mapping understand)."""
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return apsw.BusyError(text)
    if "constraint failed" in low:
        return apsw.ConstraintError(text)
    if "malformed" in low or "not a database" in low:
        return apsw.CorruptError(text)
    return apsw.SQLError(text)


class _Cursor:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows
        self._at = 0

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rest, self._at = self._rows[self._at :], len(self._rows)
        return rest

    def __iter__(self) -> _Cursor:
        return self

    def __next__(self) -> tuple[Any, ...]:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row


class _LibsqlConn:
    """The part of ``apsw.Connection`` the SQLite store uses, over a libsql connection."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn
        self._tokenizers: apsw.Connection | None = None

    def execute(self, sql: str, args: Any = ()) -> _Cursor:
        try:
            if not args and sql.strip().rstrip(";").count(";"):
                self.raw.executescript(sql)  # a migration: several statements
                return _Cursor([])
            cur = self.raw.execute(sql, tuple(args))
            rows = (cur.fetchall() or []) if cur.description is not None else []
        except ValueError as exc:
            raise _translated(exc) from exc
        return _Cursor([tuple(r) for r in rows])

    def executemany(self, sql: str, rows: Any) -> None:
        try:
            self.raw.executemany(sql, [tuple(r) for r in rows])
        except ValueError as exc:
            raise _translated(exc) from exc

    def fts5_tokenizer(self, name: str, args: list[str]) -> Any:
        """Query stemming for term selection: the same FTS5 tokenizer, from apsw's SQLite."""
        if self._tokenizers is None:
            self._tokenizers = apsw.Connection(":memory:")
        return self._tokenizers.fts5_tokenizer(name, args)

    def changes(self) -> int:
        return int(self.raw.execute("SELECT changes()").fetchone()[0])

    def get_autocommit(self) -> bool:
        return not self.raw.in_transaction

    def set_busy_timeout(self, ms: int) -> None:
        self.raw.execute(f"PRAGMA busy_timeout = {int(ms)}")

    def close(self) -> None:
        self.raw.close()


class _LibsqlConnection(SQLiteConnection):
    """SQLiteConnection's thread, transactions and retries over libsql."""

    def __init__(self, owner: TursoStorage, **kwargs: Any) -> None:
        super().__init__(owner.path, migrations=SQLITE_MIGRATIONS, **kwargs)
        self._owner = owner

    def _open_sync(self) -> None:
        self._conn = _LibsqlConn(self._owner._connect())  # type: ignore[assignment]
        self._thread_id = threading.get_ident()
        conn = self._connection()
        conn.set_busy_timeout(self._busy_timeout_ms)
        if self._owner.sync_url is None or self._owner.degraded:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _close_sync(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def sync_now(self) -> None:
        conn = self._connection()
        conn.raw.sync()  # type: ignore[attr-defined]


class TursoStorage(SQLiteStorage):
    """A :class:`StorageBackend` on Turso/libSQL (see the module docstring)."""

    name = "turso"

    def __init__(
        self,
        local_path: str | Path,
        *,
        sync_url: str | None = None,
        auth_token: str | None = None,
        busy_timeout_ms: int = 30_000,
    ) -> None:
        _libsql()
        super().__init__(local_path, busy_timeout_ms=busy_timeout_ms)
        self.replica_path = self.path
        self.sync_url = sync_url
        self.auth_token = auth_token
        self.degraded = False
        self.last_remote_error: str | None = None
        self.last_sync_at: float | None = None
        self._db: _LibsqlConnection = _LibsqlConnection(self, busy_timeout_ms=busy_timeout_ms)

    @classmethod
    def from_url(
        cls, url: str, *, auth_token: str | None = None, local_path: str | Path | None = None
    ) -> TursoStorage:
        """``libsql://host?authToken=...`` (or ``auth_token=``); the replica file defaults to
        ``./turso-replica.db``. A ``file:`` URL opens a plain local libsql file."""
        from urllib.parse import parse_qs, urlsplit, urlunsplit

        if url.startswith("file:"):
            return cls(url[len("file:") :])
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        tokens = query.get("authToken") or query.get("auth_token") or []
        token = auth_token or (tokens[0] if tokens else None)
        bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return cls(local_path or "turso-replica.db", sync_url=bare, auth_token=token)

    @property
    def offline_path(self) -> Path:
        return self.replica_path.with_name(self.replica_path.name + ".offline.db")

    def _connect(self) -> Any:
        libsql = _libsql()
        self.replica_path.parent.mkdir(parents=True, exist_ok=True)
        if self.sync_url is None:
            return libsql.connect(str(self.replica_path), isolation_level=None)
        try:
            conn = libsql.connect(
                str(self.replica_path),
                sync_url=self.sync_url,
                auth_token=self.auth_token or "",
                isolation_level=None,
            )
            conn.sync()
            self.degraded = False
            self.last_sync_at = time.time()
            return conn
        except ValueError as exc:  # unreachable remote, refused token
            self.degraded = True
            self.last_remote_error = str(exc)
            log.warning(
                "Turso at %s is unreachable (%s): serving the local file %s until it returns",
                self.sync_url,
                exc,
                self.offline_path,
            )
            return libsql.connect(str(self.offline_path), isolation_level=None)

    async def sync(self) -> None:
        """Pull the remote's changes into the replica (no-op in local-file mode)."""
        if self.sync_url is None or self.degraded:
            return
        await self._db.call(self._db.sync_now)
        self.last_sync_at = time.time()

    async def reconnect(self) -> bool:
        """When degraded: try the remote again; on success copy what was recorded offline into
        it and drop the offline file. True when the store is online afterwards."""
        if not self.degraded:
            return True
        online = TursoStorage(self.replica_path, sync_url=self.sync_url, auth_token=self.auth_token)
        try:
            await online.initialize()
        except StorageUnavailableError:
            return False
        if online.degraded:
            await online.close()
            return False
        from .migrate import migrate

        report = await migrate(self, online)
        if not report.verified:
            await online.close()
            return False
        await self.close()
        self._db, self.degraded = online._db, False
        online._db._owner = self
        with contextlib.suppress(OSError):
            self.offline_path.unlink()
        return True

    async def health_check(self) -> HealthReport:
        report = await super().health_check()
        details = dict(report.details)
        details.update(
            {
                "mode": "local file" if self.sync_url is None else "embedded replica",
                "sync_url": self.sync_url,
                "degraded": self.degraded,
                "last_remote_error": self.last_remote_error,
                "last_sync_at": self.last_sync_at,
            }
        )
        if self.degraded:
            details["serving"] = str(self.offline_path)
        return HealthReport(self.name, report.healthy, report.latency_ms, details)
