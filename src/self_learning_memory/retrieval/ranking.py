"""Episode ranking for retrieve_relevant_context: pure functions over bounded candidates.

Hybrid / lexical / vector modes:

    total = w_rel x relevance + w_ctx x context + w_out x outcome x relevance + w_rec x recency
            + w_use x (2 x usefulness - 1) x relevance   (only for an episode with feedback)

- relevance: lexical mode 0.6 x bm25 (normalised to the best candidate) + 0.4 x query-term
  coverage. Vector mode: the cosine with the query, normalised to the best candidate. Hybrid:
  both signals z-scored over the candidates (so neither dominates by its spread alone),
  combined as l x lexical + (1 - l) x vector, then min-max scaled to [0, 1] over the
  candidates. The lexical weight l is set per query (``lexical_trust.py``): 1 - ``vector_weight``
  (0: the vector signal alone) for plain language, up to ``lexical_weight_max`` (0.6) for pasted
  error lines and queries made of identifiers; it is reported as the ``lexical_weight``
  component. A candidate without a vector (not embedded yet, or by another model) takes its
  lexical z-score in place of the vector one. When the memory expanded the query by
  pseudo-relevance feedback, the vector signal is the cosine with the expanded query
  (``vector_feedback``); the ``vector`` component always reports the raw cosine with the query
  as asked.
- context: task type, domain, language, framework and tag overlap with the query's context,
  averaged over the fields the query sets.
- outcome: 0.5 x outcome score (success 1, partial 0.5, failure 0) + 0.5 x reward / 2.5. It
  counts in proportion to relevance: among episodes of the task asked about, the one that worked
  comes first, but a success at another task does not outrank a failure at this one (measured
  in docs/performance.md: better on both the binary and the outcome-graded nDCG@10). "The task
  asked about" is the most relevant candidate's: with ``outcome_gate="top_similarity"`` (the
  default) the outcome also counts in proportion to the candidate's cosine with that candidate's
  vector, so a success at a neighbouring task (similar words, another task) no longer jumps
  over the best match that failed (``"relevance"``: the relevance alone, as before).
- recency: a 30-day half-life on the episode's end time.
- failure intent: a query that asks what went wrong before (``intent.py``) turns the outcome
  signal around (``failure_intent="invert"``: 1 - outcome, so failures come first among the
  task's episodes) or drops it (``"neutral"``); the ``outcome`` component reports the value used.
- usefulness (retrieval feedback, ``model/usage.py``): the smoothed success of the later tasks
  the episode was used for, 0.5 without evidence. Centred, it adds up to ``w_use`` x relevance
  for an episode that keeps helping and takes as much from one that keeps being used by failed
  tasks; an episode without feedback gets no term at all, so rankings without feedback are the
  ones computed before the component existed.

Then MMR (lambda 0.7, ``diversity.py``) orders the results, dropping near-duplicates. Legacy
mode (``legacy.py``) reproduces the reference system's score for comparison. The tokeniser is
``tokens.py``; the score components and result types are ``scores.py``.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..config import RetrievalConfig
from ..model.episode import TaskContext, TaskType
from ..model.records import EpisodeCandidate
from ..model.usage import EpisodeUsage, usefulness
from .diversity import mmr
from .intent import asks_about_failure
from .lexical_trust import lexical_weight, tool_tokens
from .scores import RankMode, Scored, ScoredCandidate
from .tokens import jaccard, stem, tokens

if TYPE_CHECKING:  # numpy arrays are only passed in when an embedding provider is configured
    from .index import F32

__all__ = [
    "VectorSignals",
    "context_match",
    "rank_candidates",
    "rank_with_signals",
]

_OUTCOME_SCORE = {"success": 1.0, "partial_success": 0.5, "failure": 0.0}


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
        parts.append((0.2, jaccard(set(c.tags), set(context.tags)), "tags"))
    weight = sum(w for w, _, _ in parts)
    score = sum(w * m for w, m, _ in parts)
    return score / weight, [f"context:{name}" for _, m, name in parts if m > 0]


def _outcome(cand: EpisodeCandidate) -> float:
    outcome = _OUTCOME_SCORE.get(cand.outcome_type or "", 0.0)
    reward = min(max(cand.reward_total or 0.0, 0.0) / 2.5, 1.0)
    return 0.5 * outcome + 0.5 * reward


def _outcome_gates(scored: list[Scored], config: RetrievalConfig) -> list[float]:
    """How far each candidate's outcome counts: its relevance (``relevance``); with
    ``top_similarity`` also times its cosine with the most relevant candidate's vector (1 for
    that one; without either vector, the relevance alone)."""
    gates = [item.relevance for item in scored]
    if config.outcome_gate != "top_similarity" or not scored:
        return gates
    top = max(scored, key=lambda item: item.relevance)
    if top.embedding is None:
        return gates
    out = []
    for item, gate in zip(scored, gates, strict=True):
        if item is not top and item.embedding is not None:
            gate *= max(0.0, float(item.embedding @ top.embedding))
        out.append(gate)
    return out


def _recency(cand: EpisodeCandidate, now: datetime, half_life_days: float) -> float:
    if cand.end_time is None:
        return 0.0
    age_days = max(0.0, (now - cand.end_time).total_seconds() / 86_400)
    return math.exp(-math.log(2) * age_days / half_life_days)


def _zscores(values: list[float]) -> list[float]:
    # plain float arithmetic: statistics.pstdev computes exactly with fractions, 10x slower
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) * (v - mean) for v in values) / len(values))
    return [(v - mean) / spread if spread > 0 else 0.0 for v in values]


def _fuse(
    lexical: list[float],
    semantic: list[float],
    lexical_weight: float,
    has_vector: list[bool] | None = None,
) -> list[float]:
    """Hybrid relevance: z-scored lexical and vector signals, weighted, min-max scaled to 0..1.

    A candidate without a vector (not embedded yet, or embedded by another model) is scored
    by its exact words alone: its vector z-score is replaced by its lexical one, so it is
    neither buried (a cosine of 0) nor favoured. With no vectors at all this is lexical mode."""
    z_lexical = _zscores(lexical)
    if has_vector is None or all(has_vector):
        z_semantic = _zscores(semantic)
    else:
        present = [v for v, has in zip(semantic, has_vector, strict=True) if has]
        z_present = iter(_zscores(present) if present else [])
        z_semantic = [
            next(z_present) if has else lx for lx, has in zip(z_lexical, has_vector, strict=True)
        ]
    fused = [
        lexical_weight * lx + (1 - lexical_weight) * sm
        for lx, sm in zip(z_lexical, z_semantic, strict=True)
    ]
    low, high = min(fused), max(fused)
    return [(f - low) / (high - low) if high > low else 1.0 for f in fused]


@dataclass(frozen=True, slots=True)
class VectorSignals:
    """The vector side of each candidate, aligned with the candidate list (no per-id lookups
    on the hot path): cosine with the query as asked (0.0 without a vector; None: no vector
    relevance at all), cosine with the feedback-expanded query (None without expansion) and the
    episode's vector (for MMR)."""

    query: list[float] | None
    feedback: list[float] | None
    embeddings: list[F32 | None]
    # which candidates have a vector of the index's model (None: all of them); hybrid scores
    # the others by their exact words alone (``_fuse``)
    present: list[bool] | None = None

    @classmethod
    def aligned(
        cls,
        count: int,
        positions: list[int],
        scores: list[list[float]],
        block: F32,
        with_feedback: bool,
    ) -> VectorSignals:
        """The signals of ``count`` candidates from those that have a vector: their
        ``positions`` in the candidate list, their cosines with the query (and with the
        expanded query when ``with_feedback``), one list per query aligned with the positions,
        and their vectors (``block``, one row each); 0.0 and None for the others."""
        vectors: list[F32 | None] = [None] * count
        aligned = [[0.0] * count for _ in scores]
        present = [False] * count
        for k, n in enumerate(positions):
            vectors[n] = block[k]
            present[n] = True
            for column, values in zip(aligned, scores, strict=True):
                column[n] = values[k]
        return cls(aligned[0], aligned[1] if with_feedback else None, vectors, present)


