"""What a ranking produces: each result's score components, and the scored candidate.

:class:`ScoreComponents` says why a result ranked where it did (see ``ranking.py`` for how each
part is computed); :class:`RetrievalResult` is what ``retrieve_relevant_context`` returns.
:class:`Scored` is one candidate while it is being ranked: its signals, its total, and its
running redundancy with the results MMR has already chosen (``diversity.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from ..model.episode import Episode
from ..model.records import EpisodeCandidate

if TYPE_CHECKING:  # numpy arrays are only passed in when an embedding provider is configured
    from .index import F32

__all__ = ["RankMode", "RetrievalResult", "ScoreComponents", "Scored", "ScoredCandidate"]

RankMode = Literal["hybrid", "lexical", "vector"]


class ScoreComponents(BaseModel):
    """Why a result ranked where it did. Every field is in [0, 1] except ``total``."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["hybrid", "lexical", "vector", "legacy"]
    relevance: float
    lexical: float
    term_coverage: float
    vector: float | None = None
    vector_feedback: float | None = None
    lexical_weight: float | None = None  # hybrid: this query's lexical share of relevance
    context: float
    outcome: float
    recency: float
    # retrieval feedback: the smoothed success of the tasks this episode was used for
    # (model/usage.py); 0.5 without feedback, and then it adds nothing to ``total``
    usefulness: float = 0.5
    uses: int = 0  # completed tasks it was used for, plus explicit helpful/unhelpful marks
    diversity_penalty: float = 0.0
    total: float


class RetrievalResult(BaseModel):
    """One retrieved episode, its score, the score's parts and where it came from."""

    model_config = ConfigDict(extra="forbid")

    episode: Episode
    score: float
    components: ScoreComponents
    provenance: list[str]


@dataclass
class ScoredCandidate:
    candidate: EpisodeCandidate
    components: ScoreComponents
    provenance: list[str]


@dataclass(slots=True)
class Scored:
    """A candidate being ranked: its document tokens, signals and total."""

    cand: EpisodeCandidate
    doc: frozenset[str]
    relevance: float
    lexical: float
    coverage: float
    vector: float | None
    context: float
    matched: list[str]
    outcome: float
    recency: float
    total: float
    feedback: float | None = None
    embedding: F32 | None = None
    lexical_weight: float | None = None
    usefulness: float = 0.5
    uses: int = 0
    max_sim: float = 0.0  # the largest redundancy with a chosen result (MMR)

    def result(self, penalty: float, mode: RankMode) -> ScoredCandidate:
        components = ScoreComponents(
            mode=mode,
            relevance=self.relevance,
            lexical=self.lexical,
            term_coverage=self.coverage,
            vector=self.vector,
            vector_feedback=self.feedback,
            lexical_weight=self.lexical_weight,
            context=self.context,
            outcome=self.outcome,
            recency=self.recency,
            usefulness=self.usefulness,
            uses=self.uses,
            diversity_penalty=penalty,
            total=self.total,
        )
        return ScoredCandidate(self.cand, components, [*self.cand.sources, *self.matched])
