"""Reflection (reference section 3.2): deterministic, bounded, and the templates it promises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from self_learning_memory import Episode, FailureOutcome, PartialSuccessOutcome
from self_learning_memory.learning.reflection import MAX_ITEMS, generate_reflection

from . import strategies as s
from .builders import T0, episode, err, ok, success

SETTINGS = settings(max_examples=50, deadline=None)


@SETTINGS
@given(s.episodes(), st.integers(0, 10))
def test_same_episode_gives_identical_reflection(ep: Episode, pattern_count: int) -> None:
    first = generate_reflection(ep, pattern_count)
    again = generate_reflection(ep, pattern_count)
    copy = generate_reflection(Episode.model_validate_json(ep.model_dump_json()), pattern_count)
    assert first == again == copy
    assert first.model_dump_json() == copy.model_dump_json()
    assert first.generated_at == (ep.end_time or ep.start_time)
    for items in (first.successes, first.improvements, first.insights):
        assert len(items) <= MAX_ITEMS
        assert all(isinstance(i, str) and i for i in items)


def test_successful_episode_reflection() -> None:
    ep = episode([ok(1, "read"), ok(2, "edit"), ok(3, "test")], success("all green", ["a.py"]))
    r = generate_reflection(ep, pattern_count=2)
    assert r.successes[:5] == [
        "Successfully completed task: all green",
        "Generated 1 artifact(s)",
        "High execution success rate: 100.0% (3/3)",
        "Effective tool sequence: read → edit → test",
        "Efficient execution: completed in 0 seconds",
    ]
    assert r.improvements == []
    assert r.insights[0] == "All steps executed successfully - approach is reliable"
    assert "Task in web-api domain with Moderate complexity" in r.insights
    assert "Extracted 2 reusable pattern(s)" in r.insights
    assert r.generated_at == ep.end_time


def test_failed_episode_reflection_names_what_went_wrong() -> None:
    steps = [err(1, "pip", "no module"), err(2, "pip", "no module"), ok(3, "pytest")]
    ep = episode(steps, FailureOutcome(reason="tests red"), seconds=400)
    r = generate_reflection(ep)
    assert r.improvements == [
        "Task failed: tests red",
        "Reduce failed execution steps (current: 2)",
        "Tool 'pip' failed 2 times - needs attention",
        "Optimize execution time (took 400 seconds)",
        "Repeated error (2 times): no module",
    ]
    assert "Successfully recovered from error using 'pytest'" in r.insights


def test_partial_without_failures_gets_the_generic_improvement() -> None:
    ep = episode([ok(1, "a")], PartialSuccessOutcome(verdict="most", completed=["x"]))
    r = generate_reflection(ep)
    assert r.successes[:2] == ["Partial success: most", "Completed 1 subtask(s)"]
    assert r.improvements == ["Review and refine approach for better outcomes"]


def test_running_episode_uses_start_time() -> None:
    ep = episode([ok(1, "a")], None)
    assert generate_reflection(ep).generated_at == T0
