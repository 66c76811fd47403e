"""Step buffering (BatchConfig) against the real durable store (the embedded SQLite file, and
PostgreSQL): steps reach the store on size, on the idle timer, on complete and on close, and
they are appended as rows, never rewritten.

Durability is checked through a second, independent connection to the store, so a step only
counts once it is committed where another process could see it.
"""

from __future__ import annotations

import time
import uuid

import pytest

from backends.support import Backend
from self_learning_memory import (
    BatchConfig,
    ExecutionStep,
    MemoryConfig,
    SuccessOutcome,
    SuccessResult,
)
from support.polling import poll_until

pytestmark = pytest.mark.integration


def step(n: int, tool: str = "shell") -> ExecutionStep:
    return ExecutionStep(
        step_number=n, tool=tool, action=f"command {n}", result=SuccessResult(output=f"ok {n}")
    )


def durable_steps(store: Backend, episode_id: uuid.UUID | None = None) -> int:
    """Step rows committed to the store, as a separate connection sees them."""
    if episode_id is None:
        rows = store.rows("SELECT count(*) FROM steps")
    else:
        rows = store.rows("SELECT count(*) FROM steps WHERE episode_id = ?", (str(episode_id),))
    return int(rows[0][0])


SQLITE_GUARDS = """
CREATE TABLE step_inserts (seq INTEGER PRIMARY KEY, episode_id TEXT, step_number INTEGER);
CREATE TRIGGER audit_step_insert AFTER INSERT ON steps BEGIN
INSERT INTO step_inserts (episode_id, step_number) VALUES (new.episode_id, new.step_number); END;
CREATE TRIGGER no_step_update BEFORE UPDATE ON steps
BEGIN SELECT RAISE(ABORT, 'a step row was rewritten'); END;
CREATE TRIGGER no_step_delete BEFORE DELETE ON steps
BEGIN SELECT RAISE(ABORT, 'a step row was deleted'); END;
CREATE TRIGGER no_episode_rewrite BEFORE UPDATE OF task_type, task_description, context,
start_time ON episodes BEGIN SELECT RAISE(ABORT, 'the episode was rewritten'); END;
"""

POSTGRES_GUARDS = """
CREATE TABLE step_inserts (seq bigserial PRIMARY KEY, episode_id text, step_number integer);
CREATE FUNCTION audit_step_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO step_inserts (episode_id, step_number) VALUES (NEW.episode_id, NEW.step_number);
    RETURN NULL;
END $$;
CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
CREATE TRIGGER audit_step_insert AFTER INSERT ON steps
FOR EACH ROW EXECUTE FUNCTION audit_step_insert();
CREATE TRIGGER no_step_update BEFORE UPDATE ON steps
FOR EACH ROW EXECUTE FUNCTION refuse_rewrite('a step row was rewritten');
CREATE TRIGGER no_step_delete BEFORE DELETE ON steps
FOR EACH ROW EXECUTE FUNCTION refuse_rewrite('a step row was deleted');
CREATE TRIGGER no_episode_rewrite BEFORE UPDATE OF task_type, task_description, context,
start_time ON episodes FOR EACH ROW EXECUTE FUNCTION refuse_rewrite('the episode was rewritten');
"""


def forbid_rewrites(store: Backend) -> None:
    """Make the database itself refuse any UPDATE or DELETE of a step row or of an episode's
    recorded task, and count every step row inserted."""
    store.execute(SQLITE_GUARDS if store.is_sqlite else POSTGRES_GUARDS)


def inserted_steps(store: Backend) -> list[int]:
    return [r[0] for r in store.rows("SELECT step_number FROM step_inserts ORDER BY seq")]


def config(batch: BatchConfig) -> MemoryConfig:
    return MemoryConfig(batch=batch)  # on the store under test through Backend.open


async def test_flush_on_size(backend: Backend) -> None:
    batch = BatchConfig(max_batch_size=3, flush_interval_ms=3_600_000)
    async with backend.open(config(batch)) as memory:
        eid = await memory.start_episode("Build the docs site")
        await memory.log_step(eid, step(1))
        await memory.log_step(eid, step(2))
        assert durable_steps(backend, eid) == 0
        assert (await memory.stats()).buffered_steps == 2
        await memory.log_step(eid, step(3))  # reaches max_batch_size: written before returning
        assert durable_steps(backend, eid) == 3
        assert (await memory.stats()).buffered_steps == 0
        for n in range(4, 9):
            await memory.log_step(eid, step(n))
        assert durable_steps(backend, eid) == 6  # two full batches; 7 and 8 are buffered
        assert [s.step_number for s in (await memory.get_episode(eid)).steps] == list(range(1, 9))


