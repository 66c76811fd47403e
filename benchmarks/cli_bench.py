"""memory-cli start-up: whole processes, end to end, against a bare interpreter in the same run.

    python -m benchmarks.cli_bench [--runs 20] [--episodes 50] [--importtime]

Prints JSON lines, one per command (``cli_start``): wall time from spawning the process to its
exit (start-up, the command, closing the store), p50/p95 over ``--runs`` runs, against
``python -c pass`` timed in the same loop (interleaved, so load changes hit all alike), with
the ratio and the difference of medians, and the median CPU time (user + system) of each
process, which other processes on the machine disturb less than wall time. Commands:
``--help``, ``episode list`` (a store of ``--episodes`` completed episodes), ``episode
log-step`` (one durable step per run), ``monitor status --probes 0`` and ``logs stats``. Target: < 300 ms for commands that need no
model. ``--importtime`` adds a ``cli_imports`` record: the slowest imports of ``episode list``
(``python -X importtime``), cumulative microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 300.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def cli_command() -> tuple[list[str], str]:
    """The installed console script if it sits next to this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("memory-cli")
    if script.exists():
        return [str(script)], "console script"
    found = shutil.which("memory-cli")
    if found:
        return [found], "console script"
    return [sys.executable, "-m", "self_learning_memory.cli"], "python -m"


CPU_MS: dict[str, list[float]] = {}


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(cmd: list[str], env: dict[str, str], label: str | None = None) -> float:
    """Wall time of one whole process, ms; its CPU time (user + system) goes to ``CPU_MS``
    (less sensitive than wall time to other processes sharing the cores)."""
    cpu = _children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - started) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()}")
    if label is not None:
        CPU_MS.setdefault(label, []).append((_children_cpu_s() - cpu) * 1000)
    return elapsed


async def populate(data_dir: Path, episodes: int) -> str:
    """``episodes`` completed episodes with 4 steps each; returns an open episode's id."""
    from self_learning_memory import (
        ExecutionStep,
        SelfLearningMemory,
        SuccessOutcome,
        SuccessResult,
        TaskContext,
    )

    ctx = TaskContext(domain="cli", language="python")
    async with SelfLearningMemory.open(data_dir) as memory:
        for i in range(episodes):
            eid = await memory.start_episode(f"Add CLI command {i}", ctx, "code_generation")
            for n in range(1, 5):
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n,
                        tool=["editor", "pytest"][n % 2],
                        action=f"step {n}",
                        result=SuccessResult(output="ok"),
                        latency_ms=10 * n,
                    ),
                )
            await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
        open_id = await memory.start_episode("Benchmark log-step target", ctx, "testing")
        return str(open_id)


def import_profile(env: dict[str, str], top: int = 15) -> dict[str, Any]:
    cmd = [sys.executable, "-X", "importtime", "-m", "self_learning_memory.cli", "episode", "list"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = (p.strip() for p in line[12:].split("|", 2))
        rows.append((int(cumulative_us), int(self_us), name))
    rows.sort(reverse=True)
    return {
        "name": "cli_imports",
        "command": "episode list",
        "slowest_cumulative_us": [
            {"module": n, "cumulative_us": c, "self_us": s} for c, s, n in rows[:top]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 1000:
        parser.error("--runs: 1..1000")

    cli, launcher = cli_command()
    with tempfile.TemporaryDirectory(prefix="cli-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        open_id = asyncio.run(populate(data_dir, args.episodes))
        env = {**os.environ, "MEMORY_DATA_DIR": str(data_dir), "NO_COLOR": "1"}
        for name in ("CI", "GITHUB_ACTIONS", "MEMORY_FORMAT", "MEMORY_CLI_CONFIG"):
            env.pop(name, None)
        commands = {
            "--help": ["--help"],
            "episode list": ["episode", "list"],
            "episode log-step": ["episode", "log-step", open_id, "-t", "editor", "-a", "edit"],
            "monitor status --probes 0": ["monitor", "status", "--probes", "0"],
            "logs stats": ["logs", "stats"],
        }
        if args.runs + 1 > 990:
            commands.pop("episode log-step")  # an episode holds at most 1,000 steps
        baseline_cmd = [sys.executable, "-c", "pass"]
        for args_ in commands.values():  # warm the OS file cache and bytecode caches
            run_once([*cli, *args_], env)
        run_once(baseline_cmd, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        baseline: list[float] = []
        for _ in range(args.runs):
            baseline.append(run_once(baseline_cmd, env, "baseline"))
            for name, cmd_args in commands.items():
                times[name].append(run_once([*cli, *cmd_args], env, name))
        base_p50 = statistics.median(baseline)
        for name, values in times.items():
            p50 = statistics.median(values)
            record = {
                "name": "cli_start",
                "mode": name,
                "launcher": launcher,
                "n": len(values),
                "samples": len(values),
                "median_ms": round(p50, 3),
                "p95_ms": round(pct(values, 0.95), 3),
                "baseline": "python -c pass",
                "baseline_median_ms": round(base_p50, 3),
                "baseline_p95_ms": round(pct(baseline, 0.95), 3),
                "ratio": round(p50 / base_p50, 2),
                "over_baseline_ms": round(p50 - base_p50, 3),
                "cpu_median_ms": round(statistics.median(CPU_MS[name]), 3),
                "baseline_cpu_median_ms": round(statistics.median(CPU_MS["baseline"]), 3),
                "loadavg": [round(x, 2) for x in os.getloadavg()],
                "store_episodes": args.episodes,
                "target_ms": TARGET_MS,
                "target_met": p50 < TARGET_MS,
            }
            print(json.dumps(record), flush=True)
        if args.importtime:
            print(json.dumps(import_profile(env)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
