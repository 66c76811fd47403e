"""OpenAI embeddings (or any OpenAI-compatible endpoint through ``base_url``).

The API key comes from the environment variable named in the config (``OPENAI_API_KEY`` by
default). Requests have a timeout and bounded retries (the client's own backoff); a batch that
still fails raises :class:`CapabilityUnavailableError` (or :class:`OperationTimeoutError`), and
nothing of it is stored. A response with the wrong count or dimensions is rejected.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import CapabilityUnavailableError, OperationTimeoutError
from .provider import EmbeddingBatch, normalise

__all__ = ["OpenAIEmbedding"]

_DEFAULT_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
MAX_INPUT_CHARS = 32_000  # about 8K tokens: longer texts are truncated and reported


class OpenAIEmbedding:
    name = "openai"

    def __init__(
        self,
        *,
        model: str = "text-embedding-3-small",
        dimensions: int | None = None,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 30.0,
        max_retries: int = 3,
        batch_size: int = 64,
    ) -> None:
        self.model = model
        self.dimensions = dimensions or _DEFAULT_DIMENSIONS.get(model, 1536)
        self._send_dimensions = dimensions is not None
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.batch_size = batch_size
        self._client: Any = None

    @property
    def identity(self) -> str:
        return f"{self.name}:{self.model}:{self.dimensions}"

    def check_available(self) -> None:
        """Raise :class:`CapabilityUnavailableError` when no call could succeed (the package
        or the API key is missing); no request is sent. Used by ``health()``."""
        self._get_client()

    def _get_client(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError as exc:
                raise CapabilityUnavailableError(
                    "The OpenAI embedding provider needs the openai package. "
                    "Fix: pip install 'self-learning-memory[openai]'."
                ) from exc
            key = os.environ.get(self.api_key_env)
            if not key:
                raise CapabilityUnavailableError(
                    f"The OpenAI embedding provider needs an API key in ${self.api_key_env}."
                )
            self._client = openai.AsyncOpenAI(
                api_key=key,
                base_url=self.base_url,
                timeout=self.timeout_s,
                max_retries=self.max_retries,
            )
        return self._client

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        import openai

        client = self._get_client()
        kwargs: dict[str, Any] = {"model": self.model, "input": texts}
        if self._send_dimensions:
            kwargs["dimensions"] = self.dimensions
        try:
            response = await client.embeddings.create(**kwargs)
        except openai.APITimeoutError as exc:
            raise OperationTimeoutError(
                f"The embedding endpoint timed out after {self.timeout_s} s."
            ) from exc
        except (openai.OpenAIError, ValueError, TypeError) as exc:  # ValueError: a non-JSON body
            raise CapabilityUnavailableError(f"The embedding endpoint failed: {exc}.") from exc
        data = sorted(getattr(response, "data", None) or [], key=lambda d: d.index)
        if len(data) != len(texts):
            raise CapabilityUnavailableError(
                f"The embedding endpoint returned {len(data)} vectors for {len(texts)} texts."
            )
        try:
            matrix = np.asarray([d.embedding for d in data], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise CapabilityUnavailableError(
                f"The embedding endpoint returned malformed vectors: {exc}."
            ) from exc
        if matrix.ndim != 2 or matrix.shape[1] != self.dimensions or not np.isfinite(matrix).all():
            raise CapabilityUnavailableError(
                f"The embedding endpoint returned vectors of shape {matrix.shape}, "
                f"expected (n, {self.dimensions}) finite values."
            )
        return matrix

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        truncated = [len(t) > MAX_INPUT_CHARS for t in texts]
        clipped = [t[:MAX_INPUT_CHARS] for t in texts]
        parts = [
            await self._embed_batch(clipped[i : i + self.batch_size])
            for i in range(0, len(clipped), self.batch_size)
        ]
        matrix = np.concatenate(parts) if parts else np.zeros((0, self.dimensions), np.float32)
        return EmbeddingBatch(normalise(matrix), truncated)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
