"""The shared durable store: PostgreSQL through psycopg 3 and an async connection pool.

Same :class:`~self_learning_memory.storage.backend.StorageBackend` semantics as the embedded
SQLite store, for many processes on many machines: steps are appended under the episode's row
lock, completions aggregate patterns and heuristics under row locks (see :mod:`.learning`),
the learning queue is claimed with ``FOR UPDATE SKIP LOCKED``, and episode changes are
announced with NOTIFY so every process can drop stale cache entries (see :mod:`.notify`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Self

from ...errors import InvalidStateError, NotFoundError, StorageError, ValidationError
from ...model.episode import ComplexityLevel, Episode, ExecutionStep, TaskContext, TaskType, utc_now
from ...model.pattern import AnyPattern, Heuristic
from ...model.records import (
    CompletionRecord,
    EpisodeCandidate,
    EpisodeFilters,
    EpisodeState,
    HealthReport,
    PatternFilters,
    StorageStats,
)
from ...model.usage import PatternUsage
from ..capabilities import Capabilities
from ..codec import (
    EPISODE_COLUMNS,
    STEP_COLUMNS,
    dump_json,
    episode_from_row,
    pattern_from_json,
    step_from_row,
    to_us,
)
from ..transfer import PostgresTransfer
from . import learning
from .connection import Conn, PostgresConnection
from .notify import EpisodeChange, EpisodeListener, notify_episode
from .sandbox_runs import PostgresSandboxRuns
from .schema import TS_WEIGHTS
from .vectors import PostgresVectors

__all__ = ["EPISODE_SELECT", "PostgresStorage"]

EPISODE_SELECT = EPISODE_COLUMNS
MATCH_BUDGET = 2_000  # summed document frequency of the chosen query terms (as SQLite)
_DF_TTL_S = 60.0
_CANDIDATE_COLUMNS = (
    "e.episode_id, e.task_description, e.task_type, e.outcome_type, e.reward_total, "
    "e.end_time, e.tool_summary, e.domain, e.language, e.framework, e.complexity, e.tags"
)
_STATE_SQL = (
    "SELECT end_time, step_count, last_step_number, learning_status FROM episodes "
    "WHERE episode_id = %s"
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
            clauses.append(f"{p}{column} = %s")
            args.append(value)
    if filters.completed is True:
        clauses.append(f"{p}end_time IS NOT NULL")
    elif filters.completed is False:
        clauses.append(f"{p}end_time IS NULL")
    if filters.tag is not None:
        clauses.append(f"{p}tags @> %s::jsonb")
        args.append(json.dumps([filters.tag]))
    if filters.since is not None:
        clauses.append(f"{p}start_time >= %s")
        args.append(filters.since)
    if filters.until is not None:
        clauses.append(f"{p}start_time < %s")
        args.append(filters.until)
    return clauses, args


def _and(clauses: list[str]) -> str:
    return " AND ".join(clauses) if clauses else "TRUE"


def _episode(row: tuple[Any, ...], steps: list[ExecutionStep]) -> Episode:
    values = list(row)
    values[4] = to_us(values[4])
    values[5] = None if values[5] is None else to_us(values[5])
    return episode_from_row(tuple(values), steps)


def _step(row: tuple[Any, ...]) -> ExecutionStep:
    values = list(row)
    values[2] = to_us(values[2])
    return step_from_row(tuple(values))


def _candidate(row: tuple[Any, ...], lexical: float | None, source: str) -> EpisodeCandidate:
    # Built from columns this store wrote itself: no re-validation on the hot path.
    context = TaskContext.model_construct(
        domain=row[7],
        language=row[8],
        framework=row[9],
        complexity=ComplexityLevel(row[10]),
        tags=list(row[11]),
    )
    return EpisodeCandidate(
        episode_id=uuid.UUID(row[0]),
        task_description=row[1],
        task_type=TaskType(row[2]),
        context=context,
        outcome_type=row[3],
        reward_total=row[4],
        end_time=row[5],
        tools=tuple(json.loads(row[6])),
        lexical=lexical,
        sources=(source,),
    )


async def _rows(conn: Conn, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
    return await (await conn.execute(sql, args)).fetchall()


async def _value(conn: Conn, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> Any:
    row = await (await conn.execute(sql, args)).fetchone()
    return None if row is None else row[0]


class PostgresStorage(PostgresSandboxRuns, PostgresVectors):
    """The shared :class:`StorageBackend` (``postgresql://`` DSN)."""

    name = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout_s: float = 10.0,
        listen: bool = True,
    ) -> None:
        self.dsn = dsn
        self._db = PostgresConnection(
            dsn, min_size=min_size, max_size=max_size, timeout_s=connect_timeout_s
        )
        self._listen = listen
        self.listener: EpisodeListener | None = None
        self._change_callbacks: list[Callable[[EpisodeChange], Awaitable[None]]] = []
        self.pgvector_available = False
        self._df: dict[str, tuple[int, float]] = {}

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def initialize(self) -> None:
        await self._db.open()
        self.pgvector_available = bool(
            await self._db.read(
                lambda c: _value(
                    c, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
                )
            )
        )
        if self._listen:
            self.listener = EpisodeListener(
                self.dsn, self._db.schema, self._db.backend_pids, self._change_callbacks
            )
            self.listener.start()

    async def close(self) -> None:
        await self.stop_listening()
        await self._db.close()

    async def stop_listening(self) -> None:
        """Stop delivering other processes' episode changes to the subscribed callbacks (a
        memory calls it before it closes the cache those callbacks write to)."""
        if self.listener is not None:
            listener, self.listener = self.listener, None
            await listener.stop()

    @property
    def capabilities(self) -> Capabilities:
        """Other processes' episode changes and row transfer."""
        return Capabilities(change_feed=self, transfer=PostgresTransfer(self._db))

    def subscribe_episode_changes(
        self, callback: Callable[[EpisodeChange], Awaitable[None]]
    ) -> None:
        """Call ``callback`` for every episode another process extends, completes or deletes
        in this store (delivered after its commit; may be called before ``initialize``)."""
        self._change_callbacks.append(callback)

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
            episode.start_time,
            dump_json(episode.metadata),
            episode.start_time,
        )

        async def run(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO episodes (episode_id, task_type, task_description, domain, language, "
                "framework, complexity, tags, context, start_time, metadata, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
                values,
            )

        await self._db.write(run)

    async def get_episode_state(self, episode_id: uuid.UUID) -> EpisodeState | None:
        async def run(conn: Conn) -> EpisodeState | None:
            row = await (await conn.execute(_STATE_SQL, (str(episode_id),))).fetchone()
            if row is None:
                return None
            return EpisodeState(episode_id, row[0] is not None, row[1], row[2], row[3])

        return await self._db.read(run)

    async def append_steps(self, episode_id: uuid.UUID, steps: list[ExecutionStep]) -> EpisodeState:
        eid = str(episode_id)
        rows = [
            (
                eid,
                s.step_number,
                s.timestamp,
                s.tool,
                s.action,
                dump_json(s.parameters),
                None if s.result is None else s.result.model_dump_json(),
                s.latency_ms,
                s.tokens_used,
                dump_json(s.metadata),
            )
            for s in steps
        ]

        async def run(conn: Conn) -> EpisodeState:
            row = await (await conn.execute(_STATE_SQL + " FOR UPDATE", (eid,))).fetchone()
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
            async with conn.cursor() as cur:
                await cur.executemany(
                    f"INSERT INTO steps ({STEP_COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
            count = row[1] + len(steps)
            await conn.execute(
                "UPDATE episodes SET step_count = %s, last_step_number = %s, updated_at = %s "
                "WHERE episode_id = %s",
                (count, last, utc_now(), eid),
            )
            await notify_episode(conn, self._db.schema, "steps", eid)
            return EpisodeState(episode_id, False, count, last, row[3])

        return await self._db.write(run)

    async def commit_completion(self, record: CompletionRecord) -> Episode:
        return await self._db.write(
            lambda conn: learning.commit_completion(conn, record, self._db.schema)
        )

    async def _load(self, conn: Conn, rows: list[tuple[Any, ...]]) -> list[Episode]:
        if not rows:
            return []
        ids = [r[0] for r in rows]
        steps: dict[str, list[ExecutionStep]] = {i: [] for i in ids}
        for step_row in await _rows(
            conn,
            f"SELECT {STEP_COLUMNS} FROM steps "
            "WHERE episode_id = ANY(%s) ORDER BY episode_id, step_number",
            (ids,),
        ):
            steps[step_row[0]].append(_step(step_row))
        return [_episode(r, steps[r[0]]) for r in rows]

    async def get_episode(self, episode_id: uuid.UUID) -> Episode | None:
        found = await self.get_episodes([episode_id])
        return found[0] if found else None

    async def get_episodes(self, episode_ids: list[uuid.UUID]) -> list[Episode]:
        ids = [str(i) for i in episode_ids]
        if not ids:
            return []

        async def run(conn: Conn) -> list[Episode]:
            rows = await _rows(
                conn, f"SELECT {EPISODE_SELECT} FROM episodes WHERE episode_id = ANY(%s)", (ids,)
            )
            by_id = {e.episode_id: e for e in await self._load(conn, rows)}
            return [by_id[i] for i in episode_ids if i in by_id]

        return await self._db.read_snapshot(run)

    async def list_episodes(
        self, filters: EpisodeFilters, limit: int, offset: int
    ) -> list[Episode]:
        clauses, args = _where(filters)
        sql = (
            f"SELECT {EPISODE_SELECT} FROM episodes WHERE {_and(clauses)} "
            "ORDER BY start_time DESC, episode_id LIMIT %s OFFSET %s"
        )

        async def run(conn: Conn) -> list[Episode]:
            return await self._load(conn, await _rows(conn, sql, (*args, limit, offset)))

        return await self._db.read_snapshot(run)

    async def count_episodes(self, filters: EpisodeFilters) -> int:
        clauses, args = _where(filters)
        sql = f"SELECT count(*) FROM episodes WHERE {_and(clauses)}"
        return int(await self._db.read(lambda c: _value(c, sql, args)))

    async def delete_episode(self, episode_id: uuid.UUID) -> bool:
        eid = str(episode_id)

        async def run(conn: Conn) -> bool:
            cur = await conn.execute("DELETE FROM episodes WHERE episode_id = %s", (eid,))
            if cur.rowcount:
                await notify_episode(conn, self._db.schema, "deleted", eid)
            return bool(cur.rowcount)

        return await self._db.write(run)

    # -- retrieval candidates ------------------------------------------------------------
    async def _select_terms(self, conn: Conn, terms: list[str]) -> list[str]:
        """Rarest terms first within the match budget (see ``sqlite_terms``); each document
        frequency is counted through the GIN index and capped at the budget."""
        now = time.monotonic()
        unknown = [
            t for t in dict.fromkeys(terms) if now - self._df.get(t, (0, -1e9))[1] > _DF_TTL_S
        ]
        if unknown:
            for term, df in await _rows(
                conn,
                "SELECT t, (SELECT count(*) FROM (SELECT 1 FROM episodes "
                "WHERE search @@ plainto_tsquery('english', t) LIMIT %s) s) "
                "FROM unnest(%s::text[]) AS t",
                (MATCH_BUDGET + 1, unknown),
            ):
                self._df[term] = (int(df), now)
            if len(self._df) > 50_000:
                self._df = {t: self._df[t] for t in unknown}
        scored = sorted((self._df[t][0], t) for t in dict.fromkeys(terms))
        chosen: list[str] = []
        total = 0
        for df, term in scored:
            if df == 0:
                continue
            if chosen and total + df > MATCH_BUDGET:
                break
            chosen.append(term)
            total += df
        return chosen

    async def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        if not terms:
            return []
        clauses, args = _where(filters.model_copy(update={"completed": True}), "e")

        async def run(conn: Conn) -> list[EpisodeCandidate]:
            chosen = await self._select_terms(conn, terms)
            if not chosen:
                return []
            query = " || ".join(["plainto_tsquery('english', %s)"] * len(chosen))
            sql = (
                f"SELECT {_CANDIDATE_COLUMNS}, ts_rank_cd(%s::real[], e.search, q.q, 1) AS r "
                f"FROM episodes e, (SELECT {query} AS q) q "
                f"WHERE e.search @@ q.q AND {_and(clauses)} ORDER BY r DESC, e.end_time DESC "
                "LIMIT %s"
            )
            rows = await _rows(conn, sql, (TS_WEIGHTS, *chosen, *args, limit))
            return [_candidate(r, float(r[12]), "tsvector") for r in rows]

        return await self._db.read(run)

    async def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        clauses, args = _where(filters.model_copy(update={"completed": True}), "e")
        sql = (
            f"SELECT {_CANDIDATE_COLUMNS} FROM episodes e WHERE e.domain = %s AND "
            f"{_and(clauses)} ORDER BY e.end_time DESC LIMIT %s"
        )
        rows = await self._db.read(lambda c: _rows(c, sql, (context.domain, *args, limit)))
        return [_candidate(r, None, "context:domain") for r in rows]

    async def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]:
        if not episode_ids:
            return []
        clauses, args = _where(filters.model_copy(update={"completed": True}), "e")
        sql = (
            f"SELECT {_CANDIDATE_COLUMNS} FROM episodes e WHERE e.episode_id = ANY(%s) AND "
            f"{_and(clauses)}"
        )
        ids = [str(i) for i in episode_ids]
        rows = await self._db.read(lambda c: _rows(c, sql, (ids, *args)))
        return [_candidate(r, None, "vector") for r in rows]

    async def data_version(self) -> int:
        """Grows with every committed write transaction of any process."""
        return int(
            await self._db.read(lambda c: _value(c, "SELECT sum(version) FROM data_version"))
        )

    # -- patterns and heuristics ---------------------------------------------------------
    @staticmethod
    def _patterns(rows: list[tuple[Any, ...]]) -> list[tuple[AnyPattern, PatternUsage]]:
        return [(pattern_from_json(r[0]), learning.usage_from_row(r[1:])) for r in rows]

    async def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        cols = f"pattern_id, pattern_data, {learning.USAGE_COLUMNS}"
        sql = (
            f"(SELECT {cols} FROM patterns WHERE context_domain = %s "
            "ORDER BY occurrence_count DESC LIMIT %s) UNION "
            f"(SELECT {cols} FROM patterns WHERE context_language = %s "
            "ORDER BY occurrence_count DESC LIMIT %s) UNION "
            f"(SELECT {cols} FROM patterns ORDER BY occurrence_count DESC LIMIT %s)"
        )
        args = (context.domain, limit, context.language, limit, limit)
        rows = await self._db.read(lambda c: _rows(c, sql, args))
        return self._patterns([r[1:] for r in rows])

    async def get_pattern(self, pattern_id: uuid.UUID) -> tuple[AnyPattern, PatternUsage] | None:
        sql = f"SELECT pattern_data, {learning.USAGE_COLUMNS} FROM patterns WHERE pattern_id = %s"
        rows = await self._db.read(lambda c: _rows(c, sql, (str(pattern_id),)))
        found = self._patterns(rows)
        return found[0] if found else None

    async def pattern_episodes(
        self, pattern_ids: list[uuid.UUID], per_pattern: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """The episodes each pattern was extracted from (its evidence), newest first."""
        ids = [str(i) for i in pattern_ids]
        if not ids:
            return {}
        sql = (
            "SELECT pattern_id, episode_id FROM ("
            " SELECT ep.pattern_id, ep.episode_id, row_number() OVER ("
            "  PARTITION BY ep.pattern_id ORDER BY e.start_time DESC) AS n"
            " FROM episode_patterns ep JOIN episodes e ON e.episode_id = ep.episode_id"
            " WHERE ep.pattern_id = ANY(%s)) ranked WHERE n <= %s ORDER BY pattern_id, n"
        )
        out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in pattern_ids}
        for pid, eid in await self._db.read(lambda c: _rows(c, sql, (ids, per_pattern))):
            out[uuid.UUID(pid)].append(uuid.UUID(eid))
        return out

    async def list_patterns(
        self, filters: PatternFilters, limit: int, offset: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        clauses = ["success_rate >= %s", "occurrence_count >= %s"]
        args: list[Any] = [filters.min_success_rate, filters.min_occurrences]
        if filters.pattern_type is not None:
            clauses.append("pattern_type = %s")
            args.append(filters.pattern_type)
        if filters.domain is not None:
            clauses.append("context_domain = %s")
            args.append(filters.domain)
        if filters.min_confidence > 0:
            clauses.append("success_rate * sqrt(occurrence_count) >= %s")
            args.append(filters.min_confidence)
        sql = (
            f"SELECT pattern_data, {learning.USAGE_COLUMNS} FROM patterns WHERE "
            f"{' AND '.join(clauses)} ORDER BY occurrence_count DESC, success_rate DESC, "
            "pattern_id LIMIT %s OFFSET %s"
        )
        rows = await self._db.read(lambda c: _rows(c, sql, (*args, limit, offset)))
        return self._patterns(rows)

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
            f"(SELECT {cols} FROM heuristics WHERE domain = %s ORDER BY confidence DESC LIMIT %s)"
            f" UNION (SELECT {cols} FROM heuristics ORDER BY confidence DESC LIMIT %s)"
        )
        rows = await self._db.read(lambda c: _rows(c, sql, (context.domain, limit, limit)))
        return [learning.heuristic_from_row(r) for r in rows]

    async def get_heuristic(self, heuristic_id: uuid.UUID) -> Heuristic | None:
        sql = f"SELECT {learning.HEURISTIC_COLUMNS} FROM heuristics WHERE heuristic_id = %s"
        rows = await self._db.read(lambda c: _rows(c, sql, (str(heuristic_id),)))
        return learning.heuristic_from_row(rows[0]) if rows else None

    async def list_heuristics(self, limit: int, offset: int) -> list[Heuristic]:
        sql = (
            f"SELECT {learning.HEURISTIC_COLUMNS} FROM heuristics "
            "ORDER BY confidence DESC, heuristic_id LIMIT %s OFFSET %s"
        )
        rows = await self._db.read(lambda c: _rows(c, sql, (limit, offset)))
        return [learning.heuristic_from_row(r) for r in rows]

    # -- learning queue ------------------------------------------------------------------
    async def claim_learning_job(self, worker: str, claim_timeout_s: float) -> uuid.UUID | None:
        now = utc_now()
        stale = now - timedelta(seconds=claim_timeout_s)

        async def run(conn: Conn) -> uuid.UUID | None:
            value = await _value(
                conn,
                "UPDATE learning_jobs SET claimed_by = %s, claimed_at = %s, "
                "attempts = attempts + 1 WHERE episode_id = (SELECT episode_id FROM learning_jobs "
                "WHERE claimed_at IS NULL OR claimed_at < %s ORDER BY enqueued_at LIMIT 1 "
                "FOR UPDATE SKIP LOCKED) RETURNING episode_id",
                (worker, now, stale),
            )
            return None if value is None else uuid.UUID(value)

        return await self._db.write(run)

    async def fail_learning_job(self, episode_id: uuid.UUID, error: str, max_attempts: int) -> bool:
        """Release a failed job for another try; give up (and say so) after ``max_attempts``."""
        eid = str(episode_id)

        async def run(conn: Conn) -> bool:
            attempts = await _value(
                conn, "SELECT attempts FROM learning_jobs WHERE episode_id = %s FOR UPDATE", (eid,)
            )
            if attempts is None:
                return False
            if attempts >= max_attempts:
                await conn.execute("DELETE FROM learning_jobs WHERE episode_id = %s", (eid,))
                await conn.execute(
                    "UPDATE episodes SET learning_status = 'failed' WHERE episode_id = %s", (eid,)
                )
                return False
            await conn.execute(
                "UPDATE learning_jobs SET claimed_by = NULL, claimed_at = NULL, last_error = %s "
                "WHERE episode_id = %s",
                (error[:2000], eid),
            )
            return True

        return await self._db.write(run)

    async def learning_queue_depth(self) -> int:
        return int(await self._db.read(lambda c: _value(c, "SELECT count(*) FROM learning_jobs")))

    # -- operations ----------------------------------------------------------------------
    async def stats(self) -> StorageStats:
        async def run(conn: Conn) -> StorageStats:
            row = await (
                await conn.execute(
                    "SELECT (SELECT count(*) FROM episodes),"
                    " (SELECT count(*) FROM episodes WHERE end_time IS NOT NULL),"
                    " (SELECT count(*) FROM steps), (SELECT count(*) FROM patterns),"
                    " (SELECT count(*) FROM heuristics), (SELECT count(*) FROM learning_jobs),"
                    " (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                    "  JOIN pg_namespace n ON n.oid = c.relnamespace"
                    "  WHERE n.nspname = current_schema() AND c.relkind = 'r'),"
                    " (SELECT coalesce(sum(occurrence_count), 0) FROM patterns),"
                    " (SELECT coalesce(avg(success_rate), 0) FROM patterns),"
                    " (SELECT coalesce(avg(effectiveness), 0) FROM patterns)"
                )
            ).fetchone()
            assert row is not None
            outcomes = {
                str(kind): int(n)
                for kind, n in await _rows(
                    conn,
                    "SELECT outcome_type, count(*) FROM episodes"
                    " WHERE outcome_type IS NOT NULL GROUP BY outcome_type",
                )
            }
            return StorageStats(
                episodes=int(row[0]),
                completed=int(row[1]),
                steps=int(row[2]),
                patterns=int(row[3]),
                heuristics=int(row[4]),
                learning_queue_depth=int(row[5]),
                size_bytes=int(row[6]),
                pattern_occurrences=int(row[7]),
                pattern_success_rate=float(row[8]),
                pattern_effectiveness=float(row[9]),
                outcomes=outcomes,
            )

        return await self._db.read_snapshot(run)

    async def health_check(self) -> HealthReport:
        started = time.perf_counter()
        details: dict[str, object] = {
            "dsn": self._db.where,
            "schema": self._db.schema,
            "vector_backend": "bytea",
            "pgvector_available": self.pgvector_available,
        }
        try:
            version = await self._db.read(lambda c: _value(c, "SHOW server_version"))
        except StorageError as exc:
            details["error"] = str(exc)
            return HealthReport(self.name, False, (time.perf_counter() - started) * 1000, details)
        pool = self._db.pool
        if pool is not None:
            stats = pool.get_stats()
            details["pool"] = {
                "min_size": self._db.min_size,
                "max_size": self._db.max_size,
                "size": stats.get("pool_size", 0),
                "available": stats.get("pool_available", 0),
                "waiting": stats.get("requests_waiting", 0),
            }
        details["server_version"] = version
        details["transaction_retries"] = self._db.retries
        details["listener"] = (
            "off"
            if self.listener is None
            else ("connected" if self.listener.connected.is_set() else "connecting")
        )
        return HealthReport(self.name, True, (time.perf_counter() - started) * 1000, details)
