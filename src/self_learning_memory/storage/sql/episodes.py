"""Episode programs: filters as WHERE clauses, creation, step appends, reads and deletion."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ...errors import InvalidStateError, NotFoundError, ValidationError
from ...model.episode import Episode, ExecutionStep, utc_now
from ...model.records import EpisodeFilters, EpisodeState
from ..codec import EPISODE_COLUMNS, STEP_COLUMNS, dump_json
from . import rows as decode
from .dialect import Dialect
from .program import Op, Program, changes, execute, many, one, rows

__all__ = [
    "Announce",
    "append_steps",
    "count_episodes",
    "create_episode",
    "create_row",
    "delete_episode",
    "episode_state",
    "get_episodes",
    "list_episodes",
    "load",
    "where",
]

# The statements that tell other processes an episode changed (``op``, episode id), run in the
# changing transaction: PostgreSQL's NOTIFY; none for the embedded store.
Announce = Callable[[str, str], list[Op]]

_STATE_SQL = (
    "SELECT end_time, step_count, last_step_number, learning_status FROM episodes "
    "WHERE episode_id = ?"
)


def where(d: Dialect, filters: EpisodeFilters, alias: str = "") -> tuple[str, list[Any]]:
    """The filters as one SQL condition (``1 = 1`` when there are none) and its arguments."""
    p = f"{alias}." if alias else ""
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("task_type", filters.task_type.value if filters.task_type else None),
        ("domain", filters.domain),
        ("language", filters.language),
        ("framework", filters.framework),
        ("outcome_type", filters.outcome),
        ("agent", filters.agent),
    ):
        if value is not None:
            clauses.append(f"{p}{column} = ?")
            args.append(value)
    if filters.completed is True:
        clauses.append(f"{p}end_time IS NOT NULL")
    elif filters.completed is False:
        clauses.append(f"{p}end_time IS NULL")
    if filters.tag is not None:
        clauses.append(d.has_tag(f"{p}tags"))
        args.append(d.tag_arg(filters.tag))
    if filters.since is not None:
        clauses.append(f"{p}start_time >= ?")
        args.append(d.to_time(filters.since))
    if filters.until is not None:
        clauses.append(f"{p}start_time < ?")
        args.append(d.to_time(filters.until))
    return (" AND ".join(clauses) if clauses else "1 = 1"), args


def create_episode(d: Dialect, episode: Episode) -> Program[None]:
    yield execute(*create_row(d, episode))


def create_row(d: Dialect, episode: Episode) -> tuple[str, tuple[Any, ...]]:
    """The INSERT of a new episode's row and its arguments (a batch inserts several rows
    of the same statement at once)."""
    ctx = episode.context
    return (
        "INSERT INTO episodes (episode_id, task_type, task_description, domain, language, "
        "framework, complexity, tags, context, start_time, metadata, updated_at, agent) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, {d.json_param}, ?, ?, ?, ?, ?)",
        (
            str(episode.episode_id),
            episode.task_type.value,
            episode.task_description,
            ctx.domain,
            ctx.language,
            ctx.framework,
            ctx.complexity.value,
            dump_json(ctx.tags),
            ctx.model_dump_json(),
            d.to_time(episode.start_time),
            dump_json(episode.metadata),
            d.to_time(episode.start_time),
            episode.agent,
        ),
    )


def episode_state(episode_id: uuid.UUID) -> Program[EpisodeState | None]:
    row = yield one(_STATE_SQL, (str(episode_id),))
    if row is None:
        return None
    return EpisodeState(episode_id, row[0] is not None, row[1], row[2], row[3])


def append_steps(
    d: Dialect,
    announce: Announce,
    episode_id: uuid.UUID,
    steps: list[ExecutionStep],
    locked: EpisodeState | None = None,
    *,
    count_later: bool = False,
) -> Program[EpisodeState]:
    """``locked``: the episode's state, already read under this transaction's row lock (a
    batch of writes reads its episodes' states together), so it is not read again.
    ``count_later``: the episode's step count is not written here; the caller writes it
    (:func:`step_count_update` with the returned state) once after its appends."""
    eid = str(episode_id)
    row: Any
    if locked is not None:
        row = (
            "completed" if locked.completed else None,
            locked.step_count,
            locked.last_step_number,
            locked.learning_status,
        )
    else:
        row = yield one(_STATE_SQL + d.lock, (eid,))
    if row is None:
        raise NotFoundError("episode", eid)
    if row[0] is not None:
        raise InvalidStateError(f"Episode {eid} is completed; steps cannot be added to it.")
    last = row[2]
    for s in steps:
        if s.step_number <= last:
            raise ValidationError(
                "step_number",
                f"{s.step_number} is not after the last stored step {last} of episode {eid}",
                f"> {last}",
            )
        last = s.step_number
    yield many(
        f"INSERT INTO steps ({STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                eid,
                s.step_number,
                d.to_time(s.timestamp),
                s.tool,
                s.action,
                dump_json(s.parameters),
                None if s.result is None else s.result.model_dump_json(),
                s.latency_ms,
                s.tokens_used,
                dump_json(s.metadata),
            )
            for s in steps
        ],
    )
    count = row[1] + len(steps)
    state = EpisodeState(episode_id, False, count, last, row[3])
    if not count_later:
        yield step_count_update(d, state)
    yield from announce("steps", eid)
    return state


def step_count_update(d: Dialect, state: EpisodeState) -> Op:
    """The episode row's step count and last step number as ``state`` has them."""
    return execute(
        "UPDATE episodes SET step_count = ?, last_step_number = ?, updated_at = ? "
        "WHERE episode_id = ?",
        (state.step_count, state.last_step_number, d.to_time(utc_now()), str(state.episode_id)),
    )


def load(d: Dialect, episode_rows: list[tuple[Any, ...]]) -> Program[list[Episode]]:
    """Episodes from rows of ``EPISODE_COLUMNS``, with their steps."""
    if not episode_rows:
        return []
    ids = [r[0] for r in episode_rows]
    steps: dict[str, list[ExecutionStep]] = {i: [] for i in ids}
    step_rows = yield rows(
        f"SELECT {STEP_COLUMNS} FROM steps WHERE {d.in_list('episode_id')} "
        "ORDER BY episode_id, step_number",
        (d.list_arg(ids),),
    )
    for step_row in step_rows:
        steps[step_row[0]].append(decode.step(d, step_row))
    return [decode.episode(d, r, steps[r[0]]) for r in episode_rows]


def get_episodes(d: Dialect, episode_ids: list[uuid.UUID]) -> Program[list[Episode]]:
    """The stored episodes among ``episode_ids``, in that order."""
    if not episode_ids:
        return []
    found = yield rows(
        f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE {d.in_list('episode_id')}",
        (d.list_arg([str(i) for i in episode_ids]),),
    )
    by_id = {e.episode_id: e for e in (yield from load(d, found))}
    return [by_id[i] for i in episode_ids if i in by_id]


def list_episodes(
    d: Dialect, filters: EpisodeFilters, limit: int, offset: int
) -> Program[list[Episode]]:
    condition, args = where(d, filters)
    found = yield rows(
        f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE {condition} "
        "ORDER BY start_time DESC, episode_id LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    return (yield from load(d, found))


def count_episodes(d: Dialect, filters: EpisodeFilters) -> Program[int]:
    condition, args = where(d, filters)
    row = yield one(f"SELECT count(*) FROM episodes WHERE {condition}", args)
    return int(row[0])


def delete_episode(announce: Announce, episode_id: uuid.UUID) -> Program[bool]:
    eid = str(episode_id)
    deleted = yield changes("DELETE FROM episodes WHERE episode_id = ?", (eid,))
    if deleted:
        yield from announce("deleted", eid)
    return bool(deleted)
