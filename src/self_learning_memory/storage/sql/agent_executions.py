"""Agent executions (table ``agent_executions``: SQLite migration 6, PostgreSQL migration 5)
and their aggregation, in SQL.

A row is written by the completion transaction of an episode that has an agent
(``learning_sql.commit_completion``, keyed by the episode's id so a retried or replayed
completion writes it once), or on its own (:func:`record_execution`, keyed by the caller's
execution id). Rows are ordered by ``seq`` (insertion order). The same statement sequence
updates the agent's running totals (``agent_totals``: counts, sums, min/max, last time and the
success streaks in insertion order) with one ``INSERT ... ON CONFLICT DO UPDATE``, so the totals
always equal the rows' and are exact across processes (SQLite serialises writers; PostgreSQL
locks the agent's totals row for the rest of the transaction).

:func:`aggregate` reads, in one snapshot: all-time totals and streaks from ``agent_totals``
(one row per agent, no scan of the executions); for ``since``, a ``GROUP BY agent`` over the
executions in that range (through the ``ended_at`` index) and the streaks within it (window
functions: gaps and islands); and the per-window series (``GROUP BY agent, window``). Python
only folds these aggregate rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ...model.agents import AgentAggregates, AgentExecution, AgentTotals, AgentType
from .dialect import Dialect
from .program import Program, changes, execute, rows

__all__ = [
    "STREAK_ROWS",
    "AgentAggregates",
    "AgentTotals",
    "aggregate",
    "executions_after",
    "record_execution",
]

STREAK_ROWS = 1000  # streaks are computed over each agent's newest executions

COLUMNS = (
    "execution_id, agent, agent_type, task_type, success, outcome, duration_ms, step_count, "
    "error_count, started_at, ended_at, episode_id, task_description, error_message"
)
_MONDAY_US = 4 * 86_400_000_000  # 1970-01-01 was a Thursday: weeks start on Monday


def record_execution(d: Dialect, ex: AgentExecution) -> Program[bool]:
    """Insert ``ex`` unless its id is stored already; whether it was inserted."""
    inserted = yield changes(
        f"INSERT INTO agent_executions ({COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (execution_id) DO NOTHING",
        (
            str(ex.execution_id),
            ex.agent,
            ex.agent_type.value,
            ex.task_type,
            1 if ex.success else 0,
            ex.outcome,
            ex.duration_ms,
            ex.steps,
            ex.errors,
            d.to_time(ex.started_at),
            d.to_time(ex.ended_at),
            None if ex.episode_id is None else str(ex.episode_id),
            ex.task_description,
            ex.error_message,
        ),
    )
    if int(inserted) == 0:
        return False
    ok = 1 if ex.success else 0
    streak = "CASE WHEN excluded.successes = 1 THEN agent_totals.current_streak + 1 ELSE 0 END"
    yield execute(
        "INSERT INTO agent_totals (agent, agent_type, executions, successes, total_ms, min_ms, "
        "max_ms, step_count, error_count, last_at, current_streak, longest_streak) "
        "VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent) DO UPDATE SET "
        "agent_type = excluded.agent_type, "
        "executions = agent_totals.executions + 1, "
        "successes = agent_totals.successes + excluded.successes, "
        "total_ms = agent_totals.total_ms + excluded.total_ms, "
        f"min_ms = {d.least}(agent_totals.min_ms, excluded.min_ms), "
        f"max_ms = {d.greatest}(agent_totals.max_ms, excluded.max_ms), "
        "step_count = agent_totals.step_count + excluded.step_count, "
        "error_count = agent_totals.error_count + excluded.error_count, "
        f"last_at = {d.greatest}(agent_totals.last_at, excluded.last_at), "
        f"current_streak = {streak}, "
        f"longest_streak = {d.greatest}(agent_totals.longest_streak, {streak})",
        (
            ex.agent,
            ex.agent_type.value,
            ok,
            ex.duration_ms,
            ex.duration_ms,
            ex.duration_ms,
            ex.steps,
            ex.errors,
            d.to_time(ex.ended_at),
            ok,
            ok,
        ),
    )
    return True


def executions_after(
    d: Dialect, after: int, limit: int
) -> Program[list[tuple[int, AgentExecution]]]:
    """The executions after insertion number ``after``, oldest first, with their numbers (a
    copy by ``storage migrate`` keeps their order, so the target's streaks are the same)."""
    found = yield rows(
        f"SELECT seq, {COLUMNS} FROM agent_executions WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    )
    return [(int(r[0]), _from_row(d, tuple(r[1:]))) for r in found]


def _from_row(d: Dialect, r: tuple[Any, ...]) -> AgentExecution:
    # built from columns this store wrote itself
    return AgentExecution.model_construct(
        execution_id=uuid.UUID(r[0]),
        agent=r[1],
        agent_type=AgentType(r[2]) if r[2] in AgentType._value2member_map_ else AgentType.OTHER,
        task_type=r[3],
        success=bool(r[4]),
        outcome=r[5],
        duration_ms=float(r[6]),
        steps=int(r[7]),
        errors=int(r[8]),
        started_at=d.from_time(r[9]),
        ended_at=d.from_time(r[10]),
        episode_id=None if r[11] is None else uuid.UUID(r[11]),
        task_description=r[12],
        error_message=r[13],
    )


def aggregate(
    d: Dialect, since: datetime | None, window_us: int, series_from: datetime
) -> Program[AgentAggregates]:
    """Totals and streaks of executions ended at or after ``since`` (all when None), and the
    series in windows of ``window_us`` microseconds from ``series_from``."""
    if since is None:
        totals = yield rows(
            "SELECT agent, agent_type, executions, successes, total_ms / executions, min_ms, "
            "max_ms, total_ms, step_count, error_count, last_at, current_streak, longest_streak "
            "FROM agent_totals ORDER BY executions DESC, agent"
        )
        streaks = {str(r[0]): (int(r[11]), int(r[12])) for r in totals}
    else:
        totals, streaks = yield from _since(d, since)
    series = yield from _series(d, window_us, series_from)
    return AgentAggregates(
        totals=[
            AgentTotals(
                str(r[0]),
                str(r[1]),
                int(r[2]),
                int(r[3]),
                float(r[4] or 0.0),
                float(r[5] or 0.0),
                float(r[6] or 0.0),
                float(r[7]),
                int(r[8]),
                int(r[9]),
                None if r[10] is None else d.from_time(r[10]),
            )
            for r in totals
        ],
        streaks=streaks,
        series=series,
    )


def _since(d: Dialect, since: datetime) -> Program[tuple[list[Any], dict[str, tuple[int, int]]]]:
    """Totals and streaks (within the range, over each agent's newest :data:`STREAK_ROWS`) of
    the executions ended at or after ``since``, read through the ``ended_at`` index."""
    # materialised first: the planner must read the range through the ended_at index, not
    # walk every row in (agent, seq) order to save a sort
    rng = (
        "WITH r AS MATERIALIZED (SELECT seq, agent, agent_type, success, duration_ms, "
        "step_count, error_count, ended_at FROM agent_executions WHERE ended_at >= ?) "
    )
    args = (d.to_time(since),)
    totals = yield rows(
        rng + "SELECT agent, max(agent_type), count(*), coalesce(sum(success), 0), "
        "avg(duration_ms), min(duration_ms), max(duration_ms), coalesce(sum(duration_ms), 0), "
        "coalesce(sum(step_count), 0), coalesce(sum(error_count), 0), max(ended_at) "
        "FROM r GROUP BY agent ORDER BY count(*) DESC, agent",
        args,
    )
    found = yield rows(
        rng + ", recent AS (SELECT agent, success, row_number() OVER "
        "(PARTITION BY agent ORDER BY seq DESC) AS back FROM r), "
        "ranked AS (SELECT agent, success, back - row_number() OVER "
        "(PARTITION BY agent, success ORDER BY back) AS grp FROM recent WHERE back <= ?), "
        "islands AS (SELECT agent, grp, count(*) AS n FROM ranked WHERE success = 1 "
        "GROUP BY agent, grp) "
        "SELECT agent, max(n), coalesce(max(CASE WHEN grp = 0 THEN n END), 0) FROM islands "
        "GROUP BY agent",
        (*args, STREAK_ROWS),
    )
    return list(totals), {str(r[0]): (int(r[2]), int(r[1])) for r in found}


def _series(
    d: Dialect, window_us: int, series_from: datetime
) -> Program[list[tuple[str, int, int, int]]]:
    """Executions and successes per agent and window, from ``series_from``."""
    offset = _MONDAY_US if window_us % (7 * 86_400_000_000) == 0 else 0
    us = d.us_sql("ended_at")
    bucket = f"(({us} - {offset}) / {int(window_us)}) * {int(window_us)} + {offset}"
    series = yield rows(
        # grouped by window first: SQLite then reads the range through the (ended_at, agent,
        # success) index alone instead of every row in agent order
        f"SELECT agent, {bucket} AS bucket, count(*), coalesce(sum(success), 0) "
        "FROM agent_executions WHERE ended_at >= ? GROUP BY bucket, agent",
        (d.to_time(series_from),),
    )
    return [(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in series]