def rank_candidates(
    candidates: list[EpisodeCandidate],
    terms: list[str],
    context: TaskContext,
    task_type: TaskType | None,
    config: RetrievalConfig,
    now: datetime,
    limit: int,
    vector_scores: Mapping[uuid.UUID, float] | None = None,
    mode: RankMode = "lexical",
    *,
    feedback_scores: Mapping[uuid.UUID, float] | None = None,
    embeddings: Mapping[uuid.UUID, F32] | None = None,
    query: str | None = None,
    usage: Mapping[uuid.UUID, EpisodeUsage] | None = None,
) -> list[ScoredCandidate]:
    """Score and order candidates. ``vector_scores`` are cosines with the query,
    ``feedback_scores`` (optional) with the feedback-expanded query, which then drives the
    vector signal; ``embeddings`` (optional) are the episodes' vectors, for MMR's redundancy.
    ``query`` (the text as asked) sets hybrid's lexical weight per query
    (``lexical_trust.lexical_weight``); without it the weight is ``1 - vector_weight``.
    ``usage`` (optional): the retrieval-feedback counters of the candidates that have any."""
    signals = None
    ids = [c.episode_id for c in candidates]
    if vector_scores is not None:
        signals = VectorSignals(
            [vector_scores.get(i, 0.0) for i in ids],
            None if feedback_scores is None else [feedback_scores.get(i, 0.0) for i in ids],
            [None] * len(ids) if embeddings is None else [embeddings.get(i) for i in ids],
            [i in vector_scores for i in ids],
        )
    elif embeddings is not None:
        signals = VectorSignals(None, None, [embeddings.get(i) for i in ids])
    return rank_with_signals(
        candidates,
        terms,
        context,
        task_type,
        config,
        now,
        limit,
        signals,
        mode,
        query=query,
        usage=usage,
    )


