"""Committed WAL frames lost before SQLite could apply them, told by the ``-shm`` file.

A writer killed with SIGKILL leaves ``memory.db-wal`` (the committed transactions not yet
checkpointed) and ``memory.db-shm``, whose header (the wal-index header, two identical copies)
holds ``mxFrame``: the number of WAL frames committed. If the WAL is then truncated, zeroed or
garbled, SQLite's recovery at the next open keeps the frames up to the first bad checksum and
drops the rest without an error: acknowledged writes are gone, and after that open nothing
remembers them.

So before the store is opened, :func:`check_wal` compares: when no other process has the store
open (a live process's WAL is its own business), the ``-shm`` header is valid and says frames
were committed, the WAL must hold that many frames with matching salts and an unbroken checksum
chain (SQLite's own rule, ``walChecksumBytes``), except the frames a checkpoint already copied
into the database file (``nBackfill``). If it does not, the finding is written next to
the store (``memory.db.wal-loss``, JSON: when, frames committed, frames intact) before SQLite
recovers, and health reports the store unhealthy until ``memory-cli storage
rebuild-from-cache`` has written back what the cache holds (it removes the file) or the file is
removed by hand. The check reads 136 bytes of ``-shm`` after a clean shutdown (SQLite removes
or resets it) and the WAL only after an unclean one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from .maintenance import lock_holders

__all__ = ["WalLoss", "check_wal", "clear_wal_loss", "read_wal_loss", "wal_loss_path"]

log = logging.getLogger(__name__)

_HDR = struct.Struct("=IIIBBHIIIIIIII")  # WalIndexHdr, native byte order, 48 bytes
_WAL_HDR = 32
_FRAME_HDR = 24
_MAGIC = (0x377F0682, 0x377F0683)


@dataclass(frozen=True)
class WalLoss:
    detected_at: str
    committed_frames: int  # mxFrame in the -shm header
    intact_frames: int  # frames still held: intact in the WAL or already checkpointed
    wal_bytes: int
    lost_frames: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lost_frames", self.committed_frames - self.intact_frames)


def wal_loss_path(db: Path) -> Path:
    return db.with_name(db.name + ".wal-loss")


def _checksum(data: bytes, big_endian: bool, s1: int, s2: int) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    mask = 0xFFFFFFFF
    for i in range(0, len(words), 2):
        s1 = (s1 + words[i] + s2) & mask
        s2 = (s2 + words[i + 1] + s1) & mask
    return s1, s2


def _intact_frames(wal: Path, page_size: int, salts: bytes, limit: int) -> int:
    """How many frames from the start of ``wal`` SQLite's recovery would keep (up to limit)."""
    try:
        f = wal.open("rb")
    except FileNotFoundError:
        return 0
    with f:
        head = f.read(_WAL_HDR)
        if len(head) < _WAL_HDR:
            return 0
        magic, _version, size, _seq, _s1, _s2, c1, c2 = struct.unpack(">8I", head)
        if magic not in _MAGIC or (size or 65536) != page_size or head[16:24] != salts:
            return 0
        big = bool(magic & 1)
        s1, s2 = _checksum(head[:24], big, 0, 0)
        if (s1, s2) != (c1, c2):
            return 0
        intact = 0
        while intact < limit:
            frame = f.read(_FRAME_HDR + page_size)
            if len(frame) < _FRAME_HDR + page_size:
                break
            pgno, _commit, _f1, _f2, k1, k2 = struct.unpack(">6I", frame[:_FRAME_HDR])
            if pgno == 0 or frame[8:16] != salts:
                break
            s1, s2 = _checksum(frame[:8], big, s1, s2)
            s1, s2 = _checksum(frame[_FRAME_HDR:], big, s1, s2)
            if (s1, s2) != (k1, k2):
                break
            intact += 1
        return intact


def check_wal(db: Path) -> WalLoss | None:
    """Committed frames the WAL next to ``db`` no longer holds (see the module docstring);
    None when nothing was lost or nothing can be told. Blocking; call it before opening."""
    shm = db.with_name(db.name + "-shm")
    try:
        with shm.open("rb") as f:
            raw = f.read(2 * _HDR.size + 4)
    except OSError:
        return None
    if len(raw) < 2 * _HDR.size + 4 or raw[: _HDR.size] != raw[_HDR.size : 2 * _HDR.size]:
        return None  # no header, or one being written: SQLite rebuilds it from the WAL
    fields = _HDR.unpack(raw[: _HDR.size])
    is_init, size, mx_frame = fields[3], fields[5], fields[6]
    salts = raw[32:40]  # copied byte for byte from the WAL header (big-endian)
    # frames up to nBackfill (WalCkptInfo, right after the two headers) are already in the
    # database file: losing them from the WAL loses nothing
    backfilled = struct.unpack("=I", raw[2 * _HDR.size : 2 * _HDR.size + 4])[0]
    if not is_init or mx_frame <= backfilled:
        return None
    page_size = 65536 if size == 1 else size
    if page_size < 512 or page_size & (page_size - 1):
        return None
    others = [p for p in lock_holders([db, shm]) or [] if p != os.getpid()]
    if others:
        return None  # live processes: the WAL and its index are theirs, and consistent
    wal = db.with_name(db.name + "-wal")
    intact = max(_intact_frames(wal, page_size, salts, mx_frame), backfilled)
    if intact >= mx_frame:
        return None
    size_now = wal.stat().st_size if wal.exists() else 0
    return WalLoss(datetime.now(UTC).isoformat(), mx_frame, intact, size_now)


def note_wal_loss(db: Path) -> WalLoss | None:
    """Run :func:`check_wal` and keep a finding in ``memory.db.wal-loss`` (fsynced) before
    SQLite's recovery forgets it."""
    loss = check_wal(db)
    if loss is None:
        return None
    path = wal_loss_path(db)
    try:
        with path.open("w", encoding="utf-8") as f:
            json.dump(asdict(loss), f)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:  # an unwritable directory: the open says so next; still warn
        log.warning("Cannot record the WAL loss in %s: %s", path, exc)
    log.warning(
        "The write-ahead log of %s lost %d of its %d committed frames (truncated, zeroed or "
        "damaged after a crash): acknowledged writes are gone. Recorded in %s; run `memory-cli "
        "storage rebuild-from-cache` to write back the completed episodes the cache holds.",
        db,
        loss.lost_frames,
        loss.committed_frames,
        path,
    )
    return loss


def read_wal_loss(db: Path) -> WalLoss | None:
    try:
        data = json.loads(wal_loss_path(db).read_text(encoding="utf-8"))
        return WalLoss(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):  # unreadable: still a finding
        return WalLoss("unknown", 0, 0, 0)


def clear_wal_loss(db: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        wal_loss_path(db).unlink()
