"""The checks that enforce the input limits (defined in ``limits.py``, re-exported here).

The limits are the reference system's plus bounds for the inputs it left open.
Every check raises :class:`~self_learning_memory.errors.ValidationError` naming the field,
the problem and the limit. Nothing is dropped silently and nothing is written before a check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic

from ..errors import ValidationError
from .episode import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    PartialSuccessOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
)
from .limits import (
    COMPLETION_RESERVE,
    MAX_ACTION_LEN,
    MAX_ARTIFACT_SIZE,
    MAX_DESCRIPTION_LEN,
    MAX_EPISODE_SIZE,
    MAX_LATENCY_MS,
    MAX_LIST_ITEMS,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_LEN,
    MAX_NAME_LEN,
    MAX_OBSERVATION_LEN,
    MAX_OPEN_EPISODE_SIZE,
    MAX_OUTCOME_SIZE,
    MAX_STEP_COUNT,
    MAX_STEP_NUMBER,
    MAX_TAGS,
    MAX_TOKENS_USED,
    MAX_TOOL_LEN,
    MAX_VERDICT_LEN,
)

__all__ = [
    "COMPLETION_RESERVE",
    "MAX_ACTION_LEN",
    "MAX_ARTIFACT_SIZE",
    "MAX_DESCRIPTION_LEN",
    "MAX_EPISODE_SIZE",
    "MAX_LATENCY_MS",
    "MAX_LIST_ITEMS",
    "MAX_OBSERVATION_LEN",
    "MAX_OPEN_EPISODE_SIZE",
    "MAX_OUTCOME_SIZE",
    "MAX_STEP_COUNT",
    "MAX_STEP_NUMBER",
    "MAX_TAGS",
    "MAX_TOKENS_USED",
    "as_task_type",
    "as_uuid",
    "check_context",
    "check_description",
    "check_encodable",
    "check_outcome",
    "check_step",
    "check_text",
    "parse_model",
]

_ARTIFACT_KEYS = ("artifact", "data", "content", "file")

M = TypeVar("M", bound=pydantic.BaseModel)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def check_text(
    field: str, value: str, *, max_bytes: int, allow_empty: bool = False, max_label: str = "bytes"
) -> None:
    """Non-empty (unless allowed), no NUL byte, at most ``max_bytes`` of UTF-8."""
    if not allow_empty and not value.strip():
        raise ValidationError(field, "must not be empty", "at least 1 non-blank character")
    if "\x00" in value:
        raise ValidationError(field, "must not contain a NUL character")
    check_encodable(field, value)
    size = _size(value)
    if size > max_bytes:
        raise ValidationError(field, f"is {size} {max_label} long", f"{max_bytes} {max_label}")


def check_encodable(field: str, value: str) -> None:
    """Refuse text that has no UTF-8 form (a lone surrogate such as ``"\\ud800"``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start : exc.end]
        raise ValidationError(
            field,
            f"contains a lone surrogate ({bad!a}) at position {exc.start}",
            "valid Unicode text (encodable as UTF-8)",
        ) from None


def check_description(description: str, field: str = "task_description") -> None:
    check_text(field, description, max_bytes=MAX_DESCRIPTION_LEN)


def check_context(context: TaskContext, field: str = "context") -> None:
    check_text(f"{field}.domain", context.domain, max_bytes=MAX_NAME_LEN)
    for name in ("language", "framework"):
        value = getattr(context, name)
        if value is not None:
            check_text(f"{field}.{name}", value, max_bytes=MAX_NAME_LEN)
    if len(context.tags) > MAX_TAGS:
        raise ValidationError(f"{field}.tags", f"has {len(context.tags)} tags", f"{MAX_TAGS} tags")
    for i, tag in enumerate(context.tags):
        check_text(f"{field}.tags[{i}]", tag, max_bytes=MAX_NAME_LEN)


def check_metadata(field: str, metadata: Mapping[str, str]) -> None:
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValidationError(field, f"has {len(metadata)} keys", f"{MAX_METADATA_KEYS} keys")
    for key, value in metadata.items():
        check_text(f"{field} key", key, max_bytes=MAX_NAME_LEN)
        check_text(f"{field}[{key!r}]", value, max_bytes=MAX_METADATA_VALUE_LEN, allow_empty=True)


