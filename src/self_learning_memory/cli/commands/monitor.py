"""`memory-cli monitor` (alias `mon`): status, metrics, export (prometheus, json, influx), a
live view and per-agent metrics (``agents``, in ``monitor_agents.py``). The numbers are the store's, measured now (``core/metrics.py``): this process has no
history of its own, so retrieval latency comes from a few real retrieval probes."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..files import check_output, check_plot, write_atomic, write_plot
from ..output import emit, stdout_console, table
from ..state import CliState, dry_run_report, fail, get_state, run_with_memory
from .episode import parse_since

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from ...core.memory import SelfLearningMemory
    from ...core.metrics import MemoryMetrics
    from ...model.timeline import OutcomeWindow

app = typer.Typer(
    help="Store metrics now, as Prometheus/Influx/JSON, or live (alias: mon).",
    no_args_is_help=True,
)


class ExportFormat(StrEnum):
    prometheus = "prometheus"
    json = "json"
    influx = "influx"


ProbesOpt = Annotated[
    int,
    typer.Option(
        "--probes", min=0, max=50, help="Retrievals run to measure latency (0..50; 0 = none)."
    ),
]
WindowOpt = Annotated[
    str, typer.Option("--window", "-w", help="Error-rate window: Nh, Nd or Nm (e.g. 24h).")
]


def _window(state: CliState, text: str) -> timedelta:
    from ...errors import ValidationError

    try:
        since = parse_since(text)
    except ValidationError as exc:
        fail(state, ValidationError("--window", exc.problem, exc.limit))
    return datetime.now(UTC) - since


def collect(state: CliState, probes: int, window: str) -> MemoryMetrics:
    """Open the store, measure it, close it."""
    span = _window(state, window)

    async def action(memory: SelfLearningMemory) -> MemoryMetrics:
        from ...core.metrics import collect_metrics
        from ...storage.step_queries import StepQueries

        return await collect_metrics(
            memory, StepQueries.of(memory.storage), probes=probes, window=span, window_label=window
        )

    return run_with_memory(state, action)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m {secs}s"


def status_data(m: MemoryMetrics) -> dict[str, Any]:
    lat = m.retrieval_latency
    return {
        "data_dir": m.data_dir,
        "uptime_seconds": m.uptime_seconds,
        "uptime_source": m.uptime_source,
        "episodes": m.episodes,
        "in_progress": m.in_progress_episodes,
        "in_progress_episodes": m.in_progress_episodes,
        "steps": m.steps,
        "patterns": m.patterns,
        "heuristics": m.heuristics,
        "storage_bytes": m.storage_bytes,
        "retrieval_p50_ms": lat.p50_ms,
        "retrieval_p95_ms": lat.p95_ms,
        "retrieval_samples": lat.samples,
        "cache_hit_rate": m.cache.hit_rate,
        "cache_entries": m.cache.entries,
        "error_rate": m.error_rate,
        "error_window": m.error_window,
        "learning_queue_depth": m.learning_queue_depth,
        "circuit_breaker": m.circuit_breaker,
        "timestamp": m.timestamp,
    }


def _rows(m: MemoryMetrics) -> list[list[Any]]:
    lat = m.retrieval_latency
    return [
        ["uptime", f"{_duration(m.uptime_seconds)} (since {m.uptime_source.replace('_', ' ')})"],
        [
            "episodes",
            f"{m.episodes} ({m.completed_episodes} completed, {m.in_progress_episodes} open)",
        ],
        ["steps", m.steps],
        ["patterns / heuristics", f"{m.patterns} / {m.heuristics}"],
        ["storage", f"{m.storage_bytes / 2**20:.2f} MiB"],
        [
            "retrieval latency",
            f"p50 {lat.p50_ms:.2f} ms  p95 {lat.p95_ms:.2f} ms  p99 {lat.p99_ms:.2f} ms "
            f"({lat.samples} probes)",
        ],
        ["cache", f"hit rate {m.cache.hit_rate:.0%}, {m.cache.entries} entries"],
        [
            f"error rate ({m.error_window})",
            f"{m.error_rate:.1%} ({m.failed_steps} of {m.window_steps} steps)",
        ],
        ["learning queue", m.learning_queue_depth],
        ["circuit breaker", m.circuit_breaker],
    ]


def _render(m: MemoryMetrics) -> RenderableType:
    from rich.table import Table

    t = Table(title=f"memory {m.data_dir or ''}  {m.timestamp:%H:%M:%S} UTC", title_justify="left")
    t.add_column("metric")
    t.add_column("value")
    for name, value in _rows(m):
        t.add_row(name, str(value))
    return t


@app.command("status")
def status(
    ctx: typer.Context,
    probes: ProbesOpt = 3,
    window: WindowOpt = "24h",
) -> None:
    """The store at a glance: uptime, counts, retrieval latency, cache, error rate, queue."""
    state = get_state(ctx)
    m = collect(state, probes, window)
    emit(state, status_data(m), lambda c, _: c.print(_render(m)))


@app.command("metrics")
def metrics(
    ctx: typer.Context,
    probes: ProbesOpt = 10,
    window: WindowOpt = "24h",
) -> None:
    """Every metric with its details (latency percentiles, cache counters, outcomes)."""
    state = get_state(ctx)
    m = collect(state, probes, window)

    def human(console: Console, _: Any) -> None:
        console.print(_render(m))
        lat = m.retrieval_latency
        table(
            console,
            "retrieval latency (ms)",
            ["samples", "p50", "p95", "p99", "mean", "max"],
            [[lat.samples, lat.p50_ms, lat.p95_ms, lat.p99_ms, lat.mean_ms, lat.max_ms]],
        )
        table(console, "outcomes", ["outcome", "episodes"], sorted(m.outcomes.items()))

    emit(state, m, human)


def render_export(m: MemoryMetrics, export_format: ExportFormat) -> str:
    import json

    from ...core.metrics import to_influx, to_prometheus

    if export_format is ExportFormat.prometheus:
        return to_prometheus(m)
    if export_format is ExportFormat.influx:
        return to_influx(m)
    return json.dumps(m.model_dump(mode="json"), indent=2) + "\n"


@app.command("export")
def export(
    ctx: typer.Context,
    export_format: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="prometheus, json or influx.")
    ] = ExportFormat.prometheus,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file (replaced atomically) instead of stdout."
        ),
    ] = None,
    probes: ProbesOpt = 5,
    window: WindowOpt = "24h",
) -> None:
    """Metrics for a scraper: Prometheus text, JSON or an InfluxDB line. Plain text on stdout
    with the human format; with --format json/yaml, an object holding the text."""
    state = get_state(ctx)
    if output is not None:
        check_output(state, output)
    m = collect(state, probes, window)
    text = render_export(m, export_format)
    if output is not None:
        if state.dry_run:
            dry_run_report(
                state,
                "write metrics",
                path=str(output),
                format=export_format.value,
                bytes=len(text),
            )
            return
        write_atomic(state, output, text)
        emit(
            state,
            {"format": export_format.value, "path": str(output), "bytes": len(text.encode())},
            lambda c, d: c.print(f"wrote {d['bytes']} bytes to {d['path']}"),
        )
        return
    if state.format == "human":
        sys.stdout.write(text)
        sys.stdout.flush()
    elif export_format is ExportFormat.json:
        emit(state, m)
    else:
        emit(state, {"format": export_format.value, "content": text})


class CurveWindow(StrEnum):
    hour = "hour"
    day = "day"
    week = "week"


@app.command("learning")
def learning(
    ctx: typer.Context,
    window: Annotated[
        CurveWindow, typer.Option("--window", "-w", help="One point per hour, day or week (UTC).")
    ] = CurveWindow.day,
    since: Annotated[
        str, typer.Option("--since", help="Completed since: Nh, Nd or Nm before now.")
    ] = "90d",
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also draw the curve into FILE (.svg, or .png: plot extra)."),
    ] = None,
) -> None:
    """The learning curve: success rate of the episodes completed in each window (the
    dashboard's overview chart), aggregated in the store."""
    from ...errors import ValidationError

    state = get_state(ctx)
    if plot is not None:
        check_plot(state, plot)
    try:
        start = parse_since(since)
    except ValidationError as exc:
        fail(state, ValidationError("--since", exc.problem, exc.limit))

    async def act(memory: SelfLearningMemory) -> list[OutcomeWindow]:
        return await memory.outcome_timeline(window.value, since=start)

    windows = run_with_memory(state, act)
    data: dict[str, Any] = {
        "window": window.value,
        "since": start.isoformat(),
        "windows": [w.to_dict() for w in windows],
    }
    if plot is not None:
        from ...presenters.charts import learning_curve_chart

        data["plot"] = {
            "path": str(plot),
            "bytes": write_plot(state, learning_curve_chart(windows, window.value), plot),
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        rows = [
            [w["start"][:16].replace("T", " "), w["episodes"], w["successes"], w["partial"],
             w["failures"], f"{w['success_rate']:.0%}"]
            for w in d["windows"]
        ]  # fmt: skip
        table(console, f"learning curve per {d['window']}",
              ["window (UTC)", "episodes", "success", "partial", "failure", "rate"], rows)  # fmt: skip
        if "plot" in d:
            console.print(f"wrote {d['plot']['bytes']} bytes to {d['plot']['path']}")

    emit(state, data, human)


@app.command("live")
def live(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option("--interval", "-i", min=0.1, max=3600, help="Seconds between views.")
    ] = 2.0,
    count: Annotated[
        int,
        typer.Option("--count", "-n", min=0, max=1_000_000, help="Views to show; 0 = until ^C."),
    ] = 0,
    probes: ProbesOpt = 3,
    window: WindowOpt = "24h",
) -> None:
    """A view that refreshes every --interval seconds (rich live view on a terminal; one table,
    or one JSON/YAML document per line, per refresh otherwise)."""
    state = get_state(ctx)
    span = _window(state, window)
    console = stdout_console(state)
    use_live = state.format == "human" and console.is_terminal

    async def action(memory: SelfLearningMemory) -> int:
        import asyncio

        from ...core.metrics import collect_metrics
        from ...storage.step_queries import StepQueries

        steps = StepQueries.of(memory.storage)
        shown = 0

        async def snapshot() -> MemoryMetrics:
            return await collect_metrics(
                memory, steps, probes=probes, window=span, window_label=window
            )

        if use_live:
            from rich.live import Live

            with Live(_render(await snapshot()), console=console, auto_refresh=False) as view:
                shown = 1
                while count == 0 or shown < count:
                    await asyncio.sleep(interval)
                    view.update(_render(await snapshot()), refresh=True)
                    shown += 1
            return shown
        while count == 0 or shown < count:
            if shown:
                await asyncio.sleep(interval)
            m = await snapshot()
            _print_snapshot(state, console, m)
            shown += 1
        return shown

    started = time.monotonic()
    shown = run_with_memory(state, action)
    if state.verbose:
        print(f"{shown} views in {time.monotonic() - started:.1f} s", file=sys.stderr)


def _print_snapshot(state: CliState, console: Console, m: MemoryMetrics) -> None:
    import json

    data = status_data(m)
    data["timestamp"] = m.timestamp.isoformat()
    if state.format == "json":
        sys.stdout.write(json.dumps(data) + "\n")
    elif state.format == "yaml":
        import yaml

        sys.stdout.write("---\n" + yaml.safe_dump(data, sort_keys=False))
    else:
        console.print(_render(m))
    sys.stdout.flush()


def _register_agents() -> None:
    from .monitor_agents import agents

    app.command("agents")(agents)


_register_agents()
