"""Foundation benchmarks: log_step, complete_episode, lexical retrieval.

    python -m benchmarks.foundation_bench [--quick] [--sizes 1000,10000] [--episodes 200]

Prints one JSON line per result; every result carries a baseline measured in the same run
(call by call interleaved with it, so both see the same machine load, except the full scan
below), ``ratio`` = median / baseline median (above 1: slower than the baseline), and
``cpu_median_ms``, the process CPU time per call:

- ``log_step``: one step through the public API, buffered (the default BatchConfig) and
  unbuffered (``batch=None``: every step is its own durable transaction), against a plain
  stdlib ``sqlite3`` insert + commit of the same step's JSON into a WAL table.
- ``complete_episode``: completion with learning (flush, extraction, aggregation, reward,
  reflection, one transaction, read-back verify) of ~8-step episodes with errors, against a
  plain ``sqlite3`` transaction that stores the completed episode's JSON and its step rows
  (what the reference system writes, without learning). ``learn_median_ms`` is the pure
  learning step alone. Measured on a fresh store and on the 10K-episode store.
- ``retrieve``: retrieve_relevant_context through SelfLearningMemory at N stored episodes, in
  lexical mode, against the legacy score mode on the same store and against an
  upstream-style full scan (every completed episode held in memory and scored in Python with
  the reference formula, as the Rust seed does; the time to load them is ``fullscan_load_s``).
  The store is written through the public API in a child process (``build_s``) and opened
  fresh, as an agent process would open an existing store.
  The query result cache is cleared before every call: this measures retrieval, not the cache.
  Lexical and legacy calls alternate query by query; the full scan runs in a second pass over
  the same queries (interleaved, its sweep over every episode evicts the CPU caches and slows
  the next lexical call by about 2 ms at 10K, which would measure the baseline's side effect).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from self_learning_memory import (
    BatchConfig,
    Episode,
    EpisodeFilters,
    MemoryConfig,
    RetrievalMode,
    SelfLearningMemory,
    TaskContext,
)
from self_learning_memory.learning.learner import learn

from . import synthetic

Record = dict[str, Any]
TARGET_LOG_STEP_MS = 0.2
TARGET_COMPLETE_MS = 20.0
TARGET_RETRIEVE_MS = 5.0


def emit(record: Record) -> Record:
    print(json.dumps(record), flush=True)
    return record


def stats_ms(samples_ns: Sequence[int]) -> tuple[float, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))]


def result(
    name: str,
    ours: Sequence[int],
    baseline: str,
    base: Sequence[int],
    target_ms: float | None,
    *,
    cpu: Sequence[int] = (),
    base_cpu: Sequence[int] = (),
    **extra: Any,
) -> Record:
    """One result. ``cpu``/``base_cpu``: process CPU time per call (all threads), which
    other processes competing for the cores inflate far less than wall-clock time."""
    p50, p95 = stats_ms(ours)
    b50, b95 = stats_ms(base)
    record: Record = {"name": name, **extra, "samples": len(ours)}
    record.update(
        median_ms=round(p50, 4),
        p95_ms=round(p95, 4),
        baseline=baseline,
        baseline_median_ms=round(b50, 4),
        baseline_p95_ms=round(b95, 4),
        ratio=round(p50 / b50, 2) if b50 > 0 else None,
    )
    if cpu:
        record["cpu_median_ms"] = round(stats_ms(cpu)[0], 4)
    if base_cpu:
        record["baseline_cpu_median_ms"] = round(stats_ms(base_cpu)[0], 4)
    if target_ms is not None:
        record.update(target_ms=target_ms, target_met=p50 <= target_ms)
    return record


# -- the plain sqlite3 baselines --------------------------------------------------------------
def baseline_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # the library's default
    conn.execute(
        "CREATE TABLE IF NOT EXISTS steps (episode_id TEXT, step_number INTEGER, data TEXT, "
        "PRIMARY KEY (episode_id, step_number))"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS episodes (episode_id TEXT PRIMARY KEY, data TEXT)")
    return conn


def timed_ns(fn: Any, *args: Any) -> int:
    start = time.perf_counter_ns()
    fn(*args)
    return time.perf_counter_ns() - start


def timed_cpu_ns(fn: Any, *args: Any) -> tuple[int, int]:
    """Wall-clock and process CPU nanoseconds of one call."""
    start, cpu = time.perf_counter_ns(), time.process_time_ns()
    fn(*args)
    return time.perf_counter_ns() - start, time.process_time_ns() - cpu


# -- log_step ------------------------------------------------------------------------------
async def bench_log_step(count: int = 200, seed: int = 1) -> list[Record]:
    """log_step buffered and unbuffered, each against sqlite3 insert+commit of the step JSON."""
    corpus = synthetic.episodes(count, seed=seed)
    out = []
    for label, batch in (("buffered", BatchConfig()), ("unbuffered", None)):
        with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
            base = baseline_db(Path(tmp) / "baseline.db")

            def insert(eid: str, n: int, data: str, base: sqlite3.Connection = base) -> None:
                base.execute("BEGIN")
                base.execute("INSERT INTO steps VALUES (?, ?, ?)", (eid, n, data))
                base.execute("COMMIT")

            ours: list[int] = []
            theirs: list[int] = []
            config = MemoryConfig(batch=batch)
            async with SelfLearningMemory.open(Path(tmp) / "store", config=config) as memory:
                for ep in corpus:
                    eid = await memory.start_episode(ep.description, ep.context, ep.task_type)
                    for step in ep.steps:
                        start = time.perf_counter_ns()
                        await memory.log_step(eid, step)
                        ours.append(time.perf_counter_ns() - start)
                        theirs.append(
                            timed_ns(
                                lambda s=step, e=str(eid): insert(
                                    e, s.step_number, s.model_dump_json()
                                )
                            )
                        )
                    await memory.complete_episode(eid, ep.outcome)
            base.close()
        note = (
            "buffered in memory; durable at the next flush (50 steps, 5 s idle, complete, close)"
            if batch is not None
            else "each step its own durable transaction"
        )
        out.append(
            emit(
                result(
                    "log_step",
                    ours,
                    "stdlib sqlite3 INSERT+COMMIT of the step JSON, WAL, synchronous=NORMAL",
                    theirs,
                    TARGET_LOG_STEP_MS,
                    mode=label,
                    n=len(ours),
                    note=note,
                )
            )
        )
    return out


# -- complete_episode ----------------------------------------------------------------------
async def _complete_many(
    memory: SelfLearningMemory, corpus: list[synthetic.SyntheticEpisode], base: sqlite3.Connection
) -> tuple[list[int], list[int], list[int], list[int]]:
    ours: list[int] = []
    cpu: list[int] = []
    theirs: list[int] = []
    learn_ns: list[int] = []
    for ep in corpus:
        eid = await memory.start_episode(ep.description, ep.context, ep.task_type)
        for step in ep.steps:
            await memory.log_step(eid, step)
        start, cpu_start = time.perf_counter_ns(), time.process_time_ns()
        final = await memory.complete_episode(eid, ep.outcome)
        ours.append(time.perf_counter_ns() - start)
        cpu.append(time.process_time_ns() - cpu_start)

        def store(episode: Episode = final) -> None:
            e = str(episode.episode_id)
            base.execute("BEGIN")
            base.execute(
                "INSERT OR REPLACE INTO episodes VALUES (?, ?)", (e, episode.model_dump_json())
            )
            base.executemany(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?)",
                [(e, s.step_number, s.model_dump_json()) for s in episode.steps],
            )
            base.execute("COMMIT")

        theirs.append(timed_ns(store))
        bare = final.model_copy(update={"reward": None, "reflection": None})
        learn_ns.append(timed_ns(learn, bare, memory.config.extraction))
    return ours, cpu, theirs, learn_ns


BASELINE_COMPLETE = "stdlib sqlite3 transaction storing the episode JSON and its step rows"


async def bench_complete(count: int = 200, seed: int = 2) -> list[Record]:
    """complete_episode with learning on a fresh store that accumulates patterns."""
    corpus = synthetic.episodes(count, seed=seed)
    with tempfile.TemporaryDirectory(prefix="bench-complete-") as tmp:
        base = baseline_db(Path(tmp) / "baseline.db")
        async with SelfLearningMemory.open(Path(tmp) / "store") as memory:
            ours, cpu, theirs, learn_ns = await _complete_many(memory, corpus, base)
            stats = await memory.stats()
        base.close()
    return [
        emit(
            result(
                "complete_episode",
                ours,
                BASELINE_COMPLETE,
                theirs,
                TARGET_COMPLETE_MS,
                cpu=cpu,
                store_episodes=0,
                n=count,
                steps_mean=round(statistics.mean(len(e.steps) for e in corpus), 1),
                learn_median_ms=round(stats_ms(learn_ns)[0], 3),
                patterns_after=stats.patterns,
                heuristics_after=stats.heuristics,
            )
        )
    ]


# -- retrieval -----------------------------------------------------------------------------
async def build_store(path: Path, size: int, seed: int = 3) -> float:
    """``size`` completed episodes written through the public API; returns seconds taken."""
    corpus = synthetic.episodes(size, seed=seed)
    started = time.perf_counter()
    async with SelfLearningMemory.open(path) as memory:
        for ep in corpus:
            eid = await memory.start_episode(ep.description, ep.context, ep.task_type)
            for step in ep.steps:
                await memory.log_step(eid, step)
            await memory.complete_episode(eid, ep.outcome)
    return time.perf_counter() - started


def _build_sync(path: Path, size: int) -> float:
    return asyncio.run(build_store(path, size))


async def build_in_child(path: Path, size: int) -> float:
    """Build the store in a separate process, so the measured process is like an agent that
    opens an existing store (not one whose heap still holds 10K freshly written episodes)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return await asyncio.wrap_future(pool.submit(_build_sync, path, size))


