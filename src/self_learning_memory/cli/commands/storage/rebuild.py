"""`memory-cli storage rebuild-from-cache`: write the episodes the embedded store lost back from
the LMDB cache's copies (``backup/rebuild.py`` does the work). It does not open the
memory: a missing or empty store next to a cache that holds episodes is refused at open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...output import emit, print_error
from ...state import EXIT_CODES, get_state, run

if TYPE_CHECKING:
    from rich.console import Console

    from ....backup.rebuild import RebuildReport

__all__ = ["rebuild_from_cache"]


def rebuild_from_cache(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only report what would be done (same as the global)."),
    ] = False,
) -> None:
    """Rebuild the store from the cache's copies: a missing, empty or unreadable memory.db is
    moved aside (never deleted) and a new one gets every cached episode; a store that lacks
    cached episodes gets those back, and nothing it has is touched. Refused while another
    process has the store open. Exit 7 when the result does not verify."""
    state = get_state(ctx)
    dry = dry_run or state.dry_run

    async def act() -> RebuildReport:
        from ....backup.rebuild import rebuild_from_cache as rebuild

        return await rebuild(state.resolved_data_dir(), state.memory_config(), dry_run=dry)

    report = run(state, act)
    emit(state, {**_fields(report), "verified": report.verified}, lambda c, _d: _human(c, report))
    if report.problems:
        print_error(
            f"The rebuilt store does not verify ({len(report.problems)} problem(s)): "
            + "; ".join(report.problems[:5]),
            "keep the data directory and the moved-aside files; report this",
            no_color=state.no_color,
        )
        raise typer.Exit(EXIT_CODES["storage_error"])


def _fields(report: RebuildReport) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(report)


def _human(console: Console, r: RebuildReport) -> None:
    how = {
        "missing": "is missing",
        "empty": "is empty (0 bytes)",
        "not a database": "is not a database",
        "present": "is present",
    }[r.store_state]
    console.print(f"store {r.store} {how}; cache {r.cache} holds {r.cached_episodes} episode(s)")
    if r.mode == "rebuild":
        plan = f"a new store with the {r.to_recover} cached episode(s)"
    else:
        plan = (
            f"the {r.to_recover} cached episode(s) the store lacks added to it "
            f"({r.already_in_store} it already has left as they are)"
        )
    if r.dry_run:
        console.print(f"dry run: would write {plan}; nothing was changed")
        if r.mode == "rebuild" and r.store_state != "missing":
            console.print(f"would move {r.store} (and its -wal/-shm files) aside first")
    elif r.mode == "merge" and not r.to_recover:
        console.print("nothing to recover: the store has every cached episode")
    else:
        for path in r.moved_aside:
            console.print(f"moved aside: {path}")
        rec = r.recovered
        console.print(
            f"recovered {rec['episodes']} episode(s), {rec['steps']} step(s), "
            f"{rec['patterns']} pattern(s), {rec['heuristics']} heuristic(s)"
        )
        verdict = "[green]verified[/green]" if r.verified else "[red]NOT verified[/red]"
        console.print(
            f"{verdict}: the store now holds {r.counts_after.get('episodes', 0)} episode(s) and "
            f"{r.counts_after.get('steps', 0)} step(s)"
        )
    if r.wal_loss is not None:
        state = "record kept" if r.dry_run or not r.verified else "record cleared"
        console.print(
            f"the write-ahead log had lost {r.wal_loss['lost_frames']} committed frame(s) after "
            f"a crash ({state}): what the cache held of them is above, open episodes are gone"
        )
    for note in r.not_recoverable:
        console.print(f"not in the cache: {note}")
