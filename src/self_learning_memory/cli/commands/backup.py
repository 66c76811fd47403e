"""`memory-cli backup` (alias `bak`): create, list, verify, restore.

Thin: each command calls one function of :mod:`self_learning_memory.backup` and formats the
result. ``storage backup`` is the same command as ``backup create``: the storage group
registers it with :func:`add_create_command`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..output import emit, table
from ..state import EXIT_CODES, CliState, dry_run_report, env_flag, fail, get_state, run

if TYPE_CHECKING:
    from rich.console import Console

    from ...backup import BackupInfo
    from ...backup.manifest import Progress

__all__ = ["add_create_command", "app", "create"]

app = typer.Typer(
    help="Back up, verify and restore the store (alias: bak).",
    no_args_is_help=True,
)


class FormatArg(StrEnum):
    sqlite = "sqlite"
    json = "json"
    jsonl = "jsonl"
    sql = "sql"


PathOpt = Annotated[
    Path | None, typer.Option("--path", "-p", help="The directory holding the backups.")
]
IdOpt = Annotated[str | None, typer.Option("--backup-id", "-b", help="A backup id under --path.")]
BackupArg = Annotated[
    str | None, typer.Argument(help="A backup directory (or an id, with --path).")
]


@contextmanager
def _progress(state: CliState) -> Iterator[Progress | None]:
    """A transient rich progress bar on stderr, only for people: off when stderr is not a
    terminal, under CI, or with --format json/yaml."""
    if state.format != "human" or not sys.stderr.isatty() or env_flag("CI"):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    console = Console(stderr=True, no_color=state.no_color)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:  # called from worker threads
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _info(info: BackupInfo) -> dict[str, Any]:
    manifest = info.manifest
    data: dict[str, Any] = {"path": str(info.path), "size_bytes": info.size_bytes}
    if manifest is None:
        return {"backup_id": info.path.name, **data, "problem": info.problem}
    return {
        "backup_id": manifest.backup_id,
        **data,
        "created_at": manifest.created_at.isoformat(),
        "format": manifest.format.value,
        "compressed": manifest.compressed,
        "embeddings": manifest.embeddings,
        "schema_version": manifest.schema_version,
        "package_version": manifest.package_version,
        "counts": manifest.counts.model_dump(),
        "files": [f.model_dump() for f in manifest.files],
    }


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def _locate(backup: str | None, backup_id: str | None, path: Path | None) -> Path:
    from ...backup import resolve_backup
    from ...errors import ValidationError

    ref = backup or backup_id
    if ref is None:
        raise ValidationError("BACKUP", "is missing", "a backup directory, or --backup-id ID")
    if backup_id is not None and path is None and backup is None:
        raise ValidationError("--path", "is needed with --backup-id", "the backups directory")
    return resolve_backup(ref, path)


def create(
    ctx: typer.Context,
    path: Annotated[Path, typer.Option("--path", "-p", help="Directory to write the backup into.")],
    backup_format: Annotated[
        FormatArg,
        typer.Option(
            "--format",
            "-f",
            help="sqlite (a snapshot, the default), or an export: json, jsonl, sql.",
        ),
    ] = FormatArg.sqlite,
    compress: Annotated[bool, typer.Option("--compress", "-c", help="gzip the data file.")] = False,
    embeddings: Annotated[
        bool, typer.Option("--embeddings/--no-embeddings", help="Include embedding vectors.")
    ] = True,
) -> None:
    """Back up the store: a consistent snapshot taken while it is in use, plus a manifest
    with counts and checksums."""
    state = get_state(ctx)
    data_dir = state.resolved_data_dir()
    if state.dry_run:
        dry_run_report(
            state,
            f"back up {data_dir} into {path}",
            data_dir=str(data_dir),
            path=str(path),
            format=backup_format.value,
            compressed=compress,
            embeddings=embeddings,
        )
        return

    from ...backup import create_backup

    with _progress(state) as progress:
        info = run(
            state,
            lambda: create_backup(
                data_dir,
                path,
                format=backup_format.value,
                compress=compress,
                embeddings=embeddings,
                progress=progress,
            ),
        )

    def human(console: Console, data: dict[str, Any]) -> None:
        console.print(f"[bold]{data['backup_id']}[/bold] written to {data['path']}")
        console.print(
            f"{data['format']}{' (gzip)' if data['compressed'] else ''}, "
            f"{data['size_bytes']} bytes: {_counts_text(data['counts'])}"
        )

    emit(state, _info(info), human)


app.command("create")(create)


def add_create_command(target: typer.Typer, name: str = "backup") -> None:
    """Register ``backup create`` in another group (``storage backup``)."""
    target.command(name, help="Same as `memory-cli backup create`.")(create)


@app.command("list")
def list_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Option("--path", "-p", help="The directory holding the backups.")],
) -> None:
    """The backups in a directory, newest first."""
    state = get_state(ctx)
    from ...backup import list_backups

    found = run(state, lambda: list_backups(path))
    data = {"path": str(path), "backups": [_info(b) for b in found], "total_count": len(found)}

    def human(console: Console, data: dict[str, Any]) -> None:
        rows = [
            [
                b["backup_id"],
                b.get("created_at"),
                b.get("format"),
                b.get("compressed"),
                b.get("counts", {}).get("episodes"),
                b["size_bytes"],
                b.get("problem") or "",
            ]
            for b in data["backups"]
        ]
        table(
            console,
            f"{len(rows)} backups in {data['path']}",
            ["id", "created", "format", "gzip", "episodes", "bytes", "problem"],
            rows,
        )

    emit(state, data, human)


@app.command("verify")
def verify(
    ctx: typer.Context,
    backup: BackupArg = None,
    backup_id: IdOpt = None,
    path: PathOpt = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Checksums only; skip reading the content back.")
    ] = False,
) -> None:
    """Check a backup's manifest, sizes and checksums, and that its content reads back.
    Exits non-zero (7) when the backup is damaged."""
    state = get_state(ctx)

    async def go() -> Any:
        from ...backup import verify_backup

        return await verify_backup(_locate(backup, backup_id, path), deep=not quick)

    report = run(state, go)
    data = report.model_dump(mode="json")

    def human(console: Console, data: dict[str, Any]) -> None:
        verdict = "[green]ok[/green]" if data["ok"] else "[red]damaged[/red]"
        console.print(f"{data['backup_id'] or data['path']}: {verdict}")
        for problem in data["problems"]:
            console.print(f"  - {problem}")

    emit(state, data, human)
    if not report.ok:
        from ...errors import DataIntegrityError

        fail(
            state,
            DataIntegrityError(f"The backup {report.path} is damaged: {report.problems[0]}."),
        )


@app.command("restore")
def restore(
    ctx: typer.Context,
    backup: BackupArg = None,
    backup_id: IdOpt = None,
    path: PathOpt = None,
    target: Annotated[
        Path | None,
        typer.Option(
            "--target", "-t", help="Data directory to restore into (default: --data-dir)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a store already in the target.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Restore a backup into an empty data directory (or replace a store with --force). A
    damaged backup is refused before anything is overwritten; the cache is rebuilt."""
    state = get_state(ctx)
    data_dir = target if target is not None else state.resolved_data_dir()

    async def check() -> tuple[Any, Any]:
        from ...backup import verify_backup
        from ...backup.manifest import read_manifest

        location = _locate(backup, backup_id, path)
        report = await verify_backup(location, deep=False)
        return report, (read_manifest(location) if report.ok else None)

    report, manifest = run(state, check)
    if manifest is None:
        from ...errors import DataIntegrityError

        fail(
            state,
            DataIntegrityError(
                f"The backup {report.path} is damaged, nothing was restored: {report.problems[0]}."
            ),
        )
    from ...backup.restore import holds_store

    replaces = holds_store(data_dir)
    if state.dry_run:
        dry_run_report(
            state,
            f"restore {manifest.backup_id} into {data_dir}",
            backup_id=manifest.backup_id,
            data_dir=str(data_dir),
            replaces_existing_store=replaces,
            refused_without_force=replaces and not force,
            counts=manifest.counts.model_dump(),
        )
        return
    if replaces and not force:
        from ...errors import InvalidStateError

        fail(
            state,
            InvalidStateError(
                f"The data directory {data_dir} already holds a store; restore into an empty "
                "directory (--target), or pass --force to replace it."
            ),
        )
    if not yes:
        what = "REPLACE the store in" if replaces else "restore into"
        question = (
            f"{what} {data_dir} from {manifest.backup_id} "
            f"({_counts_text(manifest.counts.model_dump())})?"
        )
        if not typer.confirm(question, default=False, err=True):
            typer.echo("restore cancelled; nothing was changed", err=True)
            raise typer.Exit(EXIT_CODES["interrupted"])

    from ...backup import restore_backup

    with _progress(state) as progress:
        result = run(
            state,
            lambda: restore_backup(report.path, data_dir, force=force, progress=progress),
        )

    def human(console: Console, data: dict[str, Any]) -> None:
        verb = "replaced the store in" if data["replaced_existing"] else "restored into"
        console.print(f"{data['backup_id']}: {verb} {data['data_dir']}")
        console.print(_counts_text(data["counts"]))

    emit(state, result.model_dump(mode="json"), human)
