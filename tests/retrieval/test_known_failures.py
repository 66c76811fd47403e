"""check_known_failures: similar failures, what went wrong, and the recoveries that apply."""

from __future__ import annotations

import pytest

from backends.support import Backend
from self_learning_memory import SelfLearningMemory, TaskContext, ValidationError
from self_learning_memory.demo.__main__ import load_sample, record

pytestmark = pytest.mark.integration


@pytest.fixture
async def memory(backend: Backend):  # type: ignore[no-untyped-def]
    async with backend.open() as m:
        await record(m, load_sample())
        yield m


async def test_similar_failure_is_reported_with_what_went_wrong(memory: SelfLearningMemory) -> None:
    ctx = TaskContext(domain="web-api", language="python")
    warning = await memory.check_known_failures("Add rate limiting to the orders API", ctx)
    assert [f.episode.task_description for f in warning.failures] == [
        "Add rate limiting to the public FastAPI search endpoint"
    ]
    wrong = warning.failures[0].what_went_wrong
    assert wrong[0].startswith("Failed: Rate limiter is per-process")
    assert "'run_tests' failed with: AssertionError: expected 429, got 200" in wrong
    assert warning.failures[0].provenance  # says why it was found
    assert warning.summary[0] == "1 similar past attempt(s) did not succeed:"


async def test_recovered_errors_of_similar_successes_bring_their_recoveries(
    memory: SelfLearningMemory,
) -> None:
    ctx = TaskContext(domain="database", language="sql")
    warning = await memory.check_known_failures(
        "Run the migration creating an index concurrently", ctx
    )
    assert warning.failures == []
    assert [m.pattern.recovery_steps for m in warning.recoveries] == [  # type: ignore[union-attr]
        ["edit_file: mark the migration as non-transactional"]
    ]
    assert warning.recoveries[0].pattern.occurrence_count == 2
    assert "non-transactional" in warning.heuristics[0].heuristic.action
    assert any(
        line.startswith("Known recovery for 'ERROR: CREATE INDEX") for line in warning.summary
    )


async def test_unrelated_task_gets_no_warning(memory: SelfLearningMemory) -> None:
    warning = await memory.check_known_failures("write a haiku about autumn leaves")
    assert warning.failures == []
    assert warning.recoveries == []
    assert warning.summary == ["No similar past failures are recorded."]


async def test_bad_input_is_rejected(memory: SelfLearningMemory) -> None:
    with pytest.raises(ValidationError, match="limit"):
        await memory.check_known_failures("x", limit=0)
    with pytest.raises(ValidationError, match="query"):
        await memory.check_known_failures("   ")
