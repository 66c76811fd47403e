"""`memory-cli sandbox` (alias `sb`): run code in the sandbox, read its audit trail.

``run`` executes JavaScript/TypeScript from a file or stdin in the same sandbox and under the
same limits as the MCP tool ``execute_agent_code`` (the ``[sandbox]`` config section, code up to
100,000 bytes), after the same start-up self-test (fail closed), prints the result variant and
records the run in the audit trail (caller ``cli``). Its exit code is the variant's: 0 success,
11 error, 12 timeout, 13 security violation. ``audit`` lists recorded runs, newest first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...model.limits import MAX_CODE_BYTES
from ...model.names import SandboxCaller, SandboxOutcome
from ...presenters import arguments as A
from ..output import emit, table
from ..state import (
    EXIT_CODES,
    CliState,
    check_text,
    dry_run_report,
    fail,
    get_state,
    run_with_memory,
)
from .episode import parse_since

if TYPE_CHECKING:
    from rich.console import Console

    from ...core.memory import SelfLearningMemory
    from ...sandbox import CodeSandbox, ExecutionResult

app = typer.Typer(
    help="Run JavaScript/TypeScript in the code sandbox and read its audit trail (alias: sb).",
    no_args_is_help=True,
)

SANDBOX_EXTRA = "pip install 'self-learning-memory[sandbox]'"
MAX_CONTEXT_BYTES = 1_000_000
MAX_TASK_CHARS = A.MAX_TEXT  # as the MCP tool's context.task
VARIANT_EXIT = {
    "success": EXIT_CODES["ok"],
    "error": EXIT_CODES["sandbox_error"],
    "timeout": EXIT_CODES["sandbox_timeout"],
    "security_violation": EXIT_CODES["sandbox_violation"],
}


JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output (the same as -f json).")]


def _read_code(source: str) -> str:
    """The code from a file or ``-`` (stdin): at most 100,000 bytes of UTF-8."""
    from ...errors import StorageAccessError, ValidationError

    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_CODE_BYTES + 1)
        else:
            with Path(source).expanduser().open("rb") as f:
                raw = f.read(MAX_CODE_BYTES + 1)
    except OSError as exc:
        raise StorageAccessError(f"The code file {source} cannot be read: {exc.strerror}.") from exc
    if len(raw) > MAX_CODE_BYTES:
        raise ValidationError("CODE", "is over the size limit", f"{MAX_CODE_BYTES} bytes")
    if not raw.strip():
        raise ValidationError("CODE", "is empty", "at least 1 character")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("CODE", f"is not UTF-8 text ({exc.reason})", "UTF-8") from exc


def _parse_context(text: str | None) -> tuple[str, dict[str, Any]]:
    """``--context``: a JSON object ``{task, input}`` as the MCP tool takes it."""
    from ...errors import ValidationError

    if text is None:
        return "", {}
    check_text("--context", text, MAX_CONTEXT_BYTES)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("--context", f"is not JSON ({exc.msg})", "a JSON object") from exc
    if not isinstance(data, dict):
        raise ValidationError("--context", "is not a JSON object", '{"task": ..., "input": {...}}')
    unknown = sorted(set(data) - {"task", "input"})
    if unknown:
        raise ValidationError("--context", f"has unknown keys {unknown}", "task and input")
    task = data.get("task", "")
    if not isinstance(task, str) or len(task) > MAX_TASK_CHARS:
        raise ValidationError("--context.task", "is not a string", f"{MAX_TASK_CHARS} characters")
    value = data.get("input", {})
    if not isinstance(value, dict):
        raise ValidationError("--context.input", "is not a JSON object", "an object")
    return task, value


def _open_sandbox(state: CliState) -> CodeSandbox:
    """The sandbox the config describes, after its self-test; a missing extra or a failed
    self-test is ``capability_unavailable`` (exit 10)."""
    from ...errors import CapabilityUnavailableError

    try:
        from ...sandbox import CodeSandbox
    except ImportError as exc:
        raise CapabilityUnavailableError(
            f"The code sandbox needs quickjs-rs and wasmtime ({exc.name} is missing); install "
            f"them with: {SANDBOX_EXTRA}"
        ) from exc
    sandbox = CodeSandbox.from_settings(state.settings().settings.sandbox, pool_size=1)
    reason = sandbox.self_test()
    if reason is not None:
        sandbox.close()
        raise CapabilityUnavailableError(f"The code sandbox is not offered here: {reason}.")
    return sandbox


def _render_result(console: Console, data: dict[str, Any]) -> None:
    from rich.markup import escape

    colour = {"success": "green", "timeout": "yellow"}.get(data["variant"], "red")
    kind = data.get("error_type") or data.get("violation_type")
    head = f"[bold {colour}]{data['variant']}[/bold {colour}]" + (f" ({kind})" if kind else "")
    console.print(f"{head} in {data['execution_time_ms']:.1f} ms on {data['backend']}")
    if data.get("message"):
        console.print(escape(data["message"]))
    if "output" in data:
        console.print("output: " + escape(json.dumps(data["output"], ensure_ascii=False)))
    for name in ("stdout", "stderr", "partial_output"):
        if data.get(name):
            console.print(f"[bold]{name}:[/bold]")
            console.print(escape(data[name].rstrip("\n")), soft_wrap=True)
    if not data.get("audited", True):
        console.print("[dim]not recorded in the audit trail (see the warning above)[/dim]")


@app.command("run")
def run(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(metavar="FILE", help="JavaScript/TypeScript file, or - for stdin.")
    ] = "-",
    context: Annotated[
        str | None,
        typer.Option(
            "--context", "-C", help='JSON {"task": "...", "input": {...}} visible as `context`.'
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run code in the sandbox (a function body: `return` gives the output); exit 0 success,
    11 error, 12 timeout, 13 security violation."""
    state = get_state(ctx)
    if as_json:
        state.format = "json"
    try:
        code = _read_code(source)
        task, value = _parse_context(context)
    except Exception as exc:
        fail(state, exc)
    if state.dry_run:
        import hashlib

        raw = code.encode("utf-8")
        dry_run_report(
            state,
            "run the code in the sandbox and record the run",
            code_bytes=len(raw),
            code_sha256=hashlib.sha256(raw).hexdigest(),
        )
        return

    async def action(memory: SelfLearningMemory) -> tuple[ExecutionResult, bool]:
        import asyncio

        sandbox = await asyncio.to_thread(_open_sandbox, state)  # the extra is there
        from ...sandbox import ExecutionContext
        from ...sandbox.audit import audit_record

        try:
            result = await sandbox.execute_code(code, ExecutionContext(task=task, input=value))
        finally:
            await asyncio.to_thread(sandbox.close)
        preset = state.settings().settings.sandbox.preset
        run = audit_record(code, result, sandbox.limits, caller="cli", task=task, preset=preset)
        return result, await memory.try_record_sandbox_run(run)

    result, audited = run_with_memory(state, action)
    data = {**result.as_dict(), "audited": audited}
    emit(state, data, _render_result)
    raise typer.Exit(VARIANT_EXIT[result.variant])


