"""Pattern and heuristic extractors on small hand-made episodes."""

from __future__ import annotations

import pytest

from self_learning_memory import (
    ContextPattern,
    DecisionPoint,
    ErrorRecovery,
    ExtractionConfig,
    FailureOutcome,
    PartialSuccessOutcome,
    TaskContext,
    ToolSequence,
)
from self_learning_memory.learning.extractors import (
    extract_heuristics,
    extract_patterns,
    is_decision_action,
)
from self_learning_memory.learning.extractors.context import (
    context_features,
    extract_context_pattern,
)
from self_learning_memory.learning.extractors.decision_point import extract_decision_points
from self_learning_memory.learning.extractors.error_recovery import extract_error_recovery
from self_learning_memory.learning.extractors.tool_sequence import extract_tool_sequence

from .builders import episode, err, ok, success, timeout

CFG = ExtractionConfig()


# -- tool sequences --------------------------------------------------------------------------
def test_tool_sequence_of_a_clean_success() -> None:
    ep = episode(
        [ok(1, "read", latency_ms=10), ok(2, "edit", latency_ms=20), ok(3, "test", latency_ms=60)],
        success(),
    )
    seq = extract_tool_sequence(ep, CFG)
    assert isinstance(seq, ToolSequence)
    assert seq.tools == ["read", "edit", "test"]
    assert seq.success_rate == 1.0
    assert seq.avg_latency == pytest.approx(30.0)
    assert seq.context == ep.context
    assert seq.last_seen_episode == ep.episode_id
    assert seq.occurrence_count == 1


def test_tool_sequence_is_cut_to_max_length_and_scored_by_outcome() -> None:
    steps = [ok(i, f"tool{i}") for i in range(1, 9)]
    seq = extract_tool_sequence(episode(steps, FailureOutcome(reason="x")), CFG)
    assert seq is not None
    assert seq.tools == [f"tool{i}" for i in range(1, 6)]
    assert seq.success_rate == 0.0
    short = extract_tool_sequence(
        episode(steps, success()), ExtractionConfig(max_sequence_length=2)
    )
    assert short is not None
    assert short.tools == ["tool1", "tool2"]
    partial = PartialSuccessOutcome(verdict="v", completed=["a", "b", "c"], failed=["d"])
    assert extract_tool_sequence(episode(steps, partial), CFG).success_rate == 0.75  # type: ignore[union-attr]


def test_no_tool_sequence_from_messy_running_or_empty_episodes() -> None:
    messy = [ok(1, "a"), err(2, "b"), err(3, "c")]  # 33 % < 70 %
    assert extract_tool_sequence(episode(messy, success()), CFG) is None
    assert extract_tool_sequence(episode([ok(1, "a")], None), CFG) is None
    assert extract_tool_sequence(episode([], success()), CFG) is None


# -- decision points -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action",
    [
        "check the schema",
        "Verify the migration ran",
        "if the cache is warm, skip the rebuild",
        "decide whether to retry",
        "ensure the port is free",
        "Is the service healthy?",
        "should we bump the version",
        "validates input (VALIDATE)",
    ],
)
def test_decision_words_match_as_whole_words(action: str) -> None:
    assert is_decision_action(action)


@pytest.mark.parametrize(
    "action",
    [
        "verifying the build",  # "if" inside a word
        "modify the config file",
        "classify the tickets",
        "run this analysis",  # the reference system matched "is" in "this" and "analysis"
        "the port is free",  # "is" only counts as an opening question word
        "spec-iffy whenever checked",
        "rechecking",
        "",
    ],
)
def test_substrings_do_not_count_as_decisions(action: str) -> None:
    assert not is_decision_action(action)


def test_decision_points_one_per_distinct_action_and_tool() -> None:
    steps = [
        ok(1, "schema", "Check the schema", latency_ms=500),
        ok(2, "schema", "check the schema"),  # same action (case folded) and tool
        ok(3, "edit", "modify the handler"),  # not a decision
        ok(4, "pytest", "verify the tests pass"),
    ]
    points = extract_decision_points(episode(steps, success()), CFG)
    assert [(p.condition, p.action) for p in points] == [
        ("Check the schema", "schema"),
        ("verify the tests pass", "pytest"),
    ]
    first = points[0]
    assert isinstance(first, DecisionPoint)
    assert first.outcome_stats.model_dump() == {
        "success_count": 1,
        "failure_count": 0,
        "total_count": 1,
        "avg_duration_secs": 0.5,
    }


def test_decision_points_of_a_failure_count_a_failure_and_messy_episodes_give_none() -> None:
    steps = [ok(1, "schema", "check the schema")]
    [point] = extract_decision_points(episode(steps, FailureOutcome(reason="x")), CFG)
    assert (point.outcome_stats.success_count, point.outcome_stats.failure_count) == (0, 1)
    messy = [ok(1, "a", "check x"), err(2, "b"), err(3, "c")]
    assert extract_decision_points(episode(messy, success()), CFG) == []
    assert extract_decision_points(episode(steps, None), CFG) == []


