"""Episode ranking for retrieve_relevant_context: pure functions over bounded candidates.

Hybrid / lexical / vector modes:

    total = w_rel x relevance + w_ctx x context + w_out x outcome + w_rec x recency

- relevance: lexical mode 0.6 x bm25 (normalised to the best candidate) + 0.4 x query-term
  coverage. Vector mode: the cosine with the query, normalised to the best candidate. Hybrid:
  both signals z-scored over the candidates (so neither dominates by its spread alone),
  combined as l x lexical + (1 - l) x vector, then min-max scaled to [0, 1] over the
  candidates. The lexical weight l is set per query (``lexical_trust.py``): 1 - ``vector_weight``
  (0.2) for plain language, up to ``lexical_weight_max`` (0.6) for pasted error lines and
  queries made of identifiers; it is reported as the ``lexical_weight`` component. When the memory expanded the query by pseudo-relevance
  feedback, the vector signal is the cosine with the expanded query (``vector_feedback``); the
  ``vector`` component always reports the raw cosine with the query as asked.
- context: task type, domain, language, framework and tag overlap with the query's context,
  averaged over the fields the query sets.
- outcome: 0.5 x outcome score (success 1, partial 0.5, failure 0) + 0.5 x reward / 2.5.
- recency: a 30-day half-life on the episode's end time.

Then MMR (lambda 0.7) orders the results. Redundancy is the similarity of two episodes *with
the same outcome* (a failure next to a success of the same task is information, not
repetition): the cosine of their vectors when both have one (they embed the task, tools, steps
and errors), else the word Jaccard of description and tools. Only the part above
``mmr_similarity_floor`` (0.8) counts, rescaled to 0..1: episodes that merely share a topic or a
task kind are not penalised, near-copies are; at ``duplicate_threshold`` (0.9) and above an
episode is dropped as a near-duplicate.

Legacy mode reproduces the reference system's score for comparison:
0.3 x reward + min(0.4, context) + 0.3 x (long query words found in the description / words).
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from ..config import RetrievalConfig
from ..storage.backend import EpisodeCandidate
from .lexical_trust import lexical_weight
from .types import Episode, TaskContext, TaskType

if TYPE_CHECKING:  # numpy arrays are only passed in when an embedding provider is configured
    from ..embeddings.index import F32

__all__ = [
    "RetrievalResult",
    "ScoreComponents",
    "ScoredCandidate",
    "legacy_rank",
    "query_terms",
    "rank_candidates",
]

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "with",
        "without",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "my",
        "our",
        "your",
        "we",
        "you",
        "me",
        "us",
        "so",
        "if",
        "then",
        "than",
    ]
)
MAX_QUERY_TERMS = 32
_OUTCOME_SCORE = {"success": 1.0, "partial_success": 0.5, "failure": 0.0}


class ScoreComponents(BaseModel):
    """Why a result ranked where it did. Every field is in [0, 1] except ``total``."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["hybrid", "lexical", "vector", "legacy"]
    relevance: float
    lexical: float
    term_coverage: float
    vector: float | None = None
    vector_feedback: float | None = None
    lexical_weight: float | None = None  # hybrid: this query's lexical share of relevance
    context: float
    outcome: float
    recency: float
    diversity_penalty: float = 0.0
    total: float


class RetrievalResult(BaseModel):
    """One retrieved episode, its score, the score's parts and where it came from."""

    model_config = ConfigDict(extra="forbid")

    episode: Episode
    score: float
    components: ScoreComponents
    provenance: list[str]


@dataclass
class ScoredCandidate:
    candidate: EpisodeCandidate
    components: ScoreComponents
    provenance: list[str]


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@functools.lru_cache(maxsize=65_536)
def tokens(text: str) -> frozenset[str]:
    """The stemmed, stopword-free words of a text (cached: descriptions recur across queries)."""
    return frozenset(_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS)


@functools.lru_cache(maxsize=16_384)
def tool_tokens(tools: tuple[str, ...]) -> frozenset[str]:
    return frozenset(t.lower() for t in tools)


