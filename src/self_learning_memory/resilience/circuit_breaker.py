"""The circuit breaker in front of the primary store, on the ``circuitbreaker`` package.

The package gives the state machine: closed until ``failure_threshold`` consecutive counted
failures, then open for ``recovery_timeout`` seconds, then half-open (its ``state`` property); a
success closes it and resets the count, a failure while half-open opens it again at once. This
subclass adds what the package cannot express:

- only *recoverable* errors count (a validation error, a missing id or a wrong state is an
  answer from the store and counts as a success for the breaker);
- a cancelled call counts as nothing (the package would close the breaker on it);
- at most ``half_open_max_calls`` probe calls at a time while half-open, the rest are refused;
- counters (calls, successes, failures, rejected, times opened, when it last opened) for
  ``health_check``, ``get_metrics`` and the CLI.

A refused call raises :class:`~self_learning_memory.errors.CircuitOpenError` (recoverable).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import circuitbreaker  # type: ignore[import-untyped]

from ..errors import CircuitOpenError, SelfLearningMemoryError

__all__ = ["BreakerState", "CircuitBreaker"]

T = TypeVar("T")


class BreakerState:
    CLOSED = circuitbreaker.STATE_CLOSED
    OPEN = circuitbreaker.STATE_OPEN
    HALF_OPEN = circuitbreaker.STATE_HALF_OPEN


def _counts(exc_type: type[BaseException], exc: BaseException) -> bool:
    return isinstance(exc, SelfLearningMemoryError) and exc.recoverable


class CircuitBreaker(circuitbreaker.CircuitBreaker):  # type: ignore[misc]
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        name: str = "primary",
    ) -> None:
        if failure_threshold < 1 or recovery_timeout_s <= 0 or half_open_max_calls < 1:
            raise ValueError("threshold, recovery timeout and probe limit must be positive")
        super().__init__(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout_s,
            expected_exception=_counts,
            name=name,
        )
        self.failure_threshold = failure_threshold
        self.recovery_timeout_s = recovery_timeout_s
        self.half_open_max_calls = half_open_max_calls
        self.calls = 0
        self.successes = 0
        self.failures = 0  # counted failures, all time
        self.rejected = 0
        self.total_opened = 0
        self.opened_at: datetime | None = None
        self._probes = 0

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> bool:
        if exc_value is not None and not isinstance(exc_value, Exception):
            return False  # cancelled or interrupted: neither a success nor a failure
        return bool(super().__exit__(exc_type, exc_value, traceback))

    @property
    def current_state(self) -> str:
        return str(self.state)

    def _refuse(self, why: str) -> CircuitOpenError:
        self.rejected += 1
        return CircuitOpenError(
            f"The primary store's circuit breaker is {why}; the call was refused. It retries "
            f"the store {max(0.0, self._remaining()):.1f} s from now (recovery timeout "
            f"{self.recovery_timeout_s} s)."
        )

    def _remaining(self) -> float:
        return float(self._opened + self.recovery_timeout_s - time.monotonic())

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Call ``fn`` through the breaker (``fn`` must raise our errors, not the driver's)."""
        state = self.state
        if state == BreakerState.OPEN:
            raise self._refuse("open")
        probe = state == BreakerState.HALF_OPEN
        if probe:
            if self._probes >= self.half_open_max_calls:
                raise self._refuse("half-open and its probe calls are in flight")
            self._probes += 1
        self.calls += 1
        opened_mark = self._opened
        try:
            with self:
                result = await fn()
            self.successes += 1
            return result
        except Exception as exc:
            if _counts(type(exc), exc):
                self.failures += 1
            raise
        finally:
            if probe:
                self._probes -= 1
            if self._state == BreakerState.OPEN and self._opened != opened_mark:
                self.total_opened += 1
                self.opened_at = datetime.now(UTC)

    def status(self) -> dict[str, Any]:
        state = self.current_state
        return {
            "state": state,
            "consecutive_failures": int(self.failure_count),
            "failure_threshold": self.failure_threshold,
            "recovery_timeout_s": self.recovery_timeout_s,
            "half_open_max_calls": self.half_open_max_calls,
            "opened_at": None if self.opened_at is None else self.opened_at.isoformat(),
            "retry_in_s": round(max(0.0, self._remaining()), 3) if state == "open" else 0.0,
            "total_opened": self.total_opened,
            "calls": self.calls,
            "successes": self.successes,
            "failures": self.failures,
            "rejected": self.rejected,
        }