@app.command("audit")
def audit(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help="Nh, Nd or Nm, e.g. 24h.")] = None,
    outcome: Annotated[SandboxOutcome | None, typer.Option("--outcome")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="e.g. wasm.")] = None,
    caller: Annotated[SandboxCaller | None, typer.Option("--caller")] = None,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=1000, help="1..1000.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Recorded sandbox runs, newest first (hash and size of the code, never the code), and
    the counts by outcome of every run that matches the filters."""
    state = get_state(ctx)
    if as_json:
        state.format = "json"

    async def action(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...model.sandbox_run import SandboxRunFilters

        if backend is not None:
            check_text("--backend", backend, 32)
        filters = SandboxRunFilters(
            since=None if since is None else parse_since(since),
            outcome=outcome,
            backend=backend,
            caller=caller,
        )
        runs = await memory.list_sandbox_runs(filters, limit)
        counts = await memory.sandbox_run_counts(filters)
        return {
            "runs": [r.model_dump(mode="json") for r in runs],
            "counts": counts.model_dump(),
            "keep": memory.config.sandbox_audit.keep,
        }

    def human(console: Console, data: dict[str, Any]) -> None:
        rows = [
            [
                r["time"][5:19].replace("T", " "),
                r["outcome"],
                r["error_type"],
                r["backend"],
                f"{r['duration_ms']:.1f}",
                r["code_bytes"],
                r["code_sha256"][:12],
                r["caller"],
                (r["task"] or "")[:40],
            ]
            for r in data["runs"]
        ]
        counts = data["counts"]
        table(
            console,
            f"{len(rows)} of {counts['total']} recorded runs (newest first; the trail keeps "
            f"{data['keep']})",
            ["time (UTC)", "outcome", "type", "backend", "ms", "bytes", "sha256", "caller", "task"],
            rows,
        )
        console.print(", ".join(f"{k}: {v}" for k, v in counts["by_outcome"].items()))

    emit(state, run_with_memory(state, action), human)