def query_terms(text: str) -> list[str]:
    """The distinct searchable words of a query, in order, at most 32."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_TERMS]


def _jaccard(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def context_match(
    cand: EpisodeCandidate, context: TaskContext, task_type: TaskType | None
) -> tuple[float, list[str]]:
    """Weighted share of the query's context that the episode matches, and what matched."""
    c = cand.context
    parts: list[tuple[float, float, str]] = [(0.3, float(c.domain == context.domain), "domain")]
    if task_type is not None:
        parts.append((0.2, float(cand.task_type == task_type), "task_type"))
    if context.language:
        parts.append(
            (0.2, float((c.language or "").lower() == context.language.lower()), "language")
        )
    if context.framework:
        same = (c.framework or "").lower() == context.framework.lower()
        parts.append((0.1, float(same), "framework"))
    if context.tags:
        parts.append((0.2, _jaccard(set(c.tags), set(context.tags)), "tags"))
    weight = sum(w for w, _, _ in parts)
    score = sum(w * m for w, m, _ in parts)
    return score / weight, [f"context:{name}" for _, m, name in parts if m > 0]


def _outcome(cand: EpisodeCandidate) -> float:
    outcome = _OUTCOME_SCORE.get(cand.outcome_type or "", 0.0)
    reward = min(max(cand.reward_total or 0.0, 0.0) / 2.5, 1.0)
    return 0.5 * outcome + 0.5 * reward


def _recency(cand: EpisodeCandidate, now: datetime, half_life_days: float) -> float:
    if cand.end_time is None:
        return 0.0
    age_days = max(0.0, (now - cand.end_time).total_seconds() / 86_400)
    return math.exp(-math.log(2) * age_days / half_life_days)


RankMode = Literal["hybrid", "lexical", "vector"]


@dataclass(slots=True)
class _Scored:
    cand: EpisodeCandidate
    doc: frozenset[str]
    relevance: float
    lexical: float
    coverage: float
    vector: float | None
    context: float
    matched: list[str]
    outcome: float
    recency: float
    total: float
    feedback: float | None = None
    embedding: F32 | None = None
    lexical_weight: float | None = None
    max_sim: float = 0.0  # the largest redundancy with a chosen result (MMR)

    def result(self, penalty: float, mode: RankMode) -> ScoredCandidate:
        components = ScoreComponents(
            mode=mode,
            relevance=self.relevance,
            lexical=self.lexical,
            term_coverage=self.coverage,
            vector=self.vector,
            vector_feedback=self.feedback,
            lexical_weight=self.lexical_weight,
            context=self.context,
            outcome=self.outcome,
            recency=self.recency,
            diversity_penalty=penalty,
            total=self.total,
        )
        return ScoredCandidate(self.cand, components, [*self.cand.sources, *self.matched])


def _zscores(values: list[float]) -> list[float]:
    # plain float arithmetic: statistics.pstdev computes exactly with fractions, 10x slower
    mean = math.fsum(values) / len(values)
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    return [(v - mean) / spread if spread > 0 else 0.0 for v in values]


def _fuse(lexical: list[float], semantic: list[float], lexical_weight: float) -> list[float]:
    """Hybrid relevance: z-scored lexical and vector signals, weighted, min-max scaled to 0..1."""
    fused = [
        lexical_weight * lx + (1 - lexical_weight) * sm
        for lx, sm in zip(_zscores(lexical), _zscores(semantic), strict=True)
    ]
    low, high = min(fused), max(fused)
    return [(f - low) / (high - low) if high > low else 1.0 for f in fused]


