"""Similarity between patterns and between contexts: what makes a stored pattern fit a task."""

from __future__ import annotations

from collections.abc import Sequence

from .episode import TaskContext

__all__ = ["context_similarity", "jaccard", "levenshtein", "pattern_context_similarity"]


def levenshtein(a: Sequence[object], b: Sequence[object]) -> int:
    """Edit distance between two sequences (strings or token lists)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def sequence_similarity(a: Sequence[object], b: Sequence[object]) -> float:
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def context_similarity(a: TaskContext, b: TaskContext) -> float:
    """0.4 domain + 0.3 language (equal and set) + 0.15 both unset + 0.3 tag Jaccard, max 1."""
    score = 0.4 * (a.domain == b.domain)
    if a.language is not None and a.language == b.language:
        score += 0.3
    elif a.language is None and b.language is None:
        score += 0.15
    score += 0.3 * jaccard(a.tags, b.tags)
    return min(1.0, score)


def pattern_context_similarity(pattern: TaskContext, query: TaskContext) -> float:
    """The mean of the context factors (language, framework, domain, complexity,
    and tags when either side has any)."""
    factors = [
        1.0 if pattern.language == query.language else 0.0,
        1.0 if pattern.framework == query.framework else 0.0,
        0.8 if pattern.domain == query.domain else 0.0,
        0.6 if pattern.complexity == query.complexity else 0.0,
    ]
    if pattern.tags or query.tags:
        factors.append(0.7 * jaccard(pattern.tags, query.tags))
    return sum(factors) / len(factors)
