"""The hybrid retrieval pipeline: from a query to ranked candidates.

Candidates come from a :class:`~..storage.protocols.CandidateSource` (the store's full-text
search and context match) and, with an embedding provider, from the vector index (the query's
nearest episodes, then the nearest of the query moved toward them: pseudo-relevance feedback);
:mod:`.ranking` fuses the signals and ranks them. The pipeline owns the candidate rows of the
vector search and the candidates' usage counters (:meth:`HybridPipeline._candidates_by_ids`):
where the store keeps a log of the episodes whose candidate rows changed (SQLite:
``capabilities.CandidateLog``), across store versions, a write dropping only the rows it
changed, and, while the store holds few enough vectors, every indexed episode's row is read in
the background after the first search that missed some, with the ranking's word set of each
(``_warm``); without a log, per store version.

It depends on nothing above the retrieval layer: whoever builds it (the memory's retriever)
passes in how to reach the current candidate source and retrieval settings, and the vector
search when there is one, and the store's candidate log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import RetrievalConfig, RetrievalMode
from ..errors import CapabilityUnavailableError, StorageError
from ..model.episode import TaskContext, TaskType, utc_now
from ..model.records import EpisodeCandidate, EpisodeFilters, id_int, with_source
from ..model.usage import EpisodeUsage
from ..storage.protocols import CandidateSource
from .full_text import FullTextSearch
from .legacy import legacy_rank
from .lexical_trust import lexical_weight, query_words, tool_tokens
from .ranking import VectorSignals, rank_with_signals, warm_doc_tokens
from .scores import RankMode, ScoredCandidate
from .tokens import query_terms

if TYPE_CHECKING:  # numpy-backed: imported only when an embedding provider is configured
    from ..storage.capabilities import CandidateLog
    from .index import F32
    from .server_vectors import ServerSearch
    from .vectors import VectorSearch

__all__ = ["HybridPipeline"]

log = logging.getLogger(__name__)
CANDIDATE_CACHE_SIZE = 20_000  # vector candidate rows kept (~2 KB each); warmed up to this
WARM_CHUNK = 512  # candidate rows read per statement while warming (~3 ms on the store's thread)
TOOL_NAMES_SIZE = 50_000  # tool names seen in candidate rows (a hint for the early search)


def _merge_vector_candidates(
    candidates: dict[int, EpisodeCandidate], found: list[EpisodeCandidate]
) -> set[int]:
    """Add candidates found by vector search (a known one gains the ``vector`` source); the
    maps here are keyed by the ids' ``int`` (``records.id_int``)."""
    keys: set[int] = set()
    for c in found:
        key = c.episode_id.int
        known = candidates.get(key)
        candidates[key] = c if known is None else with_source(known, "vector")
        keys.add(key)
    return keys


def _vector_signals(
    search: VectorSearch, ids: list[uuid.UUID], query_vector: F32, expanded: F32 | None
) -> VectorSignals:
    """Each candidate's cosine with the query (and the expanded query) and its vector,
    aligned with ``ids``; 0.0 and None for a candidate without a vector."""
    queries = [query_vector] if expanded is None else [query_vector, expanded]
    positions, scores, block = search.index.lookup(ids, queries)
    return VectorSignals.aligned(len(ids), positions, scores, block, expanded is not None)


