"""The episode side of the data model: what an agent did and how it ended.

Wire names (``names.py``) follow the reference system: ``TaskType`` and ``ComplexityLevel``
values are snake_case strings, outcomes and step results are tagged with ``type``. Times are
timezone-aware UTC datetimes with microsecond precision.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .names import (
    ComplexityLevel,
    ErrorName,
    FailureName,
    PartialSuccessName,
    SuccessName,
    TaskType,
    TimeoutName,
)

__all__ = [
    "ComplexityLevel",
    "Episode",
    "ErrorResult",
    "ExecutionResult",
    "ExecutionStep",
    "FailureOutcome",
    "PartialSuccessOutcome",
    "Reflection",
    "RewardScore",
    "SuccessOutcome",
    "SuccessResult",
    "TaskContext",
    "TaskOutcome",
    "TaskType",
    "TimeoutResult",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class TaskContext(_Model):
    """Where a task happens. Defaults: domain ``general``, complexity ``moderate``."""

    language: str | None = None
    framework: str | None = None
    complexity: ComplexityLevel = ComplexityLevel.MODERATE
    domain: str = "general"
    tags: list[str] = Field(default_factory=list)


class SuccessResult(_Model):
    type: SuccessName = "success"
    output: str = ""


class ErrorResult(_Model):
    type: ErrorName = "error"
    message: str


class TimeoutResult(_Model):
    type: TimeoutName = "timeout"


ExecutionResult = Annotated[
    SuccessResult | ErrorResult | TimeoutResult, Field(discriminator="type")
]


class ExecutionStep(_Model):
    """One tool call of an episode. A step with no result counts as failed."""

    step_number: int
    timestamp: datetime = Field(default_factory=utc_now)
    tool: str
    action: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    result: ExecutionResult | None = None
    latency_ms: int = 0
    tokens_used: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    _utc = field_validator("timestamp")(_as_utc)

    def is_success(self) -> bool:
        return isinstance(self.result, SuccessResult)


class SuccessOutcome(_Model):
    type: SuccessName = "success"
    verdict: str
    artifacts: list[str] = Field(default_factory=list)


class PartialSuccessOutcome(_Model):
    type: PartialSuccessName = "partial_success"
    verdict: str
    completed: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


class FailureOutcome(_Model):
    type: FailureName = "failure"
    reason: str
    error_details: str | None = None


TaskOutcome = Annotated[
    SuccessOutcome | PartialSuccessOutcome | FailureOutcome, Field(discriminator="type")
]


def outcome_score(outcome: SuccessOutcome | PartialSuccessOutcome | FailureOutcome) -> float:
    """How well a task ended, in [0, 1]: success 1, partial the completed share, failure 0."""
    if isinstance(outcome, SuccessOutcome):
        return 1.0
    if isinstance(outcome, PartialSuccessOutcome):
        done, failed = len(outcome.completed), len(outcome.failed)
        return 0.5 if done + failed == 0 else done / (done + failed)
    return 0.0


class RewardScore(_Model):
    """total = base x efficiency x complexity_bonus x quality_multiplier + learning_bonus."""

    total: float
    base: float
    efficiency: float
    complexity_bonus: float
    quality_multiplier: float
    learning_bonus: float


class Reflection(_Model):
    successes: list[str] = Field(default_factory=list)
    improvements: list[str] = Field(default_factory=list)
    insights: list[str] = Field(default_factory=list)
    generated_at: datetime = Field(default_factory=utc_now)

    _utc = field_validator("generated_at")(_as_utc)


class Episode(_Model):
    """A task an agent worked on: its context, its steps, how it ended and what was learned."""

    episode_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    task_type: TaskType
    task_description: str
    context: TaskContext = Field(default_factory=TaskContext)
    start_time: datetime = Field(default_factory=utc_now)
    end_time: datetime | None = None
    steps: list[ExecutionStep] = Field(default_factory=list)
    outcome: TaskOutcome | None = None
    reward: RewardScore | None = None
    reflection: Reflection | None = None
    patterns: list[uuid.UUID] = Field(default_factory=list)
    heuristics: list[uuid.UUID] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    # who ran the task (``model/agents.py``: checked where an episode is started)
    agent: str | None = Field(default=None, max_length=64)

    @field_validator("start_time", "end_time")
    @classmethod
    def _utc_times(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _as_utc(value)

    def is_complete(self) -> bool:
        return self.end_time is not None and self.outcome is not None

    def duration(self) -> timedelta | None:
        return None if self.end_time is None else self.end_time - self.start_time

    def successful_steps_count(self) -> int:
        return sum(1 for s in self.steps if s.is_success())

    def failed_steps_count(self) -> int:
        return len(self.steps) - self.successful_steps_count()

    def step_success_rate(self) -> float:
        return self.successful_steps_count() / len(self.steps) if self.steps else 0.0
