"""Ranking of patterns and heuristics for a task context.

Pattern score = 100 x success_rate + 50 x min(sample, 10) / 10 + 100 x context similarity
+ a type bonus, scaled by effectiveness (x0.75 at 0, x1 at the neutral 0.5, x1.25 at 1).
Heuristic score = confidence x relevance of its condition to the context.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..model.episode import TaskContext
from ..model.pattern import (
    AnyPattern,
    DecisionPoint,
    ErrorRecovery,
    Heuristic,
    ToolSequence,
    context_of,
)
from ..model.similarity import pattern_context_similarity

__all__ = [
    "HeuristicMatch",
    "PatternMatch",
    "heuristic_relevance",
    "rank_heuristics",
    "rank_patterns",
    "score_pattern",
]


class PatternMatch(BaseModel):
    """A pattern with its rank score and what the score is made of."""

    model_config = ConfigDict(extra="forbid")

    pattern: AnyPattern
    score: float
    success_rate: float
    sample_size: int
    context_similarity: float
    type_bonus: float
    effectiveness: float


class HeuristicMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    heuristic: Heuristic
    score: float
    relevance: float


def _type_bonus(pattern: AnyPattern) -> float:
    if isinstance(pattern, ToolSequence):
        return 20.0 * len(set(pattern.tools)) / len(pattern.tools) if pattern.tools else 0.0
    if isinstance(pattern, ErrorRecovery):
        return 30.0
    if isinstance(pattern, DecisionPoint):
        return 25.0 if pattern.outcome_stats.total_count > 5 else 0.0
    return 10.0 * min(pattern.occurrence_count, 5)


def score_pattern(pattern: AnyPattern, context: TaskContext, effectiveness: float) -> PatternMatch:
    ctx_sim = pattern_context_similarity(context_of(pattern), context)
    sample = pattern.sample_size()
    bonus = _type_bonus(pattern)
    raw = 100 * pattern.rate() + 50 * min(sample, 10) / 10 + 100 * ctx_sim + bonus
    return PatternMatch(
        pattern=pattern,
        score=raw * (0.75 + 0.5 * effectiveness),
        success_rate=pattern.rate(),
        sample_size=sample,
        context_similarity=ctx_sim,
        type_bonus=bonus,
        effectiveness=effectiveness,
    )


def rank_patterns(
    candidates: list[tuple[AnyPattern, float]], context: TaskContext, limit: int
) -> list[PatternMatch]:
    """Score, sort (ties broken by id for stability), keep one per similarity key, cut."""
    scored = sorted(
        (score_pattern(p, context, eff) for p, eff in candidates),
        key=lambda m: (-m.score, str(m.pattern.id)),
    )
    seen: set[str] = set()
    ranked: list[PatternMatch] = []
    for match in scored:
        key = match.pattern.similarity_key()
        if key in seen:
            continue
        seen.add(key)
        ranked.append(match)
        if len(ranked) >= limit:
            break
    return ranked


def heuristic_relevance(heuristic: Heuristic, context: TaskContext) -> float:
    """+1.0 domain, +0.8 language, +0.5 framework, +0.3 a tag, named in the condition; else 0.1."""
    condition = heuristic.condition.lower()
    score = 0.0
    if context.domain and context.domain.lower() in condition:
        score += 1.0
    if context.language and context.language.lower() in condition:
        score += 0.8
    if context.framework and context.framework.lower() in condition:
        score += 0.5
    score += 0.3 * sum(1 for tag in context.tags if tag.lower() in condition)
    return score or 0.1


def rank_heuristics(
    candidates: list[Heuristic],
    context: TaskContext,
    limit: int,
    *,
    min_confidence: float,
    min_sample_size: int,
) -> list[HeuristicMatch]:
    matches = []
    for h in candidates:
        if h.evidence.sample_size < min_sample_size or h.confidence < min_confidence:
            continue
        relevance = heuristic_relevance(h, context)
        score = h.confidence * relevance
        if score > 0:
            matches.append(HeuristicMatch(heuristic=h, score=score, relevance=relevance))
    matches.sort(key=lambda m: (-m.score, str(m.heuristic.heuristic_id)))
    return matches[:limit]
