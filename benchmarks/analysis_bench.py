"""The analysis benchmarks, one JSON line per result (name, n, median, p95, ratio to a baseline
measured in the same run):

- ``comprehensive_10x1000`` (parallel off/on): ``run_analysis("comprehensive")`` on 10 variables
  x 1,000 points; baseline: plain scipy on the same data (Pearson and Spearman per pair, OLS and
  Kendall per variable), which does not do the changepoints, ETS forecasts, anomalies or Granger
  tests, so the ratio is what those cost on top.
- ``memory_trends_10k``: ``analyze_memory_trends`` over 10,000 stored debugging episodes (100
  days, per-day buckets, all five metrics, with forecasts); baseline: one sqlite3 query of the
  same rows' columns, numpy bucketing and scipy OLS + Kendall per metric.
- ``server_start``: memory-mcp spawn to initialize answered with the analysis family; baseline:
  without it (MEMORY_DISABLE_ANALYSIS makes the family's self-test fail).

    python -m benchmarks.analysis_bench [--runs 3] [--starts 5] [--episodes 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from mcp import Client, StdioServerParameters
from scipy import stats

from self_learning_memory.analysis.engine import run_analysis
from self_learning_memory.analysis.memory_series import analyze_memory_trends
from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.model.episode import (
    Episode,
    ExecutionStep,
    FailureOutcome,
    RewardScore,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
)
from self_learning_memory.model.records import CompletionRecord
from self_learning_memory.storage.codec import search_document

Record = dict[str, Any]


def emit(
    name: str, n: int, ours: Sequence[float], baseline: str, base: Sequence[float], **extra: Any
) -> None:
    def p95(xs: Sequence[float]) -> float:
        s = sorted(xs)
        return s[min(len(s) - 1, int(0.95 * len(s)))]

    median, base_median = statistics.median(ours), statistics.median(base)
    record: Record = {
        "name": name,
        "n": n,
        "samples": len(ours),
        "median_ms": round(median * 1000, 2),
        "p95_ms": round(p95(ours) * 1000, 2),
        "baseline": baseline,
        "baseline_median_ms": round(base_median * 1000, 2),
        "baseline_p95_ms": round(p95(base) * 1000, 2),
        "ratio": round(median / base_median, 2) if base_median > 0 else None,
        **extra,
    }
    print(json.dumps(record), flush=True)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


# -- comprehensive analysis -------------------------------------------------------------------
def data(n_vars: int = 10, n: int = 1000) -> dict[str, list[float]]:
    rng = np.random.default_rng(0)
    t = np.arange(n)
    return {
        f"v{i}": list(10 + 3 * np.sin(2 * np.pi * t / (7 + i)) + 0.01 * i * t + rng.normal(0, 1, n))
        for i in range(n_vars)
    }


def plain_scipy(series: dict[str, list[float]]) -> None:
    arrays = {k: np.asarray(v) for k, v in series.items()}
    for a, b in combinations(arrays, 2):
        stats.pearsonr(arrays[a], arrays[b])
        stats.spearmanr(arrays[a], arrays[b])
    for x in arrays.values():
        t = np.arange(len(x))
        stats.linregress(t, x)
        stats.kendalltau(t, x)


# -- trends over the memory -------------------------------------------------------------------
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)


def history(count: int, days: int = 100) -> list[Episode]:
    rng = random.Random(0)
    out = []
    for i in range(count):
        day = i * days // count
        start = DAY0 + timedelta(days=day, seconds=i % 86_000)
        reward = 0.3 + 0.004 * day + rng.uniform(-0.1, 0.1)
        out.append(
            Episode(
                task_type=TaskType.DEBUGGING,
                task_description=f"debug issue {i}",
                context=TaskContext(domain="web-api"),
                start_time=start,
                end_time=start + timedelta(seconds=600 - 3 * day + rng.uniform(-30, 30)),
                steps=[
                    ExecutionStep(
                        step_number=n,
                        timestamp=start,
                        tool="editor",
                        action="edit",
                        result=SuccessResult(output="ok"),
                        tokens_used=500,
                    )
                    for n in range(1, 4)
                ],
                outcome=SuccessOutcome(verdict="ok")
                if rng.random() < 0.4 + 0.005 * day
                else FailureOutcome(reason="no"),
                reward=RewardScore(
                    total=reward,
                    base=reward,
                    efficiency=1.0,
                    complexity_bonus=1.0,
                    quality_multiplier=1.0,
                    learning_bonus=0.0,
                ),
            )
        )
    return out


async def seed(data_dir: Path, episodes: list[Episode]) -> None:
    async with SelfLearningMemory.open(data_dir) as memory:
        for e in episodes:
            bare = e.model_copy(
                update={"end_time": None, "outcome": None, "reward": None, "steps": []}
            )
            await memory.storage.create_episode(bare)
            await memory.storage.append_steps(e.episode_id, e.steps)
            await memory.storage.commit_completion(
                CompletionRecord(episode=e, mode="inline", search=search_document(e))
            )


async def trends_times(data_dir: Path, runs: int) -> tuple[list[float], Record]:
    times: list[float] = []
    last: Record = {}
    async with SelfLearningMemory.open(data_dir) as memory:
        for _ in range(runs):
            start = time.perf_counter()
            last = await analyze_memory_trends(memory, task_type="debugging")
            times.append(time.perf_counter() - start)
    return times, last


def plain_trends(db: Path) -> None:
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT start_time, end_time, outcome_type, reward_total, step_count FROM episodes "
        "WHERE task_type = 'debugging' AND end_time IS NOT NULL"
    ).fetchall()
    conn.close()
    a = np.asarray(
        [(s, e, o == "success", r if r is not None else np.nan, c) for s, e, o, r, c in rows],
        dtype=float,
    )
    day = (a[:, 0] // 86_400_000_000).astype(int)
    days, index = np.unique(day, return_inverse=True)
    counts = np.bincount(index)
    x = days.astype(float)
    metrics = {
        "reward": a[:, 3],
        "success_rate": a[:, 2],
        "duration": (a[:, 1] - a[:, 0]) / 1e6,
        "steps": a[:, 4],
    }
    for values in metrics.values():
        means = np.bincount(index, weights=values) / counts
        stats.linregress(x, means)
        stats.kendalltau(x, means)


# -- server start -----------------------------------------------------------------------------
async def start_time(disabled: bool) -> float:
    env = dict(os.environ)
    if disabled:
        env["MEMORY_DISABLE_ANALYSIS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["-m", "self_learning_memory.mcp", "--data-dir", tmp, "--log-file", "none"]
        params = StdioServerParameters(command=sys.executable, args=args, env=env)
        start = time.perf_counter()
        async with Client(params, mode="legacy") as client:
            elapsed = time.perf_counter() - start
            names = {t.name for t in (await client.list_tools()).tools}
            assert ("analyze_memory_trends" in names) is not disabled
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--skip", nargs="*", default=[], help="comprehensive, trends, start")
    args = parser.parse_args()
    if "comprehensive" not in args.skip:
        series = data()
        base = timed(lambda: plain_scipy(series), args.runs)
        for parallel in (False, True):
            ours = timed(
                lambda p=parallel: run_analysis(
                    "comprehensive", series, {"parallel_processing": p}
                ),
                args.runs,
            )
            emit(
                f"comprehensive_10x1000_parallel_{'on' if parallel else 'off'}",
                10_000,
                ours,
                "plain scipy: pearson+spearman per pair, linregress+kendalltau per variable",
                base,
            )
    if "trends" not in args.skip:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            asyncio.run(seed(data_dir, history(args.episodes)))
            ours, last = asyncio.run(trends_times(data_dir, args.runs))
            base = timed(lambda: plain_trends(data_dir / "memory.db"), args.runs)
            emit(
                f"memory_trends_{args.episodes // 1000}k",
                args.episodes,
                ours,
                "sqlite3 query + numpy day buckets + linregress/kendalltau per metric",
                base,
                buckets=last["buckets"],
                read_ms=round(last["performance"]["read_ms"], 1),
                reward_direction=last["metrics"]["reward"]["direction"],
            )
    if "start" not in args.skip:
        with_family = [asyncio.run(start_time(False)) for _ in range(args.starts)]
        without = [asyncio.run(start_time(True)) for _ in range(args.starts)]
        emit(
            "server_start_with_analysis_family",
            args.starts,
            with_family,
            "server start without the family (MEMORY_DISABLE_ANALYSIS)",
            without,
        )


if __name__ == "__main__":
    main()
