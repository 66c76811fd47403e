"""What the memory learns: patterns (four variants, tagged by ``type``) and heuristics.

Every pattern carries ``occurrence_count`` so that aggregation across episodes can grow its
sample size: upserting a pattern with the same :meth:`similarity_key` merges it into the stored
one (``learning.merge.merge_patterns``), so counts and success rates move with every episode.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from .episode import ComplexityLevel, TaskContext, utc_now
from .names import ContextPatternName, DecisionPointName, ErrorRecoveryName, ToolSequenceName

__all__ = [
    "ContextPattern",
    "DecisionPoint",
    "ErrorRecovery",
    "Evidence",
    "Heuristic",
    "OutcomeStats",
    "Pattern",
    "ToolSequence",
    "context_of",
    "normalise_error",
    "recent_ids",
    "weighted_mean",
]

MAX_EVIDENCE_IDS = 50  # episode ids kept on a pattern or heuristic (counts keep growing)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutcomeStats(_Model):
    success_count: int = 0
    failure_count: int = 0
    total_count: int = 0
    avg_duration_secs: float = 0.0

    def success_rate(self) -> float:
        return self.success_count / self.total_count if self.total_count else 0.0


class Evidence(_Model):
    episode_ids: list[uuid.UUID] = Field(default_factory=list)
    success_rate: float = 0.0
    sample_size: int = 0


class _PatternBase(_Model):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurrence_count: int = 1
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    def sample_size(self) -> int:
        return self.occurrence_count

    def confidence(self) -> float:
        """success_rate x sqrt(sample size), as in the reference system (can exceed 1)."""
        n = self.sample_size()
        return self.rate() * math.sqrt(n) if n else 0.0

    def rate(self) -> float:
        raise NotImplementedError

    def pattern_context(self) -> TaskContext | None:
        return None


def _ctx_key(ctx: TaskContext) -> str:
    return ctx.domain


class ToolSequence(_PatternBase):
    type: ToolSequenceName = "tool_sequence"
    tools: list[str]
    context: TaskContext
    success_rate: float
    avg_latency: float = 0.0  # mean step latency, milliseconds
    last_seen_episode: uuid.UUID | None = None

    def rate(self) -> float:
        return self.success_rate

    def pattern_context(self) -> TaskContext:
        return self.context

    def similarity_key(self) -> str:
        return f"tool_seq:{','.join(self.tools)}:{_ctx_key(self.context)}"


class DecisionPoint(_PatternBase):
    type: DecisionPointName = "decision_point"
    condition: str
    action: str
    outcome_stats: OutcomeStats
    context: TaskContext

    def rate(self) -> float:
        return self.outcome_stats.success_rate()

    def sample_size(self) -> int:
        return self.outcome_stats.total_count

    def pattern_context(self) -> TaskContext:
        return self.context

    def similarity_key(self) -> str:
        condition = normalise_error(self.condition, 1000)
        return f"decision:{condition}:{self.action}:{_ctx_key(self.context)}"


class ErrorRecovery(_PatternBase):
    type: ErrorRecoveryName = "error_recovery"
    error_type: str
    recovery_steps: list[str]
    success_rate: float
    context: TaskContext

    def rate(self) -> float:
        return self.success_rate

    def pattern_context(self) -> TaskContext:
        return self.context

    def similarity_key(self) -> str:
        steps = ",".join(normalise_error(step, 300) for step in self.recovery_steps)
        return f"error_recovery:{normalise_error(self.error_type)}:{steps}:{self.context.domain}"


class ContextPattern(_PatternBase):
    type: ContextPatternName = "context_pattern"
    context_features: list[str]
    recommended_approach: str
    evidence: list[uuid.UUID] = Field(default_factory=list)
    success_rate: float

    def rate(self) -> float:
        return self.success_rate

    def similarity_key(self) -> str:
        return f"context:{','.join(self.context_features)}:{self.recommended_approach}"


Pattern = Annotated[
    ToolSequence | DecisionPoint | ErrorRecovery | ContextPattern, Field(discriminator="type")
]
AnyPattern = ToolSequence | DecisionPoint | ErrorRecovery | ContextPattern


def context_of(pattern: AnyPattern) -> TaskContext:
    """The pattern's context; for a context pattern, rebuilt from its features."""
    ctx = pattern.pattern_context()
    if ctx is not None:
        return ctx
    values = dict(f.split(":", 1) for f in getattr(pattern, "context_features", []) if ":" in f)
    complexity = values.get("complexity", "")
    return TaskContext(
        language=values.get("language"),
        framework=values.get("framework"),
        domain=values.get("domain", "general"),
        complexity=ComplexityLevel(complexity)
        if complexity in ComplexityLevel._value2member_map_
        else ComplexityLevel.MODERATE,
    )


_VOLATILE = re.compile(
    r"0x[0-9a-f]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+", re.IGNORECASE
)
_PATHLIKE = re.compile(r"[^\s'\"]*[/\\][^\s'\"]*|\b[\w-]+\.[a-z]{1,5}\b", re.IGNORECASE)


def normalise_error(message: str, limit: int = 200) -> str:
    """Fold free text for grouping: lowercase, paths and file names, numbers and ids masked,
    spaces folded, cut to ``limit``. Two messages that differ only in such details match."""
    text = _PATHLIKE.sub("<path>", message.lower())
    text = _VOLATILE.sub("#", text)
    return " ".join(text.split())[:limit]


def weighted_mean(a: float, na: int, b: float, nb: int) -> float:
    total = na + nb
    return (a * na + b * nb) / total if total else 0.0


def recent_ids(old: list[uuid.UUID], new: list[uuid.UUID]) -> list[uuid.UUID]:
    merged = [i for i in old if i not in new] + new
    return merged[-MAX_EVIDENCE_IDS:]


class Heuristic(_Model):
    """A learned rule: when ``condition`` holds, ``action`` tends to work (with evidence)."""

    heuristic_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    condition: str
    action: str
    confidence: float = 0.0
    evidence: Evidence = Field(default_factory=Evidence)
    domain: str = "general"
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    def similarity_key(self) -> str:
        return f"heuristic:{normalise_error(self.condition, 1000)}:{normalise_error(self.action, 1000)}"

    def update_evidence(self, episode_id: uuid.UUID, success: bool) -> None:
        """Add one observation: running success rate, sample size, confidence = sr x sqrt(n)."""
        ev = self.evidence
        n = ev.sample_size + 1
        rate = (ev.success_rate * ev.sample_size + (1.0 if success else 0.0)) / n
        self.evidence = Evidence(
            episode_ids=recent_ids(ev.episode_ids, [episode_id]), success_rate=rate, sample_size=n
        )
        self.confidence = rate * math.sqrt(n)
        self.updated_at = utc_now()

    def merge(self, new: Heuristic) -> Heuristic:
        """Fold a freshly extracted heuristic (its evidence) into this stored one."""
        a, b = self.evidence, new.evidence
        n = a.sample_size + b.sample_size
        rate = weighted_mean(a.success_rate, a.sample_size, b.success_rate, b.sample_size)
        ev = Evidence(
            episode_ids=recent_ids(a.episode_ids, b.episode_ids), success_rate=rate, sample_size=n
        )
        return self.model_copy(
            update={"evidence": ev, "confidence": rate * math.sqrt(n), "updated_at": new.updated_at}
        )
