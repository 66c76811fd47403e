"""Retries of primary-store calls: which errors may be retried, and how long to keep trying.

Only *recoverable* errors are retried (:class:`~self_learning_memory.errors.StorageUnavailableError`,
:class:`~self_learning_memory.errors.OperationTimeoutError`, and driver connection errors mapped to
them by :func:`map_driver_error`). A validation error, a missing id or a wrong state is an answer
from the store, not a failure to reach it: it is raised at once. An open circuit is not retried
either: the breaker already decided the store is down.

Backoff (tenacity): 100 ms, 200 ms, 400 ms ... capped, plus up to ``jitter_s`` of random jitter,
for at most ``max_attempts`` attempts and never past the total ``budget_s``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from ..errors import (
    CircuitOpenError,
    OperationTimeoutError,
    SelfLearningMemoryError,
    StorageUnavailableError,
)

__all__ = ["RetryPolicy", "is_retryable", "map_driver_error", "retry_call"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_s: float = 0.1
    multiplier: float = 2.0
    max_delay_s: float = 1.6
    jitter_s: float = 0.1
    budget_s: float = 5.0


def is_retryable(exc: BaseException) -> bool:
    """A recoverable error of ours, other than an open circuit."""
    return (
        isinstance(exc, SelfLearningMemoryError)
        and exc.recoverable
        and not isinstance(exc, CircuitOpenError)
    )


def map_driver_error(exc: BaseException, what: str) -> BaseException:
    """Our error for a driver's connection failure; anything else is returned unchanged.

    Connection resets and refusals (``OSError``), timeouts, and psycopg's ``OperationalError``
    (which its pool's ``PoolTimeout`` subclasses) mean "the store cannot be reached"."""
    if isinstance(exc, SelfLearningMemoryError):
        return exc
    if isinstance(exc, TimeoutError):
        return OperationTimeoutError(f"The primary store did not answer {what} in time.")
    psycopg = sys.modules.get("psycopg")  # only if a backend already imported it
    if isinstance(exc, OSError) or (
        psycopg is not None and isinstance(exc, psycopg.OperationalError)
    ):
        return StorageUnavailableError(f"The primary store cannot be reached ({what}): {exc}")
    return exc


async def retry_call(
    policy: RetryPolicy,
    first: Callable[[], Awaitable[T]],
    again: Callable[[], Awaitable[T]] | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``first``; on a retryable error wait and run ``again`` (default ``first``): the
    second and later attempts of a write use its idempotent form, since an attempt that timed
    out may have been applied."""

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc)

    attempt = 0
    async for attempt_ctx in AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.budget_s),
        wait=wait_exponential_jitter(
            multiplier=policy.base_s,
            exp_base=policy.multiplier,
            max=policy.max_delay_s,
            jitter=policy.jitter_s,
        ),
        retry=retry_if_exception(is_retryable),
        before_sleep=before_sleep,
        sleep=asyncio.sleep,
        reraise=True,
    ):
        with attempt_ctx:
            fn = first if attempt == 0 or again is None else again
            attempt += 1
            return await fn()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
