"""Starting and closing a memory: the durable store and its local cache (refusing a store that
was lost while the cache holds episodes; other processes' changes evict cached episodes), the
step flusher, the learning queue and the cache synchronizer. Closing writes every buffered step
before it closes the stores."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ..errors import DataIntegrityError
from ..storage.backend import StorageBackend
from ..storage.lmdb_cache import EpisodeCache
from ..storage.sync import StorageSynchronizer
from .learner import Learner
from .parts import MemoryParts
from .step_writer import StepWriter

__all__ = ["Lifecycle"]


class Lifecycle:
    def __init__(self, parts: MemoryParts, writer: StepWriter, learner: Learner) -> None:
        self._parts = parts
        self._writer = writer
        self._learner = learner
        self._started = False
        self._cache_open = False  # guarded by _cache_guard: change callbacks vs close()
        self._cache_guard = threading.Lock()

    @property
    def storage(self) -> StorageBackend:
        return self._parts.storage

    @property
    def cache(self) -> EpisodeCache | None:
        return self._parts.cache

    async def start(self) -> None:
        if self._started:
            return
        await self._refuse_a_lost_store()
        try:
            await self.storage.initialize()
        except BaseException:
            if self.cache is not None and self._cache_open:  # opened by the check above
                await asyncio.to_thread(self.cache.close)
                self._cache_open = False
            raise
        if self.cache is not None:
            if not self._cache_open:
                try:
                    await asyncio.to_thread(self.cache.open)
                except BaseException:
                    await self.storage.close()  # do not leak the open database
                    raise
                self._cache_open = True
            # shared stores: other processes' changes evict entries (also behind a wrapper)
            feed = self.storage.capabilities.change_feed
            if feed is not None:
                feed.subscribe_episode_changes(self._evict_changed)
        self._writer.start()
        self._start_embedding_worker()
        self._learner.start()
        await self._start_synchronizer()
        self._started = True

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._stop_listening()
        errors = await self._writer.stop()
        await self._learner.stop()
        if self._parts.embedding_worker is not None:
            await self._parts.embedding_worker.stop()
            self._parts.embedding_worker = None
        if self._parts.synchronizer is not None:
            await self._parts.synchronizer.stop()
        if self._parts.vectors is not None:
            await self._parts.vectors.provider.close()
        # the store first: a resilient store's outbox replayer may still touch the cache
        await self.storage.close()
        if self.cache is not None:
            await asyncio.to_thread(self._close_cache)
        if errors:
            raise errors[0]

    async def _refuse_a_lost_store(self) -> None:
        """An embedded store file that is missing or empty while the cache holds episodes was
        deleted, truncated or replaced: opening it would create an empty store next to the
        cache's last copies. Refuse before anything is created."""
        path = self.storage.capabilities.local_file
        if self.cache is None or self.storage.name != "sqlite" or path is None:
            return
        try:
            if path.stat().st_size > 0:
                return
        except FileNotFoundError:
            pass
        except OSError:  # not a path to a file at all: the store's own open says which and why
            return
        await asyncio.to_thread(self.cache.open)
        self._cache_open = True
        held = await asyncio.to_thread(self.cache.entries)
        if held:
            await asyncio.to_thread(self.cache.close)
            self._cache_open = False
            raise DataIntegrityError(
                f"The store {path} is missing or empty, but the cache {self.cache.path} holds "
                f"{held} episode(s): the store was deleted, truncated or replaced, and nothing "
                "was created. Back up the data directory, then run `memory-cli storage "
                "rebuild-from-cache` to rebuild the store from the cache's copies (or restore it "
                "from a backup); to start an empty memory instead, move the cache directory aside."
            )

    async def _evict_changed(self, change: Any) -> None:
        """Another process changed an episode: drop our cached copy (deleted: for good).
        A change that arrives after the cache was closed is ignored."""
        cache = self.cache
        if cache is None:
            return
        drop = cache.delete if change.op == "deleted" else cache.invalidate

        def run() -> None:
            with self._cache_guard:
                if self._cache_open:
                    drop(change.episode_id)

        await asyncio.to_thread(run)

    async def _stop_listening(self) -> None:
        """No more episode-change callbacks (they write to the cache close() is about to close)."""
        feed = self.storage.capabilities.change_feed
        if feed is not None:
            await feed.stop_listening()

    def _close_cache(self) -> None:
        with self._cache_guard:  # waits for a callback already dropping an entry
            self._cache_open = False
            if self.cache is not None:
                self.cache.close()

    def _start_embedding_worker(self) -> None:
        """The background episode embedder (``embeddings.background``); at start it embeds the
        completed episodes left without a vector (a process that died before writing them)."""
        vectors = self._parts.vectors
        embeddings = self._parts.config.embeddings
        if vectors is None or not embeddings.background:
            return
        from ..retrieval.background import EmbeddingWorker  # numpy: only with a provider

        self._parts.embedding_worker = EmbeddingWorker(vectors, embeddings.batch_size)
        self._parts.embedding_worker.start()

    async def _start_synchronizer(self) -> None:
        """The periodic cache sync: on when configured, or (automatic) for a remote primary."""
        sync = self._parts.config.sync
        enabled = sync.enabled if sync.enabled is not None else self.storage.name != "sqlite"
        if self.cache is None or not enabled:
            return
        self._parts.synchronizer = StorageSynchronizer(
            self.storage,
            self.cache,
            strategy=sync.strategy,
            interval_s=sync.interval_s,
            window_s=sync.window_s,
            index_limit=sync.index_limit,
        )
        await self._parts.synchronizer.start()
