"""The learning curve (``outcome_timeline``) is aggregated in SQL on every durable store:
windows by completion time, outcomes counted, weeks starting on Monday, since/until bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from self_learning_memory import (
    FailureOutcome,
    PartialSuccessOutcome,
    SuccessOutcome,
    TaskContext,
    ValidationError,
)
from self_learning_memory.storage.codec import to_us
from self_learning_memory.storage.sql import timeline

from .support import Backend

pytestmark = pytest.mark.integration

# Wednesday 2026-03-04 and the following days
BASE = datetime(2026, 3, 4, tzinfo=UTC)
# (completion time, outcome)
PLAN = [
    (BASE + timedelta(hours=1, minutes=5), "success"),
    (BASE + timedelta(hours=1, minutes=50), "failure"),
    (BASE + timedelta(hours=23), "success"),
    (BASE + timedelta(days=1, hours=2), "partial"),
    (BASE + timedelta(days=5, hours=3), "success"),  # Monday 2026-03-09: the next week
]


def _outcome(kind: str) -> SuccessOutcome | PartialSuccessOutcome | FailureOutcome:
    if kind == "success":
        return SuccessOutcome(verdict="done")
    if kind == "partial":
        return PartialSuccessOutcome(verdict="half", completed=["a"], failed=["b"])
    return FailureOutcome(reason="broke", error_details="boom")


@pytest.fixture(params=["ranges", "grouped"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both plans of storage/sql/timeline.py give the same windows: index range counts per
    window, or (more windows than MAX_RANGE_WINDOWS) one GROUP BY."""
    if request.param == "grouped":
        monkeypatch.setattr(timeline, "MAX_RANGE_WINDOWS", 0)
    return str(request.param)


@pytest.mark.usefixtures("plan")
async def test_outcome_timeline_windows(backend: Backend) -> None:
    async with backend.open() as memory:
        ids = []
        for n, (_when, kind) in enumerate(PLAN):
            eid = await memory.start_episode(f"task {n}", TaskContext(domain="ops"))
            await memory.complete_episode(eid, _outcome(kind))
            ids.append(eid)
        open_one = await memory.start_episode("still running", TaskContext(domain="ops"))
        for eid, (when, _kind) in zip(ids, PLAN, strict=True):
            value = str(to_us(when)) if backend.is_sqlite else f"'{when.isoformat()}'"
            backend.execute(f"UPDATE episodes SET end_time = {value} WHERE episode_id = '{eid}'")

        days = await memory.outcome_timeline("day")
        assert [(w.start, w.episodes, w.successes, w.partial, w.failures) for w in days] == [
            (BASE, 3, 2, 0, 1),
            (BASE + timedelta(days=1), 1, 0, 1, 0),
            (BASE + timedelta(days=5), 1, 1, 0, 0),
        ]
        assert days[0].success_rate == pytest.approx(2 / 3)
        assert all(w.end - w.start == timedelta(days=1) for w in days)

        hours = await memory.outcome_timeline("hour", since=BASE, until=BASE + timedelta(days=1))
        assert [(w.start, w.episodes) for w in hours] == [
            (BASE + timedelta(hours=1), 2),
            (BASE + timedelta(hours=23), 1),
        ]

        weeks = await memory.outcome_timeline("week")
        monday = BASE - timedelta(days=2)
        assert [(w.start, w.episodes, w.successes) for w in weeks] == [
            (monday, 4, 2),
            (monday + timedelta(days=7), 1, 1),
        ]
        assert all(w.start.weekday() == 0 for w in weeks)

        later = await memory.outcome_timeline("day", since=BASE + timedelta(days=1))
        assert [w.episodes for w in later] == [1, 1]
        assert open_one not in ids  # the open episode is in no window
        assert sum(w.episodes for w in days) == len(PLAN)


async def test_outcome_timeline_refuses_bad_arguments(backend: Backend) -> None:
    async with backend.open() as memory:
        with pytest.raises(ValidationError, match="window"):
            await memory.outcome_timeline("month")
        with pytest.raises(ValidationError, match="since"):
            await memory.outcome_timeline("day", since=BASE, until=BASE)
        with pytest.raises(ValidationError, match="naive"):
            await memory.outcome_timeline("day", since=datetime(2026, 1, 1))
