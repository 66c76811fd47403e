"""Agent monitoring: recording agent executions and reading their metrics
(:mod:`..model.agents` is the data; ``storage/sql/agent_executions.py`` the SQL).

An episode started with an ``agent`` writes its execution in its completion's transaction;
:meth:`AgentMonitor.record_agent_execution` records one on its own. :meth:`AgentMonitor.metrics`
turns the store's aggregate rows (computed in SQL) into :class:`~..model.agents.AgentMetrics`,
the busiest ``top`` agents one by one and the rest folded into one ``other`` row.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import cast

from ..errors import ValidationError
from ..model.agents import (
    AGENT_WINDOWS,
    MAX_DURATION_MS,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_STEPS,
    OTHER_AGENTS,
    AgentAggregates,
    AgentExecution,
    AgentMetrics,
    AgentSummary,
    AgentTotals,
    AgentWindow,
    AgentWindowPoint,
    agent_type_of,
    check_agent,
)
from ..model.episode import utc_now
from ..model.limits import MAX_TASK_CHARS
from ..model.timeline import window_seconds
from ..model.validation import as_task_type, as_uuid
from .parts import MemoryParts

__all__ = ["MAX_SERIES_WINDOWS", "SERIES_WINDOWS", "AgentMonitor"]

# the series covers ``since`` (else this many windows back), at most MAX_SERIES_WINDOWS
SERIES_WINDOWS = {"hour": 48, "day": 30, "week": 26}
MAX_SERIES_WINDOWS = 1000


def _number(field: str, value: float, high: float) -> None:
    if not 0 <= value <= high:
        raise ValidationError(field, f"{value} is out of range", f"0..{high:g}")


class AgentMonitor:
    def __init__(self, parts: MemoryParts) -> None:
        self._parts = parts

    async def record_agent_execution(
        self,
        agent: str,
        success: bool,
        duration_ms: float,
        *,
        task_type: str | None = None,
        steps: int = 0,
        errors: int = 0,
        task_description: str | None = None,
        error_message: str | None = None,
        started_at: datetime | None = None,
        episode_id: uuid.UUID | str | None = None,
        execution_id: uuid.UUID | str | None = None,
    ) -> AgentExecution:
        name = check_agent(agent)
        if not isinstance(success, bool):
            raise ValidationError("success", "must be true or false")
        _number("duration_ms", duration_ms, MAX_DURATION_MS)
        _number("steps", steps, MAX_STEPS)
        _number("errors", errors, MAX_STEPS)
        if errors > steps and steps:
            raise ValidationError("errors", f"{errors} is more than the {steps} steps", steps)
        if error_message is not None and len(error_message) > MAX_ERROR_MESSAGE_CHARS:
            raise ValidationError(
                "error_message",
                f"is {len(error_message)} characters long",
                f"{MAX_ERROR_MESSAGE_CHARS} characters",
            )
        ended = utc_now()
        started = started_at or ended - timedelta(milliseconds=duration_ms)
        execution = AgentExecution(
            execution_id=as_uuid(execution_id) if execution_id is not None else uuid.uuid4(),
            agent=name,
            agent_type=agent_type_of(name),
            task_type=None if task_type is None else as_task_type(task_type).value,
            success=success,
            outcome="success" if success else "failure",
            duration_ms=float(duration_ms),
            steps=steps,
            errors=errors,
            started_at=started,
            ended_at=ended,
            episode_id=None if episode_id is None else as_uuid(episode_id),
            task_description=None
            if task_description is None
            else task_description[:MAX_TASK_CHARS],
            error_message=error_message,
        )
        await self._parts.storage.record_agent_execution(execution)
        return execution

    async def metrics(self, since: datetime | None, window: str, top: int | None) -> AgentMetrics:
        window_seconds(window)  # ValidationError naming the choices
        top = self._parts.config.monitoring.top_agents if top is None else top
        if not 1 <= top <= 1000:
            raise ValidationError("top", f"{top} is out of range", "1..1000")
        now = utc_now()
        width = AGENT_WINDOWS[window]
        span = timedelta(microseconds=width)
        first = now - span * SERIES_WINDOWS[window]
        if since is not None:
            first = max(since, now - span * MAX_SERIES_WINDOWS)
        found = await self._parts.storage.agent_aggregates(since, width, first)
        return _fold(found, now, since, window, top)


def _summary(row: AgentTotals, streaks: tuple[int, int]) -> AgentSummary:
    n, ok = row.executions, row.successes
    return AgentSummary(
        agent=row.agent,
        agent_type=row.agent_type,
        executions=n,
        successes=ok,
        failures=n - ok,
        success_rate=round(ok / n, 6) if n else 0.0,
        avg_duration_ms=round(row.avg_ms, 3),
        min_duration_ms=row.min_ms,
        max_duration_ms=row.max_ms,
        total_duration_ms=round(row.total_ms, 3),
        steps=row.steps,
        errors=row.errors,
        last_execution=row.last,
        current_streak=streaks[0],
        longest_streak=streaks[1],
    )


def _other(rows: list[AgentSummary]) -> AgentSummary:
    """The folded row of agents beyond the cap (streaks: the longest of any of them)."""
    n = sum(r.executions for r in rows)
    ok = sum(r.successes for r in rows)
    total = sum(r.total_duration_ms for r in rows)
    lasts = [r.last_execution for r in rows if r.last_execution is not None]
    return AgentSummary(
        agent=OTHER_AGENTS,
        agent_type="other",
        executions=n,
        successes=ok,
        failures=n - ok,
        success_rate=round(ok / n, 6) if n else 0.0,
        avg_duration_ms=round(total / n, 3) if n else 0.0,
        min_duration_ms=min(r.min_duration_ms for r in rows),
        max_duration_ms=max(r.max_duration_ms for r in rows),
        total_duration_ms=round(total, 3),
        steps=sum(r.steps for r in rows),
        errors=sum(r.errors for r in rows),
        last_execution=max(lasts) if lasts else None,
        current_streak=0,
        longest_streak=max(r.longest_streak for r in rows),
        agents=sum(r.agents for r in rows),
    )


def _fold(
    found: AgentAggregates, now: datetime, since: datetime | None, window: str, top: int
) -> AgentMetrics:
    from ..storage.codec import from_us

    rows = [_summary(r, found.streaks.get(r.agent, (0, 0))) for r in found.totals]
    kept, rest = rows[:top], rows[top:]
    # a real agent named "other" joins the folded row
    named_other = [r for r in kept if r.agent == OTHER_AGENTS]
    if rest:
        kept = [r for r in kept if r.agent != OTHER_AGENTS]
        kept.append(_other(rest + named_other))
    label = {r.agent: r.agent for r in kept}
    points: dict[str, dict[int, list[int]]] = {}
    for agent, start, n, ok in found.series:
        key = label.get(agent, OTHER_AGENTS)
        slot = points.setdefault(key, {}).setdefault(start, [0, 0])
        slot[0] += n
        slot[1] += ok
    for row in kept:
        row.series = [
            AgentWindowPoint(
                window_start=from_us(start),
                executions=n,
                successes=ok,
                success_rate=round(ok / n, 6) if n else 0.0,
            )
            for start, (n, ok) in sorted(points.get(row.agent, {}).items())
        ]
    executions = sum(r.executions for r in rows)
    successes = sum(r.successes for r in rows)
    duration = sum(r.total_duration_ms for r in rows)
    return AgentMetrics(
        generated_at=now,
        since=since,
        window=cast("AgentWindow", window),
        total_agents=len(rows),
        total_executions=executions,
        successful_executions=successes,
        success_rate=round(successes / executions, 6) if executions else 0.0,
        total_duration_ms=round(duration, 3),
        avg_duration_ms=round(duration / executions, 3) if executions else 0.0,
        agents=kept,
    )
