"""Hypothesis strategies that build valid instances of every domain model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from self_learning_memory import (
    ComplexityLevel,
    ContextPattern,
    DecisionPoint,
    Episode,
    ErrorRecovery,
    ErrorResult,
    Evidence,
    ExecutionStep,
    FailureOutcome,
    Heuristic,
    OutcomeStats,
    PartialSuccessOutcome,
    Reflection,
    RewardScore,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
    TimeoutResult,
    ToolSequence,
)

# Printable text without surrogates (they cannot be encoded as UTF-8) or NUL.
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=24,
)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
unit_float = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
times = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | text
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=8,
)
str_dicts = st.dictionaries(words, text, max_size=3)

contexts = st.builds(
    TaskContext,
    language=st.none() | words,
    framework=st.none() | words,
    complexity=st.sampled_from(ComplexityLevel),
    domain=words,
    tags=st.lists(words, max_size=3),
)
results = st.one_of(
    st.builds(SuccessResult, output=text),
    st.builds(ErrorResult, message=text),
    st.builds(TimeoutResult),
)
outcomes = st.one_of(
    st.builds(SuccessOutcome, verdict=text, artifacts=st.lists(text, max_size=4)),
    st.builds(
        PartialSuccessOutcome,
        verdict=text,
        completed=st.lists(text, max_size=4),
        failed=st.lists(text, max_size=4),
    ),
    st.builds(FailureOutcome, reason=text, error_details=st.none() | text),
)
rewards = st.builds(
    RewardScore,
    total=finite,
    base=finite,
    efficiency=finite,
    complexity_bonus=finite,
    quality_multiplier=finite,
    learning_bonus=finite,
)
reflections = st.builds(
    Reflection,
    successes=st.lists(text, max_size=5),
    improvements=st.lists(text, max_size=5),
    insights=st.lists(text, max_size=5),
    generated_at=times,
)


def step(number: int) -> st.SearchStrategy[ExecutionStep]:
    return st.builds(
        ExecutionStep,
        step_number=st.just(number),
        timestamp=times,
        tool=words,
        action=text,
        parameters=st.dictionaries(words, json_values, max_size=3),
        result=st.none() | results,
        latency_ms=st.integers(0, 10**7),
        tokens_used=st.none() | st.integers(0, 10**6),
        metadata=str_dicts,
    )


@st.composite
def step_lists(draw: st.DrawFn, max_size: int = 6) -> list[ExecutionStep]:
    n = draw(st.integers(0, max_size))
    return [draw(step(i + 1)) for i in range(n)]


@st.composite
def episodes(draw: st.DrawFn, complete: bool | None = None) -> Episode:
    """Any valid episode; ``complete`` forces it to be finished (True) or running (False)."""
    start = draw(times)
    done = draw(st.booleans()) if complete is None else complete
    end = start + draw(st.timedeltas(timedelta(0), timedelta(hours=3))) if done else None
    return Episode(
        episode_id=draw(st.uuids(version=4)),
        task_type=draw(st.sampled_from(TaskType)),
        task_description=draw(text),
        context=draw(contexts),
        start_time=start,
        end_time=end,
        steps=draw(step_lists()),
        outcome=draw(outcomes) if done else None,
        reward=draw(st.none() | rewards),
        reflection=draw(st.none() | reflections),
        patterns=draw(st.lists(st.uuids(), max_size=3)),
        heuristics=draw(st.lists(st.uuids(), max_size=3)),
        metadata=draw(str_dicts),
    )


outcome_stats = st.builds(
    OutcomeStats,
    success_count=st.integers(0, 1000),
    failure_count=st.integers(0, 1000),
    total_count=st.integers(0, 2000),
    avg_duration_secs=st.floats(0, 1e6),
)
evidence = st.builds(
    Evidence,
    episode_ids=st.lists(st.uuids(), max_size=4),
    success_rate=unit_float,
    sample_size=st.integers(0, 1000),
)
_pattern_common = {
    "id": st.uuids(),
    "occurrence_count": st.integers(1, 1000),
    "created_at": times,
    "updated_at": times,
}
tool_sequences = st.builds(
    ToolSequence,
    tools=st.lists(words, min_size=1, max_size=5),
    context=contexts,
    success_rate=unit_float,
    avg_latency=st.floats(0, 1e7),
    last_seen_episode=st.none() | st.uuids(),
    **_pattern_common,
)
decision_points = st.builds(
    DecisionPoint,
    condition=text,
    action=words,
    outcome_stats=outcome_stats,
    context=contexts,
    **_pattern_common,
)
error_recoveries = st.builds(
    ErrorRecovery,
    error_type=text,
    recovery_steps=st.lists(text, min_size=1, max_size=3),
    success_rate=unit_float,
    context=contexts,
    **_pattern_common,
)
context_patterns = st.builds(
    ContextPattern,
    context_features=st.lists(words, min_size=1, max_size=4),
    recommended_approach=st.sampled_from([t.value for t in TaskType]),
    evidence=st.lists(st.uuids(), max_size=4),
    success_rate=unit_float,
    **_pattern_common,
)
patterns = st.one_of(tool_sequences, decision_points, error_recoveries, context_patterns)
heuristics = st.builds(
    Heuristic,
    heuristic_id=st.uuids(),
    condition=text,
    action=text,
    confidence=st.floats(0, 40),
    evidence=evidence,
    domain=words,
    created_at=times,
    updated_at=times,
)
