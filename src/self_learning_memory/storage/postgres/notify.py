"""Cache consistency across processes: episode changes announced with LISTEN/NOTIFY.

Every write transaction that changes an episode sends ``pg_notify`` on one channel with the
payload ``<schema>|<op>|<episode_id>``; PostgreSQL delivers it only if the transaction commits.
:class:`EpisodeListener` holds one dedicated connection per process, listens, and hands each
change from *another* process (our own pool's server pids are skipped) in the same schema to
the subscribed callbacks, which drop the entry from the local LMDB cache. The listener is an
owned background task: started by the store, stopped on close, reconnecting with backoff,
and logging its failures.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psycopg

__all__ = ["CHANNEL", "EpisodeChange", "EpisodeListener"]

log = logging.getLogger(__name__)
CHANNEL = "self_learning_memory_episodes"


@dataclass(frozen=True)
class EpisodeChange:
    op: str  # created, steps, completed, deleted
    episode_id: uuid.UUID


Callback = Callable[[EpisodeChange], Awaitable[None]]


class EpisodeListener:
    def __init__(
        self, dsn: str, schema: str, own_pids: set[int], callbacks: list[Callback] | None = None
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.own_pids = own_pids
        self.callbacks: list[Callback] = [] if callbacks is None else callbacks
        self.received = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="postgres-episode-listener")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    delay = 0.5
                    async for note in conn.notifies():
                        await self._dispatch(note.pid, note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("PostgreSQL episode listener lost its connection: %s", exc)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _dispatch(self, pid: int, payload: str) -> None:
        schema, _, rest = payload.partition("|")
        op, _, eid = rest.partition("|")
        if schema != self.schema or pid in self.own_pids:
            return
        try:
            change = EpisodeChange(op, uuid.UUID(eid))
        except ValueError:
            log.warning("ignoring a malformed episode notification %r", payload)
            return
        self.received += 1
        for callback in self.callbacks:
            try:
                await callback(change)
            except Exception:
                log.exception("an episode-change callback failed for %s", change)
