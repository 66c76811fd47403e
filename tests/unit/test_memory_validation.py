"""Bad input through the public SelfLearningMemory calls: the typed error, and nothing half-written.

These open a real memory through the ``backend`` fixture: embedded (SQLite + LMDB files in
pytest's tmp_path, which is fast) and PostgreSQL (a fresh schema; those variants are marked
``postgres`` and ``integration``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from backends.support import Backend
from self_learning_memory import (
    BatchConfig,
    ExecutionStep,
    FailureOutcome,
    InvalidStateError,
    MemoryConfig,
    NotFoundError,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    ValidationError,
)


@pytest.fixture
async def memory(backend: Backend) -> AsyncIterator[SelfLearningMemory]:
    async with backend.open() as m:
        yield m


def step(n: int, **fields: object) -> ExecutionStep:
    data: dict[str, object] = {
        "step_number": n,
        "tool": "edit",
        "action": f"change {n}",
        "result": SuccessResult(output="ok"),
    }
    data.update(fields)
    return ExecutionStep.model_validate(data)


async def stored_steps(memory: SelfLearningMemory, eid: uuid.UUID) -> list[int]:
    await memory.flush_steps(eid)
    return [s.step_number for s in (await memory.get_episode(eid)).steps]


@pytest.mark.parametrize(
    ("description", "problem", "limit"),
    [
        ("", "must not be empty", "at least 1 non-blank character"),
        ("  \n", "must not be empty", "at least 1 non-blank character"),
        ("x" * 10_001, "is 10001 bytes long", "10000 bytes"),
    ],
)
async def test_start_episode_rejects_bad_descriptions(
    memory: SelfLearningMemory, description: str, problem: str, limit: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        await memory.start_episode(description, TaskContext(), "testing")
    assert exc.value.field == "task_description"
    assert exc.value.problem == problem
    assert "'task_description'" in str(exc.value)
    assert f"(limit: {limit})" in str(exc.value)
    assert await memory.count_episodes() == 0


async def test_start_episode_rejects_unknown_task_type(memory: SelfLearningMemory) -> None:
    with pytest.raises(ValidationError) as exc:
        await memory.start_episode("Add a health endpoint", TaskContext(), "juggling")
    assert exc.value.field == "task_type"
    assert "'juggling' is not a task type" in str(exc.value)
    assert "code_generation" in str(exc.value)
    assert await memory.count_episodes() == 0


async def test_start_episode_rejects_bad_context(memory: SelfLearningMemory) -> None:
    with pytest.raises(ValidationError) as exc:
        await memory.start_episode("task", TaskContext(tags=["t"] * 51), "testing")
    assert exc.value.field == "context.tags"
    assert "(limit: 50 tags)" in str(exc.value)
    assert await memory.count_episodes() == 0


async def test_step_number_out_of_order(memory: SelfLearningMemory) -> None:
    eid = await memory.start_episode("task", task_type="testing")
    await memory.log_step(eid, step(1))
    await memory.log_step(eid, step(3))
    for bad in (3, 2):  # repeated, and going backwards (still buffered)
        with pytest.raises(ValidationError) as exc:
            await memory.log_step(eid, step(bad))
        assert exc.value.field == "step.step_number"
        assert f"{bad} is not after the last step 3" in str(exc.value)
        assert "(limit: > 3)" in str(exc.value)
    assert await stored_steps(memory, eid) == [1, 3]
    with pytest.raises(ValidationError, match=r"\(limit: > 3\)"):  # also after the flush
        await memory.log_step(eid, step(3))
    assert await stored_steps(memory, eid) == [1, 3]


@pytest.mark.parametrize(
    ("fields", "field", "limit"),
    [
        ({"parameters": {"content": "c" * 1_000_001}}, "step.parameters.content", "1000000 bytes"),
        (
            {"parameters": {"a": "x" * 600_000, "b": "y" * 600_000}},
            "step.parameters",
            "1000000 bytes",
        ),
        ({"result": SuccessResult(output="o" * 10_001)}, "step.result.output", "10000 bytes"),
    ],
)
async def test_log_step_rejects_oversized_parameters_and_observations(
    memory: SelfLearningMemory, fields: dict[str, object], field: str, limit: str
) -> None:
    eid = await memory.start_episode("task", task_type="testing")
    await memory.log_step(eid, step(1))
    with pytest.raises(ValidationError) as exc:
        await memory.log_step(eid, step(2, **fields))
    assert exc.value.field == field
    assert f"'{field}'" in str(exc.value)
    assert f"(limit: {limit})" in str(exc.value)
    assert await stored_steps(memory, eid) == [1]
    await memory.log_step(eid, step(2))  # the number was not used up by the rejected step
    assert await stored_steps(memory, eid) == [1, 2]


async def test_unknown_episode(memory: SelfLearningMemory) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError) as exc:
        await memory.complete_episode(missing, SuccessOutcome(verdict="done"))
    assert str(exc.value) == f"No episode with id {missing} exists."
    with pytest.raises(NotFoundError):
        await memory.log_step(missing, step(1))
    with pytest.raises(NotFoundError):
        await memory.get_episode(missing)
    with pytest.raises(ValidationError) as bad_id:
        await memory.complete_episode("not-a-uuid", SuccessOutcome(verdict="done"))
    assert bad_id.value.field == "episode_id"
    assert await memory.count_episodes() == 0


async def test_completing_twice_and_logging_after_completion(memory: SelfLearningMemory) -> None:
    eid = await memory.start_episode("task", task_type="testing")
    await memory.log_step(eid, step(1))
    first = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    patterns_before = len(await memory.list_patterns())
    with pytest.raises(InvalidStateError, match="already completed") as exc:
        await memory.complete_episode(eid, FailureOutcome(reason="changed my mind"))
    assert str(eid) in str(exc.value)
    with pytest.raises(InvalidStateError, match="is completed; steps cannot be added") as exc:
        await memory.log_step(eid, step(2))
    assert str(eid) in str(exc.value)
    after = await memory.get_episode(eid)
    assert after == first  # outcome, reward, reflection and steps untouched
    assert len(await memory.list_patterns()) == patterns_before


async def test_invalid_outcome_writes_nothing(memory: SelfLearningMemory) -> None:
    eid = await memory.start_episode("task", task_type="testing")
    with pytest.raises(ValidationError) as exc:
        await memory.complete_episode(eid, FailureOutcome(reason=""))
    assert exc.value.field == "outcome.reason"
    episode = await memory.get_episode(eid)
    assert not episode.is_complete()
    assert episode.outcome is None
    done = await memory.complete_episode(eid, FailureOutcome(reason="real reason"))
    assert done.is_complete()


async def test_oversized_episode_is_refused_at_log_time(memory: SelfLearningMemory) -> None:
    eid = await memory.start_episode("task", task_type="testing")
    half_mb = "x" * 490_000
    for n in range(1, 10):  # 9 steps of ~0.98 MB parameters: ~8.8 MB of JSON
        await memory.log_step(eid, step(n, parameters={"a": half_mb, "b": half_mb}))
    with pytest.raises(ValidationError) as exc:  # the 10th would leave no room for the outcome
        await memory.log_step(eid, step(10, parameters={"a": half_mb, "b": half_mb}))
    assert exc.value.field == "episode"
    assert "(limit: 10000000 bytes)" in str(exc.value)
    done = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert len(done.steps) == 9


async def test_oversized_episode_is_rejected_at_completion(memory: SelfLearningMemory) -> None:
    """Steps written past log_step (as an older version could) still cannot complete an
    episode over 10 MB; the episode is left as it was."""
    eid = await memory.start_episode("task", task_type="testing")
    half_mb = "x" * 490_000
    steps = [step(n, parameters={"a": half_mb, "b": half_mb}) for n in range(1, 12)]
    await memory.storage.append_steps(eid, steps)  # ~10.8 MB of JSON, behind log_step's back
    with pytest.raises(ValidationError) as exc:
        await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert exc.value.field == "episode"
    assert "(limit: 10000000 bytes)" in str(exc.value)
    episode = await memory.get_episode(eid)
    assert not episode.is_complete()
    assert len(episode.steps) == 11


@pytest.mark.parametrize(
    "batch", [BatchConfig(), BatchConfig.manual_only()], ids=["auto", "manual"]
)
async def test_more_than_1000_steps(backend: Backend, batch: BatchConfig) -> None:
    # "manual" keeps all 1,000 steps buffered: unflushed steps must count toward the limit
    async with backend.open(MemoryConfig(batch=batch)) as memory:
        eid = await memory.start_episode("long task", task_type="testing")
        for n in range(1, 1001):
            await memory.log_step(eid, ExecutionStep(step_number=n, tool="t", action="a"))
        with pytest.raises(ValidationError) as exc:
            await memory.log_step(eid, ExecutionStep(step_number=1001, tool="t", action="a"))
        assert exc.value.field == "steps"
        assert "already has 1000 steps" in str(exc.value)
        assert "(limit: 1000 steps)" in str(exc.value)
        assert len(await stored_steps(memory, eid)) == 1000
        with pytest.raises(ValidationError, match=r"limit: 1000 steps"):  # still, after a flush
            await memory.log_step(eid, ExecutionStep(step_number=1002, tool="t", action="a"))
        assert (await stored_steps(memory, eid))[-1] == 1000
