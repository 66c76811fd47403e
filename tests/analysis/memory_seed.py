"""Seed a store with a history of completed episodes at chosen times (through the store's own
create and completion path, so the episodes are real rows with real outcomes and rewards)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.model.episode import (
    Episode,
    ExecutionStep,
    FailureOutcome,
    RewardScore,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
)
from self_learning_memory.model.records import CompletionRecord
from self_learning_memory.storage.codec import search_document

DAY0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def history_episode(
    task_type: TaskType,
    domain: str,
    start: datetime,
    reward: float,
    *,
    success: bool = True,
    steps: int = 3,
    seconds: float = 60.0,
    tokens: int | None = None,
) -> Episode:
    return Episode(
        task_type=task_type,
        task_description=f"{task_type.value} task at {start.isoformat()}",
        context=TaskContext(domain=domain),
        start_time=start,
        end_time=start + timedelta(seconds=seconds),
        steps=[
            ExecutionStep(
                step_number=n,
                timestamp=start,
                tool="editor",
                action="edit",
                result=SuccessResult(output="ok"),
                tokens_used=tokens,
            )
            for n in range(1, steps + 1)
        ],
        outcome=SuccessOutcome(verdict="done") if success else FailureOutcome(reason="failed"),
        reward=RewardScore(
            total=reward,
            base=reward,
            efficiency=1.0,
            complexity_bonus=1.0,
            quality_multiplier=1.0,
            learning_bonus=0.0,
        ),
    )


async def store_history(memory: SelfLearningMemory, episodes: list[Episode]) -> None:
    for episode in episodes:
        bare = episode.model_copy(
            update={"end_time": None, "outcome": None, "reward": None, "steps": []}
        )
        await memory.storage.create_episode(bare)
        await memory.storage.append_steps(episode.episode_id, episode.steps)
        await memory.storage.commit_completion(
            CompletionRecord(episode=episode, mode="inline", search=search_document(episode))
        )


def improving_debugging_history(days: int = 30, per_day: int = 4, seed: int = 7) -> list[Episode]:
    """Debugging in domain web-api: reward rises ~0.015/day, duration falls; testing in domain
    cli: flat reward. Noise so the tests are not on exact lines."""
    rng = random.Random(seed)
    out = []
    for day in range(days):
        for i in range(per_day):
            start = DAY0 + timedelta(days=day, minutes=30 * i)
            out.append(
                history_episode(
                    TaskType.DEBUGGING,
                    "web-api",
                    start,
                    0.3 + 0.015 * day + rng.uniform(-0.05, 0.05),
                    seconds=600 - 10 * day + rng.uniform(-20, 20),
                    success=rng.random() < 0.3 + 0.02 * day,
                    tokens=1000,
                )
            )
            out.append(
                history_episode(
                    TaskType.TESTING,
                    "cli",
                    start + timedelta(minutes=1),
                    0.5 + rng.uniform(-0.05, 0.05),
                    seconds=300 + rng.uniform(-20, 20),
                )
            )
    return out


async def seed_history_async(data_dir: Path, episodes: list[Episode]) -> None:
    async with SelfLearningMemory.open(data_dir) as memory:
        await store_history(memory, episodes)


def seed_history(data_dir: Path, episodes: list[Episode]) -> None:
    asyncio.run(seed_history_async(data_dir, episodes))
