"""`memory-cli logs` (alias `log`): episode steps read as an activity log (analyze, search,
export, stats over a ``--since`` window, in SQL: ``storage/step_queries.py``), and ``tail`` of
the structured log files the CLI and the MCP server write to ``<data dir>/logs``."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..output import emit, table
from ..state import CliState, check_text, fail, get_state, run_with_memory
from .episode import parse_since

if TYPE_CHECKING:
    from rich.console import Console

    from ...core.memory import SelfLearningMemory
    from ...storage.step_queries import StepQueries, StepRecord

app = typer.Typer(
    help="Episode steps as an activity log, and the CLI/MCP log files (alias: log).",
    no_args_is_help=True,
)

MAX_EXPORT = 1_000_000
PAGE = 5_000

SinceOpt = Annotated[
    str, typer.Option("--since", "-s", help="Episodes started in the last Nh, Nd or Nm.")
]


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    txt = "txt"


class Source(StrEnum):
    cli = "cli"
    mcp = "mcp"
    all = "all"


def _since(state: CliState, text: str) -> datetime:
    try:
        check_text("--since", text, 32)
        return parse_since(text)
    except Exception as exc:
        fail(state, exc)


def _range(since: datetime, label: str) -> dict[str, Any]:
    return {"since": since.isoformat(), "until": datetime.now(UTC).isoformat(), "window": label}


def with_steps(state: CliState, action: Any) -> Any:
    """Run ``action(queries)`` on the store's step queries."""

    async def go(memory: SelfLearningMemory) -> Any:
        from ...storage.step_queries import StepQueries

        return await action(StepQueries.of(memory.storage))

    return run_with_memory(state, go)


