"""The shared durable store: PostgreSQL through psycopg 3 and an async connection pool.

Same :class:`~self_learning_memory.storage.backend.StorageBackend` semantics as the embedded
SQLite store, for many processes on many machines: the store logic is the shared SQL layer
(:class:`~..sql.store.SQLStore` with the PostgreSQL dialect: steps are appended under the
episode's row lock, completions aggregate patterns and heuristics under row locks, the learning
queue is claimed with ``FOR UPDATE SKIP LOCKED``). This module adds the pool, the ``tsvector``
index (:mod:`.search`) and the announcement of episode changes with NOTIFY, so every process
can drop stale cache entries (see :mod:`.notify`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ...errors import StorageError
from ...model.records import EpisodeCandidate, EpisodeFilters, HealthReport
from ..batch import BatchedWrite
from ..capabilities import Capabilities, KeptCapabilities
from ..sql import batch_sql
from ..sql.dialect import POSTGRES, PostgresDialect
from ..sql.program import Op, ProgramFactory, execute, run_async
from ..sql.store import SQLStore
from ..transfer import PostgresTransfer
from .connection import Conn, PostgresConnection, first_value
from .notify import CHANNEL, EpisodeChange, EpisodeListener
from .pgvector import (
    PgvectorDialect,
    PgvectorIndex,
    PgvectorState,
    activate,
    missing_vector_object,
)
from .search import TsvectorIndex

__all__ = ["PostgresStorage"]

T = TypeVar("T")
log = logging.getLogger(__name__)


class PostgresStorage(SQLStore):
    """The shared :class:`StorageBackend` (``postgresql://`` DSN)."""

    name = "postgresql"
    dialect: PostgresDialect = POSTGRES  # PgvectorDialect once vectors live in pgvector
    search: TsvectorIndex

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout_s: float = 10.0,
        listen: bool = True,
        pgvector: str = "auto",
        ef_search: int = 100,
        feedback_ef_search: int = 0,
        feedback_pool: int = 200,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        hnsw_type: str = "vector",
        exact_below: int = 0,
    ) -> None:
        self.dsn = dsn
        self.search = TsvectorIndex()
        self._db = PostgresConnection(
            dsn, min_size=min_size, max_size=max_size, timeout_s=connect_timeout_s
        )
        self._listen = listen
        self.listener: EpisodeListener | None = None
        self._change_callbacks: list[Callable[[EpisodeChange], Awaitable[None]]] = []
        self.pgvector_available = False
        self._pgvector_mode = pgvector
        self._ef_search = ef_search
        self._feedback_ef_search = feedback_ef_search
        self._feedback_pool = feedback_pool
        self._hnsw = (hnsw_m, hnsw_ef_construction)
        self._hnsw_type = hnsw_type
        self._exact_below = exact_below
        self.pgvector = PgvectorState(False, "not opened")
        self.vector_index: PgvectorIndex | None = None
        self._capabilities = KeptCapabilities()
        self._reactivating = asyncio.Lock()

    async def initialize(self) -> None:
        await self._db.open()
        self.pgvector_available = bool(
            await self._db.read(
                lambda c: first_value(
                    c, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
                )
            )
        )
        await self._activate()
        if self._listen:
            self.listener = EpisodeListener(
                self.dsn, self._db.schema, self._db.backend_pids, self._change_callbacks
            )
            self.listener.start()

    async def _activate(self) -> None:
        """Choose the vector path the server allows now (``pgvector.py``: ``activate``)."""
        self.pgvector = await activate(self._db, self._pgvector_mode)
        if self.pgvector.active and self.pgvector.schema is not None:
            self.dialect = PgvectorDialect(self.pgvector.schema)
            self.vector_index = PgvectorIndex(
                self._db,
                self.pgvector.schema,
                self._ef_search,
                self.pgvector_gone,
                m=self._hnsw[0],
                ef_construction=self._hnsw[1],
                hnsw_type=self._hnsw_type,
                exact_below=self._exact_below,
                feedback_ef_search=self._feedback_ef_search,
                feedback_pool=self._feedback_pool,
            )
        else:
            self.dialect = POSTGRES
            self.vector_index = None

    async def pgvector_gone(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the pgvector column, type or functions vanished under this
        running store (``DROP EXTENSION vector CASCADE``); if so the store has chosen its vector
        path again (bytea, or a new empty column where the extension can be created again),
        so the failed operation can be run once more."""
        if self.vector_index is None or not missing_vector_object(exc):
            return False
        async with self._reactivating:
            if self.vector_index is not None:
                log.warning("pgvector vanished from the server (%s): choosing again", exc)
                await self._activate()
                # statements the pooled connections prepared name the old vector type
                await self._db.drain()
        return True

    async def _again_without_pgvector(self, attempt: Callable[[], Awaitable[T]]) -> T:
        try:
            return await attempt()
        except StorageError as exc:
            if not await self.pgvector_gone(exc):
                raise
        return await attempt()

    async def close(self) -> None:
        await self.stop_listening()
        await self._db.close()

    async def _read(self, program: ProgramFactory[T]) -> T:
        return await self._again_without_pgvector(
            lambda: self._db.read(lambda conn: run_async(conn, program()))
        )

    async def _snapshot(self, program: ProgramFactory[T]) -> T:
        return await self._again_without_pgvector(
            lambda: self._db.read_snapshot(lambda conn: run_async(conn, program()))
        )

    async def _write(self, program: ProgramFactory[T], *, retrieval: bool = True) -> T:
        return await self._again_without_pgvector(
            lambda: self._db.transaction(lambda conn: run_async(conn, program()), bump=retrieval)
        )

    async def write_batch(self, writes: Sequence[BatchedWrite]) -> None:
        """Apply ``writes`` in order, each in its idempotent form, in one transaction
        (``storage/batch.py``), in pipeline mode: only the statements whose answer the
        program reads (the batch's up-front reads) wait for the server. The batch's episode
        announcements go out in one statement at its end (in order; NOTIFY delivers them at
        the commit either way)."""
        if not writes:
            return

        async def run(conn: Conn) -> None:
            payloads: list[str] = []

            def announce(op: str, episode_id: str) -> list[Op]:
                payloads.append(self._payload(op, episode_id))
                return []

            async with conn.pipeline() as pipeline:
                program = batch_sql.write_batch(self.dialect, self.search, announce, writes)
                await run_async(conn, program, pipeline)
                if payloads:  # a transaction's identical notifications are sent once anyway
                    await conn.execute(
                        "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) WITH ORDINALITY "
                        "AS t(p, i) ORDER BY i",
                        (CHANNEL, list(dict.fromkeys(payloads))),
                    )

        await self._again_without_pgvector(lambda: self._db.transaction(run, bump=True))

    def _payload(self, op: str, episode_id: str) -> str:
        return f"{self._db.schema}|{op}|{episode_id}"

    def _announce(self, op: str, episode_id: str) -> list[Op]:
        return [execute("SELECT pg_notify(?, ?)", (CHANNEL, self._payload(op, episode_id)))]

    async def stop_listening(self) -> None:
        """Stop delivering other processes' episode changes to the subscribed callbacks (a
        memory calls it before it closes the cache those callbacks write to)."""
        if self.listener is not None:
            listener, self.listener = self.listener, None
            await listener.stop()

    @property
    def capabilities(self) -> Capabilities:
        """Other processes' episode changes, row transfer, batch writes and, with pgvector,
        the server's vector search (kept until the connection, dialect or vector search
        changes: a search asks several times)."""
        db, dialect, vectors = self._db, self.dialect, self.vector_index
        return self._capabilities.of(
            (db, dialect, vectors),
            lambda: Capabilities(
                change_feed=self,
                transfer=PostgresTransfer(db, dialect),
                batch_writer=self,
                vector_index=vectors,
            ),
        )

    def subscribe_episode_changes(
        self, callback: Callable[[EpisodeChange], Awaitable[None]]
    ) -> None:
        """Call ``callback`` for every episode another process extends, completes or deletes
        in this store (delivered after its commit; may be called before ``initialize``)."""
        self._change_callbacks.append(callback)

    async def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        if not terms:
            return []
        return await self._read(lambda: self.search.candidates(terms, filters, limit))

    async def data_version(self) -> int:
        """Grows with every committed write transaction of any process."""
        return int(
            await self._db.read(lambda c: first_value(c, "SELECT sum(version) FROM data_version"))
        )

    async def health_check(self) -> HealthReport:
        started = time.perf_counter()
        pgvector = self.pgvector.details()
        details: dict[str, object] = {
            "dsn": self._db.where,
            "schema": self._db.schema,
            "vector_backend": "pgvector" if self.vector_index is not None else "bytea",
            "pgvector_available": self.pgvector_available,
            "pgvector": pgvector,
        }
        try:
            version = await self._db.read(lambda c: first_value(c, "SHOW server_version"))
        except StorageError as exc:
            details["error"] = str(exc)
            return HealthReport(self.name, False, (time.perf_counter() - started) * 1000, details)
        pool = self._db.pool
        if pool is not None:
            stats = pool.get_stats()
            details["pool"] = {
                "min_size": self._db.min_size,
                "max_size": self._db.max_size,
                "size": stats.get("pool_size", 0),
                "available": stats.get("pool_available", 0),
                "waiting": stats.get("requests_waiting", 0),
            }
        details["server_version"] = version
        if self.pgvector.lost:  # vectors lost with a dropped extension: until reindexed
            missing = f"SELECT count(*) FROM embeddings WHERE NOT ({self.dialect.vector_present})"
            try:
                self.pgvector.lost = int(await self._db.read(lambda c: first_value(c, missing)))
            except StorageError as exc:
                pgvector["status_error"] = str(exc)
            else:
                details["pgvector"] = pgvector = self.pgvector.details()
        if self.vector_index is not None:
            try:
                pgvector.update(await self.vector_index.status())
            except StorageError as exc:
                pgvector["status_error"] = str(exc)
        details["transaction_retries"] = self._db.retries
        details["listener"] = (
            "off"
            if self.listener is None
            else ("connected" if self.listener.connected.is_set() else "connecting")
        )
        return HealthReport(self.name, True, (time.perf_counter() - started) * 1000, details)
