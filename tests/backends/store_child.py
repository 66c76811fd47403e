"""A separate process writing to one store, for the concurrency tests.

    python store_child.py URL DATA_DIR NAME EPISODES

Opens the memory on ``URL`` (a postgresql:// DSN, or "-" for the embedded store in DATA_DIR),
writes EPISODES episodes of three steps with the same tool sequence, completes each, and
prints "EPISODE <id>" per completed episode. An error is printed as "ERROR <type>: <text>"
with exit status 1.
"""

from __future__ import annotations

import asyncio
import sys

from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)

CONTEXT = TaskContext(domain="ops", language="python")
TOOLS = ["checkout", "build", "deploy"]


async def main(url: str, data_dir: str, name: str, episodes: int) -> None:
    config = MemoryConfig.model_validate({"storage": {"url": None if url == "-" else url}})
    async with SelfLearningMemory.open(data_dir, config=config) as memory:
        for i in range(episodes):
            eid = await memory.start_episode(f"{name} release {i} of the api", CONTEXT)
            for n, tool in enumerate(TOOLS, start=1):
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n, tool=tool, action="run", result=SuccessResult(output="ok")
                    ),
                )
            await memory.complete_episode(eid, SuccessOutcome(verdict="released"))
            print(f"EPISODE {eid}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)
