"""Verify and restore time of a backup, per format (every row is decoded before the swap).

Builds a store of ``--episodes`` synthetic episodes (``benchmarks/synthetic.py``, ~8 steps
each) once in ``--work`` (reused when it exists), backs it up in each format, then times a
deep ``verify_backup`` and a ``restore_backup`` into a new directory ``--repeat`` times. Prints
one JSON line per format and operation: name, n (episodes), median and p95 in ms. Run it with
two source trees on PYTHONPATH to compare versions (``ratio`` needs ``--baseline FILE`` with the
other run's output).

    PYTHONPATH=src:. python -m benchmarks.backup_bench --episodes 1000 --work /tmp/bb
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import time
from pathlib import Path

from benchmarks import synthetic
from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.backup import create_backup, restore_backup, verify_backup
from self_learning_memory.config import EmbeddingsConfig

FORMATS = ("sqlite", "json", "jsonl", "sql")


async def build(data_dir: Path, size: int) -> None:
    config = MemoryConfig(embeddings=EmbeddingsConfig(provider="hashing"))
    async with SelfLearningMemory.open(data_dir, config=config) as memory:
        for ep in synthetic.episodes(size, seed=3):
            eid = await memory.start_episode(ep.description, ep.context, ep.task_type)
            for step in ep.steps:
                await memory.log_step(eid, step)
            await memory.complete_episode(eid, ep.outcome)
        await memory.wait_for_learning()


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, help="another run's output, for ratios")
    args = parser.parse_args()
    source = args.work / f"store-{args.episodes}"
    if not (source / "memory.db").exists():
        await build(source, args.episodes)
    baseline: dict[str, float] = {}
    if args.baseline and args.baseline.exists():
        for line in args.baseline.read_text().splitlines():
            item = json.loads(line)
            baseline[item["name"]] = item["median_ms"]
    for fmt in FORMATS:
        backups = args.work / "backups" / fmt
        shutil.rmtree(backups, ignore_errors=True)
        info = await create_backup(source, backups, format=fmt)
        times: dict[str, list[float]] = {"verify": [], "restore": []}
        for n in range(args.repeat):
            started = time.perf_counter()
            report = await verify_backup(info.path)
            times["verify"].append((time.perf_counter() - started) * 1000)
            assert report.ok, report.problems
            target = args.work / f"restored-{fmt}-{n}"
            shutil.rmtree(target, ignore_errors=True)
            started = time.perf_counter()
            await restore_backup(info.path, target)
            times["restore"].append((time.perf_counter() - started) * 1000)
            shutil.rmtree(target)
        for op, samples in times.items():
            median, p95 = summary(samples)
            name = f"backup_{op}_{fmt}"
            line = {"name": name, "n": args.episodes, "median_ms": round(median, 1)}
            line["p95_ms"] = round(p95, 1)
            if name in baseline:
                line["ratio"] = round(median / baseline[name], 2)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
