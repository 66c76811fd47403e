"""The breaker's and the retry policy's state machines, against a real SQLite store that fails
on command (``flaky.FlakySQLite``)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from self_learning_memory import Episode, NotFoundError, ValidationError
from self_learning_memory.errors import CircuitOpenError, StorageUnavailableError
from self_learning_memory.resilience.circuit_breaker import CircuitBreaker
from self_learning_memory.resilience.resilient import ResilientStorage
from self_learning_memory.resilience.retry import RetryPolicy
from support.polling import poll_until

from .flaky import FlakySQLite

FAST = RetryPolicy(max_attempts=3, base_s=0.001, max_delay_s=0.004, jitter_s=0.001, budget_s=1.0)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    flaky = FlakySQLite(tmp_path / "m.db")
    # 1 s: long enough that a stalled CI machine does not turn "open" into "half_open" between
    # two lines of a test; tests that need half-open wait for it (poll_until)
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout_s=1.0, half_open_max_calls=1)
    wrapped = ResilientStorage(flaky, policy=FAST, breaker=breaker, call_timeout_s=5.0)
    await wrapped.initialize()
    yield flaky, wrapped
    flaky.down = False
    await wrapped.close()


async def test_defaults_are_the_reference_values() -> None:
    breaker = CircuitBreaker()
    assert (breaker.failure_threshold, breaker.recovery_timeout_s) == (5, 30.0)
    assert RetryPolicy().base_s == 0.1
    assert RetryPolicy().multiplier == 2.0
    assert breaker.current_state == "closed"


async def test_opens_after_five_recoverable_failures_and_refuses_without_calling(
    tmp_path: Path,
) -> None:
    # a long recovery: on a loaded machine 0.2 s can pass between two attempts, and the breaker
    # would already be half-open (and let a probe through) when the test expects it open
    flaky = FlakySQLite(tmp_path / "m.db")
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout_s=60.0, half_open_max_calls=1)
    wrapped = ResilientStorage(flaky, policy=FAST, breaker=breaker, call_timeout_s=5.0)
    await wrapped.initialize()
    try:
        await _opens_after_five(flaky, wrapped)
    finally:
        flaky.down = False
        await wrapped.close()


async def _opens_after_five(flaky: FlakySQLite, wrapped: ResilientStorage) -> None:
    flaky.down = True
    with pytest.raises(StorageUnavailableError):  # 3 attempts, all counted
        await wrapped.stats()
    assert wrapped.breaker.current_state == "closed"
    assert wrapped.retries == 2
    with pytest.raises(CircuitOpenError):  # attempts 4 and 5 open it; the 6th is refused
        await wrapped.stats()
    status = wrapped.breaker.status()
    assert status["state"] == "open"
    assert status["failures"] == 5
    assert status["total_opened"] == 1
    assert status["opened_at"] is not None
    calls = flaky.calls
    with pytest.raises(CircuitOpenError):
        await wrapped.stats()
    assert flaky.calls == calls  # refused without touching the store
    assert wrapped.breaker.status()["rejected"] >= 2


async def test_answers_from_the_store_never_open_it(store) -> None:  # type: ignore[no-untyped-def]
    _flaky, wrapped = store
    for _ in range(20):
        with pytest.raises(NotFoundError):
            await wrapped.append_steps(uuid.uuid4(), [])
    assert wrapped.breaker.current_state == "closed"
    assert wrapped.retries == 0  # never retried either
    assert wrapped.breaker.status()["failures"] == 0


async def test_half_open_limits_probes_then_closes_on_success(store) -> None:  # type: ignore[no-untyped-def]
    flaky, wrapped = store
    flaky.down = True
    for _ in range(2):
        with pytest.raises(StorageUnavailableError):
            await wrapped.stats()
    assert wrapped.breaker.current_state == "open"
    flaky.down = False
    await poll_until(
        lambda: wrapped.breaker.current_state == "half_open",
        timeout=5.0,
        message=wrapped.breaker.status,
    )
    gate = asyncio.Event()
    in_flight = asyncio.Event()
    real_stats = flaky.stats

    async def slow_stats():  # type: ignore[no-untyped-def]
        in_flight.set()
        await gate.wait()
        return await real_stats()

    flaky.stats = slow_stats  # type: ignore[method-assign]
    probe = asyncio.create_task(wrapped.stats())
    await asyncio.wait_for(in_flight.wait(), 5.0)  # the probe holds the half-open slot
    with pytest.raises(CircuitOpenError, match="probe"):  # the second caller is refused
        await wrapped.stats()
    gate.set()
    await probe
    assert wrapped.breaker.current_state == "closed"
    assert wrapped.breaker.status()["consecutive_failures"] == 0


async def test_failure_while_half_open_reopens(store) -> None:  # type: ignore[no-untyped-def]
    flaky, wrapped = store
    flaky.down = True
    for _ in range(2):
        with pytest.raises(StorageUnavailableError):
            await wrapped.stats()
    await poll_until(
        lambda: wrapped.breaker.current_state == "half_open",
        timeout=5.0,
        message=wrapped.breaker.status,
    )
    with pytest.raises(StorageUnavailableError):
        await wrapped.stats()
    assert wrapped.breaker.current_state == "open"
    assert wrapped.breaker.status()["total_opened"] == 2


async def test_retry_recovers_a_transient_failure(store) -> None:  # type: ignore[no-untyped-def]
    flaky, wrapped = store
    flaky.fail_next = 2
    stats = await wrapped.stats()
    assert stats.episodes == 0
    assert wrapped.retries == 2
    assert wrapped.breaker.current_state == "closed"


async def test_a_retried_create_is_applied_once(store) -> None:  # type: ignore[no-untyped-def]
    """The first attempt reaches the store but its answer is lost: the retry must not insert
    the episode twice (it uses the idempotent form)."""
    flaky, wrapped = store
    episode = Episode(task_description="write the changelog", task_type="other")
    real_create = flaky.create_episode

    async def create_then_lose_answer(ep: Episode) -> None:
        await real_create(ep)
        flaky.create_episode = real_create  # type: ignore[method-assign]
        raise StorageUnavailableError("The answer was lost on the way back.")

    flaky.create_episode = create_then_lose_answer  # type: ignore[method-assign]
    await wrapped.create_episode(episode)
    assert wrapped.retries == 1
    assert (await flaky.get_episode_state(episode.episode_id)) is not None


async def test_retry_stops_within_the_budget(tmp_path: Path) -> None:
    flaky = FlakySQLite(tmp_path / "m.db")
    policy = RetryPolicy(max_attempts=100, base_s=0.05, max_delay_s=0.05, jitter_s=0, budget_s=0.3)
    breaker = CircuitBreaker(failure_threshold=1000, recovery_timeout_s=1)
    async with ResilientStorage(flaky, policy=policy, breaker=breaker) as wrapped:
        flaky.down = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StorageUnavailableError):
            await wrapped.stats()
        assert loop.time() - started < 1.0
        assert 3 <= wrapped.retries < 10
        flaky.down = False


async def test_validation_errors_are_raised_not_queued(tmp_path: Path) -> None:
    from self_learning_memory.resilience.outbox import Outbox

    flaky = FlakySQLite(tmp_path / "m.db")
    outbox = Outbox(tmp_path / "outbox.db")
    async with ResilientStorage(flaky, outbox=outbox, policy=FAST) as wrapped:
        episode = Episode(task_description="one", task_type="other")
        await wrapped.create_episode(episode)
        from self_learning_memory import ExecutionStep

        await wrapped.append_steps(
            episode.episode_id, [ExecutionStep(step_number=2, tool="t", action="a")]
        )
        with pytest.raises(ValidationError):
            await wrapped.append_steps(
                episode.episode_id, [ExecutionStep(step_number=1, tool="t", action="a")]
            )
        assert (await wrapped.resilience_status())["outbox"]["pending"] == 0
