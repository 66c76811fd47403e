"""Scale-out on PostgreSQL: retrieval latency at 10K episodes, and outbox replay.

    python -m benchmarks.scaleout_pg_bench [--episodes 10000] [--queries 200]
        [--writes 10000] [--dsn URL] [--only retrieval|replay]

``retrieval``: ``--episodes`` synthetic episodes (``benchmarks/synthetic.py``) are written
through the public API into an embedded SQLite memory, then copied row by row into a fresh
PostgreSQL schema with the library's migration (``storage/migrate.py``, what
``memory-cli storage migrate`` runs), so both stores hold exactly the same episodes, patterns and
heuristics, and the schema is vacuumed and analysed (as after any bulk load; the
migration's inserts and updates leave dead rows). Each store is then opened as a memory (the default configuration for its URL:
PostgreSQL behind the resilience wrapper, with the LMDB cache) and ``retrieve_relevant_context``
(lexical, limit 5) is timed for ``--queries`` queries after a warm-up, the in-process result
cache cleared before each. The embedded store in the same run is the baseline.

``replay``: a memory on PostgreSQL through a loopback TCP proxy (``tests/resilience/proxy.py``);
the proxy refuses connections, and ``--writes`` writes (episodes of create + 2 step batches +
complete, i.e. 4 outbox entries each) are acknowledged as queued in the outbox; then the proxy
comes back and the outbox replays into PostgreSQL. Reported: the time from the primary's return
to an empty outbox and writes/s, and the check that every write is in PostgreSQL exactly once
(episodes, steps by (episode, number), completions, and pattern occurrences equal to the
episode-pattern links, which a double-applied completion would break).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from benchmarks import synthetic
from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)

DEFAULT_DSN = os.environ.get(
    "MEMORY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
STEPS_PER_BATCH = 4  # two batches per episode in the replay workload


def schema_url(dsn: str, schema: str, port: int | None = None) -> str:
    """``dsn`` with its sessions in ``schema`` (through ``port`` on loopback if given)."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if port is not None:
        auth = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
        netloc = f"{auth}127.0.0.1:{port}"
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _create_schema(dsn: str) -> str:
    schema = f"slm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# -- retrieval at 10K ----------------------------------------------------------------------------
async def _build(memory: SelfLearningMemory, size: int) -> float:
    started = time.perf_counter()
    for ep in synthetic.episodes(size, seed=3):
        eid = await memory.start_episode(ep.description, ep.context, ep.task_type)
        for step in ep.steps:
            await memory.log_step(eid, step)
        await memory.complete_episode(eid, ep.outcome)
    return time.perf_counter() - started


async def _measure(memory: SelfLearningMemory, queries: int, seed: int = 99) -> list[float]:
    samples = []
    for text, context in synthetic.queries(queries, seed=seed):
        memory._query_cache.clear()  # measure the store, not the in-process result cache
        started = time.perf_counter_ns()
        await memory.retrieve_relevant_context(text, context, limit=5, mode="lexical")
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


async def _migrate(sqlite_dir: Path, url: str) -> dict[str, Any]:
    from self_learning_memory.storage.migrate import migrate, open_url

    source, target = open_url(str(sqlite_dir)), open_url(url)
    async with source, target:
        report = await migrate(source, target, batch_size=500)
    if report.problems or report.missing_episodes:
        raise RuntimeError(f"migration did not verify: {report.problems}")
    with psycopg.connect(url, autocommit=True) as conn:  # as after any bulk load
        conn.execute("VACUUM ANALYZE episodes, steps, patterns, episode_patterns, heuristics")
    return {"migrate_s": round(report.seconds, 1), "copied": report.copied, "vacuumed": True}


async def retrieval(episodes: int, queries: int, dsn: str) -> list[dict[str, Any]]:
    schema = _create_schema(dsn)
    url = schema_url(dsn, schema)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite_dir = Path(tmp) / "sqlite"
            async with SelfLearningMemory.open(sqlite_dir) as memory:
                build_s = await _build(memory, episodes)
            moved = await _migrate(sqlite_dir, url)
            results: dict[str, list[float]] = {}
            for name, directory, config in (
                ("sqlite", sqlite_dir, MemoryConfig()),
                (
                    "postgresql",
                    Path(tmp) / "pg",
                    MemoryConfig.model_validate({"storage": {"url": url}}),
                ),
            ):
                async with SelfLearningMemory.open(directory, config=config) as memory:
                    await _measure(memory, 20, seed=5)  # warm-up, with other queries
                    results[name] = await _measure(memory, queries)
    finally:
        _drop_schema(dsn, schema)
    base, _ = _summary(results["sqlite"])
    records = []
    for name, samples in results.items():
        p50, p95 = _summary(samples)
        records.append(
            {
                "name": f"retrieval_latency_{name}_10k"
                if episodes == 10_000
                else f"retrieval_latency_{name}",
                "n": episodes,
                "mode": "lexical",
                "samples": len(samples),
                "median_ms": round(p50, 3),
                "p95_ms": round(p95, 3),
                "baseline": "sqlite (same run, same episodes)",
                "ratio": round(p50 / base, 2),
                "sqlite_build_episodes_per_s": round(episodes / build_s, 1),
                **(moved if name == "postgresql" else {}),
                "load_1m": _load(),
            }
        )
    return records


