"""The outcome orders episodes of the task asked about, not a neighbouring task's successes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from self_learning_memory import RetrievalConfig, TaskContext, TaskType
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.retrieval.ranking import rank_candidates
from self_learning_memory.retrieval.tokens import query_terms

NOW = datetime(2025, 6, 1, tzinfo=UTC)
CTX = TaskContext(domain="web-api", language="python")
QUERY = "turn away forged session tokens"


def cand(n: int, outcome: str, reward: float) -> EpisodeCandidate:
    return EpisodeCandidate(
        episode_id=uuid.UUID(int=n),
        task_description=f"task {n}",
        task_type=TaskType.CODE_GENERATION,
        context=CTX,
        outcome_type=outcome,
        reward_total=reward,
        end_time=NOW - timedelta(days=1),
        tools=("editor",),
        lexical=None,
        sources=("vector",),
    )


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def rank(gate: str, neighbour: np.ndarray) -> list[int]:
    best = cand(1, "failure", 0.0)  # the task asked about; it failed
    other = cand(2, "success", 2.5)  # another task, a little less relevant, it worked
    config = RetrievalConfig(outcome_gate=gate, mmr_lambda=1.0, duplicate_threshold=1.0)  # type: ignore[arg-type]
    ranked = rank_candidates(
        [best, other],
        query_terms(QUERY),
        CTX,
        None,
        config,
        NOW,
        10,
        {best.episode_id: 0.62, other.episode_id: 0.58},
        "vector",
        embeddings={best.episode_id: unit(1, 0, 0), other.episode_id: neighbour},
        query=QUERY,
    )
    return [r.candidate.episode_id.int for r in ranked]


def test_a_neighbouring_tasks_success_does_not_jump_over_the_best_match() -> None:
    assert rank("top_similarity", unit(0.05, 1, 0)) == [1, 2]
    assert rank("relevance", unit(0.05, 1, 0)) == [2, 1]  # the previous behaviour


def test_a_success_at_the_same_task_still_comes_first() -> None:
    assert rank("top_similarity", unit(1, 0.1, 0)) == [2, 1]
