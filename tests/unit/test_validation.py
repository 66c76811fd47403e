"""core/validation.py: every check raises ValidationError naming the field, the problem, the limit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from self_learning_memory import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    PartialSuccessOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
    ValidationError,
)
from self_learning_memory.model import validation as v

from . import strategies as s

SETTINGS = settings(max_examples=50, deadline=None)


def step(**fields: Any) -> ExecutionStep:
    return ExecutionStep(**{"step_number": 1, "tool": "edit", "action": "write", **fields})


def assert_names(exc: pytest.ExceptionInfo[ValidationError], field: str, limit: str) -> None:
    err = exc.value
    assert type(err) is ValidationError
    assert err.field == field
    assert err.limit is not None
    assert str(err.limit) == limit
    assert f"'{field}'" in str(err)
    assert f"(limit: {limit})" in str(err)


# -- descriptions and text -------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_description(text: str) -> None:
    with pytest.raises(ValidationError, match="must not be empty") as exc:
        v.check_description(text)
    assert_names(exc, "task_description", "at least 1 non-blank character")


def test_oversized_description_counts_utf8_bytes() -> None:
    v.check_description("x" * v.MAX_DESCRIPTION_LEN)  # exactly at the limit is fine
    with pytest.raises(ValidationError, match="is 10001 bytes long") as exc:
        v.check_description("x" * (v.MAX_DESCRIPTION_LEN + 1))
    assert_names(exc, "task_description", "10000 bytes")
    with pytest.raises(ValidationError, match="is 10002 bytes long"):
        v.check_description("é" * 5001)  # 5,001 characters, 10,002 bytes


def test_nul_character_is_rejected() -> None:
    with pytest.raises(ValidationError, match="NUL") as exc:
        v.check_description("fix\x00bug")
    assert exc.value.field == "task_description"


def test_unknown_task_type_lists_the_allowed_values() -> None:
    assert v.as_task_type("debugging") is TaskType.DEBUGGING
    assert v.as_task_type(TaskType.TESTING) is TaskType.TESTING
    with pytest.raises(ValidationError, match="'juggling' is not a task type") as exc:
        v.as_task_type("juggling")
    assert_names(exc, "task_type", ", ".join(t.value for t in TaskType))
    with pytest.raises(ValidationError):
        v.as_task_type("CodeGeneration")  # the reference system's JSON form is not a wire value


def test_bad_uuid() -> None:
    eid = uuid.uuid4()
    assert v.as_uuid(eid) == eid
    assert v.as_uuid(str(eid)) == eid
    with pytest.raises(ValidationError, match="'not-an-id' is not a valid UUID") as exc:
        v.as_uuid("not-an-id")
    assert exc.value.field == "episode_id"


# -- context ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("context", "field", "limit"),
    [
        (TaskContext(domain=""), "context.domain", "at least 1 non-blank character"),
        (TaskContext(domain="d" * 201), "context.domain", "200 bytes"),
        (TaskContext(language="p" * 201), "context.language", "200 bytes"),
        (TaskContext(framework=" "), "context.framework", "at least 1 non-blank character"),
        (TaskContext(tags=[f"t{i}" for i in range(51)]), "context.tags", "50 tags"),
        (TaskContext(tags=["ok", "x" * 201]), "context.tags[1]", "200 bytes"),
    ],
)
def test_context_limits(context: TaskContext, field: str, limit: str) -> None:
    with pytest.raises(ValidationError) as exc:
        v.check_context(context)
    assert_names(exc, field, limit)


def test_metadata_limits() -> None:
    with pytest.raises(ValidationError) as exc:
        v.check_metadata("metadata", {f"k{i}": "v" for i in range(101)})
    assert_names(exc, "metadata", "100 keys")
    with pytest.raises(ValidationError) as exc:
        v.check_metadata("metadata", {"k": "v" * 10_001})
    assert_names(exc, "metadata['k']", "10000 bytes")
    v.check_metadata("metadata", {"k": ""})  # empty values are allowed


# -- steps -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field", "limit"),
    [
        ({"step_number": 0}, "step.step_number", ">= 1"),
        ({"tool": ""}, "step.tool", "at least 1 non-blank character"),
        ({"tool": "t" * 257}, "step.tool", "256 bytes"),
        ({"action": "a" * 10_001}, "step.action", "10000 bytes"),
        ({"latency_ms": -1}, "step.latency_ms", ">= 0"),
        ({"tokens_used": -5}, "step.tokens_used", ">= 0"),
        (
            {"result": SuccessResult(output="o" * 10_001)},
            "step.result.output",
            "10000 bytes",
        ),
        (
            {"result": ErrorResult(message="m" * 10_001)},
            "step.result.message",
            "10000 bytes",
        ),
        (
            {"parameters": {"file_content": "c" * 1_000_001}},
            "step.parameters.file_content",
            "1000000 bytes",
        ),
        (
            {"parameters": {"nested": [{"data": "c" * 1_000_001}]}},
            "step.parameters.nested[0].data",
            "1000000 bytes",
        ),
        (
            {"parameters": {"a": "x" * 600_000, "b": "y" * 600_000}},
            "step.parameters",
            "1000000 bytes",
        ),
        ({"metadata": {"k": "v" * 10_001}}, "step.metadata['k']", "10000 bytes"),
    ],
)
def test_step_limits(fields: dict[str, Any], field: str, limit: str) -> None:
    with pytest.raises(ValidationError) as exc:
        v.check_step(step(**fields))
    assert_names(exc, field, limit)


def test_observation_at_the_limit_and_empty_output_are_fine() -> None:
    v.check_step(step(result=SuccessResult(output="o" * v.MAX_OBSERVATION_LEN)))
    v.check_step(step(result=SuccessResult(output="")))
    v.check_step(step(result=ErrorResult(message="")))
    v.check_step(step(parameters={"small": "x" * 900_000}))  # not artifact-like, under the total


def test_self_referencing_or_too_deep_parameters() -> None:
    # regression: these raised RecursionError instead of our error
    loop: dict[str, Any] = {}
    loop["self"] = loop
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"k": deep}
    for params in ({"loop": loop}, {"deep": deep}):
        with pytest.raises(
            ValidationError, match="refers to itself or is nested too deeply"
        ) as exc:
            v.check_step(step(parameters=params))
        assert exc.value.field == "step.parameters"


# -- outcomes --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("outcome", "field", "limit"),
    [
        (SuccessOutcome(verdict="v" * 10_001), "outcome.verdict", "10000 bytes"),
        (SuccessOutcome(verdict="ok", artifacts=["a"] * 1001), "outcome.artifacts", "1000 items"),
        (
            SuccessOutcome(verdict="ok", artifacts=["a", ""]),
            "outcome.artifacts[1]",
            "at least 1 non-blank character",
        ),
        (
            PartialSuccessOutcome(verdict="ok", failed=["f" * 10_001]),
            "outcome.failed[0]",
            "10000 bytes",
        ),
        (
            PartialSuccessOutcome(verdict="ok", completed=["c"] * 1001),
            "outcome.completed",
            "1000 items",
        ),
        (FailureOutcome(reason=" "), "outcome.reason", "at least 1 non-blank character"),
        (
            FailureOutcome(reason="r", error_details="e" * 10_001),
            "outcome.error_details",
            "10000 bytes",
        ),
    ],
)
def test_outcome_limits(outcome: Any, field: str, limit: str) -> None:
    with pytest.raises(ValidationError) as exc:
        v.check_outcome(outcome)
    assert_names(exc, field, limit)


def test_parse_model_turns_pydantic_errors_into_ours() -> None:
    with pytest.raises(ValidationError) as exc:
        v.parse_model(ExecutionStep, {"step_number": "one", "tool": "t", "action": "a"}, "step")
    assert exc.value.field == "step.step_number"
    with pytest.raises(ValidationError) as exc:
        v.parse_model(TaskContext, {"complexity": "expert"}, "context")
    assert exc.value.field == "context.complexity"
    with pytest.raises(ValidationError) as exc:
        v.parse_model(ExecutionStep, "not a dict", "step")
    assert exc.value.field == "step"
    assert v.parse_model(TaskContext, {"domain": "cli"}, "context") == TaskContext(domain="cli")


# -- never crashes ---------------------------------------------------------------------------
json_objects = st.dictionaries(st.text(max_size=10), s.json_values, max_size=5)


def raised(fn: Any, *args: Any) -> BaseException | None:
    """The exception ``fn(*args)`` raised (any kind), or None."""
    try:
        fn(*args)
    except BaseException as exc:
        return exc
    return None


@SETTINGS
@given(json_objects)
def test_parsing_arbitrary_input_only_raises_our_error(data: dict[str, Any]) -> None:
    for model, field, check in (
        (ExecutionStep, "step", v.check_step),
        (TaskContext, "context", v.check_context),
    ):
        exc = raised(v.parse_model, model, data, field)
        if exc is None:
            exc = raised(check, v.parse_model(model, data, field))
        if exc is not None:
            assert type(exc) is ValidationError
            assert exc.field.startswith(field)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_descriptions_pass_or_raise_validation_error(text: str) -> None:
    exc = raised(v.check_description, text)
    if exc is None:
        assert text.strip()
        assert "\x00" not in text
    else:
        assert type(exc) is ValidationError
        assert exc.field == "task_description"


@SETTINGS
@given(s.step(1))
def test_generated_steps_pass_or_raise_validation_error(candidate: ExecutionStep) -> None:
    exc = raised(v.check_step, candidate)
    if exc is not None:
        assert type(exc) is ValidationError
        assert exc.field.startswith("step.")
