"""Ranking for retrieve_relevant_context, on in-memory candidates (no store)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from self_learning_memory import RetrievalConfig, TaskContext, TaskType
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.retrieval.legacy import legacy_rank
from self_learning_memory.retrieval.ranking import context_match, rank_candidates
from self_learning_memory.retrieval.scores import ScoredCandidate
from self_learning_memory.retrieval.tokens import MAX_QUERY_TERMS, query_terms, tokens

NOW = datetime(2025, 6, 1, tzinfo=UTC)
CFG = RetrievalConfig()
CTX = TaskContext(domain="web-api", language="python")


def cand(
    n: int,
    description: str,
    *,
    tools: tuple[str, ...] = ("edit",),
    lexical: float | None = 1.0,
    outcome: str | None = "success",
    reward: float | None = 2.0,
    age_days: float = 1.0,
    context: TaskContext = CTX,
    task_type: TaskType = TaskType.CODE_GENERATION,
) -> EpisodeCandidate:
    return EpisodeCandidate(
        episode_id=uuid.UUID(int=n),
        task_description=description,
        task_type=task_type,
        context=context,
        outcome_type=outcome,
        reward_total=reward,
        end_time=NOW - timedelta(days=age_days),
        tools=tools,
        lexical=lexical,
        sources=("lexical",),
    )


def rank(cands: list[EpisodeCandidate], query: str, limit: int = 10, **cfg: float):  # type: ignore[no-untyped-def]
    config = CFG.model_copy(update=cfg)
    return rank_candidates(
        cands, query_terms(query), CTX, TaskType.CODE_GENERATION, config, NOW, limit
    )


def test_query_terms_drop_stopwords_and_repeats_and_keep_order() -> None:
    assert query_terms("How do I add the health endpoint to the API, the API!") == [
        "add",
        "health",
        "endpoint",
        "api",
    ]
    assert query_terms("a b 7 x") == ["7"]  # single letters go, digits stay
    many = " ".join(f"word{i}" for i in range(50))
    assert len(query_terms(many)) == MAX_QUERY_TERMS


def test_mmr_drops_near_duplicates() -> None:
    same = "add a health endpoint to the orders service"
    cands = [
        cand(1, same, tools=("edit", "pytest")),
        cand(2, same, tools=("edit", "pytest")),  # identical text and tools: similarity 1.0
        cand(3, "migrate the billing database schema", tools=("psql",), lexical=0.5),
    ]
    ranked = rank(cands, "health endpoint")
    ids = [r.candidate.episode_id.int for r in ranked]
    assert ids == [1, 3]
    assert ranked[0].components.diversity_penalty == 0.0


def test_near_duplicate_above_the_threshold_is_dropped_below_it_kept() -> None:
    base = (
        "add health endpoint orders service api version two readiness liveness probe "
        "kubernetes deployment gateway route metrics latency budget alert pager runbook "
        "canary rollout dashboard"
    )
    near = base + " quickly"  # one extra word of twenty-four: Jaccard 23/24 = 0.958
    sim = len(tokens(base) & tokens(near)) / len(tokens(base) | tokens(near))
    assert CFG.duplicate_threshold <= sim < 0.97
    cands = [cand(1, base, tools=()), cand(2, near, tools=(), lexical=0.99)]
    assert [r.candidate.episode_id.int for r in rank(cands, "health endpoint")] == [1]
    kept = rank(cands, "health endpoint", duplicate_threshold=0.97)
    assert [r.candidate.episode_id.int for r in kept] == [1, 2]
    # only the part of the similarity above the floor counts, rescaled to 0..1
    floor = CFG.mmr_similarity_floor
    expected = (1 - CFG.mmr_lambda) * (sim - floor) / (1 - floor)
    assert kept[1].components.diversity_penalty == pytest.approx(expected)


def test_mmr_prefers_a_diverse_result_over_a_near_copy() -> None:
    base = "add health endpoint orders service api version two readiness liveness probe"
    cands = [
        cand(1, base, tools=("edit",)),
        cand(2, base + " quickly", tools=("edit",), lexical=0.95),  # Jaccard 12/13 = 0.92
        cand(3, "add readiness probe", tools=("kubectl",), lexical=0.9),
    ]
    by_score = rank(cands, "add health endpoint", mmr_lambda=1.0, duplicate_threshold=1.0)
    by_mmr = rank(cands, "add health endpoint", mmr_lambda=0.5, duplicate_threshold=1.0)
    assert [r.candidate.episode_id.int for r in by_score] == [1, 2, 3]
    assert [r.candidate.episode_id.int for r in by_mmr] == [1, 3, 2]
    penalised = by_mmr[2].components
    assert penalised.diversity_penalty > 0.0


def test_mmr_does_not_penalise_episodes_that_only_share_a_topic() -> None:
    cands = [
        cand(1, "add health endpoint orders service", tools=("edit",)),
        cand(2, "add health endpoint orders api", tools=("edit",), lexical=0.95),  # 5/7 = 0.71
        cand(3, "add readiness probe", tools=("kubectl",), lexical=0.9),
    ]
    by_mmr = rank(cands, "add health endpoint", mmr_lambda=0.5)
    assert [r.candidate.episode_id.int for r in by_mmr] == [1, 2, 3]
    assert all(r.components.diversity_penalty == 0.0 for r in by_mmr)


def test_mmr_never_treats_different_outcomes_as_redundant() -> None:
    same = "add a health endpoint to the orders service"
    cands = [
        cand(1, same, tools=("edit", "pytest")),
        cand(2, same, tools=("edit", "pytest"), outcome="failure", reward=0.5),
    ]
    ranked = rank(cands, "health endpoint")
    assert [r.candidate.episode_id.int for r in ranked] == [1, 2]  # the failure is kept
    assert ranked[1].components.diversity_penalty == 0.0


def test_mmr_uses_episode_vectors_when_given() -> None:
    import numpy as np

    cands = [
        cand(1, "add health endpoint", tools=("edit",)),
        cand(2, "expose a liveness route", tools=("kubectl",), lexical=0.9),
        cand(3, "rotate the signing keys", tools=("vault",), lexical=0.8),
    ]
    unit = np.array([1.0, 0.0], dtype=np.float32)
    near = np.array([0.99, 0.141], dtype=np.float32)  # cosine 0.99 with the first
    other = np.array([0.0, 1.0], dtype=np.float32)
    vectors = {uuid.UUID(int=1): unit, uuid.UUID(int=2): near, uuid.UUID(int=3): other}
    scores = {uuid.UUID(int=1): 0.9, uuid.UUID(int=2): 0.88, uuid.UUID(int=3): 0.5}
    ranked = rank_candidates(
        cands, ["health"], CTX, None, CFG, NOW, 10, scores, "vector", embeddings=vectors
    )
    # word overlap is nil, but the vectors say episode 2 repeats episode 1: dropped (>= 0.9)
    assert [r.candidate.episode_id.int for r in ranked] == [1, 3]


def test_score_components_sum_to_total_and_stay_in_range() -> None:
    cands = [
        cand(1, "add health endpoint", reward=2.5, age_days=0),
        cand(2, "fix login bug", outcome="failure", reward=0.3, age_days=30, lexical=0.2),
        cand(3, "health dashboard", outcome="partial_success", reward=None, lexical=None),
    ]
    for r in rank(cands, "add health endpoint"):
        c = r.components
        assert c.mode == "lexical"
        for value in (c.relevance, c.lexical, c.term_coverage, c.context, c.outcome, c.recency):
            assert 0.0 <= value <= 1.0
        assert c.relevance == pytest.approx(0.6 * c.lexical + 0.4 * c.term_coverage)
        assert c.total == pytest.approx(
            CFG.weight_relevance * c.relevance
            + CFG.weight_context * c.context
            + CFG.weight_outcome * c.outcome * c.relevance
            + CFG.weight_recency * c.recency
        )
        assert r.provenance[0] == "lexical"
    top = rank(cands, "add health endpoint")[0]
    assert top.candidate.episode_id.int == 1
    assert top.components.lexical == 1.0  # normalised to the best bm25
    assert top.components.term_coverage == 1.0
    assert top.components.outcome == pytest.approx(1.0)  # success, reward 2.5
    assert top.components.recency == pytest.approx(1.0)
    assert "context:domain" in top.provenance


def test_recency_halves_every_half_life_and_outcome_mixes_reward() -> None:
    [r] = rank([cand(1, "x", age_days=30, outcome="failure", reward=1.25)], "x")
    assert r.components.recency == pytest.approx(0.5)
    assert r.components.outcome == pytest.approx(0.5 * 0.0 + 0.5 * 0.5)
    [p] = rank([cand(1, "x", outcome="partial_success", reward=10.0)], "x")
    assert p.components.outcome == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)  # reward part capped


def test_context_match_weights_the_fields_the_query_sets() -> None:
    query = TaskContext(domain="web-api", language="Python", framework="fastapi", tags=["a", "b"])
    other = cand(1, "x", context=TaskContext(domain="web-api", language="python", tags=["b"]))
    score, matched = context_match(other, query, TaskType.DEBUGGING)
    # domain 0.3 + task type 0 + language 0.2 + framework 0 + tags 0.2 x 1/2, over weight 1.0
    assert score == pytest.approx(0.6)
    assert matched == ["context:domain", "context:language", "context:tags"]
    score, matched = context_match(other, TaskContext(domain="cli"), None)
    assert (score, matched) == (0.0, [])


def test_vector_mode_uses_the_normalised_cosine() -> None:
    cands = [cand(1, "alpha", lexical=1.0), cand(2, "beta", lexical=0.1)]
    scores = {uuid.UUID(int=1): 0.2, uuid.UUID(int=2): 0.8}
    ranked = rank_candidates(
        cands, ["alpha"], CTX, None, CFG, NOW, 10, vector_scores=scores, mode="vector"
    )
    assert [r.candidate.episode_id.int for r in ranked] == [2, 1]
    assert ranked[0].components.relevance == pytest.approx(1.0)
    assert ranked[0].components.vector == pytest.approx(0.8)
    assert ranked[1].components.relevance == pytest.approx(0.25)


def test_hybrid_fuses_z_scored_signals_and_scales_them_to_0_1() -> None:
    """With a lexical share (here a fixed one: vector_weight 0.8 and no query text) the two
    signals are z-scored, weighted and min-max scaled; with none (the default for plain
    language) relevance is the cosine relative to the best one, as in vector mode."""
    cands = [
        cand(1, "alpha", lexical=1.0),
        cand(2, "beta", lexical=0.1),
        cand(3, "gamma", lexical=0.5),
    ]
    scores = {uuid.UUID(int=1): 0.2, uuid.UUID(int=2): 0.8, uuid.UUID(int=3): 0.5}
    config = CFG.model_copy(update={"vector_weight": 0.8})
    hybrid = rank_candidates(
        cands, ["alpha"], CTX, None, config, NOW, 10, vector_scores=scores, mode="hybrid"
    )
    by_id = {r.candidate.episode_id.int: r.components for r in hybrid}
    assert all(c.mode == "hybrid" for c in by_id.values())

    def z(values: list[float]) -> list[float]:
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        return [(v - mean) / sd for v in values]

    lexical = [0.6 * by_id[i].lexical + 0.4 * by_id[i].term_coverage for i in (1, 2, 3)]
    w = config.vector_weight
    fused = [(1 - w) * a + w * b for a, b in zip(z(lexical), z([0.2, 0.8, 0.5]), strict=True)]
    low, high = min(fused), max(fused)
    for i, f in zip((1, 2, 3), fused, strict=True):
        assert by_id[i].relevance == pytest.approx((f - low) / (high - low))
        # without the query text the lexical weight is the fixed 1 - vector_weight, reported
        assert by_id[i].lexical_weight == pytest.approx(1 - w)
    assert by_id[2].relevance == pytest.approx(1.0)  # the vector signal weighs vector_weight
    assert by_id[1].vector == pytest.approx(0.2)  # the raw cosine is reported as is
    plain = rank_candidates(
        cands, ["alpha"], CTX, None, CFG, NOW, 10, vector_scores=scores, mode="hybrid"
    )
    for r in plain:
        cosine = scores[r.candidate.episode_id]
        assert r.components.lexical_weight == 0.0
        assert r.components.relevance == pytest.approx(cosine / 0.8)


def _hybrid_for(query: str) -> list[ScoredCandidate]:
    """Episode 1 matches the query's words exactly (high bm25, low cosine); episode 2 is
    semantically closer (low bm25, high cosine); episode 3 is in between on both."""
    cands = [
        cand(1, "alpha", lexical=1.0, tools=("kubectl",)),
        cand(2, "beta", lexical=0.2, tools=("editor",)),
        cand(3, "gamma", lexical=0.5, tools=("editor",)),
    ]
    scores = {uuid.UUID(int=1): 0.55, uuid.UUID(int=2): 0.8, uuid.UUID(int=3): 0.6}
    return rank_candidates(
        cands, [], CTX, None, CFG, NOW, 10, vector_scores=scores, mode="hybrid", query=query
    )


@pytest.mark.parametrize(
    "query",
    [
        "ValueError: Input contains NaN",
        "getting ERROR: deadlock detected",
        "kubectl logs --previous crash",
        "drop_duplicates keep newest",
    ],
)
def test_a_code_or_error_query_raises_the_lexical_weight_and_the_exact_match_wins(
    query: str,
) -> None:
    ranked = _hybrid_for(query)
    assert ranked[0].candidate.episode_id.int == 1  # the exact match comes first
    assert all(r.components.lexical_weight == pytest.approx(0.6) for r in ranked)


@pytest.mark.parametrize(
    "query",
    [
        "the pods keep restarting after a deploy, find out why",
        "Task: remove repeated rows from the customers table",
        "TODO: the orders page is slow for large accounts",
    ],
)
def test_a_plain_language_query_keeps_the_default_weight(query: str) -> None:
    ranked = _hybrid_for(query)
    assert ranked[0].candidate.episode_id.int == 2  # the vector signal decides
    weight = 1 - CFG.vector_weight
    assert all(r.components.lexical_weight == pytest.approx(weight) for r in ranked)


def test_one_identifier_in_a_long_description_moves_the_weight_part_way() -> None:
    query = (
        "the nightly import loads every customer twice and the totals are wrong, drop_duplicates"
    )
    weight = _hybrid_for(query)[0].components.lexical_weight
    assert weight is not None
    assert 1 - CFG.vector_weight < weight < CFG.lexical_weight_max


def test_lexical_weight_is_only_a_hybrid_component() -> None:
    cands = [cand(1, "alpha"), cand(2, "beta")]
    scores = {uuid.UUID(int=1): 0.9, uuid.UUID(int=2): 0.5}
    for mode in ("vector", "lexical"):
        ranked = rank_candidates(
            cands,
            ["alpha"],
            CTX,
            None,
            CFG,
            NOW,
            10,
            scores if mode == "vector" else None,
            mode,
            query="ValueError: x",
        )
        assert all(r.components.lexical_weight is None for r in ranked)


def test_feedback_scores_drive_the_vector_signal_and_are_reported() -> None:
    cands = [cand(1, "alpha"), cand(2, "beta")]
    asked = {uuid.UUID(int=1): 0.9, uuid.UUID(int=2): 0.5}
    expanded = {uuid.UUID(int=1): 0.4, uuid.UUID(int=2): 0.8}
    ranked = rank_candidates(
        cands, [], CTX, None, CFG, NOW, 10, asked, "vector", feedback_scores=expanded
    )
    assert [r.candidate.episode_id.int for r in ranked] == [2, 1]
    top = ranked[0].components
    assert (top.vector, top.vector_feedback, top.relevance) == pytest.approx((0.5, 0.8, 1.0))


def test_limit_and_empty_input() -> None:
    cands = [cand(i, f"task number {i} topic{i}") for i in range(1, 21)]
    assert len(rank(cands, "task", limit=5)) == 5
    assert rank([], "task") == []
    assert legacy_rank([], "task", CTX, 5) == []


def test_legacy_mode_reproduces_the_reference_score() -> None:
    far = TaskContext(domain="cli")
    cands = [
        cand(1, "Add health endpoint to orders", reward=2.0),
        cand(2, "Write docs", context=far, reward=3.0),  # no shared context, no word: dropped
        cand(3, "Health check for the CLI", context=far, reward=1.0),
    ]
    ranked = legacy_rank(cands, "add health endpoint", CTX, 10)
    assert [r.candidate.episode_id.int for r in ranked] == [1, 3]
    top = ranked[0].components
    assert top.mode == "legacy"
    # 0.3 x reward + min(0.4, domain 0.4 + language 0.3) + 0.3 x (2 long words found / 3 words)
    assert top.total == pytest.approx(0.3 * 2.0 + 0.4 + 0.3 * 2 / 3)
    low = ranked[1].components
    assert low.total == pytest.approx(0.3 * 1.0 + 0.0 + 0.3 * 1 / 3)
    assert ranked[0].provenance[-1] == "legacy"
    assert len(legacy_rank(cands, "add health endpoint", CTX, 1)) == 1


candidate_lists = st.lists(
    st.builds(
        cand,
        st.integers(1, 10**6),
        st.lists(
            st.sampled_from(["add", "health", "fix", "login", "db", "api", "test"]),
            min_size=1,
            max_size=6,
        ).map(" ".join),
        tools=st.lists(st.sampled_from(["edit", "pytest", "git", "psql"]), max_size=3).map(tuple),
        lexical=st.none() | st.floats(0, 20),
        outcome=st.sampled_from(["success", "partial_success", "failure", None]),
        reward=st.none() | st.floats(0, 3.2),
        age_days=st.floats(0, 400),
    ),
    max_size=25,
    unique_by=lambda c: c.episode_id,
)


@settings(max_examples=50, deadline=None)
@given(candidate_lists, st.randoms(use_true_random=False), st.integers(1, 10))
def test_ranking_is_stable_under_input_order(
    cands: list[EpisodeCandidate],
    rnd,
    limit: int,  # type: ignore[no-untyped-def]
) -> None:
    first = rank(cands, "add health api", limit)
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    second = rank(shuffled, "add health api", limit)
    assert [r.candidate.episode_id for r in first] == [r.candidate.episode_id for r in second]
    assert len(first) <= limit
    assert len({r.candidate.episode_id for r in first}) == len(first)
    for r in first:
        assert math.isfinite(r.components.total)
        assert 0.0 <= r.components.diversity_penalty <= 1.0
    by_score = rank(cands, "add health api", limit, mmr_lambda=1.0)
    totals = [r.components.total for r in by_score]
    assert totals == sorted(totals, reverse=True)


def test_hybrid_scores_a_candidate_without_a_vector_by_its_words() -> None:
    """An episode not embedded yet (or embedded by another model) has no cosine: hybrid scores
    it by its exact words alone instead of burying it under a cosine of 0, even for a
    plain-language query whose lexical weight is 0; with no vectors at all hybrid is lexical."""
    cands = [
        cand(1, "rotate the signing keys", lexical=1.0),  # no vector
        cand(2, "beta", lexical=0.1),
        cand(3, "gamma", lexical=0.5),
    ]
    query = "rotate the signing keys"
    scores = {uuid.UUID(int=2): 0.9, uuid.UUID(int=3): 0.1}
    hybrid = rank_candidates(
        cands, query_terms(query), CTX, None, CFG, NOW, 10, scores, "hybrid", query=query
    )
    by_id = {r.candidate.episode_id.int: r.components for r in hybrid}
    assert by_id[1].lexical_weight == pytest.approx(0.0)  # plain language: vector relevance
    assert by_id[1].vector == 0.0  # reported as it is: no cosine
    assert by_id[1].relevance == pytest.approx(1.0)  # its lexical z-score is the highest
    assert by_id[2].relevance > by_id[3].relevance  # the others by their cosines
    none = rank_candidates(
        cands, query_terms(query), CTX, None, CFG, NOW, 10, {}, "hybrid", query=query
    )
    lexical = rank_candidates(cands, query_terms(query), CTX, None, CFG, NOW, 10, query=query)
    assert [r.candidate.episode_id for r in none] == [r.candidate.episode_id for r in lexical]


def test_outcome_counts_as_far_as_the_task_matches() -> None:
    """Among episodes of the task asked about, the one that worked comes first; a success at
    another task does not outrank a failure at this one."""
    cands = [
        cand(1, "rotate signing keys", outcome="failure", reward=0.2, lexical=1.0),
        cand(2, "rotate signing keys", outcome="success", reward=2.0, lexical=1.0),
        cand(3, "rename a css class", outcome="success", reward=2.5, lexical=1.0),
    ]
    ranked = rank(cands, "rotate signing keys", duplicate_threshold=1.0, mmr_lambda=1.0)
    assert [r.candidate.episode_id.int for r in ranked] == [2, 1, 3]
    by_id = {r.candidate.episode_id.int: r.components for r in ranked}
    # the other task's outcome bonus shrinks with its relevance
    assert (
        by_id[3].total
        < CFG.weight_relevance * by_id[3].relevance
        + CFG.weight_context * (by_id[3].context)
        + CFG.weight_outcome * by_id[3].outcome
        + CFG.weight_recency * by_id[3].recency
    )
