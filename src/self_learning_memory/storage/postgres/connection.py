"""The PostgreSQL connection layer: an async pool, migrations, transactions and error mapping.

Reads run on autocommit connections (one statement, its own snapshot) or in a read-only
REPEATABLE READ transaction when several statements must agree. Writes run in a READ
COMMITTED transaction that also bumps one shard of the ``data_version`` counter; a deadlock or
serialization failure reruns the whole transaction (a few times, with jittered backoff), so
callers see either the full effect or a typed error. Driver errors are re-raised as ours.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...errors import (
    ConfigurationError,
    DataIntegrityError,
    InvalidStateError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    ValidationError,
)
from ..database_url import mask_url
from .schema import POSTGRES_MIGRATIONS, VERSION_SHARDS

__all__ = ["Conn", "PostgresConnection", "first_value"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]

_RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
# raised by our own code inside a transaction: passed through as they are (a configuration
# refused at open, e.g. storage.pgvector = off on a store whose vectors live in pgvector)
_OURS = (ValidationError, NotFoundError, InvalidStateError, StorageError, ConfigurationError)
CONNECT_WAIT_S = 0.5  # how long a request waits for a new connection while none is known good
# a pool connection attempt is tried again once, this much later, then given up (see __init__)
RECONNECT_TIMEOUT_S = 0.25
_MIGRATION_LOCK = 0x5E1F_1EA2  # pg_advisory_xact_lock key (combined with the schema's hash)


async def first_value(conn: Conn, sql: str, args: Sequence[Any] = ()) -> Any:
    """The first column of the first row of ``sql`` (None without a row)."""
    row = await (await conn.execute(sql, args)).fetchone()
    return None if row is None else row[0]


class PostgresConnection:
    def __init__(
        self, dsn: str, *, min_size: int = 1, max_size: int = 10, timeout_s: float = 10.0
    ) -> None:
        self.dsn = dsn
        self.min_size = max(1, min_size)
        self.max_size = max(self.min_size, max_size)
        self.timeout_s = timeout_s
        # A request waits up to ``timeout_s`` for a pooled connection while the server is known
        # reachable (the pool's connections are busy), but only ``connect_wait_s`` once a
        # connection was lost and none has been made since: then it waits for a new
        # connection, which a reachable server gives at once, and the first write of an
        # outage is journaled after that short wait instead of the full pool timeout.
        self.connect_wait_s = min(timeout_s, CONNECT_WAIT_S)
        self.reachable = True
        # psycopg_pool retries a lost connection with a doubling delay (1, 2, 4 ... s) until
        # reconnect_timeout (300 s by default) and starts no other attempt meanwhile, so after
        # an outage of T seconds the pool served queries again only about T/2 later (20 s after
        # a 40 s outage), holding back the outbox replay; with 5 s, a request just after the
        # server's return still waited for an attempt asleep in its 1-2 s backoff (the replay's
        # probe failed, and the breaker stayed open another recovery period). Giving an attempt
        # up after one quick retry, well within ``connect_wait_s``, lets every request that
        # finds no connection start a fresh attempt at once (a refused connect costs nothing).
        self.reconnect_timeout_s = RECONNECT_TIMEOUT_S
        self.pool: AsyncConnectionPool[Conn] | None = None
        self.backend_pids: set[int] = set()  # our pool's server processes (to skip own NOTIFYs)
        self.schema = ""
        self.retries = 0

    @property
    def where(self) -> str:
        return mask_url(self.dsn)

    async def _configure(self, conn: Conn) -> None:
        self.backend_pids.add(conn.info.backend_pid)
        self.reachable = True

    def acquire_timeout(self) -> float:
        """How long the next request may wait for a pooled connection (see ``__init__``)."""
        return self.timeout_s if self.reachable else self.connect_wait_s

    async def open(self) -> None:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            kwargs={"autocommit": True},
            configure=self._configure,
            open=False,
            timeout=self.timeout_s,
            reconnect_timeout=self.reconnect_timeout_s,
            name="self-learning-memory",
        )
        try:
            await pool.open(wait=True, timeout=self.timeout_s)
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise StorageUnavailableError(
                f"Could not connect to PostgreSQL at {self.where} within {self.timeout_s:.0f} s: "
                f"{exc}."
            ) from exc
        self.pool = pool
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    async def _migrate(self) -> None:
        async def run(conn: Conn) -> None:
            row = await (await conn.execute("SELECT current_schema()")).fetchone()
            if row is None or row[0] is None:
                raise StorageUnavailableError(
                    f"PostgreSQL at {self.where} has no current schema (check search_path)."
                )
            self.schema = str(row[0])
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (_MIGRATION_LOCK,)
            )
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
            done = await cur.fetchone()
            current = int(done[0]) if done else 0
            for version, sql in POSTGRES_MIGRATIONS:
                if version <= current:
                    continue
                await conn.execute(sql.encode())  # DDL only: no parameters
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                )
                log.info("PostgreSQL schema %s migrated to version %d", self.schema, version)

        await self.transaction(run, bump=False)

    async def drain(self) -> None:
        """Replace every pooled connection (their prepared statements go with them)."""
        if self.pool is not None:
            await self.pool.drain()

    def _pool(self) -> AsyncConnectionPool[Conn]:
        if self.pool is None:
            raise StorageUnavailableError("The PostgreSQL store is not open (call initialize()).")
        return self.pool

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn`` on an autocommit connection (each statement sees the latest commits)."""
        try:
            async with self._pool().connection(timeout=self.acquire_timeout()) as conn:
                return await fn(conn)
        except _OURS:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc

    async def read_snapshot(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn`` in a read-only REPEATABLE READ transaction (one consistent snapshot)."""

        async def run(conn: Conn) -> T:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return await fn(conn)

        return await self.transaction(run, bump=False)

    async def write(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        return await self.transaction(fn, bump=True)

    async def transaction(self, fn: Callable[[Conn], Awaitable[T]], *, bump: bool) -> T:
        delay = 0.01
        for attempt in range(8):
            try:
                async with (
                    self._pool().connection(timeout=self.acquire_timeout()) as conn,
                    conn.transaction(),
                ):
                    result = await fn(conn)
                    if bump:
                        await conn.execute(
                            "UPDATE data_version SET version = version + 1 WHERE shard = %s",
                            (random.randrange(VERSION_SHARDS),),
                        )
                    return result
            except _RETRIED as exc:
                self.retries += 1
                if attempt == 7:
                    raise StorageUnavailableError(
                        f"A PostgreSQL transaction kept conflicting with others: {exc}."
                    ) from exc
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)
            except _OURS:
                raise
            except Exception as exc:
                raise self._translate(exc) from exc
        raise AssertionError("unreachable")

    def _translate(self, exc: BaseException) -> StorageError:
        if isinstance(exc, pg_errors.IntegrityError):
            return DataIntegrityError(f"A database constraint failed: {exc}.")
        if isinstance(exc, pg_errors.DataError):
            return DataIntegrityError(f"PostgreSQL refused a value: {exc}.")
        if isinstance(exc, (PoolTimeout, psycopg.OperationalError, OSError)):
            # a connection lost or refused (not a pool busy for its full timeout)
            self.reachable = isinstance(exc, PoolTimeout) and self.reachable
            return StorageUnavailableError(f"PostgreSQL at {self.where} is unavailable: {exc}.")
        return StorageError(f"PostgreSQL at {self.where} failed: {exc}.")
