"""Agent monitoring: who ran a task, and how each agent's executions went.

An *agent* is a short name (``claude-code``, ``code-reviewer@ci``): 1 to
:data:`MAX_AGENT_LEN` characters of ``[A-Za-z0-9._:@/-]`` after trimming. An episode may carry
one (``Episode.agent``); when such an episode completes, one :class:`AgentExecution` is written
with the completion. An execution can also be recorded on its own
(``SelfLearningMemory.record_agent_execution``), like the reference system's
``record_agent_execution(name, success, duration)``.

:class:`AgentMetrics` is what ``agent_metrics()`` returns: per agent the totals, success rate,
durations, steps, errors, streaks and a per-window series of executions and successes (the
aggregation runs in SQL, ``storage/sql/agent_executions.py``). The agent type is inferred from
the name as the reference does (``feature-implementer`` ... ``goap-agent``, else ``other``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ValidationError
from .episode import Episode, utc_now
from .limits import MAX_TASK_CHARS
from .timeline import WINDOWS, TimelineWindow

__all__ = [
    "AGENT_WINDOWS",
    "MAX_AGENT_LEN",
    "MAX_ERROR_MESSAGE_CHARS",
    "OTHER_AGENTS",
    "AgentAggregates",
    "AgentExecution",
    "AgentMetrics",
    "AgentSummary",
    "AgentTotals",
    "AgentType",
    "AgentWindow",
    "AgentWindowPoint",
    "agent_type_of",
    "check_agent",
    "execution_of",
    "sanitize_agent",
]

MAX_AGENT_LEN = 64
MAX_ERROR_MESSAGE_CHARS = 500
MAX_DURATION_MS = 7 * 24 * 3_600_000.0  # a week
MAX_STEPS = 1_000_000
OTHER_AGENTS = "other"  # the label agents beyond a cap are folded into
_DISALLOWED = re.compile(r"[^A-Za-z0-9._:@/-]+")

AgentWindow = TimelineWindow  # the learning curve's windows (model/timeline.py)
AGENT_WINDOWS: dict[str, int] = {  # window -> microseconds
    name: seconds * 1_000_000 for name, (seconds, _) in WINDOWS.items()
}


class AgentType(StrEnum):
    """Inferred from the agent's name (the reference system's list)."""

    FEATURE_IMPLEMENTER = "feature-implementer"
    CODE_REVIEWER = "code-reviewer"
    TEST_RUNNER = "test-runner"
    ARCHITECTURE_VALIDATOR = "architecture-validator"
    DEBUGGER = "debugger"
    ANALYSIS_SWARM = "analysis-swarm"
    GOAP_AGENT = "goap-agent"
    OTHER = "other"


def agent_type_of(agent: str) -> AgentType:
    """The type whose name the agent's name contains (``ci/code-reviewer-2`` is a code
    reviewer), case-insensitive, underscores read as dashes; else ``other``."""
    name = agent.lower().replace("_", "-")
    for kind in AgentType:
        if kind is not AgentType.OTHER and kind.value in name:
            return kind
    return AgentType.OTHER


def check_agent(value: str, field: str = "agent") -> str:
    """The trimmed agent name, or a :class:`ValidationError` naming ``field`` and the rule."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    name = value.strip()
    if not name:
        raise ValidationError(field, "is empty", f"1..{MAX_AGENT_LEN} characters")
    if len(name) > MAX_AGENT_LEN:
        raise ValidationError(
            field, f"is {len(name)} characters long", f"{MAX_AGENT_LEN} characters"
        )
    found = _DISALLOWED.search(name)
    if found is not None:
        raise ValidationError(
            field, f"contains {found.group(0)[0]!r}", "letters, digits and . _ : @ / - only"
        )
    return name


def sanitize_agent(value: str | None) -> str | None:
    """A free-form name (an MCP client's ``clientInfo.name``) made a valid agent name: runs
    of other characters become ``-``, trimmed to :data:`MAX_AGENT_LEN`; None if nothing is
    left."""
    if value is None:
        return None
    name = _DISALLOWED.sub("-", value.strip()).strip("-")[:MAX_AGENT_LEN]
    return name or None


