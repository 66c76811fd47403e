"""MCP server benchmarks: start-up to ``initialize`` answered, and tool-call overhead.

    python -m benchmarks.mcp_bench [--starts 15] [--calls 300] [--episodes 200]

Prints JSON lines:
- ``mcp_initialize``: process start -> ``initialize`` answered (stdio), p50/p95, with two
  baselines from the same run: a bare interpreter start (``python -c pass``) and a process that
  only imports the MCP SDK (``import mcp.server.mcpserver``).
- ``mcp_tool_overhead``: per tool, a call through stdio (raw JSON-RPC over pipes, one request in
  flight) against the same library call in process, p50/p95, and the overhead (difference of
  medians). The store is the same (``--episodes`` completed episodes, each with 6 steps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from self_learning_memory import (
    ExecutionStep,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values_ms), 3),
        "p95_ms": round(pct(values_ms, 0.95), 3),
        "n": len(values_ms),
    }


def server_cmd(data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "self_learning_memory.mcp",
        "--data-dir",
        str(data_dir),
        "--log-file",
        "none",
        "--log-level",
        "WARNING",
    ]


def time_initialize(data_dir: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(
        server_cmd(data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write((json.dumps(INIT) + "\n").encode())
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - started
    assert b'"serverInfo"' in line, line
    proc.stdin.close()
    proc.wait(timeout=60)
    return elapsed * 1000


def time_process(code: str) -> float:
    """Process start until it has run ``code`` and printed a line (teardown not counted, as
    for ``initialize``)."""
    started = time.perf_counter()
    script = (
        f"{code}\nimport os, sys\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\nos._exit(0)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = (time.perf_counter() - started) * 1000
    proc.wait(timeout=60)
    assert line == b"ready\n", line
    return elapsed


def bench_initialize(starts: int, data_dir: Path) -> dict[str, Any]:
    time_initialize(data_dir)  # warm the OS file cache and bytecode caches
    init, bare, sdk = [], [], []
    for _ in range(starts):  # interleaved, so load changes hit all three alike
        init.append(time_initialize(data_dir))
        bare.append(time_process("pass"))
        sdk.append(time_process("import mcp.server.mcpserver"))
    return {
        "name": "mcp_initialize",
        "initialize": summary(init),
        "baseline_python_start": summary(bare),
        "baseline_sdk_import": summary(sdk),
        "ours_over_sdk_import_p50_ms": round(statistics.median(init) - statistics.median(sdk), 3),
        "target_ms": 500,
        "meets_target": statistics.median(init) < 500,
    }


class Pipe:
    """One stdio server, one request in flight."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            server_cmd(data_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.next_id = 0
        self.request("initialize", INIT["params"])
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdout is not None
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
            if reply.get("id") == self.next_id:
                return reply

    def call(self, name: str, arguments: dict[str, Any]) -> float:
        started = time.perf_counter()
        reply = self.request("tools/call", {"name": name, "arguments": arguments})
        elapsed = (time.perf_counter() - started) * 1000
        assert not reply["result"].get("isError"), reply
        return elapsed

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


async def populate(data_dir: Path, episodes: int) -> str:
    ctx = TaskContext(domain="web-api", language="python")
    async with SelfLearningMemory.open(data_dir) as memory:
        last = ""
        for i in range(episodes):
            eid = await memory.start_episode(
                f"Add endpoint {i} for orders with pagination and auth", ctx, "code_generation"
            )
            for n in range(1, 7):
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n,
                        tool=["editor", "pytest", "git"][n % 3],
                        action=f"step {n}",
                        result=SuccessResult(output="ok"),
                    ),
                )
            await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
            last = str(eid)
        return last


async def library_times(data_dir: Path, episode_id: str, calls: int) -> dict[str, list[float]]:
    ctx = TaskContext(domain="web-api")
    out: dict[str, list[float]] = {"get_episode": [], "query_memory": [], "health_check": []}
    async with SelfLearningMemory.open(data_dir) as memory:
        for _ in range(20):
            await memory.get_episode(episode_id)
        for i in range(calls):
            t = time.perf_counter()
            await memory.get_episode(episode_id)
            out["get_episode"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await memory.retrieve_relevant_context(f"orders endpoint pagination {i % 7}", ctx, 5)
            await memory.retrieve_relevant_patterns(ctx, 5)
            out["query_memory"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await memory.health()
            await memory.stats()
            out["health_check"].append((time.perf_counter() - t) * 1000)
    return out


def stdio_times(data_dir: Path, episode_id: str, calls: int) -> dict[str, list[float]]:
    pipe = Pipe(data_dir)
    out: dict[str, list[float]] = {"get_episode": [], "query_memory": [], "health_check": []}
    try:
        for _ in range(20):
            pipe.call("get_episode", {"episode_id": episode_id})
        for i in range(calls):
            out["get_episode"].append(pipe.call("get_episode", {"episode_id": episode_id}))
            out["query_memory"].append(
                pipe.call(
                    "query_memory",
                    {
                        "query": f"orders endpoint pagination {i % 7}",
                        "domain": "web-api",
                        "limit": 5,
                    },
                )
            )
            out["health_check"].append(pipe.call("health_check", {}))
    finally:
        pipe.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=15)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        data_dir = Path(tmp)
        episode_id = asyncio.run(populate(data_dir, args.episodes))
        print(json.dumps(bench_initialize(args.starts, data_dir)), flush=True)
        lib = asyncio.run(library_times(data_dir, episode_id, args.calls))
        rpc = stdio_times(data_dir, episode_id, args.calls)
        for tool in lib:
            overhead = statistics.median(rpc[tool]) - statistics.median(lib[tool])
            record = {
                "name": "mcp_tool_overhead",
                "tool": tool,
                "episodes": args.episodes,
                "stdio": summary(rpc[tool]),
                "library": summary(lib[tool]),
                "overhead_p50_ms": round(overhead, 3),
                "overhead_p95_ms": round(pct(rpc[tool], 0.95) - pct(lib[tool], 0.95), 3),
                "target_overhead_ms": 2.0,
                "meets_target": overhead <= 2.0,
                "cpus": os.cpu_count(),
            }
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
