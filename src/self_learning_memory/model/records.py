"""The data a durable store takes and returns: filters, episode states, retrieval candidates,
search documents, embeddings, completion records, stats and health reports.
The stores' protocol is :class:`~self_learning_memory.storage.backend.StorageBackend`.
"""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

from .episode import Episode, TaskContext, TaskType
from .pattern import AnyPattern, Heuristic
from .usage import EpisodeUsage, PatternUsage

__all__ = [
    "CompletionRecord",
    "EmbeddingRecord",
    "EmbeddingStatus",
    "EpisodeCandidate",
    "EpisodeFilters",
    "EpisodeState",
    "HealthReport",
    "MergedPattern",
    "PatternFilters",
    "PatternMerge",
    "SearchDocument",
    "ServerHits",
    "StorageStats",
    "candidate_row",
    "id_int",
    "with_source",
]

OutcomeType = Literal["success", "partial_success", "failure"]


class EpisodeFilters(BaseModel):
    """Filters applied in SQL. ``None`` means "any"."""

    model_config = ConfigDict(extra="forbid")

    task_type: TaskType | None = None
    domain: str | None = None
    language: str | None = None
    framework: str | None = None
    outcome: OutcomeType | None = None
    completed: bool | None = None
    tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    agent: str | None = None  # who ran it (``Episode.agent``)


class PatternFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern_type: (
        Literal["tool_sequence", "decision_point", "error_recovery", "context_pattern"] | None
    ) = None
    domain: str | None = None
    min_success_rate: float = 0.0
    min_occurrences: int = 1
    min_confidence: float = 0.0  # success rate x sqrt(sample size)


@dataclass(frozen=True)
class EpisodeState:
    """What the memory needs to validate a step without loading the episode."""

    episode_id: uuid.UUID
    completed: bool
    step_count: int
    last_step_number: int
    learning_status: str | None = None


@dataclass(frozen=True)
class EpisodeCandidate:
    """A completed episode as retrieval sees it before loading it whole."""

    episode_id: uuid.UUID
    task_description: str
    task_type: TaskType
    context: TaskContext
    outcome_type: str | None
    reward_total: float | None
    end_time: datetime | None
    tools: tuple[str, ...]
    lexical: float | None = None  # bm25 relevance, higher is better; None if not a text match
    sources: tuple[str, ...] = ()
    # the episode's retrieval-feedback counters, read with the row where the store's query
    # joins them (``usage_known``; None: no feedback yet), else asked for separately
    usage: EpisodeUsage | None = None
    usage_known: bool = False


def candidate_row(
    episode_id: uuid.UUID,
    task_description: str,
    task_type: TaskType,
    context: TaskContext,
    outcome_type: str | None,
    reward_total: float | None,
    end_time: datetime | None,
    tools: tuple[str, ...],
    lexical: float | None,
    sources: tuple[str, ...],
    usage: EpisodeUsage | None,
    usage_known: bool,
) -> EpisodeCandidate:
    """``EpisodeCandidate(...)`` with every field given, in a sixth of its time (0.6 against
    3.3 us): the fields set at once instead of through the frozen ``__init__``, one
    ``object.__setattr__`` each. For the stores' row decoding: a full-text search decodes up to
    its pool of rows on the store's thread (holding the GIL), the background read-ahead up
    to 20,000. Equal to the constructor's result (``tests/unit/test_retrieval_fast_paths.py``)."""
    row = object.__new__(EpisodeCandidate)
    row.__dict__.update(
        episode_id=episode_id,
        task_description=task_description,
        task_type=task_type,
        context=context,
        outcome_type=outcome_type,
        reward_total=reward_total,
        end_time=end_time,
        tools=tools,
        lexical=lexical,
        sources=sources,
        usage=usage,
        usage_known=usage_known,
    )
    return row


# An id's ``int``, for keying the retrieval's hot maps: an int hashes in C, a UUID in a Python
# method (``UUID.__hash__``, and ``__eq__`` when two objects hold the same id); a search looked up
# ~900 ids, each a Python call or two.
id_int = operator.attrgetter("int")


