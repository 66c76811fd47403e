"""The embedded cache in front of the durable store: completed episodes in an LMDB environment.

- Codec: a 4-byte magic, a CRC-32 and the episode's JSON; every field round-trips. A value
  that fails the checksum, the size limit or validation is deleted and reported as a miss, so
  the caller re-reads from SQL: a corrupt entry is never returned.
- Bounded: at most ``max_entries`` episodes; the least recently used go first. Reads record
  their touches in memory and apply them with the next write, so a hit costs no write.
- Only completed episodes are cached (they no longer change); a delete leaves a tombstone so a
  reader racing with the delete cannot put the old episode back.
- LMDB is multi-process safe: every process using the same data directory shares this cache.
  The map grows on ``MapFullError`` up to a limit.
- Never in the way: a cache that cannot be opened (damaged ``data.mdb``, a file where its
  directory should be, no permission) or that breaks while in use is *disabled* (``disabled``
  holds why, a warning says so once): every read is a miss and every write a no-op, so the
  memory runs on the primary store alone. :meth:`EpisodeCache.rebuild` moves the damaged
  cache aside (``cache.corrupt-<time>``, never deleted) and opens a new one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar, cast

import lmdb

from ..errors import StorageUnavailableError
from ..model.episode import Episode
from .cache_codec import _HEADER, _MAGIC, MAX_ENTRY_BYTES, CacheStats, decode, encode
from .restore_lock import store_opening

__all__ = ["CacheStats", "EpisodeCache", "decode", "encode"]

log = logging.getLogger(__name__)

_SEQ = struct.Struct(">Q")
MAX_TOMBSTONES = 10_000

P = ParamSpec("P")
R = TypeVar("R")


def _tolerant(
    default: Callable[[EpisodeCache], object],
) -> Callable[
    [Callable[Concatenate[EpisodeCache, P], R]], Callable[Concatenate[EpisodeCache, P], R]
]:
    """A cache operation that answers ``default(cache)`` (a miss, nothing) when the cache is
    disabled, and disables it when LMDB fails under it: the primary store answers instead."""

    def wrap(
        fn: Callable[Concatenate[EpisodeCache, P], R],
    ) -> Callable[Concatenate[EpisodeCache, P], R]:
        @functools.wraps(fn)
        def inner(cache: EpisodeCache, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if cache.disabled is not None:
                return cast(R, default(cache))
            try:
                return fn(cache, *args, **kwargs)
            except lmdb.Error as exc:
                cache._disable(f"{type(exc).__name__}: {exc}")
                return cast(R, default(cache))

        return inner

    return wrap


class EpisodeCache:
    """A synchronous LMDB cache; the memory calls it from worker threads."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_entries: int = 1000,
        map_size_mb: int = 256,
        max_map_size_mb: int = 4096,
    ) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self._map_size = map_size_mb * 1024 * 1024
        self._max_map = max_map_size_mb * 1024 * 1024
        self._touched: dict[bytes, None] = {}
        self._lock = threading.Lock()
        self.stats = CacheStats()
        self.disabled: str | None = None  # why the cache is off (see the module docstring)

    def open(self) -> None:
        """Open (creating if needed) the LMDB environment. Blocking: call it off the loop.
        A cache that cannot be opened is disabled (``disabled`` says why), not an error."""
        self.disabled = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with store_opening(self.path.parent):  # restore_lock: never mid-restore
                self._env = lmdb.open(
                    str(self.path),
                    map_size=self._map_size,
                    max_dbs=8,
                    sync=False,  # a cache: the OS keeps it across a crash, SQL is the truth
                    metasync=False,
                    max_readers=256,
                )
            self._items = self._env.open_db(b"items")
            self._lru = self._env.open_db(b"lru")  # seq -> key
            self._seqs = self._env.open_db(b"seqs")  # key -> seq
            self._tombs = self._env.open_db(b"tombs")  # key -> seq
            self._tomb_order = self._env.open_db(b"tomb_order")  # seq -> key
            self._meta = self._env.open_db(b"meta")
        except (lmdb.Error, OSError) as exc:
            if "already open in this process" in str(exc):  # a usage error, not damage
                raise StorageUnavailableError(
                    f"Cannot open the cache {self.path}: {exc} Open one memory per data "
                    "directory in a process and share it."
                ) from exc
            self._disable(f"{type(exc).__name__}: {exc}")

    def _disable(self, reason: str) -> None:
        if self.disabled is not None:
            return
        self.disabled = reason
        log.warning(
            "The cache %s is disabled (%s); running without it, every read comes from the "
            "primary store. Rebuild it with `memory-cli storage sync`.",
            self.path,
            reason,
        )
        env = self.__dict__.pop("_env", None)
        if env is not None:
            with contextlib.suppress(lmdb.Error):
                env.close()

    def rebuild(self) -> Path | None:
        """Move a disabled cache aside (``<dir>.corrupt-<UTC time>``, never deleted) and open a
        new, empty one in its place (the caller fills it from the store). Returns where the
        damaged cache went; None if the cache was not disabled or had nothing to move."""
        if self.disabled is None:
            return None
        aside: Path | None = None
        if self.path.exists() or self.path.is_symlink():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            try:
                os.rename(self.path, aside)
            except OSError as exc:
                raise StorageUnavailableError(
                    f"Cannot move the damaged cache {self.path} aside ({exc}): make "
                    f"{self.path.parent} writable or choose another --data-dir."
                ) from exc
        self.open()
        if self.disabled is not None:
            raise StorageUnavailableError(
                f"Cannot rebuild the cache {self.path} ({self.disabled}): make "
                f"{self.path.parent} writable or choose another --data-dir."
            )
        return aside

    # -- reads ---------------------------------------------------------------------------
    def get(self, episode_id: uuid.UUID) -> Episode | None:
        return self.get_many([episode_id]).get(episode_id)

    @_tolerant(lambda c: {})
    def get_many(self, episode_ids: list[uuid.UUID]) -> dict[uuid.UUID, Episode]:
        """The cached episodes among ``episode_ids`` (a miss is left out), read in one
        transaction (a search reads its results' episodes at once: one transaction instead of
        one each saves ~10 us per episode). An entry that fails to decode, or holds another
        episode, is dropped and counted as a miss (the caller reads the store instead)."""
        with self._env.begin(db=self._items, buffers=False) as txn:
            entries = [(i, txn.get(i.bytes)) for i in episode_ids]
        found: dict[uuid.UUID, Episode] = {}
        corrupt: list[uuid.UUID] = []
        for episode_id, data in entries:
            if data is None:
                self.stats.misses += 1
                continue
            episode = decode(data)
            if episode is None or episode.episode_id != episode_id:
                corrupt.append(episode_id)
                continue
            found[episode_id] = episode
        self.stats.hits += len(found)
        for episode_id in corrupt:
            log.warning("dropping a corrupt cache entry for episode %s", episode_id)
            self.stats.corrupt_dropped += 1
            self.stats.misses += 1
            key = episode_id.bytes
            self._write(lambda txn, key=key: self._remove(txn, key))
        if found:
            with self._lock:
                self._touched.update(dict.fromkeys(i.bytes for i in found))
        return found

    # -- writes --------------------------------------------------------------------------
    @_tolerant(lambda c: None)
    def put(self, episode: Episode) -> None:
        if not episode.is_complete():
            return
        data = encode(episode)
        if len(data) > MAX_ENTRY_BYTES:
            return
        key = episode.episode_id.bytes

        def run(txn: lmdb.Transaction) -> None:
            if txn.get(key, db=self._tombs) is not None:
                return  # deleted: never resurrect
            txn.put(key, data, db=self._items)
            self._bump(txn, key)
            self._evict(txn)

        self._write(run)
        self.stats.puts += 1

    @_tolerant(lambda c: None)
    def put_many(self, episodes: list[Episode]) -> None:
        for episode in episodes:
            self.put(episode)

    @_tolerant(lambda c: None)
    def delete(self, episode_id: uuid.UUID) -> None:
        key = episode_id.bytes

        def run(txn: lmdb.Transaction) -> None:
            self._remove(txn, key)
            seq = _SEQ.pack(self._next_seq(txn))
            txn.put(key, seq, db=self._tombs)
            txn.put(seq, key, db=self._tomb_order)
            if txn.stat(self._tombs)["entries"] > MAX_TOMBSTONES:
                with txn.cursor(db=self._tomb_order) as cur:
                    if cur.first():
                        txn.delete(cur.value(), db=self._tombs)
                        cur.delete()

        self._write(run)

    @_tolerant(lambda c: None)
    def invalidate(self, episode_id: uuid.UUID) -> None:
        """Drop an entry (it changed in the durable store) without a tombstone."""
        self._write(lambda txn: self._remove(txn, episode_id.bytes))

    @_tolerant(lambda c: None)
    def clear(self) -> None:
        def run(txn: lmdb.Transaction) -> None:
            for db in (self._items, self._lru, self._seqs, self._tombs, self._tomb_order):
                txn.drop(db, delete=False)

        self._write(run)

    @_tolerant(lambda c: 0)
    def entries(self) -> int:
        with self._env.begin() as txn:
            return int(txn.stat(self._items)["entries"])

    @_tolerant(lambda c: [])
    def keys(self) -> list[uuid.UUID]:
        with self._env.begin(db=self._items) as txn, txn.cursor() as cur:
            return [uuid.UUID(bytes=bytes(k)) for k in cur.iternext(keys=True, values=False)]

    @_tolerant(lambda c: [])
    def raw_items(self) -> list[tuple[uuid.UUID, bytes]]:
        """Every entry's key and stored bytes, unchecked (for verification; see
        ``storage/cache_sync.py``). Bounded by ``max_entries``."""
        with self._env.begin(db=self._items) as txn, txn.cursor() as cur:
            return [(uuid.UUID(bytes=bytes(k)), bytes(v)) for k, v in cur.iternext()]

    @property
    def is_open(self) -> bool:
        return hasattr(self, "_env") and self.disabled is None

    @_tolerant(lambda c: ([], {}))
    def scan(
        self, known: Mapping[uuid.UUID, int]
    ) -> tuple[list[uuid.UUID], dict[uuid.UUID, tuple[int, bytes]]]:
        """Every entry's id, and for each entry whose checksum is not ``known[id]`` its
        checksum and verified JSON payload (corrupt entries are left out: the next ``get``
        drops them). No hits counted, no LRU touch: a scan for degraded reads
        (``resilience/degraded.py``) that only copies what changed. Bounded by ``max_entries``."""
        ids: list[uuid.UUID] = []
        changed: dict[uuid.UUID, tuple[int, bytes]] = {}
        with self._env.begin(db=self._items, buffers=True) as txn, txn.cursor() as cur:
            for key, value in cur.iternext():
                eid = uuid.UUID(bytes=bytes(key))
                if len(value) < _HEADER.size or len(value) > MAX_ENTRY_BYTES:
                    continue
                magic, crc = _HEADER.unpack_from(value)
                if magic != _MAGIC:
                    continue
                if known.get(eid) != crc:
                    payload = bytes(value[_HEADER.size :])
                    if zlib.crc32(payload) != crc:
                        continue
                    changed[eid] = (crc, payload)
                ids.append(eid)
        return ids, changed

    @_tolerant(lambda c: {"disabled": c.disabled})
    def env_info(self) -> dict[str, object]:
        """The environment as it is now: map size, bytes in use, file size, readers."""
        info = self._env.info()
        page = int(self._env.stat()["psize"])
        data = self.path / "data.mdb"
        return {
            "path": str(self.path),
            "map_size_bytes": int(info["map_size"]),
            "used_bytes": (int(info["last_pgno"]) + 1) * page,
            "file_bytes": data.stat().st_size if data.exists() else 0,
            "max_readers": int(info["max_readers"]),
            "reader_slots_used": int(info["num_readers"]),
        }

    # -- side records: small keyed values next to the episodes (the synchronizer's state and
    # its pattern/heuristic index, see ``storage/sync.py``); kept in the ``meta`` database.
    @_tolerant(lambda c: None)
    def meta_get(self, key: bytes) -> bytes | None:
        with self._env.begin(db=self._meta, buffers=False) as txn:
            data = txn.get(key)
        return None if data is None else bytes(data)

    @_tolerant(lambda c: None)
    def meta_put(self, items: dict[bytes, bytes]) -> None:
        def run(txn: lmdb.Transaction) -> None:
            for key, value in items.items():
                txn.put(key, value, db=self._meta)

        if items:
            self._write(run)

    @_tolerant(lambda c: [])
    def meta_scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        with self._env.begin(db=self._meta) as txn, txn.cursor() as cur:
            if cur.set_range(prefix):
                for key, value in cur.iternext():
                    if not bytes(key).startswith(prefix):
                        break
                    out.append((bytes(key), bytes(value)))
        return out

    @_tolerant(lambda c: None)
    def meta_delete(self, keys: list[bytes]) -> None:
        def run(txn: lmdb.Transaction) -> None:
            for key in keys:
                txn.delete(key, db=self._meta)

        if keys:
            self._write(run)

    @_tolerant(lambda c: c.stats.model_copy())
    def snapshot_stats(self) -> CacheStats:
        self.stats.entries = self.entries()
        self.stats.map_size_bytes = int(self._env.info()["map_size"])
        return self.stats.model_copy()

    def close(self) -> None:
        if "_env" not in self.__dict__:
            return  # disabled (or never opened)
        self._flush_touches()
        self._env.close()

    # -- internals -----------------------------------------------------------------------
    def _write(self, fn: object) -> None:
        assert callable(fn)
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    self._apply_touches(txn)
                    fn(txn)
                return
            except lmdb.MapFullError:
                size = int(self._env.info()["map_size"])
                if size * 2 > self._max_map:
                    raise
                log.info("growing the cache map from %d to %d bytes", size, size * 2)
                self._env.set_mapsize(size * 2)

    def _flush_touches(self) -> None:
        with self._lock:
            if not self._touched:
                return
        self._write(lambda txn: None)

    def _apply_touches(self, txn: lmdb.Transaction) -> None:
        with self._lock:
            touched, self._touched = list(self._touched), {}
        for key in touched:
            if txn.get(key, db=self._items) is not None:
                self._bump(txn, key)

    def _next_seq(self, txn: lmdb.Transaction) -> int:
        raw = txn.get(b"seq", db=self._meta)
        seq = (_SEQ.unpack(raw)[0] if raw else 0) + 1
        txn.put(b"seq", _SEQ.pack(seq), db=self._meta)
        return seq

    def _bump(self, txn: lmdb.Transaction, key: bytes) -> None:
        old = txn.get(key, db=self._seqs)
        if old is not None:
            txn.delete(old, db=self._lru)
        seq = _SEQ.pack(self._next_seq(txn))
        txn.put(key, seq, db=self._seqs)
        txn.put(seq, key, db=self._lru)

    def _remove(self, txn: lmdb.Transaction, key: bytes) -> None:
        txn.delete(key, db=self._items)
        old = txn.get(key, db=self._seqs)
        if old is not None:
            txn.delete(old, db=self._lru)
            txn.delete(key, db=self._seqs)

    def _evict(self, txn: lmdb.Transaction) -> None:
        excess = int(txn.stat(self._items)["entries"]) - self.max_entries
        if excess <= 0:
            return
        with txn.cursor(db=self._lru) as cur:
            victims = []
            for _seq, key in cur.iternext():
                victims.append(bytes(key))
                if len(victims) >= excess:
                    break
        for key in victims:
            self._remove(txn, key)
            self.stats.evictions += 1
