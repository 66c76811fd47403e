"""The SQLite side of learning: the completion transaction, pattern and heuristic upserts with
merge semantics, effectiveness bookkeeping and the durable learning queue.

Every function here runs on the connection's thread, inside a transaction opened by the
caller, so a completion (episode, patterns, heuristics, links, full-text row, queue job) is
written entirely or not at all, and concurrent writers in other processes serialise on the
database's write lock: aggregation never loses an update.
"""

from __future__ import annotations

import uuid
from typing import Any

import apsw

from ..errors import InvalidStateError, NotFoundError
from ..model.episode import Episode, utc_now
from ..model.pattern import AnyPattern, Evidence, Heuristic, context_of, merge_patterns
from ..model.records import CompletionRecord, EmbeddingRecord
from ..model.usage import DECAY_INTERVAL_DAYS, PatternUsage, effectiveness
from .codec import dump_json, from_us, pattern_from_json, to_us

__all__ = [
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
HEURISTIC_COLUMNS = "heuristic_id, condition_text, action_text, domain, confidence, evidence, created_at, updated_at"


def usage_from_row(row: tuple[Any, ...]) -> PatternUsage:
    return PatternUsage(
        retrieval_count=row[0],
        application_count=row[1],
        success_count=row[2],
        failure_count=row[3],
        last_retrieved=None if row[4] is None else from_us(row[4]),
        last_applied=None if row[5] is None else from_us(row[5]),
        created_at=from_us(row[6]),
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
        created_at=from_us(row[6]),
        updated_at=from_us(row[7]),
    )


def _upsert_pattern(conn: apsw.Connection, pattern: AnyPattern, success: bool, now: int) -> str:
    key = pattern.similarity_key()
    row = conn.execute(
        f"SELECT pattern_id, pattern_data, {USAGE_COLUMNS} FROM patterns WHERE similarity_key = ?",
        (key,),
    ).fetchone()
    if row is None:
        ctx = context_of(pattern)
        conn.execute(
            "INSERT INTO patterns (pattern_id, pattern_type, similarity_key, pattern_data, "
            "success_rate, occurrence_count, context_domain, context_language, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        return str(pattern.id)
    merged = merge_patterns(pattern_from_json(row[1]), pattern)
    usage = usage_from_row(row[2:])
    usage.application_count += 1
    usage.success_count += int(success)
    usage.failure_count += int(not success)
    usage.last_applied = from_us(now)
    score = effectiveness(usage, from_us(now))
    conn.execute(
        "UPDATE patterns SET pattern_data = ?, success_rate = ?, occurrence_count = ?, "
        "application_count = ?, success_count = ?, failure_count = ?, last_applied = ?, "
        "effectiveness = ?, updated_at = ? WHERE pattern_id = ?",
        (
            merged.model_dump_json(),
            merged.rate(),
            merged.occurrence_count,
            usage.application_count,
            usage.success_count,
            usage.failure_count,
            now,
            score,
            now,
            row[0],
        ),
    )
    return str(row[0])


def _upsert_heuristic(conn: apsw.Connection, heuristic: Heuristic, now: int) -> str:
    key = heuristic.similarity_key()
    row = conn.execute(
        f"SELECT {HEURISTIC_COLUMNS} FROM heuristics WHERE similarity_key = ?", (key,)
    ).fetchone()
    stored = heuristic if row is None else heuristic_from_row(row).merge(heuristic)
    conn.execute(
        "INSERT INTO heuristics (heuristic_id, similarity_key, condition_text, action_text, domain, "
        "confidence, sample_size, evidence, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(similarity_key) DO UPDATE SET "
        "confidence = excluded.confidence, sample_size = excluded.sample_size, "
        "evidence = excluded.evidence, updated_at = excluded.updated_at",
        (
            str(stored.heuristic_id),
            key,
            stored.condition,
            stored.action,
            stored.domain,
            stored.confidence,
            stored.evidence.sample_size,
            stored.evidence.model_dump_json(),
            to_us(stored.created_at),
            now,
        ),
    )
    return str(stored.heuristic_id)


def commit_completion(conn: apsw.Connection, record: CompletionRecord) -> Episode:
    episode = record.episode
    eid = str(episode.episode_id)
    row = conn.execute(
        "SELECT rowid, end_time, learning_status, step_count FROM episodes WHERE episode_id = ?",
        (eid,),
    ).fetchone()
    if row is None:
        raise NotFoundError("episode", eid)
    rowid, end_time, status, step_count = row
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
    now = to_us(utc_now())
    pattern_ids = [_upsert_pattern(conn, p, record.success, now) for p in record.patterns]
    heuristic_ids = [_upsert_heuristic(conn, h, now) for h in record.heuristics]
    for pid in pattern_ids:
        conn.execute(
            "INSERT OR IGNORE INTO episode_patterns (episode_id, pattern_id) VALUES (?, ?)",
            (eid, pid),
        )
    final = episode.model_copy(
        update={
            "patterns": [uuid.UUID(p) for p in pattern_ids],
            "heuristics": [uuid.UUID(h) for h in heuristic_ids],
        }
    )
    assert final.end_time is not None
    assert final.outcome is not None
    tools = list(dict.fromkeys(s.tool for s in final.steps))
    conn.execute(
        "UPDATE episodes SET end_time = ?, outcome = ?, outcome_type = ?, reward = ?, "
        "reward_total = ?, reflection = ?, patterns = ?, heuristics = ?, metadata = ?, "
        "tool_summary = ?, learning_status = ?, updated_at = ? WHERE episode_id = ?",
        (
            to_us(final.end_time),
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
            eid,
        ),
    )
    doc = record.search
    conn.execute("DELETE FROM episodes_fts WHERE rowid = ?", (rowid,))
    conn.execute(
        "INSERT INTO episodes_fts (rowid, task_description, steps_text, outcome_text, "
        "reflection_text) VALUES (?, ?, ?, ?, ?)",
        (rowid, doc.description, doc.steps, doc.outcome, doc.reflection),
    )
    if record.embedding is not None:
        store_embedding(conn, eid, record.embedding, now)
    if record.mode == "queued":
        conn.execute(
            "INSERT INTO learning_jobs (episode_id, enqueued_at) VALUES (?, ?)", (eid, now)
        )
    elif record.mode == "learned":
        conn.execute("DELETE FROM learning_jobs WHERE episode_id = ?", (eid,))
    return final


def store_embedding(conn: apsw.Connection, eid: str, emb: EmbeddingRecord, now: int) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO embeddings (episode_id, identity, content_hash, dimensions, vector, "
        "truncated, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (eid, emb.identity, emb.content_hash, emb.dimensions, emb.vector, int(emb.truncated), now),
    )


def record_use(
    conn: apsw.Connection, pattern_ids: list[uuid.UUID], *, applied: bool, success: bool
) -> None:
    now = to_us(utc_now())
    for pid in pattern_ids:
        row = conn.execute(
            f"SELECT {USAGE_COLUMNS} FROM patterns WHERE pattern_id = ?", (str(pid),)
        ).fetchone()
        if row is None:
            continue
        usage = usage_from_row(row)
        if applied:
            usage.application_count += 1
            usage.success_count += int(success)
            usage.failure_count += int(not success)
            usage.last_applied = from_us(now)
        else:
            usage.retrieval_count += 1
            usage.last_retrieved = from_us(now)
        conn.execute(
            "UPDATE patterns SET retrieval_count = ?, application_count = ?, success_count = ?, "
            "failure_count = ?, last_retrieved = ?, last_applied = ?, effectiveness = ? "
            "WHERE pattern_id = ?",
            (
                usage.retrieval_count,
                usage.application_count,
                usage.success_count,
                usage.failure_count,
                None if usage.last_retrieved is None else to_us(usage.last_retrieved),
                None if usage.last_applied is None else to_us(usage.last_applied),
                effectiveness(usage, from_us(now)),
                str(pid),
            ),
        )


def decay(conn: apsw.Connection, *, force: bool, min_effectiveness: float) -> dict[str, int]:
    """Recompute every effectiveness score and remove patterns below the cut.

    Runs at most once per ``DECAY_INTERVAL_DAYS`` unless forced.
    """
    now = utc_now()
    row = conn.execute("SELECT value FROM meta WHERE key = 'last_decay'").fetchone()
    interval_us = DECAY_INTERVAL_DAYS * 86_400 * 1_000_000
    if not force and row is not None and to_us(now) - int(row[0]) < interval_us:
        return {"evaluated": 0, "removed": 0, "skipped": 1}
    evaluated = removed = 0
    for pid, *usage_row in conn.execute(
        f"SELECT pattern_id, {USAGE_COLUMNS} FROM patterns"
    ).fetchall():
        evaluated += 1
        score = effectiveness(usage_from_row(tuple(usage_row)), now)
        if score < min_effectiveness:
            conn.execute("DELETE FROM patterns WHERE pattern_id = ?", (pid,))
            removed += 1
        else:
            conn.execute("UPDATE patterns SET effectiveness = ? WHERE pattern_id = ?", (score, pid))
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('last_decay', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(to_us(now)),),
    )
    return {"evaluated": evaluated, "removed": removed, "skipped": 0}
