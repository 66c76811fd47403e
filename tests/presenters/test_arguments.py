"""The front ends' argument bounds and choices are the model's own names and limits
(``model/names.py``, ``model/limits.py``), and those modules load without pydantic, so the
CLI's ``--help`` and the MCP handshake stay light."""

from __future__ import annotations

import subprocess
import sys
from enum import StrEnum
from typing import Literal, get_args

import pytest

from self_learning_memory import config
from self_learning_memory.core import episode_size, reads
from self_learning_memory.mcp import limits as L
from self_learning_memory.model import limits, names
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
from self_learning_memory.sandbox import result as sandbox_result


def _tag(model: type) -> str:
    default = model.model_fields["type"].default  # type: ignore[attr-defined]
    assert isinstance(default, str)
    return default


def test_the_models_types_are_the_names() -> None:
    assert TaskType is names.TaskType
    assert ComplexityLevel is names.ComplexityLevel
    assert config.RetrievalMode is names.RetrievalMode
    assert sandbox_result.Variant is names.SandboxOutcome


def test_front_end_choices_are_the_models_values() -> None:
    for literal in (A.TaskTypeName, L.TaskTypeName):
        assert list(get_args(literal)) == [m.value for m in TaskType]
    assert list(get_args(A.ComplexityName)) == [m.value for m in ComplexityLevel]
    assert list(get_args(A.RetrievalModeName)) == [m.value for m in config.RetrievalMode]
    outcomes = [SuccessOutcome, PartialSuccessOutcome, FailureOutcome]
    assert list(get_args(A.OutcomeName)) == [_tag(m) for m in outcomes]
    assert list(get_args(A.ResultName)) == [
        _tag(m) for m in (SuccessResult, ErrorResult, TimeoutResult)
    ]
    patterns = [ToolSequence, DecisionPoint, ErrorRecovery, ContextPattern]
    assert list(get_args(A.PatternTypeName)) == [_tag(m) for m in patterns]


def test_an_enum_and_a_literal_that_differ_refuse_to_load() -> None:
    class Two(StrEnum):
        A = "a"
        B = "b"

    names._check(Two, Literal["a", "b"])
    with pytest.raises(AssertionError, match="Two"):
        names._check(Two, Literal["a", "c"])


def test_bounds_are_the_models_limits() -> None:
    assert A.MAX_TEXT == v.MAX_DESCRIPTION_LEN == v.MAX_ACTION_LEN == v.MAX_VERDICT_LEN
    assert A.MAX_NAME == v.MAX_NAME_LEN
    assert A.MAX_TAGS == v.MAX_TAGS
    assert A.MAX_TOOL_NAME == v.MAX_TOOL_LEN
    assert A.MAX_LIST_ITEMS == v.MAX_LIST_ITEMS
    assert A.MAX_PARAMETERS_BYTES == v.MAX_ARTIFACT_SIZE
    assert A.MAX_LIMIT == reads.MAX_LIMIT == limits.MAX_LIMIT
    assert L.MAX_ITEM == v.MAX_VERDICT_LEN
    assert L.MAX_EPISODE_BYTES == v.MAX_EPISODE_SIZE
    assert L.MAX_OUTCOME_BYTES == v.MAX_OUTCOME_SIZE
    assert L.MAX_STEPS_BYTES == episode_size.MAX_OPEN_EPISODE_SIZE == v.MAX_OPEN_EPISODE_SIZE
    # a front end never admits a value the stores cannot hold
    assert A.MAX_STEP_NUMBER <= v.MAX_STEP_NUMBER
    assert A.MAX_LATENCY_MS <= v.MAX_LATENCY_MS
    assert A.MAX_TOKENS <= v.MAX_TOKENS_USED


def test_names_limits_and_front_end_bounds_load_without_pydantic() -> None:
    code = (
        "import sys\n"
        "import self_learning_memory.model.names, self_learning_memory.model.limits\n"
        "import self_learning_memory.presenters.arguments, self_learning_memory.mcp.limits\n"
        "import self_learning_memory.cli.commands.sandbox\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_cli_help_loads_no_pydantic() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "self_learning_memory.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "sandbox" in out.stdout  # the group is listed
    loaded = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()]
    assert "self_learning_memory.cli.app" in loaded
    assert [m for m in loaded if m.split(".")[0] == "pydantic"] == []
