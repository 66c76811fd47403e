"""`memory-cli storage sync --strategy`: the StorageSynchronizer behind the command (conflicts
resolved per strategy, the pattern/heuristic index, persisted state), and a bad strategy is a
validation error (exit 3)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from self_learning_memory.core.memory import SelfLearningMemory

from .conftest import Invoke
from .seeding import seed, with_memory


@pytest.fixture
def data_dir(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["MEMORY_DATA_DIR"])


@pytest.fixture
def seeded(data_dir: Path) -> list[uuid.UUID]:
    return seed(data_dir)


def _edit_cached(data_dir: Path, episode_id: uuid.UUID) -> None:
    async def edit(memory: SelfLearningMemory) -> None:
        assert memory.cache is not None
        episode = await memory.get_episode(episode_id)
        memory.cache.invalidate(episode_id)
        memory.cache.put(episode.model_copy(update={"task_description": "edited in the cache"}))

    with_memory(data_dir, edit)


def _cached_description(data_dir: Path, episode_id: uuid.UUID) -> str:
    async def read(memory: SelfLearningMemory) -> str:
        assert memory.cache is not None
        cached = memory.cache.get(episode_id)
        assert cached is not None
        return cached.task_description

    return with_memory(data_dir, read)


def test_strategies(
    invoke_json: Callable[..., Any], seeded: list[uuid.UUID], data_dir: Path
) -> None:
    target = seeded[0]
    _edit_cached(data_dir, target)
    kept = invoke_json("storage", "sync", "--strategy", "cache_wins")
    assert kept["strategy"] == "cache_wins"
    assert kept["conflicts"] == 1
    assert kept["sync"]["kept_cached"] == 1
    assert _cached_description(data_dir, target) == "edited in the cache"
    fixed = invoke_json("storage", "sync")  # primary_wins by default
    assert fixed["strategy"] == "primary_wins"
    assert fixed["updated"] == 1
    assert _cached_description(data_dir, target) != "edited in the cache"
    assert fixed["state"]["sync_count"] == 2  # persisted across the two processes' runs
    assert fixed["sync"]["patterns_synced"] == 0  # the index was written by the first run
    assert invoke_json("storage", "verify")["ok"] is True


def test_unknown_strategy_is_a_validation_error(invoke: Invoke, seeded: list[uuid.UUID]) -> None:
    result = invoke("storage", "sync", "--strategy", "newest")
    assert result.exit_code == 3
    assert "--strategy" in result.output
    assert "primary_wins" in result.output


def test_human_output_names_strategy_and_index(invoke: Invoke, seeded: list[uuid.UUID]) -> None:
    result = invoke("storage", "sync", "--strategy", "most_recent")
    assert result.exit_code == 0, result.output
    assert "most_recent" in result.stdout
    assert "cached index" in result.stdout
