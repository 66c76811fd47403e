"""`memory-cli pattern` (alias `pat`): list, view, analyze, analyze-trends, effectiveness, decay.

Patterns come from the durable store (filtered in SQL), with their real usage counters;
effectiveness is recomputed from those counters (``patterns/effectiveness.py``) and
`decay --force` really removes the patterns below the threshold."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...analysis.memory_request import (
    DEFAULT_MAX_EPISODES,
    MAX_BUCKET_DAYS,
    MAX_BUCKET_EPISODES,
    MAX_EPISODES_LIMIT,
    METRICS,
    Bucket,
)
from ...presenters import arguments as A
from ..choices import choices, dashed
from ..output import emit, table
from ..state import check_text, get_state, run_with_memory

if TYPE_CHECKING:
    from rich.console import Console

    from ...core.memory import SelfLearningMemory
    from ...model.pattern import AnyPattern
    from ...model.usage import PatternUsage

app = typer.Typer(
    help="Inspect learned patterns, their effectiveness, and decay them (alias: pat).",
    no_args_is_help=True,
)

MAX_SCAN = 100_000  # patterns read by effectiveness and decay
_PAGE = 1000


# choices from the model: pattern types written with dashes (tool-sequence), the trend
# metrics as a repeatable flag (typer takes a list of choices only as an enum)
if TYPE_CHECKING:
    PatternTypeArg = StrEnum
    MetricArg = StrEnum
else:
    PatternTypeArg = dashed("PatternTypeArg", A.PatternTypeName)
    MetricArg = choices("MetricArg", METRICS)


async def _all_patterns(memory: SelfLearningMemory) -> list[tuple[AnyPattern, PatternUsage]]:
    out: list[tuple[AnyPattern, PatternUsage]] = []
    while len(out) < MAX_SCAN:
        page = await memory.list_patterns(None, _PAGE, len(out))
        out += page
        if len(page) < _PAGE:
            break
    return out


@app.command("list")
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
        from ...model.records import PatternFilters
        from ...presenters.patterns import pattern_row

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


@app.command("view")
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
        from ...learning.analysis import effectiveness_rows, is_active
        from ...presenters.patterns import pattern_row

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


@app.command("analyze")
def analyze(
    ctx: typer.Context,
    pattern_id: Annotated[str, typer.Argument(help="Pattern id (UUID).")],
    episodes: Annotated[
        int,
        typer.Option("--episodes", "-e", min=1, max=100, help="Newest source episodes, 1..100."),
    ] = 100,
) -> None:
    """How the pattern's source episodes went: outcomes, rewards, success rate, by day."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> Any:
        from ...learning.analysis import analyze_episodes

        check_text("PATTERN_ID", pattern_id, 100)
        pattern, _usage = await memory.get_pattern(pattern_id)
        ids = (await memory.pattern_evidence([pattern.id], episodes)).get(pattern.id, [])
        loaded = [await memory.get_episode(i) for i in ids]
        return analyze_episodes(pattern, loaded)

    def human(console: Console, a: Any) -> None:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{x:.0%}"

        console.print(f"[bold]{a.pattern_type}[/bold] {a.pattern_id}: {a.description}")
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

    emit(state, run_with_memory(state, act), human)


def _trend_rows(d: dict[str, Any]) -> list[list[Any]]:
    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3g}"

    rows = []
    for m in d["metrics"].values():
        if m["status"] != "ok":
            rows.append([m["metric"], m["reason"], "-", "-", "-", "-", "-", m["buckets_used"]])
            continue
        ci = m.get("confidence_interval") or [None, None]
        rows.append(
            [
                m["metric"],
                "flat (n.s.)" if m["direction"] == "no significant trend" else m["direction"],
                "-" if m["slope"] is None else f"{m['slope']:+.3g}",
                f"{num(ci[0])}..{num(ci[1])}",
                "-" if m.get("p_value") is None else f"{m['p_value']:.2g}",
                num(m["first_window_mean"]),
                num(m["last_window_mean"]),
                m["buckets_used"],
            ]
        )
    return rows


