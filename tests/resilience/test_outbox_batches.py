"""The outbox replays in batches: several entries per primary transaction, in acknowledgement
order, exactly once after an interruption mid-batch, and a refused entry dead-lettered alone.
Real stores: SQLite (``flaky.FlakySQLite``) and PostgreSQL behind the TCP proxy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psycopg

from self_learning_memory.resilience.replay import batched_write

from .pg import dsn_for
from .proxy import TcpProxy
from .test_outbox import open_memory, record, step


async def test_a_batch_is_one_primary_transaction_in_order(tmp_path: Path) -> None:
    memory, flaky, wrapped = open_memory(tmp_path)
    assert flaky.capabilities.batch_writer is flaky  # the replayer finds it there
    async with memory:
        kept = await record(memory, "kept", 1)
        flaky.down = True
        offline = [await record(memory, f"offline{i}", 3) for i in range(10)]
        await memory.delete_episode(offline[0])  # after its own create: order matters
        assert wrapped.outbox is not None
        pending = wrapped.outbox.pending()
        assert pending >= 31
        calls = flaky.calls
        flaky.down = False
        assert await wrapped.wait_replayed(10)
        assert wrapped.replayer is not None
        assert wrapped.replayer.replayed == pending
        # one transaction per batch (plus the guard's readiness), not one or two per entry
        assert flaky.calls - calls <= 3
        assert await flaky.get_episode(offline[0]) is None
        for eid in [kept, *offline[1:]]:
            stored = await flaky.get_episode(eid)
            assert stored is not None
            assert stored.is_complete
            assert [s.step_number for s in stored.steps] == ([1] if eid == kept else [1, 2, 3])
        assert wrapped.outbox.pending() == 0


async def test_a_batch_applied_again_changes_nothing(tmp_path: Path) -> None:
    """A crash after the primary committed a batch but before it left the outbox."""
    memory, flaky, wrapped = open_memory(tmp_path)
    async with memory:
        flaky.down = True
        for i in range(4):
            await record(memory, f"twice{i}", 3)
        assert wrapped.outbox is not None
        entries = wrapped.outbox.peek(100)
        flaky.down = False
        assert await wrapped.wait_replayed(10)
        before = await flaky.stats()
        await flaky.write_batch([batched_write(e) for e in entries])  # the batch again
        after = await flaky.stats()
        assert (after.episodes, after.steps, after.pattern_occurrences) == (
            before.episodes,
            before.steps,
            before.pattern_occurrences,
        )
        assert before.episodes == 4
        assert before.steps == 12


async def test_one_refused_entry_is_dead_lettered_alone(tmp_path: Path) -> None:
    memory, flaky, wrapped = open_memory(tmp_path)
    async with memory:
        gone = await memory.start_episode("will be deleted elsewhere", task_type="testing")
        await memory.flush_steps()
        flaky.down = True
        first = await record(memory, "first", 2)
        await memory.log_step(gone, step(1))
        await memory.flush_steps(gone)
        later = [await record(memory, f"later{i}", 2) for i in range(3)]
        flaky.down = False
        await flaky.delete_episode(gone)  # another process deleted it meanwhile
        assert await wrapped.wait_replayed(10)
        assert wrapped.outbox is not None
        dead = wrapped.outbox.dead_letters()
        assert [d["op"] for d in dead] == ["append_steps"]
        for eid in [first, *later]:
            stored = await flaky.get_episode(eid)
            assert stored is not None
            assert len(stored.steps) == 2


async def test_postgres_replay_cut_mid_batch_is_exactly_once(
    tmp_path: Path, schema: str, proxy: TcpProxy
) -> None:
    from .pg import build_memory

    memory, wrapped = build_memory(dsn_for(schema, proxy.port), tmp_path)
    async with memory:
        await memory.start_episode("warm up", task_type="testing")
        await memory.flush_steps()
        assert wrapped.replayer is not None
        wrapped.replayer.batch_size = 8
        await proxy.refuse()
        eids = [await record(memory, f"offline{i}", 3) for i in range(40)]
        assert wrapped.outbox is not None
        pending = wrapped.outbox.pending()
        await proxy.restore()
        deadline = time.monotonic() + 30
        for _ in iter(lambda: wrapped.outbox.pending() < pending, True):  # first batch is in
            assert time.monotonic() < deadline, "the replay did not start"
            await asyncio.sleep(0.001)
        proxy.cut()  # mid-replay: the batch in flight is rolled back or committed whole
        assert await wrapped.wait_replayed(60)
        assert (await wrapped.resilience_status())["outbox"]["dead_letters"] == 0
    with psycopg.connect(dsn_for(schema)) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM episodes), "
            "(SELECT count(*) FROM episodes WHERE end_time IS NOT NULL), "
            "(SELECT count(*) FROM steps), "
            "(SELECT count(*) FROM (SELECT DISTINCT episode_id, step_number FROM steps) s), "
            "(SELECT coalesce(sum(occurrence_count), 0) FROM patterns), "
            "(SELECT count(*) FROM episode_patterns)"
        ).fetchone()
    assert row is not None
    episodes, completed, steps, distinct, occurrences, links = row
    assert (episodes, completed) == (len(eids) + 1, len(eids))
    assert steps == distinct == len(eids) * 3
    assert occurrences == links  # a completion applied twice would count its patterns twice


async def test_postgres_one_refused_entry_in_a_batch_is_dead_lettered_alone(
    tmp_path: Path, schema: str, proxy: TcpProxy
) -> None:
    from .pg import build_memory

    memory, wrapped = build_memory(dsn_for(schema, proxy.port), tmp_path)
    async with memory:
        gone = await memory.start_episode("will be deleted elsewhere", task_type="testing")
        await memory.flush_steps()
        await proxy.refuse()
        first = await record(memory, "first", 2)
        await memory.log_step(gone, step(1))
        await memory.flush_steps(gone)
        later = [await record(memory, f"later{i}", 2) for i in range(3)]
        with psycopg.connect(dsn_for(schema), autocommit=True) as conn:
            conn.execute("DELETE FROM episodes WHERE episode_id = %s", (str(gone),))
        await proxy.restore()
        assert await wrapped.wait_replayed(60)
        assert wrapped.outbox is not None
        assert [d["op"] for d in wrapped.outbox.dead_letters()] == ["append_steps"]
    with psycopg.connect(dsn_for(schema)) as conn:
        for eid in [first, *later]:
            row = conn.execute(
                "SELECT count(*) FROM steps WHERE episode_id = %s", (str(eid),)
            ).fetchone()
            assert row == (2,)


async def test_a_replay_starts_with_a_small_batch_then_full_ones(tmp_path: Path) -> None:
    """The first batch of a replay is small (a replay attempt while the primary is down reads
    and decodes little, and the first commit after its return comes sooner); the rest go in
    full batches, in order, exactly once."""
    memory, flaky, wrapped = open_memory(tmp_path)
    sizes: list[int] = []
    write_batch = flaky.write_batch

    async def counted(writes: Any) -> None:
        sizes.append(len(writes))
        await write_batch(writes)

    flaky.write_batch = counted  # type: ignore[method-assign]
    async with memory:
        assert wrapped.replayer is not None
        wrapped.replayer.first_batch_size = 4
        wrapped.replayer.batch_size = 10
        flaky.down = True
        eids = [await record(memory, f"offline{i}", 2) for i in range(8)]
        assert wrapped.outbox is not None
        pending = wrapped.outbox.pending()
        assert pending >= 24
        sizes.clear()  # attempts while down never reached write_batch; be sure
        flaky.down = False
        assert await wrapped.wait_replayed(10)
        assert sizes[0] == 4
        assert sizes[1:-1] == [10] * (len(sizes) - 2)
        assert sum(sizes) == pending == wrapped.replayer.replayed
        for eid in eids:
            stored = await flaky.get_episode(eid)
            assert stored is not None
            assert stored.is_complete
            assert [s.step_number for s in stored.steps] == [1, 2]
