"""Issue 12, item 2 (the flush): one failed write must never drop a buffer's other steps.

Before, ``_flush`` took the buffered steps and wrote them in one transaction; any error but
"store unavailable" lost every one of them. Now a failed batch is written again one step at a
time: a step the database rejects is left out (and named in the error), the others are
written; a write that fails once leaves nothing behind.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from backends.support import Backend
from self_learning_memory import ExecutionStep, SelfLearningMemory, SuccessOutcome, SuccessResult
from self_learning_memory.core.step_buffer import MAX_LONE_FAILURES
from self_learning_memory.errors import StorageError, StorageUnavailableError
from self_learning_memory.model.records import EpisodeState

pytestmark = pytest.mark.integration


def step(n: int, action: str | None = None) -> ExecutionStep:
    return ExecutionStep(
        step_number=n,
        tool="shell",
        action=action or f"command {n}",
        result=SuccessResult(output="ok"),
    )


class FailingAppends:
    """The real store, whose next ``failures`` step writes raise ``error`` (then it works):
    a store briefly failing in a way the library has never seen."""

    def __init__(self, store: Any, failures: int, error: BaseException) -> None:
        self._store = store
        self.failures = failures
        self.error = error
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append_steps(self, episode_id: uuid.UUID, steps: list[ExecutionStep]) -> EpisodeState:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        state: EpisodeState = await self._store.append_steps(episode_id, steps)
        return state


def stored_numbers(backend: Backend, eid: uuid.UUID) -> list[int]:
    rows = backend.rows(
        "SELECT step_number FROM steps WHERE episode_id = ? ORDER BY step_number", (str(eid),)
    )
    return [int(r[0]) for r in rows]


def with_failing_appends(
    backend: Backend, failures: int, error: BaseException
) -> SelfLearningMemory:
    memory = backend.open()
    memory.storage = FailingAppends(memory.storage, failures, error)
    return memory


@pytest.mark.parametrize(
    "error",
    [RuntimeError("connection reset in the driver"), OverflowError("int too big to convert")],
)
async def test_flush_failing_once_loses_no_step(backend: Backend, error: BaseException) -> None:
    """Fails on the code before the fix: the three buffered steps were gone."""
    async with with_failing_appends(backend, 1, error) as memory:
        eid = await memory.start_episode("Flush while the store hiccups")
        for n in (1, 2, 3):
            await memory.log_step(eid, step(n))
        assert await memory.flush_steps(eid) == 3  # the batch failed; one at a time worked
        assert stored_numbers(backend, eid) == [1, 2, 3]
        episode = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert [s.step_number for s in episode.steps] == [1, 2, 3]


async def test_steps_stay_buffered_while_the_store_keeps_failing(backend: Backend) -> None:
    """Every write fails for a while (batch and single steps): nothing is dropped, the flush
    raises, and the steps reach the store once it works again."""
    error = StorageError("the store failed for a moment")
    async with with_failing_appends(backend, 4, error) as memory:
        eid = await memory.start_episode("Flush while the store is down")
        for n in (1, 2, 3):
            await memory.log_step(eid, step(n))
        with pytest.raises(StorageError):
            await memory.flush_steps(eid)  # batch, step 1, step 2: two failures in a row
        assert stored_numbers(backend, eid) == []
        await memory.log_step(eid, step(4))  # logging goes on meanwhile
        assert await memory.flush_steps(eid) == 4  # one failure left, then one at a time
        assert stored_numbers(backend, eid) == [1, 2, 3, 4]


async def test_unavailable_store_keeps_every_step(backend: Backend) -> None:
    error = StorageUnavailableError("the store cannot be reached")
    async with with_failing_appends(backend, 2, error) as memory:
        eid = await memory.start_episode("Flush while the store is unreachable")
        await memory.log_step(eid, step(1))
        await memory.log_step(eid, step(2))
        for _ in range(2):
            with pytest.raises(StorageUnavailableError):
                await memory.flush_steps(eid)
        episode = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert [s.step_number for s in episode.steps] == [1, 2]


def reject_poison(backend: Backend) -> None:
    """A real database rule that rejects one step (its action is 'poison')."""
    if backend.is_sqlite:
        backend.execute(
            "CREATE TRIGGER reject_poison BEFORE INSERT ON steps WHEN NEW.action = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poison step rejected'); END;"
        )
        return
    backend.execute(
        "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.action = 'poison' THEN RAISE EXCEPTION 'poison step rejected'; END IF; "
        "RETURN NEW; END $$; "
        "CREATE TRIGGER reject_poison BEFORE INSERT ON steps FOR EACH ROW "
        "EXECUTE FUNCTION reject_poison();"
    )


async def test_step_rejected_by_the_database_does_not_take_the_others(backend: Backend) -> None:
    """Fails on the code before the fix: steps 1 and 3 were lost with step 2."""
    async with backend.open() as memory:
        eid = await memory.start_episode("One bad step among good ones")
    reject_poison(backend)
    async with backend.open() as memory:
        await memory.log_step(eid, step(1))
        await memory.log_step(eid, step(2, "poison"))
        await memory.log_step(eid, step(3))
        with pytest.raises(StorageError) as caught:
            await memory.flush_steps(eid)
        assert "step 2 " in str(caught.value)
        assert "2 other buffered step(s)" in str(caught.value)
        assert stored_numbers(backend, eid) == [1, 3]
        await memory.log_step(eid, step(4))  # the size and state were learnt again
        episode = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert [s.step_number for s in episode.steps] == [1, 3, 4]


async def test_last_step_rejected_alone_is_left_out_after_retries(backend: Backend) -> None:
    """A rejected step with nothing after it stays buffered (it may be the store) for
    MAX_LONE_FAILURES flushes, then is left out so the episode can complete."""
    async with backend.open() as memory:
        eid = await memory.start_episode("A bad last step")
    reject_poison(backend)
    async with backend.open() as memory:
        await memory.log_step(eid, step(1))
        await memory.log_step(eid, step(2, "poison"))
        for _ in range(MAX_LONE_FAILURES - 1):
            with pytest.raises(StorageError, match=r"stay buffered|constraint|rejected"):
                await memory.flush_steps(eid)
        assert stored_numbers(backend, eid) == [1]
        with pytest.raises(StorageError, match="left out"):
            await memory.flush_steps(eid)
        episode = await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert [s.step_number for s in episode.steps] == [1]
