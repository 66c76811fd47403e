"""`memory-cli storage` (alias `st`): status (stats), sync, vacuum, verify, backup, health,
connections, reindex, migrate, rebuild-from-cache (``storage_rebuild.py``). The work is done by ``storage/maintenance.py`` and ``storage/cache_sync.py``;
these commands open the memory, call one of them and format the result.

In embedded mode the SQL file is the only primary store: `sync` refreshes the LMDB cache from
it (there is no remote primary to pull from)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..output import emit, print_error, table
from ..state import EXIT_CODES, get_state, run_with_memory
from . import backup as backup_commands
from .storage_rebuild import add_rebuild_command

if TYPE_CHECKING:
    from rich.console import Console

    from ...core.memory import SelfLearningMemory
    from ...storage.lmdb_cache import EpisodeCache

app = typer.Typer(
    help="Inspect and maintain the store and its cache (alias: st).",
    no_args_is_help=True,
)

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Only report what would be done (same as the global).")
]


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1_048_576:.2f} MiB ({n} bytes)"


def _cache(memory: SelfLearningMemory) -> EpisodeCache:
    from ...errors import CapabilityUnavailableError

    if memory.cache is None:
        raise CapabilityUnavailableError(
            "The cache is disabled (cache.enabled = false): there is nothing to sync or compare."
        )
    return memory.cache


def _status(ctx: typer.Context) -> None:
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        import asyncio

        from ...presenters.health import store_counts
        from ...storage.maintenance import embedded_parts, file_sizes, store_info

        storage, cache = embedded_parts(memory)
        stats = await memory.stats()
        info = await store_info(storage)
        cache_env = None if cache is None else await asyncio.to_thread(cache.env_info)
        return {
            "mode": "embedded",
            "data_dir": str(memory.data_dir),
            "schema_version": info.schema_version,
            "expected_schema_version": info.expected_schema_version,
            "counts": {**store_counts(stats), "learning_queue": stats.learning_queue},
            "sizes_bytes": file_sizes(storage, cache),
            "store": {
                "path": info.path,
                "sqlite_version": info.sqlite_version,
                "journal_mode": info.journal_mode,
                "page_size": info.page_size,
                "page_count": info.page_count,
                "freelist_pages": info.freelist_pages,
                "reclaimable_bytes": info.reclaimable_bytes,
            },
            "cache": None
            if stats.cache is None
            else {
                **stats.cache.model_dump(mode="json"),
                "max_entries": None if cache is None else cache.max_entries,
                "used_bytes": None if cache_env is None else cache_env["used_bytes"],
            },
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        c = d["counts"]
        console.print(f"[bold]embedded store[/bold] {d['store']['path']}")
        console.print(
            f"schema v{d['schema_version']} (expected v{d['expected_schema_version']}), "
            f"SQLite {d['store']['sqlite_version']}, journal {d['store']['journal_mode']}"
        )
        console.print(
            f"episodes {c['episodes']} ({c['completed']} completed, {c['in_progress']} in "
            f"progress), steps {c['steps']}, patterns {c['patterns']}, heuristics "
            f"{c['heuristics']}"
        )
        sizes = d["sizes_bytes"]
        rows = [[name, _mib(n)] for name, n in sizes.items()]
        rows.append(["reclaimable by vacuum", _mib(d["store"]["reclaimable_bytes"])])
        table(console, "on disk", ["file", "size"], rows)
        cache = d["cache"]
        if cache is None:
            console.print("cache: disabled")
        else:
            console.print(
                f"cache: {cache['entries']}/{cache['max_entries']} episodes, map "
                f"{_mib(cache['map_size_bytes'])}, this process: {cache['hits']} hits, "
                f"{cache['misses']} misses"
            )

    emit(state, run_with_memory(state, act), human)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Counts, sizes on disk, schema version and cache statistics (alias: stats)."""
    _status(ctx)


@app.command("stats", hidden=True)
def stats(ctx: typer.Context) -> None:
    """Alias of status."""
    _status(ctx)


