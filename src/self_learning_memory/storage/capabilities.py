"""What a store may offer beyond :class:`~.backend.StorageBackend`, reached one way.

Every store has ``capabilities``: a frozen :class:`Capabilities` whose fields are typed handles,
``None`` where the store does not offer that part. A caller asks for the handle it needs and
says what is missing when it is ``None``; it never probes the store for attributes or checks
its concrete class.

    queries = memory.storage.capabilities.step_queries
    if queries is None:
        raise CapabilityUnavailableError("Step log queries need the embedded SQLite store.")

Which store offers what:

=================  ======  =====  ==========  ==================
handle             SQLite  Turso  PostgreSQL  resilience wrapper
=================  ======  =====  ==========  ==================
``local_file``     yes     yes    no          the primary's
``step_queries``   yes     yes    no          the primary's
``maintenance``    yes     yes    no          the primary's
``transfer``       yes     yes    yes         the primary's
``change_feed``    no      no     yes         the primary's
``batch_writer``   yes     yes    yes         the primary's
``vector_index``   no      no     pgvector    the primary's
``candidate_log``  yes     yes    no          the primary's
``resilience``     no      no     no          the wrapper itself
=================  ======  =====  ==========  ==================

The wrapper passes the primary's handles through: they act on the primary directly, outside
the retries, the breaker and the outbox (maintenance, step queries and row transfers are
operator actions on a store that must be reachable, not writes to journal).
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ..model.records import EpisodeCandidate, EpisodeFilters, NearestRow, ServerHits
    from .batch import BatchWriter
    from .step_queries import StepQueries
    from .transfer import TransferAdapter

__all__ = [
    "CandidateLog",
    "Capabilities",
    "ChangeFeed",
    "EpisodeChangeEvent",
    "KeptCapabilities",
    "Maintenance",
    "ResilienceStatus",
    "VectorIndex",
]

T = TypeVar("T")


class Maintenance(Protocol):
    """The embedded database file and a way to run SQL on its connection's thread, outside any
    transaction, with the store's lock retries (VACUUM, integrity checks, bounded reads:
    ``storage/maintenance.py``)."""

    @property
    def path(self) -> Path: ...

    async def run_maintenance(self, fn: Callable[[Any], T]) -> T: ...


class EpisodeChangeEvent(Protocol):
    """Another process created, extended, completed or deleted an episode."""

    @property
    def op(self) -> str: ...  # created, steps, completed, deleted

    @property
    def episode_id(self) -> uuid.UUID: ...


class ChangeFeed(Protocol):
    """Episode changes made by other processes sharing the store (PostgreSQL LISTEN/NOTIFY)."""

    def subscribe_episode_changes(
        self, callback: Callable[[EpisodeChangeEvent], Awaitable[None]]
    ) -> None:
        """Call ``callback`` after each change another process commits."""
        ...

    async def stop_listening(self) -> None:
        """Deliver no more changes (a memory calls it before it closes its cache)."""
        ...


class CandidateLog(Protocol):
    """Which episodes' retrieval candidate rows may have changed, from a log every writing
    transaction of any process appends to (SQLite: migration 10's ``candidate_changes``), so a
    process keeps the rows it read across store versions (``retrieval/hybrid.py``)."""

    # the log's owner (the store's connection): a position read from another log means nothing
    owner: object

    async def changed_since(self, position: int | None) -> tuple[int, list[uuid.UUID] | None]:
        """The log's newest position and the episodes logged after ``position`` (each once);
        None instead of the episodes when the log cannot tell (``position`` None, older than
        the oldest entry kept, or past the newest)."""
        ...


class VectorIndex(Protocol):
    """Nearest-episode search run by the store itself (PostgreSQL with pgvector:
    ``storage/postgres/pgvector.py``), so a process fetches only candidate rows and holds no
    matrix of every vector."""

    # below this many vectors of an identity a process scores them itself (0: never)
    exact_below: int
    vector_search: str  # the regime a process's retrieval chose: in_process_exact, server_hnsw

    async def count_vectors(self, identity: str, limit: int) -> int:
        """The identity's stored vectors, counted up to ``limit`` at most."""
        ...

    async def ensure_index(self, identity: str, dimensions: int) -> str | None:
        """Build the identity's index if missing; its name, None when none can be built."""
        ...

    async def nearest(
        self,
        identity: str,
        dimensions: int,
        query: bytes,
        k: int,
        filters: EpisodeFilters,
        known: Mapping[uuid.UUID, EpisodeCandidate] | None = None,
    ) -> list[NearestRow]:
        """The ``k`` completed episodes passing ``filters`` nearest the query (little-endian
        float32 bytes), nearest first; rows of episodes in ``known`` (candidates of the same
        store version) reuse those instead of being decoded again."""
        ...

    async def search_with_feedback(
        self,
        identity: str,
        dimensions: int,
        query: bytes,
        k: int,
        filters: EpisodeFilters,
        feedback: int,
        weight: float,
        known: Callable[[int | None], Mapping[uuid.UUID, EpisodeCandidate]],
        *,
        read_version: bool = False,
    ) -> ServerHits:
        """``nearest``, the query moved toward the first ``feedback`` rows by ``weight``
        (Rocchio, re-normalised; ``expanded``, None when there is none) and its ``k`` nearest
        (``expanded_hits``), in one statement that, with ``read_version``, also reads
        the store's data version (``store_version``; None if it could not); ``known(version)``
        gives the caller's candidates decoded at that version (None: not read)."""
        ...

    async def vectors(
        self, identity: str, episode_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[bytes, bool]]:
        """The stored vectors (float32 bytes) and truncated flags of these episodes."""
        ...

    async def status(self) -> dict[str, Any]: ...


class ResilienceStatus(Protocol):
    """Breaker, retries, outbox and degraded reads of a resilience wrapper."""

    async def resilience_status(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Capabilities:
    """The optional handles of one store; ``None``: the store does not offer it."""

    local_file: Path | None = None  # the embedded database file (SQLite, a Turso replica)
    step_queries: StepQueries | None = None  # the step log in SQL (``step_queries.py``)
    maintenance: Maintenance | None = None  # VACUUM, integrity, store info, connections
    transfer: TransferAdapter | None = None  # row-level import/export (``transfer.py``)
    change_feed: ChangeFeed | None = None  # other processes' episode changes
    resilience: ResilienceStatus | None = None  # set by the resilience wrapper only
    batch_writer: BatchWriter | None = None  # several writes in one transaction (``batch.py``)
    vector_index: VectorIndex | None = None  # nearest episodes searched by the store (pgvector)
    candidate_log: CandidateLog | None = None  # whose candidate rows changed since (SQLite)


class KeptCapabilities:
    """A store's :class:`Capabilities`, built again only when what they are built on changes
    (compared by identity: a connection, a dialect, the primary's handles), since a search asks
    for them several times."""

    def __init__(self) -> None:
        self._on: tuple[object, ...] = ()
        self._built: Capabilities | None = None

    def of(self, on: tuple[object, ...], build: Callable[[], Capabilities]) -> Capabilities:
        """The handles built on ``on`` (the same objects, in the same order, at each call of
        one store): those kept, or ``build()`` when one of them changed."""
        built = self._built
        if built is None or any(map(operator.is_not, on, self._on)):
            built = self._built = build()
            self._on = on
        return built
