"""The column-wise ranking (``rank_with_signals``, issue 17) gives exactly what the
per-candidate version it replaced gave: same order, same score components to the last bit, same
provenance. The per-candidate version is kept here, privately, as the oracle."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pytest

from self_learning_memory import RetrievalConfig, TaskContext, TaskType
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.model.usage import EpisodeUsage, usefulness
from self_learning_memory.retrieval.diversity import mmr
from self_learning_memory.retrieval.index import F32
from self_learning_memory.retrieval.intent import asks_about_failure
from self_learning_memory.retrieval.lexical_trust import lexical_weight, tool_tokens
from self_learning_memory.retrieval.ranking import (
    VectorSignals,
    _fuse,
    context_match,
    rank_with_signals,
)
from self_learning_memory.retrieval.scores import RankMode, Scored, ScoredCandidate
from self_learning_memory.retrieval.tokens import jaccard, query_terms, stem, tokens

from .test_retrieval_fast_paths import NOW, _outcome, _outcome_gates, _recency, corpus


def _old_mmr(
    scored: list[Scored], config: RetrievalConfig, limit: int, mode: RankMode
) -> list[ScoredCandidate]:
    """``diversity.mmr`` as it was, without the screen (which only skips pairs below the floor)."""
    lam, floor = config.mmr_lambda, config.mmr_similarity_floor
    top = (scored[0].total if scored else 0.0) or 1.0
    remaining = scored[: max(limit * 5, 50)]
    chosen: list[ScoredCandidate] = []

    def penalty(item: Scored) -> float:
        return max(0.0, item.max_sim - floor) / (1.0 - floor)

    def key(item: Scored) -> float:
        return lam * item.total / top - (1 - lam) * penalty(item)

    keys = [key(other) for other in remaining]
    while remaining and len(chosen) < limit:
        best = keys.index(max(keys))
        del keys[best]
        item = remaining.pop(best)
        if item.max_sim >= config.duplicate_threshold:
            continue
        chosen.append(item.result((1 - lam) * penalty(item), mode))
        for n, other in enumerate(remaining):
            if other.cand.outcome_type != item.cand.outcome_type:
                continue
            if other.embedding is not None and item.embedding is not None:
                sim = min(max(float(other.embedding @ item.embedding), 0.0), 1.0)
            else:
                sim = jaccard(other.doc, item.doc)
            if sim > other.max_sim:
                other.max_sim = sim
                keys[n] = key(other)
    return chosen


def _old_rank(  # rank_with_signals before issue 17: one Scored per candidate, then MMR
    candidates: list[EpisodeCandidate],
    terms: list[str],
    context: TaskContext,
    task_type: TaskType | None,
    config: RetrievalConfig,
    now: datetime,
    limit: int,
    signals: VectorSignals | None,
    mode: RankMode,
    *,
    query: str | None,
    usage: Mapping[uuid.UUID, EpisodeUsage] | None,
) -> list[ScoredCandidate]:
    best_lexical = max((c.lexical or 0.0 for c in candidates), default=0.0)
    query_tokens = {stem(t) for t in terms}
    query_scores = None if signals is None else signals.query
    feedback_scores = None if signals is None or query_scores is None else signals.feedback
    embeddings = None if signals is None else signals.embeddings
    scored: list[Scored] = []
    for n, cand in enumerate(candidates):
        doc = tokens(cand.task_description) | tool_tokens(cand.tools)
        lexical = (cand.lexical or 0.0) / best_lexical if best_lexical > 0 else 0.0
        coverage = len(query_tokens & doc) / len(query_tokens) if query_tokens else 0.0
        vector = feedback = None
        if query_scores is not None:
            vector = query_scores[n]
            if vector < 0.0:
                vector = 0.0
            if feedback_scores is not None:
                feedback = feedback_scores[n]
                if feedback < 0.0:
                    feedback = 0.0
        ctx, matched = context_match(cand, context, task_type)
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
                _recency(cand, now, config.recency_half_life_days),
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
            + w_out * item.outcome * gate
            + w_rec * item.recency
        )
    if usage:
        w_use = config.weight_usefulness
        for item in scored:
            used = usage.get(item.cand.episode_id)
            if used is None or used.evidence == 0:
                continue
            item.usefulness = usefulness(used)
            item.uses = used.evidence
            item.total += w_use * (2.0 * item.usefulness - 1.0) * item.relevance
    scored.sort(key=lambda item: (-item.total, item.cand.episode_id))
    return _old_mmr(scored, config, limit, mode)


QUERIES = [
    "fix the orders cache",
    "alembic deadlock index",
    "ValueError: bad api",
    "what went wrong with the login timeout",
    "retry pagination",
    "",
]


def _case(seed: int) -> tuple[tuple[object, ...], dict[str, object], int]:
    """A random pool and query: any mode, with or without vectors (some missing), feedback
    vectors, usage counters, failure intent, context fields, task type and ties."""
    rng = random.Random(seed)
    cands, vectors = corpus(rng, rng.choice([0, 1, 2, rng.randint(3, 60), rng.randint(60, 200)]))
    if cands and rng.random() < 0.2:  # no text match at all: best lexical 0
        cands = [dataclasses.replace(c, lexical=None) for c in cands]
    query = rng.choice(QUERIES)
    context = TaskContext(
        domain=rng.choice(["web-api", "cli"]),
        language=rng.choice([None, "python", "PYTHON"]),
        framework=rng.choice([None, "django"]),
        tags=rng.sample(["api", "db", "auth"], rng.randint(0, 2)),
    )
    task_type = rng.choice([None, TaskType.DEBUGGING, TaskType.CODE_GENERATION])
    mode: RankMode = rng.choice(["hybrid", "vector", "lexical"])
    config = RetrievalConfig(
        failure_intent=rng.choice(["invert", "neutral", "off"]),
        outcome_gate=rng.choice(["relevance", "top_similarity", "top_similarity"]),
    )
    signals = None
    if mode != "lexical" and cands:
        q = vectors[cands[rng.randrange(len(cands))].episode_id]
        if rng.random() < 0.5:  # negative cosines too
            q = (q - 0.6 * vectors[cands[0].episode_id]).astype(np.float32)
        kept = [rng.random() < rng.choice([1.0, 0.9, 0.5]) for _ in cands]
        embeddings: list[F32 | None] = [
            vectors[c.episode_id] if k else None for c, k in zip(cands, kept, strict=True)
        ]
        scores = [0.0 if e is None else float(e @ q) for e in embeddings]
        feedback = [0.9 * s + 0.05 for s in scores] if rng.random() < 0.4 else None
        if rng.random() < 0.1:  # embeddings for MMR only
            signals = VectorSignals(None, None, embeddings)
        else:
            signals = VectorSignals(scores, feedback, embeddings, kept)
    usage = None
    if rng.random() < 0.5 and cands:
        usage = {
            c.episode_id: EpisodeUsage(
                uses=rng.randint(0, 4),
                success=rng.uniform(0, 2),
                helpful=rng.randint(0, 1),
                unhelpful=rng.randint(0, 1),
            )
            for c in rng.sample(cands, rng.randint(0, len(cands)))
        }
    limit = rng.choice([1, 5, 10, 20])
    args = (cands, query_terms(query), context, task_type, config, NOW, limit, signals, mode)
    kwargs = {"query": rng.choice([query, query, None]), "usage": usage}
    return args, kwargs, len(cands)


@pytest.mark.parametrize("seed", range(300))
def test_column_ranking_equals_the_per_candidate_ranking_exactly(seed: int) -> None:
    args, kwargs, _ = _case(seed)
    expected = _old_rank(*args, **kwargs)  # type: ignore[arg-type]
    got = rank_with_signals(*args, **kwargs)  # type: ignore[arg-type]
    # == on the components compares every float exactly (no tolerance)
    assert [(r.candidate.episode_id, r.components, r.provenance) for r in got] == [
        (r.candidate.episode_id, r.components, r.provenance) for r in expected
    ]


def test_the_comparison_is_not_vacuous() -> None:
    """The random cases do reach usefulness, penalties, context matches and every mode."""
    seen: set[str] = set()
    for seed in range(300):
        args, kwargs, _ = _case(seed)
        for r in rank_with_signals(*args, **kwargs):  # type: ignore[arg-type]
            c = r.components
            seen.add(c.mode)
            if c.uses:
                seen.add("usefulness")
            if c.diversity_penalty > 0:
                seen.add("penalty")
            if c.vector_feedback is not None:
                seen.add("feedback")
            seen.update(p for p in r.provenance if p.startswith("context:"))
    assert seen >= {
        "hybrid",
        "vector",
        "lexical",
        "usefulness",
        "penalty",
        "feedback",
        "context:domain",
        "context:task_type",
        "context:language",
        "context:framework",
        "context:tags",
    }


@pytest.mark.parametrize("seed", range(20))
def test_aligned_signals_are_what_the_per_position_loop_gave(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randint(0, 40)
    positions = sorted(rng.sample(range(count), rng.randint(0, count)))
    if seed % 3 == 0:  # every candidate has a vector (the usual case, a path of its own)
        positions = list(range(count))
    block = np.random.default_rng(seed).normal(size=(len(positions), 8)).astype(np.float32)
    with_feedback = rng.random() < 0.5
    scores = [[rng.uniform(-1, 1) for _ in positions] for _ in range(2 if with_feedback else 1)]
    got = VectorSignals.aligned(count, positions, scores, block, with_feedback)
    vectors: list[F32 | None] = [None] * count
    aligned = [[0.0] * count for _ in scores]
    present = [False] * count
    for k, n in enumerate(positions):  # the loop it replaced
        vectors[n] = block[k]
        present[n] = True
        for column, values in zip(aligned, scores, strict=True):
            column[n] = values[k]
    assert got.query == aligned[0]
    assert got.feedback == (aligned[1] if with_feedback else None)
    assert got.present == present
    assert [None if v is None else v.tolist() for v in got.embeddings] == [
        None if v is None else v.tolist() for v in vectors
    ]


def _pool(seed: int) -> tuple[list[Scored], RetrievalConfig, int]:
    """A pool sorted best first, as ``rank_with_signals`` gives MMR, of any totals (all
    negative, with ties, NaN-free), vectors for some (near-copies among them), any settings."""
    rng = random.Random(seed)
    cands, vectors = corpus(rng, rng.randint(1, 80))
    sign = rng.choice([1.0, -1.0, 0.0])  # 0: totals around zero, of both signs
    items = [
        Scored(
            c,
            tokens(c.task_description) | tool_tokens(c.tools),
            0.5,
            0.5,
            0.5,
            0.5,
            0.5,
            [],
            0.5,
            0.5,
            (sign or rng.choice([1.0, -1.0])) * rng.choice([0.5, 0.25, rng.random()]),
            None,
            vectors[c.episode_id] if rng.random() < 0.8 else None,
        )
        for c in cands
    ]
    items.sort(key=lambda s: (-s.total, s.cand.episode_id))
    config = RetrievalConfig(
        mmr_lambda=rng.choice([0.7, 0.5, 1.0, 0.0]),
        mmr_similarity_floor=rng.choice([0.8, 0.3, 0.0]),
        duplicate_threshold=rng.choice([0.95, 0.9, 0.5]),
    )
    return items, config, rng.choice([1, 3, 5, 10, 20])


@pytest.mark.parametrize("seed", range(200))
def test_lazy_mmr_chooses_what_the_eager_definition_chooses(seed: int) -> None:
    expected_pool, config, limit = _pool(seed)
    given, _, _ = _pool(seed)  # (MMR raises ``max_sim`` on the items: a fresh copy)
    expected = _old_mmr(expected_pool, config, limit, "hybrid")
    got = mmr([s.total for s in given], given.__getitem__, config, limit, "hybrid")
    assert [(r.candidate.episode_id, r.components) for r in got] == [
        (r.candidate.episode_id, r.components) for r in expected
    ]


def test_lazy_mmr_looks_at_few_candidates_of_a_pool_without_near_copies() -> None:
    items, _, _ = _pool(3)
    for n, s in enumerate(items):  # distinct outcomes: no redundancy at all
        s.cand = dataclasses.replace(s.cand, outcome_type=f"outcome-{n}")
        s.total = 1.0 - n / 100
    looked: list[int] = []

    def item(n: int) -> Scored:
        looked.append(n)
        return items[n]

    got = mmr([s.total for s in items], item, RetrievalConfig(), 5, "hybrid")
    assert [r.candidate.episode_id for r in got] == [s.cand.episode_id for s in items[:5]]
    # one candidate per choice: the next one's bound is below the key chosen
    assert len(items) > 20
    assert looked == list(range(5))
