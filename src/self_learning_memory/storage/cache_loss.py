"""Acknowledged episodes the embedded store lost, told by the cache's copies.

A completion is written to the store, verified, and only then put into the LMDB cache; a delete
through the library removes the cache's entry (with a tombstone). So in the embedded mode an
episode in the cache that the store lacks was acknowledged and then lost behind the library's
back: a damaged or zeroed write-ahead log left by a process killed with SIGKILL (SQLite drops
the WAL frames from the damage on, in silence), a store file truncated or replaced. The check
compares ids only (the cache's keys against one indexed query on the store), so health and
``storage verify`` can run it every time: 10,000 cached episodes cost about 20 ms.

Only the embedded SQLite store: a shared store (PostgreSQL, Turso) may lose an episode to
another machine's delete while this process was not listening, which is no loss.
:mod:`..backup.rebuild` writes the missing episodes back.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import StorageBackend
    from .lmdb_cache import EpisodeCache

__all__ = ["REBUILD_COMMAND", "StoreLoss", "cached_but_missing", "store_loss_details"]

REBUILD_COMMAND = "memory-cli storage rebuild-from-cache"
MAX_LISTED = 20


@dataclass(frozen=True)
class StoreLoss:
    """Cached episodes the store lacks (``missing`` of ``cached``; ``sample``: some of their ids)."""

    cached: int
    missing: int
    sample: list[str] = field(default_factory=list)

    def message(self, store: object, cache: object) -> str:
        return (
            f"The store {store} lacks {self.missing} of the {self.cached} episodes in the cache "
            f"{cache}: acknowledged writes were lost (a damaged write-ahead log, a truncated or "
            f"replaced store). Back up the data directory, then run `{REBUILD_COMMAND}` to write "
            "them back from the cache's copies."
        )

    def details(self, store: object, cache: object) -> dict[str, object]:
        return {
            "error": self.message(store, cache),
            "lost_episodes": self.missing,
            "cached_episodes": self.cached,
            "lost_sample": self.sample,
            "action": f"back up the data directory, then run `{REBUILD_COMMAND}`",
        }


_PRESENT = "SELECT episode_id FROM episodes WHERE episode_id IN (SELECT value FROM json_each(?))"


async def cached_but_missing(storage: StorageBackend, cache: EpisodeCache) -> StoreLoss | None:
    """The cached episodes the embedded store lacks; None when nothing is lost or the check does
    not apply (no usable cache, not the embedded store)."""
    caps = storage.capabilities
    sql = caps.maintenance
    # a wrapped store (resilience on) may hold completions in its outbox that the cache already
    # has: not a loss, so only the plain embedded store is checked
    if storage.name != "sqlite" or caps.resilience is not None or sql is None:
        return None
    if cache.disabled is not None or not cache.is_open:
        return None
    keys = await asyncio.to_thread(cache.keys)
    if not keys:
        return None
    ids = [str(k) for k in keys]
    text = json.dumps(ids)

    def run(conn: Any) -> set[str]:
        return {str(r[0]) for r in conn.execute(_PRESENT, (text,))}

    present: set[str] = await sql.run_maintenance(run)
    missing = [i for i in ids if i not in present]
    if not missing:
        return None
    return StoreLoss(cached=len(ids), missing=len(missing), sample=missing[:MAX_LISTED])


async def store_loss_details(
    storage: StorageBackend, cache: EpisodeCache | None
) -> dict[str, object] | None:
    """What health adds to an embedded store's report when it lost acknowledged writes: the
    committed WAL frames a crash left damaged (``wal_check.py``) and the cached episodes it
    lacks; None when neither."""
    db = storage.capabilities.local_file
    if storage.name != "sqlite" or db is None:
        return None
    from .wal_check import read_wal_loss, wal_loss_path

    wal = await asyncio.to_thread(read_wal_loss, db)
    loss = None if cache is None else await cached_but_missing(storage, cache)
    if wal is None and loss is None:
        return None
    details: dict[str, object] = {}
    errors = []
    if wal is not None:
        errors.append(
            f"The write-ahead log of {db} lost {wal.lost_frames} of its {wal.committed_frames} "
            f"committed frames (found at {wal.detected_at}, recorded in {wal_loss_path(db)}): "
            "acknowledged writes are gone."
        )
        details.update(wal_lost_frames=wal.lost_frames, wal_committed_frames=wal.committed_frames)
    if loss is not None:
        assert cache is not None
        errors.append(loss.message(db, cache.path))
        details.update(
            lost_episodes=loss.missing, cached_episodes=loss.cached, lost_sample=loss.sample
        )
    else:
        errors.append(
            f"Back up the data directory, then run `{REBUILD_COMMAND}` to write back what the "
            f"cache holds and clear the record (or remove {wal_loss_path(db)} by hand)."
        )
    details["error"] = " ".join(errors)
    details["action"] = f"back up the data directory, then run `{REBUILD_COMMAND}`"
    return details
