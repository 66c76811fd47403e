"""A query's full-text search started before the hybrid ranking awaits it (``hybrid.py``):
early, while the query is embedded, or deferred, queued on the store's thread as the vector
scan starts. The ranking awaits it where it always ran the search, or abandons it."""

from __future__ import annotations

import asyncio
import dataclasses

from ..model.records import EpisodeCandidate, EpisodeFilters
from ..storage.protocols import CandidateSource

__all__ = ["FullTextSearch"]


def _consume(task: asyncio.Task[list[EpisodeCandidate]]) -> None:
    """Retrieve an abandoned full-text search's outcome (no "never retrieved" warning)."""
    if not task.cancelled():
        task.exception()


@dataclasses.dataclass
class FullTextSearch:
    """A query's full-text search (its ``terms`` and candidate ``pool``), started before the
    ranking awaits it: early (``task``, while the query is embedded) or ``deferred`` (queued
    as the vector scan starts); neither: run where the ranking needs it, if it does.
    From :meth:`HybridPipeline.full_text_search`; the ranking awaits or abandons it."""

    terms: list[str]
    filters: EpisodeFilters
    pool: int
    task: asyncio.Task[list[EpisodeCandidate]] | None = None
    early: bool = False  # to start before the query vector is known
    deferred: bool = False

    def start(self, storage: CandidateSource) -> None:
        self.task = asyncio.ensure_future(
            storage.lexical_candidates(self.terms, self.filters, self.pool)
        )

    def abandon(self) -> None:
        """Cancel a search nobody awaited (the ranking raised first, or was not needed)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            self.task.add_done_callback(_consume)
