"""Embedding providers (local MiniLM, OpenAI, a hashing test double) and the vector index."""

from __future__ import annotations

from ..config import EmbeddingsConfig
from ..errors import ConfigurationError
from .provider import EmbeddingBatch, EmbeddingProvider, content_hash, episode_text, query_text

__all__ = [
    "EmbeddingBatch",
    "EmbeddingProvider",
    "content_hash",
    "episode_text",
    "provider_from_config",
    "query_text",
]


def provider_from_config(config: EmbeddingsConfig) -> EmbeddingProvider | None:
    """The configured provider (not loaded yet), or None for ``provider = "none"``.

    A configured provider that cannot work raises CapabilityUnavailableError on first use, with
    the fix; it is never replaced by another provider silently.
    """
    if config.provider == "none":
        return None
    if config.provider == "local":
        from .local import LocalEmbedding

        if config.dimensions not in (None, LocalEmbedding.dimensions):
            raise ConfigurationError(
                f"embeddings.dimensions: the local model has {LocalEmbedding.dimensions} dimensions,"
                f" not {config.dimensions}."
            )
        return LocalEmbedding(batch_size=config.batch_size)
    if config.provider == "openai":
        from .openai import OpenAIEmbedding

        return OpenAIEmbedding(
            model=config.model or "text-embedding-3-small",
            dimensions=config.dimensions,
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            batch_size=config.batch_size,
        )
    from .hashing import HashingEmbedding

    return HashingEmbedding(config.dimensions or 256)
