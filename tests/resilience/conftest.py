"""Fixtures shared by the resilience tests against the real PostgreSQL server: a schema per
test, dropped afterwards, and the loopback proxy in front of the server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from .pg import POSTGRES_DSN, require_postgres, target
from .proxy import TcpProxy


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = f"slm_res_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    p = TcpProxy(target())
    await p.start()
    yield p
    await p.stop()
