"""Fixtures for running the library's tests on every durable store (as sqlite-utils re-runs its
suite per mode): ``backend`` is parametrised over the embedded SQLite store and PostgreSQL, each
test on PostgreSQL in a fresh schema of its own. See ``tests/backends/support.py``.

Markers: ``postgres`` (and ``integration``) select the PostgreSQL variants (``-m "not postgres"``
runs without a server); ``sqlite_only(reason)`` marks a test that exercises the embedded layout itself and so
cannot run on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.support import BACKENDS, Backend, postgres_schema


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: runs against the PostgreSQL test server (MEMORY_TEST_POSTGRES_DSN)"
    )
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): exercises the embedded SQLite/LMDB layout itself; not run on "
        "PostgreSQL",
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A postgresql:// URL whose tables live in a new schema, dropped after the test."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param(
            kind,
            marks=[pytest.mark.postgres, pytest.mark.integration] if kind == "postgres" else [],
        )
        for kind in BACKENDS
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The durable store under test: embedded SQLite in ``tmp_path/data``, or PostgreSQL in a
    fresh schema with the local cache in ``tmp_path/data``."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        return Backend("postgres", url, tmp_path / "data")
    return Backend("sqlite", None, tmp_path / "data")
