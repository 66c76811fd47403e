"""What a memory is made of: the store, the cache, the settings and the services that the
memory's collaborators (step writer, learner, retriever, reads, health, lifecycle) share.

One instance per :class:`~.memory.SelfLearningMemory`; every collaborator reads its fields when
it needs them, so a store replaced through ``memory.storage`` (tests wrap it before
``start()``) is the one they all use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import MemoryConfig
from ..learning.queue import LearningQueue
from ..storage.backend import StorageBackend
from ..storage.lmdb_cache import EpisodeCache
from ..storage.sync import StorageSynchronizer
from .monitoring import Monitor

if TYPE_CHECKING:  # numpy-backed: imported only when an embedding provider is configured
    from ..retrieval.background import EmbeddingWorker
    from ..retrieval.vectors import VectorSearch

__all__ = ["MemoryParts"]


@dataclass
class MemoryParts:
    storage: StorageBackend
    config: MemoryConfig
    cache: EpisodeCache | None = None
    data_dir: Path | None = None
    vectors: VectorSearch | None = None  # with an embedding provider
    monitor: Monitor = field(default_factory=Monitor)
    queue: LearningQueue | None = None  # the learning queue, made by start() when enabled
    synchronizer: StorageSynchronizer | None = None  # the cache sync, made by start() when on
    # the background episode embedder, made by start() when embeddings.background is on
    embedding_worker: EmbeddingWorker | None = None
