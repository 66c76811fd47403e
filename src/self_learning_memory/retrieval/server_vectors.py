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
from .index import F32, rocchio
from .ranking import VectorSignals

__all__ = ["ServerSearch", "ServerVectors"]

_TRUNCATED_KEPT = 20_000  # truncated flags remembered for result provenance


@dataclass
class ServerSearch:
    """What one query's server searches found: the query's nearest rows, the expanded query
    (None without feedback) and its nearest rows, and every vector seen, by episode."""

    hits: list[NearestRow]
    expanded: F32 | None
    expanded_hits: list[NearestRow]
    vectors: dict[uuid.UUID, F32]

    def candidates(self) -> list[EpisodeCandidate]:
        seen: dict[uuid.UUID, EpisodeCandidate] = {}
        for row in (*self.hits, *self.expanded_hits):
            seen.setdefault(row.candidate.episode_id, row.candidate)
        return list(seen.values())


def _vector(raw: bytes) -> F32:
    return np.frombuffer(raw, dtype=np.float32)


class ServerVectors:
    def __init__(self, handle: VectorIndex, identity: str, dimensions: int) -> None:
        self.handle = handle
        self.identity = identity
        self.dimensions = dimensions
        self._indexed = False
        self._truncated: OrderedDict[uuid.UUID, bool] = OrderedDict()

    async def ensure_index(self) -> None:
        """Build the identity's HNSW index once per process (the store skips an existing one)."""
        if not self._indexed:
            await self.handle.ensure_index(self.identity, self.dimensions)
            self._indexed = True

    async def _nearest(self, query: F32, k: int, filters: EpisodeFilters) -> list[NearestRow]:
        rows = await self.handle.nearest(
            self.identity, self.dimensions, query.astype(np.float64).tolist(), k, filters
        )
        for row in rows:
            self._remember(row.candidate.episode_id, row.truncated)
        return rows

    def _remember(self, episode_id: uuid.UUID, truncated: bool) -> None:
        self._truncated[episode_id] = truncated
        self._truncated.move_to_end(episode_id)
        while len(self._truncated) > _TRUNCATED_KEPT:
            self._truncated.popitem(last=False)

    async def search(
        self, query: F32, k: int, filters: EpisodeFilters, feedback: int, weight: float
    ) -> ServerSearch:
        """The query's ``k`` nearest episodes passing ``filters``, the query moved toward the
        first ``feedback`` of them by ``weight`` (Rocchio, as the in-process index does) and
        that expanded query's ``k`` nearest."""
        await self.ensure_index()
        hits = await self._nearest(query, k, filters)
        vectors = {r.candidate.episode_id: _vector(r.vector) for r in hits}
        expanded: F32 | None = None
        expanded_hits: list[NearestRow] = []
        chosen = [vectors[r.candidate.episode_id] for r in hits[:feedback]]
        if chosen and weight > 0:
            expanded = rocchio(query, np.stack(chosen), weight)
        if expanded is not None:
            expanded_hits = await self._nearest(expanded, k, filters)
            for r in expanded_hits:
                vectors.setdefault(r.candidate.episode_id, _vector(r.vector))
        return ServerSearch(hits, expanded, expanded_hits, vectors)

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
        vectors: list[F32 | None] = [known.get(i) for i in ids]
        present = [v is not None for v in vectors]
        rows = [v for v in vectors if v is not None]
        block = np.stack(rows) if rows else np.zeros((0, self.dimensions), dtype=np.float32)
        columns = [block @ query] + ([block @ expanded] if expanded is not None else [])
        aligned = [[0.0] * len(ids) for _ in columns]
        k = 0
        for n, ok in enumerate(present):
            if ok:
                for column, values in zip(aligned, columns, strict=True):
                    column[n] = float(values[k])
                k += 1
        return VectorSignals(aligned[0], None if expanded is None else aligned[1], vectors, present)

    def truncated(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return {i for i in ids if self._truncated.get(i)}
