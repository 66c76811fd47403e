"""The sandbox audit trail's cost: recording a run (insert plus pruning to the newest ``keep`` in
the same write) on a full trail, listing the newest 50, and counting by outcome and backend
(what ``get_metrics`` runs), on the embedded SQLite store and, when reachable, PostgreSQL. The
baseline is creating an episode (one insert) on the same store. Prints a JSON line per result.

``python benchmarks/sandbox_audit_bench.py [--keep 10000] [--runs 500] [--postgres DSN]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from self_learning_memory import MemoryConfig, SandboxRun, SelfLearningMemory


def _run(i: int) -> SandboxRun:
    return SandboxRun(
        code_sha256=f"{i:064x}",
        code_bytes=100 + i % 50,
        backend="wasm",
        limits={"preset": "restrictive", "time_ms": 3000, "memory_mb": 64},
        duration_ms=2.5,
        outcome=("success", "error", "timeout")[i % 3],
        error_type="runtime" if i % 3 == 1 else None,
        caller="mcp",
        task="bench",
    )


async def _timed(n: int, fn: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await fn(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _line(name: str, store: str, samples: list[float], baseline: float | None) -> None:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    print(
        json.dumps(
            {
                "name": name,
                "store": store,
                "n": len(ordered),
                "median_ms": round(median, 3),
                "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
                "ratio_to_episode_insert": None
                if baseline is None
                else round(median / baseline, 2),
            }
        ),
        flush=True,
    )


async def bench(store: str, url: str | None, keep: int, runs: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    config = MemoryConfig.model_validate(
        {"sandbox_audit": {"keep": keep}, "storage": {"url": url}, "cache": {"enabled": False}}
    )
    async with SelfLearningMemory.open(data, config=config) as memory:
        episodes = await _timed(runs, lambda i: memory.start_episode(f"episode {i}"))
        baseline = statistics.median(episodes)
        _line("episode_insert", store, episodes, None)
        for i in range(keep):  # fill the trail
            await memory.record_sandbox_run(_run(i))
        records = await _timed(
            runs,
            lambda i: memory.record_sandbox_run(
                _run(i).model_copy(update={"run_id": uuid.uuid4()})
            ),
        )
        _line(f"record_with_pruning_at_{keep}", store, records, baseline)
        _line(
            "list_newest_50",
            store,
            await _timed(50, lambda i: memory.list_sandbox_runs()),
            baseline,
        )
        _line(
            f"count_by_outcome_backend_{keep}",
            store,
            await _timed(50, lambda i: memory.sandbox_run_counts()),
            baseline,
        )
        assert (await memory.sandbox_run_counts()).total == keep


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--postgres", default=None, help="a postgresql:// DSN (a fresh schema)")
    args = parser.parse_args()
    asyncio.run(bench("sqlite", None, args.keep, args.runs))
    if args.postgres:
        asyncio.run(bench("postgresql", args.postgres, args.keep, args.runs))


if __name__ == "__main__":
    main()
