"""A deterministic, NON-semantic embedding for tests only: feature hashing of word unigrams and
bigrams. It lets tests exercise the vector path without a model; it is never chosen silently
(only ``provider = "hashing"`` selects it)."""

from __future__ import annotations

import hashlib
import itertools
import re

import numpy as np

from .provider import EmbeddingBatch, normalise

__all__ = ["HashingEmbedding"]

_WORD = re.compile(r"\w+")


class HashingEmbedding:
    name = "hashing"

    def __init__(self, dimensions: int = 256) -> None:
        self.model = "feature-hashing-v1"
        self.dimensions = dimensions
        self.calls = 0

    @property
    def identity(self) -> str:
        return f"{self.name}:{self.model}:{self.dimensions}"

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimensions, dtype=np.float32)
        words = _WORD.findall(text.lower())
        for feature in [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimensions
            vec[index] += 1.0 if digest[4] & 1 else -1.0
        return vec

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        self.calls += 1
        matrix = (
            np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimensions))
        )
        return EmbeddingBatch(normalise(matrix.astype(np.float32)), [False] * len(texts))

    async def close(self) -> None:
        return None
