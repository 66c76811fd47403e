"""`memory-cli health` (alias `hp`): check, status, monitor.

Each component (the SQL store, the LMDB cache, embeddings when configured) is checked for
real; one slower than its threshold (store 100 ms, cache 10 ms) is degraded, one that fails is
unhealthy. An unhealthy verdict exits with code 8 (storage unavailable)."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..output import emit, stdout_console, table
from ..state import EXIT_CODES, CliState, get_state, run

if TYPE_CHECKING:
    from rich.console import Console

    from ...core.health_status import HealthSummary
    from ...core.memory import SelfLearningMemory

app = typer.Typer(
    help="Check the memory's components: store, cache, embeddings (alias: hp).",
    no_args_is_help=True,
)

UNHEALTHY_EXIT = EXIT_CODES["storage_unavailable"]


def _unreachable(exc: Exception) -> HealthSummary:
    """The verdict when the memory cannot even be opened."""
    from ...core.health_status import summarise_health
    from ...model.records import HealthReport

    return summarise_health(
        {"primary_storage": HealthReport("sqlite", False, 0.0, {"error": str(exc)})}
    )


async def check_memory(memory: SelfLearningMemory) -> HealthSummary:
    from ...core.health_status import summarise_health

    return summarise_health(await memory.health())


def check_once(state: CliState) -> HealthSummary:
    """Open the memory and check it; a memory that cannot be opened is unhealthy (not an
    error): that is the answer a health check exists to give."""
    from ...core.memory import SelfLearningMemory

    async def go() -> HealthSummary:
        try:
            memory = SelfLearningMemory.open(
                state.resolved_data_dir(), config=state.memory_config()
            )
            await memory.start()
        except Exception as exc:  # cannot be opened: that is the answer, not an error
            return _unreachable(exc)
        try:
            return await check_memory(memory)
        finally:
            await memory.close()

    return run(state, go)


def _threshold(c: dict[str, Any]) -> str:
    return "-" if c["threshold_ms"] is None else f"< {c['threshold_ms']:.0f} ms"


def render_check(console: Console, data: dict[str, Any]) -> None:
    colour = {"healthy": "green", "degraded": "yellow", "unhealthy": "red"}[data["overall"]]
    console.print(f"overall: [bold {colour}]{data['overall']}[/bold {colour}]")
    rows = [
        [
            c["name"],
            c["backend"],
            c["status"],
            f"{c['latency_ms']:.2f} ms",
            _threshold(c),
            c["reason"] or "",
        ]
        for c in data["components"]
    ]
    table(
        console, "components", ["component", "backend", "status", "latency", "ok if", "why"], rows
    )
    if data.get("embeddings_hint"):
        console.print(f"embeddings: {data['embeddings_hint']}", markup=False)


def finish(state: CliState, summary: HealthSummary) -> None:
    """Print a full check and exit non-zero when unhealthy (shared with `storage health`).
    When retrieval is lexical only because the local model is not installed, one line says
    how to install it (``embeddings_hint``)."""
    from ...embeddings import lexical_hint
    from ...presenters.health import health_payload

    payload = health_payload(summary)
    try:
        hint = lexical_hint(state.memory_config().embeddings)
    except Exception:  # a config that does not load is reported by the check itself
        hint = None
    if hint:
        payload["embeddings_hint"] = hint
    emit(state, payload, render_check)
    if summary.status == "unhealthy":
        raise typer.Exit(UNHEALTHY_EXIT)


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Every component's state and latency, and the overall verdict (exit 8 if unhealthy)."""
    state = get_state(ctx)
    finish(state, check_once(state))


@app.command("status")
def status(ctx: typer.Context) -> None:
    """The verdict in one line (exit 8 if unhealthy)."""
    state = get_state(ctx)
    summary = check_once(state)
    data = {
        "overall": summary.status,
        "timestamp": summary.checked_at,
        "status": summary.status,
        "checked_at": summary.checked_at,
        "components": {c.name: c.status for c in summary.components},
    }

    def human(console: Console, d: dict[str, Any]) -> None:
        parts = " ".join(f"{k}={v}" for k, v in d["components"].items())
        console.print(f"{d['status']}  {parts}")

    emit(state, data, human)
    if summary.status == "unhealthy":
        raise typer.Exit(UNHEALTHY_EXIT)


def _line(state: CliState, n: int, summary: HealthSummary) -> None:
    from ...presenters.health import health_payload

    payload = {"check": n, **health_payload(summary)}
    if state.format == "json":
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    elif state.format == "yaml":
        import yaml

        sys.stdout.write("---\n" + yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))
    else:
        parts = "  ".join(f"{c.name} {c.status} {c.latency_ms:.2f}ms" for c in summary.components)
        stdout_console(state).print(
            f"{summary.checked_at:%Y-%m-%d %H:%M:%S}  #{n} {summary.status:<9} {parts}",
            soft_wrap=True,
        )
    sys.stdout.flush()


@app.command("monitor")
def monitor(
    ctx: typer.Context,
    interval: Annotated[
        float,
        typer.Option("--interval", "-i", min=0.01, max=86_400, help="Seconds between checks."),
    ] = 30.0,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", "-d", min=0, max=30 * 86_400, help="Seconds to run (0 = until Ctrl-C)."
        ),
    ] = 300.0,
) -> None:
    """Check repeatedly: one line per check (JSON lines with --format json). Exit 8 if any
    check was unhealthy."""
    import asyncio

    from ...core.memory import SelfLearningMemory

    state = get_state(ctx)

    async def go() -> bool:
        deadline = None if duration == 0 else time.monotonic() + duration
        memory: SelfLearningMemory | None = None
        any_unhealthy = False
        n = 0
        try:
            while True:
                n += 1
                if memory is None:
                    try:
                        memory = SelfLearningMemory.open(
                            state.resolved_data_dir(), config=state.memory_config()
                        )
                        await memory.start()
                    except Exception as exc:
                        memory = None
                        summary = _unreachable(exc)
                    else:
                        summary = await check_memory(memory)
                else:
                    summary = await check_memory(memory)
                any_unhealthy |= summary.status == "unhealthy"
                _line(state, n, summary)
                now = time.monotonic()
                if deadline is not None and now + interval > deadline:
                    return any_unhealthy
                await asyncio.sleep(interval)
        finally:
            if memory is not None:
                await memory.close()

    if run(state, go):
        raise typer.Exit(UNHEALTHY_EXIT)
