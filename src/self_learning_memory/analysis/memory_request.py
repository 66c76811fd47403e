"""Validation of a memory-trends request (standard library only, so the CLI and the MCP tool
can check arguments before scipy is imported)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from self_learning_memory.errors import ValidationError

# the choices: the front ends name these types in their arguments (CLI flags, MCP schemas)
Metric = Literal["reward", "success_rate", "duration", "steps", "tokens"]
Bucket = Literal["day", "episodes"]
METRICS: tuple[str, ...] = get_args(Metric)
# which way is better: +1 higher is better, -1 lower is better
BETTER: dict[str, int] = {
    "reward": 1,
    "success_rate": 1,
    "duration": -1,
    "steps": -1,
    "tokens": -1,
}
BUCKETS: tuple[str, ...] = get_args(Bucket)
MAX_BUCKET_DAYS = 365
MAX_BUCKET_EPISODES = 10_000
MAX_EPISODES_LIMIT = 100_000
DEFAULT_MAX_EPISODES = 10_000
MAX_NAME = 256
MIN_BUCKETS = 3
_UNITS = {"h": "hours", "d": "days", "m": "minutes"}
_MAX_AGO_MINUTES = 36_500 * 24 * 60  # 100 years
TIME_FORMS = "ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or Nd / Nh / Nm before now (30d)"
AGO_FORMS = "Nh, Nd or Nm, e.g. 24h"


@dataclass(frozen=True)
class TrendRequest:
    """A validated request: which episodes, how to bucket them, which metrics."""

    task_type: str | None = None
    domain: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    bucket: Bucket = "day"
    bucket_size: int = 1
    metrics: tuple[str, ...] = METRICS
    max_episodes: int = DEFAULT_MAX_EPISODES
    significance_level: float = 0.05


def _is_ago(text: str) -> bool:
    value = text.strip().lower()
    return len(value) >= 2 and value[-1] in _UNITS and value[:-1].isdigit()


def parse_ago(field: str, text: str) -> datetime:
    """``Nh``, ``Nd`` or ``Nm`` (minutes) before now, at most 100 years; anything else is a
    :class:`ValidationError` on ``field``. The one parser of a time window for every front
    end (``--since``, ``--window``) and for :func:`validate_request`."""
    if not _is_ago(text):
        raise ValidationError(field, f"{text[:64]!r} is not a duration", AGO_FORMS)
    value = text.strip().lower()
    amount = int(value[:-1])
    if amount * {"d": 1440, "h": 60, "m": 1}[value[-1]] > _MAX_AGO_MINUTES:
        raise ValidationError(field, f"{text!r} is too long ago", "100 years")
    return datetime.now(UTC) - timedelta(**{_UNITS[value[-1]]: amount})


def _time(field: str, value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        if _is_ago(value):
            return parse_ago(field, value)
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                field, f"{value[:64]!r} is not a date, time or duration", TIME_FORMS
            ) from None
    else:
        raise ValidationError(field, "must be a string", TIME_FORMS)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "must be an integer", f"{low}..{high}")
    if not low <= value <= high:
        raise ValidationError(field, f"{value} is outside {low}..{high}", f"{low}..{high}")
    return value


def _name(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a non-empty string", f"1..{MAX_NAME} characters")
    if len(value) > MAX_NAME:
        raise ValidationError(field, f"has {len(value)} characters", f"at most {MAX_NAME}")
    return value


def validate_request(
    *,
    task_type: object = None,
    domain: object = None,
    since: object = None,
    until: object = None,
    bucket: object = "day",
    bucket_size: object = None,
    metrics: object = None,
    max_episodes: object = DEFAULT_MAX_EPISODES,
    significance_level: object = 0.05,
) -> TrendRequest:
    """Check every argument; raise ValidationError naming the field, the problem and the limit."""
    from self_learning_memory.model.episode import TaskType

    if task_type is not None and task_type not in {t.value for t in TaskType}:
        raise ValidationError(
            "task_type", f"{task_type!r} is not a task type", " / ".join(t.value for t in TaskType)
        )
    if bucket not in BUCKETS:
        raise ValidationError("bucket", f"{bucket!r} is not supported", " / ".join(BUCKETS))
    high = MAX_BUCKET_DAYS if bucket == "day" else MAX_BUCKET_EPISODES
    default_size = 1 if bucket == "day" else 10
    size = _int("bucket_size", default_size if bucket_size is None else bucket_size, 1, high)
    chosen: tuple[str, ...]
    if metrics is None:
        chosen = METRICS
    else:
        if isinstance(metrics, str | bytes) or not isinstance(metrics, Sequence) or not metrics:
            raise ValidationError("metrics", "must be a non-empty list", ", ".join(METRICS))
        for metric in metrics:
            if metric not in METRICS:
                raise ValidationError("metrics", f"{metric!r} is not a metric", ", ".join(METRICS))
        chosen = tuple(dict.fromkeys(str(m) for m in metrics))
    start, end = _time("since", since), _time("until", until)
    if start is not None and end is not None and start >= end:
        raise ValidationError("until", "must be after 'since'", f"> {start.isoformat()}")
    if (
        isinstance(significance_level, bool)
        or not isinstance(significance_level, int | float)
        or not math.isfinite(significance_level)
        or not 0.0 < float(significance_level) < 1.0
    ):
        raise ValidationError(
            "significance_level", f"{significance_level!r} is not in (0, 1)", "(0, 1)"
        )
    return TrendRequest(
        task_type=None if task_type is None else str(task_type),
        domain=_name("domain", domain),
        since=start,
        until=end,
        bucket="day" if bucket == "day" else "episodes",
        bucket_size=size,
        metrics=chosen,
        max_episodes=_int("max_episodes", max_episodes, 1, MAX_EPISODES_LIMIT),
        significance_level=float(significance_level),
    )
