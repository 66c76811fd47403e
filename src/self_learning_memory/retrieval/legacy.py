"""The reference system's score, kept as a baseline to compare the ranking with.

0.3 x reward + min(0.4, context) + 0.3 x (long query words found in the description / words),
over the candidates that pass its relevance filter (same domain, language, framework or a
shared tag, or a long query word in the description).
"""

from __future__ import annotations

from ..model.episode import TaskContext
from ..model.records import EpisodeCandidate
from .scores import ScoreComponents, ScoredCandidate

__all__ = ["legacy_rank"]


def _legacy_context(cand: EpisodeCandidate, context: TaskContext) -> float:
    c = cand.context
    score = 0.4 * (c.domain == context.domain)
    score += 0.3 * (context.language is not None and c.language == context.language)
    score += 0.2 * (context.framework is not None and c.framework == context.framework)
    score += 0.1 * len(set(c.tags) & set(context.tags))
    return score


def legacy_rank(
    candidates: list[EpisodeCandidate], query: str, context: TaskContext, limit: int
) -> list[ScoredCandidate]:
    """The reference system's relevance filter and score, for comparison."""
    words = query.lower().split()
    long_words = [w for w in words if len(w) > 3]
    out: list[ScoredCandidate] = []
    for cand in candidates:
        desc = cand.task_description.lower()
        hits = sum(1 for w in long_words if w in desc)
        ctx = _legacy_context(cand, context)
        c = cand.context
        relevant = (
            c.domain == context.domain
            or (context.language is not None and c.language == context.language)
            or (context.framework is not None and c.framework == context.framework)
            or bool(set(c.tags) & set(context.tags))
            or hits > 0
        )
        if not relevant:
            continue
        overlap = hits / len(words) if words else 0.0
        reward = cand.reward_total or 0.0
        total = 0.3 * reward + min(0.4, ctx) + 0.3 * overlap
        components = ScoreComponents(
            mode="legacy",
            relevance=overlap,
            lexical=0.0,
            term_coverage=overlap,
            context=ctx,
            outcome=reward,
            recency=0.0,
            total=total,
        )
        out.append(ScoredCandidate(cand, components, [*cand.sources, "legacy"]))
    out.sort(key=lambda s: (-s.components.total, s.candidate.episode_id))
    return out[:limit]
