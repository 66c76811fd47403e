"""The running episode size is exact: an open episode's JSON size plus each step's JSON size
(and a comma) equals the JSON size of the episode as the store returns it, for arbitrary
steps (non-ASCII text, floats, nested values). An under-count would let through a step that
makes the episode impossible to complete; an over-count would refuse steps early."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from self_learning_memory.core.episode_size import json_size, size_with_steps
from self_learning_memory.model.episode import Episode, ExecutionStep, TaskType
from self_learning_memory.storage.sqlite import SQLiteStorage

from .strategies import contexts, step_lists, str_dicts, text


@settings(max_examples=40, deadline=None)
@given(
    description=text.filter(str.strip),
    context=contexts,
    metadata=str_dicts,
    steps=step_lists(max_size=5),
)
def test_running_size_matches_the_stored_episode(
    description: str, context: object, metadata: dict[str, str], steps: list[ExecutionStep]
) -> None:
    episode = Episode(
        task_type=TaskType.OTHER,
        task_description=description,
        context=context,
        metadata=metadata,
    )
    running = size_with_steps(json_size(episode), 0, steps)
    assert running == json_size(episode.model_copy(update={"steps": steps}))

    async def round_trip() -> Episode | None:
        with tempfile.TemporaryDirectory() as tmp:
            async with SQLiteStorage(Path(tmp) / "memory.db") as store:
                await store.create_episode(episode)
                if steps:
                    await store.append_steps(episode.episode_id, steps)
                return await store.get_episode(episode.episode_id)

    stored = asyncio.run(round_trip())
    assert stored is not None
    assert running == json_size(stored)


@settings(max_examples=40, deadline=None)
@given(steps=step_lists(max_size=5), count=st.integers(0, 3))
def test_size_with_steps_adds_one_comma_per_step_after_the_first(
    steps: list[ExecutionStep], count: int
) -> None:
    commas = len(steps) - (1 if steps and count == 0 else 0)
    assert size_with_steps(0, count, steps) == sum(json_size(s) for s in steps) + commas
