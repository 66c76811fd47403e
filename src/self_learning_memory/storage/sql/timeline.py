"""The learning curve in SQL: completed episodes per hour, day or week with their outcomes,
counted by the database, never loaded.

Two plans, the same answer. Up to :data:`MAX_RANGE_WINDOWS` windows between the first and the
last completion in range, each window's outcomes are three range counts on the index
``(outcome_type, end_time)`` (migration 7 on SQLite, 6 on PostgreSQL): index entries are
stepped, no row is read and nothing is sorted, so a 90-day curve over 100,000 episodes costs a
few milliseconds. More windows than that (an hourly curve over years): one ``GROUP BY`` of the
window index.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ...model.timeline import OutcomeWindow, window_seconds
from .dialect import Dialect
from .program import Program, one, rows

__all__ = ["MAX_RANGE_WINDOWS", "outcome_timeline"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_RANGE_WINDOWS = 400
OUTCOMES = ("success", "partial_success", "failure")


def _bounds(since: datetime | None, until: datetime | None) -> tuple[str, list[object]]:
    clauses = ["end_time IS NOT NULL"]
    args: list[object] = []
    if since is not None:
        clauses.append("end_time >= ?")
        args.append(since)
    if until is not None:
        clauses.append("end_time < ?")
        args.append(until)
    return " AND ".join(clauses), args


def outcome_timeline(
    d: Dialect, window: str, since: datetime | None, until: datetime | None
) -> Program[list[OutcomeWindow]]:
    """Windows with at least one episode completed in ``[since, until)``, oldest first."""
    seconds, offset = window_seconds(window)
    condition, raw = _bounds(since, until)
    args = [d.to_time(v) if isinstance(v, datetime) else v for v in raw]
    span = yield one(f"SELECT min(end_time), max(end_time) FROM episodes WHERE {condition}", args)
    if span is None or span[0] is None:
        return []
    first = _index(d.from_time(span[0]), seconds, offset)
    last = _index(d.from_time(span[1]), seconds, offset)
    if last - first + 1 > MAX_RANGE_WINDOWS:
        return (yield from _grouped(d, seconds, offset, condition, args))
    counts = ", ".join(
        f"(SELECT count(*) FROM episodes WHERE outcome_type = '{kind}' "
        "AND end_time >= ? AND end_time < ?)"
        for kind in OUTCOMES
    )
    out: list[OutcomeWindow] = []
    for index in range(first, last + 1):
        start = _start(index, seconds, offset)
        end = start + timedelta(seconds=seconds)
        lo = d.to_time(max(start, since) if since is not None else start)
        hi = d.to_time(min(end, until) if until is not None else end)
        row = yield one(f"SELECT {counts}", [lo, hi] * len(OUTCOMES))
        ok, partial, failed = (int(n or 0) for n in row)
        if ok + partial + failed:
            out.append(OutcomeWindow(start, end, ok + partial + failed, ok, partial, failed))
    return out


def _index(when: datetime, seconds: int, offset: int) -> int:
    return int(((when - EPOCH).total_seconds() + offset) // seconds)


def _start(index: int, seconds: int, offset: int) -> datetime:
    return EPOCH + timedelta(seconds=index * seconds - offset)


def _grouped(
    d: Dialect, seconds: int, offset: int, condition: str, args: list[object]
) -> Program[list[OutcomeWindow]]:
    bucket = d.time_bucket("end_time", seconds, offset)
    found = yield rows(
        f"SELECT {bucket} AS bucket, count(*),"
        " sum(CASE WHEN outcome_type = 'success' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN outcome_type = 'partial_success' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN outcome_type = 'failure' THEN 1 ELSE 0 END)"
        f" FROM episodes WHERE {condition} GROUP BY 1 ORDER BY 1",
        args,
    )
    out: list[OutcomeWindow] = []
    for index, n, ok, partial, failed in found:
        start = _start(int(index), seconds, offset)
        out.append(
            OutcomeWindow(
                start, start + timedelta(seconds=seconds), int(n), int(ok or 0),
                int(partial or 0), int(failed or 0),
            )
        )  # fmt: skip
    return out
