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
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..config import RetrievalConfig
from ..model.episode import TaskContext, TaskType
from ..model.records import EpisodeCandidate
from ..model.usage import EpisodeUsage, usefulness
from .diversity import mmr, pool_size
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
    "warm_doc_tokens",
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
        ``positions`` in the candidate list (distinct, in increasing order), their cosines with
        the query (and with the expanded query when ``with_feedback``), one list per query
        aligned with the positions, and their vectors (``block``, one row each); 0.0 and None
        for the others."""
        if len(positions) == count:  # every candidate has one (the usual case): as given
            return cls(scores[0], scores[1] if with_feedback else None, list(block), [True] * count)
        vectors: list[F32 | None] = [None] * count
        present = [False] * count
        for n, row in zip(positions, block, strict=False):  # row k: block[k]
            vectors[n] = row
            present[n] = True
        aligned = []
        for values in scores:
            column = [0.0] * count
            for n, value in zip(positions, values, strict=False):
                column[n] = value
            aligned.append(column)
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


def warm_doc_tokens(rows: Iterable[EpisodeCandidate]) -> None:
    """Compute (and cache) the rows' word sets before their first ranking: a search that
    meets an episode for the first time spends 5-15 us on its description's words. For a
    worker thread (the pipeline reads the candidate rows ahead: ``hybrid._warm_rows``); the
    GIL is handed over after each row, so the event loop waits for one row at most."""
    for c in rows:
        _doc_tokens(c.task_description, c.tools)
        time.sleep(0)


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
    passes).

    Computed column by column (one list per signal, no per-candidate helper calls): only the
    candidates that can reach MMR's pool become :class:`Scored` items, and only the results
    become score components. Every float is computed with the same operations in the same
    order as the per-candidate definitions it replaced (``context_match`` above; the
    outcome, recency and outcome-gate functions now live in ``tests/unit/test_ranking_columns.py``
    as the oracle), so the ranking is the same to the last bit (that test checks it)."""
    count = len(candidates)
    if not count:
        return []
    raw_lexical = [c.lexical or 0.0 for c in candidates]
    best_lexical = max(raw_lexical)
    lexicals = [v / best_lexical for v in raw_lexical] if best_lexical > 0 else [0.0] * count
    docs = [_doc_tokens(c.task_description, c.tools) for c in candidates]
    query_tokens = {stem(t) for t in terms}
    if query_tokens:
        size = len(query_tokens)
        coverages = [len(query_tokens & doc) / size for doc in docs]
    else:
        coverages = [0.0] * count
    relevance = [0.6 * lx + 0.4 * cv for lx, cv in zip(lexicals, coverages, strict=True)]
    contexts, matched_flags = _context_columns(candidates, context, task_type)
    # _outcome, with min and max written as conditionals (the same values, NaN included)
    outcomes: list[float] = []
    for c in candidates:
        reward = c.reward_total or 0.0
        reward = (0.0 if reward < 0.0 else reward) / 2.5
        outcome = _OUTCOME_SCORE.get(c.outcome_type or "", 0.0)
        outcomes.append(0.5 * outcome + 0.5 * (1.0 if reward > 1.0 else reward))
    half_life = config.recency_half_life_days
    minus_ln2 = -math.log(2)
    exp = math.exp
    recencies = [
        0.0
        if c.end_time is None
        else exp(
            minus_ln2
            * (a if (a := (now - c.end_time).total_seconds() / 86_400) > 0.0 else 0.0)
            / half_life
        )
        for c in candidates
    ]
    query_scores = None if signals is None else signals.query
    feedback_scores = None if signals is None or query_scores is None else signals.feedback
    embeddings = None if signals is None else signals.embeddings
    vectors: list[float] | list[None] = [None] * count
    feedbacks: list[float] | list[None] = [None] * count
    weight = None
    if query_scores is not None:
        # cosines, reported as is (negative ones as 0)
        vectors = [0.0 if v < 0.0 else v for v in query_scores]
        if feedback_scores is not None:
            feedbacks = [0.0 if v < 0.0 else v for v in feedback_scores]
            semantic = feedbacks
        else:
            semantic = [v or 0.0 for v in vectors]
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
            relevance = _fuse(relevance, semantic, weight, present)
    w_rel, w_ctx = config.weight_relevance, config.weight_context
    w_out, w_rec = config.weight_outcome, config.weight_recency
    if query is not None and config.failure_intent != "off" and asks_about_failure(query):
        # "what went wrong last time": the attempts that met trouble are the answer
        if config.failure_intent == "neutral":
            w_out = 0.0
        else:
            outcomes = [1.0 - v for v in outcomes]
    gates = _gate_column(relevance, embeddings, config)
    totals = [
        w_rel * rel + w_ctx * ctx + w_out * out * gate + w_rec * rec
        for rel, ctx, out, gate, rec in zip(
            relevance, contexts, outcomes, gates, recencies, strict=True
        )
    ]
    usefulness_of: dict[int, tuple[float, int]] = {}
    if usage:  # no feedback at all: no term, the totals are exactly those without it
        w_use = config.weight_usefulness
        for n, cand in enumerate(candidates):
            used = usage.get(cand.episode_id)
            if used is None or used.evidence == 0:
                continue
            useful = usefulness(used)
            usefulness_of[n] = (useful, used.evidence)
            # like outcome, it counts as far as the task matches
            totals[n] += w_use * (2.0 * useful - 1.0) * relevance[n]
    # ties by id: UUIDs order (and are equal) by their ``int``, compared here without the
    # Python-level UUID methods
    ids = [c.episode_id.int for c in candidates]
    order = sorted(range(count), key=lambda n: (-totals[n], ids[n]))[: pool_size(limit)]

    def item(k: int) -> Scored:
        """The pool's k-th candidate as MMR sees it (built only for those it looks at)."""
        n = order[k]
        scored = Scored(
            candidates[n],
            docs[n],
            relevance[n],
            lexicals[n],
            coverages[n],
            vectors[n],
            contexts[n],
            _matched(matched_flags[n]),
            outcomes[n],
            recencies[n],
            totals[n],
            feedbacks[n],
            None if embeddings is None else embeddings[n],
            weight,
        )
        if n in usefulness_of:
            scored.usefulness, scored.uses = usefulness_of[n]
        return scored

    return mmr([totals[n] for n in order], item, config, limit, mode)


