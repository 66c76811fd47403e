"""The ``--since`` window the `memory-cli logs` step commands share, and the step queries they
run on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...state import CliState, check_text, fail, run_with_memory
from ..episode import parse_since

if TYPE_CHECKING:
    from ....core.memory import SelfLearningMemory

__all__ = ["SinceOpt", "since_start", "time_range", "with_steps"]

SinceOpt = Annotated[
    str, typer.Option("--since", "-s", help="Episodes started in the last Nh, Nd or Nm.")
]


def since_start(state: CliState, text: str) -> datetime:
    """The start of the ``--since`` window; a bad value ends the command with its error."""
    try:
        check_text("--since", text, 32)
        return parse_since(text)
    except Exception as exc:
        fail(state, exc)


def time_range(since: datetime, label: str) -> dict[str, Any]:
    """The window as reported in the output: its start, now, and the ``--since`` text."""
    return {"since": since.isoformat(), "until": datetime.now(UTC).isoformat(), "window": label}


def with_steps(state: CliState, action: Any) -> Any:
    """Run ``action(queries)`` on the store's step queries."""

    async def go(memory: SelfLearningMemory) -> Any:
        from ....storage.step_queries import StepQueries

        return await action(StepQueries.of(memory.storage))

    return run_with_memory(state, go)
