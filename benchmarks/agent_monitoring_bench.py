"""Agent monitoring's cost: completing an episode with an agent (the completion also inserts the
agent's execution, in the same transaction) against completing one without (the baseline,
measured in the same run, interleaved so machine load hits both alike), recording an execution
on its own, and ``agent_metrics`` over the recorded executions, on the embedded SQLite store
and, when given, PostgreSQL. Prints a JSON line per result.

``python benchmarks/agent_monitoring_bench.py [--episodes 300] [--agents 20] [--bulk 0]
[--postgres DSN]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
)


def _line(name: str, store: str, samples: list[float], baseline: float | None) -> float:
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
                "ratio_to_baseline": None if baseline is None else round(median / baseline, 3),
            }
        ),
        flush=True,
    )
    return median


async def _complete(memory: SelfLearningMemory, i: int, agent: str | None) -> float:
    eid = await memory.start_episode(f"deploy service {i % 37}", agent=agent)
    await memory.log_step(
        eid, ExecutionStep(step_number=1, tool="kubectl", action="apply", result=SuccessResult())
    )
    started = time.perf_counter()
    await memory.complete_episode(eid, SuccessOutcome(verdict="deployed"))
    return (time.perf_counter() - started) * 1000


async def _metrics(memory: SelfLearningMemory, store: str, base: float, executions: int) -> None:
    reads: list[float] = []
    for _ in range(30):
        started = time.perf_counter()
        await memory.agent_metrics(window="hour")
        reads.append((time.perf_counter() - started) * 1000)
    _line(f"agent_metrics ({executions} executions)", store, reads, base)


async def bench(store: str, url: str | None, episodes: int, agents: int, bulk: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    config = MemoryConfig.model_validate({"storage": {"url": url}})
    async with SelfLearningMemory.open(data, config=config) as memory:
        for i in range(20):  # warm up both paths
            await _complete(memory, i, None)
            await _complete(memory, i, "warm-up")
        plain: list[float] = []
        tagged: list[float] = []
        for i in range(episodes):
            plain.append(await _complete(memory, i, None))
            tagged.append(await _complete(memory, i, f"agent-{i % agents}"))
        base = _line("complete_episode (no agent)", store, plain, None)
        _line("complete_episode (agent)", store, tagged, base)
        direct: list[float] = []
        for i in range(episodes):
            started = time.perf_counter()
            await memory.record_agent_execution(f"agent-{i % agents}", i % 3 != 0, 12.0, steps=3)
            direct.append((time.perf_counter() - started) * 1000)
        _line("record_agent_execution", store, direct, base)
        await _metrics(memory, store, base, 2 * episodes + 20)
        if bulk:
            for i in range(bulk):
                await memory.record_agent_execution(f"agent-{i % agents}", i % 5 != 0, 3.0)
            await _metrics(memory, store, base, 2 * episodes + 20 + bulk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--bulk", type=int, default=0, help="then record this many more")
    parser.add_argument("--postgres", default=None, help="a postgresql:// DSN (empty schema)")
    args = parser.parse_args()
    asyncio.run(bench("sqlite", None, args.episodes, args.agents, args.bulk))
    if args.postgres:
        asyncio.run(bench("postgres", args.postgres, args.episodes, args.agents, args.bulk))


if __name__ == "__main__":
    main()
