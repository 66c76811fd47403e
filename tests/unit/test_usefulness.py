"""The usefulness ranking component (retrieval feedback) on in-memory candidates: no feedback
leaves every ranking exactly as it was, an episode that keeps helping rises above an equal
one, one that keeps being used by failed tasks sinks, and the smoothing keeps one use from
deciding."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from self_learning_memory import RetrievalConfig, TaskType
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.model.usage import EpisodeUsage, usefulness
from self_learning_memory.retrieval.ranking import rank_candidates
from self_learning_memory.retrieval.scores import ScoredCandidate
from self_learning_memory.retrieval.tokens import query_terms

from .test_retrieval_ranking import CTX, NOW, cand

QUERY = "deploy the billing service"


def _rank(
    cands: list[EpisodeCandidate], usage: dict[uuid.UUID, EpisodeUsage] | None, **cfg: float
) -> list[ScoredCandidate]:
    config = RetrievalConfig().model_copy(update=cfg)
    return rank_candidates(
        cands,
        query_terms(QUERY),
        CTX,
        TaskType.CODE_GENERATION,
        config,
        NOW,
        10,
        usage=usage,
    )


def _pair() -> list[EpisodeCandidate]:
    return [
        cand(1, "alpha: deploy the billing service"),
        cand(2, "beta: deploy the billing service"),
    ]


def test_smoothing_starts_neutral_and_needs_evidence() -> None:
    assert usefulness(None) == 0.5
    assert usefulness(EpisodeUsage()) == 0.5
    assert usefulness(EpisodeUsage(uses=1, success=1.0)) == pytest.approx(3 / 5)
    assert usefulness(EpisodeUsage(uses=10, success=10.0)) == pytest.approx(12 / 14)
    assert usefulness(EpisodeUsage(uses=10)) == pytest.approx(2 / 14)
    assert usefulness(EpisodeUsage(helpful=1, unhelpful=1)) == 0.5


@given(
    st.lists(
        st.tuples(
            st.text("abcdefgh ", min_size=3, max_size=30),
            st.floats(0.0, 5.0),
            st.sampled_from(["success", "failure", "partial_success"]),
            st.floats(0.0, 60.0),
        ),
        min_size=1,
        max_size=12,
    )
)
@settings(max_examples=60, deadline=None)
def test_no_feedback_leaves_rankings_exactly_as_they_were(
    rows: list[tuple[str, float, str, float]],
) -> None:
    cands = [
        cand(n, f"{text} deploy", lexical=lexical, outcome=outcome, age_days=age)
        for n, (text, lexical, outcome, age) in enumerate(rows, 1)
    ]
    baseline = _rank(cands, None, weight_usefulness=0.0)
    for usage in (None, {}, {uuid.UUID(int=10_000): EpisodeUsage(uses=3, success=3.0)}):
        ranked = _rank(cands, usage)
        assert [(r.candidate.episode_id, r.components.total) for r in ranked] == [
            (r.candidate.episode_id, r.components.total) for r in baseline
        ]
        assert all(r.components.usefulness == 0.5 and r.components.uses == 0 for r in ranked)


def test_an_episode_that_keeps_helping_rises_above_an_equal_one() -> None:
    before = _rank(_pair(), None)
    assert [r.candidate.episode_id.int for r in before] == [1, 2]  # tied: by id
    assert before[0].components.total == before[1].components.total
    after = _rank(_pair(), {uuid.UUID(int=2): EpisodeUsage(uses=3, success=3.0)})
    assert [r.candidate.episode_id.int for r in after] == [2, 1]
    top = after[0].components
    assert (top.uses, top.usefulness) == (3, pytest.approx(5 / 7))
    # the term: weight x (2 x usefulness - 1) x relevance, on top of the unchanged total
    gain = 0.2 * (2 * 5 / 7 - 1) * top.relevance
    assert top.total == pytest.approx(before[0].components.total + gain)


def test_an_episode_used_by_failed_tasks_sinks_and_weight_zero_turns_it_off() -> None:
    usage = {uuid.UUID(int=1): EpisodeUsage(uses=4, success=0.0)}
    assert [r.candidate.episode_id.int for r in _rank(_pair(), usage)] == [2, 1]
    off = _rank(_pair(), usage, weight_usefulness=0.0)
    assert [r.candidate.episode_id.int for r in off] == [1, 2]


def test_usefulness_does_not_lift_an_unrelated_episode() -> None:
    """The term scales with relevance: feedback on an episode of another task cannot carry it
    over the episode of this one."""
    cands = [
        cand(1, "deploy the billing service with helm", lexical=5.0),
        cand(2, "rename a css class in the style sheet", lexical=0.1),
    ]
    usage = {uuid.UUID(int=2): EpisodeUsage(uses=50, success=50.0, helpful=50)}
    assert [r.candidate.episode_id.int for r in _rank(cands, usage)] == [1, 2]