class HybridPipeline:
    """Ranks a query's candidates. ``source`` and ``settings`` are asked for the current
    candidate source and retrieval settings at each query (the memory's store may be wrapped
    or replaced, and its settings swapped, after the pipeline is built); ``vectors`` is the
    vector search, None without an embedding provider; ``log`` gives the store's candidate log
    (None where it keeps none)."""

    def __init__(
        self,
        source: Callable[[], CandidateSource],
        settings: Callable[[], RetrievalConfig],
        vectors: VectorSearch | None = None,
        log: Callable[[], CandidateLog | None] | None = None,
    ) -> None:
        self._source = source
        self._settings = settings
        self._vectors = vectors
        self._log = log
        # Candidate rows of the vector search and usage counters (None: none), valid at store
        # version ``_rows_version``: ``_sync`` brings them to a query's version, dropping what
        # the log (read up to ``_log_position``, of ``_log_owner``) names, or everything.
        # (keyed by the ids' ``int``: ``records.id_int``)
        self._candidates: dict[int, EpisodeCandidate] = {}
        self._absent: set[int] = set()  # indexed, without a candidate row (deleted)
        self._usage: dict[int, EpisodeUsage | None] = {}
        self._rows_version: int | None = None
        self._log_owner: object | None = None
        self._log_position: int | None = None
        # bumped whenever kept rows are dropped: rows asked for before are returned, not kept
        # (they may be older than the change that dropped them)
        self._drops = 0
        self._warming: asyncio.Task[None] | None = None
        # every (lower-cased) tool name seen in a candidate row, of any store version: a query
        # naming one may get lexical weight from its tool mentions (``lexical_trust.py``),
        # so its full-text search starts early (a hint only: what counts is decided as before)
        self._tool_names: set[str] = set()

    def full_text_search(
        self,
        query: str,
        context: TaskContext,
        limit: int,
        filters: EpisodeFilters,
        mode: RetrievalMode,
        start: bool = True,
    ) -> FullTextSearch:
        """The query's full-text search, decided now, and started now (``start``) when it
        should overlap the query's embedding (the retriever asks for it as it reads the
        store's version, so both are queued on the store's thread at once); pass it to
        :meth:`rank`."""
        vectors, settings = self._vectors, self._settings()
        pool = min(max(settings.candidate_limit, limit * 3), 2000)
        full_text = FullTextSearch(query_terms(query), filters, pool)
        # A hybrid query whose own words already give the lexical side weight (code-like
        # tokens, an error line; hard filters) runs the full-text search whatever the vector
        # search finds: it starts now, on the store's thread, while the query is embedded on
        # another (the model releases the GIL), and is awaited where it always was. So does a
        # query naming a tool seen in earlier candidates: its weight then depends on how many
        # candidates used the tool, known after the vector search, and it usually has weight
        # (a search started early and then skipped only costs its CPU). With the query vector
        # known there is nothing to overlap but the index scan: a search that runs whatever the
        # vector search finds (its words or filters, not the tool hint) is then deferred,
        # queued on the store's thread just before the scan runs on the loop's. FTS5 ranks in
        # C without the GIL, so the two overlap: 4.98 -> 3.99 ms for the code-like queries at
        # 10K, 8.63 -> 7.75 at 100K (docs/performance.md). (Measured slower than one after the
        # other while the vector candidates' rows were read at every search: the search then
        # waited behind the rows, and they behind it.) Where the store searches the
        # vectors itself (pgvector) the two are statements on two pooled connections, run by
        # the server side by side: the full-text search starts early whether or not the query
        # vector is known. Its rows (and their usage counters) must not be older than the
        # store version they are kept under, so the version is read before it starts.
        if mode is RetrievalMode.HYBRID and vectors is not None and full_text.terms:
            certain = filters != EpisodeFilters() or lexical_weight(query, [], settings) > 0
            if (vectors.where == "pgvector" or not vectors.has_query(query, context)) and (
                certain or not self._tool_names.isdisjoint(query_words(query)[1])
            ):
                full_text.early = True
                if start:
                    full_text.start(self._source())
            else:
                full_text.deferred = certain
        return full_text

    async def rank(
        self,
        query: str,
        context: TaskContext,
        limit: int,
        task_type: TaskType | None,
        filters: EpisodeFilters,
        mode: RetrievalMode,
        version: int | None,
        full_text: FullTextSearch | None = None,
    ) -> tuple[list[ScoredCandidate], list[str], int]:
        """The best ``limit`` candidates for the query, notes for every result's provenance
        (``vector:unavailable``, ``vector:error``, ``lexical:skipped``...), and the store
        version it ranked at. ``version``: ``storage.data_version()`` read by the caller; None,
        the pipeline reads it: in the server's vector search statement when the vectors are
        searched there (one round trip fewer), else with ``storage.data_version()`` first.
        ``full_text``: from :meth:`full_text_search` for the same query, limit, filters and
        mode."""
        if full_text is None:
            full_text = self.full_text_search(query, context, limit, filters, mode, start=False)
            if full_text.early:
                storage = self._source()
                if version is None:  # its rows must not be older than their version
                    version = await storage.data_version()
                full_text.start(storage)
        try:
            return await self._rank(
                query, context, limit, task_type, filters, mode, version, full_text
            )
        finally:
            full_text.abandon()  # if the ranking raised before using it

    async def _rank(
        self,
        query: str,
        context: TaskContext,
        limit: int,
        task_type: TaskType | None,
        filters: EpisodeFilters,
        mode: RetrievalMode,
        version: int | None,
        full_text: FullTextSearch,
    ) -> tuple[list[ScoredCandidate], list[str], int]:
        vectors, storage, settings = self._vectors, self._source(), self._settings()
        terms, pool = full_text.terms, full_text.pool
        notes: list[str] = []
        candidates: dict[int, EpisodeCandidate] = {}  # by the ids' ``int``
        query_vector = None
        if mode in (RetrievalMode.HYBRID, RetrievalMode.VECTOR):
            query_vector = await self._query_vector(query, context, mode, notes, version)
        searched = None
        served: ServerSearch | None = None
        server = None if vectors is None or query_vector is None else vectors.server_for(filters)
        if version is None and server is None:  # no server search to read it with
            version = await storage.data_version()
            if query_vector is not None and not await self._refresh(mode, notes, version):
                query_vector = None
        if server is not None and query_vector is not None:
            reading = version is None
            try:
                served = await server.search(
                    query_vector,
                    max(limit * 4, 40),
                    filters,
                    settings.feedback_episodes,
                    settings.feedback_weight,
                    version,
                    read_version=reading,
                )
            except StorageError as exc:
                if mode is RetrievalMode.VECTOR:
                    raise
                log.warning("vector search in the store failed, ranking lexically: %s", exc)
                notes.append("vector:error")
                query_vector = server = None
            if reading:
                version = None if served is None else served.version
                if version is None:
                    version = await storage.data_version()
                if served is not None:
                    await self._refresh(mode, notes, version, after_search=True)
        if version is None:  # (read above on every path; for the type checker)
            version = await storage.data_version()
        if served is None and query_vector is not None and vectors is not None:
            if full_text.deferred:  # queued on the store's thread before the scan runs
                full_text.start(storage)
                await asyncio.sleep(0)
            searched = await self._vector_search(
                vectors, storage, settings, query_vector, limit, filters, version
            )
        # The full-text search runs unless its words cannot count: a hybrid query in plain
        # language (lexical weight 0, ``lexical_trust.py``) ranks by the vector signal alone,
        # so when every episode has a vector the vector candidates are all it needs. (Run
        # concurrently with the vector scan, the two hand the GIL back and forth row by row
        # and both got slower, so the order is sequential.)
        found_rows = (
            searched[4] if searched is not None else served.candidates() if served else None
        )
        skip = (
            mode is RetrievalMode.HYBRID
            and found_rows is not None
            and vectors is not None
            and filters == EpisodeFilters()
            and lexical_weight(query, found_rows, settings) == 0.0
            and await vectors.covers_store(version)
        )
        if skip:
            notes.append("lexical:skipped")
        elif mode is not RetrievalMode.VECTOR:
            lexical = await full_text.task if full_text.task is not None else None
            if lexical is None:
                lexical = await storage.lexical_candidates(terms, filters, pool)
            for c in lexical:
                candidates[c.episode_id.int] = c
            self._learn_tools(lexical)
        signals = expanded = None
        if served is not None:
            _merge_vector_candidates(candidates, [r.candidate for r in served.hits])
            expanded = served.expanded
            more = [
                r.candidate
                for r in served.expanded_hits
                if r.candidate.episode_id.int not in candidates
            ]
            _merge_vector_candidates(candidates, more)
        elif searched is not None and query_vector is not None and vectors is not None:
            index = vectors.index
            hits, guess, guessed, guessed_hits, rows = searched
            in_hits = set(map(id_int, hits))
            found = _merge_vector_candidates(
                candidates, [c for c in rows if c.episode_id.int in in_hits]
            )
            # pseudo-relevance feedback: move the query toward its nearest (filtered) episodes
            feedback = [i for i in hits if i.int in found][: settings.feedback_episodes]
            if feedback == guess:
                expanded = guessed
                new = {k for k in map(id_int, guessed_hits) if k not in candidates}
                _merge_vector_candidates(candidates, [c for c in rows if c.episode_id.int in new])
            else:
                expanded = index.expand(query_vector, feedback, settings.feedback_weight)
                if expanded is not None:
                    wanted = max(limit * 4, 40)
                    later = [
                        i for i, _ in index.search(expanded, wanted) if i.int not in candidates
                    ]
                    more_rows = await self._candidates_by_ids(storage, later, filters, version)
                    _merge_vector_candidates(candidates, more_rows)
        if mode is not RetrievalMode.VECTOR and len(candidates) < limit * 2:
            for c in await storage.context_candidates(context, filters, pool):
                candidates.setdefault(c.episode_id.int, c)
        pool_list = list(candidates.values())
        if served is not None and server is not None and query_vector is not None:
            ids = [c.episode_id for c in pool_list]
            signals = await server.signals(ids, query_vector, expanded, served.vectors)
        elif query_vector is not None and vectors is not None:
            ids = [c.episode_id for c in pool_list]
            signals = _vector_signals(vectors, ids, query_vector, expanded)
        if mode is RetrievalMode.LEGACY:
            ranked = legacy_rank(pool_list, query, context, limit)
        else:
            label: RankMode = "lexical" if signals is None else mode.value  # type: ignore[assignment]
            usage = None
            if settings.weight_usefulness > 0 and pool_list:
                usage = await self._episode_usage(storage, pool_list, version)
            ranked = rank_with_signals(
                pool_list,
                terms,
                context,
                task_type,
                settings,
                utc_now(),
                limit,
                signals,
                label,
                query=query,
                usage=usage,
            )
        return ranked, notes, version

    async def _episode_usage(
        self,
        storage: CandidateSource,
        candidates: list[EpisodeCandidate],
        version: int,
    ) -> dict[uuid.UUID, EpisodeUsage]:
        """The candidates' retrieval-feedback counters. Most candidate queries read them with
        the rows (``usage_known``); the others' are asked for in one query and kept (with the
        ids that have none) as the vector candidates' rows are (``_sync``)."""
        await self._sync(storage, version)
        known = self._usage
        usage: dict[uuid.UUID, EpisodeUsage] = {}
        missing: list[uuid.UUID] = []
        for c in candidates:
            i = c.episode_id
            if c.usage_known:
                if c.usage is not None:
                    usage[i] = c.usage
            elif i.int in known:
                if (kept := known[i.int]) is not None:
                    usage[i] = kept
            else:
                missing.append(i)
        if missing:
            drops = self._drops
            read = await storage.episode_usage(missing)
            usage.update((i, u) for i in missing if (u := read.get(i)) is not None)
            if drops == self._drops:
                for i in missing:
                    known[i.int] = read.get(i)
                while len(known) > CANDIDATE_CACHE_SIZE:
                    known.pop(next(iter(known)))
        return usage

    async def _vector_search(
        self,
        vectors: VectorSearch,
        storage: CandidateSource,
        settings: RetrievalConfig,
        query_vector: F32,
        limit: int,
        filters: EpisodeFilters,
        version: int,
    ) -> tuple[
        list[uuid.UUID], list[uuid.UUID] | None, F32 | None, list[uuid.UUID], list[EpisodeCandidate]
    ]:
        """The nearest episodes of the query and, guessing the feedback episodes (below), of the
        expanded query, with their candidate rows: (hits, guessed feedback, expanded vector,
        its hits, rows of both)."""
        index, wanted = vectors.index, max(limit * 4, 40)
        # Without hard filters the nearest episodes are all candidates, so the feedback is
        # their first few: expand now and fetch both searches' episodes at once. If some were
        # missing after all, the caller expands again as usual.
        guess: list[uuid.UUID] | None = None
        guessed: F32 | None = None
        guessed_hits: list[uuid.UUID] = []
        if filters == EpisodeFilters():
            hits, guessed, guessed_hits = index.search_with_feedback(
                query_vector, wanted, settings.feedback_episodes, settings.feedback_weight
            )
            guess = hits[: settings.feedback_episodes]
        else:
            hits = [i for i, _ in index.search(query_vector, wanted)]
        ids = list({i.int: i for i in (*hits, *guessed_hits)}.values())  # (in first-seen order)
        rows = await self._candidates_by_ids(storage, ids, filters, version)
        return hits, guess, guessed, guessed_hits, rows

    async def _candidates_by_ids(
        self,
        storage: CandidateSource,
        ids: list[uuid.UUID],
        filters: EpisodeFilters,
        version: int,
    ) -> list[EpisodeCandidate]:
        """``storage.candidates_by_ids`` for the vector search's ids. Without hard filters the
        rows are kept in memory (``_sync``: until the store's log says they changed, or without
        a log until the store changes: any write, by any process, changes ``version``; a
        degraded store gives a new one each time, so nothing is kept then)."""
        if filters != EpisodeFilters():
            return await storage.candidates_by_ids(ids, filters)
        await self._sync(storage, version)
        known, absent = self._candidates, self._absent
        kept = list(map(known.get, map(id_int, ids)))
        # (the usual case once the rows are read ahead: one lookup each; ``all`` tests for
        # None without calling the rows' ``__eq__``, as ``in`` would)
        if all(kept):
            return kept  # type: ignore[return-value]
        missing = [i for i in ids if i.int not in known and i.int not in absent]
        if not missing:
            return [c for c in kept if c is not None]
        drops = self._drops
        found = {c.episode_id.int: c for c in await storage.candidates_by_ids(missing, filters)}
        self._learn_tools(list(found.values()))
        if drops == self._drops:
            self._keep(missing, found)
        self._warm(storage)
        return [c for i in ids if (c := found.get(i.int) or known.get(i.int)) is not None]

    def _keep(self, asked: list[uuid.UUID], found: dict[int, EpisodeCandidate]) -> None:
        """Keep the rows read for ``asked`` (``found``: by the ids' ``int``); those without one
        (an indexed episode deleted since) are known absent until the log names them."""
        known = self._candidates
        known.update(found)
        if self._log_position is not None:  # without a log, nothing would forget them
            self._absent.update(k for k in map(id_int, asked) if k not in found)
        while len(known) > CANDIDATE_CACHE_SIZE:
            known.pop(next(iter(known)))
        while len(self._absent) > CANDIDATE_CACHE_SIZE:
            self._absent.pop()

    async def _sync(self, storage: CandidateSource, version: int) -> None:
        """Bring the kept candidate rows and usage counters to store ``version``: drop those of
        the episodes the store's candidate log names since the last read, or, without a log (or
        one that cannot tell: see ``CandidateLog``), all of them."""
        if version == self._rows_version:
            return
        changes = None if self._log is None else self._log()
        changed: list[uuid.UUID] | None = None
        newest: int | None = None
        if changes is not None:
            position = self._log_position if changes.owner is self._log_owner else None
            try:
                newest, changed = await changes.changed_since(position)
            except StorageError as exc:  # (the primary of a degraded store, say)
                log.debug("the candidate log is unreadable, dropping every kept row: %s", exc)
                changes = None
        if changed is None or changed:
            self._drops += 1
        if changed is None:
            self._candidates.clear()
            self._absent.clear()
            self._usage.clear()
        else:
            for k in map(id_int, changed):
                self._candidates.pop(k, None)
                self._absent.discard(k)
                self._usage.pop(k, None)
        if changes is None or newest is None:
            self._log_owner = self._log_position = None
        elif (
            changed is not None
            and changes.owner is self._log_owner
            and self._log_position is not None
        ):
            # a sync that ran meanwhile may have read further: keep the furthest position
            self._log_position = max(self._log_position, newest)
        else:
            self._log_owner, self._log_position = changes.owner, newest
        self._rows_version = version

    def _warm(self, storage: CandidateSource) -> None:
        """Read every indexed episode's candidate row in the background (``_warm_rows``), once
        a search missed some, where the store keeps a candidate log (the rows then stay across
        writes) and holds at most ``CANDIDATE_CACHE_SIZE`` vectors."""
        vectors = self._vectors
        if (
            vectors is None
            or self._log_position is None
            or (self._warming is not None and not self._warming.done())
            or not len(self._candidates) + len(self._absent)
            < len(vectors.index)
            <= CANDIDATE_CACHE_SIZE
        ):
            return
        self._warming = asyncio.ensure_future(self._warm_rows(storage, vectors.index.ids()))

    async def _warm_rows(self, storage: CandidateSource, ids: list[uuid.UUID]) -> None:
        """The rows of ``ids`` not kept yet, ``WARM_CHUNK`` per read on the store's thread (a
        search's reads queue between two), and their word sets for the ranking on a worker
        thread. It stops when the store's version moves (a write, or a degraded store
        answering from its local copy): a later search warms again."""
        try:
            version = await storage.data_version()
            for start in range(0, len(ids), WARM_CHUNK):
                known, absent = self._candidates, self._absent
                chunk = [
                    i
                    for i in ids[start : start + WARM_CHUNK]
                    if i.int not in known and i.int not in absent
                ]
                if not chunk:
                    continue
                drops = self._drops
                found = await storage.candidates_by_ids(chunk, EpisodeFilters())
                if drops != self._drops or await storage.data_version() != version:
                    return
                self._learn_tools(found)
                self._keep(chunk, {c.episode_id.int: c for c in found})
                # and the ranking's word sets of these episodes, on a thread (a cold
                # process's first searches met 12-48 new episodes each: docs/performance.md)
                await asyncio.to_thread(warm_doc_tokens, found)
        except StorageError as exc:
            log.debug("warming the candidate rows stopped: %s", exc)
        except Exception:  # best effort: a search reads the rows it misses itself
            log.warning("warming the candidate rows failed", exc_info=True)

    async def settled(self) -> None:
        """Wait for the candidate rows being read in the background, if they are (benchmarks
        and tests: searches meanwhile read the rows they miss, with the same results)."""
        if self._warming is not None:
            await asyncio.shield(self._warming)

    async def stop(self) -> None:
        """Stop reading candidate rows in the background (before the store closes)."""
        task, self._warming = self._warming, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _learn_tools(self, rows: list[EpisodeCandidate]) -> None:
        """Remember the tool names of these candidate rows (up to ``TOOL_NAMES_SIZE``)."""
        names = self._tool_names
        if len(names) < TOOL_NAMES_SIZE:
            lists = {c.tools for c in rows if c.tools}  # many rows share a tool list
            if lists:
                names.update(*map(tool_tokens, lists))

    async def _query_vector(
        self,
        query: str,
        context: TaskContext,
        mode: RetrievalMode,
        notes: list[str],
        version: int | None,
    ) -> F32 | None:
        """The query vector, or None with a note when hybrid must fall back to lexical; the
        vector side refreshed to ``version`` (None: later, once the version is known)."""
        if self._vectors is None:
            if mode is RetrievalMode.VECTOR:
                raise CapabilityUnavailableError(
                    "Vector retrieval needs an embedding provider: set embeddings.provider to "
                    "'local' (pip install 'self-learning-memory[local]') or 'openai'."
                )
            notes.append("vector:unavailable")
            return None
        try:
            vector, truncated = await self._vectors.query_vector(query, context)
        except Exception as exc:
            if mode is RetrievalMode.VECTOR:
                raise
            log.warning("vector retrieval failed, falling back to lexical: %s", exc)
            notes.append("vector:error")
            return None
        if version is not None and not await self._refresh(mode, notes, version):
            return None
        if truncated:
            notes.append("vector:query-truncated")
        return vector

    async def _refresh(
        self, mode: RetrievalMode, notes: list[str], version: int, after_search: bool = False
    ) -> bool:
        """Bring the vector side up to store ``version`` (``VectorSearch.refresh``); False,
        with a note, when that failed and hybrid must rank lexically. ``after_search``: the
        server's search already answered this query (its version was read with it), so a
        failure only costs the next query's refresh."""
        assert self._vectors is not None
        try:
            await self._vectors.refresh(version)
        except Exception as exc:
            if mode is RetrievalMode.VECTOR and not after_search:
                raise
            log.warning("vector retrieval failed, falling back to lexical: %s", exc)
            if not after_search:
                notes.append("vector:error")
            return False
        return True