# -- error recovery --------------------------------------------------------------------------
def test_error_recovery_takes_the_first_error_and_every_recovery() -> None:
    steps = [
        err(1, "pip", "No module named 'x'", action="install deps"),
        ok(2, "pip", "install --user x"),
        timeout(3, "curl"),
        ok(4, "curl", "retry with a longer timeout"),
        ok(5, "pytest"),
    ]
    rec = extract_error_recovery(episode(steps, success()), CFG)
    assert isinstance(rec, ErrorRecovery)
    assert rec.error_type == "No module named 'x'"
    assert rec.recovery_steps == ["pip: install --user x", "curl: retry with a longer timeout"]
    assert rec.success_rate == 1.0


def test_error_recovery_names_timeouts_and_missing_results() -> None:
    rec = extract_error_recovery(episode([timeout(1, "curl"), ok(2, "curl")], success()), CFG)
    assert rec is not None
    assert rec.error_type == "Timeout"
    none = ok(1, "x").model_copy(update={"result": None})
    rec = extract_error_recovery(episode([none, ok(2, "y")], success()), CFG)
    assert rec is not None
    assert rec.error_type == "Unknown error"


def test_no_error_recovery_without_a_recovery_or_below_threshold() -> None:
    assert extract_error_recovery(episode([ok(1, "a"), ok(2, "b")], success()), CFG) is None
    assert extract_error_recovery(episode([ok(1, "a"), err(2, "b")], success()), CFG) is None
    mostly_failed = [err(1, "a"), err(2, "a"), err(3, "a"), err(4, "a"), ok(5, "b")]  # 20 %
    assert extract_error_recovery(episode(mostly_failed, success()), CFG) is None
    assert extract_error_recovery(episode([err(1, "a"), ok(2, "b")], None), CFG) is None


# -- context patterns ------------------------------------------------------------------------
def test_context_pattern_counts_failures_too() -> None:
    ctx = TaskContext(language="rust", framework="axum", domain="web-api", complexity="complex")
    assert context_features(ctx) == [
        "language:rust",
        "framework:axum",
        "domain:web-api",
        "complexity:complex",
    ]
    ep = episode([ok(1, "cargo")], FailureOutcome(reason="x"), context=ctx)
    pattern = extract_context_pattern(ep)
    assert isinstance(pattern, ContextPattern)
    assert pattern.context_features == context_features(ctx)
    assert pattern.recommended_approach == "code_generation"
    assert pattern.evidence == [ep.episode_id]
    assert pattern.success_rate == 0.0
    assert context_features(TaskContext()) == ["domain:general", "complexity:moderate"]
    assert extract_context_pattern(episode([], None)) is None


# -- heuristics ------------------------------------------------------------------------------
def test_heuristics_after_a_decision_and_after_a_recovery() -> None:
    steps = [
        ok(1, "schema", "check the request schema"),
        ok(2, "pytest", "run the tests"),
        err(3, "pip", "No module named 'x'"),
        ok(4, "pip", "install --user x"),
    ]
    found = extract_heuristics(episode(steps, success()), CFG)
    assert [(h.condition, h.action) for h in found] == [
        (
            "In web-api domain, using python, check the request schema",
            "Use pytest to run the tests",
        ),
        (
            "In web-api domain, using python, when 'pip' fails with: No module named 'x'",
            "Recover with pip: install --user x",
        ),
    ]
    for h in found:
        assert h.domain == "web-api"
        assert h.evidence.sample_size == 1
        assert h.evidence.success_rate == 1.0
        assert h.confidence == 1.0


def test_heuristic_of_a_last_decision_step_and_of_a_failure() -> None:
    ep = episode([ok(1, "lint", "verify style")], FailureOutcome(reason="x"))
    [h] = extract_heuristics(ep, CFG)
    assert h.action == "Apply lint"
    assert (h.evidence.success_rate, h.confidence) == (0.0, 0.0)
    assert extract_heuristics(episode([], success()), CFG) == []


# -- all together ----------------------------------------------------------------------------
def test_extract_patterns_is_ordered_and_unique_by_key() -> None:
    steps = [
        ok(1, "schema", "check the schema"),
        err(2, "pip", "boom"),
        ok(3, "pip", "install"),
        ok(4, "pytest", "run"),
        ok(5, "pytest", "run"),
    ]
    ep = episode(steps, success())
    found = extract_patterns(ep, CFG)
    assert [p.type for p in found] == [
        "tool_sequence",
        "decision_point",
        "error_recovery",
        "context_pattern",
    ]
    keys = [p.similarity_key() for p in found]
    assert len(keys) == len(set(keys))
    volatile = {"id", "created_at", "updated_at"}
    again = extract_patterns(ep, CFG)
    assert [p.model_dump(exclude=volatile) for p in again] == [
        p.model_dump(exclude=volatile) for p in found
    ]
