"""A separate process completing episodes for two agents, for the exact-count tests.

    python agent_child.py URL DATA_DIR NAME EPISODES

Opens the memory on ``URL`` (a postgresql:// DSN, or "-" for the embedded store in DATA_DIR).
For i in 0..EPISODES-1 it completes one episode of agent ``alpha-bot`` (a success when i is
even, else a failure) and one of ``code-reviewer-2`` (always a success, two steps, the second
failed), then records one execution of ``gamma`` directly. Prints "DONE <episodes>"; an error
is printed as "ERROR <type>: <text>" with exit status 1.
"""

from __future__ import annotations

import asyncio
import sys

from self_learning_memory import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
)


async def main(url: str, data_dir: str, name: str, episodes: int) -> None:
    config = MemoryConfig.model_validate({"storage": {"url": None if url == "-" else url}})
    done = 0
    async with SelfLearningMemory.open(data_dir, config=config) as memory:
        for i in range(episodes):
            alpha = await memory.start_episode(f"{name} task {i}", agent="alpha-bot")
            await memory.log_step(
                alpha,
                ExecutionStep(step_number=1, tool="pytest", action="run", result=SuccessResult()),
            )
            outcome = SuccessOutcome(verdict="ok") if i % 2 == 0 else FailureOutcome(reason="red")
            await memory.complete_episode(alpha, outcome)
            review = await memory.start_episode(f"{name} review {i}", agent="code-reviewer-2")
            await memory.log_step(
                review,
                ExecutionStep(step_number=1, tool="git", action="diff", result=SuccessResult()),
            )
            await memory.log_step(
                review,
                ExecutionStep(
                    step_number=2, tool="lint", action="run", result=ErrorResult(message="E501")
                ),
            )
            await memory.complete_episode(review, SuccessOutcome(verdict="approved"))
            done += 2
        await memory.record_agent_execution("gamma", True, 5.0, steps=1)
    print(f"DONE {done}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)