_CONTEXT_NAMES = ("domain", "task_type", "language", "framework", "tags")


@functools.lru_cache(maxsize=64)
def _matched_names(flags: int) -> tuple[str, ...]:
    return tuple(f"context:{name}" for k, name in enumerate(_CONTEXT_NAMES) if flags >> k & 1)


def _matched(flags: int) -> list[str]:
    return list(_matched_names(flags))


def _context_columns(
    candidates: list[EpisodeCandidate], context: TaskContext, task_type: TaskType | None
) -> tuple[list[float], list[int]]:
    """``context_match`` of each candidate (the same sums in the same order), the matched
    fields as bit flags (bit k: ``_CONTEXT_NAMES[k]``)."""
    domain = context.domain
    language = context.language.lower() if context.language else None
    framework = context.framework.lower() if context.framework else None
    tags = set(context.tags) if context.tags else None
    weights = [0.3]
    if task_type is not None:
        weights.append(0.2)
    if language is not None:
        weights.append(0.2)
    if framework is not None:
        weights.append(0.1)
    if tags is not None:
        weights.append(0.2)
    weight = sum(weights)
    scores: list[float] = []
    flags: list[int] = []
    for cand in candidates:
        c = cand.context
        if c.domain == domain:
            score, flag = 0.3, 1
        else:
            score, flag = 0.0, 0
        if task_type is not None and cand.task_type == task_type:
            score += 0.2
            flag |= 2
        if language is not None and (c.language or "").lower() == language:
            score += 0.2
            flag |= 4
        if framework is not None and (c.framework or "").lower() == framework:
            score += 0.1
            flag |= 8
        if tags is not None:
            mine = set(c.tags)
            overlap = len(mine & tags) / len(mine | tags)
            score += 0.2 * overlap
            if overlap > 0:
                flag |= 16
        scores.append(score / weight)
        flags.append(flag)
    return scores, flags


def _gate_column(
    relevance: list[float], embeddings: list[F32 | None] | None, config: RetrievalConfig
) -> list[float]:
    """The outcome gates over the columns: the relevance, times (``top_similarity``) the
    cosine with the most relevant candidate's vector (the same float32 dot per candidate)."""
    if config.outcome_gate != "top_similarity" or embeddings is None:
        return relevance
    top = max(range(len(relevance)), key=relevance.__getitem__)
    top_vector = embeddings[top]
    if top_vector is None:
        return relevance
    gates = relevance.copy()
    for n, vector in enumerate(embeddings):
        if n != top and vector is not None:
            # ndarray.dot: the same float32 dot as ``@`` for two vectors, with less overhead
            dot = float(vector.dot(top_vector))
            gates[n] *= dot if dot > 0.0 else 0.0
    return gates
