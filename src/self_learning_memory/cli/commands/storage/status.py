"""`memory-cli storage status` (alias `stats`), `connections`, `health`: what the store holds
and what has it open (``storage/maintenance.py`` reads it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ...output import emit, table
from ...state import get_state, run_with_memory
from .options import mib

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory

__all__ = ["connections", "health", "stats", "status"]


def _status(ctx: typer.Context) -> None:
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        import asyncio

        from ....presenters.health import store_counts
        from ....storage.maintenance import embedded_parts, file_sizes, store_info

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
        rows = [[name, mib(n)] for name, n in sizes.items()]
        rows.append(["reclaimable by vacuum", mib(d["store"]["reclaimable_bytes"])])
        table(console, "on disk", ["file", "size"], rows)
        cache = d["cache"]
        if cache is None:
            console.print("cache: disabled")
        else:
            console.print(
                f"cache: {cache['entries']}/{cache['max_entries']} episodes, map "
                f"{mib(cache['map_size_bytes'])}, this process: {cache['hits']} hits, "
                f"{cache['misses']} misses"
            )

    emit(state, run_with_memory(state, act), human)


def status(ctx: typer.Context) -> None:
    """Counts, sizes on disk, schema version and cache statistics (alias: stats)."""
    _status(ctx)


def stats(ctx: typer.Context) -> None:
    """Alias of status."""
    _status(ctx)


def health(ctx: typer.Context) -> None:
    """Same as `memory-cli health check`."""
    from ..health import check_once, finish

    state = get_state(ctx)
    finish(state, check_once(state))


def connections(ctx: typer.Context) -> None:
    """What is open: the store (path, WAL, busy timeout), the cache (map size, readers) and
    other processes using the same data directory."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....storage.maintenance import connections as open_things
        from ....storage.maintenance import embedded_parts

        storage, cache = embedded_parts(memory)
        return await open_things(storage, cache)

    def human(console: Console, d: dict[str, Any]) -> None:
        s = d["store"]
        console.print(f"mode: embedded (this process: pid {d['pid']})")
        console.print(
            f"store: {s['path']}  journal {s['journal_mode']}  WAL {mib(s['wal_bytes'])}  "
            f"busy timeout {s['busy_timeout_ms']} ms  synchronous {s['synchronous']}"
        )
        c = d["cache"]
        if c is None:
            console.print("cache: disabled")
        else:
            console.print(
                f"cache: {c['path']}  map {mib(c['map_size_bytes'])}  used "
                f"{mib(c['used_bytes'])}  readers max {c['max_readers']}"
            )
        others = d["other_processes"]
        console.print(
            f"other processes: {', '.join(map(str, others)) if others else 'none seen'} "
            f"({d['other_processes_source']})"
        )

    emit(state, run_with_memory(state, act), human)
