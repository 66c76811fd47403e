"""Row-level import and export for moving a memory between stores (``storage/migrate.py``).

The :class:`StorageBackend` protocol writes through the learning path (a completion upserts
and merges patterns), which is right for new episodes and wrong for a copy: replaying a
memory through it would re-aggregate patterns and count them twice. A transfer writes the
rows as they are instead, keyed by their ids, so a re-run updates rather than duplicates:

- episodes: upsert by ``episode_id`` (with the full-text row or ``tsvector``), steps inserted
  by ``(episode_id, step_number)`` if missing;
- patterns with usage: upsert by ``pattern_id``, then the episode links;
- heuristics: upsert by ``heuristic_id``;
- embeddings: read here, written through ``store_embeddings`` (one row per episode);
- agent executions: read in insertion order, written through ``record_agent_execution``
  (keyed by their id, so a re-run adds none twice).

Not moved: the sandbox's audit trail and the retrieval feedback (``retrieval_uses``,
``episode_usage``): episodes start with no feedback in the target (docs/operations.md).

One adapter per SQL dialect: SQLite (the embedded store, and Turso's libSQL file) and
PostgreSQL. :func:`transfer_adapter` picks it for a backend.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import CapabilityUnavailableError
from ..model.episode import Episode, utc_now
from ..model.records import EmbeddingRecord
from .codec import dump_json, search_document, step_values, to_us
from .sql.dialect import POSTGRES, SQLITE, Dialect

if TYPE_CHECKING:
    from ..model.pattern import AnyPattern, Heuristic
    from ..model.usage import PatternUsage
    from .backend import StorageBackend

__all__ = ["COUNTED", "PatternRow", "TransferAdapter", "transfer_adapter"]

PatternRow = tuple["AnyPattern", "PatternUsage", list[uuid.UUID]]
COUNTED = (
    "episodes",
    "steps",
    "patterns",
    "episode_patterns",
    "heuristics",
    "embeddings",
    "agent_executions",
)

_EPISODE_COLS = (
    "episode_id, task_type, task_description, domain, language, framework, complexity, tags, "
    "context, start_time, end_time, outcome, outcome_type, reward, reward_total, reflection, "
    "patterns, heuristics, metadata, step_count, last_step_number, tool_summary, "
    "learning_status, updated_at, agent"
)
_PATTERN_COLS = (
    "pattern_id, pattern_type, similarity_key, pattern_data, success_rate, occurrence_count, "
    "context_domain, context_language, retrieval_count, application_count, success_count, "
    "failure_count, last_retrieved, last_applied, effectiveness, created_at, updated_at"
)
_HEURISTIC_COLS = (
    "heuristic_id, similarity_key, condition_text, action_text, domain, confidence, "
    "sample_size, evidence, created_at, updated_at"
)


def _upsert(table: str, cols: str, key: str, mark: str, casts: dict[str, str] | None = None) -> str:
    names = [c.strip() for c in cols.split(",")]
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c != key)
    marks = ", ".join(mark + (casts or {}).get(c, "") for c in names)
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _episode_values(episode: Episode, when: Any) -> tuple[Any, ...]:
    """``_EPISODE_COLS`` for ``episode``; ``when`` converts a datetime for the dialect."""
    ctx = episode.context
    complete = episode.is_complete()
    status = None
    if complete:
        status = "done" if episode.reward is not None else "queued"
    last = max((s.step_number for s in episode.steps), default=0)
    return (
        str(episode.episode_id),
        episode.task_type.value,
        episode.task_description,
        ctx.domain,
        ctx.language,
        ctx.framework,
        ctx.complexity.value,
        dump_json(ctx.tags),
        ctx.model_dump_json(),
        when(episode.start_time),
        None if episode.end_time is None else when(episode.end_time),
        None if episode.outcome is None else episode.outcome.model_dump_json(),
        None if episode.outcome is None else episode.outcome.type,
        None if episode.reward is None else episode.reward.model_dump_json(),
        None if episode.reward is None else episode.reward.total,
        None if episode.reflection is None else episode.reflection.model_dump_json(),
        dump_json([str(p) for p in episode.patterns]),
        dump_json([str(h) for h in episode.heuristics]),
        dump_json(episode.metadata),
        len(episode.steps),
        last,
        dump_json(list(dict.fromkeys(s.tool for s in episode.steps))),
        status,
        when(utc_now()),
        episode.agent,
    )


def _pattern_values(pattern: AnyPattern, usage: PatternUsage, when: Any) -> tuple[Any, ...]:
    from ..model.pattern import context_of

    ctx = context_of(pattern)
    return (
        str(pattern.id),
        pattern.type,
        pattern.similarity_key(),
        pattern.model_dump_json(),
        pattern.rate(),
        pattern.occurrence_count,
        ctx.domain,
        ctx.language,
        usage.retrieval_count,
        usage.application_count,
        usage.success_count,
        usage.failure_count,
        None if usage.last_retrieved is None else when(usage.last_retrieved),
        None if usage.last_applied is None else when(usage.last_applied),
        usage.effectiveness_score,
        when(usage.created_at),
        when(pattern.updated_at),
    )


def _heuristic_values(h: Heuristic, when: Any) -> tuple[Any, ...]:
    return (
        str(h.heuristic_id),
        h.similarity_key(),
        h.condition,
        h.action,
        h.domain,
        h.confidence,
        h.evidence.sample_size,
        h.evidence.model_dump_json(),
        when(h.created_at),
        when(h.updated_at),
    )


class TransferAdapter(Protocol):
    async def import_episodes(self, episodes: list[Episode]) -> None: ...
    async def import_patterns(self, rows: list[PatternRow]) -> None: ...
    async def import_heuristics(self, rows: list[Heuristic]) -> None: ...
    async def export_embeddings(
        self, after: str, limit: int
    ) -> list[tuple[uuid.UUID, EmbeddingRecord]]: ...
    async def counts(self) -> dict[str, int]: ...


def _embedding(row: tuple[Any, ...], d: Dialect) -> tuple[uuid.UUID, EmbeddingRecord]:
    return uuid.UUID(row[0]), EmbeddingRecord(
        identity=row[1],
        content_hash=row[2],
        dimensions=int(row[3]),
        vector=d.vector_bytes(row[4]),
        truncated=bool(row[5]),
    )


def _embeddings_after(d: Dialect, mark: str) -> str:
    return (
        f"SELECT episode_id, identity, content_hash, dimensions, {d.vector_read}, truncated "
        f"FROM embeddings WHERE episode_id > {mark} AND {d.vector_present} "
        f"ORDER BY episode_id LIMIT {mark}"
    )


class SQLiteTransfer:
    """For :class:`~.sqlite.SQLiteStorage` and stores built on its SQL (Turso's libSQL)."""

    def __init__(self, db: Any, dialect: Dialect = POSTGRES) -> None:
        self._db = db  # the store's connection
        self._dialect = dialect  # PgvectorDialect: vectors are read from the pgvector column

    async def import_episodes(self, episodes: list[Episode]) -> None:
        upsert = _upsert("episodes", _EPISODE_COLS, "episode_id", "?")

        def run(conn: Any) -> None:
            for episode in episodes:
                conn.execute(upsert, _episode_values(episode, to_us))
                rows = [step_values(episode.episode_id, s) for s in episode.steps]
                if rows:
                    conn.executemany(
                        "INSERT INTO steps (episode_id, step_number, timestamp, tool, action, "
                        "parameters, result, latency_ms, tokens_used, metadata) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                        rows,
                    )
                if not episode.is_complete():
                    continue
                rowid = conn.execute(
                    "SELECT rowid FROM episodes WHERE episode_id = ?", (str(episode.episode_id),)
                ).fetchone()[0]
                doc = search_document(episode)
                conn.execute("DELETE FROM episodes_fts WHERE rowid = ?", (rowid,))
                conn.execute(
                    "INSERT INTO episodes_fts (rowid, task_description, steps_text, "
                    "outcome_text, reflection_text) VALUES (?, ?, ?, ?, ?)",
                    (rowid, doc.description, doc.steps, doc.outcome, doc.reflection),
                )
                if episode.reward is None:
                    conn.execute(
                        "INSERT INTO learning_jobs (episode_id, enqueued_at) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (str(episode.episode_id), to_us(utc_now())),
                    )

        if episodes:
            await self._db.write(run)

    async def import_patterns(self, rows: list[PatternRow]) -> None:
        upsert = _upsert("patterns", _PATTERN_COLS, "pattern_id", "?")

        def run(conn: Any) -> None:
            for pattern, usage, episode_ids in rows:
                conn.execute(upsert, _pattern_values(pattern, usage, to_us))
                conn.executemany(
                    "INSERT INTO episode_patterns (episode_id, pattern_id) SELECT ?, ? "
                    "WHERE EXISTS (SELECT 1 FROM episodes WHERE episode_id = ?) "
                    "ON CONFLICT DO NOTHING",
                    [(str(e), str(pattern.id), str(e)) for e in episode_ids],
                )

        if rows:
            await self._db.write(run)

    async def import_heuristics(self, rows: list[Heuristic]) -> None:
        upsert = _upsert("heuristics", _HEURISTIC_COLS, "heuristic_id", "?")

        def run(conn: Any) -> None:
            conn.executemany(upsert, [_heuristic_values(h, to_us) for h in rows])

        if rows:
            await self._db.write(run)

    async def export_embeddings(
        self, after: str, limit: int
    ) -> list[tuple[uuid.UUID, EmbeddingRecord]]:
        sql = _embeddings_after(SQLITE, "?")
        rows = await self._db.read(lambda c: c.execute(sql, (after, limit)).fetchall())
        return [_embedding(tuple(r), SQLITE) for r in rows]

    async def counts(self) -> dict[str, int]:
        def run(conn: Any) -> dict[str, int]:
            return {
                t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in COUNTED
            }

        counted: dict[str, int] = await self._db.read(run)
        return counted


class PostgresTransfer:
    """For :class:`~.postgres.storage.PostgresStorage`."""

    def __init__(self, db: Any, dialect: Dialect = POSTGRES) -> None:
        self._db = db  # the store's connection
        self._dialect = dialect  # PgvectorDialect: vectors are read from the pgvector column

    async def import_episodes(self, episodes: list[Episode]) -> None:
        from .postgres.search import SEARCH_SQL
        from .sql.program import psycopg_sql

        upsert = _upsert("episodes", _EPISODE_COLS, "episode_id", "%s", {"tags": "::jsonb"})

        async def run(conn: Any) -> None:
            async with conn.cursor() as cur:
                for episode in episodes:
                    await cur.execute(upsert, _episode_values(episode, lambda d: d))
                    rows = [
                        (
                            str(episode.episode_id),
                            s.step_number,
                            s.timestamp,
                            *step_values(episode.episode_id, s)[3:],
                        )
                        for s in episode.steps
                    ]
                    if rows:
                        await cur.executemany(
                            'INSERT INTO steps (episode_id, step_number, "timestamp", tool, '
                            "action, parameters, result, latency_ms, tokens_used, metadata) "
                            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                            rows,
                        )
                    if not episode.is_complete():
                        continue
                    doc = search_document(episode)
                    await cur.execute(
                        psycopg_sql(
                            f"UPDATE episodes SET search = {SEARCH_SQL} WHERE episode_id = ?"
                        ),
                        (
                            doc.description,
                            doc.steps,
                            doc.outcome,
                            doc.reflection,
                            str(episode.episode_id),
                        ),
                    )
                    if episode.reward is None:
                        await cur.execute(
                            "INSERT INTO learning_jobs (episode_id, enqueued_at) VALUES (%s, %s) "
                            "ON CONFLICT DO NOTHING",
                            (str(episode.episode_id), utc_now()),
                        )

        if episodes:
            await self._db.write(run)

    async def import_patterns(self, rows: list[PatternRow]) -> None:
        upsert = _upsert("patterns", _PATTERN_COLS, "pattern_id", "%s")

        async def run(conn: Any) -> None:
            async with conn.cursor() as cur:
                for pattern, usage, episode_ids in rows:
                    await cur.execute(upsert, _pattern_values(pattern, usage, lambda d: d))
                    if episode_ids:
                        await cur.executemany(
                            "INSERT INTO episode_patterns (episode_id, pattern_id) SELECT %s, %s "
                            "WHERE EXISTS (SELECT 1 FROM episodes WHERE episode_id = %s) "
                            "ON CONFLICT DO NOTHING",
                            [(str(e), str(pattern.id), str(e)) for e in episode_ids],
                        )

        if rows:
            await self._db.write(run)

    async def import_heuristics(self, rows: list[Heuristic]) -> None:
        upsert = _upsert("heuristics", _HEURISTIC_COLS, "heuristic_id", "%s")

        async def run(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(upsert, [_heuristic_values(h, lambda d: d) for h in rows])

        if rows:
            await self._db.write(run)

    async def export_embeddings(
        self, after: str, limit: int
    ) -> list[tuple[uuid.UUID, EmbeddingRecord]]:
        sql = _embeddings_after(self._dialect, "%s")

        async def run(conn: Any) -> list[Any]:
            cur = await conn.execute(sql, (after, limit))
            return list(await cur.fetchall())

        return [_embedding(tuple(r), self._dialect) for r in await self._db.read(run)]

    async def counts(self) -> dict[str, int]:
        async def run(conn: Any) -> dict[str, int]:
            out: dict[str, int] = {}
            for table in COUNTED:
                cur = await conn.execute(f"SELECT count(*) FROM {table}")
                row = await cur.fetchone()
                out[table] = int(row[0])
            return out

        counted: dict[str, int] = await self._db.read(run)
        return counted


def transfer_adapter(storage: StorageBackend) -> TransferAdapter:
    """The row-level adapter for ``storage``'s SQL dialect (its ``capabilities.transfer``)."""
    adapter = storage.capabilities.transfer
    if adapter is None:
        raise CapabilityUnavailableError(
            f"Moving a memory into or out of a {storage.name!r} store is not supported: use the "
            "embedded SQLite store, Turso or PostgreSQL."
        )
    return adapter
