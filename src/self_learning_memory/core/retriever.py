"""The retriever: past episodes, patterns and heuristics that help with a task.

:meth:`Retriever.retrieve_relevant_context` checks the query, then answers from its query
cache (a ranking kept :data:`QUERY_CACHE_TTL_S` seconds for the same query, settings and
embedding model, used while the store's version is the same; any write changes the version) or
from the :class:`~..retrieval.hybrid.HybridPipeline`, which the retriever builds over the
memory's store (its candidate source), retrieval settings and vector search.
Known-failure warnings (:mod:`..retrieval.known_failures`) are retrievals filtered by outcome,
with the error-recovery patterns and heuristics that address the errors seen.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from ..config import RetrievalMode
from ..errors import CapabilityUnavailableError, ValidationError
from ..model import validation as v
from ..model.episode import TaskContext, TaskType
from ..model.pattern import ErrorRecovery, normalise_error
from ..model.records import EpisodeFilters
from ..model.validation import as_task_type
from ..retrieval.hybrid import HybridPipeline
from ..retrieval.known_failures import (
    FailureWarning,
    KnownFailure,
    failure_errors,
    is_similar_enough,
    recovery_applies,
    summarise,
    what_went_wrong,
)
from ..retrieval.patterns import HeuristicMatch, PatternMatch, rank_heuristics, rank_patterns
from ..retrieval.scores import RetrievalResult, ScoreComponents, ScoredCandidate
from .feedback import RetrievalFeedback
from .parts import MemoryParts
from .reads import Reads, check_limit

__all__ = ["QUERY_CACHE_SIZE", "QUERY_CACHE_TTL_S", "CachedRank", "Retriever"]

QUERY_CACHE_SIZE = 1024
QUERY_CACHE_TTL_S = 60.0
CachedRank = tuple[uuid.UUID, ScoreComponents, list[str]]


class Retriever:
    """The retrieval operations of :class:`~.memory.SelfLearningMemory` (documented there)."""

    def __init__(self, parts: MemoryParts, reads: Reads, feedback: RetrievalFeedback) -> None:
        self._parts = parts
        self._reads = reads
        self._feedback = feedback
        # the store and the settings are read at each query: the memory's store may be wrapped
        # or replaced after it is built, and so may its retrieval settings
        self.pipeline = HybridPipeline(
            lambda: parts.storage,
            lambda: parts.config.retrieval,
            parts.vectors,
            lambda: parts.storage.capabilities.candidate_log,
        )
        # (query, settings, embedding model) -> (store version, when, ranking)
        self.query_cache: dict[tuple[object, ...], tuple[int, float, list[CachedRank]]] = {}
        self.query_cache_hits = 0

    async def retrieve_relevant_context(
        self,
        task_description: str,
        context: TaskContext | None = None,
        limit: int = 5,
        *,
        task_type: TaskType | str | None = None,
        filters: EpisodeFilters | None = None,
        mode: RetrievalMode | str | None = None,
        for_episode: uuid.UUID | str | None = None,
    ) -> list[RetrievalResult]:
        task = None if for_episode is None else v.as_uuid(for_episode, "for_episode")
        results = await self._retrieve(task_description, context, limit, task_type, filters, mode)
        if task is not None:  # (a completed task may find itself: it cannot use itself)
            used = [r.episode.episode_id for r in results if r.episode.episode_id != task]
            await self._feedback.link(task, used, [])
        return results

    async def _retrieve(
        self,
        task_description: str,
        context: TaskContext | None,
        limit: int,
        task_type: TaskType | str | None,
        filters: EpisodeFilters | None,
        mode: RetrievalMode | str | None,
    ) -> list[RetrievalResult]:
        with self._parts.monitor.timed("retrieve_relevant_context"):
            v.check_description(task_description, "query")
            check_limit(limit)
            context = context or TaskContext()
            v.check_context(context)
            wanted_type = None if task_type is None else as_task_type(task_type)
            try:
                chosen = RetrievalMode(mode or self._parts.config.retrieval.mode)
            except ValueError:
                allowed = ", ".join(m.value for m in RetrievalMode)
                raise ValidationError(
                    "mode", f"'{mode}' is not a retrieval mode", allowed
                ) from None
            filters = filters or EpisodeFilters()
            vectors = self._parts.vectors
            identity = vectors.identity if vectors is not None else "none"
            # the vector search this query uses (None: lexical or legacy, or no embeddings)
            searched = vectors if chosen in (RetrievalMode.HYBRID, RetrievalMode.VECTOR) else None
            storage = self._parts.storage
            # the query is embedded on a thread while the store's version is read (below)
            prefetched = searched is not None and searched.prefetch_query(task_description, context)
            key = (
                task_description,
                context.model_dump_json(),
                limit,
                wanted_type,
                chosen,
                filters.model_dump_json(),
                identity,
            )
            # The store's version: asked first when a cached ranking may answer (it must be of
            # the current version) or when the vectors are searched in process; otherwise
            # read by the server's vector search statement itself (one round trip fewer).
            version: int | None = None
            if prefetched:  # one turn of the loop: the embedding, the longer, reaches its
                await asyncio.sleep(0)  # thread before any store call is queued
            full_text = None
            cached = self.query_cache.get(key)
            if cached is not None and time.monotonic() - cached[1] < QUERY_CACHE_TTL_S:
                version = await storage.data_version()
                if cached[0] == version:
                    self.query_cache_hits += 1
                    return await self._rehydrate(cached[2])
            elif searched is None or searched.where != "pgvector":
                if prefetched:
                    # A new query: a full-text search that should overlap the embedding is
                    # queued on the store's thread right behind the version read, not after
                    # its answer (so its rows are not older than the version).
                    reading = asyncio.ensure_future(storage.data_version())
                    full_text = self.pipeline.full_text_search(
                        task_description, context, limit, filters, chosen
                    )
                    try:
                        version = await reading
                    except BaseException:
                        full_text.abandon()
                        raise
                else:
                    version = await storage.data_version()
            ranked, notes, version = await self.pipeline.rank(
                task_description, context, limit, wanted_type, filters, chosen, version, full_text
            )
            results = await self._results(ranked, notes)
            ranking = [(r.episode.episode_id, r.components, list(r.provenance)) for r in results]
            self.query_cache[key] = (version, time.monotonic(), ranking)
            while len(self.query_cache) > QUERY_CACHE_SIZE:
                self.query_cache.pop(next(iter(self.query_cache)))
            return results

    async def _rehydrate(self, ranking: list[CachedRank]) -> list[RetrievalResult]:
        """Fresh result objects for a cached ranking (episodes reloaded, cheap from the cache)."""
        episodes = {e.episode_id: e for e in await self._reads.load([i for i, _, _ in ranking])}
        return [
            RetrievalResult(
                episode=episodes[i], score=c.total, components=c.model_copy(), provenance=list(p)
            )
            for i, c, p in ranking
            if i in episodes
        ]

    async def _results(
        self, ranked: list[ScoredCandidate], notes: list[str]
    ) -> list[RetrievalResult]:
        """The ranked candidates' episodes as results, with the pipeline's notes (and, while
        the background worker has vectors to write, ``vector:pending:<n>``, with
        ``vector:episode-pending`` on an episode whose own vector is not written yet)."""
        vectors = self._parts.vectors
        pending = vectors.pending if vectors is not None else set()
        if pending:
            notes = [*notes, f"vector:pending:{len(pending)}"]
        loaded = await self._reads.load([r.candidate.episode_id for r in ranked])
        episodes = {e.episode_id: e for e in loaded}
        truncated = (
            vectors.truncated([r.candidate.episode_id for r in ranked])
            if vectors is not None
            else set()
        )
        return [
            RetrievalResult(
                episode=episodes[r.candidate.episode_id],
                score=r.components.total,
                components=r.components,
                provenance=[
                    *r.provenance,
                    *notes,
                    *(["vector:episode-truncated"] if r.candidate.episode_id in truncated else []),
                    *(["vector:episode-pending"] if r.candidate.episode_id in pending else []),
                ],
            )
            for r in ranked
            if r.candidate.episode_id in episodes
        ]

    async def check_known_failures(
        self,
        task_description: str,
        context: TaskContext | None = None,
        limit: int = 5,
        *,
        task_type: TaskType | str | None = None,
    ) -> FailureWarning:
        with self._parts.monitor.timed("check_known_failures"):
            check_limit(limit, maximum=100)
            found: list[RetrievalResult] = []
            for outcome in ("failure", "partial_success"):
                found += await self.retrieve_relevant_context(
                    task_description,
                    context,
                    limit,
                    task_type=task_type,
                    filters=EpisodeFilters(outcome=outcome),
                )
            found = sorted((r for r in found if is_similar_enough(r)), key=lambda r: -r.score)[
                :limit
            ]
            failures = [
                KnownFailure(
                    episode=r.episode,
                    score=r.score,
                    components=r.components,
                    provenance=r.provenance,
                    what_went_wrong=what_went_wrong(r.episode),
                )
                for r in found
            ]
            # errors hit in similar episodes of any outcome (a success may have recovered from one)
            similar = [
                r
                for r in await self.retrieve_relevant_context(
                    task_description, context, limit, task_type=task_type
                )
                if is_similar_enough(r)
            ]
            episodes = [f.episode for f in failures] + [r.episode for r in similar]
            errors = {normalise_error(m) for e in episodes for _, m in failure_errors(e)}
            ctx = context or TaskContext()
            pool = await self._parts.storage.pattern_candidates(ctx, 200)
            recoveries = [
                m
                for m in rank_patterns([(p, u.effectiveness_score) for p, u in pool], ctx, 200)
                if isinstance(m.pattern, ErrorRecovery) and recovery_applies(m.pattern, errors)
            ][:limit]
            tools = {t for e in episodes for t, _ in failure_errors(e)}
            heuristics = [
                h
                for h in rank_heuristics(
                    await self._parts.storage.heuristic_candidates(ctx, 200),
                    ctx,
                    200,
                    min_confidence=0.0,
                    min_sample_size=1,
                )
                if any(f"'{t}' fails with" in h.heuristic.condition for t in tools)
                and normalise_error(h.heuristic.condition.split("fails with:", 1)[-1]) in errors
            ][:limit]
            return FailureWarning(
                task_description=task_description,
                failures=failures,
                recoveries=recoveries,
                heuristics=heuristics,
                summary=summarise(failures, recoveries, heuristics),
            )

    async def retrieve_relevant_patterns(
        self,
        context: TaskContext | None = None,
        limit: int = 10,
        for_episode: uuid.UUID | str | None = None,
    ) -> list[PatternMatch]:
        task = None if for_episode is None else v.as_uuid(for_episode, "for_episode")
        with self._parts.monitor.timed("retrieve_relevant_patterns"):
            check_limit(limit)
            context = context or TaskContext()
            v.check_context(context)
            pool = await self._parts.storage.pattern_candidates(context, max(limit * 5, 100))
            ranked = rank_patterns([(p, u.effectiveness_score) for p, u in pool], context, limit)
            await self._parts.storage.record_pattern_use(
                [m.pattern.id for m in ranked], applied=False, success=False
            )
        if task is not None:
            await self._feedback.link(task, [], [m.pattern.id for m in ranked])
        return ranked

    async def retrieve_heuristics(
        self, context: TaskContext | None = None, limit: int = 10
    ) -> list[HeuristicMatch]:
        with self._parts.monitor.timed("retrieve_heuristics"):
            check_limit(limit)
            context = context or TaskContext()
            v.check_context(context)
            pool = await self._parts.storage.heuristic_candidates(context, max(limit * 5, 100))
            ex = self._parts.config.extraction
            return rank_heuristics(
                pool,
                context,
                limit,
                min_confidence=ex.heuristic_min_confidence,
                min_sample_size=ex.heuristic_min_sample_size,
            )

    async def reindex_embeddings(
        self, batch_size: int, progress: Callable[[int, int], None] | None
    ) -> int:
        if self._parts.vectors is None:
            raise CapabilityUnavailableError(
                "No embedding provider is configured (embeddings.provider is 'none')."
            )
        return await self._parts.vectors.reindex(batch_size, progress)
