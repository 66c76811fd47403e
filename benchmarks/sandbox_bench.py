"""Sandbox latency: cold start of the engine (with and without wasmtime's compile cache, each in
a fresh process), warm execution of a small function, pool throughput, and plain Python ``eval``
of equivalent work as the baseline; with ``--node``, the same warm run and throughput on the Node
backend (a process per run). ``python benchmarks/sandbox_bench.py [--runs N] [--node]``."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

CODE = "let s = 0; for (let i = 0; i < 1000; i++) s += i * context.input.k; return s"
PY = "sum(i * k for i in range(1000))"

COLD = """
import json, sys, time
t = time.perf_counter()
from self_learning_memory.sandbox.engine import install_engine
status = install_engine(compile_cache=sys.argv[1] == "on")
from self_learning_memory.sandbox import CodeSandbox, ExecutionContext, SandboxLimits
box = CodeSandbox.from_limits(SandboxLimits(), pool_size=1)
engine_ms = (time.perf_counter() - t) * 1000
t = time.perf_counter()
box.run("return 1")
first_ms = (time.perf_counter() - t) * 1000
print(json.dumps({"engine_ms": engine_ms, "first_run_ms": first_ms, **status}))
box.close()
"""


def pct(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(q * len(values)))], 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--node", action="store_true", help="also measure the Node backend")
    args = parser.parse_args()
    from self_learning_memory.sandbox import CodeSandbox, ExecutionContext, SandboxLimits

    cold: dict[str, list[object]] = {"cache_off": [], "cache_on": []}
    for cache in ("off", "on", "on"):  # the first "on" may fill the cache, the second reads it
        done = subprocess.run(
            [sys.executable, "-c", COLD, cache], capture_output=True, text=True, check=True
        )
        cold[f"cache_{cache}"].append(json.loads(done.stdout))
    out: dict[str, object] = {"cold_process": cold}

    box = CodeSandbox.from_limits(SandboxLimits(), pool_size=2)
    ctx = ExecutionContext(input={"k": 3})
    box.run(CODE, ctx)
    warm = []
    for _ in range(args.runs):
        t = time.perf_counter()
        result = box.run(CODE, ctx)
        warm.append((time.perf_counter() - t) * 1000)
        assert result.output == 3 * 499500
    out["warm_ms"] = {"p50": pct(warm, 0.5), "p95": pct(warm, 0.95), "mean": statistics.fmean(warm)}

    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: box.run(CODE, ctx), range(args.runs)))
    out["pool_throughput_per_s"] = round(args.runs / (time.perf_counter() - t), 1)
    box.close()

    base = []
    for _ in range(args.runs):
        t = time.perf_counter()
        eval(PY, {"k": 3})  # the baseline: the same work, unsandboxed
        base.append((time.perf_counter() - t) * 1000)
    out["python_eval_ms"] = {"p50": pct(base, 0.5), "p95": pct(base, 0.95)}

    if args.node:
        from self_learning_memory.sandbox.node import NodeBackend

        node = CodeSandbox(NodeBackend(SandboxLimits()), SandboxLimits(), pool_size=2)
        runs = max(10, args.runs // 4)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            result = node.run(CODE, ctx)
            times.append((time.perf_counter() - t) * 1000)
            assert result.output == 3 * 499500, result.as_dict()
        out["node_run_ms"] = {"p50": pct(times, 0.5), "p95": pct(times, 0.95)}
        t = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: node.run(CODE, ctx), range(runs)))
        out["node_pool_throughput_per_s"] = round(runs / (time.perf_counter() - t), 1)
        node.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
