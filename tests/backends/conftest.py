"""The store-level suites here use the ``backend`` fixture from ``tests/conftest.py``
(parametrised over embedded SQLite and PostgreSQL; helpers in ``support.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from self_learning_memory import SelfLearningMemory

from .support import Backend

__all__ = ["Backend"]


@pytest.fixture
async def memory(backend: Backend) -> AsyncIterator[SelfLearningMemory]:
    """An opened memory on the parametrised store (learning inline, no embeddings)."""
    async with backend.open() as opened:
        yield opened
