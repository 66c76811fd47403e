"""The hot-path ranking (aligned vector signals, memoised context match, inlined MMR) and the
index's one-gather lookup give exactly what the straightforward versions gave."""

from __future__ import annotations

import dataclasses
import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from self_learning_memory import RetrievalConfig, TaskContext, TaskType
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.model.usage import EpisodeUsage
from self_learning_memory.retrieval import quantized
from self_learning_memory.retrieval.diversity import redundancy
from self_learning_memory.retrieval.index import F32, QUANTIZED_MIN, VectorIndex
from self_learning_memory.retrieval.lexical_trust import lexical_weight, tool_tokens
from self_learning_memory.retrieval.ranking import (
    _OUTCOME_SCORE,
    VectorSignals,
    _fuse,
    context_match,
    rank_candidates,
    rank_with_signals,
)
from self_learning_memory.retrieval.scores import Scored, ScoredCandidate
from self_learning_memory.retrieval.tokens import query_terms, stem, tokens

NOW = datetime(2025, 6, 1, tzinfo=UTC)


# The per-candidate definitions that rank_with_signals computes column-wise (the oracles of
# this module and of test_ranking_columns.py)


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


WORDS = [
    "add",
    "fix",
    "cache",
    "retry",
    "orders",
    "invoices",
    "pagination",
    "timeout",
    "deadlock",
    "index",
    "api",
    "login",
]
TOOLS = ["git", "pytest", "alembic", "kubectl", "editor"]


def reference_rank(  # the ranking as it was written before the fast paths, kept as the oracle
    candidates: list[EpisodeCandidate],
    terms: list[str],
    context: TaskContext,
    task_type: TaskType | None,
    config: RetrievalConfig,
    limit: int,
    vector_scores: dict[uuid.UUID, float] | None,
    mode: str,
    feedback_scores: dict[uuid.UUID, float] | None,
    embeddings: dict[uuid.UUID, F32] | None,
    query: str,
) -> list[ScoredCandidate]:
    best_lexical = max((c.lexical or 0.0 for c in candidates), default=0.0)
    query_tokens = {stem(t) for t in terms}
    scored: list[Scored] = []
    for cand in candidates:
        doc = tokens(cand.task_description) | tool_tokens(cand.tools)
        lexical = (cand.lexical or 0.0) / best_lexical if best_lexical > 0 else 0.0
        coverage = len(query_tokens & doc) / len(query_tokens) if query_tokens else 0.0
        vector = feedback = None
        if vector_scores is not None:
            vector = max(vector_scores.get(cand.episode_id, 0.0), 0.0)
            if feedback_scores is not None:
                feedback = max(feedback_scores.get(cand.episode_id, 0.0), 0.0)
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
                _recency(cand, NOW, config.recency_half_life_days),
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
            weight = lexical_weight(query, candidates, config)
            present = [c.episode_id in vector_scores for c in candidates]
            relevance = _fuse([s.relevance for s in scored], semantic, weight, present)
            for item in scored:
                item.lexical_weight = weight
        for item, value in zip(scored, relevance, strict=True):
            item.relevance = value
    # the outcome counts as far as the candidate matches the query and is the same task as the
    # most relevant candidate (its cosine with that one's vector)
    top_item = max(scored, key=lambda item: item.relevance) if scored else None
    for item in scored:
        gate = item.relevance
        if (
            config.outcome_gate == "top_similarity"
            and top_item is not None
            and top_item.embedding is not None
            and item is not top_item
            and item.embedding is not None
        ):
            gate *= max(0.0, float(item.embedding @ top_item.embedding))
        item.total = (
            config.weight_relevance * item.relevance
            + config.weight_context * item.context
            + config.weight_outcome * item.outcome * gate
            + config.weight_recency * item.recency
        )
    scored.sort(key=lambda item: (-item.total, item.cand.episode_id))
    lam, floor = config.mmr_lambda, config.mmr_similarity_floor
    top = (scored[0].total if scored else 0.0) or 1.0
    remaining = scored[: max(limit * 5, 50)]
    chosen: list[ScoredCandidate] = []

    def penalty(item: Scored) -> float:
        return max(0.0, item.max_sim - floor) / (1.0 - floor)

    while remaining and len(chosen) < limit:
        best_index = max(
            range(len(remaining)),
            key=lambda i: lam * remaining[i].total / top - (1 - lam) * penalty(remaining[i]),
        )
        item = remaining.pop(best_index)
        if item.max_sim >= config.duplicate_threshold:
            continue
        chosen.append(item.result((1 - lam) * penalty(item), mode))  # type: ignore[arg-type]
        for other in remaining:
            other.max_sim = max(other.max_sim, redundancy(other, item))
    return chosen


