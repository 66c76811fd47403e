"""Reward (reference section 3.1): the worked example, each rule, and bounds for any episode."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from self_learning_memory import (
    ComplexityLevel,
    Episode,
    FailureOutcome,
    PartialSuccessOutcome,
)
from self_learning_memory.learning.reward import calculate_reward, has_error_recovery

from . import strategies as s
from .builders import episode, err, ok, success, timeout

SETTINGS = settings(max_examples=50, deadline=None)


def worked_example() -> Episode:
    # Success, Moderate, 3 all-success steps, 3 unique tools, under 1 s
    return episode([ok(1, "read"), ok(2, "edit"), ok(3, "test")], success(), seconds=0.4)


def test_worked_example_gives_2_08() -> None:
    r = calculate_reward(worked_example())
    assert r.base == 1.0
    assert r.efficiency == pytest.approx(0.5 * 1.5 + 0.5 * (0.5 + math.exp(-0.15)))
    assert r.efficiency == pytest.approx(1.4303, abs=1e-4)
    assert r.complexity_bonus == 1.1
    assert r.quality_multiplier == pytest.approx(1.1)
    assert r.learning_bonus == pytest.approx(0.35)
    assert round(r.total, 2) == 2.08
    assert r.total == pytest.approx(1.4303 * 1.1 * 1.1 + 0.35, abs=1e-3)


def test_real_pattern_count_adds_to_learning_bonus_up_to_the_cap() -> None:
    ep = worked_example()
    assert calculate_reward(ep, pattern_count=1).learning_bonus == pytest.approx(0.45)
    assert calculate_reward(ep, pattern_count=5).learning_bonus == pytest.approx(0.5)  # capped
    assert calculate_reward(ep, 1).total - calculate_reward(ep, 0).total == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("outcome", "base"),
    [
        (success(), 1.0),
        (PartialSuccessOutcome(verdict="half", completed=["a"], failed=["b", "c", "d"]), 0.25),
        (PartialSuccessOutcome(verdict="?"), 0.5),
        (FailureOutcome(reason="no"), 0.0),
        (None, 0.0),
    ],
)
def test_base(outcome: object, base: float) -> None:
    assert calculate_reward(episode([ok(1, "a")], outcome)).base == base  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("complexity", "bonus"),
    [
        (ComplexityLevel.SIMPLE, 1.0),
        (ComplexityLevel.MODERATE, 1.1),
        (ComplexityLevel.COMPLEX, 1.2),
    ],
)
def test_complexity_bonus(complexity: ComplexityLevel, bonus: float) -> None:
    r = calculate_reward(episode([ok(1, "a")], success(), complexity=complexity))
    assert r.complexity_bonus == bonus


def test_efficiency_truncates_seconds_and_handles_missing_duration() -> None:
    steps = [ok(1, "a")]
    s_score = 0.5 + math.exp(-(1 / 10) / 2)
    # 0.9 s truncates to 0 s: duration score 1.5
    assert calculate_reward(episode(steps, success(), seconds=0.9)).efficiency == pytest.approx(
        0.5 * 1.5 + 0.5 * s_score
    )
    long = calculate_reward(episode(steps, success(), seconds=600)).efficiency
    assert long == pytest.approx(0.5 * (0.5 + math.exp(-5)) + 0.5 * s_score)
    # no steps, running episode (no duration): 0.5 x 1.0 + 0.5 x 0.5
    assert calculate_reward(episode([], None)).efficiency == pytest.approx(0.75)


def test_quality_rules() -> None:
    clean = [ok(1, "a"), ok(2, "b")]
    art = success(artifacts=["tests/test_api.py", "api.py", "README"])
    q = calculate_reward(
        episode(clean, art, metadata={"test_coverage": "85", "clippy_warnings": "0"})
    ).quality_multiplier
    # 1 + 0.1 (test artifact) + 0.05 (3 artifacts) + 0.15 (coverage > 80) + 0.1 (no errors)
    # + 0.05 (clippy) = 1.45
    assert q == pytest.approx(1.45)
    mid = calculate_reward(episode(clean, success(), metadata={"test_coverage": "70"}))
    assert mid.quality_multiplier == pytest.approx(1.2)
    bad = calculate_reward(episode([err(1, "a"), ok(2, "b")], success()))  # err rate 0.5
    assert bad.quality_multiplier == pytest.approx(0.8)
    some = [ok(i, "a") for i in range(1, 9)] + [err(9, "b")]  # err rate 1/9 in (0.1, 0.3]
    assert calculate_reward(episode(some, success())).quality_multiplier == pytest.approx(0.9)
    # artifact and coverage rules apply to successes only
    fail = calculate_reward(
        episode(clean, FailureOutcome(reason="x"), metadata={"test_coverage": "99"})
    )
    assert fail.quality_multiplier == pytest.approx(1.1)
    junk = calculate_reward(episode(clean, success(), metadata={"test_coverage": "lots"}))
    assert junk.quality_multiplier == pytest.approx(1.1)


def test_step_without_result_counts_as_failed() -> None:
    ep = episode([ok(1, "a"), ok(2, "b").model_copy(update={"result": None})], success())
    assert ep.failed_steps_count() == 1
    assert calculate_reward(ep).quality_multiplier == pytest.approx(0.8)


def test_error_recovery_and_novelty_bonus() -> None:
    steps = [ok(1, "a"), timeout(2, "b"), ok(3, "c"), ok(4, "d"), ok(5, "e")]
    ep = episode(steps, success(), seconds=100)
    assert has_error_recovery(ep)
    # 5 unique tools +0.15, rate 0.8 (no rate bonus), recovery +0.15, slow: no speed bonus
    assert calculate_reward(ep).learning_bonus == pytest.approx(0.3)
    assert not has_error_recovery(episode([ok(1, "a"), err(2, "b")], success()))


def test_failure_total_is_the_learning_bonus() -> None:
    ep = episode([ok(1, "a"), ok(2, "b"), ok(3, "c")], FailureOutcome(reason="wrong"))
    r = calculate_reward(ep)
    assert r.base == 0.0
    assert r.total == r.learning_bonus


@SETTINGS
@given(s.episodes(), st.integers(0, 20))
def test_reward_bounds_for_any_episode(ep: Episode, pattern_count: int) -> None:
    r = calculate_reward(ep, pattern_count)
    assert 0.0 <= r.base <= 1.0
    assert 0.5 <= r.efficiency <= 1.5
    assert r.complexity_bonus in (1.0, 1.1, 1.2)
    assert 0.5 <= r.quality_multiplier <= 1.5
    assert 0.0 <= r.learning_bonus <= 0.5
    expected = r.base * r.efficiency * r.complexity_bonus * r.quality_multiplier
    assert r.total == pytest.approx(expected + r.learning_bonus)
    assert 0.0 <= r.total <= 3.2 + 1e-9
    assert all(math.isfinite(v) for v in r.model_dump().values())
    if ep.outcome is not None and ep.outcome.type == "success":
        assert r.total >= 0.5 * 0.5 * 1.0 * 0.5  # a success never scores like a failure
    assert calculate_reward(ep, pattern_count) == r  # deterministic


@SETTINGS
@given(s.episodes(complete=True), st.integers(0, 19))
def test_more_patterns_never_lower_the_reward(ep: Episode, n: int) -> None:
    assert calculate_reward(ep, n + 1).total >= calculate_reward(ep, n).total
