"""The structured log files in ``<data dir>/logs``: one JSON object per line, rotated by size.

``memory-cli.log`` is written by the CLI, ``memory-mcp.log`` by the MCP server. A record has
``ts`` (ISO 8601 UTC), ``level``, ``logger``, ``message``, ``source``, ``pid`` and any extra
fields passed with ``logger.info(..., extra={...})``; an exception adds ``exc``. Reading is
bounded: the tail of a file is read backwards in blocks, never the whole file. Lines written
before the JSON format (plain ``asctime LEVEL name: message``) are still read.

Standard library only: the CLI imports this at start-up.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "LOG_SOURCES",
    "JsonLinesFormatter",
    "add_log_file",
    "log_path",
    "parse_line",
    "read_new",
    "tail_lines",
]

LOG_SOURCES = {"cli": "memory-cli.log", "mcp": "memory-mcp.log"}
MAX_BYTES = 5 * 2**20
BACKUP_COUNT = 3
MAX_LINE_CHARS = 10_000
MAX_TAIL_LINES = 10_000
_BLOCK = 64 * 1024

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_PLAIN = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d[ T][\d:,.]+) (?P<level>[A-Z]+) (?P<logger>[\w.\-]+): (?P<msg>.*)$"
)


def log_path(data_dir: Path, source: str) -> Path:
    return data_dir / "logs" / LOG_SOURCES[source]


class JsonLinesFormatter(logging.Formatter):
    """A log record as one line of JSON (newlines inside the message stay escaped)."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "source": self.source,
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in data:
                data[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def add_log_file(
    logger: logging.Logger, path: Path, source: str, level: int = logging.INFO
) -> logging.Handler | None:
    """Attach a rotating JSON-lines file handler; None (and nothing attached) if the directory
    cannot be created. The file is opened on the first record."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(path.parent, os.W_OK):
        return None
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8", delay=True
    )
    handler.setLevel(level)
    handler.setFormatter(JsonLinesFormatter(source))
    logger.addHandler(handler)
    return handler


def parse_line(line: str, source: str) -> dict[str, Any]:
    """A log line as a record: JSON lines as they are, plain lines parsed, others as text."""
    text = line.rstrip("\r\n")[:MAX_LINE_CHARS]
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            data.setdefault("source", source)
            return data
    match = _PLAIN.match(text)
    if match:
        ts = match["ts"].replace(",", ".").replace(" ", "T")
        return {
            "ts": ts,
            "level": match["level"],
            "logger": match["logger"],
            "message": match["msg"],
            "source": source,
        }
    return {"ts": None, "level": None, "logger": None, "message": text, "source": source}


def _tail_of(path: Path, count: int) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            data = b""
            while end > 0 and data.count(b"\n") <= count:
                start = max(0, end - _BLOCK)
                f.seek(start)
                data = f.read(end - start) + data
                end = start
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [line for line in lines[-count:] if line.strip()]


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a log, reaching into the rotated ``.1`` file if needed."""
    if not 1 <= count <= MAX_TAIL_LINES:
        from .errors import ValidationError

        raise ValidationError("--lines", f"{count} is out of range", f"1..{MAX_TAIL_LINES}")
    lines = _tail_of(path, count)
    if len(lines) < count:
        lines = _tail_of(path.with_name(path.name + ".1"), count - len(lines)) + lines
    return lines


def read_new(path: Path, offset: int, max_lines: int = 1000) -> tuple[list[str], int]:
    """Complete lines appended after ``offset``; returns them and the new offset. A file that
    shrank (rotated) is read from the start."""
    try:
        size = path.stat().st_size
    except OSError:
        return [], 0
    if size < offset:
        offset = 0
    if size == offset:
        return [], offset
    with path.open("rb") as f:
        f.seek(offset)
        chunk = f.read(min(size - offset, max_lines * MAX_LINE_CHARS))
    cut = chunk.rfind(b"\n")
    if cut < 0:
        return [], offset
    lines = chunk[: cut + 1].decode("utf-8", errors="replace").splitlines()
    return [line for line in lines if line.strip()], offset + cut + 1
