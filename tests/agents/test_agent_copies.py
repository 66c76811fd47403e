"""The agent field and the agent executions survive every copy of a store: backup and restore
(each export format), and `storage migrate` SQLite -> PostgreSQL -> SQLite (executions in the
same order, so the streaks agree; a re-run copies none twice)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from self_learning_memory import (
    FailureOutcome,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
)
from self_learning_memory.backup import create_backup, restore_backup
from self_learning_memory.storage.migrate import migrate, open_url

pytestmark = pytest.mark.integration


async def populate(data_dir: Path) -> None:
    async with SelfLearningMemory.open(data_dir) as memory:
        for i, ok in enumerate([True, False, True, True]):
            eid = await memory.start_episode(f"task {i}", agent="feature-implementer-1")
            outcome = SuccessOutcome(verdict="ok") if ok else FailureOutcome(reason="no")
            await memory.complete_episode(eid, outcome)
        await memory.start_episode("still open", agent="feature-implementer-1")
        await memory.record_agent_execution("solo", False, 7.0, error_message="timeout")


async def summary(memory: SelfLearningMemory) -> list[tuple[object, ...]]:
    m = await memory.agent_metrics()
    return [
        (a.agent, a.executions, a.successes, a.current_streak, a.longest_streak, a.steps)
        for a in m.agents
    ]


async def agents_of(memory: SelfLearningMemory) -> list[str | None]:
    return sorted((e.agent or "") for e in await memory.list_episodes(limit=100))


@pytest.mark.parametrize("fmt", ["sqlite", "json", "jsonl", "sql"])
async def test_backup_and_restore_keep_agents(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "source"
    await populate(source)
    info = await create_backup(source, tmp_path / "backups", format=fmt)
    target = tmp_path / "restored"
    await restore_backup(info.path, target)
    async with SelfLearningMemory.open(source) as a, SelfLearningMemory.open(target) as b:
        expected = await summary(a)
        assert expected == [
            ("feature-implementer-1", 4, 3, 2, 2, 0),
            ("solo", 1, 0, 0, 0, 0),
        ]
        assert await summary(b) == expected
        assert await agents_of(b) == await agents_of(a) == ["feature-implementer-1"] * 5


async def test_storage_migrate_keeps_agents_and_their_order(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "source"
    await populate(source)
    async with SelfLearningMemory.open(source) as memory:
        expected = await summary(memory)
        episodes = await agents_of(memory)
    pg = open_url(pg_url)
    back = SelfLearningMemory.open(tmp_path / "back")
    async with SelfLearningMemory.open(source) as src:
        await pg.initialize()
        try:
            report = await migrate(src.storage, pg)
            assert report.verified, report.problems
            assert report.copied["agent_executions"] == 5
            again = await migrate(src.storage, pg)  # idempotent
            assert again.target_after["agent_executions"] == 5
            async with SelfLearningMemory(pg, config=MemoryConfig()) as on_pg:
                assert await summary(on_pg) == expected
                assert await agents_of(on_pg) == episodes
                pg_again = open_url(pg_url)
                await pg_again.initialize()
                try:
                    async with back:
                        report = await migrate(pg_again, back.storage)
                        assert report.verified, report.problems
                        assert await summary(back) == expected
                        assert await agents_of(back) == episodes
                finally:
                    await pg_again.close()
        finally:
            await asyncio.shield(pg.close())
