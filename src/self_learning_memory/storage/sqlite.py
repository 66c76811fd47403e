"""The embedded durable store: one SQLite file through apsw (WAL, FTS5, parameterised SQL).

Safe for many processes at once: each holds its own connection, writes are short
``BEGIN IMMEDIATE`` transactions, and lock waits are retried inside a budget.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar, cast

import apsw

from ..errors import InvalidStateError, NotFoundError, ValidationError
from ..model.episode import ComplexityLevel, Episode, ExecutionStep, TaskContext, TaskType
from ..model.pattern import AnyPattern, Heuristic
from ..model.records import (
    CompletionRecord,
    EpisodeCandidate,
    EpisodeFilters,
    EpisodeState,
    HealthReport,
    PatternFilters,
    StorageStats,
)
from ..model.usage import PatternUsage
from . import sqlite_learning as learning
from .capabilities import Capabilities
from .codec import (
    EPISODE_COLUMNS,
    STEP_COLUMNS,
    dump_json,
    episode_from_row,
    from_us,
    pattern_from_json,
    step_from_row,
    step_values,
    to_us,
)
from .migrations import SQLITE_MIGRATIONS
from .sandbox_runs import SQLiteSandboxRuns
from .sqlite_connection import SQLiteConnection, scalar
from .sqlite_terms import TermSelector
from .sqlite_vectors import SQLiteVectors
from .step_queries import StepQueries
from .transfer import SQLiteTransfer

__all__ = ["SQLiteStorage"]

T = TypeVar("T")

_CANDIDATE_COLUMNS = (
    "e.episode_id, e.task_description, e.task_type, e.outcome_type, e.reward_total, "
    "e.end_time, e.tool_summary, e.domain, e.language, e.framework, e.complexity, e.tags"
)
_STATE_SQL = (
    "SELECT end_time, step_count, last_step_number, learning_status FROM episodes "
    "WHERE episode_id = ?"
)


def _where(filters: EpisodeFilters, alias: str = "") -> tuple[list[str], list[Any]]:
    p = f"{alias}." if alias else ""
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("task_type", filters.task_type.value if filters.task_type else None),
        ("domain", filters.domain),
        ("language", filters.language),
        ("framework", filters.framework),
        ("outcome_type", filters.outcome),
    ):
        if value is not None:
            clauses.append(f"{p}{column} = ?")
            args.append(value)
    if filters.completed is True:
        clauses.append(f"{p}end_time IS NOT NULL")
    elif filters.completed is False:
        clauses.append(f"{p}end_time IS NULL")
    if filters.tag is not None:
        clauses.append(f"EXISTS (SELECT 1 FROM json_each({p}tags) WHERE value = ?)")
        args.append(filters.tag)
    if filters.since is not None:
        clauses.append(f"{p}start_time >= ?")
        args.append(to_us(filters.since))
    if filters.until is not None:
        clauses.append(f"{p}start_time < ?")
        args.append(to_us(filters.until))
    return clauses, args


_Parsed = tuple[
    uuid.UUID,
    str,
    TaskType,
    TaskContext,
    datetime | None,
    tuple[str, ...],
    str | None,
    float | None,
]
_PARSED: OrderedDict[str, _Parsed] = OrderedDict()
_PARSED_MAX = 100_000


def _candidate(row: tuple[Any, ...], lexical: float | None, source: str) -> EpisodeCandidate:
    """A candidate from ``_CANDIDATE_COLUMNS``. Only completed episodes are candidates and they
    no longer change, so their parsed fields are memoised per process (bounded)."""
    parsed = _PARSED.get(row[0])
    if parsed is None:
        # Built from columns this store wrote itself: no re-validation on the hot path.
        context = TaskContext.model_construct(
            domain=row[7],
            language=row[8],
            framework=row[9],
            complexity=ComplexityLevel(row[10]),
            tags=json.loads(row[11]),
        )
        parsed = (
            uuid.UUID(row[0]),
            row[1],
            TaskType(row[2]),
            context,
            None if row[5] is None else from_us(row[5]),
            tuple(json.loads(row[6])),
            row[3],
            row[4],
        )
        _PARSED[row[0]] = parsed
        if len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    eid, description, task_type, context, end_time, tools, outcome_type, reward = parsed
    return EpisodeCandidate(
        episode_id=eid,
        task_description=description,
        task_type=task_type,
        context=context,
        outcome_type=outcome_type,
        reward_total=reward,
        end_time=end_time,
        tools=tools,
        lexical=lexical,
        sources=(source,),
    )


class SQLiteStorage(SQLiteSandboxRuns, SQLiteVectors):
    """The embedded default :class:`StorageBackend`."""

    name = "sqlite"

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 30_000, synchronous: str = "normal"
    ) -> None:
        self.path = Path(path)
        self._terms = TermSelector()
        self._db = SQLiteConnection(
            self.path,
            migrations=SQLITE_MIGRATIONS,
            busy_timeout_ms=busy_timeout_ms,
            synchronous=synchronous,
        )

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def initialize(self) -> None:
        from .wal_check import note_wal_loss

        # before SQLite's recovery forgets which committed WAL frames a crash left damaged (the
        # embedded store only: a Turso replica's remote is the truth)
        if self.name == "sqlite":
            await asyncio.to_thread(note_wal_loss, self.path)
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    @property
    def capabilities(self) -> Capabilities:
        """The database file, step queries, maintenance and row transfer, all on this store's
        connection (built on each access: a Turso replica may switch its connection)."""
        return Capabilities(
            local_file=self.path,
            step_queries=StepQueries(self._db),
            maintenance=self,
            transfer=SQLiteTransfer(self._db),
        )

    # -- episodes ------------------------------------------------------------------------
    async def create_episode(self, episode: Episode) -> None:
        ctx = episode.context
        values = (
            str(episode.episode_id),
            episode.task_type.value,
            episode.task_description,
            ctx.domain,
            ctx.language,
            ctx.framework,
            ctx.complexity.value,
            dump_json(ctx.tags),
            ctx.model_dump_json(),
            to_us(episode.start_time),
            dump_json(episode.metadata),
            to_us(episode.start_time),
        )

        def run(conn: apsw.Connection) -> None:
            conn.execute(
                "INSERT INTO episodes (episode_id, task_type, task_description, domain, language, "
                "framework, complexity, tags, context, start_time, metadata, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )

        await self._db.write(run)

    async def get_episode_state(self, episode_id: uuid.UUID) -> EpisodeState | None:
        def run(conn: apsw.Connection) -> EpisodeState | None:
            row = conn.execute(_STATE_SQL, (str(episode_id),)).fetchone()
            if row is None:
                return None
            return EpisodeState(episode_id, row[0] is not None, row[1], row[2], row[3])

        return await self._db.read(run)

    async def append_steps(self, episode_id: uuid.UUID, steps: list[ExecutionStep]) -> EpisodeState:
        eid = str(episode_id)
        rows = [step_values(episode_id, s) for s in steps]

        def run(conn: apsw.Connection) -> EpisodeState:
            row = conn.execute(_STATE_SQL, (eid,)).fetchone()
            if row is None:
                raise NotFoundError("episode", eid)
            if row[0] is not None:
                raise InvalidStateError(f"Episode {eid} is completed; steps cannot be added to it.")
            last = row[2]
            for step in steps:
                if step.step_number <= last:
                    raise ValidationError(
                        "step_number",
                        f"{step.step_number} is not after the last stored step {last} "
                        f"of episode {eid}",
                        f"> {last}",
                    )
                last = step.step_number
            conn.executemany(
                f"INSERT INTO steps ({STEP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows
            )
            count = row[1] + len(steps)
            conn.execute(
                "UPDATE episodes SET step_count = ?, last_step_number = ?, updated_at = ? "
                "WHERE episode_id = ?",
                (count, last, int(time.time() * 1_000_000), eid),
            )
            return EpisodeState(episode_id, False, count, last, row[3])

        return await self._db.write(run)

    async def commit_completion(self, record: CompletionRecord) -> Episode:
        return await self._db.write(lambda conn: learning.commit_completion(conn, record))

    @staticmethod
    def _load(conn: apsw.Connection, rows: Iterable[tuple[Any, ...]]) -> list[Episode]:
        rows = list(rows)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        steps: dict[str, list[ExecutionStep]] = {i: [] for i in ids}
        for step_row in conn.execute(
            f"SELECT {STEP_COLUMNS} FROM steps WHERE episode_id IN "
            f"(SELECT value FROM json_each(?)) ORDER BY episode_id, step_number",
            (json.dumps(ids),),
        ):
            steps[step_row[0]].append(step_from_row(step_row))
        return [episode_from_row(r, steps[r[0]]) for r in rows]

    async def get_episode(self, episode_id: uuid.UUID) -> Episode | None:
        found = await self.get_episodes([episode_id])
        return found[0] if found else None

    async def get_episodes(self, episode_ids: list[uuid.UUID]) -> list[Episode]:
        ids = json.dumps([str(i) for i in episode_ids])

        def run(conn: apsw.Connection) -> list[Episode]:
            rows = conn.execute(
                f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE episode_id IN "
                "(SELECT value FROM json_each(?))",
                (ids,),
            ).fetchall()
            by_id = {e.episode_id: e for e in self._load(conn, rows)}
            return [by_id[i] for i in episode_ids if i in by_id]

        return await self._db.read_snapshot(run)

    async def list_episodes(
        self, filters: EpisodeFilters, limit: int, offset: int
    ) -> list[Episode]:
        clauses, args = _where(filters)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT {EPISODE_COLUMNS} FROM episodes {where} "
            "ORDER BY start_time DESC, episode_id LIMIT ? OFFSET ?"
        )

        def run(conn: apsw.Connection) -> list[Episode]:
            return self._load(conn, conn.execute(sql, (*args, limit, offset)).fetchall())

        return await self._db.read_snapshot(run)

    async def count_episodes(self, filters: EpisodeFilters) -> int:
        clauses, args = _where(filters)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return await self._db.read(
            lambda conn: int(scalar(conn, f"SELECT count(*) FROM episodes {where}", args))
        )

    async def delete_episode(self, episode_id: uuid.UUID) -> bool:
        def run(conn: apsw.Connection) -> bool:
            conn.execute("DELETE FROM episodes WHERE episode_id = ?", (str(episode_id),))
            return bool(conn.changes())

        return await self._db.write(run)

    # -- retrieval candidates ------------------------------------------------------------
    async def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        if not terms:
            return []
        clauses, args = _where(filters.model_copy(update={"completed": True}), "e")
        sql = (
            f"SELECT {_CANDIDATE_COLUMNS}, episodes_fts.rank FROM episodes_fts "
            "JOIN episodes e ON e.rowid = episodes_fts.rowid "
            f"WHERE episodes_fts MATCH ? AND {' AND '.join(clauses)} ORDER BY rank LIMIT ?"
        )

        def run(conn: apsw.Connection) -> list[EpisodeCandidate]:
            chosen = self._terms.select(conn, terms)
            if not chosen:
                return []
            query = " OR ".join('"' + t.replace('"', '""') + '"' for t in chosen)
            rows = conn.execute(sql, (query, *args, limit)).fetchall()
            return [_candidate(r, -float(cast(float, r[12])), "fts5") for r in rows]

        return await self._db.read(run)

    async def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        clauses, args = _where(filters.model_copy(update={"completed": True}), "e")
        sql = (
            f"SELECT {_CANDIDATE_COLUMNS} FROM episodes e WHERE e.domain = ? AND "
            f"{' AND '.join(clauses)} ORDER BY e.end_time DESC LIMIT ?"
        )

        def run(conn: apsw.Connection) -> list[EpisodeCandidate]:
            rows = conn.execute(sql, (context.domain, *args, limit)).fetchall()
            return [_candidate(r, None, "context:domain") for r in rows]

        return await self._db.read(run)

    async def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]:
        if not episode_ids:
            return []
        clauses, args = _where(filters.model_copy(update={"completed": True}), "e")
        sql = (
            f"SELECT {_CANDIDATE_COLUMNS} FROM episodes e WHERE e.episode_id IN "
            f"(SELECT value FROM json_each(?)) AND {' AND '.join(clauses)}"
        )
        ids = json.dumps([str(i) for i in episode_ids])

        def run(conn: apsw.Connection) -> list[EpisodeCandidate]:
            return [_candidate(r, None, "vector") for r in conn.execute(sql, (ids, *args))]

        return await self._db.read(run)

    # -- patterns and heuristics ---------------------------------------------------------
    @staticmethod
    def _patterns(rows: Iterable[tuple[Any, ...]]) -> list[tuple[AnyPattern, PatternUsage]]:
        return [(pattern_from_json(r[0]), learning.usage_from_row(r[1:])) for r in rows]

    async def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        cols = f"pattern_id, pattern_data, {learning.USAGE_COLUMNS}"
        sql = (
            f"SELECT {cols} FROM (SELECT * FROM patterns WHERE context_domain = ? "
            "ORDER BY occurrence_count DESC LIMIT ?) UNION "
            f"SELECT {cols} FROM (SELECT * FROM patterns WHERE context_language = ? "
            "ORDER BY occurrence_count DESC LIMIT ?) UNION "
            f"SELECT {cols} FROM (SELECT * FROM patterns ORDER BY occurrence_count DESC LIMIT ?)"
        )

        def run(conn: apsw.Connection) -> list[tuple[AnyPattern, PatternUsage]]:
            args = (context.domain, limit, context.language, limit, limit)
            return self._patterns(r[1:] for r in conn.execute(sql, args))

        return await self._db.read(run)

    async def get_pattern(self, pattern_id: uuid.UUID) -> tuple[AnyPattern, PatternUsage] | None:
        sql = f"SELECT pattern_data, {learning.USAGE_COLUMNS} FROM patterns WHERE pattern_id = ?"
        found = await self._db.read(lambda c: self._patterns(c.execute(sql, (str(pattern_id),))))
        return found[0] if found else None

    async def pattern_episodes(
        self, pattern_ids: list[uuid.UUID], per_pattern: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """The episodes each pattern was extracted from (its evidence), newest first."""
        ids = [str(i) for i in pattern_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        sql = (
            "SELECT pattern_id, episode_id FROM ("
            " SELECT ep.pattern_id, ep.episode_id, row_number() OVER ("
            "  PARTITION BY ep.pattern_id ORDER BY e.start_time DESC) AS n"
            " FROM episode_patterns ep JOIN episodes e ON e.episode_id = ep.episode_id"
            f" WHERE ep.pattern_id IN ({marks})) WHERE n <= ?"
        )

        def run(conn: apsw.Connection) -> dict[uuid.UUID, list[uuid.UUID]]:
            out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in pattern_ids}
            for pid, eid in conn.execute(sql, (*ids, per_pattern)):
                out[uuid.UUID(pid)].append(uuid.UUID(eid))
            return out

        return await self._db.read(run)

    async def list_patterns(
        self, filters: PatternFilters, limit: int, offset: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        clauses = ["success_rate >= ?", "occurrence_count >= ?"]
        args: list[Any] = [filters.min_success_rate, filters.min_occurrences]
        if filters.pattern_type is not None:
            clauses.append("pattern_type = ?")
            args.append(filters.pattern_type)
        if filters.domain is not None:
            clauses.append("context_domain = ?")
            args.append(filters.domain)
        if filters.min_confidence > 0:
            clauses.append("success_rate * sqrt(occurrence_count) >= ?")
            args.append(filters.min_confidence)
        sql = (
            f"SELECT pattern_data, {learning.USAGE_COLUMNS} FROM patterns WHERE "
            f"{' AND '.join(clauses)} ORDER BY occurrence_count DESC, success_rate DESC, "
            "pattern_id LIMIT ? OFFSET ?"
        )
        return await self._db.read(lambda c: self._patterns(c.execute(sql, (*args, limit, offset))))

    async def record_pattern_use(
        self, pattern_ids: list[uuid.UUID], *, applied: bool, success: bool
    ) -> None:
        if pattern_ids:
            await self._db.write(
                lambda c: learning.record_use(c, pattern_ids, applied=applied, success=success)
            )

    async def decay_patterns(self, *, force: bool, min_effectiveness: float) -> dict[str, int]:
        return await self._db.write(
            lambda c: learning.decay(c, force=force, min_effectiveness=min_effectiveness)
        )

    async def heuristic_candidates(self, context: TaskContext, limit: int) -> list[Heuristic]:
        cols = learning.HEURISTIC_COLUMNS
        sql = (
            f"SELECT {cols} FROM (SELECT * FROM heuristics WHERE domain = ? "
            "ORDER BY confidence DESC LIMIT ?) UNION "
            f"SELECT {cols} FROM (SELECT * FROM heuristics ORDER BY confidence DESC LIMIT ?)"
        )
        return await self._db.read(
            lambda c: [
                learning.heuristic_from_row(r)
                for r in c.execute(sql, (context.domain, limit, limit))
            ]
        )

    async def get_heuristic(self, heuristic_id: uuid.UUID) -> Heuristic | None:
        sql = f"SELECT {learning.HEURISTIC_COLUMNS} FROM heuristics WHERE heuristic_id = ?"
        rows = await self._db.read(lambda c: c.execute(sql, (str(heuristic_id),)).fetchall())
        return learning.heuristic_from_row(rows[0]) if rows else None

    async def list_heuristics(self, limit: int, offset: int) -> list[Heuristic]:
        sql = (
            f"SELECT {learning.HEURISTIC_COLUMNS} FROM heuristics "
            "ORDER BY confidence DESC, heuristic_id LIMIT ? OFFSET ?"
        )
        rows = await self._db.read(lambda c: c.execute(sql, (limit, offset)).fetchall())
        return [learning.heuristic_from_row(r) for r in rows]

    # -- learning queue ------------------------------------------------------------------
    async def claim_learning_job(self, worker: str, claim_timeout_s: float) -> uuid.UUID | None:
        def run(conn: apsw.Connection) -> uuid.UUID | None:
            now = int(time.time() * 1_000_000)
            stale = now - int(claim_timeout_s * 1_000_000)
            row = conn.execute(
                "UPDATE learning_jobs SET claimed_by = ?, claimed_at = ?, attempts = attempts + 1 "
                "WHERE episode_id = (SELECT episode_id FROM learning_jobs WHERE claimed_at IS NULL "
                "OR claimed_at < ? ORDER BY enqueued_at LIMIT 1) RETURNING episode_id",
                (worker, now, stale),
            ).fetchone()
            return None if row is None else uuid.UUID(row[0])

        return await self._db.write(run)

    async def fail_learning_job(self, episode_id: uuid.UUID, error: str, max_attempts: int) -> bool:
        """Release a failed job for another try; give up (and say so) after ``max_attempts``."""
        eid = str(episode_id)

        def run(conn: apsw.Connection) -> bool:
            row = conn.execute(
                "SELECT attempts FROM learning_jobs WHERE episode_id = ?", (eid,)
            ).fetchone()
            if row is None:
                return False
            if row[0] >= max_attempts:
                conn.execute("DELETE FROM learning_jobs WHERE episode_id = ?", (eid,))
                conn.execute(
                    "UPDATE episodes SET learning_status = 'failed' WHERE episode_id = ?", (eid,)
                )
                return False
            conn.execute(
                "UPDATE learning_jobs SET claimed_by = NULL, claimed_at = NULL, last_error = ? "
                "WHERE episode_id = ?",
                (error[:2000], eid),
            )
            return True

        return await self._db.write(run)

    async def learning_queue_depth(self) -> int:
        return await self._db.read(lambda c: int(scalar(c, "SELECT count(*) FROM learning_jobs")))

    # -- operations ----------------------------------------------------------------------
    async def run_maintenance(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run ``fn(conn)`` on the connection's thread outside any transaction, with lock
        retries (VACUUM, integrity checks: see ``storage/maintenance.py``)."""
        return await self._db.read(fn)

    async def stats(self) -> StorageStats:
        def run(conn: apsw.Connection) -> StorageStats:
            def one(sql: str) -> int:
                return int(scalar(conn, sql))

            page_size = one("PRAGMA page_size")
            occurrences, success, effectiveness = next(
                conn.execute(
                    "SELECT coalesce(sum(occurrence_count), 0), coalesce(avg(success_rate), 0),"
                    " coalesce(avg(effectiveness), 0) FROM patterns"
                )
            )
            outcomes = {
                str(kind): int(n)
                for kind, n in conn.execute(
                    "SELECT outcome_type, count(*) FROM episodes"
                    " WHERE outcome_type IS NOT NULL GROUP BY outcome_type"
                )
            }
            return StorageStats(
                episodes=one("SELECT count(*) FROM episodes"),
                completed=one("SELECT count(*) FROM episodes WHERE end_time IS NOT NULL"),
                steps=one("SELECT count(*) FROM steps"),
                patterns=one("SELECT count(*) FROM patterns"),
                heuristics=one("SELECT count(*) FROM heuristics"),
                learning_queue_depth=one("SELECT count(*) FROM learning_jobs"),
                size_bytes=one("PRAGMA page_count") * page_size,
                pattern_occurrences=int(occurrences),
                pattern_success_rate=float(success),
                pattern_effectiveness=float(effectiveness),
                outcomes=outcomes,
            )

        return await self._db.read_snapshot(run)

    async def health_check(self) -> HealthReport:
        started = time.perf_counter()
        try:
            ok = await self._db.read(lambda c: scalar(c, "SELECT 1") == 1)
            integrity = await self._db.read(lambda c: str(scalar(c, "PRAGMA quick_check(1)")))
        except Exception as exc:  # any failure is a health answer
            return HealthReport(
                self.name,
                False,
                (time.perf_counter() - started) * 1000,
                {"error": str(exc), "path": str(self.path)},
            )
        return HealthReport(
            self.name,
            ok and integrity == "ok",
            (time.perf_counter() - started) * 1000,
            {
                "path": str(self.path),
                "quick_check": integrity,
                "busy_retries": self._db.busy_retries,
            },
        )