def _upstream_relevant(episode: Episode, words: list[str], context: TaskContext) -> bool:
    c = episode.context
    desc = episode.task_description.lower()
    return (
        c.domain == context.domain
        or (context.language is not None and c.language == context.language)
        or (context.framework is not None and c.framework == context.framework)
        or bool(set(c.tags) & set(context.tags))
        or any(len(w) > 3 and w in desc for w in words)
    )


def upstream_full_scan(
    episodes: list[Episode], query: str, context: TaskContext, limit: int
) -> list[Episode]:
    """The reference system's retrieval: filter and score every completed episode in memory."""
    words = query.lower().split()
    scored = []
    for episode in episodes:
        if not episode.is_complete() or not _upstream_relevant(episode, words, context):
            continue
        c = episode.context
        ctx = 0.4 * (c.domain == context.domain)
        ctx += 0.3 * (context.language is not None and c.language == context.language)
        ctx += 0.2 * (context.framework is not None and c.framework == context.framework)
        ctx += 0.1 * len(set(c.tags) & set(context.tags))
        desc = episode.task_description.lower()
        hits = sum(1 for w in words if len(w) > 3 and w in desc)
        reward = episode.reward.total if episode.reward is not None else 0.0
        score = 0.3 * reward + min(0.4, ctx) + 0.3 * (hits / len(words) if words else 0.0)
        scored.append((score, episode))
    scored.sort(key=lambda pair: -pair[0])
    return [e for _, e in scored[:limit]]