def corpus(rng: random.Random, size: int) -> tuple[list[EpisodeCandidate], dict[uuid.UUID, F32]]:
    """Candidates sharing a few contexts, with clusters of near-duplicate vectors and exact
    copies under another id (ties in MMR)."""
    centres = [rng.gauss(0, 1) for _ in range(6 * 32)]
    cands: list[EpisodeCandidate] = []
    vectors: dict[uuid.UUID, F32] = {}
    for n in range(size):
        eid = uuid.UUID(int=rng.getrandbits(128))
        centre = np.array(centres[(n % 6) * 32 : (n % 6 + 1) * 32], dtype=np.float64)
        vec = centre + rng.choice([0.05, 0.3, 1.0]) * np.array([rng.gauss(0, 1) for _ in range(32)])
        vectors[eid] = (vec / np.linalg.norm(vec)).astype(np.float32)
        cands.append(
            EpisodeCandidate(
                episode_id=eid,
                task_description=" ".join(rng.sample(WORDS, 4)),
                task_type=rng.choice([TaskType.CODE_GENERATION, TaskType.DEBUGGING]),
                context=TaskContext(
                    domain=rng.choice(["web-api", "cli", "data"]),
                    language=rng.choice(["python", "go", None]),
                    framework=rng.choice(["django", None]),
                    tags=rng.sample(["api", "db", "auth"], rng.randint(0, 2)),
                ),
                outcome_type=rng.choice(["success", "success", "failure", "partial_success"]),
                reward_total=rng.choice([None, rng.uniform(0, 3)]),
                end_time=rng.choice([None, NOW - timedelta(days=rng.uniform(0, 90))]),
                tools=tuple(rng.sample(TOOLS, rng.randint(0, 3))),
                lexical=rng.choice([None, rng.uniform(0, 12)]),
                sources=("fts5",),
            )
        )
        if rng.random() < 0.2:
            twin = uuid.UUID(int=rng.getrandbits(128))
            cands.append(dataclasses.replace(cands[-1], episode_id=twin))
            vectors[twin] = vectors[eid]
    return cands, vectors


@pytest.mark.parametrize("seed", range(40))
def test_fast_ranking_equals_the_reference_exactly(seed: int) -> None:
    rng = random.Random(seed)
    cands, vectors = corpus(rng, rng.randint(1, 160))
    query = rng.choice(["fix the orders cache", "alembic deadlock index", "ValueError: bad api"])
    context = TaskContext(
        domain="web-api", language="python", framework=rng.choice([None, "django"]), tags=["api"]
    )
    task_type = rng.choice([None, TaskType.DEBUGGING])
    limit = rng.choice([1, 5, 10, 20])
    mode = rng.choice(["hybrid", "vector", "lexical"])
    config = RetrievalConfig()
    with_vectors = mode != "lexical"
    query_vec = vectors[cands[0].episode_id]
    scores = {i: float(v @ query_vec) for i, v in vectors.items() if rng.random() < 0.95}
    feedback = {i: float(v @ query_vec) * 0.9 for i, v in vectors.items() if rng.random() < 0.95}
    embeddings = {i: v for i, v in vectors.items() if rng.random() < 0.95}
    args = (cands, query_terms(query), context, task_type, config)
    expected = reference_rank(
        *args,
        limit,
        scores if with_vectors else None,
        mode,
        feedback if with_vectors and seed % 2 else None,
        embeddings if with_vectors else None,
        query,
    )
    got = rank_candidates(
        *args,
        NOW,
        limit,
        scores if with_vectors else None,
        mode,  # type: ignore[arg-type]
        feedback_scores=feedback if with_vectors and seed % 2 else None,
        embeddings=embeddings if with_vectors else None,
        query=query,
    )
    assert [(r.candidate.episode_id, r.components, r.provenance) for r in got] == [
        (r.candidate.episode_id, r.components, r.provenance) for r in expected
    ]


def test_the_reference_comparison_exercises_mmr_penalties_and_duplicates() -> None:
    """Guard against a vacuous comparison: the corpus does produce penalties and drops."""
    penalised = 0
    for seed in range(40):
        rng = random.Random(seed)
        cands, vectors = corpus(rng, 120)
        ranked = rank_candidates(
            cands,
            query_terms("fix the orders cache"),
            TaskContext(domain="web-api"),
            None,
            RetrievalConfig(),
            NOW,
            20,
            {i: float(v @ vectors[cands[0].episode_id]) for i, v in vectors.items()},
            "hybrid",
            embeddings=vectors,
            query="fix the orders cache",
        )
        penalised += sum(r.components.diversity_penalty > 0 for r in ranked)
    assert penalised > 10


def test_aligned_signals_are_what_the_mappings_give() -> None:
    rng = random.Random(3)
    cands, vectors = corpus(rng, 50)
    ids = [c.episode_id for c in cands]
    q = vectors[ids[0]]
    scores = {i: float(vectors[i] @ q) for i in ids[:40]}
    common = (cands, ["orders"], TaskContext(domain="cli"), None, RetrievalConfig(), NOW, 10)
    by_mapping = rank_candidates(
        *common, scores, "hybrid", embeddings=vectors, query="orders cache"
    )
    aligned = VectorSignals(
        [scores.get(i, 0.0) for i in ids],
        None,
        [vectors[i] for i in ids],
        [i in scores for i in ids],
    )
    by_signals = rank_with_signals(*common, aligned, "hybrid", query="orders cache")
    assert [(r.candidate.episode_id, r.components) for r in by_mapping] == [
        (r.candidate.episode_id, r.components) for r in by_signals
    ]