def _check_artifact_values(field: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            path = f"{field}.{key}"
            if isinstance(inner, str) and any(k in str(key).lower() for k in _ARTIFACT_KEYS):
                if _size(inner) > MAX_ARTIFACT_SIZE:
                    raise ValidationError(
                        path, f"is {_size(inner)} bytes long", f"{MAX_ARTIFACT_SIZE} bytes"
                    )
            else:
                _check_artifact_values(path, inner)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _check_artifact_values(f"{field}[{i}]", inner)


def _check_at_most(field: str, value: int, limit: int) -> None:
    if value > limit:
        raise ValidationError(field, f"is {value}, more than the store can hold", f"<= {limit}")


def check_step(step: ExecutionStep, field: str = "step") -> None:
    """Check one step against the limits (its order is checked by the memory)."""
    if step.step_number < 1:
        raise ValidationError(f"{field}.step_number", "must be at least 1", ">= 1")
    _check_at_most(f"{field}.step_number", step.step_number, MAX_STEP_NUMBER)
    _check_at_most(f"{field}.latency_ms", step.latency_ms, MAX_LATENCY_MS)
    if step.tokens_used is not None:
        _check_at_most(f"{field}.tokens_used", step.tokens_used, MAX_TOKENS_USED)
    check_text(f"{field}.tool", step.tool, max_bytes=MAX_TOOL_LEN)
    check_text(f"{field}.action", step.action, max_bytes=MAX_ACTION_LEN)
    if step.latency_ms < 0:
        raise ValidationError(f"{field}.latency_ms", "must not be negative", ">= 0")
    if step.tokens_used is not None and step.tokens_used < 0:
        raise ValidationError(f"{field}.tokens_used", "must not be negative", ">= 0")
    if isinstance(step.result, SuccessResult):
        check_text(
            f"{field}.result.output",
            step.result.output,
            max_bytes=MAX_OBSERVATION_LEN,
            allow_empty=True,
        )
    elif isinstance(step.result, ErrorResult):
        check_text(
            f"{field}.result.message",
            step.result.message,
            max_bytes=MAX_OBSERVATION_LEN,
            allow_empty=True,
        )
    try:
        _check_artifact_values(f"{field}.parameters", step.parameters)
        encoded = json.dumps(step.parameters, ensure_ascii=False, default=str)
    except RecursionError:
        raise ValidationError(
            f"{field}.parameters", "refers to itself or is nested too deeply"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field}.parameters", f"is not JSON-serialisable ({exc})") from exc
    check_encodable(f"{field}.parameters", encoded)
    if _size(encoded) > MAX_ARTIFACT_SIZE:
        raise ValidationError(
            f"{field}.parameters",
            f"is {_size(encoded)} bytes as JSON",
            f"{MAX_ARTIFACT_SIZE} bytes",
        )
    check_metadata(f"{field}.metadata", step.metadata)


def _check_items(field: str, items: list[str]) -> None:
    if len(items) > MAX_LIST_ITEMS:
        raise ValidationError(field, f"has {len(items)} items", f"{MAX_LIST_ITEMS} items")
    for i, item in enumerate(items):
        check_text(f"{field}[{i}]", item, max_bytes=MAX_VERDICT_LEN)


def check_outcome(
    outcome: SuccessOutcome | PartialSuccessOutcome | FailureOutcome, field: str = "outcome"
) -> None:
    if isinstance(outcome, SuccessOutcome):
        check_text(f"{field}.verdict", outcome.verdict, max_bytes=MAX_VERDICT_LEN, allow_empty=True)
        _check_items(f"{field}.artifacts", outcome.artifacts)
    elif isinstance(outcome, PartialSuccessOutcome):
        check_text(f"{field}.verdict", outcome.verdict, max_bytes=MAX_VERDICT_LEN, allow_empty=True)
        _check_items(f"{field}.completed", outcome.completed)
        _check_items(f"{field}.failed", outcome.failed)
    else:
        check_text(f"{field}.reason", outcome.reason, max_bytes=MAX_VERDICT_LEN)
        if outcome.error_details is not None:
            check_text(
                f"{field}.error_details",
                outcome.error_details,
                max_bytes=MAX_VERDICT_LEN,
                allow_empty=True,
            )
    size = len(type(outcome).__pydantic_serializer__.to_json(outcome))
    if size > MAX_OUTCOME_SIZE:
        raise ValidationError(field, f"is {size} bytes as JSON", f"{MAX_OUTCOME_SIZE} bytes")


def parse_model(model: type[M], data: Any, field: str) -> M:
    """Build ``model`` from untrusted data, turning pydantic's error into ours."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        name = f"{field}.{loc}" if loc else field
        raise ValidationError(name, str(first.get("msg", "is invalid")).lower()) from exc


def as_uuid(value: uuid.UUID | str, field: str = "episode_id") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(field, f"'{str(value)[:60]}' is not a valid UUID") from None


def as_task_type(value: TaskType | str) -> TaskType:
    try:
        return TaskType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in TaskType)
        raise ValidationError(
            "task_type", f"'{str(value)[:60]}' is not a task type", allowed
        ) from None
