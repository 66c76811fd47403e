"""A marker next to the outbox that says writes are queued, so a lost outbox is told from a new one.

The outbox (``outbox.db``) journals writes acknowledged while the primary store is down. A
truncated, deleted or replaced outbox file would otherwise look like a new, empty one, and the
writes it held would vanish without a word. The marker is a small JSON file,
``outbox.db.pending``:

- created (written to a temporary file, fsynced, renamed, directory fsynced) inside the
  transaction that turns an empty outbox into a non-empty one, before that write is
  acknowledged; later appends refresh its ``last_seq`` in place (one ``pwrite``, not fsynced:
  a hint for the count of lost writes);
- removed inside the transaction that drains the outbox to empty;
- checked at open (:func:`check_marker`): a marker whose outbox is missing, 0 bytes, has no
  journal table or has never reached the marker's first sequence number (``AUTOINCREMENT``
  keeps the highest number in ``sqlite_sequence`` for good) means the queued writes are lost:
  :class:`~self_learning_memory.errors.DataIntegrityError`. A marker whose outbox did reach it
  and is empty is left from a crash after the drain and is removed; a non-empty outbox without
  a marker gets one.

The cost is one fsynced file per outage (the first queued write) and a ``pwrite`` per further
queued write; nothing while the primary is up.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataIntegrityError

__all__ = [
    "Marker",
    "check_before_open",
    "check_marker",
    "marker_path",
    "read_marker",
    "remove_marker",
    "write_marker",
]


@dataclass(frozen=True)
class Marker:
    first_seq: int
    last_seq: int
    since: float  # when the first queued write was journaled (epoch seconds)


def marker_path(outbox: Path) -> Path:
    return outbox.with_name(outbox.name + ".pending")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_WIDTH = 128  # a fixed-size record: a refresh overwrites it in place


def _record(marker: Marker) -> bytes:
    data = json.dumps(
        {"first_seq": marker.first_seq, "last_seq": marker.last_seq, "since": marker.since}
    ).encode()
    return data.ljust(_WIDTH)


def write_marker(outbox: Path, marker: Marker, *, durable: bool) -> None:
    """``durable``: a new marker (temporary file, fsync, rename, directory fsync). Otherwise a
    refresh of the existing one in place (one ``pwrite``, no fsync); a new one if it is gone."""
    path = marker_path(outbox)
    if not durable:
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            durable = True
        else:
            try:
                os.pwrite(fd, _record(marker), 0)
            finally:
                os.close(fd)
            return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(_record(marker))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_marker(outbox: Path) -> Marker | None:
    """The marker, None if there is none; one that cannot be parsed (torn by a crash while it
    was refreshed) still says writes were queued, with unknown numbers."""
    try:
        raw = marker_path(outbox).read_bytes()
    except FileNotFoundError:
        return None
    try:
        data: dict[str, Any] = json.loads(raw)
        return Marker(int(data["first_seq"]), int(data["last_seq"]), float(data["since"]))
    except (ValueError, KeyError, TypeError):
        return Marker(0, 0, 0.0)


def remove_marker(outbox: Path) -> None:
    path = marker_path(outbox)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        _fsync_dir(path.parent)


def _lost(outbox: Path, marker: Marker, how: str) -> DataIntegrityError:
    known = marker.last_seq >= marker.first_seq > 0
    count = (
        f"up to {marker.last_seq - marker.first_seq + 1} write(s) (sequence numbers "
        f"{marker.first_seq} to {marker.last_seq}, queued since "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(marker.since))})"
        if known
        else "an unknown number of writes"
    )
    return DataIntegrityError(
        f"The outbox {outbox} {how}, but {marker_path(outbox)} says it held {count} "
        "acknowledged while the primary store was down and not yet replayed: they are lost "
        "unless you put the outbox file back from a backup or copy. Nothing was opened. Back "
        f"up the data directory; to go on without those writes, remove {marker_path(outbox)}."
    )


def check_before_open(outbox: Path) -> Marker | None:
    """Refuse a missing or 0-byte outbox that the marker says held writes (before SQLite
    creates an empty one). Returns the marker, if any."""
    marker = read_marker(outbox)
    if marker is None:
        return None
    try:
        size = outbox.stat().st_size
    except FileNotFoundError:
        raise _lost(outbox, marker, "is missing") from None
    if size == 0:
        raise _lost(outbox, marker, "is empty (0 bytes)")
    return marker


def check_marker(outbox: Path, marker: Marker | None, reached: int | None, pending: int) -> None:
    """With the outbox open: ``reached`` is its highest sequence number ever (None: it has no
    journal yet), ``pending`` its entries now. Raises when queued writes were lost; repairs a
    marker left behind (or missing) otherwise."""
    if marker is None:
        if pending:
            write_marker(outbox, Marker(1, reached or 1, time.time()), durable=True)
        return
    if reached is None or reached < marker.first_seq:
        raise _lost(outbox, marker, "holds none of the queued writes (it was emptied or replaced)")
    if not pending:
        remove_marker(outbox)  # left by a crash after the outbox drained
