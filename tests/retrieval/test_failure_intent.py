"""Failure intent: "what went wrong last time" puts the attempts that met trouble first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from self_learning_memory import RetrievalConfig, TaskContext, TaskType
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.retrieval.intent import asks_about_failure
from self_learning_memory.retrieval.ranking import rank_candidates
from self_learning_memory.retrieval.tokens import query_terms

NOW = datetime(2025, 6, 1, tzinfo=UTC)
CTX = TaskContext(domain="embedded", language="c")


def cand(n: int, outcome: str, reward: float) -> EpisodeCandidate:
    return EpisodeCandidate(
        episode_id=uuid.UUID(int=n),
        task_description="flash the firmware image to the board",
        task_type=TaskType.OTHER,
        context=CTX,
        outcome_type=outcome,
        reward_total=reward,
        end_time=NOW - timedelta(days=1),
        tools=("openocd",),
        lexical=1.0,
        sources=("lexical",),
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("what went wrong when we flashed the firmware", True),
        ("flashing failed last time, why", True),
        ("the build broke before, remind me", True),
        ("flash the firmware to the board", False),
        ("the page crashes on submit", False),  # a symptom: asks for the fix
        ("what did we do last time to flash it", False),  # a look back without trouble
    ],
)
def test_asks_about_failure(query: str, expected: bool) -> None:
    assert asks_about_failure(query) is expected


@pytest.mark.parametrize("setting", ["invert", "neutral", "off"])
def test_failure_intent_orders_outcomes(setting: str) -> None:
    cands = [cand(1, "success", 2.0), cand(2, "failure", 0.0)]
    config = RetrievalConfig(failure_intent=setting, mmr_lambda=1.0, duplicate_threshold=1.0)  # type: ignore[arg-type]
    query = "flashing the firmware failed last time, what went wrong"
    ranked = rank_candidates(cands, query_terms(query), CTX, None, config, NOW, 10, query=query)
    first = ranked[0].candidate.outcome_type
    if setting == "invert":
        assert first == "failure"
        assert ranked[0].components.outcome == pytest.approx(1.0)
    elif setting == "off":
        assert first == "success"
    else:  # neutral: the outcome no longer counts, so the two tie on everything else
        assert ranked[0].components.total == pytest.approx(ranked[1].components.total)


def test_plain_query_keeps_success_first() -> None:
    cands = [cand(1, "success", 2.0), cand(2, "failure", 0.0)]
    config = RetrievalConfig(mmr_lambda=1.0, duplicate_threshold=1.0)
    query = "flash the firmware to the board"
    ranked = rank_candidates(cands, query_terms(query), CTX, None, config, NOW, 10, query=query)
    assert ranked[0].candidate.outcome_type == "success"
