"""Serialisation round trips of every domain model: pydantic JSON, the SQL codec, the cache codec."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter

from self_learning_memory import (
    DataIntegrityError,
    Episode,
    ExecutionStep,
    Heuristic,
    Pattern,
    SuccessResult,
    TaskContext,
    TaskType,
)
from self_learning_memory.model.episode import ExecutionResult, TaskOutcome
from self_learning_memory.storage import codec, lmdb_cache

from . import strategies as s

SETTINGS = settings(max_examples=50, deadline=None)
PATTERN = TypeAdapter[Any](Pattern)
OUTCOME = TypeAdapter[Any](TaskOutcome)
RESULT = TypeAdapter[Any](ExecutionResult)


def json_round_trip(model: BaseModel) -> BaseModel:
    return type(model).model_validate_json(model.model_dump_json())


def episode_row(ep: Episode) -> tuple[Any, ...]:
    """The episode's columns as the SQLite backend writes them (EPISODE_COLUMNS order)."""
    return (
        str(ep.episode_id),
        ep.task_type.value,
        ep.task_description,
        ep.context.model_dump_json(),
        codec.to_us(ep.start_time),
        None if ep.end_time is None else codec.to_us(ep.end_time),
        None if ep.outcome is None else ep.outcome.model_dump_json(),
        None if ep.reward is None else ep.reward.model_dump_json(),
        None if ep.reflection is None else ep.reflection.model_dump_json(),
        codec.dump_json([str(p) for p in ep.patterns]),
        codec.dump_json([str(h) for h in ep.heuristics]),
        codec.dump_json(ep.metadata),
        ep.agent,
    )


def test_episode_row_matches_the_declared_columns() -> None:
    ep = Episode(task_type="testing", task_description="x")
    assert len(episode_row(ep)) == len(codec.EPISODE_COLUMNS.split(","))
    assert len(codec.step_values(ep.episode_id, ExecutionStep(step_number=1, tool="t", action="a")))
    assert len(codec.STEP_COLUMNS.split(",")) == 10


# -- pydantic JSON ---------------------------------------------------------------------------
@SETTINGS
@given(s.episodes())
def test_episode_json_round_trip(ep: Episode) -> None:
    back = json_round_trip(ep)
    assert back == ep
    assert back.model_dump_json() == ep.model_dump_json()


@SETTINGS
@given(s.step(3))
def test_step_json_round_trip(step: ExecutionStep) -> None:
    assert json_round_trip(step) == step


@SETTINGS
@given(s.results)
def test_result_json_round_trip_keeps_its_variant(result: Any) -> None:
    back = RESULT.validate_json(RESULT.dump_json(result))
    assert back == result
    assert type(back) is type(result)
    assert json.loads(RESULT.dump_json(result))["type"] in {"success", "error", "timeout"}


@SETTINGS
@given(s.outcomes)
def test_outcome_json_round_trip_keeps_its_variant(outcome: Any) -> None:
    back = OUTCOME.validate_json(OUTCOME.dump_json(outcome))
    assert back == outcome
    assert type(back) is type(outcome)


@SETTINGS
@given(st.one_of(s.contexts, s.rewards, s.reflections, s.outcome_stats, s.evidence, s.heuristics))
def test_small_models_json_round_trip(model: BaseModel) -> None:
    assert json_round_trip(model) == model


@SETTINGS
@given(s.patterns)
def test_pattern_json_round_trip_through_the_union(pattern: Any) -> None:
    data = pattern.model_dump_json()
    back = PATTERN.validate_json(data)
    assert back == pattern
    assert type(back) is type(pattern)
    assert json.loads(data)["type"] == pattern.type


def test_wire_tags_and_enum_values() -> None:
    assert RESULT.dump_python(SuccessResult(output="ok"), mode="json") == {
        "type": "success",
        "output": "ok",
    }
    assert json.loads(Episode(task_type="code_generation", task_description="d").model_dump_json())[
        "task_type"
    ] == ("code_generation")
    assert TaskContext().model_dump(mode="json") == {
        "language": None,
        "framework": None,
        "complexity": "moderate",
        "domain": "general",
        "tags": [],
    }
    assert {t.value for t in TaskType} == {
        "code_generation",
        "debugging",
        "refactoring",
        "testing",
        "analysis",
        "documentation",
        "other",
    }


