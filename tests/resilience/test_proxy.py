"""The fault-injection proxy itself, against the raw PostgreSQL server (psycopg, no library)."""

from __future__ import annotations

import time

import psycopg
import pytest

from .pg import POSTGRES_DSN, require_postgres, target
from .proxy import TcpProxy

pytestmark = pytest.mark.integration


def via(port: int) -> str:
    from .pg import dsn_for

    return dsn_for("public", port)


async def test_forwards_delays_cuts_and_refuses() -> None:
    require_postgres()
    assert POSTGRES_DSN
    proxy = TcpProxy(target())
    await proxy.start()
    try:
        conn = await psycopg.AsyncConnection.connect(via(proxy.port), autocommit=True)
        cur = await conn.execute("SELECT 41 + 1")
        assert await cur.fetchone() == (42,)
        proxy.delay_s = 0.2
        started = time.monotonic()
        await conn.execute("SELECT 1")
        assert time.monotonic() - started >= 0.4  # both directions wait
        proxy.delay_s = 0.0
        proxy.cut()
        with pytest.raises(psycopg.OperationalError):
            await conn.execute("SELECT 1")
        await conn.close()
        await proxy.refuse()
        with pytest.raises(psycopg.OperationalError):
            await psycopg.AsyncConnection.connect(via(proxy.port), connect_timeout=2)
        await proxy.restore()
        async with await psycopg.AsyncConnection.connect(via(proxy.port)) as again:
            cur = await again.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
    finally:
        await proxy.stop()
