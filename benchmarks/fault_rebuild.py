"""What detecting and repairing a lost store costs: the rebuild from the cache and the WAL-loss check.

N completed episodes (3 steps each, learned: reward, reflection, patterns) in the embedded store
and in the LMDB cache. Prints one JSON line per result:

- ``lost_writes_check``: the id comparison health and ``storage verify`` run
  (``storage/cache_loss.py``), median and p95 of 7 runs, against the store's own health check
  (SELECT 1 + quick_check) measured in the same run;
- ``rebuild_from_cache``: the store truncated to 0 bytes, then rebuilt from the cache
  (``storage/cache_rebuild.py``, verify included), seconds and episodes per second;
- ``wal_check``: the check at open after a writer was killed with SIGKILL (``storage/wal_check.py``:
  the -shm header against the WAL's checksum chain; the worst case, an intact WAL is read
  whole), and after a clean close (no -shm: nothing read);
- ``outbox_append``: one queued write with the marker (``resilience/outbox_marker.py``): the first
  (marker created, fsynced) and the median of the rest, against the same outbox without it.

    python benchmarks/fault_rebuild.py --episodes 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cli.seeding import add_episode
from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.backup.rebuild import rebuild_from_cache
from self_learning_memory.resilience import outbox as outbox_module
from self_learning_memory.resilience.outbox import Outbox
from self_learning_memory.storage.cache_loss import cached_but_missing
from self_learning_memory.storage.transfer import transfer_adapter


def _timed(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 3),
    }


async def _seed(data: Path, n: int, config: MemoryConfig) -> None:
    async with SelfLearningMemory.open(data, config=config) as memory:
        eid = await add_episode(
            memory, "Fix the flaky login test", tools=("editor", "pytest", "git")
        )
        template = await memory.get_episode(eid)
        copies = [
            template.model_copy(
                update={"episode_id": uuid.uuid4(), "task_description": f"Fix the flaky test {i}"}
            )
            for i in range(n - 1)
        ]
        adapter = transfer_adapter(memory.storage)
        for start in range(0, len(copies), 500):
            await adapter.import_episodes(copies[start : start + 500])
        assert memory.cache is not None
        await asyncio.to_thread(memory.cache.put_many, copies)


async def _check(data: Path, config: MemoryConfig, n: int) -> None:
    async with SelfLearningMemory.open(data, config=config) as memory:
        assert memory.cache is not None
        check, base = [], []
        for _ in range(7):
            started = time.perf_counter()
            assert await cached_but_missing(memory.storage, memory.cache) is None
            check.append(time.perf_counter() - started)
            started = time.perf_counter()
            await memory.storage.health_check()
            base.append(time.perf_counter() - started)
        entries = await asyncio.to_thread(memory.cache.entries)
    t, b = _timed(check), _timed(base)
    print(
        json.dumps(
            {
                "name": "lost_writes_check",
                "n": entries,
                **t,
                "baseline": "store health_check",
                "baseline_median_ms": b["median_ms"],
                "ratio": round(t["median_ms"] / b["median_ms"], 2),
            }
        )
    )


def _outbox(tmp: Path, marked: bool, writes: int) -> list[float]:
    box = Outbox(tmp / ("marked" if marked else "plain") / "outbox.db")
    box.open()
    saved = outbox_module.Outbox._mark
    if not marked:
        outbox_module.Outbox._mark = lambda self, count, seq, now: None  # type: ignore[method-assign]
    try:
        samples = []
        for i in range(writes):
            started = time.perf_counter()
            box.append("create_episode", uuid.uuid4(), {"n": i})
            samples.append(time.perf_counter() - started)
    finally:
        outbox_module.Outbox._mark = saved  # type: ignore[method-assign]
        box.close()
    return samples


def _wal_check(tmp: Path) -> None:
    from faults.kill_loop import _round
    from self_learning_memory.storage.wal_check import check_wal

    data = tmp / "killed"
    log = tmp / "killed.acks"
    log.write_text("")
    asyncio.run(_round(data, 60, log))
    db = data / "memory.db"
    samples = []
    for _ in range(7):
        started = time.perf_counter()
        assert check_wal(db) is None
        samples.append(time.perf_counter() - started)
    wal = (data / "memory.db-wal").stat().st_size
    print(
        json.dumps(
            {"name": "wal_check", "case": "after kill -9", "wal_bytes": wal, **_timed(samples)}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    args = parser.parse_args()
    config = MemoryConfig.model_validate({"cache": {"max_episodes": max(args.episodes, 1000)}})
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        asyncio.run(_seed(data, args.episodes, config))
        asyncio.run(_check(data, config, args.episodes))
        for leftover in ("memory.db-wal", "memory.db-shm"):
            (data / leftover).unlink(missing_ok=True)
        (data / "memory.db").write_bytes(b"")
        started = time.perf_counter()
        report = asyncio.run(rebuild_from_cache(data, config))
        seconds = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "name": "rebuild_from_cache",
                    "n": report.recovered["episodes"],
                    "steps": report.recovered["steps"],
                    "patterns": report.recovered["patterns"],
                    "verified": report.verified,
                    "seconds": round(seconds, 2),
                    "episodes_per_s": round(report.recovered["episodes"] / seconds),
                }
            )
        )
        _wal_check(Path(tmp))
        marked = _outbox(Path(tmp), True, 200)
        plain = _outbox(Path(tmp), False, 200)
        m, p = _timed(marked[1:]), _timed(plain[1:])
        print(
            json.dumps(
                {
                    "name": "outbox_append",
                    "n": len(marked),
                    "first_ms": round(marked[0] * 1000, 3),
                    **m,
                    "baseline": "the same append without the marker",
                    "baseline_first_ms": round(plain[0] * 1000, 3),
                    "baseline_median_ms": p["median_ms"],
                    "ratio": round(m["median_ms"] / p["median_ms"], 2),
                }
            )
        )


if __name__ == "__main__":
    main()
