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
  (:func:`~self_learning_memory.core.retrieval.tokens`) over the description and the tools (the
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
import math
import uuid
from collections import Counter
from typing import TYPE_CHECKING

from .backend import EpisodeCandidate, EpisodeFilters, StorageStats
from .sync import index_synced, read_heuristic_index, read_pattern_index

if TYPE_CHECKING:
    from ..core.types import Episode, TaskContext
    from ..patterns.effectiveness import PatternUsage
    from ..patterns.types import AnyPattern, Heuristic
    from .lmdb_cache import EpisodeCache
    from .outbox_view import OutboxView

__all__ = ["CACHE_SOURCE", "OUTBOX_SOURCE", "LocalReads", "matches"]

CACHE_SOURCE = "degraded:cache"
OUTBOX_SOURCE = "degraded:outbox"
PATTERN_INDEX_NOTE = "degraded:pattern-index"
HEURISTIC_INDEX_NOTE = "degraded:heuristic-index"
NO_INDEX_NOTE = "degraded:no-index (no synchronizer run has stored one in the cache)"


def matches(episode: Episode, filters: EpisodeFilters) -> bool:
    """The SQL filters of the stores, applied to an episode in memory."""
    ctx = episode.context
    outcome = episode.outcome.type if episode.outcome is not None else None
    return not (
        (filters.task_type is not None and episode.task_type != filters.task_type)
        or (filters.domain is not None and ctx.domain != filters.domain)
        or (filters.language is not None and ctx.language != filters.language)
        or (filters.framework is not None and ctx.framework != filters.framework)
        or (filters.outcome is not None and outcome != filters.outcome)
        or (filters.completed is not None and episode.is_complete() != filters.completed)
        or (filters.tag is not None and filters.tag not in ctx.tags)
        or (filters.since is not None and episode.start_time < filters.since)
        or (filters.until is not None and episode.start_time >= filters.until)
    )


def candidate(
    episode: Episode, source: str, *, sources: tuple[str, ...] | None = None
) -> EpisodeCandidate:
    return EpisodeCandidate(
        episode_id=episode.episode_id,
        task_description=episode.task_description,
        task_type=episode.task_type,
        context=episode.context,
        outcome_type=episode.outcome.type if episode.outcome is not None else None,
        reward_total=episode.reward.total if episode.reward is not None else None,
        end_time=episode.end_time,
        tools=tuple(dict.fromkeys(s.tool for s in episode.steps)),
        sources=sources or (source,),
    )


class LocalReads:
    """Reads answered from the LMDB cache, the outbox view and the synchronizer's index."""

    def __init__(self, cache: EpisodeCache, view: OutboxView) -> None:
        self.cache = cache
        self.view = view
        self._decoded: dict[uuid.UUID, tuple[int, Episode]] = {}

    @property
    def available(self) -> bool:
        return self.cache.is_open

    # -- episodes --------------------------------------------------------------------------
    def _completed(self, filters: EpisodeFilters) -> list[tuple[Episode, str]]:
        """Completed local episodes passing ``filters``: the outbox view's, then the cache's."""
        if filters.completed is False:
            return []
        found: dict[uuid.UUID, tuple[Episode, str]] = {}
        for episode in self.view.queued_episodes():
            if episode.is_complete() and not self.view.is_deleted(episode.episode_id):
                found[episode.episode_id] = (episode, OUTBOX_SOURCE)
        for episode in self.cache.episodes(self._decoded):
            eid = episode.episode_id
            if eid not in found and not self.view.is_deleted(eid) and episode.is_complete():
                found[eid] = (episode, CACHE_SOURCE)
        return [(e, s) for e, s in found.values() if matches(e, filters)]

    def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        from ..core.retrieval import tokens, tool_tokens  # the ranking's own tokeniser

        query = tokens(" ".join(terms))
        if not query:
            return []
        local = [candidate(e, s) for e, s in self._completed(filters)]
        docs = [tokens(c.task_description) | tool_tokens(c.tools) for c in local]
        df = Counter(t for doc in docs for t in doc & query)
        n = len(docs)
        idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in df}
        scored = []
        for cand, doc in zip(local, docs, strict=True):
            score = sum(idf[t] for t in doc & query)
            if score > 0:
                scored.append(dataclasses.replace(cand, lexical=score))
        scored.sort(key=lambda c: (-(c.lexical or 0.0), c.episode_id))
        return scored[:limit]

    def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        """Same domain, newest end first (as the stores answer it)."""
        local = [(e, s) for e, s in self._completed(filters) if e.context.domain == context.domain]
        local.sort(key=lambda es: es[0].end_time.timestamp() if es[0].end_time else 0.0)
        return [candidate(e, s) for e, s in reversed(local[-limit:])]

    def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]:
        wanted = set(episode_ids)
        return [
            candidate(e, s, sources=("vector", s))
            for e, s in self._completed(filters)
            if e.episode_id in wanted
        ]

    # -- patterns and heuristics -----------------------------------------------------------
    def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> tuple[list[tuple[AnyPattern, PatternUsage]], str]:
        """The primary's selection (top ``limit`` of the domain, of the language, overall)
        over the index, and the provenance note."""
        from ..patterns.types import context_of

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
        episodes: dict[uuid.UUID, Episode] = {
            e.episode_id: e for e in self.cache.episodes(self._decoded)
        }
        for episode in self.view.queued_episodes():
            episodes[episode.episode_id] = episode
        for eid in [i for i in episodes if self.view.is_deleted(i)]:
            del episodes[eid]
        completed = [e for e in episodes.values() if e.is_complete()]
        patterns = read_pattern_index(self.cache)
        heuristics = read_heuristic_index(self.cache)
        outcomes: Counter[str] = Counter(e.outcome.type for e in completed if e.outcome is not None)
        size = self.cache.env_info()["used_bytes"]
        return StorageStats(
            episodes=len(episodes),
            completed=len(completed),
            steps=sum(len(e.steps) for e in episodes.values()),
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
