"""The one place where concrete storage is chosen from configuration."""

from __future__ import annotations

from pathlib import Path

from ..config import MemoryConfig
from ..paths import resolve_data_dir
from .lmdb_cache import EpisodeCache
from .sqlite import SQLiteStorage

__all__ = ["DB_FILENAME", "open_embedded", "resolve_data_dir"]

DB_FILENAME = "memory.db"
CACHE_DIRNAME = "cache"


def open_embedded(
    data_dir: Path, config: MemoryConfig
) -> tuple[SQLiteStorage, EpisodeCache | None]:
    """The embedded default: SQLite file plus LMDB cache inside ``data_dir`` (not yet opened)."""
    storage = SQLiteStorage(
        data_dir / DB_FILENAME,
        busy_timeout_ms=config.storage.busy_timeout_ms,
        synchronous=config.storage.synchronous,
    )
    cache = None
    if config.cache.enabled:
        cache = EpisodeCache(
            data_dir / CACHE_DIRNAME,
            max_entries=config.cache.max_episodes,
            map_size_mb=config.cache.map_size_mb,
            max_map_size_mb=config.cache.max_map_size_mb,
        )
    return storage, cache
