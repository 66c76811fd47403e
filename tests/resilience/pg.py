"""PostgreSQL for the resilience tests: the test server (``MEMORY_TEST_POSTGRES_DSN``), a schema
per test, DSNs through the proxy, and the memory built the same way in the test and in a child
process."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.resilience.circuit_breaker import CircuitBreaker
from self_learning_memory.resilience.outbox import Outbox
from self_learning_memory.resilience.resilient import ResilientStorage
from self_learning_memory.resilience.retry import RetryPolicy
from self_learning_memory.storage.lmdb_cache import EpisodeCache

POSTGRES_DSN = os.environ.get(
    "MEMORY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def require_postgres() -> None:
    """Skip when the server is unreachable, but fail under CI=true."""
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        message = f"PostgreSQL at {POSTGRES_DSN} is unreachable: {exc}".strip()
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


def target() -> tuple[str, int]:
    parts = urlsplit(POSTGRES_DSN)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def dsn_for(schema: str, port: int | None = None) -> str:
    """The test DSN, its sessions in ``schema``, through ``port`` on loopback if given."""
    parts = urlsplit(POSTGRES_DSN)
    netloc = parts.netloc
    if port is not None:
        auth = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
        netloc = f"{auth}127.0.0.1:{port}"
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def build_memory(dsn: str, data_dir: Path) -> tuple[SelfLearningMemory, ResilientStorage]:
    from self_learning_memory.storage.postgres import PostgresStorage

    primary = PostgresStorage(dsn, min_size=1, max_size=4, connect_timeout_s=0.5, listen=False)
    cache = EpisodeCache(data_dir / "cache")
    wrapped = ResilientStorage(
        primary,
        outbox=Outbox(data_dir / "outbox.db"),
        policy=RetryPolicy(max_attempts=3, base_s=0.01, max_delay_s=0.05, jitter_s=0.01),
        breaker=CircuitBreaker(failure_threshold=5, recovery_timeout_s=1.0),
        call_timeout_s=3.0,
        replay_interval_s=0.05,
        cache=cache,
    )
    memory = SelfLearningMemory(wrapped, config=MemoryConfig(), cache=cache, data_dir=data_dir)
    return memory, wrapped
