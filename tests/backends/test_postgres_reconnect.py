"""Regression: after an outage of T seconds the PostgreSQL pool served queries again only about
T/2 seconds after the server came back (psycopg_pool's reconnect attempt waits 1, 2, 4, 8 ...
s and blocks any other attempt until its 300 s ``reconnect_timeout``), which held back the
outbox replay (20 s after a 40 s outage). The pool now gives up an attempt after
``RECONNECT_TIMEOUT_S`` (one quick retry) so the next request starts a fresh one: the first
request after the server's return is served."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from resilience.proxy import TcpProxy  # tests/resilience (tests/ is on sys.path)
from self_learning_memory.errors import StorageError
from self_learning_memory.storage.postgres.connection import PostgresConnection

from .support import POSTGRES_DSN, postgres_available

pytestmark = pytest.mark.integration
OUTAGE_S = 16.0  # the old backoff's attempts fall at 1, 3, 7, 15, 31 s: the next one 15 s late


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    postgres_available()
    parts = urlsplit(POSTGRES_DSN)
    p = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    await p.start()
    yield p
    await p.stop()


async def select_one(db: PostgresConnection) -> None:
    await db.read(lambda conn: conn.execute("SELECT 1"))


async def test_queries_are_served_soon_after_a_long_outage(proxy: TcpProxy) -> None:
    parts = urlsplit(POSTGRES_DSN)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    netloc = f"{auth}127.0.0.1:{proxy.port}"
    dsn = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    db = PostgresConnection(dsn, timeout_s=1.0)
    await db.open()
    try:
        await proxy.refuse()
        end = time.monotonic() + OUTAGE_S
        while time.monotonic() < end:  # a caller probing now and then, as the replayer does
            with pytest.raises(StorageError):
                await select_one(db)
            await asyncio.sleep(0.5)
        await proxy.restore()
        back = time.monotonic()
        while True:
            try:
                await select_one(db)
                break
            except StorageError:
                assert time.monotonic() - back < 5, "the pool did not reconnect within 5 s"
                await asyncio.sleep(0.05)
    finally:
        await db.close()


async def test_a_request_after_a_lost_connection_waits_only_the_connect_wait(
    proxy: TcpProxy,
) -> None:
    """The first write of an outage is journaled after ``connect_wait_s``, not after the pool's
    full timeout: once a connection is lost, a request waits that long for a new one."""
    parts = urlsplit(POSTGRES_DSN)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    netloc = f"{auth}127.0.0.1:{proxy.port}"
    dsn = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    db = PostgresConnection(dsn, timeout_s=30.0)
    db.connect_wait_s = 0.3
    await db.open()
    try:
        assert db.acquire_timeout() == 30.0  # reachable: busy connections are waited for
        await proxy.refuse()
        with pytest.raises(StorageError):
            await select_one(db)  # the pooled connection is cut
        assert db.acquire_timeout() == 0.3
        began = time.monotonic()
        with pytest.raises(StorageError):
            await select_one(db)  # no connection can be made: bounded by the connect wait
        assert time.monotonic() - began < 10.0  # far below the pool's 30 s timeout
        await proxy.restore()
        for _ in range(100):  # the pool connects again; the full timeout applies again
            try:
                await select_one(db)
                break
            except StorageError:
                await asyncio.sleep(0.1)
        assert db.acquire_timeout() == 30.0
    finally:
        await db.close()


async def test_the_first_request_after_the_return_is_served(proxy: TcpProxy) -> None:
    """Requests during the outage leave no connection attempt asleep in a backoff: the first
    request once the server is back connects at once (it used to wait for the pool's next
    attempt, 1-2 s away, and fail after its connect wait, so the replay's probe failed and the
    breaker stayed open another recovery period)."""
    parts = urlsplit(POSTGRES_DSN)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    netloc = f"{auth}127.0.0.1:{proxy.port}"
    dsn = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    db = PostgresConnection(dsn, timeout_s=10.0)
    assert db.reconnect_timeout_s < db.connect_wait_s
    await db.open()
    try:
        await proxy.refuse()
        end = time.monotonic() + 3.0
        while time.monotonic() < end:  # requests now and then: connection attempts refused
            with pytest.raises(StorageError):
                await select_one(db)
            await asyncio.sleep(0.2)
        await proxy.restore()
        began = time.monotonic()
        await select_one(db)  # no retry: the first request after the return
        assert time.monotonic() - began < db.connect_wait_s
    finally:
        await db.close()