@app.command("analyze")
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
    start = _since(state, since)

    async def action(q: StepQueries) -> dict[str, Any]:
        activity = await q.activity(start)
        return {
            "time_range": _range(start, since),
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


@app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Text in the tool, action or result.")],
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=1000, help="1..1000.")] = 50,
    since: SinceOpt = "24h",
) -> None:
    """Steps whose tool, action or result text contains QUERY (case-insensitive), newest first."""
    state = get_state(ctx)
    start = _since(state, since)

    async def action(q: StepQueries) -> dict[str, Any]:
        check_text("QUERY", query, 1000)
        records = [r.to_dict() for r in await q.search(query, start, limit)]
        return {
            "query": query,
            "time_range": _range(start, since),
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


@app.command("stats")
def stats(ctx: typer.Context, since: SinceOpt = "24h") -> None:
    """Totals: episodes, steps, unique tools, average latency, errors, episodes per hour."""
    state = get_state(ctx)
    start = _since(state, since)

    async def action(q: StepQueries) -> dict[str, Any]:
        a = await q.activity(start)
        return {
            "time_range": _range(start, since),
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


# -- export ----------------------------------------------------------------------------------
def _check_path(path: Path, force: bool) -> None:
    from ...errors import ValidationError

    check_text("--path", str(path), 4096)
    if path.is_dir():
        raise ValidationError("--path", f"{path} is a directory", "a file path")
    if not path.parent.is_dir():
        raise ValidationError("--path", f"the directory {path.parent} does not exist", "a file")
    if path.exists() and not force:
        raise ValidationError("--path", f"{path} exists", "a new file, or --force to replace it")


class _Writer:
    """Writes records as JSON (an array), CSV (with a header) or text (one line each)."""

    COLUMNS = (
        "timestamp",
        "episode_id",
        "step_number",
        "tool",
        "action",
        "result",
        "error_type",
        "latency_ms",
        "tokens_used",
        "message",
    )

    def __init__(self, f: Any, fmt: ExportFormat) -> None:
        import csv
        import json

        self.f = f
        self.fmt = fmt
        self.count = 0
        self._json = json
        self._csv = csv.DictWriter(f, fieldnames=self.COLUMNS) if fmt is ExportFormat.csv else None
        if self._csv is not None:
            self._csv.writeheader()
        elif fmt is ExportFormat.json:
            f.write("[")

    def write(self, record: StepRecord) -> None:
        d = record.to_dict()
        if self._csv is not None:
            self._csv.writerow({k: d[k] for k in self.COLUMNS})
        elif self.fmt is ExportFormat.json:
            self.f.write(("," if self.count else "") + "\n  " + self._json.dumps(d))
        else:
            kind = d["result"] if d["error_type"] is None else f"{d['result']}:{d['error_type']}"
            message = " ".join(d["message"].split())
            self.f.write(
                f"{d['timestamp']} [{kind}] {d['episode_id']}#{d['step_number']} "
                f"{d['tool']}: {' '.join(d['action'].split())} -> {message} "
                f"({d['latency_ms']} ms)\n"
            )
        self.count += 1

    def write_many(self, records: list[StepRecord]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        if self.fmt is ExportFormat.json:
            self.f.write("\n]\n" if self.count else "]\n")


@app.command("export")
def export(
    ctx: typer.Context,
    path: Annotated[Path, typer.Option("--path", "-p", help="File to write.")],
    export_format: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="json, csv or txt.")
    ] = ExportFormat.json,
    since: SinceOpt = "24h",
    limit: Annotated[
        int, typer.Option("--limit", "-l", min=1, max=MAX_EXPORT, help=f"1..{MAX_EXPORT}.")
    ] = 100_000,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write the window's steps, oldest first, to a file (written to a temporary file, then
    renamed: never half-written). Honours --dry-run."""
    state = get_state(ctx)
    start = _since(state, since)
    try:
        _check_path(path, force)
    except Exception as exc:
        fail(state, exc)
    began = time.perf_counter()

    async def action(q: StepQueries) -> dict[str, Any]:
        if state.dry_run:
            activity = await q.activity(start)
            return {
                "dry_run": True,
                "would": "export steps",
                "format": export_format.value,
                "path": str(path),
                "records": min(activity.total_steps, limit),
            }
        return await _export(q, path, export_format, start, limit, began)

    def human(console: Console, d: dict[str, Any]) -> None:
        if d.get("dry_run"):
            console.print(f"dry run: would export {d['records']} steps to {d['path']}")
        else:
            console.print(
                f"exported {d['records_exported']} steps to {d['path']} "
                f"({d['file_size_bytes']} bytes, {d['duration_ms']:.0f} ms)"
            )

    emit(state, with_steps(state, action), human)


async def _export(
    q: StepQueries, path: Path, fmt: ExportFormat, start: datetime, limit: int, began: float
) -> dict[str, Any]:
    """Pages from SQL, written by a worker thread to a temporary file that replaces ``path``
    only when complete."""
    import asyncio
    import os
    import tempfile

    from ...errors import ValidationError

    def open_tmp() -> tuple[Any, str]:
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise ValidationError(
                "--path", f"cannot write in {path.parent}: {exc.strerror}"
            ) from exc
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # like a plain open(), not mkstemp's 0600
        return os.fdopen(fd, "w", encoding="utf-8", newline=""), tmp

    def finish(f: Any, tmp: str, writer: _Writer | None, ok: bool) -> int:
        try:
            if ok and writer is not None:
                writer.close()
            f.close()
            if ok:
                os.replace(tmp, path)
                return path.stat().st_size
        finally:
            if not ok:
                Path(tmp).unlink(missing_ok=True)
        return 0

    f, tmp = await asyncio.to_thread(open_tmp)
    writer: _Writer | None = None
    try:
        writer = await asyncio.to_thread(_Writer, f, fmt)
        after = None
        while writer.count < limit:
            page = await q.records(start, min(PAGE, limit - writer.count), after)
            await asyncio.to_thread(writer.write_many, page)
            if len(page) < PAGE:
                break
            after = q.page_key(page[-1])
    except BaseException:
        await asyncio.to_thread(finish, f, tmp, writer, False)
        raise
    size = await asyncio.to_thread(finish, f, tmp, writer, True)
    return {
        "format": fmt.value,
        "path": str(path),
        "records_exported": writer.count,
        "file_size_bytes": size,
        "duration_ms": round((time.perf_counter() - began) * 1000, 3),
    }


# -- tail ------------------------------------------------------------------------------------
def _sources(source: Source) -> list[str]:
    return ["cli", "mcp"] if source is Source.all else [source.value]


def _line(record: dict[str, Any]) -> str:
    extra = ""
    if "duration_ms" in record:
        extra = f" ({record['duration_ms']} ms)"
    return (
        f"{record.get('ts') or '-'} {record.get('level') or '-':<7} {record.get('source', '-')} "
        f"{record.get('logger') or '-'}: {record.get('message', '')}{extra}"
    )


@app.command("tail")
def tail(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=10_000, help="1..10000.")] = 20,
    source: Annotated[
        Source, typer.Option("--source", help="cli, mcp or all (merged by time).")
    ] = Source.all,
    follow: Annotated[
        bool, typer.Option("--follow", "-F", help="Keep printing new lines.")
    ] = False,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", min=0, max=86_400, help="With --follow: stop after S s; 0 = ^C."
        ),
    ] = 0,
) -> None:
    """The last lines of the structured log files (<data dir>/logs/memory-cli.log and
    memory-mcp.log). With --follow, new lines as they are written (JSON/YAML: one document per
    record)."""
    from ...log_files import log_path, parse_line, tail_lines

    state = get_state(ctx)
    try:
        data_dir = state.resolved_data_dir()
    except Exception as exc:
        fail(state, exc)
    paths = {name: log_path(data_dir, name) for name in _sources(source)}
    keyed: list[tuple[str, dict[str, Any]]] = []
    for name, path in paths.items():
        last = ""  # a line without a time keeps its place after the line before it
        for line in tail_lines(path, lines):
            record = parse_line(line, name)
            last = str(record.get("ts") or last)
            keyed.append((last, record))
    if len(paths) > 1:
        keyed.sort(key=lambda item: item[0])  # stable: each file keeps its order
    records = [record for _, record in keyed[-lines:]]
    if not follow:
        emit(
            state,
            {
                "source": source.value,
                "files": {n: str(p) for n, p in paths.items() if p.exists()},
                "count": len(records),
                "records": records,
            },
            _print_lines,
        )
        return
    for record in records:
        _print_record(state, record)
    _follow(state, paths, duration)


def _print_lines(console: Console, data: dict[str, Any]) -> None:
    for record in data["records"]:
        console.print(_line(record), markup=False, highlight=False, soft_wrap=True)


def _print_record(state: CliState, record: dict[str, Any]) -> None:
    import json

    if state.format == "json":
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif state.format == "yaml":
        import yaml

        sys.stdout.write("---\n" + yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(_line(record) + "\n")
    sys.stdout.flush()


def _follow(state: CliState, paths: dict[str, Path], duration: float) -> None:
    from ...log_files import parse_line, read_new

    offsets = {}
    for name, path in paths.items():
        try:
            offsets[name] = path.stat().st_size
        except OSError:
            offsets[name] = 0
    deadline = None if duration == 0 else time.monotonic() + duration
    try:
        while deadline is None or time.monotonic() < deadline:
            for name, path in paths.items():
                new, offsets[name] = read_new(path, offsets[name])
                for line in new:
                    _print_record(state, parse_line(line, name))
            pause = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
            time.sleep(pause)
    except KeyboardInterrupt:
        return
