"""Seed a data directory through the library (faster than one CLI process per step)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.model.episode import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)

T = TypeVar("T")


def with_memory(data_dir: Path, action: Callable[[SelfLearningMemory], Awaitable[T]]) -> T:
    async def go() -> T:
        async with SelfLearningMemory.open(data_dir) as memory:
            return await action(memory)

    return asyncio.run(go())


async def add_episode(
    memory: SelfLearningMemory,
    task: str,
    *,
    domain: str = "web-api",
    tools: tuple[str, ...] = ("editor", "pytest"),
    success: bool = True,
    output: str = "ok",
) -> uuid.UUID:
    eid = await memory.start_episode(task, TaskContext(domain=domain), "debugging")
    for n, tool in enumerate(tools, start=1):
        last = n == len(tools)
        result = (
            SuccessResult(output=output) if success or not last else ErrorResult(message="boom")
        )
        await memory.log_step(
            eid,
            ExecutionStep(
                step_number=n, tool=tool, action=f"{tool} step {n}", result=result, latency_ms=5
            ),
        )
    outcome = (
        SuccessOutcome(verdict="done") if success else FailureOutcome(reason="tests still fail")
    )
    await memory.complete_episode(eid, outcome)
    return eid


def seed(
    data_dir: Path, successes: int = 3, failures: int = 0, domain: str = "web-api"
) -> list[uuid.UUID]:
    """``successes`` then ``failures`` episodes of the same task shape (one tool sequence)."""

    async def go(memory: SelfLearningMemory) -> list[uuid.UUID]:
        ids = []
        for i in range(successes + failures):
            ids.append(
                await add_episode(
                    memory, f"Fix the login bug number {i}", domain=domain, success=i < successes
                )
            )
        return ids

    return with_memory(data_dir, go)
