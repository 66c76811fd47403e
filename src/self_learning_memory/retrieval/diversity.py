"""MMR: the ranked candidates reordered so that near-copies do not crowd the results.

Redundancy is the similarity of two episodes *with the same outcome* (a failure next to a
success of the same task is information, not repetition): the cosine of their vectors when both
have one (they embed the task, tools, steps and errors), else the word Jaccard of description
and tools. Only the part above ``mmr_similarity_floor`` (0.8) counts, rescaled to 0..1: episodes
that merely share a topic or a task kind are not penalised, near-copies are; at
``duplicate_threshold`` (0.95) and above an episode is dropped as a near-duplicate.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from ..config import RetrievalConfig
from .scores import RankMode, Scored, ScoredCandidate
from .tokens import jaccard

__all__ = ["mmr", "pool_size", "redundancy"]


def pool_size(limit: int) -> int:
    """How many of the best-scored candidates MMR looks at for ``limit`` results."""
    return max(limit * 5, 50)


def redundancy(a: Scored, b: Scored) -> float:
    """How much ``a`` repeats ``b``: 0 when their outcomes differ, else the cosine of their
    vectors when both have one, else the word Jaccard of description and tools."""
    if a.cand.outcome_type != b.cand.outcome_type:
        return 0.0
    if a.embedding is not None and b.embedding is not None:
        return min(max(float(a.embedding @ b.embedding), 0.0), 1.0)
    return jaccard(a.doc, b.doc)


def _catch_up(item: Scored, chosen: list[Scored]) -> None:
    """Raise ``item.max_sim`` to its largest redundancy with ``chosen``."""
    for other in chosen:
        sim = redundancy(item, other)
        if sim > item.max_sim:
            item.max_sim = sim


def mmr(
    totals: list[float],
    item: Callable[[int], Scored],
    config: RetrievalConfig,
    limit: int,
    mode: RankMode,
) -> list[ScoredCandidate]:
    """Maximal marginal relevance over a pool sorted best first, given by its ``totals`` and
    ``item(n)``, its n-th candidate (built only when MMR looks at it): each result is the
    remaining candidate of highest lambda x score - (1 - lambda) x penalty (the first of equal
    ones), the penalty being its largest redundancy with a result already chosen above
    ``mmr_similarity_floor``, rescaled to 0..1. At ``duplicate_threshold`` and above the
    candidate is dropped as a near-duplicate. The pool is the first ``pool_size(limit)``.

    Lazily, with the same choices: a candidate's key is at most its share of the score, lambda
    x total / top, which does not grow down the pool (when top > 0); so each choice looks down
    the pool only until that bound is no higher than the best key found, bringing each
    candidate it looks at up to date with the results chosen since it last looked. Keys only
    fall as results are chosen, so no candidate left unseen could have won, nor tied before
    the winner. A ranking compares a few candidates with a few results, where comparing every
    remaining candidate with each new result took ~250 comparisons (that eager definition is
    the oracle of ``tests/unit/test_ranking_columns.py``)."""
    lam = config.mmr_lambda
    floor = config.mmr_similarity_floor
    size = min(len(totals), pool_size(limit))
    top = (totals[0] if size else 0.0) or 1.0
    bounds = [lam * total / top for total in totals[:size]]
    # (NaN compares False: then every remaining candidate is looked at, as without the bound)
    monotone = all(a >= b for a, b in itertools.pairwise(bounds))
    items: list[Scored | None] = [None] * size
    compared = [0] * size  # how many of ``results`` each candidate was compared with
    remaining = list(range(size))
    results: list[Scored] = []
    chosen: list[ScoredCandidate] = []

    def penalty(candidate: Scored) -> float:
        return max(0.0, candidate.max_sim - floor) / (1.0 - floor)

    while remaining and len(chosen) < limit:
        best_at, best_key = -1, 0.0
        for at, n in enumerate(remaining):
            if best_at >= 0 and monotone and bounds[n] <= best_key:
                break  # neither it nor any below it can do better
            candidate = items[n]
            if candidate is None:
                candidate = items[n] = item(n)
            if compared[n] < len(results):
                _catch_up(candidate, results[compared[n] :])
                compared[n] = len(results)
            key = bounds[n] - (1 - lam) * penalty(candidate)
            if best_at < 0 or key > best_key:
                best_at, best_key = at, key
        picked = items[remaining.pop(best_at)]
        assert picked is not None  # (looked at above)
        if picked.max_sim >= config.duplicate_threshold:
            continue  # a near-duplicate of a result already chosen
        chosen.append(picked.result((1 - lam) * penalty(picked), mode))
        results.append(picked)
    return chosen
