"""Fault injection in front of the real PostgreSQL server: a loopback TCP proxy the test cuts
and refuses (``proxy.TcpProxy``), the library's PostgreSQL backend behind ResilientStorage.

- the breaker opens within 5 failures, writes go to the outbox, reads come from the cache and
  the local view, and after recovery every write is in PostgreSQL, in order, exactly once;
- a child process writing while PostgreSQL is down is SIGKILLed; a new process, with the server
  back, replays everything the child was told was written.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from self_learning_memory import ExecutionStep, SuccessOutcome, SuccessResult
from support.polling import poll_until

from .pg import build_memory, dsn_for
from .proxy import TcpProxy

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def stored(schema: str) -> dict[uuid.UUID, tuple[bool, list[int]]]:
    """Episode id -> (completed, step numbers in stored order), read with psycopg directly."""
    with psycopg.connect(dsn_for(schema)) as conn:
        episodes = {
            uuid.UUID(str(r[0])): r[1] is not None
            for r in conn.execute("SELECT episode_id, end_time FROM episodes")
        }
        steps: dict[uuid.UUID, list[int]] = {e: [] for e in episodes}
        for eid, number in conn.execute(
            "SELECT episode_id, step_number FROM steps ORDER BY episode_id, step_number"
        ):
            steps[uuid.UUID(str(eid))].append(int(number))
    return {e: (done, steps[e]) for e, done in episodes.items()}


def step(n: int) -> ExecutionStep:
    return ExecutionStep(step_number=n, tool="editor", action=f"edit {n}", result=SuccessResult())


async def test_outage_breaker_outbox_cache_and_exact_replay(
    schema: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    memory, wrapped = build_memory(dsn_for(schema, proxy.port), tmp_path)
    async with memory:
        before = await memory.start_episode("cached before the outage", task_type="testing")
        await memory.log_step(before, step(1))
        await memory.complete_episode(before, SuccessOutcome(verdict="ok"))
        open_id = await memory.start_episode("open across the outage", task_type="testing")
        await memory.log_step(open_id, step(1))
        await memory.flush_steps(open_id)

        await proxy.refuse()  # PostgreSQL is gone: open connections cut, new ones refused
        await memory.log_step(open_id, step(2))
        await memory.flush_steps(open_id)  # acknowledged: journaled in the outbox
        written = []
        for i in range(4):
            eid = await memory.start_episode(f"offline {i}", task_type="testing")
            for n in range(1, 4):
                await memory.log_step(eid, step(n))
            await memory.complete_episode(eid, SuccessOutcome(verdict=f"offline {i}"))
            written.append(eid)
        await memory.complete_episode(open_id, SuccessOutcome(verdict="done offline"))

        # the replayer keeps probing: the breaker opens at the 5th counted failure
        await poll_until(lambda: wrapped.breaker.current_state == "open", timeout=20.0)
        status = wrapped.breaker.status()
        assert status["failures"] == 5
        assert status["total_opened"] == 1
        health = await memory.health()
        assert not health["primary_storage"].healthy
        assert health["resilience"].details["outbox"]["pending"] == 1 + 4 * 3 + 1

        # reads: the completed episode from the cache, the queued ones from the local view
        assert (await memory.get_episode(before)).outcome is not None
        assert [s.step_number for s in (await memory.get_episode(open_id)).steps] == [1, 2]
        assert len((await memory.get_episode(written[2])).steps) == 3

        await proxy.restore()
        assert await wrapped.wait_replayed(30)
        assert wrapped.breaker.current_state == "closed"

    rows = stored(schema)
    assert set(rows) == {before, open_id, *written}
    assert rows[open_id] == (True, [1, 2])
    for eid in written:
        assert rows[eid] == (True, [1, 2, 3])  # exactly once each, in order
    # replay order: each replayed write is its own transaction, so the transaction ids (xmin)
    # of the step rows show the order they reached PostgreSQL: the order they were acknowledged
    with psycopg.connect(dsn_for(schema)) as conn:
        first_txn = {
            uuid.UUID(str(r[0])): int(r[1])
            for r in conn.execute(
                "SELECT episode_id, min(xmin::text::bigint) FROM steps GROUP BY episode_id"
            )
        }
    assert [first_txn[e] for e in written] == sorted(first_txn[e] for e in written)
    assert first_txn[before] < first_txn[written[0]]


async def test_sigkill_while_down_then_restart_replays_everything_acknowledged(
    schema: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    # the schema is created (migrated) while the server is reachable, then the server goes away
    memory, _ = build_memory(dsn_for(schema, proxy.port), tmp_path)
    async with memory:
        pass
    await proxy.refuse()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.resilience.outbox_child",
        dsn_for(schema, proxy.port),
        str(tmp_path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
    )
    acked: list[uuid.UUID] = []
    try:
        assert child.stdout is not None
        while len(acked) < 8:
            line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode()
            if not line:
                err = await child.stderr.read() if child.stderr else b""
                pytest.fail(f"the child exited early: {err.decode()[-2000:]}")
            if line.startswith("ACK "):
                acked.append(uuid.UUID(line.split()[1]))
        child.send_signal(signal.SIGKILL)  # mid-write: it never stops between episodes
        await asyncio.wait_for(child.wait(), 10)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == -signal.SIGKILL
    assert stored(schema) == {}  # nothing reached PostgreSQL

    await proxy.restore()
    memory, wrapped = build_memory(dsn_for(schema, proxy.port), tmp_path)
    async with memory:
        assert await wrapped.wait_replayed(30)
    rows = stored(schema)
    for eid in acked:
        assert rows[eid] == (True, [1, 2, 3])
    # anything beyond the acknowledged ones was journaled before the kill: whole, never partial
    for _done, numbers in rows.values():
        assert numbers == list(range(1, len(numbers) + 1))
