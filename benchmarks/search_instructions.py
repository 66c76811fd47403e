"""Instructions per search, counted by callgrind: compares two versions of the code on a virtual
machine whose speed drifts by more than the difference (issue 17; docs/performance.md,
"2026-12-07, Intel Xeon with AMX").

    python -m benchmarks.search_instructions --store-dir DIR [--memories 1000] [--queries 100]
        [--rounds 1,6]

The peer-style workload (``peer_style_bench.workload``: the same memories and queries) is written
once into ``--store-dir`` with the local model (ONNX Runtime), and kept: run this again from
another checkout (``PYTHONPATH``) to count the other version's searches on the same store. Then
the module runs itself twice under ``valgrind --tool=callgrind``. Each run opens the store, asks
every query once (embedding it), then asks them all again R times with the query vectors known
and the query results forgotten: every later search does a search's whole work but the
embedding. R is each of the two ``--rounds`` values, so

    instructions per search = (total at R2 - total at R1) / ((R2 - R1) x queries)

and everything else (start-up, the model, the embeddings) cancels out. Instructions are not
time (a cache miss costs more than an add), but they repeat to a few parts in ten thousand
whatever else the machine does, where alternated timed runs drifted by 10 % (the Xeon above);
so the two runs go side by side. Prints one JSON line: the two totals, the per-search figure, and a digest of the last round's
rankings (episode ids in order), equal for two versions that rank alike. Under valgrind a
run takes minutes (about 3 for R = 1 at 1,000 memories, 50 s more per round). Needs valgrind
(on every machine here; Debian's package elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.peer_style_bench import open_memory, workload, write

_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")


def collected(log: str) -> int:
    """The instruction total callgrind reports at exit (``Collected : N``)."""
    found = _COLLECTED.findall(log)
    if not found:
        raise RuntimeError("callgrind reported no 'Collected' total:\n" + log[-2000:])
    return int(found[-1].replace(",", ""))


def per_search(totals: tuple[int, int], rounds: tuple[int, int], queries: int) -> float:
    """Instructions per search from the totals of two runs of ``rounds`` later rounds each."""
    (low, high), (first, second) = totals, rounds
    return (high - low) / ((second - first) * queries)


async def build(data: Path, memories: int, queries: int, seed: int) -> None:
    """Write the workload's memories into a new store in ``data``."""
    _, specs = workload(memories, queries, seed)
    async with open_memory(data)[0] as memory:
        for spec in specs:
            await write(memory, spec)
        if not await memory.wait_for_embeddings(600):
            raise RuntimeError("the background embedding did not finish in 600 s")


async def searches(data: Path, queries: int, seed: int, rounds: int) -> dict[str, Any]:
    """Ask every query once, then ``rounds`` more times with the query vectors known: the
    run callgrind counts. Returns the digest of the last round's rankings."""
    asked, _ = workload(0, queries, seed)
    async with open_memory(data)[0] as memory:
        await memory.retrieve_relevant_context("warm up the retrieval", None, 5)
        if not await memory.retrieval_settled():
            raise RuntimeError("the retrieval's background work did not finish in 120 s")
        ranked: list[list[str]] = []
        for n in range(rounds + 1):
            embedded = memory.vectors.query_ms[:] if memory.vectors is not None else []
            memory._query_cache.clear()
            ranked = []
            for q in asked:
                found = await memory.retrieve_relevant_context(q.text, q.context, 5)
                ranked.append([str(r.episode.episode_id) for r in found])
            if n and memory.vectors is not None and memory.vectors.query_ms != embedded:
                raise RuntimeError("a later round embedded a query again")
    digest = hashlib.sha256(json.dumps(ranked).encode()).hexdigest()[:16]
    return {"searches": len(asked) * (rounds + 1), "rankings": digest}


def _counted(data: Path, queries: int, seed: int, rounds: int) -> tuple[int, dict[str, Any]]:
    """One run of :func:`searches` under callgrind: its instruction total and its answer."""
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "valgrind.log"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={scratch}/callgrind.out",
            f"--log-file={log}",
            sys.executable,
            "-m",
            "benchmarks.search_instructions",
            "--child",
            str(rounds),
            "--store-dir",
            str(data),
            "--queries",
            str(queries),
            "--seed",
            str(seed),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        text = log.read_text() if log.exists() else ""
        if done.returncode != 0:
            raise RuntimeError(
                f"the counted run failed ({done.returncode}):\n{done.stderr[-2000:]}"
            )
        return collected(text), json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store-dir", type=Path, required=True, help="the store (kept)")
    parser.add_argument("--memories", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--rounds",
        default="1,6",
        help="the two numbers of later rounds to count (default 1,6: five rounds apart)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # a counted run's rounds
    args = parser.parse_args(argv)
    if args.child is not None:
        print(
            json.dumps(asyncio.run(searches(args.store_dir, args.queries, args.seed, args.child)))
        )
        return
    try:
        first, second = (int(r) for r in args.rounds.split(","))
    except ValueError:
        parser.error(f"--rounds takes two numbers such as 1,6, not {args.rounds!r}")
    if not 0 <= first < second:
        parser.error(f"--rounds needs 0 <= R1 < R2, not {first},{second}")
    if args.queries < 1:
        parser.error(f"--queries must be at least 1, not {args.queries}")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    if not (args.store_dir / "memory.db").exists():  # (a store already there is kept)
        args.store_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(build(args.store_dir, args.memories, args.queries, args.seed))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # side by side: counts, not time
        runs = [
            pool.submit(_counted, args.store_dir, args.queries, args.seed, rounds)
            for rounds in (first, second)
        ]
        (low, low_run), (high, high_run) = (run.result() for run in runs)
    if low_run["rankings"] != high_run["rankings"]:
        raise RuntimeError("the two counted runs ranked differently")
    result = {
        "name": "search_instructions",
        "memories": args.memories,
        "queries": args.queries,
        "rounds": [first, second],
        "totals": [low, high],
        "instructions_per_search": round(per_search((low, high), (first, second), args.queries)),
        "rankings": high_run["rankings"],
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
