"""`memory-cli storage sync`: refresh the LMDB cache from the primary store
(``storage/sync.py``). In embedded mode the SQL file is the only primary store: there is no
remote primary to pull from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...output import emit
from ...state import get_state, run_with_memory
from .options import DryRunOpt

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory
    from ....storage.lmdb_cache import EpisodeCache

__all__ = ["sync"]


def _cache(memory: SelfLearningMemory) -> EpisodeCache:
    from ....errors import CapabilityUnavailableError

    if memory.cache is None:
        raise CapabilityUnavailableError(
            "The cache is disabled (cache.enabled = false): there is nothing to sync or compare."
        )
    return memory.cache


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
    from ....errors import ValidationError
    from ..episode import parse_since

    state = get_state(ctx)
    dry = dry_run or state.dry_run
    choices = ("primary_wins", "most_recent", "cache_wins")
    if strategy not in choices:
        from ...state import fail

        fail(state, ValidationError("--strategy", f"{strategy!r} is not known", ", ".join(choices)))

    async def act(memory: SelfLearningMemory) -> Any:
        import asyncio
        from dataclasses import asdict

        from ....storage.sync import StorageSynchronizer

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
