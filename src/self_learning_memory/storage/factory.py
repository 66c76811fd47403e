"""The one place where concrete storage is chosen from configuration.

One URL chooses the durable store (``StorageConfig.url``, settings ``database.url``, env
``MEMORY_DATABASE_URL``): nothing, a path or a ``sqlite:`` URL is the embedded SQLite file;
``postgresql://`` is the shared PostgreSQL store; ``libsql://`` is Turso. Either way the LMDB cache lives in the data
directory. Optional drivers are imported only when their URL is used.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..config import MemoryConfig
from ..errors import CapabilityUnavailableError, ConfigurationError
from ..paths import resolve_data_dir
from .backend import StorageBackend
from .database_url import mask_url, parse_database_url
from .lmdb_cache import EpisodeCache
from .sqlite import SQLiteStorage

__all__ = ["DB_FILENAME", "open_cache", "open_embedded", "open_store", "resolve_data_dir"]

DB_FILENAME = "memory.db"
CACHE_DIRNAME = "cache"
POSTGRES_EXTRA = "pip install 'self-learning-memory[postgres]'"


def open_cache(data_dir: Path, config: MemoryConfig) -> EpisodeCache | None:
    """The local LMDB cache in ``data_dir`` (not yet opened), or None when disabled."""
    if not config.cache.enabled:
        return None
    return EpisodeCache(
        data_dir / CACHE_DIRNAME,
        max_entries=config.cache.max_episodes,
        map_size_mb=config.cache.map_size_mb,
        max_map_size_mb=config.cache.max_map_size_mb,
    )


def open_embedded(
    data_dir: Path, config: MemoryConfig
) -> tuple[SQLiteStorage, EpisodeCache | None]:
    """The embedded default: SQLite file plus LMDB cache inside ``data_dir`` (not yet opened)."""
    storage = SQLiteStorage(
        data_dir / DB_FILENAME,
        busy_timeout_ms=config.storage.busy_timeout_ms,
        synchronous=config.storage.synchronous,
    )
    return storage, open_cache(data_dir, config)


def open_postgres(dsn: str, config: MemoryConfig) -> StorageBackend:
    """A :class:`PostgresStorage` for ``dsn`` (not yet opened); psycopg is imported here."""
    try:
        from .postgres import PostgresStorage
    except ImportError as exc:
        raise CapabilityUnavailableError(
            f"The PostgreSQL backend needs psycopg 3 and psycopg_pool ({exc.name} is missing); "
            f"install them with: {POSTGRES_EXTRA}"
        ) from exc
    # SQLAlchemy-style "postgresql+psycopg://" names a driver; libpq wants the plain scheme.
    dsn = re.sub(r"^postgres(?:ql)?\+[a-z0-9_]+://", "postgresql://", dsn.strip(), flags=re.I)
    # Waiting for the pool (to open, or for a connection) is waiting for a store that may be
    # down: it must fit in the retry budget, else one attempt alone outlasts it (the pool's own
    # 10 s made a failing call block ~10 s against a 5 s budget).
    wait_s = max(1.0, min(10.0, config.resilience.retry_budget_ms / 1000))
    return PostgresStorage(
        dsn,
        min_size=1,
        max_size=config.storage.pool_size,
        connect_timeout_s=wait_s,
        pgvector=config.storage.pgvector,
        ef_search=config.retrieval.hnsw_ef_search,
        feedback_ef_search=config.retrieval.hnsw_feedback_ef_search,
        feedback_pool=config.retrieval.hnsw_feedback_pool,
        hnsw_m=config.storage.hnsw_m,
        hnsw_ef_construction=config.storage.hnsw_ef_construction,
        hnsw_type=config.storage.hnsw_type,
        exact_below=config.storage.pgvector_exact_below,
    )


TURSO_EXTRA = "pip install 'self-learning-memory[turso]'"
TURSO_REPLICA = "turso-replica.db"


def open_turso(url: str, data_dir: Path, config: MemoryConfig) -> StorageBackend:
    """A :class:`TursoStorage` for a ``libsql://`` URL: an embedded replica in ``data_dir``
    synced with the remote; it starts degraded (local file) when the remote is unreachable."""
    import importlib.util
    import os

    if importlib.util.find_spec("libsql") is None:
        raise CapabilityUnavailableError(
            f"The Turso backend needs the libsql package; install it with: {TURSO_EXTRA}"
        )
    from .turso import TursoStorage

    token = (
        config.storage.auth_token
        or os.environ.get("TURSO_AUTH_TOKEN")
        or os.environ.get("TURSO_TOKEN")
    )
    return TursoStorage.from_url(url.strip(), auth_token=token, local_path=data_dir / TURSO_REPLICA)


def open_store(
    url: str | None, data_dir: Path, config: MemoryConfig
) -> tuple[StorageBackend, EpisodeCache | None]:
    """The durable store ``url`` names plus the local cache in ``data_dir`` (neither opened).

    ``None`` or a path or ``sqlite:`` URL: the embedded store (a URL naming a file or directory
    chooses the data directory). ``postgresql://``: PostgreSQL; ``libsql://``: Turso (replica
    file in ``data_dir``); either with the cache in ``data_dir``.
    """
    if url is None or not url.strip():
        return open_embedded(data_dir, config)
    target = parse_database_url(url)
    if target.kind == "sqlite":
        return open_embedded(target.data_dir or data_dir, config)
    if target.kind == "postgresql":
        return open_postgres(url, config), open_cache(data_dir, config)
    if target.kind == "libsql":
        return open_turso(url, data_dir, config), open_cache(data_dir, config)
    if target.kind == "memory":
        raise ConfigurationError(
            f"Invalid database URL {url!r}: an in-memory database cannot be shared between "
            "processes; use a data directory, a sqlite: URL or a postgresql:// DSN."
        )
    raise ConfigurationError(
        f"Invalid database URL {mask_url(url)!r}: unknown scheme (expected a path, sqlite:, "
        "file:, postgresql:// or libsql://)."
    )
