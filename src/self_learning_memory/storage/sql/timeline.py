"""The learning curve in SQL: completed episodes per hour, day or week with their outcomes,
aggregated by the database (one ``GROUP BY`` over ``end_time``, never the episodes loaded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ...model.timeline import OutcomeWindow, window_seconds
from .dialect import Dialect
from .program import Program, rows

__all__ = ["outcome_timeline"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def outcome_timeline(
    d: Dialect, window: str, since: datetime | None, until: datetime | None
) -> Program[list[OutcomeWindow]]:
    """Windows with at least one episode completed in ``[since, until)``, oldest first."""
    seconds, offset = window_seconds(window)
    bucket = d.time_bucket("end_time", seconds, offset)
    clauses = ["end_time IS NOT NULL"]
    args: list[object] = []
    if since is not None:
        clauses.append("end_time >= ?")
        args.append(d.to_time(since))
    if until is not None:
        clauses.append("end_time < ?")
        args.append(d.to_time(until))
    found = yield rows(
        f"SELECT {bucket} AS bucket, count(*),"
        " sum(CASE WHEN outcome_type = 'success' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN outcome_type = 'partial_success' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN outcome_type = 'failure' THEN 1 ELSE 0 END)"
        f" FROM episodes WHERE {' AND '.join(clauses)} GROUP BY 1 ORDER BY 1",
        args,
    )
    out: list[OutcomeWindow] = []
    for index, n, ok, partial, failed in found:
        start = EPOCH + timedelta(seconds=int(index) * seconds - offset)
        out.append(
            OutcomeWindow(
                start=start,
                end=start + timedelta(seconds=seconds),
                episodes=int(n),
                successes=int(ok or 0),
                partial=int(partial or 0),
                failures=int(failed or 0),
            )
        )
    return out