def test_index_lookup_matches_scores_and_vectors() -> None:
    rng = np.random.default_rng(0)
    index = VectorIndex("test", 16)
    ids = [uuid.UUID(int=n + 1) for n in range(30)]
    matrix = rng.normal(size=(30, 16)).astype(np.float32)
    index.add([(n + 1, i, matrix[n].tobytes(), False) for n, i in enumerate(ids)])
    asked = [uuid.UUID(int=999), *ids[5:20], uuid.UUID(int=1000), ids[0]]
    q1, q2 = matrix[3], matrix[7]
    positions, (s1, s2), block = index.lookup(asked, [q1, q2])
    present = [asked[n] for n in positions]
    assert present == [i for i in asked if i.int < 999]
    assert dict(zip(present, s1, strict=True)) == index.scores(q1, asked)
    assert dict(zip(present, s2, strict=True)) == index.scores(q2, asked)
    vectors = index.vectors(asked)
    for k, i in enumerate(present):
        assert np.array_equal(block[k], vectors[i])
    assert index.lookup([uuid.UUID(int=999)], [q1])[:2] == ([], [[]])


def _clustered_index(
    n: int, dims: int, seed: int, scale: float = 1.0, quantize: bool = False
) -> tuple[VectorIndex, F32]:
    """Unit vectors (times ``scale``) in 40 clusters, as an agent's recurring kinds of task
    (float32 scans only, unless ``quantize``)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dims))
    matrix = centres[rng.integers(0, 40, size=n)] + 0.6 * rng.normal(size=(n, dims))
    matrix = scale * matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix.astype(np.float32)
    index = VectorIndex("test", dims, quantize=quantize)
    index.add([(r + 1, uuid.UUID(int=r + 1), matrix[r].tobytes(), False) for r in range(n)])
    return index, matrix


@pytest.mark.parametrize(
    ("n", "seed", "scale"), [(300, 1, 1.0), (20_000, 2, 1.0), (20_000, 3, 1.3)]
)
def test_search_with_feedback_equals_search_expand_search(n: int, seed: int, scale: float) -> None:
    """One scan plus a bounded shortlist (large indexes of unit vectors) finds what search,
    expand and a second full search found; small or non-normalised indexes scan twice."""
    index, matrix = _clustered_index(n, 48, seed, scale)
    rng = np.random.default_rng(seed + 100)
    full_scans = 0

    for _ in range(15):
        query = matrix[rng.integers(0, n)] / scale + 0.8 * rng.normal(size=48).astype(np.float32)
        query = (query / np.linalg.norm(query)).astype(np.float32)
        expanded, again, got_again = _feedback_against_three_calls(index, query)
        assert set(got_again) == set(again)
        exact = {i: float(matrix[i.int - 1] @ expanded) for i in again}
        assert [round(exact[i], 5) for i in got_again] == [round(exact[i], 5) for i in again]
        full_scans += _needs_second_scan(index, query, expanded)
    if n >= 16_384 and scale == 1.0:
        assert full_scans < 15  # the bound spared the second scan


@pytest.mark.parametrize("quantize", [False, *([True] if quantized.available() else [])])
def test_search_with_feedback_with_ties_at_the_shortlist_edge(quantize: bool) -> None:
    """The shortlist is every row scoring at least its size-th score: with thousands of equal
    vectors tied there it holds them all, and the results are still those of search, expand
    and search (ties between equal vectors broken by row in every scan)."""
    rng = np.random.default_rng(21)
    dims, n = 32, 20_000
    query = rng.normal(size=dims)
    query /= np.linalg.norm(query)
    near = query + 0.3 * rng.normal(size=(60, dims))
    copy = rng.normal(size=dims)
    matrix = np.vstack([near, np.tile(copy, (n - 60, 1))])
    matrix = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
    query = query.astype(np.float32)
    index = VectorIndex("ties", dims, quantize=quantize)
    index.add([(r + 1, uuid.UUID(int=r + 1), matrix[r].tobytes(), False) for r in range(n)])
    _, again, got_again = _feedback_against_three_calls(index, query)
    assert got_again == again


def _feedback_against_three_calls(
    index: VectorIndex, query: F32
) -> tuple[F32, list[uuid.UUID], list[uuid.UUID]]:
    """``search_with_feedback(query, 40, 3, 1.0)`` against search, expand by the first 3 hits
    and search again: asserts the same hits and expanded vector; returns that vector, the
    second search's hits and the one call's."""
    hits = [i for i, _ in index.search(query, 40)]
    expanded = index.expand(query, hits[:3], 1.0)
    assert expanded is not None
    again = [i for i, _ in index.search(expanded, 40)]
    got_hits, got_expanded, got_again = index.search_with_feedback(query, 40, 3, 1.0)
    assert got_hits == hits
    assert got_expanded is not None
    assert np.array_equal(got_expanded, expanded)
    return expanded, again, got_again


def _needs_second_scan(index: VectorIndex, query: F32, expanded: F32) -> bool:
    """Whether ``search_with_feedback`` had to scan the whole matrix again (its rule)."""
    from self_learning_memory.retrieval.index import _MARGIN, _SHORTLIST

    if len(index) < 4 * _SHORTLIST or index._max_norm > 1 + _MARGIN:
        return True
    scores = index._matrix @ query
    chosen = np.argsort(-scores)[:_SHORTLIST]
    kth = float(np.sort(index._matrix[chosen] @ expanded)[-40])
    a, c = float(scores[chosen].min()), float(expanded @ query)
    bound = 1.0 if a >= c else a * c + float(np.sqrt((1 - a * a) * (1 - c * c)))
    return not bound < kth - _MARGIN


def test_search_with_feedback_without_feedback_or_vectors() -> None:
    index, matrix = _clustered_index(50, 8, 4)
    hits, expanded, again = index.search_with_feedback(matrix[0], 10, 0, 1.0)
    assert hits == [i for i, _ in index.search(matrix[0], 10)]
    assert (expanded, again) == (None, [])
    assert index.search_with_feedback(matrix[0], 10, 3, 0.0)[1:] == (None, [])
    assert VectorIndex("empty", 8).search_with_feedback(matrix[0], 10, 3, 1.0) == ([], None, [])


needs_onnxruntime = pytest.mark.skipif(
    not quantized.available(), reason="the int8 first pass needs onnxruntime"
)
# The int8 copy's layouts this CPU runs exactly (``QuantizedRows.transposed``): the rows as the
# product's left operand everywhere, as its right one where the product does not saturate.
LAYOUTS = [False, *([True] if quantized.rows_on_the_right() else [])]


def _assert_exact_top(
    found: list[tuple[uuid.UUID, float]], matrix: F32, query: F32, k: int
) -> None:
    """``found`` has the k best exact scores, best first (equal vectors may swap places)."""
    want = np.sort(matrix.astype(np.float64) @ query)[::-1][:k]
    got = [float(matrix[i.int - 1].astype(np.float64) @ query) for i, _ in found]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@needs_onnxruntime
@pytest.mark.parametrize("transposed", LAYOUTS)
@pytest.mark.parametrize(
    ("n", "seed", "scale"),
    [
        (QUANTIZED_MIN + 1000, 5, 1.0),
        (QUANTIZED_MIN + 1000, 6, 1.3),
        (9000, 7, 0.4),
        (20_000, 8, 1.0),
    ],
)
def test_int8_first_pass_finds_the_exact_top_k(
    n: int, seed: int, scale: float, transposed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The int8 pass with float32 re-scoring returns the float32 scan's nearest episodes, in
    its order, for queries near stored vectors and far from them, unit or not; with feedback,
    the expanded query's nearest (from the first pass's shortlist at 16K vectors and more, or
    a second pass) are the float32 path's too. In each layout of the int8 copy this CPU runs."""
    monkeypatch.setattr(quantized, "rows_on_the_right", lambda: transposed)
    dims = 64
    passes: list[tuple[int, ...]] = []  # each second pass: (k, the floor it was given)
    top = VectorIndex._top
    monkeypatch.setattr(
        VectorIndex,
        "_top",
        lambda self, q, k, *floor: passes.append((k, *floor)) or top(self, q, k, *floor),
    )
    index, matrix = _clustered_index(n, dims, seed, scale, quantize=True)
    plain, _ = _clustered_index(n, dims, seed, scale, quantize=False)
    assert index._codes is not None
    assert index._codes.transposed is transposed
    assert len(index._codes) == n
    assert plain._codes is None
    rng = np.random.default_rng(seed + 50)
    shortlisted = floored = 0
    for noise in (0.05, 0.8, 5.0):
        for _ in range(5):
            query = matrix[rng.integers(0, n)] + noise * rng.normal(size=dims)
            query = (query / np.linalg.norm(query)).astype(np.float32)
            for k in (1, 10, 40):
                got = index.search(query, k)
                want = plain.search(query, k)
                _assert_exact_top(got, matrix, query, k)
                _assert_exact_top(want, matrix, query, k)
                assert 0 < index._codes.rescored < n // 8  # it re-scored a shortlist only
            passes.clear()
            hits, expanded, again = index.search_with_feedback(query, 40, 3, 1.0)
            shortlisted += not passes  # the expanded query needed no second pass
            floored += any(len(p) == 2 for p in passes)  # a second pass after the shortlist
            want_hits, want_expanded, want_again = plain.search_with_feedback(query, 40, 3, 1.0)
            assert hits == want_hits
            assert expanded is not None
            assert want_expanded is not None
            assert np.array_equal(expanded, want_expanded)
            assert set(again) == set(want_again)
    if n >= 16_384 and scale == 1.0:
        assert shortlisted > 0
        assert floored > 0
    else:
        assert shortlisted == 0


