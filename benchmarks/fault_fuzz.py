"""The MCP fuzzer at benchmark size: thousands of seeded fuzzed tool calls and JSON-RPC
envelopes against one real stdio ``memory-mcp`` (the generator is tests/faults/mcp_fuzz.py).

Prints one JSON line: calls, envelopes, valid writes, errors by kind, untyped errors (should be
0), crashes (0: the server answered everything and exited 0), stdout lines that are not JSON-RPC
(0), episodes and steps checked through the library afterwards, seconds, server RSS before and
after (MiB).

    python benchmarks/fault_fuzz.py --calls 3000 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faults.mcp_fuzz import run, stdout_is_only_jsonrpc
from mcp_server.rpc import RawStdioServer
from self_learning_memory import SelfLearningMemory


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _missing(data_dir: Path, episodes: dict[str, int]) -> int:
    missing = 0
    async with SelfLearningMemory.open(data_dir) as memory:
        for episode_id, steps in episodes.items():
            episode = await memory.get_episode(episode_id)
            missing += steps - len(episode.steps)
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        server = RawStdioServer(data_dir)
        server.initialize()
        server.call("list_episodes", {})
        rss_before = _rss_mib(server.proc.pid)
        started = time.perf_counter()
        report = run(server, args.seed, args.calls)
        seconds = time.perf_counter() - started
        rss_after = _rss_mib(server.proc.pid)
        code = server.close_stdin()
        result = {
            "name": "mcp_fault_fuzz",
            "seed": args.seed,
            "calls": report.calls,
            "envelopes": report.envelopes,
            "valid_writes": report.valid,
            "errors_by_kind": dict(sorted(report.errors.items())),
            "untyped_errors": len(report.untyped),
            "untyped_examples": report.untyped[:3],
            "crashes": int(code != 0),
            "stdout_not_jsonrpc": len(stdout_is_only_jsonrpc(server.stdout_lines)),
            "episodes_checked": len(report.episodes),
            "steps_checked": sum(report.episodes.values()),
            "steps_missing": asyncio.run(_missing(data_dir, report.episodes)),
            "seconds": round(seconds, 2),
            "rss_before_mib": round(rss_before, 1),
            "rss_after_mib": round(rss_after, 1),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
