"""The library's core behaviours on every durable store: one ``backend`` fixture, parametrised
over the embedded SQLite store and PostgreSQL (as sqlite-utils re-runs its suite per mode).

PostgreSQL is the real server named by ``MEMORY_TEST_POSTGRES_DSN`` (default: loopback,
database ``test``). Each test gets its own freshly created schema (``search_path`` set through
the DSN's ``options``), dropped afterwards. If the server cannot be reached the PostgreSQL
tests fail loudly under ``CI=true`` and are skipped otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from self_learning_memory import MemoryConfig, SelfLearningMemory

POSTGRES_DSN = os.environ.get(
    "MEMORY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
_reachable: bool | None = None
_reason = ""


def postgres_available() -> bool:
    """Whether the test server answers (checked once per test process); fails under CI."""
    global _reachable, _reason
    if _reachable is None:
        try:
            with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _reachable = True
        except psycopg.Error as exc:
            _reachable, _reason = False, str(exc).strip()
    if not _reachable:
        message = f"PostgreSQL at {POSTGRES_DSN} is unreachable: {_reason}"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return True


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` (a postgresql:// URL) whose sessions use ``schema`` first."""
    parts = urlsplit(dsn)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A postgresql:// URL whose tables live in a new schema, dropped after the test."""
    postgres_available()
    schema = f"slm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(POSTGRES_DSN, schema)
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Backend:
    kind: str  # sqlite | postgres
    url: str | None  # None: embedded in data_dir
    data_dir: Path

    def config(self, **sections: Any) -> MemoryConfig:
        """A config on this store; keyword arguments replace whole sections (as dicts)."""
        data: dict[str, Any] = {"storage": {"url": self.url}}
        for name, value in sections.items():
            data[name] = {**data.get(name, {}), **value}
        return MemoryConfig.model_validate(data)

    def open(self, **sections: Any) -> SelfLearningMemory:
        return SelfLearningMemory.open(self.data_dir, config=self.config(**sections))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        return Backend("postgres", url, tmp_path / "data")
    return Backend("sqlite", None, tmp_path / "data")


@pytest.fixture
async def memory(backend: Backend) -> AsyncIterator[SelfLearningMemory]:
    """An opened memory on the parametrised store (learning inline, no embeddings)."""
    async with backend.open() as opened:
        yield opened
