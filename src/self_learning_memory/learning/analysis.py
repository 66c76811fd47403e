"""Reports over learned patterns: how a pattern's source episodes went, and the effectiveness
ranking from the store's usage counters. Pure functions over data the
memory already returns (``list_patterns``, ``get_pattern``, ``pattern_evidence``)."""

from __future__ import annotations

import statistics
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel

from ..model.episode import Episode, utc_now
from ..model.pattern import AnyPattern, ContextPattern, DecisionPoint, ErrorRecovery, ToolSequence
from ..model.usage import HALF_LIFE_DAYS, MIN_EFFECTIVENESS, PatternUsage, effectiveness

__all__ = [
    "EffectivenessRow",
    "PatternAnalysis",
    "analyze_episodes",
    "describe",
    "effectiveness_rows",
    "is_active",
]

ACTIVE_DAYS = 30


def describe(pattern: AnyPattern) -> str:
    """One line saying what the pattern is."""
    if isinstance(pattern, ToolSequence):
        return " -> ".join(pattern.tools)
    if isinstance(pattern, DecisionPoint):
        return f"when '{pattern.condition}' use {pattern.action}"
    if isinstance(pattern, ErrorRecovery):
        return f"{pattern.error_type}: {' -> '.join(pattern.recovery_steps)}"
    if isinstance(pattern, ContextPattern):
        return f"{', '.join(pattern.context_features)} => {pattern.recommended_approach}"
    return pattern.type  # pragma: no cover


class EffectivenessRow(BaseModel):
    pattern_id: uuid.UUID
    pattern_type: str
    description: str
    effectiveness: float  # recomputed now (recency moves with time)
    stored_effectiveness: float  # as of the last use or decay
    success_rate: float  # of applications (0.5 when never applied)
    application_rate: float  # applications per retrieval
    days_since_last_use: float
    applications: int
    retrievals: int
    successes: int
    failures: int
    below_threshold: bool


def _days_since(usage: PatternUsage, now: datetime) -> float:
    last = usage.last_applied or usage.last_retrieved or usage.created_at
    return max(0.0, (now - last).total_seconds() / 86_400)


def effectiveness_rows(
    pairs: list[tuple[AnyPattern, PatternUsage]], now: datetime | None = None
) -> list[EffectivenessRow]:
    """Every pattern's effectiveness from its usage counters, best first."""
    now = now or utc_now()
    rows = []
    for pattern, usage in pairs:
        score = effectiveness(usage, now)
        rows.append(
            EffectivenessRow(
                pattern_id=pattern.id,
                pattern_type=pattern.type,
                description=describe(pattern),
                effectiveness=round(score, 6),
                stored_effectiveness=round(usage.effectiveness_score, 6),
                success_rate=round(usage.success_rate(), 6),
                application_rate=round(usage.application_rate(), 6),
                days_since_last_use=round(_days_since(usage, now), 3),
                applications=usage.application_count,
                retrievals=usage.retrieval_count,
                successes=usage.success_count,
                failures=usage.failure_count,
                below_threshold=score < MIN_EFFECTIVENESS,
            )
        )
    rows.sort(key=lambda r: (-r.effectiveness, -r.applications, str(r.pattern_id)))
    return rows


def is_active(usage: PatternUsage, now: datetime | None = None) -> bool:
    """Applied in the last 30 days (the reference tracker's "active")."""
    now = now or utc_now()
    return usage.last_applied is not None and now - usage.last_applied <= timedelta(
        days=ACTIVE_DAYS
    )


class Period(BaseModel):
    day: str
    episodes: int
    successes: int
    success_rate: float | None
    mean_reward: float | None


class PatternAnalysis(BaseModel):
    pattern_id: uuid.UUID
    pattern_type: str
    description: str
    occurrences: int
    pattern_success_rate: float  # the pattern's own (merged) rate
    episodes_analyzed: int
    completed: int
    in_progress: int
    outcomes: dict[str, int]
    success_rate: float | None  # successes / completed
    weighted_success_rate: float | None  # partial successes count one half
    reward_mean: float | None
    reward_min: float | None
    reward_max: float | None
    mean_steps: float | None
    mean_duration_s: float | None
    first_seen: datetime | None
    last_seen: datetime | None
    trend: str  # improving, declining, stable, or "not enough data"
    over_time: list[Period]
    half_life_days: float = HALF_LIFE_DAYS


def _rate(episodes: list[Episode]) -> float | None:
    done = [e for e in episodes if e.outcome is not None]
    if not done:
        return None
    return sum(e.outcome.type == "success" for e in done if e.outcome) / len(done)


def _trend(episodes: list[Episode]) -> str:
    done = sorted((e for e in episodes if e.outcome is not None), key=lambda e: e.start_time)
    if len(done) < 4:
        return "not enough data"
    half = len(done) // 2
    older, newer = _rate(done[:half]) or 0.0, _rate(done[half:]) or 0.0
    if newer - older > 0.1:
        return "improving"
    if older - newer > 0.1:
        return "declining"
    return "stable"


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 6) if values else None


def analyze_episodes(pattern: AnyPattern, episodes: list[Episode]) -> PatternAnalysis:
    """How the episodes a pattern was learned from went: outcomes, rewards, success rate, by
    day, and whether the newer half did better than the older half."""
    outcomes: dict[str, int] = {"success": 0, "partial_success": 0, "failure": 0}
    for e in episodes:
        if e.outcome is not None:
            outcomes[e.outcome.type] = outcomes.get(e.outcome.type, 0) + 1
    completed = sum(outcomes.values())
    rewards = [e.reward.total for e in episodes if e.reward is not None]
    durations = [d.total_seconds() for e in episodes if (d := e.duration()) is not None]
    by_day: dict[str, list[Episode]] = {}
    for e in sorted(episodes, key=lambda e: e.start_time):
        by_day.setdefault(e.start_time.date().isoformat(), []).append(e)
    periods = [
        Period(
            day=day,
            episodes=len(group),
            successes=sum(
                1 for e in group if e.outcome is not None and e.outcome.type == "success"
            ),
            success_rate=None if (r := _rate(group)) is None else round(r, 6),
            mean_reward=_mean([e.reward.total for e in group if e.reward is not None]),
        )
        for day, group in by_day.items()
    ]
    starts = [e.start_time for e in episodes]
    return PatternAnalysis(
        pattern_id=pattern.id,
        pattern_type=pattern.type,
        description=describe(pattern),
        occurrences=pattern.sample_size(),
        pattern_success_rate=round(pattern.rate(), 6),
        episodes_analyzed=len(episodes),
        completed=completed,
        in_progress=len(episodes) - completed,
        outcomes=outcomes,
        success_rate=None if not completed else round(outcomes["success"] / completed, 6),
        weighted_success_rate=None
        if not completed
        else round((outcomes["success"] + 0.5 * outcomes["partial_success"]) / completed, 6),
        reward_mean=_mean(rewards),
        reward_min=min(rewards) if rewards else None,
        reward_max=max(rewards) if rewards else None,
        mean_steps=_mean([float(len(e.steps)) for e in episodes]),
        mean_duration_s=_mean(durations),
        first_seen=min(starts) if starts else None,
        last_seen=max(starts) if starts else None,
        trend=_trend(episodes),
        over_time=periods,
    )
