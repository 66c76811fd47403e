"""Local answers to reads while the primary store is unreachable (degraded mode).

:class:`~.resilient.ResilientStorage` asks :class:`LocalReads` only after the primary failed a
read with a recoverable error (breaker open, or retries exhausted), and only when it has the
LMDB cache. What can be answered locally:

- **Retrieval candidates** (``lexical_candidates``, ``context_candidates``,
  ``candidates_by_ids``): the completed episodes in the LMDB cache (bounded by its
  ``max_entries``, 1,000 by default) plus the completed episodes of the outbox view (journaled,
  not yet replayed; they win over a cached copy). This is a **bounded scan of the local cache**,
  never of the primary, and only in degraded mode: the primary's indexed queries are used
  whenever it answers. The lexical match tokenises with the ranking's own tokeniser
  (:func:`~self_learning_memory.retrieval.tokens.tokens`) over the description and the tools (the
  text the ranking scores), and scores a match by the BM25 idf of the matched query terms over
  the scanned episodes, so the ranking's relevance component (normalised to the best candidate)
  still orders them. Each candidate's ``sources`` say where it came from: ``degraded:cache`` or
  ``degraded:outbox``; the ranking turns sources into the result's provenance.
- **Patterns and heuristics**: the index the synchronizer keeps in the cache environment (the
  top 500 of each, ``storage/sync.py``), selected like the primary does (by domain, language,
  then overall). Empty, with the note ``degraded:no-index``, when no synchronizer run has stored
  one in this cache.
- **Stats**: counted from the cache, the outbox view and the index, marked ``degraded``.

Everything here is blocking; the caller runs it in a worker thread.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pydantic

from ..model.episode import Episode, TaskContext, TaskType
from ..model.records import EpisodeCandidate, EpisodeFilters, StorageStats
from ..retrieval.lexical_trust import tool_tokens
from ..retrieval.tokens import tokens  # the ranking's own tokeniser
from ..storage.sync import index_synced, read_heuristic_index, read_pattern_index

if TYPE_CHECKING:
    from ..model.pattern import AnyPattern, Heuristic
    from ..model.usage import PatternUsage
    from ..storage.lmdb_cache import EpisodeCache
    from .outbox_view import OutboxView

__all__ = ["CACHE_SOURCE", "OUTBOX_SOURCE", "LocalEpisode", "LocalReads", "matches"]

CACHE_SOURCE = "degraded:cache"
OUTBOX_SOURCE = "degraded:outbox"
PATTERN_INDEX_NOTE = "degraded:pattern-index"
HEURISTIC_INDEX_NOTE = "degraded:heuristic-index"
NO_INDEX_NOTE = "degraded:no-index (no synchronizer run has stored one in the cache)"


@dataclass(frozen=True, slots=True)
class LocalEpisode:
    """What degraded reads need of a local episode (small: kept per cache entry)."""

    candidate: EpisodeCandidate  # ``sources`` say where it is from
    start_time: datetime
    completed: bool
    steps: int
    doc: frozenset[str]  # the ranking's tokens of description and tools
    agent: str | None = None


def matches(local: LocalEpisode, filters: EpisodeFilters) -> bool:
    """The SQL filters of the stores, applied in memory."""
    c = local.candidate
    ctx = c.context
    return not (
        (filters.task_type is not None and c.task_type != filters.task_type)
        or (filters.domain is not None and ctx.domain != filters.domain)
        or (filters.language is not None and ctx.language != filters.language)
        or (filters.framework is not None and ctx.framework != filters.framework)
        or (filters.outcome is not None and c.outcome_type != filters.outcome)
        or (filters.completed is not None and local.completed != filters.completed)
        or (filters.tag is not None and filters.tag not in ctx.tags)
        or (filters.agent is not None and local.agent != filters.agent)
        or (filters.since is not None and local.start_time < filters.since)
        or (filters.until is not None and local.start_time >= filters.until)
    )


def _local(
    eid: uuid.UUID,
    source: str,
    description: str,
    task_type: TaskType,
    context: TaskContext,
    times: tuple[datetime, datetime | None],
    outcome_type: str | None,
    reward: float | None,
    tools: tuple[str, ...],
    steps: int,
    agent: str | None,
) -> LocalEpisode:
    cand = EpisodeCandidate(
        episode_id=eid,
        task_description=description,
        task_type=task_type,
        context=context,
        outcome_type=outcome_type,
        reward_total=reward,
        end_time=times[1],
        tools=tools,
        sources=(source,),
    )
    completed = times[1] is not None and outcome_type is not None
    doc = tokens(description) | tool_tokens(tools)
    return LocalEpisode(cand, times[0], completed, steps, doc, agent)


def from_episode(episode: Episode, source: str) -> LocalEpisode:
    return _local(
        episode.episode_id,
        source,
        episode.task_description,
        episode.task_type,
        episode.context,
        (episode.start_time, episode.end_time),
        episode.outcome.type if episode.outcome is not None else None,
        episode.reward.total if episode.reward is not None else None,
        tuple(dict.fromkeys(s.tool for s in episode.steps)),
        len(episode.steps),
        episode.agent,
    )


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("naive time")
    return parsed


def from_json(payload: bytes, source: str) -> LocalEpisode | None:
    """From a cache entry's episode JSON, reading only the fields needed (validating a whole
    episode with its steps costs ~0.3 ms); any surprise falls back to the full model."""
    try:
        raw = json.loads(payload)
        start = _time(raw["start_time"])
        assert start is not None
        outcome, reward = raw.get("outcome"), raw.get("reward")
        return _local(
            uuid.UUID(raw["episode_id"]),
            source,
            str(raw["task_description"]),
            TaskType(raw["task_type"]),
            TaskContext.model_validate(raw["context"]),
            (start, _time(raw.get("end_time"))),
            None if outcome is None else str(outcome["type"]),
            None if reward is None else float(reward["total"]),
            tuple(dict.fromkeys(str(step["tool"]) for step in raw["steps"])),
            len(raw["steps"]),
            None if raw.get("agent") is None else str(raw["agent"]),
        )
    except (AssertionError, KeyError, TypeError, ValueError, pydantic.ValidationError):
        try:
            return from_episode(Episode.model_validate_json(payload), source)
        except pydantic.ValidationError:
            return None


class LocalReads:
    """Reads answered from the LMDB cache, the outbox view and the synchronizer's index."""

    def __init__(self, cache: EpisodeCache, view: OutboxView) -> None:
        self.cache = cache
        self.view = view
        self._memo: dict[uuid.UUID, tuple[int, LocalEpisode]] = {}  # id -> (checksum, entry)

    @property
    def available(self) -> bool:
        return self.cache.is_open

    # -- episodes --------------------------------------------------------------------------
    def _episodes(self) -> dict[uuid.UUID, LocalEpisode]:
        """Every local episode: the cache's (entries decoded once per change), then the
        outbox view's over them (newer), without those deleted offline."""
        ids, changed = self.cache.scan({i: crc for i, (crc, _) in self._memo.items()})
        for eid, (crc, payload) in changed.items():
            entry = from_json(payload, CACHE_SOURCE)
            if entry is not None and entry.candidate.episode_id == eid:
                self._memo[eid] = (crc, entry)
        self._memo = {i: self._memo[i] for i in ids if i in self._memo}
        found = {i: entry for i, (_, entry) in self._memo.items()}
        for episode in self.view.queued_episodes():
            found[episode.episode_id] = from_episode(episode, OUTBOX_SOURCE)
        for eid in [i for i in found if self.view.is_deleted(i)]:
            del found[eid]
        return found

    def _completed(self, filters: EpisodeFilters) -> list[LocalEpisode]:
        return [e for e in self._episodes().values() if e.completed and matches(e, filters)]

    def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        query = tokens(" ".join(terms))
        if not query:
            return []
        local = self._completed(filters)
        df = Counter(t for e in local for t in e.doc & query)
        n = len(local)
        idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in df}
        scored = []
        for entry in local:
            score = sum(idf[t] for t in entry.doc & query)
            if score > 0:
                scored.append(dataclasses.replace(entry.candidate, lexical=score))
        scored.sort(key=lambda c: (-(c.lexical or 0.0), c.episode_id))
        return scored[:limit]

    def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        """Same domain, newest end first (as the stores answer it)."""
        local = [e.candidate for e in self._completed(filters)]
        same = [c for c in local if c.context.domain == context.domain and c.end_time is not None]
        same.sort(key=lambda c: (c.end_time, c.episode_id), reverse=True)
        return same[:limit]

    def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]:
        wanted = set(episode_ids)
        return [
            dataclasses.replace(e.candidate, sources=("vector", *e.candidate.sources))
            for e in self._completed(filters)
            if e.candidate.episode_id in wanted
        ]

    # -- patterns and heuristics -----------------------------------------------------------
    def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> tuple[list[tuple[AnyPattern, PatternUsage]], str]:
        """The primary's selection (top ``limit`` of the domain, of the language, overall)
        over the index, and the provenance note."""
        from ..model.pattern import context_of

        if not index_synced(self.cache):
            return [], NO_INDEX_NOTE
        index = read_pattern_index(self.cache)  # most often seen first
        ctxs = [context_of(p) for p, _ in index]
        language = context.language
        groups = (
            [pu for pu, c in zip(index, ctxs, strict=True) if c.domain == context.domain],
            [pu for pu, c in zip(index, ctxs, strict=True) if language and c.language == language],
            index,
        )
        chosen: dict[uuid.UUID, tuple[AnyPattern, PatternUsage]] = {}
        for group in groups:
            for pattern, usage in group[:limit]:
                chosen.setdefault(pattern.id, (pattern, usage))
        return list(chosen.values()), PATTERN_INDEX_NOTE

    def heuristic_candidates(self, context: TaskContext, limit: int) -> tuple[list[Heuristic], str]:
        if not index_synced(self.cache):
            return [], NO_INDEX_NOTE
        index = read_heuristic_index(self.cache)  # most confident first
        chosen = {
            h.heuristic_id: h for h in [h for h in index if h.domain == context.domain][:limit]
        }
        for h in index[:limit]:
            chosen.setdefault(h.heuristic_id, h)
        return list(chosen.values()), HEURISTIC_INDEX_NOTE

    # -- stats -----------------------------------------------------------------------------
    def stats(self) -> StorageStats:
        """What is known locally: lower bounds of the primary's counts, ``degraded=True``."""
        episodes = list(self._episodes().values())
        completed = [e for e in episodes if e.completed]
        patterns = read_pattern_index(self.cache)
        heuristics = read_heuristic_index(self.cache)
        outcomes = Counter(e.candidate.outcome_type or "" for e in completed)
        size = self.cache.env_info()["used_bytes"]
        return StorageStats(
            episodes=len(episodes),
            completed=len(completed),
            steps=sum(e.steps for e in episodes),
            patterns=len(patterns),
            heuristics=len(heuristics),
            learning_queue_depth=self.view.queued_jobs,
            size_bytes=size if isinstance(size, int) else 0,
            pattern_occurrences=sum(p.occurrence_count for p, _ in patterns),
            pattern_success_rate=_mean([p.rate() for p, _ in patterns]),
            pattern_effectiveness=_mean([u.effectiveness_score for _, u in patterns]),
            outcomes=dict(outcomes),
            degraded=True,
        )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
