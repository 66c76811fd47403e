"""Retrieval feedback: which retrieved episodes and patterns a task used, and how it ended
(tables ``retrieval_uses`` and ``episode_usage``: SQLite migration 5, PostgreSQL migration 4).

:func:`record_retrieval_use` is one transaction. It links the task's episode to the episodes
and patterns it used (a link is kept once per task and item; ``helpful`` set again replaces the
earlier mark and the counters move with it), and, when the task is completed, counts every
link not counted yet with the task's outcome score: an episode's ``episode_usage`` gains a use
and the score; a pattern gains an application (successful at a score of at least 0.5, as
``record_pattern_application``). Called with no ids after a completion it only counts what
was linked while the task ran. Ids are checked first: an unknown task, episode or pattern
raises :class:`~...errors.NotFoundError` and nothing is written.
"""

from __future__ import annotations

import uuid
from typing import Any

from ...errors import NotFoundError, ValidationError
from ...model.episode import outcome_score, utc_now
from ...model.usage import EpisodeUsage
from ..codec import outcome_from_json
from . import learning_sql  # a module: learning_sql imports this one too
from .dialect import Dialect
from .program import Program, execute, one, rows

__all__ = ["apply_pending_uses", "episode_usage", "pending_uses", "record_retrieval_use"]

EPISODE, PATTERN = "episode", "pattern"


def _missing(
    d: Dialect, table: str, key: str, ids: list[str], completed: bool = False
) -> Program[str | None]:
    if not ids:
        return None
    done = " AND end_time IS NOT NULL" if completed else ""
    found = yield rows(
        f"SELECT {key} FROM {table} WHERE {d.in_list(key)}{done}", (d.list_arg(ids),)
    )
    known = {str(r[0]) for r in found}
    return next((i for i in ids if i not in known), None)


def _add_usage(
    d: Dialect,
    episode_id: str,
    now: Any,
    *,
    uses: int = 0,
    success: float = 0.0,
    helpful: int = 0,
    unhelpful: int = 0,
) -> Program[None]:
    exists = yield one("SELECT 1 FROM episodes WHERE episode_id = ?", (episode_id,))
    if exists is None:  # deleted since it was linked: nothing to count
        return
    yield execute(
        "INSERT INTO episode_usage (episode_id, uses, success, helpful, unhelpful, last_used, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (episode_id) DO UPDATE SET "
        "uses = episode_usage.uses + excluded.uses, "
        "success = episode_usage.success + excluded.success, "
        "helpful = episode_usage.helpful + excluded.helpful, "
        "unhelpful = episode_usage.unhelpful + excluded.unhelpful, "
        "last_used = COALESCE(excluded.last_used, episode_usage.last_used), "
        "updated_at = excluded.updated_at",
        (episode_id, uses, success, helpful, unhelpful, now if uses else None, now),
    )


def _mark(helpful: int | None) -> tuple[int, int]:
    """(helpful, unhelpful) counts of one mark."""
    if helpful is None:
        return 0, 0
    return (1, 0) if helpful else (0, 1)


