"""The embedded durable store: one SQLite file through apsw (WAL, FTS5, parameterised SQL).

Safe for many processes at once: each holds its own connection, writes are short
``BEGIN IMMEDIATE`` transactions, and lock waits are retried inside a budget. The store logic
is the shared SQL layer (:class:`~.sql.store.SQLStore` with the SQLite dialect); this module
adds the connection, the FTS5 index and the health check.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import apsw

from ..model.records import EpisodeCandidate, EpisodeFilters, HealthReport
from .capabilities import Capabilities, KeptCapabilities
from .migrations import SQLITE_MIGRATIONS
from .sql.dialect import SQLITE
from .sql.program import ProgramFactory, run_blocking
from .sql.store import SQLStore
from .sqlite_connection import SQLiteConnection, scalar
from .sqlite_search import FTS5Index
from .step_queries import StepQueries
from .transfer import SQLiteTransfer

__all__ = ["CANDIDATE_LOG_READ", "SQLiteCandidateLog", "SQLiteStorage"]

T = TypeVar("T")
CANDIDATE_LOG_READ = 20_000  # log entries read at once at most; more: the reader starts over


class SQLiteCandidateLog:
    """Migration 10's ``candidate_changes``: the episodes whose candidate rows may have changed
    (``capabilities.CandidateLog``), read on the store's connection in one snapshot."""

    def __init__(self, db: SQLiteConnection) -> None:
        self.owner: object = db
        self._db = db

    async def changed_since(self, position: int | None) -> tuple[int, list[uuid.UUID] | None]:
        return await self._db.read_snapshot(lambda conn: self._read(conn, position))

    @staticmethod
    def _read(conn: apsw.Connection, position: int | None) -> tuple[int, list[uuid.UUID] | None]:
        newest = int(scalar(conn, "SELECT coalesce(max(seq), 0) FROM candidate_changes"))
        if position is None or position > newest:
            return newest, None
        if position == newest:
            return newest, []
        found = conn.execute(
            "SELECT seq, episode_id FROM candidate_changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (position, CANDIDATE_LOG_READ + 1),
        ).fetchall()
        # a seq is never reused nor skipped by a commit: a first entry past position + 1 means
        # the entries between were dropped (the oldest go, ``migrations/sqlite.py``)
        if not found or found[0][0] != position + 1 or len(found) > CANDIDATE_LOG_READ:
            return newest, None
        try:
            return newest, [uuid.UUID(e) for e in dict.fromkeys(str(r[1]) for r in found)]
        except ValueError:  # not an episode id (written by hand): it cannot tell which rows
            return newest, None


class SQLiteStorage(SQLStore):
    """The embedded default :class:`StorageBackend`."""

    name = "sqlite"
    dialect = SQLITE
    search: FTS5Index

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 30_000, synchronous: str = "normal"
    ) -> None:
        self.path = Path(path)
        self.search = FTS5Index()
        self._db = SQLiteConnection(
            self.path,
            migrations=SQLITE_MIGRATIONS,
            busy_timeout_ms=busy_timeout_ms,
            synchronous=synchronous,
        )
        self._capabilities = KeptCapabilities()

    async def initialize(self) -> None:
        from .wal_check import note_wal_loss

        # before SQLite's recovery forgets which committed WAL frames a crash left damaged (the
        # embedded store only: a Turso replica's remote is the truth)
        if self.name == "sqlite":
            await asyncio.to_thread(note_wal_loss, self.path)
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    @property
    def capabilities(self) -> Capabilities:
        """The database file, step queries, maintenance, row transfer and batch writes, all on
        this store's connection (built again when the connection changes: a Turso replica may
        switch it; a search asks several times, so the handles are kept until then)."""
        db = self._db
        return self._capabilities.of(
            (db,),
            lambda: Capabilities(
                local_file=self.path,
                step_queries=StepQueries(db),
                maintenance=self,
                transfer=SQLiteTransfer(db),
                batch_writer=self,
                candidate_log=SQLiteCandidateLog(db),
            ),
        )

    async def _read(self, program: ProgramFactory[T]) -> T:
        return await self._db.read(lambda conn: run_blocking(conn, program()))

    async def _snapshot(self, program: ProgramFactory[T]) -> T:
        return await self._db.read_snapshot(lambda conn: run_blocking(conn, program()))

    async def _write(self, program: ProgramFactory[T], *, retrieval: bool = True) -> T:
        # every commit changes SQLite's data version: ``retrieval`` makes no difference here
        return await self._db.write(lambda conn: run_blocking(conn, program()))

    async def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        if not terms:
            return []
        return await self._db.read(lambda c: self.search.candidates(c, terms, filters, limit))

    async def data_version(self) -> int:
        """Changes whenever any process commits to the store (for query-cache identity)."""
        return await self._db.call(self._db.version)

    # -- operations ----------------------------------------------------------------------
    async def run_maintenance(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run ``fn(conn)`` on the connection's thread outside any transaction, with lock
        retries (VACUUM, integrity checks: see ``storage/maintenance.py``)."""
        return await self._db.read(fn)

    async def health_check(self) -> HealthReport:
        started = time.perf_counter()
        try:
            ok = await self._db.read(lambda c: scalar(c, "SELECT 1") == 1)
            integrity = await self._db.read(lambda c: str(scalar(c, "PRAGMA quick_check(1)")))
        except Exception as exc:  # any failure is a health answer
            return HealthReport(
                self.name,
                False,
                (time.perf_counter() - started) * 1000,
                {"error": str(exc), "path": str(self.path)},
            )
        return HealthReport(
            self.name,
            ok and integrity == "ok",
            (time.perf_counter() - started) * 1000,
            {
                "path": str(self.path),
                "quick_check": integrity,
                "busy_retries": self._db.busy_retries,
            },
        )