@functools.lru_cache(maxsize=65_536)
def _doc_tokens(description: str, tools: tuple[str, ...]) -> frozenset[str]:
    return tokens(description) | tool_tokens(tools)


def rank_with_signals(
    candidates: list[EpisodeCandidate],
    terms: list[str],
    context: TaskContext,
    task_type: TaskType | None,
    config: RetrievalConfig,
    now: datetime,
    limit: int,
    signals: VectorSignals | None,
    mode: RankMode = "lexical",
    *,
    query: str | None = None,
    usage: Mapping[uuid.UUID, EpisodeUsage] | None = None,
) -> list[ScoredCandidate]:
    """``rank_candidates`` with the vector signals aligned with ``candidates`` (what the memory
    passes)."""
    best_lexical = max((c.lexical or 0.0 for c in candidates), default=0.0)
    query_tokens = {stem(t) for t in terms}
    query_scores = None if signals is None else signals.query
    feedback_scores = None if signals is None or query_scores is None else signals.feedback
    contexts: dict[tuple[object, ...], tuple[float, list[str]]] = {}
    half_life = config.recency_half_life_days
    by_type = task_type is not None  # the episode's task type only counts when the query sets one
    embeddings = None if signals is None else signals.embeddings
    scored: list[Scored] = []
    for n, cand in enumerate(candidates):
        doc = _doc_tokens(cand.task_description, cand.tools)
        lexical = (cand.lexical or 0.0) / best_lexical if best_lexical > 0 else 0.0
        coverage = len(query_tokens & doc) / len(query_tokens) if query_tokens else 0.0
        vector = feedback = None
        if query_scores is not None:
            vector = query_scores[n]  # cosine, reported as is (negative ones as 0)
            if vector < 0.0:
                vector = 0.0
            if feedback_scores is not None:
                feedback = feedback_scores[n]
                if feedback < 0.0:
                    feedback = 0.0
        c = cand.context
        key = (c.domain, c.language, c.framework, tuple(c.tags), by_type and cand.task_type)
        matched_ctx = contexts.get(key)
        if matched_ctx is None:  # candidates share a few contexts: score each once
            matched_ctx = contexts[key] = context_match(cand, context, task_type)
        ctx, matched = matched_ctx
        scored.append(
            Scored(
                cand,
                doc,
                0.6 * lexical + 0.4 * coverage,
                lexical,
                coverage,
                vector,
                ctx,
                matched,
                _outcome(cand),
                _recency(cand, now, half_life),
                0.0,
                feedback,
                None if embeddings is None else embeddings[n],
            )
        )
    if query_scores is not None and scored:
        semantic = [s.feedback if s.feedback is not None else s.vector or 0.0 for s in scored]
        weight = None
        if mode != "vector":
            weight = (
                1.0 - config.vector_weight
                if query is None
                else lexical_weight(query, candidates, config)
            )
        present = None if signals is None else signals.present
        if weight is None or (weight == 0.0 and (present is None or all(present))):
            # vector mode, or a hybrid query whose exact words do not count (plain language):
            # the cosine, relative to the best candidate's
            best = max(semantic)
            relevance = [v / best if best > 0 else 0.0 for v in semantic]
        else:
            relevance = _fuse([s.relevance for s in scored], semantic, weight, present)
        if weight is not None:
            for item in scored:
                item.lexical_weight = weight
        for item, value in zip(scored, relevance, strict=True):
            item.relevance = value
    w_rel, w_ctx = config.weight_relevance, config.weight_context
    w_out, w_rec = config.weight_outcome, config.weight_recency
    if query is not None and config.failure_intent != "off" and asks_about_failure(query):
        # "what went wrong last time": the attempts that met trouble are the answer
        if config.failure_intent == "neutral":
            w_out = 0.0
        else:
            for item in scored:
                item.outcome = 1.0 - item.outcome
    gates = _outcome_gates(scored, config)
    for item, gate in zip(scored, gates, strict=True):
        item.total = (
            w_rel * item.relevance
            + w_ctx * item.context
            + w_out * item.outcome * gate  # outcome counts as far as the task matches
            + w_rec * item.recency
        )
    if usage:  # no feedback at all: no term, the totals are exactly those without it
        w_use = config.weight_usefulness
        for item in scored:
            used = usage.get(item.cand.episode_id)
            if used is None or used.evidence == 0:
                continue
            item.usefulness = usefulness(used)
            item.uses = used.evidence
            # like outcome, it counts as far as the task matches
            item.total += w_use * (2.0 * item.usefulness - 1.0) * item.relevance
    scored.sort(key=lambda item: (-item.total, item.cand.episode_id))
    return mmr(scored, config, limit, mode)
