"""Issue 12, item 8: health tells the truth and does not change what it observes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from resilience.flaky import FlakySQLite
from self_learning_memory.config import MemoryConfig
from self_learning_memory.core.health_status import summarise_health
from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.errors import StorageUnavailableError
from self_learning_memory.resilience.circuit_breaker import CircuitBreaker
from self_learning_memory.resilience.resilient import ResilientStorage, resilient_from_config
from self_learning_memory.resilience.retry import RetryPolicy
from self_learning_memory.storage.factory import open_postgres

FAST = RetryPolicy(max_attempts=1, base_s=0.001, max_delay_s=0.004, jitter_s=0.001, budget_s=1.0)


async def test_faults_health_polling_does_not_keep_a_failing_breaker_closed(
    tmp_path: Path,
) -> None:
    flaky = FlakySQLite(tmp_path / "m.db")
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout_s=60.0)
    store = ResilientStorage(flaky, policy=FAST, breaker=breaker, call_timeout_s=5.0)
    await store.initialize()
    try:
        flaky.down = True
        for _ in range(3):
            with pytest.raises(StorageUnavailableError):
                await store.stats()
            report = await store.health_check()  # a poll between two failing calls
            assert not report.healthy
        # three counted failures in a row: the polls in between must not have reset the count
        assert breaker.current_state == "open", breaker.status()
        assert breaker.status()["consecutive_failures"] >= 3
    finally:
        flaky.down = False
        await store.close()


async def test_faults_health_a_failing_call_gives_up_within_the_retry_budget(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    """Defaults, a PostgreSQL primary that refuses connections (a free loopback port): the
    call fails within the retry budget (measured: 10.0 s before, the pool's own connect
    timeout; 5.0 s after). The bound comes from the config, with one backoff of slack."""
    config = MemoryConfig()
    config.resilience.outbox_enabled = False
    budget_s = config.resilience.retry_budget_ms / 1000
    bound_s = budget_s + config.resilience.retry_max_delay_ms / 1000 + 1.0
    dsn = f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/test"
    store = resilient_from_config(open_postgres(dsn, config), config.resilience, tmp_path)
    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailableError):
            await store.get_episode(uuid.uuid4())
        elapsed = time.monotonic() - started
    finally:
        await store.close()
    assert elapsed < bound_s, f"{elapsed:.1f} s against a {budget_s} s budget"


async def test_faults_health_openai_without_a_key_is_not_semantic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: embeddings healthy (nothing checked the key) while every query ran lexical."""
    monkeypatch.delenv("SLM_TEST_NO_SUCH_KEY", raising=False)
    config = MemoryConfig()
    config.embeddings.provider = "openai"
    config.embeddings.api_key_env = "SLM_TEST_NO_SUCH_KEY"
    async with SelfLearningMemory.open(tmp_path, config=config) as memory:
        reports = await memory.health()
        embeddings = reports["embeddings"]
        assert not embeddings.healthy
        assert "SLM_TEST_NO_SUCH_KEY" in str(embeddings.details["error"])
        summary = summarise_health(reports)
        assert summary.status == "degraded"  # optional: retrieval is lexical, not broken


async def test_faults_health_turso_serving_its_local_file_is_degraded(tmp_path: Path) -> None:
    """Was: overall healthy while the store served an offline file (remote unreachable)."""
    pytest.importorskip("libsql")
    from self_learning_memory.storage.turso import TursoStorage

    storage = TursoStorage(
        tmp_path / "replica.db", sync_url="libsql://127.0.0.1:9", auth_token="token"
    )
    async with SelfLearningMemory(storage) as memory:
        assert storage.degraded
        summary = summarise_health(await memory.health())
        primary = next(c for c in summary.components if c.name == "primary_storage")
        assert primary.status == "degraded"
        assert primary.reason is not None
        assert primary.reason.startswith("degraded: ")
        assert summary.status == "degraded"
