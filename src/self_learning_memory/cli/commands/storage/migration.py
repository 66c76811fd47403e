"""`memory-cli storage migrate`: copy a whole memory into another store (``storage/migrate.py``
does the copy and verifies the counts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...output import emit, table
from ...state import get_state
from .. import backup as backup_commands
from .options import DryRunOpt

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["migrate"]


def migrate(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="The target store: a data directory or .db file, postgresql://, libsql://."
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option("--from", help="The source store (default: the configured one)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10_000, help="Rows per transaction.")
    ] = 200,
    dry_run: DryRunOpt = False,
) -> None:
    """Copy a whole memory into another store (episodes with steps, patterns with usage,
    heuristics, embeddings); re-running updates instead of duplicating, and the counts are
    verified at the end. Shows a progress bar on a terminal."""
    from ....errors import StorageError
    from ....settings.loader import database_url
    from ....storage.database_url import mask_url

    state = get_state(ctx)
    dry = dry_run or state.dry_run
    origin = source or database_url(state.settings().settings) or str(state.resolved_data_dir())

    async def act() -> dict[str, Any]:
        from dataclasses import asdict

        from ....storage.migrate import migrate as run_migration
        from ....storage.migrate import open_url

        src, dst = open_url(origin), open_url(to)
        async with src, dst:
            with backup_commands._progress(state) as update:

                def progress(stage: str, done: int, total: int) -> None:
                    if update is not None:
                        update(f"copying {stage}", done, total)

                report = await run_migration(
                    src,
                    dst,
                    batch_size=batch_size,
                    dry_run=dry,
                    progress=progress,
                    source_name=mask_url(origin),
                    target_name=mask_url(to),
                )
        if not dry and not report.verified:
            raise StorageError(
                "The migration finished but the target does not hold everything: "
                + "; ".join(report.problems)
                + ". Run the command again (it is idempotent)."
            )
        return asdict(report)

    def human(console: Console, r: dict[str, Any]) -> None:
        console.print(f"{r['source']} -> {r['target']}")
        rows = [
            [kind, str(r["source_counts"][kind]), str(r["target_before"][kind])]
            + ([] if r["dry_run"] else [str(r["target_after"][kind])])
            for kind in r["source_counts"]
        ]
        head = ["", "source", "target before"] + ([] if r["dry_run"] else ["target after"])
        table(console, "rows", head, rows)
        if r["dry_run"]:
            console.print("dry run: nothing was copied")
        else:
            console.print(f"verified in {r['seconds']:.1f} s: every source row is in the target")

    from ...state import run

    emit(state, run(state, act), human)
