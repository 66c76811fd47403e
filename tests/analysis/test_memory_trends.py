"""Trends over the stored episodes (analyze_memory_trends) on a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from analysis.memory_seed import (
    DAY0,
    history_episode,
    improving_debugging_history,
    store_history,
)
from backends.support import Backend
from self_learning_memory.analysis.memory_request import validate_request
from self_learning_memory.analysis.memory_series import analyze_memory_trends
from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.errors import ValidationError
from self_learning_memory.model.episode import TaskType

pytestmark = pytest.mark.integration


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[SelfLearningMemory]:
    async with SelfLearningMemory.open(tmp_path / "data") as m:
        await store_history(m, improving_debugging_history())
        yield m


async def test_debugging_improves_and_testing_is_flat(memory: SelfLearningMemory) -> None:
    debugging = await analyze_memory_trends(
        memory, task_type="debugging", metrics=["reward", "duration"]
    )
    assert debugging["episodes_analyzed"] == 120
    assert debugging["buckets"] == 30
    reward = debugging["metrics"]["reward"]
    assert reward["direction"] == "improving"
    assert reward["p_value"] < 0.05
    assert reward["slope_per"] == "day"
    assert reward["confidence_interval"][0] < 0.015 < reward["confidence_interval"][1]
    assert reward["last_window_mean"] - reward["first_window_mean"] > 0.25
    assert reward["mann_kendall"]["significant"]
    assert reward["forecast"]["point_forecasts"] is not None  # 30 buckets: enough to forecast
    duration = debugging["metrics"]["duration"]
    assert duration["slope"] < 0  # falling duration ...
    assert duration["direction"] == "improving"  # ... is an improvement
    assert duration["unit"] == "seconds"
    assert "improving" in debugging["answer"][0]

    testing = await analyze_memory_trends(memory, task_type="testing", metrics=["reward"])
    flat = testing["metrics"]["reward"]
    assert flat["direction"] == "no significant trend"
    assert flat["p_value"] >= 0.05
    assert flat["confidence_interval"][0] < 0 < flat["confidence_interval"][1]
    json.dumps(debugging, allow_nan=False)
    json.dumps(testing, allow_nan=False)


async def test_success_rate_per_n_episodes(memory: SelfLearningMemory) -> None:
    result = await analyze_memory_trends(
        memory,
        task_type="debugging",
        bucket="episodes",
        bucket_size=25,
        metrics=["success_rate"],
    )
    rate = result["metrics"]["success_rate"]
    assert result["buckets"] == 4  # 120 episodes: 4 full buckets of 25
    assert result["partial_bucket_episodes_left_out"] == 20
    assert [p["episodes"] for p in rate["series"]] == [25, 25, 25, 25]
    assert all(0.0 <= p["value"] <= 1.0 for p in rate["series"])
    assert rate["series"][-1]["value"] > rate["series"][0]["value"]
    assert rate["slope_per"] == "bucket of 25 episodes"
    assert rate["series"][0]["bucket"] == "1-25"
    tokens = await analyze_memory_trends(memory, task_type="debugging", metrics=["tokens"])
    assert tokens["metrics"]["tokens"]["series"][0]["value"] == 3000  # 3 steps x 1,000
    assert tokens["metrics"]["tokens"]["better"] == "lower"


async def test_filters_are_respected(memory: SelfLearningMemory) -> None:
    by_domain = await analyze_memory_trends(memory, domain="cli", metrics=["reward"])
    assert by_domain["episodes_analyzed"] == 120  # only the testing episodes are in "cli"
    assert by_domain["metrics"]["reward"]["direction"] == "no significant trend"
    window = await analyze_memory_trends(
        memory,
        task_type="debugging",
        since=(DAY0 + timedelta(days=10)).date().isoformat(),
        until=(DAY0 + timedelta(days=20)).date().isoformat(),
        metrics=["reward"],
    )
    assert window["episodes_analyzed"] == 40
    assert window["buckets"] == 10
    assert window["metrics"]["reward"]["series"][0]["bucket"] == "2026-01-11"
    capped = await analyze_memory_trends(
        memory, task_type="debugging", max_episodes=40, metrics=["reward"]
    )
    assert capped["truncated"] is True
    assert capped["episodes_matching"] == 120
    assert capped["episodes_analyzed"] == 40  # the newest 40: the last 10 days
    assert capped["metrics"]["reward"]["series"][0]["bucket"] == "2026-01-21"
    recent = await analyze_memory_trends(memory, since="30d", metrics=["reward"])
    assert recent["episodes_analyzed"] == 0  # the seeded history is from January 2026
    wide = await analyze_memory_trends(
        memory, task_type="debugging", bucket_size=7, metrics=["reward"]
    )
    assert wide["buckets"] == 5  # 30 days in weeks
    assert wide["metrics"]["reward"]["slope"] == pytest.approx(0.015, abs=0.003)  # per day


async def test_too_little_data_is_explicit(tmp_path: Path) -> None:
    async with SelfLearningMemory.open(tmp_path / "data") as memory:
        empty = await analyze_memory_trends(memory)
        assert empty["episodes_analyzed"] == 0
        assert empty["metrics"]["reward"]["status"] == "not_enough_data"
        assert empty["metrics"]["reward"]["reason"] == "not enough data: 0 buckets, need 3"
        await store_history(
            memory,
            [
                history_episode(TaskType.DEBUGGING, "web-api", DAY0 + timedelta(days=d), 0.5)
                for d in (0, 0, 1)
            ],
        )
        two = await analyze_memory_trends(memory, task_type="debugging")
        reward = two["metrics"]["reward"]
        assert reward["status"] == "not_enough_data"
        assert reward["direction"] is None
        assert reward["reason"] == "not enough data: 2 buckets, need 3"
        assert reward["answer"] == "reward: not enough data: 2 buckets, need 3"
        assert two["metrics"]["tokens"]["reason"] == "not enough data: 0 buckets, need 3"
        json.dumps(two, allow_nan=False)


@pytest.mark.parametrize(
    ("arguments", "field", "limit"),
    [
        ({"task_type": "cooking"}, "task_type", "debugging"),
        ({"bucket": "week"}, "bucket", "day / episodes"),
        ({"bucket_size": 0}, "bucket_size", "1..365"),
        ({"bucket": "episodes", "bucket_size": 10_001}, "bucket_size", "1..10000"),
        ({"metrics": ["reward", "happiness"]}, "metrics", "success_rate"),
        ({"metrics": []}, "metrics", "reward"),
        ({"since": "last week"}, "since", "2026-01-31"),
        ({"since": 20260101}, "since", "ISO 8601"),
        ({"until": "99999999d"}, "until", "100 years"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "until", "2026-02-01"),
        ({"max_episodes": 0}, "max_episodes", "1..100000"),
        ({"domain": "x" * 300}, "domain", "256"),
        ({"significance_level": 1.5}, "significance_level", "(0, 1)"),
    ],
)
def test_bad_arguments_name_the_field_and_the_limit(
    arguments: dict[str, Any], field: str, limit: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_request(**arguments)
    assert info.value.field == field
    assert limit in str(info.value)


async def test_the_same_answer_on_every_backend(backend: Backend) -> None:
    """SQLite and PostgreSQL: the filters run in each store's SQL, the numbers agree."""
    async with backend.open() as memory:
        await store_history(memory, improving_debugging_history(days=12, per_day=2))
        result = await analyze_memory_trends(
            memory,
            task_type="debugging",
            domain="web-api",
            since="2026-01-03",
            until="2026-01-13",
            metrics=["reward", "duration"],
        )
    assert result["episodes_analyzed"] == 20  # days 2..11, 2 a day
    assert result["buckets"] == 10
    assert result["metrics"]["reward"]["direction"] == "improving"
    assert result["metrics"]["reward"]["p_value"] < 0.05
    assert result["metrics"]["duration"]["direction"] == "improving"
