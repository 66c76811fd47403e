"""Read programs over candidates, patterns, heuristics and vectors, the learning queue's
claim and release, and the store statistics."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from ...model.episode import Episode, TaskContext, utc_now
from ...model.pattern import AnyPattern, Heuristic
from ...model.records import (
    EmbeddingStatus,
    EpisodeCandidate,
    EpisodeFilters,
    PatternFilters,
    StorageStats,
)
from ...model.usage import PatternUsage
from ..codec import EPISODE_COLUMNS
from . import rows as decode
from .dialect import Dialect
from .episodes import load, where
from .program import Program, execute, one, rows

__all__ = [
    "candidates_by_ids",
    "claim_learning_job",
    "context_candidates",
    "count",
    "embedding_status",
    "embeddings_since",
    "episodes_missing_embedding",
    "fail_learning_job",
    "get_heuristic",
    "get_pattern",
    "heuristic_candidates",
    "list_heuristics",
    "list_patterns",
    "pattern_candidates",
    "pattern_episodes",
    "stats",
    "vector_by_hash",
]

_PATTERN_COLUMNS = f"pattern_data, {decode.USAGE_COLUMNS}"


def count(sql: str, args: tuple[Any, ...] = ()) -> Program[int]:
    row = yield one(sql, args)
    return int(row[0])


# -- retrieval candidates ----------------------------------------------------------------
def completed(d: Dialect, filters: EpisodeFilters) -> tuple[str, list[Any]]:
    """The filters over completed episodes (alias ``e``): the only retrieval candidates."""
    return where(d, filters.model_copy(update={"completed": True}), "e")


def context_candidates(
    d: Dialect, context: TaskContext, filters: EpisodeFilters, limit: int
) -> Program[list[EpisodeCandidate]]:
    condition, args = completed(d, filters)
    found = yield rows(
        f"SELECT {decode.CANDIDATE_COLUMNS}, {decode.CANDIDATE_USAGE_COLUMNS} FROM episodes e "
        f"{decode.USAGE_JOIN} WHERE e.domain = ? AND {condition} "
        "ORDER BY e.end_time DESC LIMIT ?",
        (context.domain, *args, limit),
    )
    return [decode.candidate(d, r, None, "context:domain", usage_at=12) for r in found]


def candidates_by_ids(
    d: Dialect, episode_ids: list[uuid.UUID], filters: EpisodeFilters
) -> Program[list[EpisodeCandidate]]:
    if not episode_ids:
        return []
    condition, args = completed(d, filters)
    found = yield rows(
        f"SELECT {decode.CANDIDATE_COLUMNS}, {decode.CANDIDATE_USAGE_COLUMNS} FROM episodes e "
        f"{decode.USAGE_JOIN} WHERE {d.in_list('e.episode_id')} AND {condition}",
        (d.list_arg([str(i) for i in episode_ids]), *args),
    )
    return [decode.candidate(d, r, None, "vector", usage_at=12) for r in found]


# -- patterns and heuristics -------------------------------------------------------------
def pattern_candidates(
    d: Dialect, context: TaskContext, limit: int
) -> Program[list[tuple[AnyPattern, PatternUsage]]]:
    cols = f"pattern_id, {_PATTERN_COLUMNS}"
    order = "ORDER BY occurrence_count DESC LIMIT ?"
    found = yield rows(
        f"{d.top(cols, f'FROM patterns WHERE context_domain = ? {order}')} UNION "
        f"{d.top(cols, f'FROM patterns WHERE context_language = ? {order}')} UNION "
        f"{d.top(cols, f'FROM patterns {order}')}",
        (context.domain, limit, context.language, limit, limit),
    )
    return decode.patterns(d, (r[1:] for r in found))


def get_pattern(
    d: Dialect, pattern_id: uuid.UUID
) -> Program[tuple[AnyPattern, PatternUsage] | None]:
    found = yield rows(
        f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE pattern_id = ?", (str(pattern_id),)
    )
    decoded = decode.patterns(d, found)
    return decoded[0] if decoded else None


# Above this many source episodes, a pattern's newest ones are found by walking the newest
# episodes (stopping at ``per_pattern``) instead of ranking all of its links.
WALK_ABOVE = 500


def pattern_episodes(
    d: Dialect, pattern_ids: list[uuid.UUID], per_pattern: int
) -> Program[dict[uuid.UUID, list[uuid.UUID]]]:
    """The episodes each pattern was extracted from (its evidence), newest first.

    A pattern seen in few episodes ranks all its links; one seen in many (a broad context
    pattern can be in a third of the store) walks the episodes newest first and probes each
    for the link, which stops after about ``per_pattern`` x episodes / links rows instead of
    reading every link."""
    if not pattern_ids:
        return {}
    ids = [str(i) for i in pattern_ids]
    counted = yield rows(
        f"SELECT pattern_id, count(*) FROM episode_patterns WHERE {d.in_list('pattern_id')} "
        "GROUP BY pattern_id",
        (d.list_arg(ids),),
    )
    links = {str(pid): int(n) for pid, n in counted}
    few = [i for i in ids if 0 < links.get(i, 0) <= WALK_ABOVE]
    out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in pattern_ids}
    if few:
        found = yield rows(
            "SELECT pattern_id, episode_id FROM ("
            " SELECT ep.pattern_id, ep.episode_id, row_number() OVER ("
            "  PARTITION BY ep.pattern_id ORDER BY e.start_time DESC, e.episode_id) AS n"
            " FROM episode_patterns ep JOIN episodes e ON e.episode_id = ep.episode_id"
            f" WHERE {d.in_list('ep.pattern_id')}) ranked WHERE n <= ? ORDER BY pattern_id, n",
            (d.list_arg(few), per_pattern),
        )
        for pid, eid in found:
            out[uuid.UUID(pid)].append(uuid.UUID(eid))
    for pid in (i for i in ids if links.get(i, 0) > WALK_ABOVE):
        newest = yield rows(
            "SELECT e.episode_id FROM episodes e WHERE EXISTS (SELECT 1 FROM episode_patterns "
            "ep WHERE ep.episode_id = e.episode_id AND ep.pattern_id = ?) "
            "ORDER BY e.start_time DESC, e.episode_id LIMIT ?",
            (pid, per_pattern),
        )
        out[uuid.UUID(pid)] = [uuid.UUID(r[0]) for r in newest]
    return out


def list_patterns(
    d: Dialect, filters: PatternFilters, limit: int, offset: int
) -> Program[list[tuple[AnyPattern, PatternUsage]]]:
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
    found = yield rows(
        f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE {' AND '.join(clauses)} "
        "ORDER BY occurrence_count DESC, success_rate DESC, pattern_id LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    return decode.patterns(d, found)


def heuristic_candidates(d: Dialect, context: TaskContext, limit: int) -> Program[list[Heuristic]]:
    cols = decode.HEURISTIC_COLUMNS
    order = "ORDER BY confidence DESC LIMIT ?"
    found = yield rows(
        f"{d.top(cols, f'FROM heuristics WHERE domain = ? {order}')} UNION "
        f"{d.top(cols, f'FROM heuristics {order}')}",
        (context.domain, limit, limit),
    )
    return [decode.heuristic_from_row(r, d) for r in found]


def get_heuristic(d: Dialect, heuristic_id: uuid.UUID) -> Program[Heuristic | None]:
    row = yield one(
        f"SELECT {decode.HEURISTIC_COLUMNS} FROM heuristics WHERE heuristic_id = ?",
        (str(heuristic_id),),
    )
    return None if row is None else decode.heuristic_from_row(row, d)


def list_heuristics(d: Dialect, limit: int, offset: int) -> Program[list[Heuristic]]:
    found = yield rows(
        f"SELECT {decode.HEURISTIC_COLUMNS} FROM heuristics "
        "ORDER BY confidence DESC, heuristic_id LIMIT ? OFFSET ?",
        (limit, offset),
    )
    return [decode.heuristic_from_row(r, d) for r in found]


# -- learning queue ----------------------------------------------------------------------
def claim_learning_job(
    d: Dialect, worker: str, claim_timeout_s: float
) -> Program[uuid.UUID | None]:
    now = utc_now()
    stale = now - timedelta(microseconds=int(claim_timeout_s * 1_000_000))
    row = yield one(
        "UPDATE learning_jobs SET claimed_by = ?, claimed_at = ?, attempts = attempts + 1 "
        "WHERE episode_id = (SELECT episode_id FROM learning_jobs WHERE claimed_at IS NULL "
        f"OR claimed_at < ? ORDER BY enqueued_at LIMIT 1{d.skip_locked}) RETURNING episode_id",
        (worker, d.to_time(now), d.to_time(stale)),
    )
    return None if row is None else uuid.UUID(row[0])


def fail_learning_job(
    d: Dialect, episode_id: uuid.UUID, error: str, max_attempts: int
) -> Program[bool]:
    """Release a failed job for another try; give up (and say so) after ``max_attempts``."""
    eid = str(episode_id)
    row = yield one(f"SELECT attempts FROM learning_jobs WHERE episode_id = ?{d.lock}", (eid,))
    if row is None:
        return False
    if row[0] >= max_attempts:
        yield execute("DELETE FROM learning_jobs WHERE episode_id = ?", (eid,))
        yield execute("UPDATE episodes SET learning_status = 'failed' WHERE episode_id = ?", (eid,))
        return False
    yield execute(
        "UPDATE learning_jobs SET claimed_by = NULL, claimed_at = NULL, last_error = ? "
        "WHERE episode_id = ?",
        (error[:2000], eid),
    )
    return True


# -- vectors -----------------------------------------------------------------------------
def embeddings_since(
    d: Dialect, identity: str, after: int, limit: int
) -> Program[list[tuple[int, uuid.UUID, bytes, bool]]]:
    # seq: a number never given twice, in the order the rows became visible (migration 8 on
    # SQLite; on PostgreSQL taken under a lock held to commit): a row written after ``after``
    # was read has a higher one
    found = yield rows(
        f"SELECT seq, episode_id, {d.vector_read}, truncated FROM embeddings "
        f"WHERE identity = ? AND seq > ? AND {d.vector_present} ORDER BY seq LIMIT ?",
        (identity, after, limit),
    )
    return [(int(r[0]), uuid.UUID(r[1]), d.vector_bytes(r[2]), bool(r[3])) for r in found]


def vector_by_hash(d: Dialect, identity: str, content_hash: str) -> Program[bytes | None]:
    row = yield one(
        f"SELECT {d.vector_read} FROM embeddings WHERE identity = ? AND content_hash = ? "
        f"AND {d.vector_present} LIMIT 1",
        (identity, content_hash),
    )
    return None if row is None else d.vector_bytes(row[0])


def embedding_status(d: Dialect, identity: str) -> Program[EmbeddingStatus]:
    if d.counted_rows:  # the counts the store's triggers keep (SQLite migration 9)
        mine = f"vectors:{identity}"
        sql = (
            "SELECT (SELECT coalesce(sum(n), 0) FROM row_counts WHERE name = ?), "
            "(SELECT coalesce(sum(n), 0) FROM row_counts "
            "WHERE name > 'vectors:' AND name < 'vectors;' AND name <> ?), "
            "(SELECT coalesce(sum(n), 0) FROM row_counts WHERE name = 'completed')"
        )
        args: tuple[str, ...] = (mine, mine)
    else:
        present = d.vector_present
        sql = (
            f"SELECT (SELECT count(*) FROM embeddings WHERE identity = ? AND {present}), "
            f"(SELECT count(*) FROM embeddings WHERE identity <> ? AND {present}), "
            "(SELECT count(*) FROM episodes WHERE end_time IS NOT NULL)"
        )
        args = (identity, identity)
    row = yield one(sql, args)
    embedded, other, completed_count = (int(v) for v in row)
    return EmbeddingStatus(identity, embedded, max(0, completed_count - embedded), other)


def episodes_missing_embedding(d: Dialect, identity: str, limit: int) -> Program[list[Episode]]:
    if d.vectors_in_every_row:
        # the rows of the identity's embedded episodes, found once from two indexes, against
        # the completed episodes' index entries: no embedding row is read (SQLite, 100K
        # episodes all embedded: 333 -> 87 ms)
        missing = (
            "e.rowid NOT IN (SELECT x.rowid FROM embeddings m JOIN episodes x "
            "ON x.episode_id = m.episode_id WHERE m.identity = ?)"
        )
    else:
        missing = (
            "NOT EXISTS (SELECT 1 FROM embeddings m WHERE m.episode_id = e.episode_id "
            f"AND m.identity = ? AND m.{d.vector_present})"
        )
    found = yield rows(
        f"SELECT {EPISODE_COLUMNS} FROM episodes e WHERE e.end_time IS NOT NULL AND {missing} "
        "ORDER BY e.end_time LIMIT ?",
        (identity, limit),
    )
    return (yield from load(d, found))


# -- statistics --------------------------------------------------------------------------
def stats(d: Dialect) -> Program[StorageStats]:
    row = yield one(
        "SELECT (SELECT count(*) FROM episodes),"
        " (SELECT count(*) FROM episodes WHERE end_time IS NOT NULL),"
        " (SELECT count(*) FROM steps), (SELECT count(*) FROM patterns),"
        " (SELECT count(*) FROM heuristics), (SELECT count(*) FROM learning_jobs),"
        f" ({d.size_sql}),"
        " (SELECT coalesce(sum(occurrence_count), 0) FROM patterns),"
        " (SELECT coalesce(avg(success_rate), 0) FROM patterns),"
        " (SELECT coalesce(avg(effectiveness), 0) FROM patterns)"
    )
    outcomes = yield rows(
        "SELECT outcome_type, count(*) FROM episodes"
        " WHERE outcome_type IS NOT NULL GROUP BY outcome_type"
    )
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
        outcomes={str(kind): int(n) for kind, n in outcomes},
    )