@needs_onnxruntime
def test_int8_copy_follows_adds_replacements_and_reset() -> None:
    """Rows added after the copy was made, and rows replaced, are searched with their new
    vectors; a reset drops the copy until the index is large again."""
    n, dims = QUANTIZED_MIN, 32
    index, matrix = _clustered_index(n - 10, dims, 8, quantize=True)
    assert index._codes is None  # below the size that keeps a copy
    rng = np.random.default_rng(9)
    fresh = rng.normal(size=(20, dims)).astype(np.float32)
    fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)
    index.add([(n + r, uuid.UUID(int=n + r), fresh[r].tobytes(), False) for r in range(20)])
    assert index._codes is not None
    assert len(index._codes) == len(index) == n + 10
    target = uuid.UUID(int=17)
    moved = -matrix[16]  # episode 17 now points the other way
    index.add([(n + 100, target, moved.tobytes(), False)])
    assert index.search(moved, 1)[0][0] == target
    assert index.search(fresh[3], 1)[0][0] == uuid.UUID(int=n + 3)
    assert target not in {i for i, _ in index.search(matrix[16], 40)}
    index.reset()
    assert index._codes is None
    assert len(index) == 0


@needs_onnxruntime
def test_int8_pass_gives_way_to_a_float32_scan_for_large_k() -> None:
    """k of n / 8 and more, or a shortlist past n / 8 rows, scans float32: same results."""
    n, dims = QUANTIZED_MIN, 16
    index, matrix = _clustered_index(n, dims, 10, quantize=True)
    query = matrix[5]
    got = index.search(query, n // 4)
    _assert_exact_top(got, matrix, query, n // 4)
    assert index._codes is not None
    assert index._codes.top_k(matrix, query, 10, max_rescored=0) is None


@needs_onnxruntime
def test_a_failing_int8_scan_falls_back_to_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """An onnxruntime that cannot run the product: the index scans float32 from then on."""
    index, matrix = _clustered_index(QUANTIZED_MIN, 16, 11, quantize=True)
    want = index.search_with_feedback(matrix[3], 10, 3, 1.0)

    def broken(self: quantized.QuantizedRows, query: F32) -> tuple[F32, float]:
        raise RuntimeError("no MatMulInteger kernel")

    monkeypatch.setattr(quantized.QuantizedRows, "approximate", broken)
    got = index.search_with_feedback(matrix[3], 10, 3, 1.0)
    assert index._codes is None
    assert got[0] == want[0]
    assert set(got[2]) == set(want[2])
    assert index.search(matrix[4], 5)[0][0] == uuid.UUID(int=5)


def test_the_int8_product_model_is_the_one_onnx_builds() -> None:
    """The serialised MatMulInteger model kept as bytes is what the onnx package builds."""
    onnx = pytest.importorskip("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    kinds = onnx.TensorProto
    a = helper.make_tensor_value_info("A", kinds.UINT8, [None, None])
    b = helper.make_tensor_value_info("B", kinds.INT8, [None, None])
    y = helper.make_tensor_value_info("Y", kinds.INT32, [None, None])
    zero = numpy_helper.from_array(np.array(128, dtype=np.uint8), "zero")
    node = helper.make_node("MatMulInteger", ["A", "B", "zero"], ["Y"])
    graph = helper.make_graph([node], "scan", [a, b], [y], [zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    onnx.checker.check_model(model)
    assert model.SerializeToString() == quantized.MATMUL_INTEGER_MODEL


@needs_onnxruntime
def test_the_int8_product_is_exact() -> None:
    """ONNX Runtime's product of the int8 rows and the 7-bit query equals numpy's in int64,
    including rows and queries at the ends of their ranges."""
    rng = np.random.default_rng(12)
    codes = rng.integers(0, 256, size=(3000, 384)).astype(np.uint8)
    codes[0], codes[1] = 255, 1  # +127 and -127 everywhere
    query = rng.integers(-63, 64, size=(384, 2)).astype(np.int8)
    query[:, 1] = 63
    got = quantized._matmul_integer().run(None, {"A": codes, "B": query})[0]
    want = (codes.astype(np.int64) - 128) @ query.astype(np.int64)
    assert np.array_equal(got, want)


@needs_onnxruntime
def test_the_int8_layouts_give_the_same_scores_within_the_bound() -> None:
    """Every layout this CPU runs gives the same approximate scores and error bound, after adds
    in pages and a replaced row, and each score is within the bound of the exact one."""
    rng = np.random.default_rng(13)
    matrix = rng.normal(size=(2500, 96)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    copies = [quantized.QuantizedRows(96, transposed=t) for t in LAYOUTS]
    for codes in copies:
        codes.append(matrix[:1000])
        codes.append(matrix[1000:])
    matrix[7] = -matrix[8]
    for codes in copies:
        codes.replace(7, matrix[7])
        assert len(codes) == 2500
    for _ in range(5):
        query = (matrix[rng.integers(0, 2500)] + 0.3 * rng.normal(size=96)).astype(np.float32)
        query /= np.linalg.norm(query)
        exact = matrix.astype(np.float64) @ query
        results = [codes.approximate(query) for codes in copies]
        for scores, bound in results:
            assert np.abs(scores - exact).max() <= bound
            np.testing.assert_allclose(scores, results[0][0], rtol=0, atol=1e-6)
            assert bound == results[0][1]


def test_the_packed_int8_product_model_is_the_one_onnx_builds() -> None:
    """The packed product's model, composed without the onnx package, is what it builds: B an
    int8 initializer of the given shape held outside the model (varints of every length)."""
    onnx = pytest.importorskip("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    kinds = onnx.TensorProto
    for dimensions, count in ((384, 100_000), (8, 1), (127, 128), (1536, 2**21 + 5)):
        a = helper.make_tensor_value_info("A", kinds.UINT8, [None, None])
        y = helper.make_tensor_value_info("Y", kinds.INT32, [None, None])
        zero = numpy_helper.from_array(np.array(128, dtype=np.uint8), "zero")
        rows = kinds(name="B", data_type=kinds.INT8, dims=[dimensions, count])
        rows.data_location = kinds.EXTERNAL
        rows.external_data.add(key="location", value="rows")
        node = helper.make_node("MatMulInteger", ["A", "B", "zero"], ["Y"])
        graph = helper.make_graph([node], "scan", [a], [y], [zero, rows])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
        assert model.SerializeToString() == quantized.packed_scan_model(dimensions, count)


# The int8 rows are packed where they are the product's right operand (a VNNI/AMX CPU).
needs_packing = pytest.mark.skipif(
    not quantized.available() or not quantized.rows_on_the_right(),
    reason="the rows are packed where they are the product's right operand (a VNNI/AMX CPU)",
)


def _packed_and_plain(
    dims: int, n: int, seed: int
) -> tuple[quantized.QuantizedRows, quantized.QuantizedRows, F32]:
    """Two empty transposed int8 copies, one packing its rows and one not, and ``n`` random
    rows of ``dims`` to give them."""
    matrix = np.random.default_rng(seed).normal(size=(n, dims)).astype(np.float32)
    return (
        quantized.QuantizedRows(dims, transposed=True),
        quantized.QuantizedRows(dims, transposed=True, pack=False),
        matrix,
    )


@needs_packing
def test_the_packed_int8_rows_give_the_unpacked_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows packed in a session of their own give the same approximate scores, to the bit,
    as the unpacked copy: once built, with rows appended after it (scanned unpacked), after
    rebuilds as those grow, and after a replaced row, packed (the packed session is dropped
    until the next build) or appended (changed in place)."""
    monkeypatch.setattr(quantized, "_TAIL_MIN", 300)
    packed, plain, matrix = _packed_and_plain(64, 4000, 15)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    queries = np.random.default_rng(25).normal(size=(4, 64)).astype(np.float32)

    def same(rows: int, tail: int) -> None:
        packed.approximate(queries[0])  # a scan starts the build it needs
        assert packed.wait(30)
        assert (packed.packed, packed._tail_count) == (rows, tail)
        for query in queries:
            got, want = packed.approximate(query), plain.approximate(query)
            assert np.array_equal(got[0], want[0])
            assert got[1] == want[1]

    for codes in (packed, plain):
        codes.append(matrix[:2000])
    assert packed._building is None  # appends build nothing (an index loaded page by page)
    assert packed.packed == 0
    same(2000, 0)  # built at the first scan
    for start in range(2000, 2300, 100):  # appended rows: the tail, scanned unpacked
        for codes in (packed, plain):
            codes.append(matrix[start : start + 100])
    same(2000, 300)
    for codes in (packed, plain):
        codes.append(matrix[2300:2400])  # past the tail's limit: built again
    same(2400, 0)
    for codes in (packed, plain):
        codes.append(matrix[2400:2500])
        codes.replace(2450, -matrix[2450])  # an appended row: changed in the tail
    same(2400, 100)
    session = packed._session
    for codes in (packed, plain):
        codes.replace(5, -matrix[5])  # a packed row: that session is stale
    assert packed._session is not session
    same(2500, 0)  # built again with the row as it is now
    for codes in (packed, plain):
        codes.append(matrix[2500:4000])
    same(4000, 0)


@needs_packing
def test_an_index_searches_the_same_before_and_after_its_rows_are_packed() -> None:
    """A large index's first search starts packing its int8 rows; the searches before and
    after the packed session is in place, and after more rows (the unpacked tail), find what
    the float32 scan finds."""
    rng = np.random.default_rng(18)
    n = QUANTIZED_MIN + 500
    matrix = rng.normal(size=(n + 300, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    index, plain = VectorIndex("m", 384), VectorIndex("m", 384, quantize=False)

    def add(start: int, end: int) -> None:
        rows = [
            (r + 1, uuid.UUID(int=r + 1), matrix[r].tobytes(), False) for r in range(start, end)
        ]
        for target in (index, plain):
            target.add(rows)

    def same() -> None:
        for q in (matrix[7], matrix[n - 1], (matrix[3] + matrix[4]) / np.sqrt(2)):
            got = index.search_with_feedback(q, 40, 3, 0.5)
            want = plain.search_with_feedback(q, 40, 3, 0.5)
            assert got[0] == want[0]
            assert got[2] == want[2]

    add(0, n)
    same()  # unpacked; the first search started the build
    assert index.settled(60)
    assert index._codes is not None
    assert index._codes.packed == n
    same()
    add(n, n + 300)
    same()
    assert index._codes.packed == n


@needs_packing
def test_a_row_replaced_while_its_copy_is_packed_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A build that copied the rows before one of them was replaced is not put in place (its
    copy may hold the old row): it builds again, and the scores are the unpacked copy's."""
    import threading

    copied, release = threading.Event(), threading.Event()
    build = quantized._packed_session

    def held(source: np.ndarray) -> object:  # type: ignore[type-arg]
        copied.set()
        release.wait(30)
        return build(source)

    monkeypatch.setattr(quantized, "_packed_session", held)
    packed, plain, matrix = _packed_and_plain(48, 1500, 17)
    for codes in (packed, plain):
        codes.append(matrix)
    packed.approximate(matrix[0])  # starts the build
    assert copied.wait(30)  # the build has its copy of the rows
    for codes in (packed, plain):
        codes.replace(9, -matrix[9])
    release.set()
    assert packed.wait(30)  # the first build, and the second it started
    assert packed.packed == 1500
    for query in (matrix[9], matrix[10]):
        got, want = packed.approximate(query), plain.approximate(query)
        assert np.array_equal(got[0], want[0])


@needs_packing
def test_rows_appended_while_a_build_runs_become_its_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows appended while a build has its copy (the first build, from the unpacked copy, and a
    rebuild, from the packed rows and their tail) are the new tail once it is in place, and
    the scores stay the unpacked copy's."""
    import threading

    monkeypatch.setattr(quantized, "_TAIL_MIN", 100)
    build, gate = quantized._packed_session, threading.Semaphore(0)

    def held(source: np.ndarray) -> object:  # type: ignore[type-arg]
        gate.acquire(timeout=30)
        return build(source)

    monkeypatch.setattr(quantized, "_packed_session", held)
    packed, plain, matrix = _packed_and_plain(40, 2000, 19)
    query = matrix[3]
    for start, end, rows, tail in ((0, 1000, 1000, 50), (1050, 1300, 1300, 70)):
        for codes in (packed, plain):
            codes.append(matrix[start:end])
        packed.approximate(query)  # starts a build (a first one, then one with the tail)
        for codes in (packed, plain):
            codes.append(matrix[end : end + tail])  # while it runs
        gate.release()
        assert packed.wait(30)
        assert (packed.packed, packed._tail_count) == (rows, tail)
        assert np.array_equal(packed.approximate(query)[0], plain.approximate(query)[0])


@needs_packing
def test_rows_that_cannot_be_packed_are_scanned_as_before(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An onnxruntime that cannot build the packed session (here: it raises) leaves the rows
    unpacked, with one warning, and the same scores; no build is tried again."""
    query = np.ones(32, dtype=np.float32) / np.sqrt(32)
    calls: list[int] = []

    def broken(source: np.ndarray) -> None:  # type: ignore[type-arg]
        calls.append(source.shape[1])
        raise RuntimeError("no external initializers here")

    monkeypatch.setattr(quantized, "_packed_session", broken)
    codes, plain, matrix = _packed_and_plain(32, 3000, 16)
    for rows in (codes, plain):
        rows.append(matrix[:1000])
    codes.approximate(query)
    assert codes.wait(30)
    for rows in (codes, plain):
        rows.append(matrix[1000:])
    codes.approximate(query)
    assert codes.wait(30)
    assert calls == [1000]
    assert codes.packed == 0
    assert "int8 rows not packed" in caplog.text
    assert np.array_equal(codes.approximate(query)[0], plain.approximate(query)[0])


@needs_onnxruntime
def test_the_int8_layout_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows on the right where the CPU's int8 product does not saturate (variant ``s8``), on the
    left where it does (``u8``); here, the transposed product is exact at its operands' ends."""
    from self_learning_memory.embeddings import onnx_runtime

    here = quantized.QuantizedRows(8).transposed
    assert here is (onnx_runtime.cpu_variant() == "s8")
    for variant, transposed in (("s8", True), ("u8", False)):
        monkeypatch.setattr(onnx_runtime, "cpu_variant", lambda v=variant: v)
        assert quantized.QuantizedRows(8).transposed is transposed
    if here:
        rng = np.random.default_rng(14)
        rows = rng.integers(-127, 128, size=(384, 3000)).astype(np.int8)
        rows[:, 0], rows[:, 1] = 127, -127
        query = rng.integers(65, 192, size=(2, 384)).astype(np.uint8)  # 7-bit values + 128
        query[1] = 191
        got = quantized._matmul_integer().run(None, {"A": query, "B": rows})[0]
        want = (query.astype(np.int64) - 128) @ rows.astype(np.int64)
        assert np.array_equal(got, want)


def test_with_room_keeps_the_array_or_copies_what_is_used() -> None:
    """The array itself while it has room; else a larger one (by the growth, or what is
    needed) holding the used part, zeros after it, along either axis."""
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert quantized.with_room(rows, 2, 3, 1.5) is rows
    grown = quantized.with_room(rows, 2, 4, 1.5)
    assert grown.shape == (2 + 1024, 4)
    assert np.array_equal(grown[:2], rows[:2])
    assert not grown[2:].any()
    wide = quantized.with_room(np.zeros((2, 5000), dtype=np.int8) + 1, 5000, 5001, 1.0625, axis=1)
    assert wide.shape == (2, 6080)  # 5,000 + 1,024 as a row length: column_room
    assert (wide[:, :5000] == 1).all()
    assert not wide[:, 5000:].any()
    assert quantized.with_room(rows, 3, 9000, 1.5).shape == (9000, 4)


@pytest.mark.parametrize(
    ("size", "room"), [(1, 64), (64, 64), (10_000, 10_048), (10_240, 10_304), (4096, 4160)]
)
def test_the_transposed_copy_rows_are_a_multiple_of_64_bytes_and_not_of_2048(
    size: int, room: int
) -> None:
    """Its row length: the next multiple of 64 that is not a multiple of 2,048."""
    assert quantized.column_room(size) == room


@pytest.mark.parametrize("transposed", LAYOUTS)
def test_one_row_at_a_time_grows_the_index_in_steps(
    transposed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Episodes added one by one (a store written between retrievals) reallocate the matrix
    and its int8 copy a few times, not per row; searches stay exact, and the copy's scores
    equal those of a copy made at once from the final matrix."""
    monkeypatch.setattr(quantized, "rows_on_the_right", lambda: transposed)
    n, extra, dims = QUANTIZED_MIN, 3000, 32
    index, matrix = _clustered_index(n + extra, dims, 15, quantize=quantized.available())
    index.reset()
    index.add([(r + 1, uuid.UUID(int=r + 1), matrix[r].tobytes(), False) for r in range(n)])
    store, codes, grew = index._store, None, 0
    for r in range(n, n + extra):
        index.add([(r + 1, uuid.UUID(int=r + 1), matrix[r].tobytes(), False)])
        grew += index._store is not store
        store = index._store
        if index._codes is not None:
            grew += codes is not None and index._codes._codes is not codes
            codes = index._codes._codes
    assert len(index) == n + extra
    assert np.array_equal(index._matrix, matrix)
    assert 0 < grew <= 6  # a few reallocations for 3,000 appends, not one per row
    rng = np.random.default_rng(16)
    for _ in range(5):
        query = matrix[rng.integers(0, n + extra)] + 0.2 * rng.normal(size=dims)
        query = (query / np.linalg.norm(query)).astype(np.float32)
        _assert_exact_top(index.search(query, 10), matrix, query, 10)
        if index._codes is not None:
            fresh = quantized.QuantizedRows(dims, transposed=transposed)
            fresh.append(matrix)
            got, bound = index._codes.approximate(query)
            want, want_bound = fresh.approximate(query)
            assert got.shape == (n + extra,)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
            assert bound == want_bound


def test_a_candidate_found_again_gains_the_source_as_replace_would_give_it() -> None:
    """``with_source`` (the vector search's merge) is ``dataclasses.replace`` with one more
    source: equal to it field for field, frozen like it, and the row it copied unchanged."""
    from self_learning_memory.model.records import with_source

    for row in corpus(random.Random(21), 40)[0]:
        row = dataclasses.replace(
            row,
            usage_known=True,
            usage=None if row.lexical is None else EpisodeUsage(uses=3, success=2.0),
        )
        merged = with_source(row, "vector")
        expected = dataclasses.replace(row, sources=(*row.sources, "vector"))
        assert merged == expected
        assert vars(merged) == vars(expected)
        assert row.sources == ("fts5",)
        with pytest.raises(dataclasses.FrozenInstanceError):
            merged.sources = ()  # type: ignore[misc]


def test_a_candidate_row_built_for_a_store_equals_the_constructors() -> None:
    """``candidate_row`` (the stores' row decoding) gives what ``EpisodeCandidate(...)`` gives
    for the same fields, every field included, and is as frozen."""
    from self_learning_memory.model.records import candidate_row

    usage = EpisodeUsage(uses=2, success=1.5)
    for row in corpus(random.Random(22), 40)[0]:
        values = {f.name: getattr(row, f.name) for f in dataclasses.fields(EpisodeCandidate)}
        values.update(usage=usage, usage_known=True)
        built = candidate_row(**values)
        expected = EpisodeCandidate(**values)
        assert built == expected
        assert vars(built) == vars(expected)
        assert list(vars(built)) == list(vars(expected))  # the same field order too
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.lexical = 0.0  # type: ignore[misc]
