"""`memory-cli pattern list`, `view`, `analyze`: learned patterns from the durable store
(filtered in SQL) with their real usage counters, and the episodes they were learned from."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ....presenters import arguments as A
from ...choices import dashed
from ...files import check_plot, write_plot
from ...output import emit, table
from ...state import check_text, get_state, run_with_memory

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory

__all__ = ["PatternTypeArg", "analyze", "list_patterns", "view"]

# pattern types from the model, written with dashes (tool-sequence)
if TYPE_CHECKING:
    PatternTypeArg = StrEnum
else:
    PatternTypeArg = dashed("PatternTypeArg", A.PatternTypeName)


def list_patterns(
    ctx: typer.Context,
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence", min=0.0, max=1000.0, help="success rate x sqrt(sample size)."
        ),
    ] = 0.0,
    min_success_rate: Annotated[
        float, typer.Option("--min-success-rate", min=0.0, max=1.0, help="0..1.")
    ] = 0.0,
    pattern_type: Annotated[
        PatternTypeArg | None, typer.Option("--pattern-type", "-p", help="Only this kind.")
    ] = None,
    domain: Annotated[str | None, typer.Option("--domain", help="Only this domain.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-l", min=1, max=A.MAX_LIMIT, help=f"1..{A.MAX_LIMIT}.")
    ] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, max=A.MAX_OFFSET)] = 0,
) -> None:
    """Learned patterns, most observed first (filters run in SQL)."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....model.records import PatternFilters
        from ....presenters.patterns import pattern_row

        if domain is not None:
            check_text("--domain", domain, 256)
        filters = PatternFilters(
            pattern_type=None if pattern_type is None else pattern_type.value.replace("-", "_"),
            domain=domain,
            min_success_rate=min_success_rate,
            min_confidence=min_confidence,
        )
        found = await memory.list_patterns(filters, limit, offset)
        return {
            "patterns": [pattern_row(p, u) for p, u in found],
            "count": len(found),
            "filters": filters.model_dump(mode="json"),
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        rows = [
            [
                p["pattern_id"][:8],
                p["pattern_type"],
                p["domain"],
                p["occurrences"],
                f"{p['success_rate']:.2f}",
                f"{p['confidence']:.2f}",
                f"{p['effectiveness']:.2f}",
                p["description"][:70],
            ]
            for p in d["patterns"]
        ]
        table(
            console,
            f"{d['count']} patterns",
            ["id", "type", "domain", "seen", "success", "conf", "eff", "pattern"],
            rows,
        )

    emit(state, run_with_memory(state, act), human)


def view(
    ctx: typer.Context,
    pattern_id: Annotated[str, typer.Argument(help="Pattern id (UUID).")],
    evidence: Annotated[
        int, typer.Option("--evidence", "-e", min=1, max=100, help="Evidence episodes shown.")
    ] = 10,
) -> None:
    """A pattern with its usage and effectiveness, and the episodes it was learned from."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....learning.analysis import effectiveness_rows, is_active
        from ....presenters.patterns import pattern_row

        check_text("PATTERN_ID", pattern_id, 100)
        pattern, usage = await memory.get_pattern(pattern_id)
        ids = (await memory.pattern_evidence([pattern.id], evidence)).get(pattern.id, [])
        episodes = []
        for eid in ids:
            e = await memory.get_episode(eid)
            episodes.append(
                {
                    "episode_id": str(e.episode_id),
                    "task_description": e.task_description,
                    "outcome": None if e.outcome is None else e.outcome.type,
                    "reward": None if e.reward is None else round(e.reward.total, 4),
                    "started_at": e.start_time.isoformat(),
                }
            )
        row = effectiveness_rows([(pattern, usage)])[0]
        return {
            **pattern_row(pattern, usage),
            "pattern": pattern.model_dump(mode="json"),
            "usage": usage.model_dump(mode="json"),
            "effectiveness_now": row.effectiveness,
            "usage_success_rate": row.success_rate,
            "application_rate": row.application_rate,
            "days_since_last_use": row.days_since_last_use,
            "active": is_active(usage),
            "below_decay_threshold": row.below_threshold,
            "evidence": episodes,
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        u = d["usage"]
        console.print(f"[bold]{d['pattern_type']}[/bold] {d['pattern_id']}")
        console.print(d["description"])
        console.print(
            f"domain {d['domain']}  seen {d['occurrences']}x  success {d['success_rate']:.2f}  "
            f"confidence {d['confidence']:.2f}"
        )
        console.print(
            f"usage: retrieved {u['retrieval_count']}, applied {u['application_count']} "
            f"({u['success_count']} ok, {u['failure_count']} failed), last use "
            f"{d['days_since_last_use']:.1f} days ago"
        )
        flag = " (below the decay threshold 0.3)" if d["below_decay_threshold"] else ""
        console.print(
            f"effectiveness now {d['effectiveness_now']:.3f} (stored {d['effectiveness']:.3f})"
            f"{flag}"
        )
        rows = [
            [e["episode_id"][:8], e["outcome"], e["reward"], e["task_description"][:60]]
            for e in d["evidence"]
        ]
        table(console, "learned from", ["episode", "outcome", "reward", "task"], rows)

    emit(state, run_with_memory(state, act), human)


def analyze(
    ctx: typer.Context,
    pattern_id: Annotated[str, typer.Argument(help="Pattern id (UUID).")],
    episodes: Annotated[
        int,
        typer.Option("--episodes", "-e", min=1, max=100, help="Newest source episodes, 1..100."),
    ] = 100,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Also draw the success rate by day into FILE (.svg, or .png: plot extra).",
        ),
    ] = None,
) -> None:
    """How the pattern's source episodes went: outcomes, rewards, success rate, by day."""
    state = get_state(ctx)
    if plot is not None:
        check_plot(state, plot)

    async def act(memory: SelfLearningMemory) -> Any:
        from ....learning.analysis import analyze_episodes

        check_text("PATTERN_ID", pattern_id, 100)
        pattern, _usage = await memory.get_pattern(pattern_id)
        ids = (await memory.pattern_evidence([pattern.id], episodes)).get(pattern.id, [])
        loaded = [await memory.get_episode(i) for i in ids]
        return analyze_episodes(pattern, loaded)

    def human(console: Console, a: Any) -> None:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{x:.0%}"

        console.print(f"[bold]{a.pattern_type}[/bold] {a.pattern_id}: {a.description}")
        if plot is not None:
            console.print(f"wrote the chart to {plot}")
        console.print(
            f"{a.episodes_analyzed} source episodes ({a.completed} completed): "
            f"{a.outcomes['success']} success, {a.outcomes['partial_success']} partial, "
            f"{a.outcomes['failure']} failure; success rate {pct(a.success_rate)}; trend {a.trend}"
        )
        if a.reward_mean is not None:
            console.print(
                f"reward mean {a.reward_mean:.3f} (min {a.reward_min:.3f}, max {a.reward_max:.3f})"
            )
        rows = [
            [p.day, p.episodes, p.successes, pct(p.success_rate), p.mean_reward]
            for p in a.over_time
        ]
        table(console, "by day", ["day", "episodes", "successes", "rate", "reward"], rows)

    analysis = run_with_memory(state, act)
    if plot is not None:
        from ....presenters.charts import pattern_chart

        write_plot(state, pattern_chart(analysis), plot)
    emit(state, analysis, human)