def with_source(candidate: EpisodeCandidate, source: str) -> EpisodeCandidate:
    """``dataclasses.replace(candidate, sources=(*candidate.sources, source))``, in a fifth of
    its time (a search merges a few rows found twice; ``replace`` runs the frozen ``__init__``,
    one ``object.__setattr__`` per field): a shallow copy of the fields, one changed."""
    copy = object.__new__(EpisodeCandidate)
    fields = copy.__dict__
    fields.update(candidate.__dict__)
    fields["sources"] = (*candidate.sources, source)
    return copy


class NearestRow(NamedTuple):
    """One episode found by a store's own vector search (pgvector): its candidate row, its
    cosine with the query, its vector (little-endian float32 bytes) and whether its text was
    truncated to the model's limit when it was embedded. (A named tuple: a search makes ~80,
    and a tuple is built in a third of a frozen dataclass's time.)"""

    candidate: EpisodeCandidate
    similarity: float
    vector: bytes
    truncated: bool


@dataclass
class ServerHits:
    """One search with feedback (``VectorIndex.search_with_feedback``): the query's
    nearest rows, the expanded query (float32 bytes; None without one) and its nearest rows,
    each nearest first, and the store's data version seen by the same statement (None when it
    was not asked for, or the statement could not carry it)."""

    hits: list[NearestRow]
    expanded: bytes | None
    expanded_hits: list[NearestRow]
    store_version: int | None = None


@dataclass(frozen=True)
class SearchDocument:
    """The text of an episode as the full-text index sees it."""

    description: str
    steps: str
    outcome: str
    reflection: str


@dataclass(frozen=True)
class EmbeddingRecord:
    """An episode's vector under one embedding identity (float32 bytes, L2-normalised)."""

    identity: str
    content_hash: str
    dimensions: int
    vector: bytes
    truncated: bool = False


@dataclass(frozen=True)
class EmbeddingStatus:
    identity: str
    embedded: int  # completed episodes with a vector of this identity
    missing: int  # completed episodes without one
    other_identities: int  # vectors of another model or dimension (need re-embedding)


@dataclass(frozen=True, slots=True)
class MergedPattern:
    """What a store writes back for a pattern observed again."""

    pattern: AnyPattern
    usage: PatternUsage  # ``effectiveness_score`` is the recomputed score


class PatternMerge(Protocol):
    """How a store folds a pattern observed again into its stored aggregate (the learning's
    ``learning.merge.merge_observation``): the store reads the aggregate and writes the result."""

    def __call__(
        self,
        stored: AnyPattern,
        usage: PatternUsage,
        new: AnyPattern,
        *,
        success: bool,
        now: datetime,
    ) -> MergedPattern: ...


@dataclass
class CompletionRecord:
    """Everything one completion writes, in one transaction.

    mode ``inline``: outcome, reward, reflection, patterns and heuristics at once.
    mode ``queued``: only the outcome, plus a durable learning job.
    mode ``learned``: a queued episode's reward, reflection, patterns and heuristics.
    """

    episode: Episode
    mode: Literal["inline", "queued", "learned"]
    search: SearchDocument
    patterns: list[AnyPattern] = field(default_factory=list)
    heuristics: list[Heuristic] = field(default_factory=list)
    success: bool = False  # whether the outcome counts as an application success
    embedding: EmbeddingRecord | None = None
    merge: PatternMerge | None = None  # needed when ``patterns`` may meet stored aggregates


@dataclass(frozen=True)
class StorageStats:
    episodes: int
    completed: int
    steps: int
    patterns: int
    heuristics: int
    learning_queue_depth: int
    size_bytes: int
    pattern_occurrences: int = 0  # sum of occurrence counts: how often patterns were seen
    pattern_success_rate: float = 0.0  # mean over stored patterns
    pattern_effectiveness: float = 0.0  # mean over stored patterns
    outcomes: dict[str, int] = field(default_factory=dict)  # completed episodes per outcome type
    degraded: bool = False  # counted from local copies while the primary was unreachable


@dataclass(frozen=True)
class HealthReport:
    name: str
    healthy: bool
    latency_ms: float
    details: dict[str, object] = field(default_factory=dict)
