"""The columns the SQL stores read and the domain objects built from their rows.

Both stores have the same columns; only time values (see :class:`~.dialect.Dialect`) and the
``tags`` column's type differ, so each decoder takes the dialect.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ...model.episode import ComplexityLevel, Episode, ExecutionStep, TaskContext, TaskType
from ...model.pattern import AnyPattern, Evidence, Heuristic
from ...model.records import EpisodeCandidate, candidate_row
from ...model.usage import EpisodeUsage, PatternUsage
from ..codec import episode_from_row, pattern_from_json, step_from_row
from .dialect import SQLITE, Dialect

__all__ = [
    "CANDIDATE_COLUMNS",
    "HEURISTIC_COLUMNS",
    "USAGE_COLUMNS",
    "candidate",
    "episode",
    "heuristic_from_row",
    "patterns",
    "step",
    "usage_from_row",
]

USAGE_COLUMNS = (
    "retrieval_count, application_count, success_count, failure_count, last_retrieved, "
    "last_applied, created_at, effectiveness"
)
HEURISTIC_COLUMNS = (
    "heuristic_id, condition_text, action_text, domain, confidence, evidence, created_at, "
    "updated_at"
)
CANDIDATE_COLUMNS = (
    "e.episode_id, e.task_description, e.task_type, e.outcome_type, e.reward_total, "
    "e.end_time, e.tool_summary, e.domain, e.language, e.framework, e.complexity, e.tags"
)
# a candidate query's episode usage (retrieval feedback) in the same statement: select
# ``CANDIDATE_USAGE_COLUMNS`` after the other columns, join ``USAGE_JOIN`` to ``episodes e``
CANDIDATE_USAGE_COLUMNS = "u.uses, u.success, u.helpful, u.unhelpful, u.last_used"
USAGE_JOIN = "LEFT JOIN episode_usage u ON u.episode_id = e.episode_id"


def _time(dialect: Dialect, value: Any) -> datetime | None:
    return None if value is None else dialect.from_time(value)


def usage_from_row(row: tuple[Any, ...], dialect: Dialect = SQLITE) -> PatternUsage:
    """A pattern's usage from ``USAGE_COLUMNS``."""
    return PatternUsage(
        retrieval_count=row[0],
        application_count=row[1],
        success_count=row[2],
        failure_count=row[3],
        last_retrieved=_time(dialect, row[4]),
        last_applied=_time(dialect, row[5]),
        created_at=dialect.from_time(row[6]),
        effectiveness_score=row[7],
    )


def heuristic_from_row(row: tuple[Any, ...], dialect: Dialect = SQLITE) -> Heuristic:
    """A heuristic from ``HEURISTIC_COLUMNS``."""
    return Heuristic(
        heuristic_id=uuid.UUID(row[0]),
        condition=row[1],
        action=row[2],
        domain=row[3],
        confidence=row[4],
        evidence=Evidence.model_validate_json(row[5]),
        created_at=dialect.from_time(row[6]),
        updated_at=dialect.from_time(row[7]),
    )


def patterns(
    dialect: Dialect, rows: Iterable[tuple[Any, ...]]
) -> list[tuple[AnyPattern, PatternUsage]]:
    """Patterns from rows of ``pattern_data, USAGE_COLUMNS``."""
    return [(pattern_from_json(r[0]), usage_from_row(r[1:], dialect)) for r in rows]


def step(dialect: Dialect, row: tuple[Any, ...]) -> ExecutionStep:
    """A step from ``STEP_COLUMNS``."""
    if dialect.microsecond_times:
        return step_from_row(row)
    values = list(row)
    values[2] = dialect.time_us(values[2])
    return step_from_row(tuple(values))


def episode(dialect: Dialect, row: tuple[Any, ...], steps: list[ExecutionStep]) -> Episode:
    """An episode from ``EPISODE_COLUMNS`` and its steps."""
    if dialect.microsecond_times:
        return episode_from_row(row, steps)
    values = list(row)
    values[4] = dialect.time_us(values[4])
    values[5] = None if values[5] is None else dialect.time_us(values[5])
    return episode_from_row(tuple(values), steps)


_Parsed = tuple[
    uuid.UUID,
    str,
    TaskType,
    TaskContext,
    datetime | None,
    tuple[str, ...],
    str | None,
    float | None,
]
_PARSED: OrderedDict[str, _Parsed] = OrderedDict()
_PARSED_MAX = 100_000


def _parse(dialect: Dialect, row: tuple[Any, ...]) -> _Parsed:
    # Built from columns the store wrote itself: no re-validation on the hot path.
    context = TaskContext.model_construct(
        domain=row[7],
        language=row[8],
        framework=row[9],
        complexity=ComplexityLevel(row[10]),
        tags=dialect.tags(row[11]),
    )
    return (
        uuid.UUID(row[0]),
        row[1],
        TaskType(row[2]),
        context,
        _time(dialect, row[5]),
        tuple(json.loads(row[6])),
        row[3],
        row[4],
    )


def candidate(
    dialect: Dialect,
    row: tuple[Any, ...],
    lexical: float | None,
    source: str,
    usage_at: int | None = None,
) -> EpisodeCandidate:
    """A candidate from ``CANDIDATE_COLUMNS`` (and, from ``usage_at`` on, the
    ``CANDIDATE_USAGE_COLUMNS``). Only completed episodes are candidates and they
    no longer change, so where the dialect says so their parsed fields are memoised per
    process (bounded); the usage is not (it changes)."""
    if dialect.memo_candidates:
        parsed = _PARSED.get(row[0])
        if parsed is None:
            parsed = _PARSED[row[0]] = _parse(dialect, row)
            if len(_PARSED) > _PARSED_MAX:
                _PARSED.popitem(last=False)
    else:
        parsed = _parse(dialect, row)
    eid, description, task_type, context, end_time, tools, outcome_type, reward = parsed
    return candidate_row(
        eid,
        description,
        task_type,
        context,
        outcome_type,
        reward,
        end_time,
        tools,
        lexical,
        (source,),
        None if usage_at is None else _usage(dialect, row, usage_at),
        usage_at is not None,
    )


def _usage(dialect: Dialect, row: tuple[Any, ...], at: int) -> EpisodeUsage | None:
    if row[at] is None:  # no usage row: no feedback yet
        return None
    return EpisodeUsage(
        uses=int(row[at]),
        success=float(row[at + 1]),
        helpful=int(row[at + 2]),
        unhelpful=int(row[at + 3]),
        last_used=_time(dialect, row[at + 4]),
    )
