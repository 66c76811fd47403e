"""Folding one more observation of a pattern into its stored aggregate.

A completion that extracts a pattern already stored (same similarity key) does not add a row:
the new observation is merged into the aggregate. :func:`merge_patterns` folds the pattern
itself (occurrence counts, count-weighted success rates, evidence); :func:`merge_observation`
adds the usage bookkeeping (one more application, its outcome, the effectiveness score) and
returns everything the store writes back. The stores only read the aggregate and write the
result, inside their own transaction.
"""

from __future__ import annotations

from datetime import datetime

from ..model.pattern import (
    AnyPattern,
    ContextPattern,
    DecisionPoint,
    ErrorRecovery,
    OutcomeStats,
    ToolSequence,
    recent_ids,
    weighted_mean,
)
from ..model.records import MergedPattern
from ..model.usage import PatternUsage, record_use

__all__ = ["MergedPattern", "merge_observation", "merge_patterns", "record_use"]


def merge_patterns(stored: AnyPattern, new: AnyPattern) -> AnyPattern:
    """Fold ``new`` (one more observation) into ``stored``; the stored id and creation time stay.

    Tool sequences, error recoveries and context patterns take count-weighted success rates
    (a plain mean would forget sample sizes); decision points add their outcome stats.
    """
    na, nb = stored.occurrence_count, new.occurrence_count
    common = {"occurrence_count": na + nb, "updated_at": new.updated_at}
    if isinstance(stored, ToolSequence) and isinstance(new, ToolSequence):
        return stored.model_copy(
            update={
                **common,
                "success_rate": weighted_mean(stored.success_rate, na, new.success_rate, nb),
                "avg_latency": weighted_mean(stored.avg_latency, na, new.avg_latency, nb),
                "last_seen_episode": new.last_seen_episode,
            }
        )
    if isinstance(stored, DecisionPoint) and isinstance(new, DecisionPoint):
        a, b = stored.outcome_stats, new.outcome_stats
        stats = OutcomeStats(
            success_count=a.success_count + b.success_count,
            failure_count=a.failure_count + b.failure_count,
            total_count=a.total_count + b.total_count,
            avg_duration_secs=weighted_mean(
                a.avg_duration_secs, a.total_count, b.avg_duration_secs, b.total_count
            ),
        )
        return stored.model_copy(update={**common, "outcome_stats": stats})
    if isinstance(stored, ErrorRecovery) and isinstance(new, ErrorRecovery):
        rate = weighted_mean(stored.success_rate, na, new.success_rate, nb)
        return stored.model_copy(update={**common, "success_rate": rate})
    if isinstance(stored, ContextPattern) and isinstance(new, ContextPattern):
        return stored.model_copy(
            update={
                **common,
                "success_rate": weighted_mean(stored.success_rate, na, new.success_rate, nb),
                "evidence": recent_ids(stored.evidence, new.evidence),
            }
        )
    return stored


def merge_observation(
    stored: AnyPattern, usage: PatternUsage, new: AnyPattern, *, success: bool, now: datetime
) -> MergedPattern:
    """The aggregate after ``new`` was observed again in an episode that ended with
    ``success``: the merged pattern, and the usage with one more application."""
    return MergedPattern(
        merge_patterns(stored, new), record_use(usage, applied=True, success=success, now=now)
    )