@app.command("analyze-trends")
def analyze_trends(
    ctx: typer.Context,
    task_type: Annotated[
        A.TaskTypeName | None, typer.Option("--task-type", "-t", help="Only this task type.")
    ] = None,
    domain: Annotated[str | None, typer.Option("--domain", help="Only this domain.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Inclusive: ISO 8601 (UTC) or Nd/Nh/Nm ago.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Exclusive: ISO 8601 (UTC) or Nd/Nh/Nm ago.")
    ] = None,
    bucket: Annotated[
        Bucket, typer.Option("--bucket", "-b", help="Group by day(s) or by N episodes.")
    ] = "day",
    bucket_size: Annotated[
        int | None,
        typer.Option(
            "--bucket-size",
            "-n",
            help=f"Days per bucket (1..{MAX_BUCKET_DAYS}, default 1) or episodes per bucket "
            f"(1..{MAX_BUCKET_EPISODES}, default 10).",
        ),
    ] = None,
    metric: Annotated[
        list[MetricArg] | None,
        typer.Option("--metric", "-m", help="Repeatable; default: all five."),
    ] = None,
    max_episodes: Annotated[
        int,
        typer.Option(
            "--max-episodes", help=f"Newest matching episodes read, 1..{MAX_EPISODES_LIMIT}."
        ),
    ] = DEFAULT_MAX_EPISODES,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output (= --format json).")] = False,
) -> None:
    """Is the agent getting better? Trends of reward, success rate, duration, steps and tokens
    over the completed episodes, per day or per N episodes (OLS slope with its CI and p-value,
    Mann-Kendall, first vs last third; lower is better for duration, steps and tokens)."""
    state = get_state(ctx)
    if as_json:
        state.format = "json"

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        import importlib

        from ...analysis.memory_request import validate_request
        from ...errors import CapabilityUnavailableError, ValidationError

        try:
            request = validate_request(
                task_type=task_type,
                domain=domain,
                since=since,
                until=until,
                bucket=bucket,
                bucket_size=bucket_size,
                metrics=None if not metric else [m.value for m in metric],
                max_episodes=max_episodes,
            )
        except ValidationError as exc:  # name the flag, not the library's argument
            raise ValidationError(
                "--" + exc.field.replace("_", "-"), exc.problem, exc.limit
            ) from exc

        try:
            series = importlib.import_module("self_learning_memory.analysis.memory_series")
        except ImportError as exc:
            raise CapabilityUnavailableError(
                f"analyze-trends needs the analysis extra ({exc.name} is missing): "
                "pip install 'self-learning-memory[analysis]'"
            ) from exc
        result: dict[str, Any] = await series.analyze_memory_trends(memory, request)
        return result

    def human(console: Console, d: dict[str, Any]) -> None:
        f = d["filters"]
        scope = (
            ", ".join(f"{k} {v}" for k, v in f.items() if v is not None and k != "completed")
            or "all completed episodes"
        )
        size = d["bucket_size"]
        per = f"{size} day(s)" if d["bucket"] == "day" else f"{size} episodes"
        console.print(
            f"{d['episodes_analyzed']} episodes ({scope}) in {d['buckets']} buckets of {per}"
            + (
                f"; newest {d['max_episodes']} of {d['episodes_matching']}"
                if d["truncated"]
                else ""
            )
        )
        level = round((1 - d["significance_level"]) * 100, 6)
        table(
            console,
            "trends (slope per day)" if d["bucket"] == "day" else f"trends (slope per {per})",
            ["metric", "direction", "slope", f"{level:g}% CI", "p", "first", "last", "buckets"],
            _trend_rows(d),
        )
        for line in d["answer"]:
            console.print(line)

    emit(state, run_with_memory(state, act), human)


@app.command("effectiveness")
def effectiveness(
    ctx: typer.Context,
    top: Annotated[int, typer.Option("--top", "-t", min=1, max=1000, help="1..1000.")] = 10,
    min_uses: Annotated[
        int,
        typer.Option("--min-uses", min=0, max=1_000_000, help="Minimum applications (0 = all)."),
    ] = 1,
) -> None:
    """The most effective patterns, from the store's usage counters (0.4 success + 0.3
    application + 0.2 recency + 0.1 volume)."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...learning.analysis import effectiveness_rows, is_active

        pairs = await _all_patterns(memory)
        rows = effectiveness_rows(pairs)
        considered = [r for r in rows if r.applications >= min_uses]
        scores = [r.effectiveness for r in rows]
        return {
            "patterns": considered[:top],
            "total_patterns": len(rows),
            "considered": len(considered),
            "active_last_30_days": sum(1 for _, u in pairs if is_active(u)),
            "mean_effectiveness": round(sum(scores) / len(scores), 6) if scores else None,
            "below_threshold": sum(1 for r in rows if r.below_threshold),
            "min_uses": min_uses,
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        rows = [
            [
                str(r.pattern_id)[:8],
                r.pattern_type,
                f"{r.effectiveness:.3f}",
                f"{r.success_rate:.2f}",
                f"{r.application_rate:.2f}",
                f"{r.applications}/{r.retrievals}",
                f"{r.days_since_last_use:.1f}",
                r.description[:60],
            ]
            for r in d["patterns"]
        ]
        table(
            console,
            f"top {len(rows)} of {d['considered']} patterns with >= {d['min_uses']} uses "
            f"({d['total_patterns']} in all, {d['active_last_30_days']} active)",
            ["id", "type", "eff", "success", "app rate", "applied/retrieved", "days", "pattern"],
            rows,
        )

    emit(state, run_with_memory(state, act), human)


@app.command("decay")
def decay(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Really remove them (otherwise only list).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report (same as the global --dry-run).")
    ] = False,
) -> None:
    """Patterns whose effectiveness fell below 0.3; removed with --force."""
    state = get_state(ctx)
    apply = force and not (dry_run or state.dry_run)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...learning.analysis import effectiveness_rows
        from ...model.usage import MIN_EFFECTIVENESS

        rows = effectiveness_rows(await _all_patterns(memory))
        below = [r for r in rows if r.below_threshold]
        result = await memory.decay_patterns(force=True) if apply else None
        return {
            "threshold": MIN_EFFECTIVENESS,
            "evaluated": len(rows),
            "candidates": below,
            "applied": apply,
            "dry_run": not apply,
            "removed": None if result is None else result["removed"],
            "result": result,
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        rows = [
            [str(r.pattern_id)[:8], r.pattern_type, f"{r.effectiveness:.3f}", r.description[:60]]
            for r in d["candidates"]
        ]
        if not rows:
            console.print(f"none of {d['evaluated']} patterns is below {d['threshold']}")
        else:
            table(
                console,
                f"{len(rows)} of {d['evaluated']} patterns below {d['threshold']}",
                ["id", "type", "eff", "pattern"],
                rows,
            )
        if d["applied"]:
            console.print(f"removed {d['removed']} patterns")
        elif force:
            console.print("dry run: nothing removed")
        elif rows:
            console.print("nothing removed; run with --force to remove them")

    emit(state, run_with_memory(state, act), human)
