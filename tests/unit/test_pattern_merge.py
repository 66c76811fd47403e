"""Aggregation across episodes: merging the same pattern again only grows its evidence."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from self_learning_memory import (
    ContextPattern,
    DecisionPoint,
    ErrorRecovery,
    Evidence,
    Heuristic,
    OutcomeStats,
    TaskContext,
    ToolSequence,
)
from self_learning_memory.learning.merge import merge_observation, merge_patterns, record_use
from self_learning_memory.model.pattern import MAX_EVIDENCE_IDS, normalise_error
from self_learning_memory.model.usage import PatternUsage, effectiveness

from .builders import T0

SETTINGS = settings(max_examples=50, deadline=None)
CTX = TaskContext(domain="web-api", language="python")


def observation(kind: str, success: bool, latency: float = 10.0) -> Any:
    """One episode's extraction of the same pattern (same similarity key)."""
    rate = 1.0 if success else 0.0
    if kind == "tool_sequence":
        return ToolSequence(
            tools=["read", "edit", "test"], context=CTX, success_rate=rate, avg_latency=latency
        )
    if kind == "decision_point":
        return DecisionPoint(
            condition="check the schema",
            action="validator",
            context=CTX,
            outcome_stats=OutcomeStats(
                success_count=int(success),
                failure_count=int(not success),
                total_count=1,
                avg_duration_secs=latency / 1000,
            ),
        )
    if kind == "error_recovery":
        return ErrorRecovery(
            error_type="ModuleNotFoundError: no module named 'x'",
            recovery_steps=["pip: install x"],
            success_rate=rate,
            context=CTX,
        )
    return ContextPattern(
        context_features=["language:python", "domain:web-api", "complexity:moderate"],
        recommended_approach="code_generation",
        evidence=[uuid.uuid4()],
        success_rate=rate,
    )


KINDS = ["tool_sequence", "decision_point", "error_recovery", "context_pattern"]


@SETTINGS
@given(
    st.sampled_from(KINDS),
    st.lists(st.booleans(), min_size=1, max_size=30),
    st.lists(st.floats(0, 5000), min_size=30, max_size=30),
)
def test_merging_more_episodes_is_monotone_and_rates_are_exact(
    kind: str, outcomes: list[bool], latencies: list[float]
) -> None:
    stored = observation(kind, outcomes[0], latencies[0])
    first_id, created, key = stored.id, stored.created_at, stored.similarity_key()
    for i, success in enumerate(outcomes[1:], start=1):
        new = observation(kind, success, latencies[i])
        assert new.similarity_key() == key
        merged = merge_patterns(stored, new)
        assert merged.occurrence_count == stored.occurrence_count + 1
        assert merged.occurrence_count >= stored.occurrence_count
        assert merged.sample_size() >= stored.sample_size()
        assert 0.0 <= merged.rate() <= 1.0
        assert merged.id == first_id
        assert merged.created_at == created
        assert merged.similarity_key() == key
        stored = merged
    successes, total = sum(outcomes), len(outcomes)
    assert stored.occurrence_count == total
    assert stored.rate() == pytest.approx(successes / total)
    if isinstance(stored, DecisionPoint):
        stats = stored.outcome_stats
        assert (stats.success_count, stats.failure_count, stats.total_count) == (
            successes,
            total - successes,
            total,
        )
        assert stats.success_rate() == successes / total
    if isinstance(stored, ToolSequence):
        assert stored.avg_latency == pytest.approx(sum(latencies[:total]) / total)
    if isinstance(stored, ContextPattern):
        assert len(stored.evidence) == min(total, MAX_EVIDENCE_IDS)


@SETTINGS
@given(st.integers(1, 50), st.integers(1, 50), st.floats(0, 1), st.floats(0, 1))
def test_merge_weights_by_occurrence_count(na: int, nb: int, ra: float, rb: float) -> None:
    a = ToolSequence(tools=["x"], context=CTX, success_rate=ra, occurrence_count=na)
    b = ToolSequence(tools=["x"], context=CTX, success_rate=rb, occurrence_count=nb)
    merged = merge_patterns(a, b)
    assert merged.occurrence_count == na + nb
    assert merged.rate() == pytest.approx((ra * na + rb * nb) / (na + nb))
    assert min(ra, rb) - 1e-12 <= merged.rate() <= max(ra, rb) + 1e-12


