"""Degraded mode on the real PostgreSQL behind the loopback proxy: while the server is cut,
retrieval, patterns, heuristics and stats are answered from the LMDB cache, the outbox view
and the synchronizer's index, marked as such, and nothing raises; when it is back, answers come
from PostgreSQL again."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from self_learning_memory import (
    ExecutionStep,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)

from .pg import build_memory, dsn_for
from .proxy import TcpProxy

pytestmark = pytest.mark.integration

RUST = TaskContext(domain="web-api", language="rust", tags=["http"])
PY = TaskContext(domain="data", language="python", tags=["csv"])


async def record(
    memory: SelfLearningMemory, description: str, context: TaskContext, tools: list[str]
) -> uuid.UUID:
    eid = await memory.start_episode(description, context, task_type="code_generation")
    for n, tool in enumerate(tools, start=1):
        step = ExecutionStep(
            step_number=n, tool=tool, action=f"{tool} {n}", result=SuccessResult(output="ok")
        )
        await memory.log_step(eid, step)
    await memory.complete_episode(eid, SuccessOutcome(verdict=f"{description}: done"))
    return eid


def degraded(provenance: list[str]) -> bool:
    return any(p.startswith("degraded:") for p in provenance)


async def test_reads_while_postgres_is_cut_come_from_the_cache_then_from_postgres_again(
    schema: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    memory, wrapped = build_memory(dsn_for(schema, proxy.port), tmp_path)
    async with memory:
        tools_rust = ["cargo", "rustfmt", "clippy"]
        tokio = await record(memory, "implement a tokio http server with retries", RUST, tools_rust)
        parser = await record(memory, "parse csv files into a dataframe", PY, ["pandas", "pytest"])
        for i in range(3):
            await record(memory, f"write the axum router number {i}", RUST, tools_rust)
        assert memory.synchronizer is not None  # automatic for a remote primary
        stats, _ = await memory.synchronizer.sync_all_recent()
        assert stats.patterns_synced > 0
        online = await memory.retrieve_relevant_context("tokio http server retries", RUST)
        assert online[0].episode.episode_id == tokio
        assert not degraded(online[0].provenance)
        online_patterns = await memory.retrieve_relevant_patterns(RUST)
        assert online_patterns
        assert not (await memory.stats()).resilience["degraded"]  # type: ignore[index]

        await proxy.refuse()  # PostgreSQL is gone: connections cut, new ones refused
        # completed while down: journaled, served from the outbox view (and the cache)
        offline = await record(memory, "parse json logs into a dataframe", PY, ["pandas"])

        found = await memory.retrieve_relevant_context("tokio http server retries", RUST)
        assert found[0].episode.episode_id == tokio
        assert "degraded:cache" in found[0].provenance
        assert found[0].components.relevance > 0
        assert all(degraded(r.provenance) for r in found)
        csv = await memory.retrieve_relevant_context("parse csv files", PY)
        assert csv[0].episode.episode_id == parser
        json_logs = await memory.retrieve_relevant_context("json logs dataframe", PY)
        assert json_logs[0].episode.episode_id == offline
        assert "degraded:outbox" in json_logs[0].provenance

        patterns = await memory.retrieve_relevant_patterns(RUST)
        index = {p.id for p, _ in await memory.synchronizer.cached_patterns()}
        assert [m.pattern.id for m in patterns] == [m.pattern.id for m in online_patterns]
        assert {m.pattern.id for m in patterns} <= index
        await memory.retrieve_heuristics(RUST)  # answered from the index: no error

        down = await memory.stats()
        assert down.resilience is not None
        assert down.resilience["degraded"] is True
        notes = down.resilience["degraded_reads"]["notes"]
        assert notes["stats"] == "degraded:local-counts"
        assert notes["pattern_candidates"] == "degraded:pattern-index"
        assert notes["lexical_candidates"] == "degraded:cache-scan"
        assert down.completed == 6  # the five cached and the one completed offline
        assert down.patterns > 0
        assert (await wrapped.stats()).degraded

        await proxy.restore()
        assert await wrapped.wait_replayed(30)
        back = await memory.retrieve_relevant_context("tokio http server retries", RUST)
        assert back[0].episode.episode_id == tokio
        assert not any(degraded(r.provenance) for r in back)
        up = await memory.stats()
        assert up.resilience is not None
        assert up.resilience["degraded"] is False
        assert up.completed == 6  # counted by PostgreSQL, with the replayed episode
        assert not (await wrapped.stats()).degraded
