"""`memory-cli monitor agents`: each agent's executions (``SelfLearningMemory.agent_metrics``,
aggregated in SQL): totals, success rate, durations, steps, errors, streaks, and the success
series per window. The busiest ``--top`` agents one by one, the rest folded into ``other``.
``--plot FILE`` also draws each agent's success rate per window (the dashboard's agents chart;
``.svg``, or ``.png`` with the plot extra)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..files import check_plot, write_plot
from ..output import emit, table
from ..state import fail, get_state, run_with_memory
from .episode import parse_since

if TYPE_CHECKING:
    from rich.console import Console

    from ...core.memory import SelfLearningMemory
    from ...model.agents import AgentMetrics

__all__ = ["agents"]


class Window(StrEnum):
    hour = "hour"
    day = "day"
    week = "week"


def _human(console: Console, m: AgentMetrics) -> None:
    since = "all time" if m.since is None else f"since {m.since:%Y-%m-%d %H:%M} UTC"
    console.print(f"{m.counts_line()}, {m.success_rate:.1%} successful ({since})")
    table(
        console,
        "agents",
        ["agent", "type", "runs", "ok", "rate", "avg ms", "errors", "streak", "last"],
        [
            [
                a.agent if a.agents == 1 else f"{a.agent} ({a.agents})",
                a.agent_type,
                a.executions,
                a.successes,
                f"{a.success_rate:.0%}",
                f"{a.avg_duration_ms:.0f}",
                a.errors,
                f"{a.current_streak}/{a.longest_streak}",
                "-" if a.last_execution is None else f"{a.last_execution:%m-%d %H:%M}",
            ]
            for a in m.agents
        ],
    )
    rows = [
        [
            a.agent,
            f"{p.window_start:%Y-%m-%d %H:%M}",
            p.executions,
            p.successes,
            f"{p.success_rate:.0%}",
        ]
        for a in m.agents
        for p in a.series
    ]
    if rows:
        table(console, f"per {m.window}", ["agent", "window", "runs", "ok", "rate"], rows)


def agents(
    ctx: typer.Context,
    window: Annotated[
        Window, typer.Option("--window", "-w", help="Series window: hour, day or week.")
    ] = Window.day,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only executions since: Nh, Nd or Nm ago (e.g. 7d)."),
    ] = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            min=1,
            max=1000,
            help="Agents shown one by one (default monitoring.top_agents).",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Also draw each agent's success rate per --window into FILE (.svg, or .png: "
            "plot extra).",
        ),
    ] = None,
) -> None:
    """Per agent: executions, success rate, durations, steps, errors, streaks and the
    success series per --window (json/yaml: every field; human: tables)."""
    from ...errors import ValidationError

    state = get_state(ctx)
    if plot is not None:
        check_plot(state, plot)
    start = None
    if since is not None:
        try:
            start = parse_since(since)
        except ValidationError as exc:
            fail(state, exc)

    async def action(memory: SelfLearningMemory) -> AgentMetrics:
        return await memory.agent_metrics(since=start, window=window.value, top=top)

    found = run_with_memory(state, action)
    if plot is None:
        emit(state, found, lambda c, _: _human(c, found))
        return
    from ...presenters.charts import agent_success_chart

    written = write_plot(state, agent_success_chart(found), plot)
    data: dict[str, Any] = found.model_dump(mode="json")
    data["plot"] = {"path": str(plot), "bytes": written}

    def human(console: Console, _: Any) -> None:
        _human(console, found)
        console.print(f"wrote {written} bytes to {plot}")

    emit(state, data, human)
