"""Usage counters: patterns' (and their effectiveness score, which ranking and decay read) and
episodes' (and their usefulness, a ranking component).

A pattern is *retrieved* when retrieval returns it and *applied* when a later episode produces
it again (the aggregation step records that, with the episode's outcome), when a caller
reports an application explicitly, or when it was retrieved for a task that then completed
(retrieval feedback, below).

An episode is *used* when it was retrieved for a later task (``for_episode``, an MCP session,
or ``record_retrieval_feedback``) and that task completed: its :class:`EpisodeUsage` adds the
task's outcome score. A caller may also mark it helpful or unhelpful. :func:`usefulness` turns
that evidence into a smoothed success rate, 0.5 (neutral) without evidence.
"""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from .episode import utc_now

__all__ = [
    "DECAY_INTERVAL_DAYS",
    "MIN_EFFECTIVENESS",
    "USEFULNESS_PRIOR",
    "EpisodeUsage",
    "PatternUsage",
    "effectiveness",
    "record_use",
    "usefulness",
]

MIN_EFFECTIVENESS = 0.3
DECAY_INTERVAL_DAYS = 7
HALF_LIFE_DAYS = 30.0
# Pseudo-observations at 0.5 that every episode's usefulness starts from: with one successful
# use an episode scores (1 + 2) / (1 + 4) = 0.6, with ten 0.86, with ten failures 0.14.
USEFULNESS_PRIOR = 4.0


class PatternUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retrieval_count: int = 0
    application_count: int = 0
    success_count: int = 0
    failure_count: int = 0
    last_retrieved: datetime | None = None
    last_applied: datetime | None = None
    created_at: datetime
    effectiveness_score: float = 0.5

    def success_rate(self) -> float:
        return self.success_count / self.application_count if self.application_count else 0.5

    def application_rate(self) -> float:
        if not self.retrieval_count:
            return 0.0
        return min(1.0, self.application_count / self.retrieval_count)


def effectiveness(usage: PatternUsage, now: datetime | None = None) -> float:
    """0.4 success + 0.3 application + 0.2 recency (30-day half-life) + 0.1 volume."""
    now = now or utc_now()
    last = usage.last_applied or usage.last_retrieved or usage.created_at
    days = max(0.0, (now - last).total_seconds() / 86_400)
    recency = math.exp(-0.693 * min(days / HALF_LIFE_DAYS, 10.0))
    volume = min(usage.application_count, 20) / 20
    return (
        0.4 * usage.success_rate() + 0.3 * usage.application_rate() + 0.2 * recency + 0.1 * volume
    )


def record_use(usage: PatternUsage, *, applied: bool, success: bool, now: datetime) -> PatternUsage:
    """``usage`` after one more retrieval, or one more application with its outcome, at
    ``now``; ``effectiveness_score`` recomputed."""
    update: dict[str, object]
    if applied:
        update = {
            "application_count": usage.application_count + 1,
            "success_count": usage.success_count + int(success),
            "failure_count": usage.failure_count + int(not success),
            "last_applied": now,
        }
    else:
        update = {"retrieval_count": usage.retrieval_count + 1, "last_retrieved": now}
    used = usage.model_copy(update=update)
    used.effectiveness_score = effectiveness(used, now)
    return used


class EpisodeUsage(BaseModel):
    """How an episode served later tasks it was retrieved for (retrieval feedback).

    ``uses``: completed tasks it was used for; ``success``: the sum of their outcome scores
    (success 1, partial the completed share, failure 0); ``helpful`` / ``unhelpful``: explicit
    marks by a caller."""

    model_config = ConfigDict(extra="forbid")

    uses: int = 0
    success: float = 0.0
    helpful: int = 0
    unhelpful: int = 0
    last_used: datetime | None = None

    @property
    def evidence(self) -> int:
        return self.uses + self.helpful + self.unhelpful


def usefulness(usage: EpisodeUsage | None, prior: float = USEFULNESS_PRIOR) -> float:
    """The smoothed share of good evidence: (success + helpful + prior / 2) / (uses + helpful
    + unhelpful + prior). 0.5 without evidence, and near 0.5 with little (a Beta prior of
    ``prior`` pseudo-observations), so one use does not decide a ranking."""
    if usage is None:
        return 0.5
    good = usage.success + usage.helpful
    return (good + prior / 2) / (usage.evidence + prior)
