"""Small hand-made episodes for the extractor, reward and reflection tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from self_learning_memory import (
    ComplexityLevel,
    Episode,
    ErrorResult,
    ExecutionStep,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
    TimeoutResult,
)
from self_learning_memory.model.episode import TaskOutcome

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def ok(n: int, tool: str, action: str = "run", latency_ms: int = 10) -> ExecutionStep:
    return ExecutionStep(
        step_number=n,
        tool=tool,
        action=action,
        result=SuccessResult(output="ok"),
        latency_ms=latency_ms,
        timestamp=T0,
    )


def err(n: int, tool: str, message: str = "boom", action: str = "run") -> ExecutionStep:
    return ExecutionStep(
        step_number=n, tool=tool, action=action, result=ErrorResult(message=message), timestamp=T0
    )


def timeout(n: int, tool: str, action: str = "run") -> ExecutionStep:
    return ExecutionStep(
        step_number=n, tool=tool, action=action, result=TimeoutResult(), timestamp=T0
    )


def episode(
    steps: list[ExecutionStep],
    outcome: TaskOutcome | None = None,
    *,
    seconds: float | None = 0.5,
    complexity: ComplexityLevel = ComplexityLevel.MODERATE,
    context: TaskContext | None = None,
    task_type: TaskType = TaskType.CODE_GENERATION,
    metadata: dict[str, str] | None = None,
) -> Episode:
    """A completed episode (unless ``outcome`` is None) that took ``seconds``."""
    ctx = context or TaskContext(domain="web-api", language="python", complexity=complexity)
    end = None if seconds is None else T0 + timedelta(seconds=seconds)
    return Episode(
        task_type=task_type,
        task_description="Add a health endpoint",
        context=ctx,
        start_time=T0,
        end_time=end if outcome is not None else None,
        steps=steps,
        outcome=outcome,
        metadata=metadata or {},
    )


def success(verdict: str = "done", artifacts: list[str] | None = None) -> SuccessOutcome:
    return SuccessOutcome(verdict=verdict, artifacts=artifacts or [])
