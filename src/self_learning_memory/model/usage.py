"""Pattern usage counters and the effectiveness score that ranking and decay read.

A pattern is *retrieved* when retrieval returns it and *applied* when a later episode produces
it again (the aggregation step records that, with the episode's outcome), or when a caller
reports an application explicitly.
"""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from .episode import utc_now

__all__ = [
    "DECAY_INTERVAL_DAYS",
    "MIN_EFFECTIVENESS",
    "PatternUsage",
    "effectiveness",
    "record_use",
]

MIN_EFFECTIVENESS = 0.3
DECAY_INTERVAL_DAYS = 7
HALF_LIFE_DAYS = 30.0


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
