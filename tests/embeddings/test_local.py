"""The torch-free MiniLM forward pass gives sentence-transformers' vectors."""

from __future__ import annotations

import numpy as np
import pytest

from self_learning_memory.embeddings.local import MAX_TOKENS, LocalEmbedding

pytestmark = pytest.mark.integration

SENTENCES = [
    "Add a /health endpoint to the FastAPI orders service",
    "the orders listing returns everything at once, page it",
    "Fix the flaky payment retry test that depends on the wall clock",
    "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
    "ünïcödé tëxt, emoji 🚀 and mixed CASE",
]


@pytest.fixture(scope="module")
def numpy_backend() -> LocalEmbedding:
    return LocalEmbedding(backend="numpy")


def test_numpy_backend_matches_sentence_transformers(numpy_backend: LocalEmbedding) -> None:
    ours = numpy_backend.encode_sync(SENTENCES)
    reference = LocalEmbedding(backend="sentence-transformers").encode_sync(SENTENCES)
    assert ours.vectors.shape == (len(SENTENCES), 384)
    cosines = (ours.vectors * reference.vectors).sum(axis=1)
    assert cosines.min() > 0.999, cosines


def test_vectors_are_normalised_and_semantic(numpy_backend: LocalEmbedding) -> None:
    vectors = numpy_backend.encode_sync(SENTENCES[:3]).vectors
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    related = float(vectors[0] @ vectors[1])  # both about orders endpoints
    unrelated = float(vectors[0] @ vectors[2])
    assert related > unrelated


def test_long_text_is_truncated_and_reported(numpy_backend: LocalEmbedding) -> None:
    batch = numpy_backend.encode_sync(["short", "word " * (MAX_TOKENS + 50)])
    assert batch.truncated == [False, True]


def test_batching_gives_the_same_vectors(numpy_backend: LocalEmbedding) -> None:
    together = numpy_backend.encode_sync(SENTENCES).vectors
    alone = np.stack([numpy_backend.encode_sync([s]).vectors[0] for s in SENTENCES])
    np.testing.assert_allclose(together, alone, atol=1e-5)
