"""Degraded reads against a real SQLite primary that refuses every call on command
(``flaky.FlakySQLite``): what is answered locally, how it is marked, what still raises."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from self_learning_memory import (
    EpisodeFilters,
    ExecutionStep,
    FailureOutcome,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.errors import CircuitOpenError, StorageUnavailableError
from self_learning_memory.resilience.degraded import NO_INDEX_NOTE
from self_learning_memory.resilience.resilient import ResilientStorage, resilient_from_config
from self_learning_memory.storage.lmdb_cache import EpisodeCache

from .flaky import FlakySQLite

CTX = TaskContext(domain="infra", language="go")


def open_memory(data_dir: Path) -> tuple[SelfLearningMemory, FlakySQLite, ResilientStorage]:
    cfg = MemoryConfig.model_validate(
        {
            "resilience": {
                "retry_base_ms": 1,
                "retry_max_delay_ms": 5,
                "retry_jitter_ms": 1,
                "retry_budget_ms": 200,
                "breaker_recovery_s": 60,  # stays open for the whole test once opened
                "replay_interval_s": 0.05,
            }
        }
    )
    flaky = FlakySQLite(data_dir / "memory.db")
    cache = EpisodeCache(data_dir / "cache")
    wrapped = resilient_from_config(flaky, cfg.resilience, data_dir, cache)
    assert isinstance(wrapped, ResilientStorage)
    return SelfLearningMemory(wrapped, config=cfg, cache=cache, data_dir=data_dir), flaky, wrapped


async def record(
    memory: SelfLearningMemory, description: str, *, failed: bool = False
) -> uuid.UUID:
    eid = await memory.start_episode(description, CTX, task_type="debugging")
    for n, tool in enumerate(["kubectl", "grep", "kubectl"], start=1):
        action = "check the pod status" if n == 1 else f"run {n}"  # a decision: a heuristic
        step = ExecutionStep(step_number=n, tool=tool, action=action, result=SuccessResult())
        await memory.log_step(eid, step)
    outcome = (
        FailureOutcome(reason="the pod kept crashing", error_details="OOMKilled")
        if failed
        else SuccessOutcome(verdict="fixed")
    )
    await memory.complete_episode(eid, outcome)
    return eid


async def open_breaker(memory: SelfLearningMemory, wrapped: ResilientStorage) -> None:
    for _ in range(5):
        if wrapped.breaker.current_state == "open":
            break
        await memory.stats()  # each failed attempt counts; the answer is local meanwhile
    assert wrapped.breaker.current_state == "open"


async def test_with_the_breaker_open_retrieval_filters_and_marks_local_answers(
    tmp_path: Path,
) -> None:
    memory, flaky, wrapped = open_memory(tmp_path)
    async with memory:
        oom = await record(memory, "debug the crashing pod with oom errors", failed=True)
        dns = await record(memory, "debug dns resolution inside the cluster")
        gone = await record(memory, "debug the crashing ingress pod")
        flaky.down = True
        await open_breaker(memory, wrapped)
        await memory.delete_episode(gone)  # queued: never served again

        found = await memory.retrieve_relevant_context("crashing pod", CTX)
        assert found[0].episode.episode_id == oom
        assert gone not in {r.episode.episode_id for r in found}
        assert all("degraded:cache" in r.provenance for r in found)

        failures = await memory.retrieve_relevant_context(
            "debug", CTX, filters=EpisodeFilters(outcome="failure")
        )
        assert [r.episode.episode_id for r in failures] == [oom]
        by_domain = await memory.retrieve_relevant_context("nothing in common", CTX)
        assert {r.episode.episode_id for r in by_domain} == {oom, dns}  # context candidates
        assert (await memory.check_known_failures("crashing pod", CTX)).failures[
            0
        ].episode.episode_id == oom

        # no synchronizer run yet: no index, an empty answer with a note, not an error
        assert await memory.retrieve_relevant_patterns(CTX) == []
        notes = (await wrapped.resilience_status())["degraded_reads"]["notes"]
        assert notes["pattern_candidates"] == NO_INDEX_NOTE

        stats = await memory.stats()
        assert stats.completed == 2
        assert stats.outcomes == {"failure": 1, "success": 1}
        assert stats.resilience is not None
        assert stats.resilience["degraded"] is True

        with pytest.raises(CircuitOpenError):  # not answered locally: listing needs the primary
            await memory.list_episodes()
        flaky.down = False


async def test_index_serves_patterns_and_heuristics(tmp_path: Path) -> None:
    memory, flaky, wrapped = open_memory(tmp_path)
    async with memory:
        for i in range(3):
            await record(memory, f"restart the deployment {i}")
        assert memory.synchronizer is not None
        await memory.synchronizer.sync_all_recent()
        online = [m.pattern.id for m in await memory.retrieve_relevant_patterns(CTX)]
        online_h = [m.heuristic.heuristic_id for m in await memory.retrieve_heuristics(CTX, 5)]
        assert online
        assert online_h
        flaky.down = True
        assert [m.pattern.id for m in await memory.retrieve_relevant_patterns(CTX)] == online
        assert [m.heuristic.heuristic_id for m in await memory.retrieve_heuristics(CTX, 5)] == (
            online_h
        )
        notes = (await wrapped.resilience_status())["degraded_reads"]["notes"]
        assert notes["pattern_candidates"] == "degraded:pattern-index"
        assert notes["heuristic_candidates"] == "degraded:heuristic-index"
        flaky.down = False


async def test_without_a_cache_reads_still_raise(tmp_path: Path) -> None:
    flaky = FlakySQLite(tmp_path / "m.db")
    cfg = MemoryConfig.model_validate({"resilience": {"retry_budget_ms": 50, "retry_base_ms": 1}})
    wrapped = resilient_from_config(flaky, cfg.resilience, tmp_path)
    async with wrapped:
        flaky.down = True
        with pytest.raises(StorageUnavailableError):
            await wrapped.lexical_candidates(["pod"], EpisodeFilters(), 10)
        with pytest.raises(StorageUnavailableError):
            await wrapped.stats()
        flaky.down = False
