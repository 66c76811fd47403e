"""StorageSynchronizer: keeps the LMDB cache warm from the primary store.

- **Episodes**: the learned, completed episodes started in the sync window go into the cache
  (through :func:`~.cache_sync.refresh_cache`, newest kept when they exceed its capacity);
  entries whose episode left the primary are dropped.
- **Patterns and heuristics**: a small index (the ``index_limit`` patterns seen most often and
  the ``index_limit`` most confident heuristics, with their usage) is kept in the cache
  environment, so a process can still show them while the primary is unreachable.
- **Conflicts**: when a cached item differs from the primary, :class:`ConflictStrategy`
  decides: ``primary_wins`` (default), ``most_recent`` (end/start time of an episode,
  ``updated_at`` of a pattern or heuristic; a tie goes to the primary) or ``cache_wins``.
- **State** (last sync, counts, last error, the last run's stats) is persisted in the cache
  environment and survives restarts; :meth:`StorageSynchronizer.report` is what health and
  stats show.
- **Periodic**: :meth:`start` runs an owned task that syncs every ``interval_s`` seconds (300
  by default); :meth:`stop` cancels and awaits it. A failed run is logged and recorded, and the
  loop goes on. Runs never overlap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..model.episode import utc_now
from ..model.pattern import Heuristic
from ..model.records import PatternFilters
from ..model.usage import PatternUsage
from .cache_sync import CacheSyncReport, ConflictStrategy, primary_prevails, refresh_cache
from .codec import pattern_from_json

if TYPE_CHECKING:
    from ..model.pattern import AnyPattern
    from .backend import StorageBackend
    from .lmdb_cache import EpisodeCache

__all__ = [
    "ConflictStrategy",
    "StorageSynchronizer",
    "SyncState",
    "SyncStats",
    "index_synced",
    "read_heuristic_index",
    "read_pattern_index",
]

log = logging.getLogger(__name__)

STATE_KEY = b"sync/state"
PATTERN_PREFIX = b"sync/p/"
HEURISTIC_PREFIX = b"sync/h/"
_PAGE = 200


@dataclass
class SyncStats:
    """What one run did."""

    since: str
    strategy: str
    episodes_synced: int = 0  # added or rewritten in the cache
    episodes_unchanged: int = 0
    episodes_removed: int = 0  # cached, but gone from the primary
    patterns_synced: int = 0
    heuristics_synced: int = 0
    index_removed: int = 0  # patterns/heuristics no longer in the primary's top entries
    conflicts_resolved: int = 0  # cached items that differed from the primary
    kept_cached: int = 0  # conflicts the strategy resolved in the cache's favour
    errors: int = 0
    duration_ms: float = 0.0
    finished_at: str = ""


@dataclass
class SyncState:
    """Persisted in the cache environment under ``sync/state``."""

    last_sync: str | None = None  # start of the last successful run (ISO 8601, UTC)
    sync_count: int = 0
    error_count: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    last_stats: dict[str, Any] | None = field(default=None)


def _dump_pattern(pattern: AnyPattern, usage: PatternUsage) -> bytes:
    return json.dumps(
        {"pattern": pattern.model_dump_json(), "usage": usage.model_dump_json()},
        sort_keys=True,
    ).encode()


def _load_pattern(data: bytes) -> tuple[AnyPattern, PatternUsage]:
    raw = json.loads(data)
    return pattern_from_json(raw["pattern"]), PatternUsage.model_validate_json(raw["usage"])


def read_pattern_index(cache: EpisodeCache) -> list[tuple[AnyPattern, PatternUsage]]:
    """The synchronized pattern index in ``cache``, most often seen first (blocking)."""
    found = [_load_pattern(v) for _, v in cache.meta_scan(PATTERN_PREFIX)]
    return sorted(found, key=lambda pu: (-pu[0].occurrence_count, str(pu[0].id)))


def read_heuristic_index(cache: EpisodeCache) -> list[Heuristic]:
    """The synchronized heuristic index in ``cache``, most confident first (blocking)."""
    found = [Heuristic.model_validate_json(v) for _, v in cache.meta_scan(HEURISTIC_PREFIX)]
    return sorted(found, key=lambda h: (-h.confidence, str(h.heuristic_id)))


def index_synced(cache: EpisodeCache) -> bool:
    """Whether a synchronizer run has stored its state (and index) in ``cache`` (blocking)."""
    raw = cache.meta_get(STATE_KEY)
    return raw is not None and json.loads(raw).get("last_sync") is not None


class StorageSynchronizer:
    """Keeps ``cache`` warm from ``storage``; see the module docstring."""

    def __init__(
        self,
        storage: StorageBackend,
        cache: EpisodeCache,
        *,
        strategy: ConflictStrategy | str = ConflictStrategy.PRIMARY_WINS,
        interval_s: float = 300.0,
        window_s: float = 3600.0,
        index_limit: int = 500,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.storage = storage
        self.cache = cache
        self.strategy = ConflictStrategy(strategy)
        self.interval_s = interval_s
        self.window = timedelta(seconds=window_s)
        self.index_limit = index_limit
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._ran = asyncio.Event()
        self.state = SyncState()

    # -- state ---------------------------------------------------------------------------
    async def load_state(self) -> SyncState:
        raw = await asyncio.to_thread(self.cache.meta_get, STATE_KEY)
        self.state = SyncState(**json.loads(raw)) if raw else SyncState()
        return self.state

    async def _save_state(self) -> None:
        data = json.dumps(asdict(self.state)).encode()
        await asyncio.to_thread(self.cache.meta_put, {STATE_KEY: data})

    def report(self) -> dict[str, Any]:
        """State and configuration, as health and stats show them."""
        return {
            "strategy": self.strategy.value,
            "interval_s": self.interval_s,
            "periodic": self.running,
            **asdict(self.state),
        }

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- one-off syncs -------------------------------------------------------------------
    async def sync_episode(self, episode_id: uuid.UUID) -> bool:
        """Put one episode into the cache if the primary has it learned and completed."""
        episode = await self.storage.get_episode(episode_id)
        if episode is None or not episode.is_complete() or episode.reward is None:
            return False
        await asyncio.to_thread(self.cache.put, episode)
        return True

    async def sync_all_recent(
        self, since: datetime | None = None, *, force: bool = False, dry_run: bool = False
    ) -> tuple[SyncStats, CacheSyncReport]:
        """Sync episodes started since ``since`` (default: the last successful sync, at most
        ``window`` ago or earlier), plus the pattern and heuristic index."""
        async with self._lock:
            started = utc_now()
            clock = time.perf_counter()
            if since is None:
                since = started - self.window
                if self.state.last_sync is not None:
                    since = min(since, datetime.fromisoformat(self.state.last_sync))
            stats = SyncStats(since=since.isoformat(), strategy=self.strategy.value)
            try:
                report = await refresh_cache(
                    self.storage,
                    self.cache,
                    since,
                    force=force,
                    dry_run=dry_run,
                    strategy=self.strategy,
                )
                stats.episodes_synced = report.added + report.updated
                stats.episodes_unchanged = report.unchanged
                stats.episodes_removed = report.stale_removed
                stats.conflicts_resolved = report.conflicts
                stats.kept_cached = report.kept_cached
                await self._sync_index(stats, force=force, dry_run=dry_run)
            except Exception as exc:
                stats.errors += 1
                self.state.error_count += 1
                self.state.last_error = f"{type(exc).__name__}: {exc}"
                self.state.last_error_at = utc_now().isoformat()
                if not dry_run:
                    await self._save_state()
                raise
            stats.duration_ms = (time.perf_counter() - clock) * 1000
            stats.finished_at = utc_now().isoformat()
            if not dry_run:
                self.state.last_sync = started.isoformat()
                self.state.sync_count += 1
                self.state.last_stats = asdict(stats)
                await self._save_state()
            return stats, report

    async def _sync_index(self, stats: SyncStats, *, force: bool, dry_run: bool) -> None:
        if self.index_limit <= 0:
            return
        patterns: list[tuple[AnyPattern, PatternUsage]] = []
        while len(patterns) < self.index_limit:
            page = await self.storage.list_patterns(
                PatternFilters(min_occurrences=1), min(_PAGE, self.index_limit), len(patterns)
            )
            patterns.extend(page[: self.index_limit - len(patterns)])
            if len(page) < _PAGE:
                break
        heuristics: list[Heuristic] = []
        while len(heuristics) < self.index_limit:
            hpage = await self.storage.list_heuristics(
                min(_PAGE, self.index_limit), len(heuristics)
            )
            heuristics.extend(hpage[: self.index_limit - len(heuristics)])
            if len(hpage) < _PAGE:
                break
        cached_p = dict(await asyncio.to_thread(self.cache.meta_scan, PATTERN_PREFIX))
        cached_h = dict(await asyncio.to_thread(self.cache.meta_scan, HEURISTIC_PREFIX))
        puts: dict[bytes, bytes] = {}
        for pattern, usage in patterns:
            key = PATTERN_PREFIX + pattern.id.bytes
            data = _dump_pattern(pattern, usage)
            old = cached_p.pop(key, None)
            if old is not None and old != data and not force:
                stats.conflicts_resolved += 1
                if not primary_prevails(
                    self.strategy, _load_pattern(old)[0].updated_at, pattern.updated_at
                ):
                    stats.kept_cached += 1
                    continue
            if old != data or force:
                puts[key] = data
                stats.patterns_synced += 1
        for heuristic in heuristics:
            key = HEURISTIC_PREFIX + heuristic.heuristic_id.bytes
            data = heuristic.model_dump_json().encode()
            old = cached_h.pop(key, None)
            if old is not None and old != data and not force:
                stats.conflicts_resolved += 1
                cached = Heuristic.model_validate_json(old)
                if not primary_prevails(self.strategy, cached.updated_at, heuristic.updated_at):
                    stats.kept_cached += 1
                    continue
            if old != data or force:
                puts[key] = data
                stats.heuristics_synced += 1
        gone = list(cached_p) + list(cached_h)  # no longer among the primary's top entries
        stats.index_removed = len(gone)
        if not dry_run:
            await asyncio.to_thread(self.cache.meta_delete, gone)
            await asyncio.to_thread(self.cache.meta_put, puts)

    # -- the cached index (for reads while the primary is away) --------------------------
    async def cached_patterns(self) -> list[tuple[AnyPattern, PatternUsage]]:
        return await asyncio.to_thread(read_pattern_index, self.cache)

    async def cached_heuristics(self) -> list[Heuristic]:
        return await asyncio.to_thread(read_heuristic_index, self.cache)

    # -- the periodic task ---------------------------------------------------------------
    async def start(self) -> None:
        """Load the persisted state and start the periodic task (idempotent)."""
        await self.load_state()
        if self.running:
            return
        self._task = asyncio.create_task(self._loop(), name="storage-synchronizer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait_for_runs(self, count: int, timeout: float) -> bool:
        """Wait until ``state.sync_count`` reaches ``count`` (or a run fails); False on
        timeout. For tests and tools: never sleep to wait for the task."""
        deadline = time.monotonic() + timeout
        while self.state.sync_count < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._ran.clear()
            try:
                await asyncio.wait_for(self._ran.wait(), remaining)
            except TimeoutError:
                return self.state.sync_count >= count
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                stats, _ = await self.sync_all_recent()
                log.debug("periodic sync: %s", stats)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # recorded in the state; the loop goes on
                log.warning("periodic cache sync failed: %s", exc)
            finally:
                self._ran.set()
