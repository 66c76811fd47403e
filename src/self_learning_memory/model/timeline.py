"""The learning curve's data: completed episodes per time window with their outcomes.

A store aggregates them in SQL (``storage/sql/timeline.py``); the memory exposes them as
``SelfLearningMemory.outcome_timeline``; the dashboard and ``memory-cli monitor learning``
draw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ..errors import ValidationError

__all__ = ["WINDOWS", "OutcomeWindow", "TimelineWindow", "window_seconds"]

TimelineWindow = Literal["hour", "day", "week"]

# window -> (length in seconds, offset added to the epoch time before dividing: weeks start on
# Monday, and 1970-01-01 was a Thursday)
WINDOWS: dict[str, tuple[int, int]] = {
    "hour": (3600, 0),
    "day": (86400, 0),
    "week": (7 * 86400, 3 * 86400),
}


def window_seconds(window: str) -> tuple[int, int]:
    """The length and epoch offset of ``window``; ValidationError naming the choices."""
    if window not in WINDOWS:
        raise ValidationError("window", f"'{window}' is not a window", ", ".join(WINDOWS))
    return WINDOWS[window]


@dataclass(frozen=True, slots=True)
class OutcomeWindow:
    """The episodes completed in ``[start, end)`` and how they went."""

    start: datetime
    end: datetime
    episodes: int
    successes: int
    partial: int
    failures: int

    @property
    def success_rate(self) -> float:
        """Successes over completed episodes (0 for an empty window)."""
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "episodes": self.episodes,
            "successes": self.successes,
            "partial": self.partial,
            "failures": self.failures,
            "success_rate": round(self.success_rate, 6),
        }
