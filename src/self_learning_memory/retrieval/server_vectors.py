"""The vector side of retrieval when the store searches vectors itself (PostgreSQL with
pgvector: the store's ``vector_index`` capability).

The same signals as the in-process index (``index.py``), computed from what the server returns:
the query's nearest episodes (with their candidate rows and vectors, filters applied in SQL),
the query moved toward the first few of them (pseudo-relevance feedback) and its own nearest
episodes, and for every other candidate its vector, fetched by id. The process holds only the
vectors of the candidates of one query (and a bounded map of truncated flags), never every
stored vector: its memory does not grow with the store.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..model.records import EpisodeCandidate, EpisodeFilters, NearestRow
from ..storage.capabilities import VectorIndex
from .index import F32
from .ranking import VectorSignals

__all__ = ["ServerSearch", "ServerVectors"]

_TRUNCATED_KEPT = 20_000  # truncated flags remembered for result provenance
_CANDIDATES_KEPT = 20_000  # decoded candidate rows kept per store version (~1 KB each)


@dataclass
class ServerSearch:
    """What one query's server searches found: the query's nearest rows, the expanded query
    (None without feedback) and its nearest rows, and every vector seen, by episode."""

    hits: list[NearestRow]
    expanded: F32 | None
    expanded_hits: list[NearestRow]
    vectors: dict[uuid.UUID, F32]
    version: int | None = None  # the store version the rows are of (None: not known)

    def candidates(self) -> list[EpisodeCandidate]:
        seen: dict[uuid.UUID, EpisodeCandidate] = {}
        for row in (*self.hits, *self.expanded_hits):
            seen.setdefault(row.candidate.episode_id, row.candidate)
        return list(seen.values())


def _vector(raw: bytes) -> F32:
    return np.frombuffer(raw, dtype=np.float32)


def _vectors(raws: list[bytes]) -> list[F32]:
    """``_vector`` of each, read together when they have one length (one search's rows):
    rows of one block instead of one array per row."""
    if not raws or any(len(r) != len(raws[0]) for r in raws):
        return [_vector(r) for r in raws]
    return list(np.frombuffer(b"".join(raws), dtype=np.float32).reshape(len(raws), -1))


class ServerVectors:
    def __init__(self, handle: VectorIndex, identity: str, dimensions: int) -> None:
        self.handle = handle
        self.identity = identity
        self.dimensions = dimensions
        self._indexed = False
        self._truncated: OrderedDict[uuid.UUID, bool] = OrderedDict()
        self._candidates: dict[uuid.UUID, EpisodeCandidate] = {}  # of one store version
        self._version: int | None = None

    async def ensure_index(self) -> None:
        """Build the identity's HNSW index once per process (the store skips an existing one)."""
        if not self._indexed:
            await self.handle.ensure_index(self.identity, self.dimensions)
            self._indexed = True

    def _remember(self, episode_id: uuid.UUID, truncated: bool) -> None:
        # only the truncated are kept (``truncated`` asks for them): most rows are not, and
        # one that is no more (its vector made again) is forgotten
        if not truncated:
            self._truncated.pop(episode_id, None)
            return
        self._truncated[episode_id] = True
        self._truncated.move_to_end(episode_id)
        while len(self._truncated) > _TRUNCATED_KEPT:
            self._truncated.popitem(last=False)

    async def search(
        self,
        query: F32,
        k: int,
        filters: EpisodeFilters,
        feedback: int,
        weight: float,
        version: int | None = None,
        *,
        read_version: bool = False,
    ) -> ServerSearch:
        """The query's ``k`` nearest episodes passing ``filters``, the query moved toward the
        first ``feedback`` of them by ``weight`` (Rocchio, as the in-process index does) and
        that expanded query's ``k`` nearest, all in one server statement (the server moves the
        query: ``PgvectorIndex.search_with_feedback``). Candidate rows decoded for the same
        store ``version`` (any write by any process changes it) are not decoded again. With
        ``read_version`` the statement also reads the store's version (``ServerSearch.version``;
        None if it could not), which then stands for ``version``."""
        await self.ensure_index()

        def known(seen: int | None) -> dict[uuid.UUID, EpisodeCandidate]:
            at = seen if read_version else version
            if at is None or at != self._version:
                self._candidates.clear()
                self._version = at
            return self._candidates

        found = await self.handle.search_with_feedback(
            self.identity,
            self.dimensions,
            query.astype(np.float32).tobytes(),
            k,
            filters,
            feedback,
            weight,
            known,
            read_version=read_version,
        )
        hits, expanded_hits = found.hits, found.expanded_hits
        store = known(found.store_version)  # the candidates of the version the rows are of
        first: dict[uuid.UUID, NearestRow] = {}  # each episode's first row
        for row in (*hits, *expanded_hits):
            first.setdefault(row.candidate.episode_id, row)
        for episode_id, row in first.items():
            self._remember(episode_id, row.truncated)
            store[episode_id] = row.candidate
        vectors = dict(zip(first, _vectors([r.vector for r in first.values()]), strict=True))
        while len(store) > _CANDIDATES_KEPT:
            store.pop(next(iter(store)))
        expanded = None if found.expanded is None else _vector(found.expanded)
        return ServerSearch(
            hits,
            expanded,
            expanded_hits,
            vectors,
            found.store_version if read_version else version,
        )

    async def signals(
        self,
        ids: list[uuid.UUID],
        query: F32,
        expanded: F32 | None,
        known: dict[uuid.UUID, F32],
    ) -> VectorSignals:
        """Each candidate's cosine with the query (and the expanded query) and its vector,
        aligned with ``ids``; the vectors not in ``known`` are fetched from the store."""
        missing = [i for i in ids if i not in known]
        if missing:
            for episode_id, (raw, truncated) in (
                await self.handle.vectors(self.identity, missing)
            ).items():
                vector = _vector(raw)
                if vector.shape[0] == self.dimensions:
                    known[episode_id] = vector
                self._remember(episode_id, truncated)
        positions = [n for n, i in enumerate(ids) if i in known]
        rows = [known[ids[n]] for n in positions]
        block = np.stack(rows) if rows else np.zeros((0, self.dimensions), dtype=np.float32)
        queries = [query] if expanded is None else [query, expanded]
        scores = [(block @ q).tolist() for q in queries]
        return VectorSignals.aligned(len(ids), positions, scores, block, expanded is not None)

    def truncated(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return {i for i in ids if self._truncated.get(i)}