@app.command("sync")
def sync(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", "-s", help="Episodes started in the last Nh, Nd or Nm.")
    ] = "24h",
    force: Annotated[
        bool, typer.Option("--force", help="Rewrite every entry, even those that match.")
    ] = False,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="Who wins when a cached item differs from the store: primary_wins, "
            "most_recent or cache_wins.",
        ),
    ] = "primary_wins",
    dry_run: DryRunOpt = False,
) -> None:
    """Sync the LMDB cache from the primary store (episodes, pattern and heuristic index)."""
    from ...errors import ValidationError
    from .episode import parse_since

    state = get_state(ctx)
    dry = dry_run or state.dry_run
    choices = ("primary_wins", "most_recent", "cache_wins")
    if strategy not in choices:
        from ..state import fail

        fail(state, ValidationError("--strategy", f"{strategy!r} is not known", ", ".join(choices)))

    async def act(memory: SelfLearningMemory) -> Any:
        import asyncio
        from dataclasses import asdict

        from ...storage.sync import StorageSynchronizer

        start = parse_since(since)
        cache = _cache(memory)
        rebuilt: dict[str, Any] | None = None
        if cache.disabled is not None:  # damaged or unwritable: move it aside, start anew
            rebuilt = {"reason": cache.disabled, "moved_to": None}
            if dry:
                return {"dry_run": True, "cache_rebuilt": rebuilt}
            aside = await asyncio.to_thread(cache.rebuild)
            rebuilt["moved_to"] = None if aside is None else str(aside)
        synchronizer = StorageSynchronizer(
            memory.storage,
            cache,
            strategy=strategy,
            index_limit=memory.config.sync.index_limit,
        )
        await synchronizer.load_state()
        stats, report = await synchronizer.sync_all_recent(start, force=force, dry_run=dry)
        return {
            **asdict(report),
            "sync": asdict(stats),
            "state": synchronizer.report(),
            "cache_rebuilt": rebuilt,
        }

    def human(console: Console, r: dict[str, Any]) -> None:
        rebuilt = r.get("cache_rebuilt")
        if rebuilt is not None and "state" not in r:  # --dry-run
            console.print(
                f"the cache is disabled ({rebuilt['reason']}): sync would move it aside and "
                "rebuild it from the store"
            )
            return
        if rebuilt is not None:
            console.print(
                f"the cache was disabled ({rebuilt['reason']}): moved aside to "
                f"{rebuilt['moved_to']}, rebuilt from the store"
            )
        if r["mode"] == "embedded":
            console.print(
                "embedded mode: the SQL store is the only primary (no remote); "
                "refreshing the cache from it."
            )
        else:
            console.print(f"primary: {r['primary']}; refreshing the cache from it.")
        dry_run = r["dry_run"]
        verb = "would add" if dry_run else "added"
        console.print(
            f"{r['examined']} completed episodes since {r['since'][:19]} ({r['cacheable']} "
            f"learned): {verb} {r['added']}, {'would update' if dry_run else 'updated'} "
            f"{r['updated']}, unchanged {r['unchanged']}, stale entries "
            f"{'to remove' if dry_run else 'removed'} {r['stale_removed']}"
        )
        s = r["sync"]
        console.print(
            f"patterns {s['patterns_synced']}, heuristics {s['heuristics_synced']} "
            f"{'to write' if dry_run else 'written'} to the cached index; conflicts "
            f"{s['conflicts_resolved']} ({r['strategy']}, {s['kept_cached']} kept from the cache)"
        )
        if r["beyond_capacity"]:
            console.print(
                f"{r['beyond_capacity']} older episodes do not fit "
                f"(capacity {r['capacity']} episodes)"
            )
        console.print(
            f"cache entries: {r['cache_entries_before']} -> {r['cache_entries_after']}; "
            f"syncs so far {r['state']['sync_count']}"
        )

    emit(state, run_with_memory(state, act), human)


