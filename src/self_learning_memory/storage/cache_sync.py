"""The LMDB cache checked against, and refreshed from, the durable store.

"Sync" means making the cache agree with the primary store. :func:`verify_cache` reads every
cached entry, decodes it and compares it with the episode in the store; :func:`refresh_cache`
puts the store's recent learned episodes into the cache (newest kept when they do not all fit)
and drops entries whose episode is gone. When a cached entry differs from the store, a
:class:`ConflictStrategy` decides which side wins (the primary, by default). The periodic
synchronizer built on this is ``storage/sync.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from ..errors import DataIntegrityError
from ..model.records import EpisodeFilters
from .lmdb_cache import decode, encode

if TYPE_CHECKING:
    from ..model.episode import Episode
    from .backend import StorageBackend
    from .lmdb_cache import EpisodeCache

__all__ = ["CacheCheck", "CacheSyncReport", "ConflictStrategy", "refresh_cache", "verify_cache"]

_CHUNK = 500
_SUSPICIOUS = 10  # missing cached episodes from which "most are missing" counts as damage
_PAGE = 1000
MAX_LISTED = 100


class ConflictStrategy(StrEnum):
    """Who wins when the cache and the primary store disagree about an item."""

    PRIMARY_WINS = "primary_wins"  # the durable store is the truth (default)
    MOST_RECENT = "most_recent"  # the newer side (end/start time, or updated_at); ties: primary
    CACHE_WINS = "cache_wins"  # keep what the cache holds; only add what it lacks


def _episode_time(episode: Episode) -> datetime:
    return episode.end_time or episode.start_time


def primary_prevails(strategy: ConflictStrategy, cached: datetime, stored: datetime) -> bool:
    """Whether the store's version replaces the cached one (times: when each side changed)."""
    if strategy is ConflictStrategy.CACHE_WINS:
        return False
    if strategy is ConflictStrategy.MOST_RECENT:
        return stored >= cached
    return True


@dataclass(frozen=True)
class CacheCheck:
    checked: int
    matching: int
    corrupt: list[str] = field(default_factory=list)  # entries that do not decode
    stale: list[str] = field(default_factory=list)  # cached, but gone (or open) in the store
    differs: list[dict[str, object]] = field(default_factory=list)  # id and differing fields

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.stale or self.differs)


async def _stored(storage: StorageBackend, ids: list[uuid.UUID]) -> dict[uuid.UUID, Episode]:
    found: dict[uuid.UUID, Episode] = {}
    for start in range(0, len(ids), _CHUNK):
        for episode in await storage.get_episodes(ids[start : start + _CHUNK]):
            found[episode.episode_id] = episode
    return found


def _differences(cached: Episode, stored: Episode) -> list[str]:
    a, b = cached.model_dump(mode="json"), stored.model_dump(mode="json")
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


async def verify_cache(storage: StorageBackend, cache: EpisodeCache) -> CacheCheck:
    """Every cached entry decodes and equals its episode in the store."""
    raw = await asyncio.to_thread(cache.raw_items)
    stored = await _stored(storage, [key for key, _ in raw])
    corrupt: list[str] = []
    stale: list[str] = []
    differs: list[dict[str, object]] = []
    for key, data in raw:
        episode = decode(data)
        if episode is None or episode.episode_id != key:
            corrupt.append(str(key))
            continue
        truth = stored.get(key)
        if truth is None or not truth.is_complete():
            stale.append(str(key))
            continue
        fields = _differences(episode, truth)
        if fields:
            differs.append({"episode_id": str(key), "fields": fields})
    bad = len(corrupt) + len(stale) + len(differs)
    return CacheCheck(
        checked=len(raw),
        matching=len(raw) - bad,
        corrupt=corrupt[:MAX_LISTED],
        stale=stale[:MAX_LISTED],
        differs=differs[:MAX_LISTED],
    )


@dataclass(frozen=True)
class CacheSyncReport:
    mode: str
    primary: str
    since: str
    dry_run: bool
    examined: int  # completed episodes in the window
    cacheable: int  # of those, learned ones (only those are cached)
    added: int
    updated: int  # cached but different from the store (or corrupt): rewritten
    unchanged: int
    beyond_capacity: int  # learned episodes older than the newest ``capacity``
    stale_removed: int  # cached entries whose episode is gone from the store
    capacity: int
    cache_entries_before: int
    cache_entries_after: int
    strategy: str = ConflictStrategy.PRIMARY_WINS.value
    conflicts: int = 0  # cached entries that differed from the store
    kept_cached: int = 0  # of those, kept because the strategy chose the cache's version


