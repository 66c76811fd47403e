"""The cache's entry codec and counters: a 4-byte magic, a CRC-32 and the episode's JSON.

A value that fails the checksum, the size limit or validation decodes to None (a miss), so a
corrupt entry is never returned. Used by ``storage/lmdb_cache.py`` and ``storage/cache_sync.py``.
"""

from __future__ import annotations

import struct
import zlib

import pydantic

from ..model.episode import Episode

__all__ = ["MAX_ENTRY_BYTES", "CacheStats", "decode", "encode"]

_MAGIC = b"SLM1"
_HEADER = struct.Struct(">4sI")
MAX_ENTRY_BYTES = 10_000_000 + _HEADER.size


class CacheStats(pydantic.BaseModel):
    hits: int = 0
    misses: int = 0
    puts: int = 0
    evictions: int = 0
    corrupt_dropped: int = 0
    entries: int = 0
    map_size_bytes: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def encode(episode: Episode) -> bytes:
    payload = episode.model_dump_json().encode("utf-8")
    return _HEADER.pack(_MAGIC, zlib.crc32(payload)) + payload


def decode(data: bytes) -> Episode | None:
    """The episode, or None if the bytes are not a valid entry."""
    if len(data) < _HEADER.size or len(data) > MAX_ENTRY_BYTES:
        return None
    magic, crc = _HEADER.unpack_from(data)
    payload = data[_HEADER.size :]
    if magic != _MAGIC or zlib.crc32(payload) != crc:
        return None
    try:
        return Episode.model_validate_json(payload)
    except pydantic.ValidationError:
        return None
