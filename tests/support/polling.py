"""Waiting for a background task without sleeping for a guessed time: poll a condition until it
holds, and fail with a message that says what was still wrong when the deadline passed."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["poll_until"]


async def poll_until(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str | Callable[[], object] = "condition not reached",
) -> T:
    """Call ``check`` (plain or async) every ``interval`` seconds until it returns a truthy value,
    and return that value. Raises ``AssertionError`` with ``message`` (a string, or a callable
    evaluated at the deadline, e.g. to show the last state) once ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        value: T = await result if inspect.isawaitable(result) else result
        if value:
            return value
        if loop.time() >= deadline:
            detail = message() if callable(message) else message
            raise AssertionError(f"{detail} (waited {timeout} s)")
        await asyncio.sleep(interval)
