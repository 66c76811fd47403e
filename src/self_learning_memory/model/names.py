"""The model's wire names: task types, complexity levels, retrieval modes, the ``type`` tags
of outcomes, step results and patterns, and the outcomes and callers of a sandboxed run.

Standard library only, so the CLI's ``--help`` and the MCP server's handshake can use them
without loading pydantic or the models. The models (``episode.py``, ``pattern.py``,
``sandbox_run.py``), the configuration and the sandbox import them from here, and so do the
front ends: there is one definition of each name.

The front ends take a choice as a ``Literal`` (typer lists its values, an MCP tool's input
schema inlines them as an ``enum``); the models take the ``StrEnum`` where the library has one.
Each ``StrEnum`` here has its ``Literal`` beside it, and the two are checked equal on import.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

__all__ = [
    "SANDBOX_CALLERS",
    "SANDBOX_OUTCOMES",
    "ComplexityLevel",
    "ComplexityName",
    "ContextPatternName",
    "DecisionPointName",
    "ErrorName",
    "ErrorRecoveryName",
    "FailureName",
    "OutcomeName",
    "PartialSuccessName",
    "PatternTypeName",
    "ResultName",
    "RetrievalMode",
    "RetrievalModeName",
    "SandboxCaller",
    "SandboxOutcome",
    "SuccessName",
    "TaskType",
    "TaskTypeName",
    "TimeoutName",
    "ToolSequenceName",
]


class TaskType(StrEnum):
    CODE_GENERATION = "code_generation"
    DEBUGGING = "debugging"
    REFACTORING = "refactoring"
    TESTING = "testing"
    ANALYSIS = "analysis"
    DOCUMENTATION = "documentation"
    OTHER = "other"


TaskTypeName = Literal[
    "code_generation",
    "debugging",
    "refactoring",
    "testing",
    "analysis",
    "documentation",
    "other",
]


class ComplexityLevel(StrEnum):
    SIMPLE = "simple"
    MODERATE = "moderate"
    COMPLEX = "complex"


ComplexityName = Literal["simple", "moderate", "complex"]


class RetrievalMode(StrEnum):
    """How retrieve_relevant_context finds and scores candidates.

    hybrid: lexical (bm25) and vector candidates fused, then context, outcome, recency and MMR;
            without an embedding provider it runs lexically and says so in provenance (default).
    lexical: bm25 candidates only, same ranking.
    vector: vector candidates only, same ranking (needs an embedding provider).
    legacy: the reference system's score, kept for comparison.
    """

    HYBRID = "hybrid"
    LEXICAL = "lexical"
    VECTOR = "vector"
    LEGACY = "legacy"


RetrievalModeName = Literal["hybrid", "lexical", "vector", "legacy"]

# the ``type`` tag of each variant: outcomes, step results, patterns
SuccessName = Literal["success"]
PartialSuccessName = Literal["partial_success"]
FailureName = Literal["failure"]
ErrorName = Literal["error"]
TimeoutName = Literal["timeout"]
OutcomeName = Literal[SuccessName, PartialSuccessName, FailureName]
ResultName = Literal[SuccessName, ErrorName, TimeoutName]

ToolSequenceName = Literal["tool_sequence"]
DecisionPointName = Literal["decision_point"]
ErrorRecoveryName = Literal["error_recovery"]
ContextPatternName = Literal["context_pattern"]
PatternTypeName = Literal[
    ToolSequenceName, DecisionPointName, ErrorRecoveryName, ContextPatternName
]

# a sandboxed run: how it ended (the sandbox result's variant) and who asked for it
SandboxOutcome = Literal["success", "error", "timeout", "security_violation"]
SandboxCaller = Literal["mcp", "cli", "library"]
SANDBOX_OUTCOMES: tuple[str, ...] = get_args(SandboxOutcome)
SANDBOX_CALLERS: tuple[str, ...] = get_args(SandboxCaller)


def _check(enum: type[StrEnum], name: object) -> None:
    """Refuse to load when an enum and its Literal list different values."""
    values = tuple(member.value for member in enum)
    if values != get_args(name):
        raise AssertionError(f"{enum.__name__} {values} differs from {get_args(name)}")


_check(TaskType, TaskTypeName)
_check(ComplexityLevel, ComplexityName)
_check(RetrievalMode, RetrievalModeName)