# -- outbox replay ---------------------------------------------------------------------------------
def _step(n: int) -> ExecutionStep:
    return ExecutionStep(
        step_number=n, tool=f"tool{n % 3}", action=f"run {n}", result=SuccessResult()
    )


def _stored(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM episodes), "
            "(SELECT count(*) FROM episodes WHERE end_time IS NOT NULL), "
            "(SELECT count(*) FROM steps), "
            "(SELECT count(*) FROM (SELECT DISTINCT episode_id, step_number FROM steps) s), "
            "(SELECT coalesce(sum(occurrence_count), 0) FROM patterns), "
            "(SELECT count(*) FROM episode_patterns)"
        ).fetchone()
    assert row is not None
    keys = ("episodes", "completed", "steps", "distinct_steps", "occurrences", "pattern_links")
    return dict(zip(keys, (int(v) for v in row), strict=True))


async def _until(predicate: Any, timeout: float, poll: float = 0.005) -> float:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("timed out")
        await asyncio.sleep(poll)
    return time.perf_counter()


async def replay(writes: int, dsn: str) -> dict[str, Any]:
    from tests.resilience.proxy import TcpProxy

    from self_learning_memory.resilience.resilient import ResilientStorage

    parts = urlsplit(dsn)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    await proxy.start()
    schema = _create_schema(dsn)
    config = MemoryConfig.model_validate(
        {
            "storage": {"url": schema_url(dsn, schema, proxy.port)},
            "resilience": {
                "breaker_recovery_s": 1.0,  # how soon the replayer probes the primary again
                "replay_interval_s": 0.05,
                "retry_budget_ms": 1000,
            },
        }
    )
    per_episode = 2 + 2  # create, two step batches, complete
    episodes = writes // per_episode
    ctx = TaskContext(domain="bench", language="python")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with SelfLearningMemory.open(Path(tmp), config=config) as memory:
                wrapped = memory.storage
                assert isinstance(wrapped, ResilientStorage)
                assert wrapped.outbox is not None
                outbox = wrapped.outbox
                await proxy.refuse()  # PostgreSQL unreachable: connections cut, new ones refused
                began = time.perf_counter()
                first: float | None = None
                for i in range(episodes):
                    eid = await memory.start_episode(f"offline task {i}", ctx, "testing")
                    if first is None:  # the one write that waits for the primary to fail
                        first = time.perf_counter()
                    for batch in range(2):
                        for n in range(1, STEPS_PER_BATCH + 1):
                            await memory.log_step(eid, _step(batch * STEPS_PER_BATCH + n))
                        await memory.flush_steps(eid)
                    await memory.complete_episode(eid, SuccessOutcome(verdict=f"done {i}"))
                queued = time.perf_counter()
                pending = await asyncio.to_thread(outbox.pending)
                counted = outbox.pending  # read from a polling loop: cheap (count of a small table)
                await proxy.restore()  # the primary is back
                back = time.perf_counter()
                moving = await _until(lambda: counted() < pending, 120)  # first entry replayed
                assert await wrapped.wait_replayed(1800), "the outbox did not empty"
                done = time.perf_counter()
                status = await wrapped.resilience_status()
            stored = _stored(schema_url(dsn, schema))
    finally:
        await proxy.stop()
        _drop_schema(dsn, schema)
    steps = episodes * 2 * STEPS_PER_BATCH
    expected = {"episodes": episodes, "completed": episodes, "steps": steps}
    exact = all(stored[k] == v for k, v in expected.items()) and (
        stored["distinct_steps"] == stored["steps"]
        and stored["occurrences"] == stored["pattern_links"]
    )
    assert first is not None
    rate_s = done - moving
    return {
        "name": "outbox_replay_10k" if writes == 10_000 else "outbox_replay",
        "writes": pending,
        "episodes": episodes,
        "steps": steps,
        "first_write_s": round(first - began, 3),
        "queue_writes_per_s": round((pending - 1) / (queued - first), 1),
        "seconds_from_restore": round(done - back, 3),
        "replay_writes_per_s": round(pending / (done - back), 1),
        "until_first_replayed_s": round(moving - back, 3),
        "steady_replay_writes_per_s": round((pending - 1) / rate_s, 1),
        "stored": stored,
        "dead_letters": status["outbox"]["dead_letters"],
        "exactly_once": exact and status["outbox"]["dead_letters"] == 0,
        "load_1m": _load(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--writes", type=int, default=10_000)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--only", choices=("retrieval", "replay"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("psycopg").setLevel(logging.ERROR)  # the outage's warnings are expected
    if args.only != "replay":
        for record in asyncio.run(retrieval(args.episodes, args.queries, args.dsn)):
            print(json.dumps(record), flush=True)
    if args.only != "retrieval":
        print(json.dumps(asyncio.run(replay(args.writes, args.dsn))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
