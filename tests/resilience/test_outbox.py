"""The outbox through the whole memory: writes acknowledged while the primary is down, reads
from the local view and the cache, ordered exactly-once replay, restart, dead letters. The
primary is a real SQLite store that refuses every call on command (``flaky.FlakySQLite``)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
)
from self_learning_memory.resilience.outbox import Outbox
from self_learning_memory.resilience.resilient import ResilientStorage, resilient_from_config
from self_learning_memory.storage.lmdb_cache import EpisodeCache

from .flaky import FlakySQLite


def config() -> MemoryConfig:
    return MemoryConfig.model_validate(
        {
            "resilience": {
                "retry_base_ms": 1,
                "retry_max_delay_ms": 5,
                "retry_jitter_ms": 1,
                "retry_budget_ms": 200,
                "breaker_recovery_s": 0.2,
                "replay_interval_s": 0.05,
            }
        }
    )


def open_memory(data_dir: Path) -> tuple[SelfLearningMemory, FlakySQLite, ResilientStorage]:
    cfg = config()
    flaky = FlakySQLite(data_dir / "memory.db")
    cache = EpisodeCache(data_dir / "cache")
    wrapped = resilient_from_config(flaky, cfg.resilience, data_dir, cache)
    assert isinstance(wrapped, ResilientStorage)
    memory = SelfLearningMemory(wrapped, config=cfg, cache=cache, data_dir=data_dir)
    return memory, flaky, wrapped


def step(n: int) -> ExecutionStep:
    return ExecutionStep(
        step_number=n, tool=f"tool{n % 3}", action=f"action {n}", result=SuccessResult(output="ok")
    )


async def record(memory: SelfLearningMemory, name: str, steps: int) -> uuid.UUID:
    eid = await memory.start_episode(f"task {name}: parse the config file", task_type="testing")
    for n in range(1, steps + 1):
        await memory.log_step(eid, step(n))
    await memory.complete_episode(eid, SuccessOutcome(verdict=f"{name} done"))
    return eid


async def test_writes_while_down_are_acknowledged_then_replayed_in_order(tmp_path: Path) -> None:
    memory, flaky, wrapped = open_memory(tmp_path)
    async with memory:
        before = await record(memory, "before", 2)
        open_id = await memory.start_episode("started while up", task_type="testing")
        await memory.log_step(open_id, step(1))
        await memory.flush_steps(open_id)
        flaky.down = True
        # a started episode gets steps and completes while the primary is down
        await memory.log_step(open_id, step(2))
        done_open = await memory.complete_episode(open_id, SuccessOutcome(verdict="ok"))
        assert [s.step_number for s in done_open.steps] == [1, 2]
        offline = [await record(memory, f"offline{i}", 3) for i in range(3)]
        await memory.delete_episode(before)
        status = await wrapped.resilience_status()
        assert status["outbox"]["pending"] >= 3 * 3  # create, steps, complete per episode
        # reads of queued episodes are served locally while the primary is down
        episode = await memory.get_episode(offline[0])
        assert episode.outcome is not None
        assert len(episode.steps) == 3
        assert flaky.down
        flaky.down = False
        assert await wrapped.wait_replayed(10)
    # the primary alone now has every acknowledged write, exactly once
    async with FlakySQLite(tmp_path / "memory.db") as primary:
        assert await primary.get_episode(before) is None
        for eid in [open_id, *offline]:
            stored = await primary.get_episode(eid)
            assert stored is not None
            assert stored.outcome is not None
            assert stored.reward is not None
            numbers = [s.step_number for s in stored.steps]
            assert numbers == sorted(set(numbers))
            assert len(numbers) == (2 if eid == open_id else 3)
        stats = await primary.stats()
        assert stats.episodes == 4
        assert stats.completed == 4
        assert stats.steps == 11
    assert Outbox(tmp_path / "outbox.db").path.exists()


async def test_the_outbox_survives_a_restart_and_replays_at_start(tmp_path: Path) -> None:
    memory, flaky, wrapped = open_memory(tmp_path)
    flaky.down = True
    async with memory:  # starts degraded: the primary is down from the beginning
        ids = [await record(memory, f"n{i}", 2) for i in range(3)]
        assert (await wrapped.resilience_status())["outbox"]["pending"] == 9
        health = await memory.health()
        assert health["resilience"].details["outbox"]["pending"] == 9
    # a new process, the primary still down: the queued episodes are readable from the view
    memory, flaky, wrapped = open_memory(tmp_path)
    flaky.down = True
    async with memory:
        episode = await memory.get_episode(ids[1])
        assert len(episode.steps) == 2
        flaky.down = False
        assert await wrapped.wait_replayed(10)
    async with FlakySQLite(tmp_path / "memory.db") as primary:
        stats = await primary.stats()
        assert stats.episodes == 3
        assert stats.completed == 3
        assert stats.steps == 6


async def test_replaying_an_entry_twice_changes_nothing(tmp_path: Path) -> None:
    """A crash after the primary committed an entry but before it left the outbox."""
    memory, flaky, wrapped = open_memory(tmp_path)
    async with memory:
        flaky.down = True
        eid = await record(memory, "twice", 3)
        assert wrapped.outbox is not None
        entries = wrapped.outbox.peek(100)
        flaky.down = False
        assert await wrapped.wait_replayed(10)
        assert wrapped.replayer is not None
        for entry in entries:  # again, as after a crash
            await wrapped.replayer.apply(entry)
        stored = await flaky.get_episode(eid)
        assert stored is not None
        assert len(stored.steps) == 3
        stats = await flaky.stats()
        assert stats.episodes == 1
        assert stats.steps == 3
        patterns_before = stats.pattern_occurrences
        await wrapped.replayer.apply(entries[-1])
        assert (await flaky.stats()).pattern_occurrences == patterns_before


async def test_a_refused_entry_is_dead_lettered_and_does_not_block(tmp_path: Path) -> None:
    memory, flaky, wrapped = open_memory(tmp_path)
    async with memory:
        eid = await memory.start_episode("will be deleted elsewhere", task_type="testing")
        await memory.flush_steps()
        flaky.down = True
        await memory.log_step(eid, step(1))
        await memory.flush_steps(eid)
        later = await record(memory, "later", 1)
        flaky.down = False
        await flaky.delete_episode(eid)  # another process deleted it meanwhile
        assert await wrapped.wait_replayed(10)
        status = await wrapped.resilience_status()
        assert status["outbox"]["dead_letters"] == 1
        assert wrapped.outbox is not None
        assert wrapped.outbox.dead_letters()[0]["op"] == "append_steps"
        assert (await flaky.get_episode(later)) is not None


@pytest.mark.parametrize("enabled", [None, True])
def test_embedded_sqlite_is_unwrapped_unless_asked(tmp_path: Path, enabled: bool | None) -> None:
    cfg = MemoryConfig.model_validate({"resilience": {"enabled": enabled}})
    memory = SelfLearningMemory.open(tmp_path, config=cfg)
    assert isinstance(memory.storage, ResilientStorage) == bool(enabled)
