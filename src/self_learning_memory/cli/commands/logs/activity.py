"""`memory-cli logs analyze`, `search`, `stats`: the window's steps as an activity log, counted
and searched in SQL (``storage/step_queries.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...output import emit, table
from ...state import check_text, get_state
from .window import SinceOpt, since_start, time_range, with_steps

if TYPE_CHECKING:
    from rich.console import Console

    from ....storage.step_queries import StepQueries

__all__ = ["analyze", "search", "stats"]


def analyze(
    ctx: typer.Context,
    since: SinceOpt = "24h",
    top: Annotated[int, typer.Option("--top", "-t", min=1, max=100, help="Tools listed.")] = 10,
    messages: Annotated[
        int, typer.Option("--messages", min=1, max=20, help="Common messages per error type.")
    ] = 3,
) -> None:
    """Totals, success rate, top tools, error patterns by type and the hourly trend."""
    state = get_state(ctx)
    start = since_start(state, since)

    async def action(q: StepQueries) -> dict[str, Any]:
        activity = await q.activity(start)
        return {
            "time_range": time_range(start, since),
            "total_episodes": activity.total_episodes,
            "total_steps": activity.total_steps,
            "average_steps_per_episode": round(activity.total_steps / activity.total_episodes, 3)
            if activity.total_episodes
            else 0.0,
            "success_rate": round(activity.success_rate, 4),
            "top_tools": await q.top_tools(start, top),
            "error_patterns": await q.error_patterns(start, messages),
            "performance_trends": await q.hourly(start),
            "truncated": activity.truncated,
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        console.print(
            f"[bold]{d['total_steps']} steps in {d['total_episodes']} episodes[/bold] "
            f"(last {since}), success rate {d['success_rate']:.1%}, "
            f"{d['average_steps_per_episode']:.1f} steps/episode"
        )
        table(
            console,
            "top tools",
            ["tool", "uses", "success", "avg ms"],
            [
                [t.tool, t.usage_count, f"{t.success_rate:.0%}", t.average_latency_ms]
                for t in d["top_tools"]
            ],
        )
        table(
            console,
            "errors",
            ["type", "occurrences", "episodes", "common messages"],
            [
                [e.error_type, e.occurrences, e.affected_episodes, " | ".join(e.common_messages)]
                for e in d["error_patterns"]
            ],
        )
        table(
            console,
            "per hour (UTC)",
            ["hour", "steps", "episodes", "success", "avg ms"],
            [
                [
                    f"{h.hour:%m-%d %H}h",
                    h.steps,
                    h.episodes,
                    f"{h.success_rate:.0%}",
                    h.average_latency_ms,
                ]
                for h in d["performance_trends"]
            ],
        )

    emit(state, with_steps(state, action), human)


def _record_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            r["timestamp"][:19],
            r["episode_id"][:8],
            r["step_number"],
            r["tool"],
            r["result"],
            r["latency_ms"],
            f"{r['action']} -> {r['message']}"[:80],
        ]
        for r in records
    ]


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Text in the tool, action or result.")],
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=1000, help="1..1000.")] = 50,
    since: SinceOpt = "24h",
) -> None:
    """Steps whose tool, action or result text contains QUERY (case-insensitive), newest first."""
    state = get_state(ctx)
    start = since_start(state, since)

    async def action(q: StepQueries) -> dict[str, Any]:
        check_text("QUERY", query, 1000)
        records = [r.to_dict() for r in await q.search(query, start, limit)]
        return {
            "query": query,
            "time_range": time_range(start, since),
            "count": len(records),
            "results": records,
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        table(
            console,
            f"{d['count']} steps matching '{query}'",
            ["time", "episode", "#", "tool", "result", "ms", "action -> result"],
            _record_rows(d["results"]),
        )

    emit(state, with_steps(state, action), human)


def stats(ctx: typer.Context, since: SinceOpt = "24h") -> None:
    """Totals: episodes, steps, unique tools, average latency, errors, episodes per hour."""
    state = get_state(ctx)
    start = since_start(state, since)

    async def action(q: StepQueries) -> dict[str, Any]:
        a = await q.activity(start)
        return {
            "time_range": time_range(start, since),
            "total_episodes": a.total_episodes,
            "total_steps": a.total_steps,
            "success_rate": round(a.success_rate, 4),
            "unique_tools": a.unique_tools,
            "average_latency_ms": a.average_latency_ms,
            "error_count": a.failed_steps,
            "total_tokens": a.total_tokens,
            "first_step": a.first_step,
            "last_step": a.last_step,
            "episodes_by_hour": await q.episodes_by_hour(start),
            "truncated": a.truncated,
        }

    emit(state, with_steps(state, action))
