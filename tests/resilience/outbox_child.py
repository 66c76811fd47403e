"""A child process that writes episodes through the proxy while PostgreSQL is unreachable.

    python -m tests.resilience.outbox_child DSN DATA_DIR

Writes episodes of 3 steps until killed; after each completion returns it prints
"ACK <episode id>" (flushed): the write was acknowledged, so it must never be lost.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from self_learning_memory import ExecutionStep, SuccessOutcome, SuccessResult

from .pg import build_memory


async def main(dsn: str, data_dir: Path) -> None:
    memory, _ = build_memory(dsn, data_dir)
    async with memory:
        n = 0
        while True:
            n += 1
            eid = await memory.start_episode(f"child episode {n}", task_type="testing")
            for i in range(1, 4):
                step = ExecutionStep(
                    step_number=i, tool="shell", action=f"run {i}", result=SuccessResult(output="")
                )
                await memory.log_step(eid, step)
            await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
            print(f"ACK {eid}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
