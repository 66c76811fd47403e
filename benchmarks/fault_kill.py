"""The kill -9 loop at benchmark size (tests/faults/kill_loop.py): ROUNDS rounds of a library
writer killed with SIGKILL at a seeded random moment, every acknowledged write checked after each.

Prints one JSON line: kills, acknowledgements checked, episodes, lost (0), integrity ("ok"),
seconds.

    python benchmarks/fault_kill.py --rounds 30 --seed 1
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

from faults.kill_loop import kill_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report = asyncio.run(kill_loop(Path(tmp) / "data", args.rounds, args.seed))
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "name": "kill9_loop",
                "seed": args.seed,
                "kills": report.kills,
                "acknowledged_checked": report.acknowledged,
                "episodes": report.episodes,
                "lost": report.lost,
                "integrity": report.integrity,
                "seconds": round(seconds, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
