"""Episode steps read as an activity log: totals, tools, error patterns, hourly trends, search
and export over a time window, all in SQL and all bounded.

A window is the steps of the episodes started after ``since`` (the reference behaviour keeps an
episode when ``start_time > now - since``), at most ``MAX_WINDOW_EPISODES`` newest episodes and
``MAX_WINDOW_STEPS`` steps; ``truncated`` says when a bound cut the window. The episode time index
picks the episodes, the steps' primary key finds their steps: no full table scan.

Error types follow the reference: a timeout result, or an error message containing "timeout"
(or "timed out") is ``timeout``; "connection" is ``connection``; "permission" is
``permission``; anything else, including a step without a result, is ``other``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import CapabilityUnavailableError, ValidationError
from .codec import from_us, to_us
from .sqlite_connection import scalar

if TYPE_CHECKING:
    import apsw

    from .backend import StorageBackend
    from .sqlite_connection import SQLiteConnection

__all__ = [
    "ERROR_TYPES",
    "MAX_WINDOW_EPISODES",
    "MAX_WINDOW_STEPS",
    "ErrorPattern",
    "HourBucket",
    "StepActivity",
    "StepQueries",
    "StepRecord",
    "ToolUsage",
]

MAX_WINDOW_EPISODES = 10_000
MAX_WINDOW_STEPS = 200_000
MAX_MESSAGE_CHARS = 200
MAX_QUERY_CHARS = 1_000
ERROR_TYPES = ("timeout", "connection", "permission", "other")
_HOUR_US = 3_600_000_000

# The window: newest episodes since a time, then their steps (both capped).
_WINDOW = """
WITH win_episodes AS (
    SELECT episode_id FROM episodes WHERE start_time > ? ORDER BY start_time DESC LIMIT ?
),
win AS (
    SELECT s.episode_id, s.step_number, s.timestamp, s.tool, s.action, s.latency_ms,
           s.tokens_used,
           coalesce(json_extract(s.result, '$.type'), 'none') AS rtype,
           coalesce(json_extract(s.result, '$.output'), json_extract(s.result, '$.message'), '')
               AS message
    FROM win_episodes w JOIN steps s ON s.episode_id = w.episode_id
    LIMIT ?
)
"""
_ERROR_TYPE = """
CASE WHEN rtype = 'timeout' OR lower(message) LIKE '%timeout%' OR lower(message) LIKE '%timed out%'
          THEN 'timeout'
     WHEN lower(message) LIKE '%connection%' THEN 'connection'
     WHEN lower(message) LIKE '%permission%' THEN 'permission'
     ELSE 'other' END
