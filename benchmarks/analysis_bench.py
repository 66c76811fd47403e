"""Issue 14 benchmark: a comprehensive analysis of 10 variables x 1,000 points (median of runs),
and memory-mcp's start (spawn to initialize answered) with and without the analysis family
(absence simulated with MEMORY_DISABLE_ANALYSIS, which makes the family's self_test fail).

    python benchmarks/analysis_bench.py [--runs 3] [--starts 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

import numpy as np
from mcp import Client, StdioServerParameters

from self_learning_memory.analysis.engine import run_analysis


def data(n_vars: int = 10, n: int = 1000) -> dict[str, list[float]]:
    rng = np.random.default_rng(0)
    t = np.arange(n)
    return {
        f"v{i}": list(10 + 3 * np.sin(2 * np.pi * t / (7 + i)) + 0.01 * i * t + rng.normal(0, 1, n))
        for i in range(n_vars)
    }


def analysis_times(runs: int, parallel: bool) -> list[float]:
    series = data()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run_analysis("comprehensive", series, {"parallel_processing": parallel})
        times.append(time.perf_counter() - start)
    return times


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
            assert ("advanced_pattern_analysis" in names) is not disabled
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    for parallel in (False, True):
        times = analysis_times(args.runs, parallel)
        print(
            f"comprehensive 10x1000 parallel={parallel}: median {statistics.median(times):.2f} s {times}"
        )
    for disabled in (False, True):
        starts = [asyncio.run(start_time(disabled)) for _ in range(args.starts)]
        label = "without" if disabled else "with"
        print(
            f"server start {label} the analysis family: median {statistics.median(starts) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
