"""The asynchronous learning queue on a real store (embedded SQLite and PostgreSQL): completion
returns once the outcome is durable, jobs live in the durable store and survive a restart, depth
and stats are reported, and a full queue pushes learning back onto the caller instead of growing
or dropping work. The store is read through an independent connection (``Backend.rows``)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from backends.support import Backend
from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    PatternFilters,
    QueueConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from support.polling import poll_until

pytestmark = pytest.mark.integration

CTX = TaskContext(domain="data", language="python")


def queued(**overrides: object) -> MemoryConfig:
    return MemoryConfig(queue=QueueConfig(enabled=True, **overrides))  # type: ignore[arg-type]


async def record(memory: SelfLearningMemory, i: int):  # type: ignore[no-untyped-def]
    eid = await memory.start_episode(f"Load the CSV export number {i} into the warehouse", CTX)
    for n, tool in enumerate(["pandas", "validate_schema", "bulk_insert"], start=1):
        await memory.log_step(
            eid,
            ExecutionStep(
                step_number=n, tool=tool, action=f"{tool} the rows", result=SuccessResult()
            ),
        )
    return await memory.complete_episode(eid, SuccessOutcome(verdict=f"export {i} loaded"))


def learning_status(store: Backend, eid: uuid.UUID) -> tuple[object, ...]:
    """What the durable store holds for ``eid``, read through an independent connection."""
    rows = store.rows(
        "SELECT end_time IS NOT NULL, outcome_type, learning_status, reward IS NOT NULL "
        "FROM episodes WHERE episode_id = ?",
        (str(eid),),
    )
    assert len(rows) == 1
    return rows[0]


async def sequence_count(memory: SelfLearningMemory) -> int:
    found = await memory.list_patterns(PatternFilters(pattern_type="tool_sequence"))
    return max((p.occurrence_count for p, _ in found), default=0)


async def test_completion_is_durable_before_learning_and_jobs_survive_a_restart(
    backend: Backend,
) -> None:
    async with backend.open(queued()) as memory:
        assert memory.queue is not None
        await memory.queue.stop()  # no worker runs in this process: the jobs must wait
        ids = []
        for i in range(3):
            done = await record(memory, i)
            ids.append(done.episode_id)
            # returned after the durable write of the outcome, before any learning
            assert done.is_complete()
            assert done.reward is None
            assert done.reflection is None
            assert learning_status(backend, done.episode_id) == (1, "success", "queued", 0)
        assert len(backend.rows("SELECT episode_id FROM learning_jobs")) == 3
        stats = await memory.stats()
        assert stats.learning_queue is not None
        assert stats.learning_queue.current_queue_size == 3
        assert stats.learning_queue.total_enqueued == 3
        assert stats.learning_queue.total_processed == 0
        assert stats.learning_queue.active_workers == 0
        assert stats.completed == 3
        assert await memory.wait_for_learning(timeout=0.2) is False
        assert await sequence_count(memory) == 0

    # a process without workers leaves them queued
    async with backend.open() as memory:
        assert memory.queue is None
        assert (await memory.storage.learning_queue_depth()) == 3

    # a restarted process with workers learns from all of them
    async with backend.open(queued()) as memory:
        assert await memory.wait_for_learning(timeout=10)
        for eid in ids:
            assert learning_status(backend, eid) == (1, "success", "done", 1)
            episode = await memory.get_episode(eid)
            assert episode.reward is not None
            assert episode.reflection is not None
            assert episode.patterns
        assert await sequence_count(memory) == 3
        stats = await memory.stats()
        assert stats.learning_queue is not None
        assert stats.learning_queue.current_queue_size == 0
        assert stats.learning_queue.total_processed == 3
        assert stats.learning_queue.total_failed == 0
    assert backend.rows("SELECT episode_id FROM learning_jobs") == []


async def test_closing_with_work_in_flight_leaves_no_job_stuck(backend: Backend) -> None:
    """Close right after a burst of completions, while workers are busy; a restarted process
    must learn from every episode at once, not after the claim timeout of a dead claim."""
    config = queued(worker_count=2)  # default claim_timeout_s: 60 s
    async with backend.open(config) as memory:
        ids = [(await record(memory, i)).episode_id for i in range(20)]
    async with backend.open(config) as memory:
        # well under the 60 s claim timeout a dead claim would cost, with room for a loaded machine
        assert await memory.wait_for_learning(timeout=30), backend.rows(
            "SELECT episode_id, claimed_by, attempts FROM learning_jobs"
        )
        for eid in ids:
            assert learning_status(backend, eid)[2:] == ("done", 1)
        assert await sequence_count(memory) == 20


async def test_close_lets_the_job_in_flight_finish(backend: Backend) -> None:
    """Regression: close() cancelled a worker half-way through a job and left its claim in the
    store, so a restarted process could not learn from that episode for claim_timeout_s."""
    memory = backend.open(queued(worker_count=1))
    await memory.start()
    queue = memory.queue
    assert queue is not None
    in_flight = asyncio.Event()
    gate = asyncio.Event()
    learn = queue._process  # wrapped so the test knows a job is claimed and running

    async def held(eid: uuid.UUID) -> None:
        in_flight.set()
        await gate.wait()
        await learn(eid)

    queue._process = held
    done = await record(memory, 0)
    await asyncio.wait_for(in_flight.wait(), timeout=10)
    assert backend.rows("SELECT count(claimed_by) FROM learning_jobs") == [(1,)]
    closing = asyncio.create_task(memory.close())
    await poll_until(lambda: queue._stopping)  # close() has asked the workers to stop
    gate.set()
    await asyncio.wait_for(closing, timeout=10)
    # the job finished before the store closed: nothing is left claimed or queued
    assert learning_status(backend, done.episode_id) == (1, "success", "done", 1)
    assert backend.rows("SELECT episode_id FROM learning_jobs") == []


async def test_workers_learn_and_report_depth_and_stats(backend: Backend) -> None:
    async with backend.open(queued(worker_count=3)) as memory:
        ids = [(await record(memory, i)).episode_id for i in range(6)]
        assert await memory.wait_for_learning(timeout=10)
        stats = await memory.stats()
        q = stats.learning_queue
        assert q is not None
        assert q.enabled
        assert (q.total_enqueued, q.total_processed, q.total_failed) == (6, 6, 0)
        assert q.current_queue_size == 0
        assert q.total_inline_backpressure == 0
        assert q.active_workers == 3
        episodes = [await memory.get_episode(eid) for eid in ids]
        assert all(e.reward is not None for e in episodes)
        assert await sequence_count(memory) == 6


async def test_backpressure_learns_inline_when_the_queue_is_full(backend: Backend) -> None:
    async with backend.open(queued(max_queue_size=2)) as memory:
        assert memory.queue is not None
        await memory.queue.stop()  # nothing drains the queue: it fills up
        results = [await record(memory, i) for i in range(5)]
        # the first two are queued, the rest are learned by the caller: nothing dropped
        assert [r.reward is not None for r in results] == [False, False, True, True, True]
        assert [learning_status(backend, r.episode_id)[2] for r in results] == [
            "queued",
            "queued",
            "done",
            "done",
            "done",
        ]
        q = (await memory.stats()).learning_queue
        assert q is not None
        assert q.current_queue_size == 2  # bounded by max_queue_size
        assert q.total_enqueued == 2
        assert q.total_inline_backpressure == 3
        assert await sequence_count(memory) == 3

    async with backend.open(queued(max_queue_size=2)) as memory:
        assert await memory.wait_for_learning(timeout=10)
        assert await sequence_count(memory) == 5
        for r in results:
            assert (await memory.get_episode(r.episode_id)).reward is not None