async def test_flush_on_idle_timer(backend: Backend) -> None:
    interval_ms = 300
    batch = BatchConfig(max_batch_size=1000, flush_interval_ms=interval_ms)
    async with backend.open(config(batch)) as memory:
        eid = await memory.start_episode("Profile the import path")
        before = time.monotonic()
        await memory.log_step(eid, step(1))
        await memory.log_step(eid, step(2))
        seen = durable_steps(backend, eid)
        if time.monotonic() - before < interval_ms / 1000:
            assert seen == 0, "flushed before the idle interval passed"
        # neither size nor an explicit flush: only the background timer can write them
        await poll_until(lambda: durable_steps(backend, eid) == 2, timeout=5.0)
        assert memory._writer.buffers[eid].steps == []
        # a later step gets its own timer
        await memory.log_step(eid, step(3))
        await poll_until(lambda: durable_steps(backend, eid) == 3, timeout=5.0)


async def test_flush_on_complete(backend: Backend) -> None:
    async with backend.open(config(BatchConfig.manual_only())) as memory:
        eid = await memory.start_episode("Fix the flaky login test")
        for n in range(1, 6):
            await memory.log_step(eid, step(n, tool="pytest" if n % 2 else "editor"))
        assert durable_steps(backend, eid) == 0
        done = await memory.complete_episode(eid, SuccessOutcome(verdict="stable for 50 runs"))
        assert [s.step_number for s in done.steps] == [1, 2, 3, 4, 5]
        assert durable_steps(backend, eid) == 5
        assert (await memory.stats()).buffered_steps == 0


@pytest.mark.parametrize(
    "batch",
    [BatchConfig.manual_only(), BatchConfig(max_batch_size=1000, flush_interval_ms=3_600_000)],
    ids=["manual", "auto-long-interval"],
)
async def test_flush_on_close_loses_nothing(backend: Backend, batch: BatchConfig) -> None:
    memory = backend.open(config(batch))
    await memory.start()
    first = await memory.start_episode("Rename the config module")
    second = await memory.start_episode("Bump the lockfile")
    for n in range(1, 8):
        await memory.log_step(first, step(n))
    for n in range(1, 4):
        await memory.log_step(second, step(n))
    assert durable_steps(backend) == 0
    await memory.close()
    assert durable_steps(backend, first) == 7
    assert durable_steps(backend, second) == 3
    async with backend.open(config(batch)) as reopened:
        episode = await reopened.get_episode(first)
        assert [s.step_number for s in episode.steps] == list(range(1, 8))
        assert episode.steps[6].result == SuccessResult(output="ok 7")
        # numbering continues after the flushed steps, across processes' restarts
        await reopened.log_step(second, step(4))
        done = await reopened.complete_episode(second, SuccessOutcome(verdict="bumped"))
        assert [s.step_number for s in done.steps] == [1, 2, 3, 4]


async def test_steps_are_appended_never_rewritten(backend: Backend) -> None:
    batch = BatchConfig(max_batch_size=2, flush_interval_ms=3_600_000)
    async with backend.open(config(batch)):
        pass  # creates the schema
    forbid_rewrites(backend)
    async with backend.open(config(batch)) as memory:
        eid = await memory.start_episode("Split the payments service")
        inserted: list[list[int]] = []
        for n in range(1, 7):
            await memory.log_step(eid, step(n, tool=["git", "editor", "pytest"][n % 3]))
            if n % 2 == 0:
                inserted.append(inserted_steps(backend))
        # each flush inserted only the new steps, after the earlier ones
        assert inserted == [[1, 2], [1, 2, 3, 4], [1, 2, 3, 4, 5, 6]]
        await memory.log_step(eid, step(7))
        done = await memory.complete_episode(eid, SuccessOutcome(verdict="split"))
        assert len(done.steps) == 7
    # completion added step 7 and touched no earlier row (the triggers would have aborted it)
    assert inserted_steps(backend) == [1, 2, 3, 4, 5, 6, 7]
    assert durable_steps(backend, eid) == 7
