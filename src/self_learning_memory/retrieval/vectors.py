"""The memory's vector side: embedding episodes at completion, embedding queries (cached by
content hash), keeping the in-process index in step with the store, and re-embedding.

Where the store searches vectors itself (PostgreSQL with pgvector: its ``vector_index``
capability) a small store is still scored in process, exactly, as the bytea path does: below
``storage.pgvector_exact_below`` vectors of the identity the index loads them (from the
``vector`` column) by store version like any other store. As soon as loading passes that
number the matrix is dropped and :attr:`VectorSearch.server` is the search from then on: the
process loads no vectors but its candidates' (``server_vectors.py``), so its memory is bounded
by the threshold, never by the store. Back in process only when a bounded count (at most the
threshold's rows) finds 90 % of the threshold or fewer (hysteresis: a store hovering at the
threshold does not flip), asked when the store changed, at most every few seconds.

Embedding failures at completion never lose the episode: it is stored without a vector, the
failure is counted, and ``reindex`` embeds every completed episode that lacks one. A re-embed
batch is written in one transaction only after the whole batch embedded: nothing is
half-indexed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from ..embeddings import (
    EmbeddingProvider,
    content_hash,
    embed_documents,
    episode_text,
    query_text,
)
from ..model.episode import Episode, TaskContext
from ..model.records import EmbeddingRecord, EmbeddingStatus, EpisodeFilters
from ..storage.backend import StorageBackend
from .index import F32, VectorIndex
from .server_vectors import ServerVectors

__all__ = ["VectorSearch"]

log = logging.getLogger(__name__)
_QUERY_CACHE = 1024
_REFRESH_PAGE = 5000
_COVERAGE_TTL_S = 2.0  # how long a coverage answer may serve later store versions
# with pgvector the answer counts a large table in the server (about 0.1 s at a million rows),
# so a busy store is asked less often
_SERVER_COVERAGE_TTL_S = 30.0
_REGIME_CHECK_S = 5.0  # server regime: how often a changed store is counted again (bounded)
IN_PROCESS_EXACT = "in_process_exact"
SERVER_HNSW = "server_hnsw"


def _back_in_process(threshold: int) -> int:
    """The count at or below which a process on the server search loads the matrix again."""
    return threshold * 9 // 10


class VectorSearch:
    def __init__(self, provider: EmbeddingProvider, storage: StorageBackend) -> None:
        self.provider = provider
        self.storage = storage
        self.index = VectorIndex(provider.identity, provider.dimensions)
        self._queries: OrderedDict[str, tuple[F32, bool]] = OrderedDict()
        # queries being embedded: a second caller of the same text awaits the same work
        self._embedding: dict[str, asyncio.Future[tuple[F32, bool]]] = {}
        self._prefetches: set[asyncio.Future[tuple[F32, bool]]] = set()  # kept until done
        self.errors = 0
        self._refreshed_at: int | None = None
        self.query_ms: list[float] = []
        # (store version, when, covered); version None: asked by the background worker
        self._coverage: tuple[int | None, float, bool] | None = None
        self._server: ServerVectors | None = None
        # pgvector: whether this process scores the store's vectors itself (a small store),
        # and when it last counted them while on the server search
        self._in_process = False
        self._counted_at: float | None = None
        # this process's completed episodes whose vector the background worker has not
        # written yet (``background.py``)
        self.pending: set[uuid.UUID] = set()

    @property
    def server(self) -> ServerVectors | None:
        """The store's own vector search (pgvector past ``storage.pgvector_exact_below``
        vectors), or None: the in-process index."""
        handle = self.storage.capabilities.vector_index
        current = None if self._server is None else self._server.handle
        if handle is not current:  # opened, or the store chose its vector path again
            self._server = (
                None
                if handle is None
                else ServerVectors(handle, self.identity, self.provider.dimensions)
            )
            self._refreshed_at = None  # load the index again if needed
            self._drop_index()
            self._counted_at = None
            # (and ask the store about coverage again)
            self._set_regime(handle is not None and handle.exact_below > 0)
        return None if self._in_process else self._server

    def server_for(self, filters: EpisodeFilters) -> ServerVectors | None:
        """The search to use for a query with these hard filters: :attr:`server`, except that
        a filtered query on a pgvector store scored in process goes to the store anyway, where
        the filters are SQL and pgvector's iterative scans return k matching rows (filtering
        the in-process nearest rows could return fewer)."""
        server = self.server
        if server is None and filters != EpisodeFilters():
            return self._server
        return server

    @property
    def regime(self) -> str:
        """How vectors are searched: ``in_process`` (a store without its own vector search),
        ``in_process_exact`` (pgvector, a store below the threshold) or ``server_hnsw``."""
        if self.server is not None:
            return SERVER_HNSW
        return "in_process" if self._server is None else IN_PROCESS_EXACT

    def _drop_index(self) -> None:
        """Release the in-process matrix (a new empty index: nothing refers to the old one)."""
        if len(self.index) or self.index.watermark:
            self.index = VectorIndex(self.provider.identity, self.provider.dimensions)

    def _set_regime(self, in_process: bool) -> None:
        self._in_process = in_process
        self._coverage = None
        if self._server is not None:
            self._server.handle.vector_search = IN_PROCESS_EXACT if in_process else SERVER_HNSW

    @property
    def where(self) -> str:
        """Where vectors are searched: ``pgvector`` (in the store) or ``in-process``."""
        return "in-process" if self.server is None else "pgvector"

    def truncated(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these episodes' texts were cut to the model's limit when embedded."""
        server = self.server
        if server is not None:
            return server.truncated(ids)
        return {i for i in ids if i in self.index.truncated}

    @property
    def identity(self) -> str:
        return self.provider.identity

    async def embed_episode(self, episode: Episode) -> EmbeddingRecord | None:
        """The episode's vector record, or None if the provider failed (counted, logged)."""
        text = episode_text(episode)
        digest = content_hash(self.identity, text)
        try:
            stored = await self.storage.vector_by_hash(self.identity, digest)
            if stored is not None:
                return EmbeddingRecord(self.identity, digest, self.provider.dimensions, stored)
            batch = await embed_documents(self.provider, [text])
        except Exception as exc:
            self.errors += 1
            self.forget_coverage()  # this episode will lack a vector: ask the store again
            log.warning("could not embed episode %s: %s", episode.episode_id, exc)
            return None
        vector = batch.vectors[0].astype(np.float32)
        return EmbeddingRecord(
            self.identity, digest, self.provider.dimensions, vector.tobytes(), batch.truncated[0]
        )

    async def query_vector(self, query: str, context: TaskContext | None) -> tuple[F32, bool]:
        """The query's vector and whether it was truncated. Raises what the provider raises."""
        text = query_text(query, context)
        key = content_hash(self.identity, text)
        cached = self._queries.get(key)
        if cached is not None:
            self._queries.move_to_end(key)
            return cached
        running = self._embedding.get(key)
        if running is not None:  # started by prefetch_query (or another caller)
            return await asyncio.shield(running)
        future: asyncio.Future[tuple[F32, bool]] = asyncio.get_running_loop().create_future()
        self._embedding[key] = future
        try:
            started = time.perf_counter()
            batch = await self.provider.embed([text])
            self.query_ms.append((time.perf_counter() - started) * 1000)
            self.query_ms = self.query_ms[-1000:]
            result = (batch.vectors[0].astype(np.float32), batch.truncated[0])
            self._queries[key] = result
            while len(self._queries) > _QUERY_CACHE:
                self._queries.popitem(last=False)
            future.set_result(result)
            return result
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved here: a waiter re-raises it, none need to
            else:
                future.cancel()
            raise
        finally:
            del self._embedding[key]

    def has_query(self, query: str, context: TaskContext | None) -> bool:
        """Whether the query's vector is known (no embedding to wait for)."""
        return content_hash(self.identity, query_text(query, context)) in self._queries

    def prefetch_query(self, query: str, context: TaskContext | None) -> bool:
        """Start embedding the query (it runs on a thread while the caller does other work,
        such as reading the store's version; the task starts at the caller's next await);
        ``query_vector`` then awaits it. A failure is left for ``query_vector`` to raise.
        Whether a new embedding was started (False: known or already being embedded)."""
        key = content_hash(self.identity, query_text(query, context))
        if key in self._queries or key in self._embedding:
            return False
        task = asyncio.ensure_future(self.query_vector(query, context))
        self._prefetches.add(task)
        task.add_done_callback(self._prefetch_done)
        return True

    def _prefetch_done(self, task: asyncio.Future[tuple[F32, bool]]) -> None:
        self._prefetches.discard(task)
        if not task.cancelled():
            task.exception()  # the error is raised again to the caller of query_vector

    async def refresh(self, store_version: int | None = None) -> None:
        """Load every vector of this identity written since the last refresh (any process).
        With ``store_version`` (from ``storage.data_version()``), skip when nothing changed."""
        if store_version is not None and store_version == self._refreshed_at:
            return
        self.server  # noqa: B018 - notices a store that chose its vector path again
        shared = self._server
        if shared is not None and not self._in_process:
            # the store searches its own vectors; a store shrunk well below the threshold is
            # scored in process again (counted at most every few seconds, up to the threshold)
            threshold = shared.handle.exact_below
            now = time.monotonic()
            if threshold <= 0 or (
                self._counted_at is not None and now - self._counted_at < _REGIME_CHECK_S
            ):
                self._refreshed_at = store_version
                return
            low = _back_in_process(threshold)
            count = await shared.handle.count_vectors(self.identity, low + 1)
            self._counted_at = now
            if count > low:
                self._refreshed_at = store_version
                return
            log.info("pgvector: %d vectors (<= %d): scoring them in process", count, low)
            self._set_regime(True)
        limit = None if shared is None else shared.handle.exact_below
        while True:
            room = _REFRESH_PAGE if limit is None else limit + 1 - len(self.index)
            page = min(_REFRESH_PAGE, room)
            index = self.index
            generation, after = index.generation, index.watermark
            rows = await self.storage.embeddings_since(self.identity, after, page)
            if self.index is not index:
                return  # dropped meanwhile: the store searches its own vectors now
            if not index.add(rows, generation):
                continue  # reset meanwhile (a rebuild): read again from its watermark
            if limit is not None and len(self.index) > limit:
                # past the threshold: drop the matrix, the server searches from now on
                log.info(
                    "pgvector: more than %d vectors: the server's HNSW search from now on", limit
                )
                self._drop_index()
                self._counted_at = time.monotonic()
                self._set_regime(False)
                self._refreshed_at = store_version
                return
            if len(rows) < page:
                self._refreshed_at = store_version
                return

    async def covers_store(self, store_version: int) -> bool:
        """Whether every completed episode has a vector of this identity, so that vector search
        alone can reach all of them. Asked of the store once per store version, and for a
        changed version at most every 2 s, 30 s with pgvector (another process's episode that
        failed to embed may go unnoticed that long; this process's own failures and deletes
        are noticed at once).
        False when the store cannot say. The same answer tells whether vectors were deleted
        (fewer stored than indexed): the index is then rebuilt from the store."""
        if self.pending:  # this process's episodes wait for their vector: search lexically too
            return False
        now = time.monotonic()
        known = self._coverage
        ttl = _COVERAGE_TTL_S if self.server is None else _SERVER_COVERAGE_TTL_S
        if known is not None and (known[0] == store_version or now - known[1] < ttl):
            return known[2]
        try:
            status = await self.status()
            if self.server is None and status.embedded < len(
                self.index
            ):  # vectors were deleted with their episodes
                self.index.reset()
                self._refreshed_at = None
                await self.refresh(store_version)
        except Exception as exc:
            log.debug("embedding coverage unknown: %s", exc)
            return False
        self._coverage = (store_version, now, status.missing == 0)
        return status.missing == 0

    def vectors_added(self) -> None:
        """This process wrote vectors: a store known to be covered still is (vectors added
        cannot uncover it; another process's episodes are asked for after the usual 2 s), so
        the next retrieval need not count the store again; an uncovered one is asked again. (At
        10K episodes the count took 22-30 ms of every retrieval right after a write.) On the
        server search, the vectors are counted again at the next refresh."""
        if self._coverage is not None and not self._coverage[2]:
            self._coverage = None
        self._counted_at = None

    def forget_coverage(self) -> None:
        """Ask the store again at the next ``covers_store`` (after this process deleted an
        episode or failed to embed one); on the server search, count the vectors again at the
        next refresh."""
        self._coverage = None
        self._counted_at = None

    async def status(self) -> EmbeddingStatus:
        return await self.storage.embedding_status(self.identity)

    async def embed_records(
        self, episodes: list[Episode]
    ) -> list[tuple[uuid.UUID, EmbeddingRecord]]:
        """The episodes' vector records, embedded in one batch. Raises what the provider
        raises."""
        texts = [episode_text(e) for e in episodes]
        batch = await embed_documents(self.provider, texts)
        return [
            (
                e.episode_id,
                EmbeddingRecord(
                    self.identity,
                    content_hash(self.identity, text),
                    self.provider.dimensions,
                    batch.vectors[i].astype(np.float32).tobytes(),
                    batch.truncated[i],
                ),
            )
            for i, (e, text) in enumerate(zip(episodes, texts, strict=True))
        ]

    async def reindex(
        self, batch_size: int = 64, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Embed every completed episode without a vector of the current identity."""
        status = await self.status()
        total, done = status.missing, 0
        while count := await self.embed_missing(batch_size):
            done += count
            if progress is not None:
                progress(done, max(total, done))
        return done

    async def embed_pending(self, batch_size: int) -> int:
        """Embed and store up to ``batch_size`` of this process's pending episodes, read by id
        (no search of the store: the background worker's path after a completion); how many.
        An episode gone from the store meanwhile (deleted) leaves ``pending``. Raises what the
        provider raises: nothing of that batch is stored, and it stays pending."""
        ids = list(itertools.islice(self.pending, batch_size))
        if not ids:
            return 0
        episodes = [e for e in await self.storage.get_episodes(ids) if e.end_time is not None]
        self.pending.difference_update(set(ids) - {e.episode_id for e in episodes})
        return await self._embed_and_store(episodes)

    async def covered_after_writes(self) -> bool:
        """Ask the store whether every completed episode has a vector of this identity (after
        this process wrote its pending ones: does the store lack others, from a process that
        died before writing them or from another model?); a yes is kept as the coverage, for
        the usual 2 s. (The count compares completed episodes with vectors of this identity:
        a vector is written only for a completed episode and deleted with it.) An index this
        process has loaded loads the new vectors first: it then holds every vector of the store
        (rows are loaded by a number never given twice) and more only where episodes were
        deleted, by this process or another. Then the store holds fewer vectors than the index,
        and no coverage is kept at all: the next retrieval's ``covers_store`` asks again and
        rebuilds the index. (An index not loaded yet stays so: a process that only writes, such
        as a CLI command, does not read every vector of the store.)"""
        if self.server is None and self.index.watermark:
            await self.refresh()
        status = await self.status()
        if self.server is None and status.embedded < len(self.index):
            self._coverage = None  # vectors were deleted: covers_store rebuilds the index
        elif status.missing == 0:
            self._coverage = (None, time.monotonic(), True)
        return status.missing == 0

    async def embed_missing(self, batch_size: int) -> int:
        """Embed and store one batch of up to ``batch_size`` completed episodes without a vector
        of this identity (``reindex`` and the background worker); how many, 0 when none is
        left. Raises what the provider raises: nothing of that batch is stored."""
        episodes = await self.storage.episodes_missing_embedding(self.identity, batch_size)
        return await self._embed_and_store(episodes)

    async def _embed_and_store(self, episodes: list[Episode]) -> int:
        """Embed the episodes in one batch, store their vectors in one transaction and take
        them out of ``pending``; how many (0 for none)."""
        if not episodes:
            return 0
        rows = await self.embed_records(episodes)
        await self.storage.store_embeddings(rows)
        self.pending.difference_update(e.episode_id for e in episodes)
        return len(rows)