"""


@dataclass(frozen=True)
class ToolUsage:
    tool: str
    usage_count: int
    success_rate: float
    average_latency_ms: float


@dataclass(frozen=True)
class ErrorPattern:
    error_type: str
    occurrences: int
    affected_episodes: int
    common_messages: list[str]


@dataclass(frozen=True)
class HourBucket:
    hour: datetime
    steps: int
    episodes: int
    success_rate: float
    average_latency_ms: float


@dataclass(frozen=True)
class StepActivity:
    """Totals over a window."""

    since: datetime
    total_episodes: int
    total_steps: int
    successful_steps: int
    failed_steps: int
    unique_tools: int
    average_latency_ms: float
    total_tokens: int
    first_step: datetime | None
    last_step: datetime | None
    truncated: bool

    @property
    def success_rate(self) -> float:
        return self.successful_steps / self.total_steps if self.total_steps else 0.0

    @property
    def error_rate(self) -> float:
        return self.failed_steps / self.total_steps if self.total_steps else 0.0


@dataclass(frozen=True)
class StepRecord:
    """One step as a log record."""

    timestamp: datetime
    episode_id: str
    step_number: int
    tool: str
    action: str
    result: str  # success, error, timeout or none
    message: str
    latency_ms: int
    tokens_used: int | None
    error_type: str | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp.isoformat(),
            "episode_id": self.episode_id,
            "step_number": self.step_number,
            "tool": self.tool,
            "action": self.action,
            "result": self.result,
            "message": self.message,
            "latency_ms": self.latency_ms,
            "tokens_used": self.tokens_used,
            "error_type": self.error_type,
        }


def _record(row: tuple[Any, ...]) -> StepRecord:
    episode_id, number, ts, tool, action, latency, tokens, rtype, message, etype = row
    return StepRecord(
        timestamp=from_us(int(ts)),
        episode_id=str(episode_id),
        step_number=int(number),
        tool=str(tool),
        action=str(action),
        result=str(rtype),
        message=str(message),
        latency_ms=int(latency),
        tokens_used=None if tokens is None else int(tokens),
        error_type=None if rtype == "success" else str(etype),
    )


_RECORD_COLUMNS = (
    f"episode_id, step_number, timestamp, tool, action, latency_ms, tokens_used, rtype, message, "
    f"{_ERROR_TYPE} AS etype"
)


def _check_bound(name: str, value: int, maximum: int) -> None:
    if not 1 <= value <= maximum:
        raise ValidationError(name, f"{value} is out of range", f"1..{maximum}")


class StepQueries:
    """Read-only step queries on the embedded SQLite store (on its connection thread)."""

    def __init__(self, db: SQLiteConnection) -> None:
        self._db = db

    @classmethod
    def of(cls, storage: StorageBackend) -> StepQueries:
        """The step queries of a memory's storage (its ``capabilities.step_queries``: the
        embedded SQLite store's, also behind the resilience wrapper)."""
        queries = storage.capabilities.step_queries
        if queries is None:
            raise CapabilityUnavailableError(
                f"Step log queries need the embedded SQLite store, not '{storage.name}'."
            )
        return queries

    @staticmethod
    def _window_args(since: datetime) -> list[Any]:
        return [to_us(since), MAX_WINDOW_EPISODES, MAX_WINDOW_STEPS]

    # -- aggregates ------------------------------------------------------------------------
    async def activity(self, since: datetime) -> StepActivity:
        def run(conn: apsw.Connection) -> StepActivity:
            row = conn.execute(
                _WINDOW + "SELECT count(*), coalesce(sum(rtype = 'success'), 0), "
                "count(DISTINCT tool), coalesce(avg(latency_ms), 0), "
                "coalesce(sum(tokens_used), 0), min(timestamp), max(timestamp) FROM win",
                self._window_args(since),
            ).fetchone()
            assert row is not None
            steps, ok, tools, latency, tokens, first, last = row
            episodes = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM episodes WHERE start_time > ? LIMIT ?)",
                (to_us(since), MAX_WINDOW_EPISODES + 1),
            ).fetchone()
            assert episodes is not None
            total_episodes = int(episodes[0])
            return StepActivity(
                since=since,
                total_episodes=min(total_episodes, MAX_WINDOW_EPISODES),
                total_steps=int(steps),
                successful_steps=int(ok),
                failed_steps=int(steps) - int(ok),
                unique_tools=int(tools),
                average_latency_ms=round(float(latency), 3),
                total_tokens=int(tokens),
                first_step=None if first is None else from_us(int(first)),
                last_step=None if last is None else from_us(int(last)),
                truncated=total_episodes > MAX_WINDOW_EPISODES or int(steps) >= MAX_WINDOW_STEPS,
            )

        return await self._db.read_snapshot(run)

    async def top_tools(self, since: datetime, limit: int = 10) -> list[ToolUsage]:
        _check_bound("limit", limit, 1000)

        def run(conn: apsw.Connection) -> list[ToolUsage]:
            rows = conn.execute(
                _WINDOW + "SELECT tool, count(*) AS n, avg(rtype = 'success'), avg(latency_ms) "
                "FROM win GROUP BY tool ORDER BY n DESC, tool LIMIT ?",
                [*self._window_args(since), limit],
            )
            return [
                ToolUsage(str(t), int(n), round(float(rate), 4), round(float(lat), 3))
                for t, n, rate, lat in rows
            ]

        return await self._db.read(run)

    async def error_patterns(self, since: datetime, messages: int = 3) -> list[ErrorPattern]:
        """Failed steps grouped by error type, with the most common messages of each."""
        _check_bound("messages", messages, 20)

        def run(conn: apsw.Connection) -> list[ErrorPattern]:
            errors = _WINDOW + (
                f", errs AS (SELECT episode_id, substr(message, 1, {MAX_MESSAGE_CHARS}) AS msg, "
                f"{_ERROR_TYPE} AS etype FROM win WHERE rtype != 'success') "
            )
            groups: list[tuple[Any, ...]] = conn.execute(
                errors + "SELECT etype, count(*), count(DISTINCT episode_id) FROM errs "
                "GROUP BY etype ORDER BY count(*) DESC, etype",
                self._window_args(since),
            ).fetchall()
            common: dict[str, list[str]] = {}
            for etype, msg in conn.execute(
                errors + "SELECT etype, msg FROM (SELECT etype, msg, row_number() OVER "
                "(PARTITION BY etype ORDER BY count(*) DESC, msg) AS r FROM errs "
                "WHERE msg != '' GROUP BY etype, msg) WHERE r <= ? ORDER BY etype, r",
                [*self._window_args(since), messages],
            ):
                common.setdefault(str(etype), []).append(str(msg))
            return [
                ErrorPattern(str(t), int(n), int(eps), common.get(str(t), []))
                for t, n, eps in groups
            ]

        return await self._db.read_snapshot(run)

    async def hourly(self, since: datetime, limit: int = 1000) -> list[HourBucket]:
        """Steps per hour of their timestamp, oldest first (the newest ``limit`` hours)."""
        _check_bound("limit", limit, 10_000)

        def run(conn: apsw.Connection) -> list[HourBucket]:
            rows = conn.execute(
                _WINDOW + f"SELECT (timestamp / {_HOUR_US}) * {_HOUR_US} AS h, count(*), "
                "count(DISTINCT episode_id), avg(rtype = 'success'), avg(latency_ms) "
                "FROM win GROUP BY h ORDER BY h DESC LIMIT ?",
                [*self._window_args(since), limit],
            ).fetchall()
            return [
                HourBucket(from_us(int(h)), int(n), int(e), round(float(r), 4), round(float(lt), 3))
                for h, n, e, r, lt in reversed(rows)
            ]

        return await self._db.read(run)

    async def episodes_by_hour(self, since: datetime, limit: int = 1000) -> dict[str, int]:
        """Episodes started per hour (ISO hour -> count), oldest first."""
        _check_bound("limit", limit, 10_000)

        def run(conn: apsw.Connection) -> dict[str, int]:
            rows = conn.execute(
                f"SELECT (start_time / {_HOUR_US}) * {_HOUR_US} AS h, count(*) FROM "
                "(SELECT start_time FROM episodes WHERE start_time > ? "
                "ORDER BY start_time DESC LIMIT ?) GROUP BY h ORDER BY h DESC LIMIT ?",
                (to_us(since), MAX_WINDOW_EPISODES, limit),
            ).fetchall()
            return {from_us(int(h)).isoformat(): int(n) for h, n in reversed(rows)}

        return await self._db.read(run)

    # -- records ---------------------------------------------------------------------------
    async def search(self, query: str, since: datetime, limit: int = 50) -> list[StepRecord]:
        """Steps whose tool, action or result text contains ``query`` (case-insensitive),
        newest first."""
        _check_bound("limit", limit, 1000)
        text = query.strip().lower()
        if not text:
            raise ValidationError("QUERY", "is empty", "1..1000 characters")
        if len(text) > MAX_QUERY_CHARS:
            raise ValidationError(
                "QUERY", f"is {len(text)} characters long", f"{MAX_QUERY_CHARS} characters"
            )
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def run(conn: apsw.Connection) -> list[StepRecord]:
            rows = conn.execute(
                _WINDOW + f"SELECT {_RECORD_COLUMNS} FROM win WHERE lower(tool) LIKE ? ESCAPE '\\' "
                "OR lower(action) LIKE ? ESCAPE '\\' OR lower(message) LIKE ? ESCAPE '\\' "
                "ORDER BY timestamp DESC, episode_id, step_number LIMIT ?",
                [*self._window_args(since), pattern, pattern, pattern, limit],
            )
            return [_record(r) for r in rows]

        return await self._db.read(run)

    async def records(
        self,
        since: datetime,
        limit: int,
        after: tuple[int, str, int] | None = None,
    ) -> list[StepRecord]:
        """A page of steps, oldest first, after the key ``(timestamp_us, episode_id,
        step_number)`` of the previous page's last record (keyset pagination)."""
        _check_bound("limit", limit, 10_000)
        key = after or (-1, "", 0)

        def run(conn: apsw.Connection) -> list[StepRecord]:
            rows = conn.execute(
                _WINDOW + f"SELECT {_RECORD_COLUMNS} FROM win "
                "WHERE (timestamp, episode_id, step_number) > (?, ?, ?) "
                "ORDER BY timestamp, episode_id, step_number LIMIT ?",
                [*self._window_args(since), *key, limit],
            )
            return [_record(r) for r in rows]

        return await self._db.read(run)

    @staticmethod
    def page_key(record: StepRecord) -> tuple[int, str, int]:
        return (to_us(record.timestamp), record.episode_id, record.step_number)

    # -- store facts -----------------------------------------------------------------------
    async def first_episode_time(self) -> datetime | None:
        def run(conn: apsw.Connection) -> datetime | None:
            first = scalar(conn, "SELECT min(start_time) FROM episodes")
            return None if first is None else from_us(int(first))

        return await self._db.read(run)

    async def recent_descriptions(self, limit: int) -> list[tuple[uuid.UUID, str]]:
        """The newest completed episodes' task descriptions (retrieval probes use them)."""
        _check_bound("limit", limit, 100)

        def run(conn: apsw.Connection) -> list[tuple[uuid.UUID, str]]:
            rows = conn.execute(
                "SELECT episode_id, task_description FROM episodes WHERE end_time IS NOT NULL "
                "ORDER BY end_time DESC LIMIT ?",
                (limit,),
            )
            return [(uuid.UUID(str(i)), str(d)) for i, d in rows]

        return await self._db.read(run)
