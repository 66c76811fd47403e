"""`memory-cli logs tail`: the last lines of the structured log files the CLI and the MCP
server write to ``<data dir>/logs``, merged by time, and new ones as they come (``--follow``)."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...output import emit
from ...state import CliState, fail, get_state

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Source", "tail"]


class Source(StrEnum):
    cli = "cli"
    mcp = "mcp"
    all = "all"


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
    from ....log_files import log_path, parse_line, tail_lines

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
    from ....log_files import parse_line, read_new

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