def test_naive_and_offset_times_become_utc() -> None:
    naive = datetime(2024, 5, 1, 12, 0, 0, 123456)
    step = ExecutionStep(step_number=1, tool="t", action="a", timestamp=naive)
    assert step.timestamp == naive.replace(tzinfo=UTC)
    plus2 = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    ep = Episode(task_type="other", task_description="d", start_time=plus2)
    assert ep.start_time.utcoffset() == timedelta(0)
    assert ep.start_time == plus2


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValueError, match="extra"):
        ExecutionStep.model_validate({"step_number": 1, "tool": "t", "action": "a", "x": 1})


# -- the SQL codec ---------------------------------------------------------------------------
@SETTINGS
@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1900, 1, 1)))
def test_microsecond_timestamps_round_trip(moment: datetime) -> None:
    assert codec.from_us(codec.to_us(moment)) == moment


@SETTINGS
@given(s.step(4), st.uuids())
def test_step_codec_round_trip(step: ExecutionStep, episode_id: uuid.UUID) -> None:
    row = codec.step_values(episode_id, step)
    assert row[0] == str(episode_id)
    assert codec.step_from_row(row) == step


@SETTINGS
@given(s.episodes())
def test_episode_codec_round_trip(ep: Episode) -> None:
    steps = [codec.step_from_row(codec.step_values(ep.episode_id, st_)) for st_ in ep.steps]
    back = codec.episode_from_row(episode_row(ep), steps)
    assert back == ep


@SETTINGS
@given(s.patterns)
def test_pattern_codec_round_trip(pattern: Any) -> None:
    assert codec.pattern_from_json(pattern.model_dump_json()) == pattern


@SETTINGS
@given(s.heuristics)
def test_heuristic_codec_round_trip(heuristic: Heuristic) -> None:
    assert codec.heuristic_from_json(heuristic.model_dump_json()) == heuristic


def test_corrupt_rows_raise_data_integrity_errors() -> None:
    ep = Episode(task_type="testing", task_description="d")
    row = list(episode_row(ep))
    row[3] = "{not json"
    with pytest.raises(DataIntegrityError, match=str(ep.episode_id)):
        codec.episode_from_row(tuple(row), [])
    row = list(episode_row(ep))
    row[1] = "juggling"  # not a task type
    with pytest.raises(DataIntegrityError):
        codec.episode_from_row(tuple(row), [])
    step_row = list(
        codec.step_values(ep.episode_id, ExecutionStep(step_number=1, tool="t", action="a"))
    )
    step_row[6] = '{"type": "exploded"}'
    with pytest.raises(DataIntegrityError, match="step"):
        codec.step_from_row(tuple(step_row))
    step_row[6] = None
    step_row[5] = "[1,"
    with pytest.raises(DataIntegrityError, match="not valid JSON"):
        codec.step_from_row(tuple(step_row))
    with pytest.raises(DataIntegrityError, match="pattern"):
        codec.pattern_from_json('{"type": "custom"}')
    with pytest.raises(DataIntegrityError, match="heuristic"):
        codec.heuristic_from_json('{"condition": 3}')


# -- the cache codec -------------------------------------------------------------------------
@SETTINGS
@given(s.episodes())
def test_cache_codec_round_trip(ep: Episode) -> None:
    data = lmdb_cache.encode(ep)
    assert lmdb_cache.decode(data) == ep


@SETTINGS
@given(s.episodes(complete=True), st.data())
def test_cache_codec_never_returns_a_corrupted_entry(ep: Episode, data: st.DataObject) -> None:
    raw = bytearray(lmdb_cache.encode(ep))
    index = data.draw(st.integers(0, len(raw) - 1))
    flip = data.draw(st.integers(1, 255))
    raw[index] ^= flip
    assert lmdb_cache.decode(bytes(raw)) is None


def test_cache_codec_rejects_short_and_foreign_bytes() -> None:
    assert lmdb_cache.decode(b"") is None
    assert lmdb_cache.decode(b"SLM") is None
    payload = Episode(task_type="other", task_description="d").model_dump_json().encode()
    assert lmdb_cache.decode(b"XXXX\x00\x00\x00\x00" + payload) is None
