"""`memory-cli pattern analyze-trends`: is the agent getting better? Trends of the completed
episodes' metrics (``analysis/memory_series.py``, an optional extra, does the statistics)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ....analysis.memory_request import (
    DEFAULT_MAX_EPISODES,
    MAX_BUCKET_DAYS,
    MAX_BUCKET_EPISODES,
    MAX_EPISODES_LIMIT,
    METRICS,
    Bucket,
)
from ....presenters import arguments as A
from ...choices import choices
from ...output import emit, table
from ...state import get_state, run_with_memory

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory

__all__ = ["MetricArg", "analyze_trends"]

# the trend metrics as a repeatable flag (typer takes a list of choices only as an enum)
if TYPE_CHECKING:
    MetricArg = StrEnum
else:
    MetricArg = choices("MetricArg", METRICS)


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

        from ....analysis.memory_request import validate_request
        from ....errors import CapabilityUnavailableError, ValidationError

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
