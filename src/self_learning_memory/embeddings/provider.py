"""The EmbeddingProvider protocol, the batch it returns, and how texts are rendered.

A provider turns texts into L2-normalised float32 vectors of a fixed dimension. It says which
texts it had to truncate, so retrieval can report it in provenance. Providers load their model
lazily: constructing one is cheap; the first ``embed`` call pays the load.

A provider may also have ``embed_documents`` (same signature as ``embed``): the vectors of the
texts that are stored and searched (episodes), where ``embed`` serves queries. Retrieval calls
it through :func:`embed_documents`, which falls back to ``embed``. The local model uses it to
embed episodes with the float32 graph (in the background, not latency-critical) and queries
with the faster int8 one (docs/retrieval.md#embedding-providers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from ..model.episode import Episode, ErrorResult, TaskContext

if TYPE_CHECKING:  # numpy is imported when vectors are made, not at start-up (CLI start time)
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

__all__ = [
    "EmbeddingBatch",
    "EmbeddingProvider",
    "content_hash",
    "embed_documents",
    "episode_text",
    "query_text",
]


@dataclass(frozen=True)
class EmbeddingBatch:
    vectors: Vectors  # shape (n, dimensions), rows L2-normalised
    truncated: list[bool] = field(default_factory=list)


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into normalised vectors. ``identity`` names provider, model and dimensions:
    vectors of different identities are never compared."""

    name: str
    model: str
    dimensions: int

    @property
    def identity(self) -> str: ...

    async def embed(self, texts: list[str]) -> EmbeddingBatch: ...

    async def close(self) -> None: ...


async def embed_documents(provider: EmbeddingProvider, texts: list[str]) -> EmbeddingBatch:
    """The vectors of texts to store (episodes): the provider's ``embed_documents`` if it has
    one, else its ``embed``."""
    documents = getattr(provider, "embed_documents", None)
    if documents is None:
        return await provider.embed(texts)
    return cast("EmbeddingBatch", await documents(texts))


def normalise(vectors: Vectors) -> Vectors:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return cast("Vectors", (vectors / norms).astype(np.float32))


def content_hash(identity: str, text: str) -> str:
    return hashlib.sha256(f"{identity}\x00{text}".encode()).hexdigest()


def _context_text(context: TaskContext) -> str:
    parts = [f"domain: {context.domain}"]
    if context.language:
        parts.append(f"language: {context.language}")
    if context.framework:
        parts.append(f"framework: {context.framework}")
    if context.tags:
        parts.append(f"tags: {', '.join(context.tags)}")
    return ". ".join(parts)


MAX_EMBEDDED_TOOLS = 8
MAX_EMBEDDED_ACTIONS = 12
MAX_EMBEDDED_ERRORS = 3


def episode_text(episode: Episode) -> str:
    """What an episode means, for embedding: the task, its context, the tools it used, what
    its steps did (distinct actions, in order) and the errors it met (distinct messages).

    The steps and errors say *how* a task was done, which a paraphrased query often describes
    better than the task's title (measured in docs/performance.md#retrieval-quality). The
    outcome is not embedded: it is a ranking signal of its own."""
    tools = list(dict.fromkeys(s.tool for s in episode.steps))
    text = f"{episode.task_description.rstrip('.')}. {_context_text(episode.context)}."
    if tools:
        text += f" tools used: {', '.join(tools[:MAX_EMBEDDED_TOOLS])}."
    actions = list(dict.fromkeys(s.action.strip() for s in episode.steps if s.action.strip()))
    if actions:
        text += f" steps: {'; '.join(actions[:MAX_EMBEDDED_ACTIONS])}."
    errors = list(
        dict.fromkeys(
            s.result.message.strip()
            for s in episode.steps
            if isinstance(s.result, ErrorResult) and s.result.message.strip()
        )
    )
    if errors:
        text += f" errors: {'; '.join(errors[:MAX_EMBEDDED_ERRORS])}."
    return text


def query_text(query: str, context: TaskContext | None) -> str:
    """What a query embeds: its text, then its context's values without their labels
    (``Fix the flaky test. web-api python pytest.``: domain, language, framework, tags).

    Episodes keep the labelled form (``episode_text``). Measured 2026-12-06 with the local model
    (docs/performance.md, "Query embedding"): against the labelled form, hybrid hit@1 / nDCG@10
    0.915 / 0.905 instead of 0.906 / 0.900 on the quality set and 0.769 / 0.835 instead of
    0.731 / 0.807 on the held-out set, with 18 instead of 23 tokens for the median peer-style
    query (the embedding's cost grows with the tokens); without the context at all, 0.888 /
    0.883 and 0.686 / 0.804. Its cost: the learning-curve benchmark's agent succeeded 377
    instead of 382 times of 500. Measured with the local model only (every provider embeds
    queries this way)."""
    if context is None:
        return query
    values = [context.domain, context.language, context.framework, *context.tags]
    return f"{query}. {' '.join(v for v in values if v)}."
