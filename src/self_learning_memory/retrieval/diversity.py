"""MMR: the ranked candidates reordered so that near-copies do not crowd the results.

Redundancy is the similarity of two episodes *with the same outcome* (a failure next to a
success of the same task is information, not repetition): the cosine of their vectors when both
have one (they embed the task, tools, steps and errors), else the word Jaccard of description
and tools. Only the part above ``mmr_similarity_floor`` (0.8) counts, rescaled to 0..1: episodes
that merely share a topic or a task kind are not penalised, near-copies are; at
``duplicate_threshold`` (0.95) and above an episode is dropped as a near-duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import RetrievalConfig
from .scores import RankMode, Scored, ScoredCandidate
from .tokens import jaccard

if TYPE_CHECKING:  # numpy arrays are only passed in when an embedding provider is configured
    from .index import F32

__all__ = ["mmr", "redundancy"]


def redundancy(a: Scored, b: Scored) -> float:
    """How much ``a`` repeats ``b``: 0 when their outcomes differ, else the cosine of their
    vectors when both have one, else the word Jaccard of description and tools."""
    if a.cand.outcome_type != b.cand.outcome_type:
        return 0.0
    if a.embedding is not None and b.embedding is not None:
        return min(max(float(a.embedding @ b.embedding), 0.0), 1.0)
    return jaccard(a.doc, b.doc)


class _Screen:
    """Which pool items with vectors may have a redundancy of at least ``cutoff`` (the lower
    of the MMR floor and the duplicate threshold) with a chosen item, one float64 row per
    chosen item (MMR chooses a few items of a pool of dozens: no pool x pool product).

    A redundancy below the cutoff changes nothing (no penalty, no duplicate) however large the
    running maximum was, so MMR skips those pairs; the others get the exact float32 cosine.
    The float64 product of float32 vectors is exact to ~1e-15; a float32 dot of n dimensions
    is within n x 2^-24 x |a||b| of it, and the screen keeps 4x that margin, so no pair that
    could reach the cutoff is skipped."""

    def __init__(self, vectors: list[F32], cutoff: float) -> None:
        import numpy as np  # only with vectors, which are numpy arrays already

        self._block = np.array(vectors, dtype=np.float64)  # exact: float32 to float64
        self._norms = np.sqrt(np.einsum("ij,ij->i", self._block, self._block))
        self._slack = 4 * self._block.shape[1] * 2.0**-24
        self._cutoff = cutoff

    @classmethod
    def of(cls, pool: list[Scored], cutoff: float) -> _Screen | None:
        """The screen of the pool's items with vectors (each item's ``slot`` set to its row),
        None with fewer than two."""
        vectors: list[F32] = []
        for item in pool:
            if item.embedding is not None:
                item.slot = len(vectors)
                vectors.append(item.embedding)
        return cls(vectors, cutoff) if len(vectors) >= 2 else None

    def row(self, slot: int) -> list[bool]:
        """For each item with a vector: whether its redundancy with item ``slot`` may reach the
        cutoff."""
        block = self._block
        margin = self._slack * self._norms * self._norms[slot] + 1e-12
        may_reach: list[bool] = (block @ block[slot] + margin >= self._cutoff).tolist()
        return may_reach


def mmr(
    scored: list[Scored], config: RetrievalConfig, limit: int, mode: RankMode
) -> list[ScoredCandidate]:
    """Maximal marginal relevance over ``scored`` (sorted best first): lambda x score -
    (1 - lambda) x penalty, the penalty being the largest redundancy with a chosen result above
    ``mmr_similarity_floor``, rescaled to 0..1. At ``duplicate_threshold`` and above, the
    episode is dropped as a near-duplicate.

    Each remaining item keeps its running max redundancy to the chosen ones, updated with the
    newest choice only, so the cost is O(pool x limit)."""
    lam = config.mmr_lambda
    floor = config.mmr_similarity_floor
    top = (scored[0].total if scored else 0.0) or 1.0
    remaining = scored[: max(limit * 5, 50)]
    chosen: list[ScoredCandidate] = []

    def penalty(item: Scored) -> float:
        return max(0.0, item.max_sim - floor) / (1.0 - floor)

    def key(item: Scored) -> float:
        return lam * item.total / top - (1 - lam) * (max(0.0, item.max_sim - floor) / (1.0 - floor))

    screen = _Screen.of(remaining, min(floor, config.duplicate_threshold))
    # key(other), inlined; kept in step: only a new max_sim changes one
    keys = [
        lam * other.total / top - (1 - lam) * (max(0.0, other.max_sim - floor) / (1.0 - floor))
        for other in remaining
    ]
    while remaining and len(chosen) < limit:
        best = keys.index(max(keys))  # the first of equal keys
        del keys[best]
        item = remaining.pop(best)
        if item.max_sim >= config.duplicate_threshold:
            continue  # a near-duplicate of a result already chosen
        chosen.append(item.result((1 - lam) * penalty(item), mode))
        outcome, embedding = item.cand.outcome_type, item.embedding
        may_reach = None if screen is None or embedding is None else screen.row(item.slot)
        for n, other in enumerate(remaining):
            # redundancy(other, item), inlined; a different outcome is 0, never above max_sim
            if other.cand.outcome_type != outcome:
                continue
            if other.embedding is not None and embedding is not None:
                if may_reach is not None and not may_reach[other.slot]:
                    continue  # certainly below the floor and the threshold: changes nothing
                sim = min(max(float(other.embedding.dot(embedding)), 0.0), 1.0)  # as ``@``
            else:
                sim = jaccard(other.doc, item.doc)
            if sim > other.max_sim:
                other.max_sim = sim
                keys[n] = key(other)
    return chosen
