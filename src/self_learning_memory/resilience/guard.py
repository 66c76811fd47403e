"""The guarded call: one operation of the primary store through retry, breaker and timeout.

Every call of the primary that the resilience wrapper makes goes through :meth:`Guard.call`:
:func:`~.retry.retry_call` (recoverable errors only, exponential backoff with jitter inside a
total budget) and, per attempt, the :class:`~.circuit_breaker.CircuitBreaker` and an optional
per-call timeout. Driver connection errors are mapped to our recoverable errors first. The
primary is initialized lazily by the first attempt, so a store that is down at start is retried
like any other call.

The guard also keeps what the wrapper reports about the primary: retries and operations counted,
the last recoverable error, and whether reads are being served locally (degraded) because the
primary does not answer; the first call the primary answers ends the degraded period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import SelfLearningMemoryError
from .circuit_breaker import BreakerState, CircuitBreaker
from .retry import RetryPolicy, map_driver_error, retry_call

if TYPE_CHECKING:
    from ..storage.backend import StorageBackend

__all__ = ["Guard", "recoverable"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def recoverable(exc: BaseException) -> bool:
    """Whether ``exc`` says the primary is down (worth retrying, journaling or answering
    locally) rather than that the request itself is wrong."""
    return isinstance(exc, SelfLearningMemoryError) and exc.recoverable


class Guard:
    """Retry, breaker and timeout around the calls of one primary store."""

    def __init__(
        self,
        primary: StorageBackend,
        *,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        call_timeout_s: float | None,
    ) -> None:
        self.primary = primary
        self.name = primary.name
        self.policy = policy
        self.breaker = breaker
        self.call_timeout_s = call_timeout_s
        self.retries = 0
        self.operations = 0
        self.last_error: str | None = None
        self.ready = False  # the primary is initialized
        self._ready_lock = asyncio.Lock()
        self.degraded_since: float | None = None  # reads served locally since; None: not now
        self.degraded_reads = 0  # reads served locally by this process
        self.degraded_notes: dict[str, str] = {}  # the last provenance note of each such read

    async def call(
        self,
        what: str,
        first: Callable[[], Awaitable[T]],
        again: Callable[[], Awaitable[T]] | None = None,
    ) -> T:
        """``first`` through retry, breaker and timeout; later attempts run ``again``."""

        def attempt(fn: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
            async def inner() -> T:
                try:
                    await self.ensure_ready()  # the backend's connect has its own timeout
                    async with asyncio.timeout(self.call_timeout_s):
                        return await fn()
                except Exception as exc:
                    mapped = map_driver_error(exc, what)
                    if mapped is exc:
                        raise
                    raise mapped from exc

            return lambda: self.breaker.run(inner)

        def on_retry(exc: BaseException) -> None:
            self.retries += 1
            self.last_error = f"{what}: {exc}"

        self.operations += 1
        try:
            result = await retry_call(
                self.policy, attempt(first), None if again is None else attempt(again), on_retry
            )
        except Exception as exc:
            if recoverable(exc):
                self.last_error = f"{what}: {exc}"
            raise
        if self.degraded_since is not None:  # the primary answers again
            log.info("primary store %s answers again: reads come from it", self.name)
            self.degraded_since = None
            self.degraded_notes.clear()
        return result

    async def ensure_ready(self) -> None:
        if self.ready:
            return
        async with self._ready_lock:
            if not self.ready:
                await self.primary.initialize()
                self.ready = True

    async def close_primary(self) -> None:
        """Close the primary if it was opened."""
        if self.ready:
            self.ready = False
            await self.primary.close()

    def served_locally(self, what: str, note: str, error: BaseException) -> None:
        """Count a read answered locally because the primary failed with ``error``."""
        if self.degraded_since is None:
            self.degraded_since = time.time()
            log.warning("primary store %s unreachable, serving reads locally: %s", self.name, error)
        self.degraded_reads += 1
        self.degraded_notes[what] = note

    @property
    def degraded(self) -> bool:
        """Reads are answered locally (or would be: the breaker refuses every call)."""
        return self.degraded_since is not None or self.breaker.current_state == BreakerState.OPEN

    def status(self) -> dict[str, Any]:
        """The guard's part of ``resilience_status()``."""
        return {
            "primary": self.name,
            "primary_ready": self.ready,
            "degraded": self.degraded,
            "degraded_reads": {
                "since": self.degraded_since,
                "reads_served": self.degraded_reads,
                "notes": dict(self.degraded_notes),
            },
            "breaker": self.breaker.status(),
            "retry": {
                "max_attempts": self.policy.max_attempts,
                "base_s": self.policy.base_s,
                "max_delay_s": self.policy.max_delay_s,
                "budget_s": self.policy.budget_s,
                "retries": self.retries,
                "operations": self.operations,
            },
        }
