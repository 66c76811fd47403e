"""Faults of issue 12 in the durable store's inputs: step values too large for the store's
integer columns (item 2, validation part) and lone surrogates in text fields (item 9).

Both are refused by ``log_step``/``start_episode`` with a ValidationError naming the field
and the limit, on SQLite and PostgreSQL, and the valid steps buffered with a refused one
still reach the store.
"""

from __future__ import annotations

import pytest

from backends.support import Backend
from self_learning_memory import ExecutionStep, SuccessOutcome, SuccessResult
from self_learning_memory.errors import ValidationError
from self_learning_memory.model import validation as v

pytestmark = pytest.mark.integration


def step(n: int, **fields: object) -> ExecutionStep:
    data: dict[str, object] = {
        "step_number": n,
        "tool": "shell",
        "action": f"command {n}",
        "result": SuccessResult(output="ok"),
    }
    data.update(fields)
    return ExecutionStep.model_validate(data)


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("latency_ms", 2**70, v.MAX_LATENCY_MS),
        ("tokens_used", 2**64, v.MAX_TOKENS_USED),
        ("step_number", 2**70, v.MAX_STEP_NUMBER),
        ("step_number", 2**31, v.MAX_STEP_NUMBER),
    ],
)
async def test_too_large_step_value_is_refused_and_buffer_kept(
    backend: Backend, field: str, value: int, limit: int
) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("Measure a step too large for the store")
        await memory.log_step(eid, step(1))
        with pytest.raises(ValidationError) as caught:
            await memory.log_step(eid, step(2, **{field: value}))
        assert caught.value.field == f"step.{field}"
        assert str(limit) in str(caught.value)
        await memory.log_step(eid, step(2))
        episode = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert [s.step_number for s in episode.steps] == [1, 2]
    rows = backend.rows("SELECT count(*) FROM steps WHERE episode_id = ?", (str(eid),))
    assert int(rows[0][0]) == 2


async def test_largest_storable_values_round_trip(backend: Backend) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("Store the largest values")
        big = step(v.MAX_STEP_NUMBER, latency_ms=v.MAX_LATENCY_MS, tokens_used=v.MAX_TOKENS_USED)
        await memory.log_step(eid, big)
        episode = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    (stored,) = episode.steps
    assert stored.latency_ms == v.MAX_LATENCY_MS
    assert stored.tokens_used == v.MAX_TOKENS_USED


async def test_lone_surrogate_in_description_is_a_validation_error(backend: Backend) -> None:
    async with backend.open() as memory:
        with pytest.raises(ValidationError) as caught:
            await memory.start_episode("fix the \ud800 parser")
    assert caught.value.field == "task_description"
    assert "surrogate" in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"action": "run \udfff"}, "step.action"),
        ({"tool": "sh\ud800"}, "step.tool"),
        ({"parameters": {"arg": "x\ud83d"}}, "step.parameters"),
        ({"result": SuccessResult(output="out \ud800")}, "step.result.output"),
    ],
)
async def test_lone_surrogate_in_step_is_a_validation_error(
    backend: Backend, fields: dict[str, object], name: str
) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("Log a step with a lone surrogate")
        await memory.log_step(eid, step(1))
        with pytest.raises(ValidationError) as caught:
            await memory.log_step(eid, step(2, **fields))
        assert caught.value.field == name
        episode = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert [s.step_number for s in episode.steps] == [1]


async def test_lone_surrogate_in_verdict_is_a_validation_error(backend: Backend) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("Complete with a lone surrogate")
        with pytest.raises(ValidationError) as caught:
            await memory.complete_episode(eid, SuccessOutcome(verdict="ok \ud800"))
    assert "verdict" in caught.value.field
