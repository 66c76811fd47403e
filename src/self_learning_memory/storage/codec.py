"""Conversions between the domain models and SQL column values, shared by the SQL backends.

Times are integer microseconds since the Unix epoch, so a round trip keeps every digit.
JSON columns are written by pydantic and read back with validation: a corrupt value raises
:class:`DataIntegrityError` instead of producing a half-valid object.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pydantic
from pydantic import TypeAdapter

from ..errors import DataIntegrityError
from ..model.episode import (
    Episode,
    ExecutionResult,
    ExecutionStep,
    Reflection,
    RewardScore,
    TaskContext,
    TaskOutcome,
)
from ..model.pattern import AnyPattern, Heuristic, Pattern
from ..model.records import SearchDocument

__all__ = [
    "EPISODE_COLUMNS",
    "STEP_COLUMNS",
    "dump_json",
    "episode_from_row",
    "from_us",
    "outcome_from_json",
    "pattern_from_json",
    "search_document",
    "step_from_row",
    "step_values",
    "to_us",
]

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_PATTERN = TypeAdapter[AnyPattern](Pattern)
_OUTCOME = TypeAdapter[Any](TaskOutcome)
_RESULT = TypeAdapter[Any](ExecutionResult)
_UUIDS = TypeAdapter(list[uuid.UUID])
_STR_DICT = TypeAdapter(dict[str, str])

EPISODE_COLUMNS = (
    "episode_id, task_type, task_description, context, start_time, end_time, outcome, reward, "
    "reflection, patterns, heuristics, metadata, agent"
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


def _same(value: Any) -> Any:
    return value


def _optional(decode: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda value: None if value is None else decode(value)


# (field, column index, decoder) for the rows of STEP_COLUMNS and EPISODE_COLUMNS
Fields = tuple[tuple[str, int, Callable[[Any], Any]], ...]
_STEP_FIELDS: Fields = (
    ("step_number", 1, _same),
    ("timestamp", 2, from_us),
    ("tool", 3, _same),
    ("action", 4, _same),
    ("parameters", 5, lambda text: _load(text, "step parameters")),
    ("result", 6, _optional(_RESULT.validate_json)),
    ("latency_ms", 7, _same),
    ("tokens_used", 8, _same),
    ("metadata", 9, _STR_DICT.validate_json),
)
_EPISODE_FIELDS: Fields = (
    ("episode_id", 0, uuid.UUID),
    ("task_type", 1, _same),
    ("task_description", 2, _same),
    ("context", 3, TaskContext.model_validate_json),
    ("start_time", 4, from_us),
    ("end_time", 5, _optional(from_us)),
    ("outcome", 6, _optional(_OUTCOME.validate_json)),
    ("reward", 7, _optional(RewardScore.model_validate_json)),
    ("reflection", 8, _optional(Reflection.model_validate_json)),
    ("patterns", 9, _UUIDS.validate_json),
    ("heuristics", 10, _UUIDS.validate_json),
    ("metadata", 11, _STR_DICT.validate_json),
    ("agent", 12, _same),
)
_DECODE_ERRORS = (
    pydantic.ValidationError,
    ValueError,
    TypeError,
    OverflowError,
    DataIntegrityError,
)


def failure_reason(exc: BaseException) -> str:
    """One line saying why a stored value could not be decoded."""
    if isinstance(exc, pydantic.ValidationError) and exc.errors():
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{first['msg']}{f' (at {where})' if where else ''}"
    if isinstance(exc, DataIntegrityError):
        return exc.message.rstrip(".")
    return str(exc) or type(exc).__name__


def bad_field(fields: Fields, row: tuple[Any, ...], exc: BaseException) -> str:
    """Which field of ``row`` cannot be decoded, and why: ``field 'context': <reason>``.
    (Only called once a decode failed: each field is decoded alone to find the culprit.)"""
    for name, index, decode in fields:
        try:
            decode(row[index])
        except _DECODE_ERRORS as field_exc:
            return f"field {name!r}: {failure_reason(field_exc)}"
    if isinstance(exc, pydantic.ValidationError) and exc.errors():
        loc = exc.errors()[0]["loc"]
        return f"field {str(loc[0]) if loc else '?'!r}: {failure_reason(exc)}"
    return failure_reason(exc)


def step_from_row(row: tuple[Any, ...]) -> ExecutionStep:
    try:
        return ExecutionStep(**{name: decode(row[i]) for name, i, decode in _STEP_FIELDS})
    except _DECODE_ERRORS as exc:
        raise DataIntegrityError(
            f"A stored step of episode {row[0]} (step {row[1]}) is invalid: "
            f"{bad_field(_STEP_FIELDS, row, exc)}."
        ) from exc


def episode_from_row(row: tuple[Any, ...], steps: list[ExecutionStep]) -> Episode:
    """Build an episode from ``EPISODE_COLUMNS`` and its steps (already in order)."""
    try:
        values = {name: decode(row[i]) for name, i, decode in _EPISODE_FIELDS}
        return Episode(steps=steps, **values)
    except _DECODE_ERRORS as exc:
        raise DataIntegrityError(
            f"Stored episode {row[0]} is invalid: {bad_field(_EPISODE_FIELDS, row, exc)}."
        ) from exc


def outcome_from_json(text: str) -> Any:
    """A stored outcome column as its model (success, partial success or failure)."""
    return _OUTCOME.validate_json(text)


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
