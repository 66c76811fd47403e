"""An agent's loop on a large store: complete a task, then retrieve the next one's context.

    python -m benchmarks.write_then_retrieve_bench --store-dir DIR [--sizes 10000] [--rounds 40]

Uses the store ``embeddings_bench --store-dir DIR`` built in ``DIR/<size>`` (hashing vectors,
384 dimensions), copied to a temporary directory first (the writes would change it). Each round
completes one episode (start, one step, complete: its vector is written by the background
worker, the default) and then retrieves (hybrid, limit 10) for one of the bench's
plain-language queries, in one of three ways, the rounds alternating between them:

- ``after_write``: right after the completion, while the worker may still be embedding it (an
  agent that asks at once);
- ``after_vector``: after ``wait_for_embeddings`` (the new vector written);
- ``no_write`` (the baseline, in the same run and process): a retrieval with no write before it.

Prints one JSON line per size with each way's p50 and p90 (ms). Query vectors are computed
before the timed rounds (the query embedding is measured elsewhere: ``embeddings_bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.embeddings_bench import bench_queries
from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.storage.factory import open_embedded

CONTEXT = TaskContext(domain="web-api", language="python")
WAYS = ("after_write", "after_vector", "no_write")


async def run(path: Path, rounds: int) -> dict[str, Any]:
    config = MemoryConfig()
    storage, cache = open_embedded(path, config)
    embedder = HashingEmbedding(384)
    async with SelfLearningMemory(storage, config=config, cache=cache, embedder=embedder) as memory:
        assert memory.vectors is not None
        queries = bench_queries(rounds)["plain"]
        for text in queries:
            await memory.vectors.query_vector(text, CONTEXT)
        await memory.retrieve_relevant_context(queries[0], CONTEXT, 10)
        # what the first search starts in the background: the int8 rows packed (~0.1 s) and
        # the candidate rows read (~60 ms at 10K)
        if not await memory.retrieval_settled():
            raise RuntimeError("the retrieval's background work did not finish in 120 s")
        if not await memory.wait_for_embeddings(600):
            raise RuntimeError("the store's vectors were not all written")
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        for n, text in enumerate(queries * len(WAYS)):
            way = WAYS[n % len(WAYS)]
            if way != "no_write":
                eid = await memory.start_episode(f"write then retrieve {n}", CONTEXT, "testing")
                step = ExecutionStep(
                    step_number=1, tool="editor", action="work", result=SuccessResult()
                )
                await memory.log_step(eid, step)
                await memory.complete_episode(eid, SuccessOutcome(verdict="ok"))
                if way == "after_vector" and not await memory.wait_for_embeddings(60):
                    raise RuntimeError("the new vector was not written within 60 s")
            memory._query_cache.clear()  # a new task's query, not the result cache
            started = time.perf_counter()
            await memory.retrieve_relevant_context(text, CONTEXT, 10)
            times[way].append((time.perf_counter() - started) * 1000)
            if way == "after_write":  # the next round starts from a store with every vector
                await memory.wait_for_embeddings(60)
    result: dict[str, Any] = {"name": "write_then_retrieve", "rounds": rounds}
    for way, samples in times.items():
        ordered = sorted(samples)
        result[f"{way}_p50_ms"] = round(statistics.median(ordered), 3)
        result[f"{way}_p90_ms"] = round(ordered[int(len(ordered) * 0.9)], 3)
    result["baseline"] = "no_write: a retrieval with no write before it, same run"
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    for size in (int(s) for s in args.sizes.split(",")):
        source = args.store_dir / str(size)
        if not (source / "built").exists():
            raise SystemExit(f"no built store in {source}: run embeddings_bench --store-dir first")
        with tempfile.TemporaryDirectory(prefix="bench-wtr-") as tmp:
            copy = Path(tmp) / str(size)
            shutil.copytree(source, copy)
            result = asyncio.run(run(copy, args.rounds))
        print(json.dumps({"n": size, **result}), flush=True)


if __name__ == "__main__":
    main()
