"""Episodes with vectors for the pgvector tests (``test_pgvector*.py``): a seeded corpus of
distinct task texts, recorded through the memory with the hashing embedder, and the exact
nearest episodes by cosine computed in numpy from the vectors the store holds."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from self_learning_memory import (
    FailureOutcome,
    SelfLearningMemory,
    SuccessOutcome,
    TaskContext,
)
from self_learning_memory.embeddings.provider import EmbeddingProvider
from self_learning_memory.model.episode import utc_now
from self_learning_memory.storage.postgres.pgvector import PgvectorIndex

if TYPE_CHECKING:
    from .support import Backend

__all__ = [
    "DIMS",
    "QUERIES",
    "Recorded",
    "exact_nearest",
    "handle_of",
    "hnsw_indexes",
    "identity_of",
    "indexed",
    "new_database",
    "record_corpus",
    "task_texts",
    "vectors_by_episode",
]

DIMS = 64
_WORDS = [
    "add",
    "fix",
    "write",
    "cache",
    "index",
    "retry",
    "parse",
    "render",
    "deploy",
    "migrate",
    "refactor",
    "test",
    "flaky",
    "slow",
    "orders",
    "invoices",
    "payments",
    "users",
    "sessions",
    "tokens",
    "queue",
    "worker",
    "cron",
    "scheduler",
    "webhook",
    "pagination",
    "cursor",
    "timeout",
    "deadlock",
    "memory",
    "leak",
    "crash",
    "panic",
    "overflow",
    "encoding",
    "unicode",
    "postgres",
    "sqlite",
    "redis",
    "kafka",
    "s3",
    "grpc",
    "http",
    "json",
    "yaml",
    "csv",
    "pdf",
    "image",
    "thumbnail",
    "upload",
    "login",
    "oauth",
    "jwt",
    "csrf",
    "cors",
    "header",
    "cookie",
    "locale",
    "timezone",
    "currency",
    "rounding",
    "report",
    "export",
    "import",
    "batch",
    "stream",
    "chunk",
    "compress",
    "gzip",
    "checksum",
    "hash",
    "signature",
    "audit",
    "metric",
    "trace",
    "log",
]
QUERIES = (
    "fix the flaky retry test for payments",
    "add pagination cursor to the orders endpoint",
    "deadlock in the postgres queue worker",
    "export the invoices report as csv",
    "memory leak when rendering the thumbnail image",
)


def task_texts(count: int, seed: int = 16) -> list[str]:
    """``count`` distinct task descriptions of 6 to 9 words."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 9)))
        if text not in seen:
            seen.add(text)
            out.append(f"{text} #{len(out)}")
    return out


class Recorded:
    """What :func:`record_corpus` wrote: ids in order, and the episodes per label."""

    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []
        self.text: dict[uuid.UUID, str] = {}
        self.window: tuple[datetime, datetime] | None = None  # start times of the window block


async def record_corpus(
    memory: SelfLearningMemory,
    texts: Sequence[str],
    *,
    domain: Callable[[int], str] = lambda i: "web-api",
    failed: Callable[[int], bool] = lambda i: False,
    window: range | None = None,
) -> Recorded:
    """Record and complete one episode per text (domain and outcome chosen by index); the
    episodes whose index is in ``window`` are started between the two times kept in
    ``Recorded.window`` (start_time filters select exactly them)."""
    done = Recorded()
    window_start: datetime | None = None
    for i, text in enumerate(texts):
        if window is not None and i == window.start:
            window_start = utc_now()
        if window is not None and i == window.stop:
            assert window_start is not None
            done.window = (window_start, utc_now())
        eid = await memory.start_episode(text, TaskContext(domain=domain(i)), "code_generation")
        outcome = FailureOutcome(reason="broke") if failed(i) else SuccessOutcome(verdict="ok")
        await memory.complete_episode(eid, outcome)
        done.ids.append(eid)
        done.text[eid] = text
    if window is not None and done.window is None and window_start is not None:
        done.window = (window_start, utc_now())
    return done


def identity_of(memory: SelfLearningMemory) -> str:
    assert memory.vectors is not None
    return memory.vectors.identity


def handle_of(memory: SelfLearningMemory) -> PgvectorIndex:
    """The store's pgvector index capability (the memory must be on pgvector)."""
    handle = memory.storage.capabilities.vector_index
    assert isinstance(handle, PgvectorIndex)
    return handle


async def indexed(memory: SelfLearningMemory) -> tuple[PgvectorIndex, EmbeddingProvider, str]:
    """The store's pgvector index with the HNSW index of the memory's identity built, the
    memory's embedding provider and that identity."""
    handle, identity = handle_of(memory), identity_of(memory)
    assert memory.vectors is not None
    await handle.ensure_index(identity, DIMS)
    return handle, memory.vectors.provider, identity


async def vectors_by_episode(
    memory: SelfLearningMemory, identity: str | None = None
) -> dict[uuid.UUID, bytes]:
    """Every stored vector of the identity, read through ``embeddings_since``."""
    identity = identity or identity_of(memory)
    rows = await memory.storage.embeddings_since(identity, 0, 100_000)
    return {eid: vector for _, eid, vector, _ in rows}


async def exact_nearest(
    memory: SelfLearningMemory, query: str, allowed: Sequence[uuid.UUID], k: int
) -> list[tuple[uuid.UUID, float]]:
    """The ``k`` episodes of ``allowed`` nearest ``query`` by cosine, from the stored vectors,
    nearest first (numpy, no index)."""
    assert memory.vectors is not None
    stored = await vectors_by_episode(memory)
    q = (await memory.vectors.provider.embed([query])).vectors[0].astype(np.float64)
    scored = []
    for eid in allowed:
        v = np.frombuffer(stored[eid], dtype=np.float32).astype(np.float64)
        scored.append((eid, float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q)))))
    scored.sort(key=lambda pair: -pair[1])
    return scored[:k]


@contextmanager
def new_database(
    server_dsn: str, *, owner: str | None = None, settings: Sequence[str] = ()
) -> Iterator[str]:
    """A new database on the server at ``server_dsn`` (owned by ``owner``, with ``settings``
    such as ``enable_seqscan = off`` for its sessions), dropped afterwards; yields its DSN as
    the superuser (or as ``owner``)."""
    import psycopg

    name = f"slm_db_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
        for setting in settings:
            conn.execute(f'ALTER DATABASE "{name}" SET {setting}')
    parts = urlsplit(server_dsn)
    netloc = parts.netloc if owner is None else f"{owner}@{parts.netloc.split('@')[-1]}"
    try:
        yield urlunsplit((parts.scheme, netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def hnsw_indexes(backend: Backend) -> list[tuple[str, bool, str]]:
    """(name, valid, definition) of the HNSW indexes on the store's embeddings table."""
    return backend.rows(
        "SELECT c.relname, i.indisvalid, pg_get_indexdef(c.oid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_am a ON a.oid = c.relam WHERE t.relname = 'embeddings' "
        "AND t.relnamespace = current_schema()::regnamespace AND a.amname = 'hnsw' "
        "ORDER BY c.relname"
    )
