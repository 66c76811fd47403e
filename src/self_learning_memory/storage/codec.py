"""Conversions between the domain models and SQL column values, shared by the SQL backends.

Times are integer microseconds since the Unix epoch, so a round trip keeps every digit.
JSON columns are written by pydantic and read back with validation: a corrupt value raises
:class:`DataIntegrityError` instead of producing a half-valid object.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
from pydantic import TypeAdapter

from ..core.types import (
    Episode,
    ExecutionResult,
    ExecutionStep,
    Reflection,
    RewardScore,
    TaskContext,
    TaskOutcome,
)
from ..errors import DataIntegrityError
from ..patterns.types import AnyPattern, Heuristic, Pattern
from .backend import SearchDocument

__all__ = [
    "EPISODE_COLUMNS",
    "STEP_COLUMNS",
    "dump_json",
    "episode_from_row",
    "from_us",
    "pattern_from_json",
    "search_document",
    "step_from_row",
    "step_values",
    "to_us",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_PATTERN = TypeAdapter[AnyPattern](Pattern)
_OUTCOME = TypeAdapter[Any](TaskOutcome)
_RESULT = TypeAdapter[Any](ExecutionResult)
_UUIDS = TypeAdapter(list[uuid.UUID])
_STR_DICT = TypeAdapter(dict[str, str])

EPISODE_COLUMNS = (
    "episode_id, task_type, task_description, context, start_time, end_time, outcome, reward, "
    "reflection, patterns, heuristics, metadata"
)
STEP_COLUMNS = (
    "episode_id, step_number, timestamp, tool, action, parameters, result, latency_ms, "
    "tokens_used, metadata"
)


def to_us(value: datetime) -> int:
    return (value - _EPOCH) // _US


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _load(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DataIntegrityError(f"Stored {what} is not valid JSON: {exc}.") from exc


def step_values(episode_id: uuid.UUID, step: ExecutionStep) -> tuple[Any, ...]:
    return (
        str(episode_id),
        step.step_number,
        to_us(step.timestamp),
        step.tool,
        step.action,
        dump_json(step.parameters),
        None if step.result is None else step.result.model_dump_json(),
        step.latency_ms,
        step.tokens_used,
        dump_json(step.metadata),
    )


def step_from_row(row: tuple[Any, ...]) -> ExecutionStep:
    try:
        return ExecutionStep(
            step_number=row[1],
            timestamp=from_us(row[2]),
            tool=row[3],
            action=row[4],
            parameters=_load(row[5], "step parameters"),
            result=None if row[6] is None else _RESULT.validate_json(row[6]),
            latency_ms=row[7],
            tokens_used=row[8],
            metadata=_STR_DICT.validate_json(row[9]),
        )
    except pydantic.ValidationError as exc:
        raise DataIntegrityError(f"A stored step of episode {row[0]} is invalid: {exc}.") from exc


def episode_from_row(row: tuple[Any, ...], steps: list[ExecutionStep]) -> Episode:
    """Build an episode from ``EPISODE_COLUMNS`` and its steps (already in order)."""
    try:
        return Episode(
            episode_id=uuid.UUID(row[0]),
            task_type=row[1],
            task_description=row[2],
            context=TaskContext.model_validate_json(row[3]),
            start_time=from_us(row[4]),
            end_time=None if row[5] is None else from_us(row[5]),
            steps=steps,
            outcome=None if row[6] is None else _OUTCOME.validate_json(row[6]),
            reward=None if row[7] is None else RewardScore.model_validate_json(row[7]),
            reflection=None if row[8] is None else Reflection.model_validate_json(row[8]),
            patterns=_UUIDS.validate_json(row[9]),
            heuristics=_UUIDS.validate_json(row[10]),
            metadata=_STR_DICT.validate_json(row[11]),
        )
    except (pydantic.ValidationError, ValueError) as exc:
        raise DataIntegrityError(f"Stored episode {row[0]} is invalid: {exc}.") from exc


def pattern_from_json(text: str) -> AnyPattern:
    try:
        return _PATTERN.validate_json(text)
    except pydantic.ValidationError as exc:
        raise DataIntegrityError(f"A stored pattern is invalid: {exc}.") from exc


def heuristic_from_json(text: str) -> Heuristic:
    try:
        return Heuristic.model_validate_json(text)
    except pydantic.ValidationError as exc:
        raise DataIntegrityError(f"A stored heuristic is invalid: {exc}.") from exc


_MAX_STEP_TEXT = 20_000


def search_document(episode: Episode) -> SearchDocument:
    """The episode's text for the full-text index (steps capped at 20,000 characters)."""
    parts: list[str] = []
    size = 0
    for step in episode.steps:
        text = f"{step.tool} {step.action}"
        if step.result is not None and step.result.type == "error":
            text += f" {step.result.message}"
        parts.append(text)
        size += len(text)
        if size > _MAX_STEP_TEXT:
            break
    outcome = episode.outcome
    outcome_text = ""
    if outcome is not None:
        outcome_text = " ".join(
            str(v) for k, v in outcome.model_dump().items() if k != "type" and v
        )
    reflection = episode.reflection
    reflection_text = ""
    if reflection is not None:
        reflection_text = " ".join(
            reflection.successes + reflection.improvements + reflection.insights
        )
    return SearchDocument(
        description=episode.task_description,
        steps="\n".join(parts)[:_MAX_STEP_TEXT],
        outcome=outcome_text,
        reflection=reflection_text,
    )
