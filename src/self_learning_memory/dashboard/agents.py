"""The per-agent page: every agent's executions from ``memory.agent_metrics`` (totals, success
rate, durations, steps, errors, streaks, last execution, type) as a table, and each agent's
success rate per window (``?window=hour|day|week``, default day) as one line per agent.

The totals are all time; the chart covers ``agent_metrics``' series (the last 48 hours, 30
days or 26 weeks). The busiest :data:`TOP_AGENTS` agents are listed one by one, the rest
folded into one ``other`` row (and line)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..core.agents import SERIES_WINDOWS
from ..model.timeline import WINDOWS
from ..presenters.charts import agent_success_chart, render_svg
from .html import Html, esc, layout, link, table, url
from .pages import _pct, _when, _window

if TYPE_CHECKING:
    from ..core.memory import SelfLearningMemory
    from ..model.agents import AgentSummary

__all__ = ["TOP_AGENTS", "agents_page"]

TOP_AGENTS = 10  # the busiest agents drawn one by one (a line each); the rest fold into "other"


def _ms(value: float) -> str:
    return f"{value:,.0f}"


def _row(a: AgentSummary) -> list[object]:
    name = a.agent if a.agents == 1 else f"{a.agent} ({a.agents} agents)"
    return [
        Html(f'<span class="agent">{esc(name)}</span>'),
        a.agent_type,
        a.executions,
        a.successes,
        _pct(a.success_rate if a.executions else None),
        _ms(a.avg_duration_ms),
        _ms(a.min_duration_ms),
        _ms(a.max_duration_ms),
        a.steps,
        a.errors,
        a.current_streak,
        a.longest_streak,
        _when(a.last_execution),
    ]


async def agents_page(memory: SelfLearningMemory, prefix: str, query: Mapping[str, str]) -> str:
    """Per-agent totals and success over time (bad ``window``: ValidationError, HTTP 400)."""
    window = _window(query)
    metrics = await memory.agent_metrics(window=window, top=TOP_AGENTS)
    choices = " ".join(
        str(link(url(prefix, "agents", window=w), w, "active" if w == window else ""))
        for w in WINDOWS
    )
    if metrics.total_executions == 0:
        body = Html(
            '<div class="notice" id="agents-empty"><p><strong>No agent has recorded an '
            "execution yet.</strong></p><p>An episode started with an agent "
            "(<code>start_episode(..., agent=&quot;code-reviewer&quot;)</code>, the MCP "
            "client's name, or <code>memory-cli episode create --agent</code>) records one when "
            "it completes; <code>record_agent_execution</code> records one on its own.</p></div>"
        )
        return layout(prefix, "agents", "Agents", body)
    rows = [_row(a) for a in metrics.agents]
    body = Html(
        f'<p class="muted">{esc(metrics.counts_line())}, '
        f"{esc(_pct(metrics.success_rate))} successful (all time).</p>"
        + table(
            [
                "agent",
                "type",
                "executions",
                "successes",
                "success rate",
                "avg ms",
                "min ms",
                "max ms",
                "steps",
                "errors",
                "current streak",
                "longest streak",
                "last execution (UTC)",
            ],
            rows,
            cls="data agents",
        )
        + "<h2>Success over time</h2>"
        f'<p class="radios">per {choices}'
        f' <span class="muted">(each agent\'s success rate in each of the last '
        f"{SERIES_WINDOWS[window]} {esc(window)}s in which it ran)</span></p>"
        f'<div class="chart-box" id="agent-success">'
        f"{render_svg(agent_success_chart(metrics), width=1040)}</div>"
    )
    return layout(prefix, "agents", "Agents", body)
