"""`memory-cli storage vacuum`, `verify`, `reindex`: keep the store and its cache sound
(``storage/maintenance.py``, ``storage/cache_sync.py``) and its embeddings current."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...output import emit, print_error
from ...state import EXIT_CODES, get_state, run_with_memory
from .. import backup as backup_commands
from .options import DryRunOpt, mib

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory

__all__ = ["reindex", "vacuum", "verify"]


def vacuum(ctx: typer.Context, dry_run: DryRunOpt = False) -> None:
    """Rebuild the database file without its free pages and truncate the WAL (SQLite VACUUM),
    after counting the store's kept counts again if they differ from the rows; reports bytes
    before and after. With --dry-run: the estimate only."""
    state = get_state(ctx)
    dry = dry_run or state.dry_run

    async def act(memory: SelfLearningMemory) -> Any:
        from ....storage.maintenance import embedded_parts
        from ....storage.maintenance import vacuum as run_vacuum

        storage, cache = embedded_parts(memory)
        return await run_vacuum(storage, cache, dry_run=dry)

    def human(console: Console, r: Any) -> None:
        if r.dry_run:
            console.print(
                f"dry run: the store takes {mib(r.before['total'])}; vacuum could give back "
                f"up to {mib(r.reclaimable_bytes)} ({r.freelist_pages_before} free pages "
                f"plus the WAL)"
            )
        else:
            console.print(
                f"vacuumed: {mib(r.before['total'])} -> {mib(r.after['total'])}, freed "
                f"{mib(r.freed_bytes)} (free pages {r.freelist_pages_before} -> "
                f"{r.freelist_pages_after})"
            )
        for note in r.notes:
            console.print(f"note: {note}")

    result = run_with_memory(state, act)
    data = {**_fields(result), "freed_bytes": result.freed_bytes}
    emit(state, data, lambda c, _d: human(c, result))


def _fields(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)


def verify(ctx: typer.Context) -> None:
    """Check the store (integrity_check, foreign keys, full-text index, the counts it keeps) and
    the cache against it (every entry decodes and equals the SQL row). Exit 7 when anything is
    wrong."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        import asyncio

        from ....storage.cache_sync import verify_cache
        from ....storage.maintenance import check_integrity, embedded_parts
        from ....storage.wal_check import read_wal_loss

        storage, cache = embedded_parts(memory)
        store = await check_integrity(storage)
        cached = (
            None if cache is None or cache.disabled else await verify_cache(memory.storage, cache)
        )
        problems = list(store.problems)
        wal = await asyncio.to_thread(read_wal_loss, storage.path)
        if wal is not None:
            problems.append(
                f"the write-ahead log lost {wal.lost_frames} of its {wal.committed_frames} "
                f"committed frames after a crash ({wal.detected_at}): acknowledged writes are gone"
            )
        if cache is not None and cache.disabled is not None:
            problems.append(
                f"the cache {cache.path} is disabled ({cache.disabled}); every read goes to the "
                "store"
            )
        if cached is not None:
            if cached.corrupt:
                problems.append(f"{len(cached.corrupt)} cache entries do not decode")
            if cached.stale:
                problems.append(
                    f"the store lacks {len(cached.stale)} of the {cached.checked} episodes the "
                    "cache holds (or has them unfinished): acknowledged writes may have been lost"
                )
            if cached.differs:
                problems.append(f"{len(cached.differs)} cache entries differ from the store")
        return {
            "ok": not problems,
            "problems": problems,
            "store": _fields(store),
            "cache": None if cached is None else {**_fields(cached), "ok": cached.ok},
            "cache_disabled": None if cache is None else cache.disabled,
            "wal_loss": None if wal is None else _fields(wal),
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        s = d["store"]
        console.print(f"integrity_check: {', '.join(s['integrity_check'][:5])}")
        console.print(f"foreign keys: {len(s['foreign_key_violations'])} violation(s)")
        console.print(
            f"full-text index: {s['fts_check']}, {s['fts_orphans']} orphan(s), "
            f"{s['fts_missing']} missing"
        )
        drift = s["count_drift"]
        console.print(f"kept counts: {'; '.join(drift) if drift else 'equal to the rows'}")
        console.print(f"schema: v{s['schema_version']} (expected v{s['expected_schema_version']})")
        c = d["cache"]
        if c is None:
            why = d["cache_disabled"]
            console.print("cache: off in the config" if why is None else f"cache: disabled ({why})")
        else:
            console.print(
                f"cache: {c['checked']} entries checked, {c['matching']} match the store, "
                f"{len(c['corrupt'])} corrupt, {len(c['stale'])} stale, "
                f"{len(c['differs'])} differ"
            )
            for item in c["differs"][:10]:
                console.print(f"  {item['episode_id']}: {', '.join(item['fields'])}")
        console.print("[green]ok[/green]" if d["ok"] else "[red]problems found[/red]")

    report = run_with_memory(state, act)
    emit(state, report, human)
    if not report["ok"]:
        cached = report["cache"]
        lost = report["wal_loss"] is not None or (cached is not None and cached["stale"])
        if report["store"]["problems"] or lost:
            # the cache may hold the last good copies: never advise a sync that drops them
            hint = (
                "the store itself failed or lacks episodes the cache holds: back up the data "
                "directory (the cache may hold the last copies), then run `memory-cli storage "
                "rebuild-from-cache` to write them back (or restore the store from a backup); "
                "do not sync the cache from this store"
            )
        else:
            hint = (
                "run `memory-cli storage sync --force` to rebuild the cache (a disabled one is "
                "moved aside first)"
            )
        print_error(
            f"Verification found {len(report['problems'])} problem(s): "
            + "; ".join(report["problems"]),
            hint,
            no_color=state.no_color,
        )
        raise typer.Exit(EXIT_CODES["storage_error"])


def reindex(
    ctx: typer.Context,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="Embedding provider: local or openai (default: the config's embeddings.provider).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=2048)] = 64,
) -> None:
    """Embed every completed episode that has no vector from the configured model (after a
    model or dimension change, or failed embeddings). Shows a progress bar on a terminal."""
    from ....errors import ValidationError

    state = get_state(ctx)
    if provider is not None:
        if provider not in ("local", "openai"):
            from ...state import fail

            fail(
                state,
                ValidationError("--provider", f"'{provider}' is not a provider", "local, openai"),
            )
        config = state.memory_config()
        embeddings = config.embeddings.model_copy(update={"provider": provider})
        state._config = config.model_copy(update={"embeddings": embeddings})

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....errors import CapabilityUnavailableError

        if memory.vectors is None:
            raise CapabilityUnavailableError(
                "No embedding provider is configured: set embeddings.provider (local or openai) "
                "in the config, or pass --provider."
            )
        before = await memory.vectors.status()
        if state.dry_run:
            return {
                "dry_run": True,
                "would": "embed the completed episodes that have no vector of this model",
                "identity": memory.vectors.identity,
                "missing": before.missing,
            }
        with backup_commands._progress(state) as update:

            def progress(done: int, total: int) -> None:
                if update is not None:
                    update("embedding episodes", done, total)

            embedded = await memory.reindex_embeddings(batch_size, progress)
        after = await memory.vectors.status()
        return {
            "identity": memory.vectors.identity,
            "embedded_now": embedded,
            "embedded_total": after.embedded,
            "missing": after.missing,
            "other_identities": after.other_identities,
        }

    emit(state, run_with_memory(state, act))
