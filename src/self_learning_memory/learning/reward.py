"""Reward scoring, with the pattern count known at scoring time.

    total = base x efficiency x complexity_bonus x quality_multiplier + learning_bonus

The reference system scored before extracting patterns, so its pattern term was always 0;
here :func:`calculate_reward` is called after extraction with the real count.
"""

from __future__ import annotations

import itertools
import math

from ..model.episode import (
    ComplexityLevel,
    Episode,
    PartialSuccessOutcome,
    RewardScore,
    SuccessOutcome,
)

__all__ = ["calculate_reward", "has_error_recovery"]

EFFICIENT_DURATION_SECS = 60.0
EFFICIENT_STEP_COUNT = 10.0
MIN_EFFICIENCY, MAX_EFFICIENCY = 0.5, 1.5
DURATION_WEIGHT = STEP_COUNT_WEIGHT = 0.5
MAX_LEARNING_BONUS = 0.5
_COMPLEXITY_BONUS = {
    ComplexityLevel.SIMPLE: 1.0,
    ComplexityLevel.MODERATE: 1.1,
    ComplexityLevel.COMPLEX: 1.2,
}


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def has_error_recovery(episode: Episode) -> bool:
    """True when some failed step is directly followed by a successful one."""
    steps = episode.steps
    return any(not a.is_success() and b.is_success() for a, b in itertools.pairwise(steps))


def _base(episode: Episode) -> float:
    outcome = episode.outcome
    if isinstance(outcome, SuccessOutcome):
        return 1.0
    if isinstance(outcome, PartialSuccessOutcome):
        done, failed = len(outcome.completed), len(outcome.failed)
        return 0.5 if done + failed == 0 else done / (done + failed)
    return 0.0  # failure or not complete


def _efficiency(episode: Episode) -> float:
    duration = episode.duration()
    if duration is None:
        d_score = 1.0
    else:
        secs = int(duration.total_seconds())  # whole seconds, truncated like chrono's num_seconds
        d_score = 1.5 if secs <= 0 else 0.5 + math.exp(-(secs / EFFICIENT_DURATION_SECS) / 2)
    n = len(episode.steps)
    s_score = 0.5 if n == 0 else 0.5 + math.exp(-(n / EFFICIENT_STEP_COUNT) / 2)
    return _clamp(DURATION_WEIGHT * d_score + STEP_COUNT_WEIGHT * s_score, 0.5, 1.5)


def _float_meta(episode: Episode, key: str) -> float | None:
    try:
        return float(episode.metadata[key])
    except (KeyError, ValueError):
        return None


def _quality(episode: Episode) -> float:
    q = 1.0
    outcome = episode.outcome
    if isinstance(outcome, SuccessOutcome):
        if any("coverage" in a.lower() or "test" in a.lower() for a in outcome.artifacts):
            q += 0.1
        if len(outcome.artifacts) >= 3:
            q += 0.05
        coverage = _float_meta(episode, "test_coverage")
        if coverage is not None:
            if coverage > 80:
                q += 0.15
            elif coverage > 60:
                q += 0.1
    if episode.steps:
        err = episode.failed_steps_count() / len(episode.steps)
        if err > 0.3:
            q -= 0.2
        elif err > 0.1:
            q -= 0.1
        elif err == 0:
            q += 0.1
    if episode.metadata.get("clippy_warnings") == "0":
        q += 0.05
    return _clamp(q, 0.5, 1.5)


def _learning_bonus(episode: Episode, pattern_count: int) -> float:
    bonus = min(0.1 * pattern_count, 0.3)
    steps = episode.steps
    n = len(steps)
    if n >= 3:
        unique = len({s.tool for s in steps})
        if unique >= 5:
            bonus += 0.15
        elif unique >= 3:
            bonus += 0.1
    if n:
        rate = episode.step_success_rate()
        if rate > 0.9 and n >= 5:
            bonus += 0.2
        elif rate == 1.0 and n >= 3:
            bonus += 0.15
    if has_error_recovery(episode):
        bonus += 0.15
    duration = episode.duration()
    if duration is not None and duration.total_seconds() < 30 and 1 <= n < 10:
        bonus += 0.1
    return min(bonus, MAX_LEARNING_BONUS)


def calculate_reward(episode: Episode, pattern_count: int = 0) -> RewardScore:
    """Score a completed episode. ``pattern_count``: patterns extracted from it."""
    base = _base(episode)
    efficiency = _efficiency(episode)
    complexity = _COMPLEXITY_BONUS[episode.context.complexity]
    quality = _quality(episode)
    learning = _learning_bonus(episode, pattern_count)
    total = base * efficiency * complexity * quality + learning
    return RewardScore(
        total=total,
        base=base,
        efficiency=efficiency,
        complexity_bonus=complexity,
        quality_multiplier=quality,
        learning_bonus=learning,
    )