def _refuse_to_drop_last_copies(
    cache: EpisodeCache, raw: dict[uuid.UUID, bytes], stored: dict[uuid.UUID, Episode]
) -> None:
    """Deletes through the library invalidate the cache, so a store that lacks all (or most) of
    the cached episodes was emptied, truncated or replaced: the cache then holds the last copies,
    and dropping them as stale would lose them for good."""
    missing = sum(1 for key in raw if key not in stored)
    if missing and (missing == len(raw) or (missing >= _SUSPICIOUS and 2 * missing > len(raw))):
        raise DataIntegrityError(
            f"The store lacks {missing} of the {len(raw)} episodes in the cache {cache.path}: it "
            "looks emptied or replaced, and the cache may hold the last copies, so they were not "
            "dropped. Back up the data directory, then run `memory-cli storage rebuild-from-cache` "
            "to write them back (or restore the store from a backup); if those episodes really "
            "were deleted, move the cache directory aside and sync again."
        )


async def refresh_cache(
    storage: StorageBackend,
    cache: EpisodeCache,
    since: datetime,
    *,
    force: bool = False,
    dry_run: bool = False,
    strategy: ConflictStrategy = ConflictStrategy.PRIMARY_WINS,
) -> CacheSyncReport:
    """Put the learned, completed episodes started since ``since`` into the cache (rewrite
    every one with ``force``), newest kept if they exceed the cache's capacity, and drop cached
    entries whose episode is no longer in the store. ``dry_run`` counts without writing."""
    strategy = ConflictStrategy(strategy)
    filters = EpisodeFilters(completed=True, since=since)
    examined = 0
    learned: list[Episode] = []
    beyond = 0
    offset = 0
    while True:
        page = await storage.list_episodes(filters, _PAGE, offset)
        examined += len(page)
        for episode in page:  # newest first
            if episode.reward is None:
                continue
            if len(learned) < cache.max_entries:
                learned.append(episode)
            else:
                beyond += 1
        if len(page) < _PAGE:
            break
        offset += _PAGE
    raw = dict(await asyncio.to_thread(cache.raw_items))
    entries_before = len(raw)
    added = updated = unchanged = conflicts = kept = 0
    to_put: list[Episode] = []
    for episode in reversed(learned):  # oldest first, so the newest survive eviction
        data = raw.get(episode.episode_id)
        if data is None:
            added += 1
        elif force or data != encode(episode):
            cached = decode(data)
            if cached is not None and _differences(cached, episode):
                conflicts += 1
                if not force and not primary_prevails(
                    strategy, _episode_time(cached), _episode_time(episode)
                ):
                    kept += 1
                    continue
                updated += 1
            elif force or cached is None:  # corrupt entries are always rewritten
                updated += 1
            else:
                unchanged += 1
                continue
        else:
            unchanged += 1
            continue
        to_put.append(episode)
    stored = await _stored(storage, list(raw))
    _refuse_to_drop_last_copies(cache, raw, stored)
    stale = [k for k in raw if k not in stored or not stored[k].is_complete()]
    if not dry_run:

        def write() -> None:
            for key in stale:
                cache.delete(key)
            for episode in to_put:
                cache.invalidate(episode.episode_id)
                cache.put(episode)

        await asyncio.to_thread(write)
    after = entries_before if dry_run else await asyncio.to_thread(cache.entries)
    embedded = storage.name == "sqlite"
    return CacheSyncReport(
        mode="embedded" if embedded else storage.name,
        primary=(
            "sqlite (local file; there is no remote primary in embedded mode)"
            if embedded
            else storage.name
        ),
        since=since.isoformat(),
        dry_run=dry_run,
        examined=examined,
        cacheable=len(learned) + beyond,
        added=added,
        updated=updated,
        unchanged=unchanged,
        beyond_capacity=beyond,
        stale_removed=len(stale),
        capacity=cache.max_entries,
        cache_entries_before=entries_before,
        cache_entries_after=after,
        strategy=ConflictStrategy(strategy).value,
        conflicts=conflicts,
        kept_cached=kept,
    )
