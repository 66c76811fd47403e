"""Issue 12, item 8: health tells the truth and does not change what it observes."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.flaky import FlakySQLite
from self_learning_memory.errors import StorageUnavailableError
from self_learning_memory.storage.circuit_breaker import CircuitBreaker
from self_learning_memory.storage.resilient import ResilientStorage
from self_learning_memory.storage.retry import RetryPolicy

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