def test_different_variants_do_not_merge() -> None:
    a = observation("tool_sequence", True)
    b = observation("error_recovery", False)
    assert merge_patterns(a, b) is a


def test_merge_keeps_the_newest_update_time_and_episode() -> None:
    a = observation("tool_sequence", True)
    later = T0.replace(year=2030)
    seen = uuid.uuid4()
    b = observation("tool_sequence", True).model_copy(
        update={"updated_at": later, "last_seen_episode": seen}
    )
    merged = merge_patterns(a, b)
    assert merged.updated_at == later
    assert merged.last_seen_episode == seen  # type: ignore[union-attr]


def test_similarity_keys_fold_volatile_details() -> None:
    a = ErrorRecovery(
        error_type="FileNotFoundError: /tmp/a1/x.py line 12",
        recovery_steps=["mkdir: create /tmp/a1"],
        success_rate=1.0,
        context=CTX,
    )
    b = a.model_copy(
        update={
            "error_type": "FileNotFoundError: /home/u/y.py line 99",
            "recovery_steps": ["mkdir: create /var/b2"],
        }
    )
    assert a.similarity_key() == b.similarity_key()
    other_domain = a.model_copy(update={"context": TaskContext(domain="cli")})
    assert other_domain.similarity_key() != a.similarity_key()
    assert normalise_error("Error   AT 0xDEADBEEF in 42 ms") == "error at # in # ms"


def test_confidence_is_rate_times_root_sample_size() -> None:
    p = ToolSequence(tools=["x"], context=CTX, success_rate=0.5, occurrence_count=16)
    assert p.confidence() == pytest.approx(2.0)
    empty = DecisionPoint(condition="c", action="a", outcome_stats=OutcomeStats(), context=CTX)
    assert empty.confidence() == 0.0


@SETTINGS
@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_heuristic_evidence_grows_with_every_observation(outcomes: list[bool]) -> None:
    h = Heuristic(condition="when pip fails", action="use --user")
    merged = Heuristic(condition="when pip fails", action="use --user")
    ids = []
    for i, success in enumerate(outcomes, start=1):
        before = h.evidence.sample_size
        eid = uuid.uuid4()
        ids.append(eid)
        h.update_evidence(eid, success)
        assert h.evidence.sample_size == before + 1
        assert 0.0 <= h.evidence.success_rate <= 1.0
        one = Heuristic(
            condition="when pip fails",
            action="use --user",
            evidence=Evidence(episode_ids=[eid], success_rate=float(success), sample_size=1),
        )
        merged = merged.merge(one)
        assert merged.evidence.sample_size == i
    rate = sum(outcomes) / len(outcomes)
    for result in (h, merged):
        assert result.evidence.success_rate == pytest.approx(rate)
        assert result.confidence == pytest.approx(rate * len(outcomes) ** 0.5)
        assert result.evidence.episode_ids == ids[-MAX_EVIDENCE_IDS:]


def test_an_observation_merges_the_pattern_and_counts_one_application() -> None:
    stored = observation("tool_sequence", True)
    usage = PatternUsage(application_count=3, success_count=2, failure_count=1, created_at=T0)
    later = T0.replace(year=2026)
    merged = merge_observation(
        stored, usage, observation("tool_sequence", False), success=False, now=later
    )
    assert merged.pattern.occurrence_count == 2
    assert merged.pattern.rate() == pytest.approx(0.5)
    assert merged.pattern.id == stored.id
    assert (merged.usage.application_count, merged.usage.success_count) == (4, 2)
    assert merged.usage.failure_count == 2
    assert merged.usage.last_applied == later
    assert merged.usage.effectiveness_score == pytest.approx(effectiveness(merged.usage, later))
    assert usage.application_count == 3  # the stored usage is not changed in place


def test_a_retrieval_counts_without_touching_applications() -> None:
    usage = PatternUsage(application_count=2, success_count=2, created_at=T0)
    later = T0.replace(year=2026)
    used = record_use(usage, applied=False, success=False, now=later)
    assert (used.retrieval_count, used.application_count, used.failure_count) == (1, 2, 0)
    assert used.last_retrieved == later
    assert used.last_applied is None
    assert used.effectiveness_score == pytest.approx(effectiveness(used, later))