def record_retrieval_use(
    d: Dialect,
    task_id: uuid.UUID,
    episode_ids: list[uuid.UUID],
    pattern_ids: list[uuid.UUID],
    helpful: bool | None,
) -> Program[int]:
    """Link, then count what the completed task used; returns how many links were counted."""
    tid = str(task_id)
    task = yield one(f"SELECT end_time, outcome FROM episodes WHERE episode_id = ?{d.lock}", (tid,))
    if task is None:
        raise NotFoundError("episode", tid)
    episodes = list(dict.fromkeys(str(i) for i in episode_ids))
    patterns = list(dict.fromkeys(str(i) for i in pattern_ids))
    if tid in episodes:
        raise ValidationError(
            "used_episode_ids", f"names the task's own episode {tid}", "other episodes"
        )
    missing = yield from _missing(d, "episodes", "episode_id", episodes, completed=True)
    if missing is not None:
        raise NotFoundError("completed episode", missing)
    missing = yield from _missing(d, "patterns", "pattern_id", patterns)
    if missing is not None:
        raise NotFoundError("pattern", missing)
    now = d.to_time(utc_now())
    mark = None if helpful is None else int(helpful)
    for kind, ids in ((EPISODE, episodes), (PATTERN, patterns)):
        for item in sorted(ids) if d.row_locks else ids:
            key = (tid, kind, item)
            row = yield one(
                "SELECT helpful FROM retrieval_uses WHERE task_episode_id = ? AND item_kind = ? "
                f"AND item_id = ?{d.lock}",
                key,
            )
            if row is None:
                yield execute(
                    "INSERT INTO retrieval_uses (task_episode_id, item_kind, item_id, helpful, "
                    "applied, created_at) VALUES (?, ?, ?, ?, 0, ?)",
                    (*key, mark, now),
                )
                before: int | None = None
            else:
                before = None if row[0] is None else int(row[0])
                if mark is None or mark == before:
                    continue
                yield execute(
                    "UPDATE retrieval_uses SET helpful = ? WHERE task_episode_id = ? "
                    "AND item_kind = ? AND item_id = ?",
                    (mark, *key),
                )
            if kind == EPISODE and mark is not None and mark != before:
                (plus, minus), (was_plus, was_minus) = _mark(mark), _mark(before)
                yield from _add_usage(
                    d, item, now, helpful=plus - was_plus, unhelpful=minus - was_minus
                )
    if task[0] is None or task[1] is None:  # the task is open: counted when it completes
        return 0
    return (yield from apply_pending_uses(d, tid, outcome_score(outcome_from_json(task[1]))))


def pending_uses(d: Dialect, task_ids: list[str]) -> Program[dict[str, list[tuple[str, str]]]]:
    """The links not counted yet of these tasks (locked where rows are), for a batch of
    completions to read once: ``{task id: [(item kind, item id)]}``."""
    found: dict[str, list[tuple[str, str]]] = {t: [] for t in task_ids}
    for start in range(0, len(task_ids), 500):
        chunk = task_ids[start : start + 500]
        for task, kind, item in (
            yield rows(
                "SELECT task_episode_id, item_kind, item_id FROM retrieval_uses "
                f"WHERE {d.in_list('task_episode_id')} AND applied = 0 "
                f"ORDER BY task_episode_id, item_kind, item_id{d.lock}",
                (d.list_arg(chunk),),
            )
        ):
            found[str(task)].append((str(kind), str(item)))
    return found


def apply_pending_uses(
    d: Dialect, task_id: str, score: float, pending: list[tuple[str, str]] | None = None
) -> Program[int]:
    """Count every link of the completed task not counted yet, with its outcome ``score``
    (also run by the completion transaction, which may pass the links it read up front as
    ``pending``); returns how many were counted."""
    if pending is None:
        found = yield rows(
            "SELECT item_kind, item_id FROM retrieval_uses WHERE task_episode_id = ? "
            f"AND applied = 0 ORDER BY item_kind, item_id{d.lock}",
            (task_id,),
        )
        pending = [(str(kind), str(item)) for kind, item in found]
    if not pending:
        return 0
    yield execute(
        "UPDATE retrieval_uses SET applied = 1 WHERE task_episode_id = ? AND applied = 0",
        (task_id,),
    )
    now = d.to_time(utc_now())
    used_patterns: list[uuid.UUID] = []
    for kind, item in pending:
        if kind == EPISODE:
            yield from _add_usage(d, str(item), now, uses=1, success=score)
        else:
            used_patterns.append(uuid.UUID(str(item)))
    if used_patterns:
        yield from learning_sql.record_pattern_use(
            d, used_patterns, applied=True, success=score >= 0.5
        )
    return len(pending)


def episode_usage(
    d: Dialect, episode_ids: list[uuid.UUID]
) -> Program[dict[uuid.UUID, EpisodeUsage]]:
    """The usage counters of those of ``episode_ids`` that have any."""
    if not episode_ids:
        return {}
    found = yield rows(
        "SELECT episode_id, uses, success, helpful, unhelpful, last_used FROM episode_usage "
        f"WHERE {d.in_list('episode_id')}",
        (d.list_arg([str(i) for i in episode_ids]),),
    )
    return {
        uuid.UUID(str(r[0])): EpisodeUsage(
            uses=int(r[1]),
            success=float(r[2]),
            helpful=int(r[3]),
            unhelpful=int(r[4]),
            last_used=None if r[5] is None else d.from_time(r[5]),
        )
        for r in found
    }