def rank_candidates(
    candidates: list[EpisodeCandidate],
    terms: list[str],
    context: TaskContext,
    task_type: TaskType | None,
    config: RetrievalConfig,
    now: datetime,
    limit: int,
    vector_scores: dict[uuid.UUID, float] | None = None,
    mode: RankMode = "lexical",
    *,
    feedback_scores: dict[uuid.UUID, float] | None = None,
    embeddings: Mapping[uuid.UUID, F32] | None = None,
    query: str | None = None,
) -> list[ScoredCandidate]:
    """Score and order candidates. ``vector_scores`` are cosines with the query,
    ``feedback_scores`` (optional) with the feedback-expanded query, which then drives the
    vector signal; ``embeddings`` (optional) are the episodes' vectors, for MMR's redundancy.
    ``query`` (the text as asked) sets hybrid's lexical weight per query
    (``lexical_trust.lexical_weight``); without it the weight is ``1 - vector_weight``."""
    best_lexical = max((c.lexical or 0.0 for c in candidates), default=0.0)
    query_tokens = {_stem(t) for t in terms}
    scored: list[_Scored] = []
    for cand in candidates:
        doc = tokens(cand.task_description) | tool_tokens(cand.tools)
        lexical = (cand.lexical or 0.0) / best_lexical if best_lexical > 0 else 0.0
        coverage = len(query_tokens & doc) / len(query_tokens) if query_tokens else 0.0
        vector = feedback = None
        if vector_scores is not None:
            vector = max(vector_scores.get(cand.episode_id, 0.0), 0.0)  # cosine, reported as is
            if feedback_scores is not None:
                feedback = max(feedback_scores.get(cand.episode_id, 0.0), 0.0)
        ctx, matched = context_match(cand, context, task_type)
        scored.append(
            _Scored(
                cand,
                doc,
                0.6 * lexical + 0.4 * coverage,
                lexical,
                coverage,
                vector,
                ctx,
                matched,
                _outcome(cand),
                _recency(cand, now, config.recency_half_life_days),
                0.0,
                feedback,
                None if embeddings is None else embeddings.get(cand.episode_id),
            )
        )
    if vector_scores is not None and scored:
        semantic = [s.feedback if s.feedback is not None else s.vector or 0.0 for s in scored]
        if mode == "vector":
            best = max(semantic)
            relevance = [v / best if best > 0 else 0.0 for v in semantic]
        else:
            weight = (
                1.0 - config.vector_weight
                if query is None
                else lexical_weight(query, candidates, config)
            )
            relevance = _fuse([s.relevance for s in scored], semantic, weight)
            for item in scored:
                item.lexical_weight = weight
        for item, value in zip(scored, relevance, strict=True):
            item.relevance = value
    for item in scored:
        item.total = (
            config.weight_relevance * item.relevance
            + config.weight_context * item.context
            + config.weight_outcome * item.outcome
            + config.weight_recency * item.recency
        )
    scored.sort(key=lambda item: (-item.total, item.cand.episode_id))
    return _mmr(scored, config, limit, mode)


def redundancy(a: _Scored, b: _Scored) -> float:
    """How much ``a`` repeats ``b``: 0 when their outcomes differ, else the cosine of their
    vectors when both have one, else the word Jaccard of description and tools."""
    if a.cand.outcome_type != b.cand.outcome_type:
        return 0.0
    if a.embedding is not None and b.embedding is not None:
        return min(max(float(a.embedding @ b.embedding), 0.0), 1.0)
    return _jaccard(a.doc, b.doc)


def _mmr(
    scored: list[_Scored], config: RetrievalConfig, limit: int, mode: RankMode
) -> list[ScoredCandidate]:
    """Maximal marginal relevance: lambda x score - (1 - lambda) x penalty, the penalty being
    the largest redundancy with a chosen result above ``mmr_similarity_floor``, rescaled to
    0..1. At ``duplicate_threshold`` and above, the episode is dropped as a near-duplicate.

    Each remaining item keeps its running max redundancy to the chosen ones, updated with the
    newest choice only, so the cost is O(pool x limit)."""
    lam = config.mmr_lambda
    floor = config.mmr_similarity_floor
    top = (scored[0].total if scored else 0.0) or 1.0
    remaining = scored[: max(limit * 5, 50)]
    chosen: list[ScoredCandidate] = []

    def penalty(item: _Scored) -> float:
        return max(0.0, item.max_sim - floor) / (1.0 - floor)

    while remaining and len(chosen) < limit:
        best_index = max(
            range(len(remaining)),
            key=lambda i: lam * remaining[i].total / top - (1 - lam) * penalty(remaining[i]),
        )
        item = remaining.pop(best_index)
        if item.max_sim >= config.duplicate_threshold:
            continue  # a near-duplicate of a result already chosen
        chosen.append(item.result((1 - lam) * penalty(item), mode))
        for other in remaining:
            other.max_sim = max(other.max_sim, redundancy(other, item))
    return chosen


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
    """The reference system's relevance filter and score (section 2.5), for comparison."""
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
