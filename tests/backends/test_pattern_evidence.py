"""A pattern's evidence (its newest source episodes) is the same whether the store ranks all of
the pattern's links or walks the newest episodes (the plan for patterns seen in many episodes,
``storage/sql/queries.py``)."""

from __future__ import annotations

import pytest

from self_learning_memory import (
    ExecutionStep,
    FailureOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
)
from self_learning_memory.storage.sql import queries

from .support import Backend

pytestmark = pytest.mark.integration


async def test_evidence_is_the_same_by_ranking_and_by_walking(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with backend.open() as memory:
        ids = []
        for i in range(7):
            ctx = TaskContext(domain="web-api", language="python")
            eid = await memory.start_episode(f"fix bug {i}", ctx, TaskType.DEBUGGING)
            for n, tool in enumerate(("grep", "editor", "pytest"), start=1):
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n, tool=tool, action="x", result=SuccessResult(output="ok")
                    ),
                )
            outcome = SuccessOutcome(verdict="ok") if i % 3 else FailureOutcome(reason="no")
            await memory.complete_episode(eid, outcome)
            ids.append(eid)
        pairs = await memory.list_patterns(limit=50)
        assert pairs
        pattern_ids = [p.id for p, _ in pairs]
        ranked = await memory.pattern_evidence(pattern_ids, 3)
        monkeypatch.setattr(queries, "WALK_ABOVE", 0)
        walked = await memory.pattern_evidence(pattern_ids, 3)
        assert walked == ranked
        newest_first = list(reversed(ids))
        busiest = max(ranked.values(), key=len)
        assert len(busiest) == 3
        assert busiest == [i for i in newest_first if i in busiest]  # newest first
        assert ranked[pattern_ids[0]]  # every listed pattern has evidence
