"""Per-episode step buffers (BatchConfig): flushed on size, on an idle timer, on complete, on
close, or on request. Each buffer has a lock so its flushes are serialised and in order."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .types import ExecutionStep

__all__ = ["EpisodeBuffer"]


@dataclass
class EpisodeBuffer:
    steps: list[ExecutionStep] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def due(self, now: float, interval_s: float) -> bool:
        return bool(self.steps) and now - self.last_flush >= interval_s

    def take(self) -> list[ExecutionStep]:
        taken, self.steps = self.steps, []
        self.last_flush = time.monotonic()
        return taken

    def put_back(self, steps: list[ExecutionStep]) -> None:
        """Return steps that could not be written, ahead of any logged since."""
        self.steps[:0] = steps
