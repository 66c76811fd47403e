"""The PostgreSQL side of learning: the completion transaction, pattern and heuristic
aggregation, effectiveness bookkeeping.

Many processes on many machines complete episodes at once, so every aggregate row is read
``FOR UPDATE`` (or created with ``INSERT ... ON CONFLICT DO NOTHING`` and then locked) inside
the writer's transaction, merged, and written back before commit: a concurrent completion of
the same pattern waits for the row and merges into the committed result, never over it. Rows
are locked in similarity-key order so two completions cannot deadlock on each other's patterns.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ...errors import InvalidStateError, NotFoundError
from ...model.episode import Episode, utc_now
from ...model.pattern import AnyPattern, Evidence, Heuristic, context_of, merge_patterns
from ...model.records import CompletionRecord, EmbeddingRecord
from ...model.usage import DECAY_INTERVAL_DAYS, PatternUsage, effectiveness
from ..codec import dump_json, pattern_from_json
from .connection import Conn
from .notify import notify_episode

__all__ = [
    "HEURISTIC_COLUMNS",
    "USAGE_COLUMNS",
    "commit_completion",
    "decay",
    "heuristic_from_row",
    "record_use",
    "store_embedding",
    "usage_from_row",
]

USAGE_COLUMNS = (
    "retrieval_count, application_count, success_count, failure_count, last_retrieved, "
    "last_applied, created_at, effectiveness"
)
HEURISTIC_COLUMNS = (
    "heuristic_id, condition_text, action_text, domain, confidence, evidence, created_at, "
    "updated_at"
)
_SEARCH_SQL = (
    "setweight(to_tsvector('english', %s), 'A') || setweight(to_tsvector('english', %s), 'C') "
    "|| setweight(to_tsvector('english', %s), 'B') || setweight(to_tsvector('english', %s), 'D')"
)


def usage_from_row(row: tuple[Any, ...]) -> PatternUsage:
    return PatternUsage(
        retrieval_count=row[0],
        application_count=row[1],
        success_count=row[2],
        failure_count=row[3],
        last_retrieved=row[4],
        last_applied=row[5],
        created_at=row[6],
        effectiveness_score=row[7],
    )


def heuristic_from_row(row: tuple[Any, ...]) -> Heuristic:
    return Heuristic(
        heuristic_id=uuid.UUID(row[0]),
        condition=row[1],
        action=row[2],
        domain=row[3],
        confidence=row[4],
        evidence=Evidence.model_validate_json(row[5]),
        created_at=row[6],
        updated_at=row[7],
    )


async def _one(conn: Conn, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return await (await conn.execute(sql, args)).fetchone()


async def _upsert_pattern(conn: Conn, pattern: AnyPattern, success: bool, now: datetime) -> str:
    key = pattern.similarity_key()
    select = (
        f"SELECT pattern_id, pattern_data, {USAGE_COLUMNS} FROM patterns "
        "WHERE similarity_key = %s FOR UPDATE"
    )
    row = await _one(conn, select, (key,))
    if row is None:
        ctx = context_of(pattern)
        inserted = await _one(
            conn,
            "INSERT INTO patterns (pattern_id, pattern_type, similarity_key, pattern_data, "
            "success_rate, occurrence_count, context_domain, context_language, created_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (similarity_key) DO NOTHING RETURNING pattern_id",
            (
                str(pattern.id),
                pattern.type,
                key,
                pattern.model_dump_json(),
                pattern.rate(),
                pattern.occurrence_count,
                ctx.domain,
                ctx.language,
                now,
                now,
            ),
        )
        if inserted is not None:
            return str(pattern.id)
        # Another transaction created it first (and has committed): merge into its row.
        row = await _one(conn, select, (key,))
        if row is None:  # created and deleted again meanwhile: extremely unlikely
            raise InvalidStateError(f"Pattern {key!r} changed concurrently; complete it again.")
    merged = merge_patterns(pattern_from_json(row[1]), pattern)
    usage = usage_from_row(row[2:])
    usage.application_count += 1
    usage.success_count += int(success)
    usage.failure_count += int(not success)
    usage.last_applied = now
    await conn.execute(
        "UPDATE patterns SET pattern_data = %s, success_rate = %s, occurrence_count = %s, "
        "application_count = %s, success_count = %s, failure_count = %s, last_applied = %s, "
        "effectiveness = %s, updated_at = %s WHERE pattern_id = %s",
        (
            merged.model_dump_json(),
            merged.rate(),
            merged.occurrence_count,
            usage.application_count,
            usage.success_count,
            usage.failure_count,
            now,
            effectiveness(usage, now),
            now,
            row[0],
        ),
    )
    return str(row[0])


async def _upsert_heuristic(conn: Conn, heuristic: Heuristic, now: datetime) -> str:
    key = heuristic.similarity_key()
    select = f"SELECT {HEURISTIC_COLUMNS} FROM heuristics WHERE similarity_key = %s FOR UPDATE"
    row = await _one(conn, select, (key,))
    if row is None:
        inserted = await _one(
            conn,
            "INSERT INTO heuristics (heuristic_id, similarity_key, condition_text, action_text, "
            "domain, confidence, sample_size, evidence, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (similarity_key) DO NOTHING RETURNING heuristic_id",
            (
                str(heuristic.heuristic_id),
                key,
                heuristic.condition,
                heuristic.action,
                heuristic.domain,
                heuristic.confidence,
                heuristic.evidence.sample_size,
                heuristic.evidence.model_dump_json(),
                heuristic.created_at,
                now,
            ),
        )
        if inserted is not None:
            return str(heuristic.heuristic_id)
        row = await _one(conn, select, (key,))
        if row is None:
            raise InvalidStateError(f"Heuristic {key!r} changed concurrently; complete it again.")
    stored = heuristic_from_row(row).merge(heuristic)
    await conn.execute(
        "UPDATE heuristics SET confidence = %s, sample_size = %s, evidence = %s, updated_at = %s "
        "WHERE heuristic_id = %s",
        (
            stored.confidence,
            stored.evidence.sample_size,
            stored.evidence.model_dump_json(),
            now,
            row[0],
        ),
    )
    return str(row[0])


async def commit_completion(conn: Conn, record: CompletionRecord, schema: str) -> Episode:
    episode = record.episode
    eid = str(episode.episode_id)
    row = await _one(
        conn,
        "SELECT end_time, learning_status, step_count FROM episodes WHERE episode_id = %s "
        "FOR UPDATE",
        (eid,),
    )
    if row is None:
        raise NotFoundError("episode", eid)
    end_time, status, step_count = row
    if record.mode == "learned":
        if status != "queued":
            raise InvalidStateError(f"Episode {eid} has no pending learning job (it is {status}).")
    elif end_time is not None:
        raise InvalidStateError(
            f"Episode {eid} is already completed; it cannot be completed again."
        )
    if step_count != len(episode.steps):
        raise InvalidStateError(
            f"Episode {eid} gained steps while it was being completed ({step_count} stored, "
            f"{len(episode.steps)} seen); complete it again."
        )
    now = utc_now()
    # Lock aggregate rows in key order (no deadlocks), keep the episode's own order.
    pattern_ids: dict[int, str] = {}
    for i, p in sorted(enumerate(record.patterns), key=lambda ip: ip[1].similarity_key()):
        pattern_ids[i] = await _upsert_pattern(conn, p, record.success, now)
    heuristic_ids: dict[int, str] = {}
    for i, h in sorted(enumerate(record.heuristics), key=lambda ih: ih[1].similarity_key()):
        heuristic_ids[i] = await _upsert_heuristic(conn, h, now)
    pids = [pattern_ids[i] for i in range(len(record.patterns))]
    hids = [heuristic_ids[i] for i in range(len(record.heuristics))]
    if pids:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO episode_patterns (episode_id, pattern_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                [(eid, pid) for pid in dict.fromkeys(pids)],
            )
    final = episode.model_copy(
        update={
            "patterns": [uuid.UUID(p) for p in pids],
            "heuristics": [uuid.UUID(h) for h in hids],
        }
    )
    assert final.end_time is not None
    assert final.outcome is not None
    tools = list(dict.fromkeys(s.tool for s in final.steps))
    doc = record.search
    await conn.execute(
        "UPDATE episodes SET end_time = %s, outcome = %s, outcome_type = %s, reward = %s, "
        "reward_total = %s, reflection = %s, patterns = %s, heuristics = %s, metadata = %s, "
        f"tool_summary = %s, learning_status = %s, updated_at = %s, search = {_SEARCH_SQL} "
        "WHERE episode_id = %s",
        (
            final.end_time,
            final.outcome.model_dump_json(),
            final.outcome.type,
            None if final.reward is None else final.reward.model_dump_json(),
            None if final.reward is None else final.reward.total,
            None if final.reflection is None else final.reflection.model_dump_json(),
            dump_json([str(p) for p in final.patterns]),
            dump_json([str(h) for h in final.heuristics]),
            dump_json(final.metadata),
            dump_json(tools),
            "queued" if record.mode == "queued" else "done",
            now,
            doc.description,
            doc.steps,
            doc.outcome,
            doc.reflection,
            eid,
        ),
    )
    if record.embedding is not None:
        await store_embedding(conn, eid, record.embedding, now)
    if record.mode == "queued":
        await conn.execute(
            "INSERT INTO learning_jobs (episode_id, enqueued_at) VALUES (%s, %s)", (eid, now)
        )
    elif record.mode == "learned":
        await conn.execute("DELETE FROM learning_jobs WHERE episode_id = %s", (eid,))
    await notify_episode(conn, schema, "completed", eid)
    return final


async def store_embedding(conn: Conn, eid: str, emb: EmbeddingRecord, now: datetime) -> None:
    # The sequence number orders rows for incremental index refresh. Numbers must become
    # visible in order, so writers take them under a transaction-scoped lock (held to commit).
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.embeddings'))")
    await conn.execute(
        "INSERT INTO embeddings (episode_id, seq, identity, content_hash, dimensions, vector, "
        "truncated, created_at) VALUES (%s, nextval('embeddings_seq'), %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (episode_id) DO UPDATE SET seq = excluded.seq, identity = excluded.identity, "
        "content_hash = excluded.content_hash, dimensions = excluded.dimensions, "
        "vector = excluded.vector, truncated = excluded.truncated, created_at = excluded.created_at",
        (eid, emb.identity, emb.content_hash, emb.dimensions, emb.vector, emb.truncated, now),
    )


async def record_use(
    conn: Conn, pattern_ids: list[uuid.UUID], *, applied: bool, success: bool
) -> None:
    now = utc_now()
    for pid in sorted({str(p) for p in pattern_ids}):
        row = await _one(
            conn, f"SELECT {USAGE_COLUMNS} FROM patterns WHERE pattern_id = %s FOR UPDATE", (pid,)
        )
        if row is None:
            continue
        usage = usage_from_row(row)
        if applied:
            usage.application_count += 1
            usage.success_count += int(success)
            usage.failure_count += int(not success)
            usage.last_applied = now
        else:
            usage.retrieval_count += 1
            usage.last_retrieved = now
        await conn.execute(
            "UPDATE patterns SET retrieval_count = %s, application_count = %s, "
            "success_count = %s, failure_count = %s, last_retrieved = %s, last_applied = %s, "
            "effectiveness = %s WHERE pattern_id = %s",
            (
                usage.retrieval_count,
                usage.application_count,
                usage.success_count,
                usage.failure_count,
                usage.last_retrieved,
                usage.last_applied,
                effectiveness(usage, now),
                pid,
            ),
        )


async def decay(conn: Conn, *, force: bool, min_effectiveness: float) -> dict[str, int]:
    """Recompute every effectiveness score and remove patterns below the cut (at most once per
    ``DECAY_INTERVAL_DAYS`` unless forced; one process at a time)."""
    now = utc_now()
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.decay'))")
    row = await _one(conn, "SELECT value FROM meta WHERE key = 'last_decay'", ())
    if (
        not force
        and row is not None
        and (now - datetime.fromisoformat(row[0])).total_seconds() < DECAY_INTERVAL_DAYS * 86_400
    ):
        return {"evaluated": 0, "removed": 0, "skipped": 1}
    evaluated = removed = 0
    cur = await conn.execute(f"SELECT pattern_id, {USAGE_COLUMNS} FROM patterns FOR UPDATE")
    for pid, *usage_row in await cur.fetchall():
        evaluated += 1
        score = effectiveness(usage_from_row(tuple(usage_row)), now)
        if score < min_effectiveness:
            await conn.execute("DELETE FROM patterns WHERE pattern_id = %s", (pid,))
            removed += 1
        else:
            await conn.execute(
                "UPDATE patterns SET effectiveness = %s WHERE pattern_id = %s", (score, pid)
            )
    await conn.execute(
        "INSERT INTO meta (key, value) VALUES ('last_decay', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (now.isoformat(),),
    )
    return {"evaluated": evaluated, "removed": removed, "skipped": 0}
