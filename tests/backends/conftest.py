"""The store-level suites here use the ``backend`` fixture from ``tests/conftest.py``
(parametrised over embedded SQLite and PostgreSQL; helpers in ``support.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from self_learning_memory import SelfLearningMemory

from .pgvector_corpus import new_database
from .support import Backend

__all__ = ["Backend"]


@pytest.fixture
async def memory(backend: Backend) -> AsyncIterator[SelfLearningMemory]:
    """An opened memory on the parametrised store (learning inline, no embeddings)."""
    async with backend.open() as opened:
        yield opened


@pytest.fixture
def no_seqscan(pgvector_server_dsn: str, tmp_path: Path) -> Iterator[Backend]:
    """A database of its own on the pgvector server whose sessions avoid sequential scans and
    sorts: on a small table (with a rare filter) the planner would otherwise sort the few rows
    exactly, and the HNSW index (with its iterative scans) would go untested."""
    settings = ("enable_seqscan = off", "enable_sort = off")
    with new_database(pgvector_server_dsn, settings=settings) as url:
        yield Backend("postgres18", url, tmp_path / "data")