async def load_all(memory: SelfLearningMemory) -> list[Episode]:
    out: list[Episode] = []
    while True:
        page = await memory.list_episodes(EpisodeFilters(completed=True), 1000, len(out))
        out += page
        if len(page) < 1000:
            return out


async def _cache_counts(memory: SelfLearningMemory) -> tuple[int, int]:
    cache = (await memory.stats()).cache
    return (0, 0) if cache is None else (cache.hits, cache.misses)


async def bench_retrieve(
    size: int, queries: int = 100, limit: int = 5, complete_at_size: int = 50
) -> list[Record]:
    """Lexical retrieval at ``size`` episodes vs legacy mode vs an upstream-style full scan;
    then complete_episode on that store."""
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-retrieve-") as tmp:
        path = Path(tmp) / "store"
        build_s = await build_in_child(path, size)
        async with SelfLearningMemory.open(path) as memory:
            started = time.perf_counter()
            everything = await load_all(memory)
            load_s = time.perf_counter() - started
            asked = synthetic.queries(queries + 10)
            samples: dict[str, list[int]] = {"lexical": [], "legacy": [], "fullscan": []}
            cpu: dict[str, list[int]] = {"lexical": [], "legacy": [], "fullscan": []}
            empty = 0
            before = await _cache_counts(memory)
            for i, (text, ctx) in enumerate(asked):
                for mode in (RetrievalMode.LEXICAL, RetrievalMode.LEGACY):
                    memory._query_cache.clear()  # measure retrieval, not the result cache
                    start, cpu_start = time.perf_counter_ns(), time.process_time_ns()
                    found = await memory.retrieve_relevant_context(text, ctx, limit, mode=mode)
                    elapsed = time.perf_counter_ns() - start
                    if i >= 10:  # the first ten queries warm up
                        samples[mode.value].append(elapsed)
                        cpu[mode.value].append(time.process_time_ns() - cpu_start)
                    empty += not found
            # A second pass, not interleaved: a 10K-episode scan between two of our calls
            # evicts the CPU caches and adds about 2 ms to the next call (measured).
            for i, (text, ctx) in enumerate(asked):
                wall, used = timed_cpu_ns(upstream_full_scan, everything, text, ctx, limit)
                if i >= 10:
                    samples["fullscan"].append(wall)
                    cpu["fullscan"].append(used)
            after = await _cache_counts(memory)
            hits, misses = after[0] - before[0], after[1] - before[1]
            extra = {
                "n": size,
                "queries": queries,
                "limit": limit,
                "build_s": round(build_s, 1),
                "empty_results": empty,
                "cache_hit_rate": round(hits / (hits + misses), 2) if hits + misses else None,
            }
            lexical = samples["lexical"]
            out.append(
                emit(
                    result(
                        "retrieve",
                        lexical,
                        "legacy score mode, same store and queries",
                        samples["legacy"],
                        TARGET_RETRIEVE_MS,
                        cpu=cpu["lexical"],
                        base_cpu=cpu["legacy"],
                        mode="lexical",
                        **extra,
                    )
                )
            )
            out.append(
                emit(
                    result(
                        "retrieve",
                        lexical,
                        "upstream-style full scan: all episodes in memory, scored in Python",
                        samples["fullscan"],
                        TARGET_RETRIEVE_MS,
                        cpu=cpu["lexical"],
                        base_cpu=cpu["fullscan"],
                        mode="lexical",
                        fullscan_load_s=round(load_s, 2),
                        **extra,
                    )
                )
            )
            if complete_at_size:
                with tempfile.TemporaryDirectory(prefix="bench-complete-base-") as btmp:
                    base = baseline_db(Path(btmp) / "baseline.db")
                    corpus = synthetic.episodes(complete_at_size, seed=size + 17)
                    ours, cpu, theirs, learn_ns = await _complete_many(memory, corpus, base)
                    base.close()
                out.append(
                    emit(
                        result(
                            "complete_episode",
                            ours,
                            BASELINE_COMPLETE,
                            theirs,
                            TARGET_COMPLETE_MS,
                            cpu=cpu,
                            store_episodes=size,
                            n=complete_at_size,
                            learn_median_ms=round(stats_ms(learn_ns)[0], 3),
                        )
                    )
                )
    return out


async def run(sizes: list[int], episodes: int, queries: int) -> list[Record]:
    records = await bench_log_step(episodes)
    records += await bench_complete(episodes)
    for size in sizes:
        records += await bench_retrieve(size, queries)
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--sizes", default=None, help="store sizes for retrieval (1000,10000)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes for log/complete")
    parser.add_argument("--queries", type=int, default=None, help="timed queries per size")
    args = parser.parse_args(argv)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([300] if args.quick else [1000, 10_000])
    )
    episodes = args.episodes or (30 if args.quick else 300)
    queries = args.queries or (30 if args.quick else 200)
    asyncio.run(run(sizes, episodes, queries))


if __name__ == "__main__":
    main()
