"""Retrieval latency on PostgreSQL next to the embedded store, same corpus, same queries.

    python -m benchmarks.postgres_bench [--episodes 1000] [--queries 50] [--dsn URL]

Writes ``--episodes`` synthetic episodes through the public API into a fresh SQLite data
directory and into a fresh schema of the PostgreSQL server (``--dsn``, default
``$MEMORY_TEST_POSTGRES_DSN`` or loopback; the schema is dropped afterwards), then times
``retrieve_relevant_context`` (lexical, limit 5) for the same queries on both. Prints one JSON
line per result; the baseline is the embedded store measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from benchmarks import synthetic
from self_learning_memory import MemoryConfig, SelfLearningMemory

DEFAULT_DSN = os.environ.get(
    "MEMORY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


async def build(memory: SelfLearningMemory, size: int) -> float:
    started = time.perf_counter()
    for ep in synthetic.episodes(size, seed=3):
        eid = await memory.start_episode(ep.description, ep.context, ep.task_type)
        for step in ep.steps:
            await memory.log_step(eid, step)
        await memory.complete_episode(eid, ep.outcome)
    return time.perf_counter() - started


async def measure(memory: SelfLearningMemory, queries: int) -> list[float]:
    samples = []
    for text, context in synthetic.queries(queries):
        memory._query_cache.clear()  # measure the store, not the in-process result cache
        started = time.perf_counter_ns()
        await memory.retrieve_relevant_context(text, context, limit=5, mode="lexical")
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def run(episodes: int, queries: int, dsn: str) -> list[dict[str, Any]]:
    schema = f"slm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    url = f"{dsn}{sep}options=" + quote(f"-csearch_path={schema}", safe="")
    records = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results: dict[str, tuple[float, list[float]]] = {}
            for name, config in (
                ("sqlite", MemoryConfig()),
                ("postgresql", MemoryConfig.model_validate({"storage": {"url": url}})),
            ):
                async with SelfLearningMemory.open(Path(tmp) / name, config=config) as memory:
                    build_s = await build(memory, episodes)
                    await measure(memory, 5)  # warm up
                    results[name] = (build_s, await measure(memory, queries))
            base = summary(results["sqlite"][1])
            for name, (build_s, samples) in results.items():
                p50, p95 = summary(samples)
                records.append(
                    {
                        "name": f"retrieve_lexical_{name}",
                        "n": episodes,
                        "samples": len(samples),
                        "median_ms": round(p50, 3),
                        "p95_ms": round(p95, 3),
                        "baseline": "sqlite (same run)",
                        "baseline_median_ms": round(base[0], 3),
                        "ratio": round(p50 / base[0], 2),
                        "build_episodes_per_s": round(episodes / build_s, 1),
                    }
                )
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args(argv)
    for record in asyncio.run(run(args.episodes, args.queries, args.dsn)):
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