class AgentExecution(BaseModel):
    """One execution of an agent: how it ended, how long it took, how many steps and errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    execution_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    agent: str = Field(min_length=1, max_length=MAX_AGENT_LEN)
    agent_type: AgentType = AgentType.OTHER
    task_type: str | None = Field(default=None, max_length=64)
    success: bool
    outcome: str | None = Field(default=None, max_length=32)  # an episode's outcome type
    duration_ms: float = Field(ge=0, le=MAX_DURATION_MS)
    steps: int = Field(0, ge=0, le=MAX_STEPS)
    errors: int = Field(0, ge=0, le=MAX_STEPS)
    started_at: datetime = Field(default_factory=utc_now)
    ended_at: datetime = Field(default_factory=utc_now)
    episode_id: uuid.UUID | None = None
    task_description: str | None = Field(default=None, max_length=MAX_TASK_CHARS)
    error_message: str | None = Field(default=None, max_length=MAX_ERROR_MESSAGE_CHARS)


def execution_of(episode: Episode) -> AgentExecution | None:
    """The execution a completed episode with an agent records (None without an agent).
    Success means a ``success`` outcome; a partial success counts as not successful (its
    ``outcome`` says which)."""
    if episode.agent is None or episode.end_time is None or episode.outcome is None:
        return None
    outcome = episode.outcome
    failed = episode.failed_steps_count()
    message = None
    if outcome.type == "failure":
        message = (outcome.reason or "")[:MAX_ERROR_MESSAGE_CHARS] or None
    duration = max(0.0, (episode.end_time - episode.start_time).total_seconds() * 1000)
    return AgentExecution(
        execution_id=episode.episode_id,  # one per episode: a retried write is a no-op
        agent=episode.agent,
        agent_type=agent_type_of(episode.agent),
        task_type=episode.task_type.value,
        success=outcome.type == "success",
        outcome=outcome.type,
        duration_ms=min(duration, MAX_DURATION_MS),
        steps=min(len(episode.steps), MAX_STEPS),
        errors=min(failed, MAX_STEPS),
        started_at=episode.start_time,
        ended_at=episode.end_time,
        episode_id=episode.episode_id,
        task_description=episode.task_description[:MAX_TASK_CHARS],
        error_message=message,
    )


class AgentWindowPoint(BaseModel):
    """One window of an agent's series (ready to chart)."""

    window_start: datetime
    executions: int
    successes: int
    success_rate: float


class AgentSummary(BaseModel):
    """One agent's executions (or, as ``other``, those of the agents beyond the cap)."""

    agent: str
    agent_type: str
    executions: int
    successes: int
    failures: int
    success_rate: float
    avg_duration_ms: float
    min_duration_ms: float
    max_duration_ms: float
    total_duration_ms: float
    steps: int
    errors: int
    last_execution: datetime | None
    current_streak: int  # successes in a row up to the newest execution
    longest_streak: int  # all time; with ``since``, over its newest 1,000 in the range
    agents: int = 1  # how many agents this row stands for (> 1 for ``other``)
    series: list[AgentWindowPoint] = Field(default_factory=list)


class AgentMetrics(BaseModel):
    """Every agent's summary (the busiest first), the totals, and the window of the series."""

    generated_at: datetime
    since: datetime | None
    window: AgentWindow
    total_agents: int
    total_executions: int
    successful_executions: int
    success_rate: float
    total_duration_ms: float
    avg_duration_ms: float
    agents: list[AgentSummary]

    def counts_line(self) -> str:
        """``1 agent, 3 executions`` (the CLI's and the dashboard's headline)."""

        def counted(n: int, noun: str) -> str:
            return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

        return (
            f"{counted(self.total_agents, 'agent')}, {counted(self.total_executions, 'execution')}"
        )


# -- what a store returns (storage/sql/agent_executions.py) ------------------------------
class AgentTotals(NamedTuple):
    """One agent's ``GROUP BY`` row."""

    agent: str
    agent_type: str
    executions: int
    successes: int
    avg_ms: float
    min_ms: float
    max_ms: float
    total_ms: float
    steps: int
    errors: int
    last: datetime | None


@dataclass
class AgentAggregates:
    """The raw aggregate rows (times already converted to datetimes)."""

    totals: list[AgentTotals]  # the busiest first
    streaks: dict[str, tuple[int, int]]  # agent -> (current, longest)
    series: list[tuple[str, int, int, int]]  # agent, window start (us), executions, successes
