"""`memory-cli logs export`: the window's steps, oldest first, written to a JSON, CSV or text
file through a temporary file (never half-written)."""

from __future__ import annotations

import time
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...output import emit
from ...state import check_text, fail, get_state
from .window import SinceOpt, since_start, with_steps

if TYPE_CHECKING:
    from rich.console import Console

    from ....storage.step_queries import StepQueries, StepRecord

__all__ = ["ExportFormat", "export"]

MAX_EXPORT = 1_000_000
PAGE = 5_000  # steps read from SQL per query


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    txt = "txt"


def _check_path(path: Path, force: bool) -> None:
    from ....errors import ValidationError

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
    start = since_start(state, since)
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

    from ....errors import ValidationError

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
