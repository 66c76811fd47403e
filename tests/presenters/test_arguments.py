"""The front ends' argument bounds and choices (``presenters/arguments.py``, standard library
only) are the model's: each copy is checked against the value it stands for."""

from __future__ import annotations

from typing import get_args

from self_learning_memory.config import RetrievalMode
from self_learning_memory.core import reads
from self_learning_memory.model import validation as v
from self_learning_memory.model.episode import (
    ComplexityLevel,
    ErrorResult,
    FailureOutcome,
    PartialSuccessOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskType,
    TimeoutResult,
)
from self_learning_memory.model.pattern import (
    ContextPattern,
    DecisionPoint,
    ErrorRecovery,
    ToolSequence,
)
from self_learning_memory.presenters import arguments as A


def _tag(model: type) -> str:
    default = model.model_fields["type"].default  # type: ignore[attr-defined]
    assert isinstance(default, str)
    return default


def test_choices_are_the_models_values() -> None:
    assert list(get_args(A.TaskTypeName)) == [m.value for m in TaskType]
    assert list(get_args(A.ComplexityName)) == [m.value for m in ComplexityLevel]
    assert set(get_args(A.RetrievalModeName)) == {m.value for m in RetrievalMode}
    outcomes = [SuccessOutcome, PartialSuccessOutcome, FailureOutcome]
    assert list(get_args(A.OutcomeName)) == [_tag(m) for m in outcomes]
    assert list(get_args(A.ResultName)) == [
        _tag(m) for m in (SuccessResult, ErrorResult, TimeoutResult)
    ]
    patterns = [ToolSequence, DecisionPoint, ErrorRecovery, ContextPattern]
    assert list(get_args(A.PatternTypeName)) == [_tag(m) for m in patterns]


def test_bounds_are_the_models_limits() -> None:
    assert A.MAX_TEXT == v.MAX_DESCRIPTION_LEN == v.MAX_ACTION_LEN == v.MAX_VERDICT_LEN
    assert A.MAX_NAME == v.MAX_NAME_LEN
    assert A.MAX_TAGS == v.MAX_TAGS
    assert A.MAX_TOOL_NAME == v.MAX_TOOL_LEN
    assert A.MAX_LIST_ITEMS == v.MAX_LIST_ITEMS
    assert A.MAX_PARAMETERS_BYTES == v.MAX_ARTIFACT_SIZE
    assert A.MAX_LIMIT == reads.MAX_LIMIT
    # a front end never admits a value the stores cannot hold
    assert A.MAX_STEP_NUMBER <= v.MAX_STEP_NUMBER
    assert A.MAX_LATENCY_MS <= v.MAX_LATENCY_MS
    assert A.MAX_TOKENS <= v.MAX_TOKENS_USED
