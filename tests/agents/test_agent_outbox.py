"""Agent executions through the resilience wrapper: completions of episodes with an agent made
while the primary is down are journaled, and their replay writes each execution exactly once
(also when an entry is applied again, as after a crash); a direct record_agent_execution is not
journaled and fails while the primary is down, naming a recoverable error."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.flaky import FlakySQLite
from resilience.test_outbox import open_memory, step
from self_learning_memory import FailureOutcome, SelfLearningMemory, SuccessOutcome
from self_learning_memory.errors import SelfLearningMemoryError


async def _record(memory: SelfLearningMemory, i: int) -> None:
    eid = await memory.start_episode(f"offline task {i}", agent="offline-bot")
    await memory.log_step(eid, step(1))
    outcome = SuccessOutcome(verdict="ok") if i % 2 == 0 else FailureOutcome(reason="no")
    await memory.complete_episode(eid, outcome)


async def test_journaled_completions_write_each_execution_once(tmp_path: Path) -> None:
    memory, flaky, wrapped = open_memory(tmp_path)
    async with memory:
        flaky.down = True
        for i in range(4):
            await _record(memory, i)
        with pytest.raises(SelfLearningMemoryError) as refused:
            await memory.record_agent_execution("offline-bot", True, 1.0)
        assert refused.value.recoverable
        assert wrapped.outbox is not None
        entries = wrapped.outbox.peek(100)
        flaky.down = False
        assert await wrapped.wait_replayed(10)
        assert wrapped.replayer is not None
        for entry in entries:  # again, as after a crash between commit and dequeue
            await wrapped.replayer.apply(entry)
        metrics = await memory.agent_metrics()
    async with FlakySQLite(tmp_path / "memory.db") as primary:
        found = await primary.agent_aggregates(None, 3_600_000_000, metrics.generated_at)
    assert [(t.agent, t.executions, t.successes, t.steps) for t in found.totals] == [
        ("offline-bot", 4, 2, 4)
    ]
    assert (metrics.total_executions, metrics.successful_executions) == (4, 2)