@app.command("vacuum")
def vacuum(ctx: typer.Context, dry_run: DryRunOpt = False) -> None:
    """Rebuild the database file without its free pages and truncate the WAL (SQLite VACUUM);
    reports bytes before and after. With --dry-run: the estimate only."""
    state = get_state(ctx)
    dry = dry_run or state.dry_run

    async def act(memory: SelfLearningMemory) -> Any:
        from ...storage.maintenance import embedded_parts
        from ...storage.maintenance import vacuum as run_vacuum

        storage, cache = embedded_parts(memory)
        return await run_vacuum(storage, cache, dry_run=dry)

    def human(console: Console, r: Any) -> None:
        if r.dry_run:
            console.print(
                f"dry run: the store takes {_mib(r.before['total'])}; vacuum could give back "
                f"up to {_mib(r.reclaimable_bytes)} ({r.freelist_pages_before} free pages "
                f"plus the WAL)"
            )
        else:
            console.print(
                f"vacuumed: {_mib(r.before['total'])} -> {_mib(r.after['total'])}, freed "
                f"{_mib(r.freed_bytes)} (free pages {r.freelist_pages_before} -> "
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


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check the store (integrity_check, foreign keys, full-text index) and the cache against
    it (every entry decodes and equals the SQL row). Exit 7 when anything is wrong."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        import asyncio

        from ...storage.cache_sync import verify_cache
        from ...storage.maintenance import check_integrity, embedded_parts
        from ...storage.wal_check import read_wal_loss

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


# `storage backup` is `backup create` itself (same options, help and output).
backup_commands.add_create_command(app, "backup")
add_rebuild_command(app)


@app.command("health")
def health(ctx: typer.Context) -> None:
    """Same as `memory-cli health check`."""
    from .health import check_once, finish

    state = get_state(ctx)
    finish(state, check_once(state))


@app.command("connections")
def connections(ctx: typer.Context) -> None:
    """What is open: the store (path, WAL, busy timeout), the cache (map size, readers) and
    other processes using the same data directory."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...storage.maintenance import connections as open_things
        from ...storage.maintenance import embedded_parts

        storage, cache = embedded_parts(memory)
        return await open_things(storage, cache)

    def human(console: Console, d: dict[str, Any]) -> None:
        s = d["store"]
        console.print(f"mode: embedded (this process: pid {d['pid']})")
        console.print(
            f"store: {s['path']}  journal {s['journal_mode']}  WAL {_mib(s['wal_bytes'])}  "
            f"busy timeout {s['busy_timeout_ms']} ms  synchronous {s['synchronous']}"
        )
        c = d["cache"]
        if c is None:
            console.print("cache: disabled")
        else:
            console.print(
                f"cache: {c['path']}  map {_mib(c['map_size_bytes'])}  used "
                f"{_mib(c['used_bytes'])}  readers max {c['max_readers']}"
            )
        others = d["other_processes"]
        console.print(
            f"other processes: {', '.join(map(str, others)) if others else 'none seen'} "
            f"({d['other_processes_source']})"
        )

    emit(state, run_with_memory(state, act), human)


@app.command("reindex")
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
    from ...errors import ValidationError

    state = get_state(ctx)
    if provider is not None:
        if provider not in ("local", "openai"):
            from ..state import fail

            fail(
                state,
                ValidationError("--provider", f"'{provider}' is not a provider", "local, openai"),
            )
        config = state.memory_config()
        embeddings = config.embeddings.model_copy(update={"provider": provider})
        state._config = config.model_copy(update={"embeddings": embeddings})

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...errors import CapabilityUnavailableError

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


@app.command("migrate")
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
    from ...errors import StorageError
    from ...settings.loader import database_url
    from ...storage.database_url import mask_url

    state = get_state(ctx)
    dry = dry_run or state.dry_run
    origin = source or database_url(state.settings().settings) or str(state.resolved_data_dir())

    async def act() -> dict[str, Any]:
        from dataclasses import asdict

        from ...storage.migrate import migrate as run_migration
        from ...storage.migrate import open_url

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

    from ..state import run

    emit(state, run(state, act), human)
