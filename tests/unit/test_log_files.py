"""The JSON-lines log files: one parseable object per record (extras, exceptions, newlines),
bounded tail reading across rotation, incremental reads that survive rotation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from self_learning_memory.errors import ValidationError
from self_learning_memory.log_files import (
    JsonLinesFormatter,
    add_log_file,
    parse_line,
    read_new,
    tail_lines,
)


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"test_log_files.{name}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def test_records_are_json_lines(tmp_path: Path) -> None:
    logger = _logger("records")
    path = tmp_path / "logs" / "memory-cli.log"
    handler = add_log_file(logger, path, "cli", logging.INFO)
    assert handler is not None
    try:
        logger.debug("not written: below the level")
        logger.info("two\nlines", extra={"command": "logs tail", "duration_ms": 1.5})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "two\nlines"
    assert first["command"] == "logs tail"
    assert first["duration_ms"] == 1.5
    assert first["level"] == "INFO"
    assert first["source"] == "cli"
    assert first["ts"].endswith("+00:00")
    assert "RuntimeError: boom" in second["exc"]


def test_formatter_stringifies_odd_extras() -> None:
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "m %s", ("a",), None)
    record.path = Path("/tmp/x")
    data = json.loads(JsonLinesFormatter("mcp").format(record))
    assert data["message"] == "m a"
    assert data["path"] == "/tmp/x"


def test_tail_reaches_into_the_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "memory-cli.log"
    path.with_name("memory-cli.log.1").write_text("".join(f"old {i}\n" for i in range(5)))
    path.write_text("".join(f"new {i}\n" for i in range(3)))
    assert tail_lines(path, 2) == ["new 1", "new 2"]
    assert tail_lines(path, 5) == ["old 3", "old 4", "new 0", "new 1", "new 2"]
    assert tail_lines(tmp_path / "missing.log", 5) == []
    with pytest.raises(ValidationError):
        tail_lines(path, 0)


def test_tail_of_a_big_file(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i:07d}\n" for i in range(200_000)))
    assert tail_lines(path, 3) == ["line 0199997", "line 0199998", "line 0199999"]


def test_read_new_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("one\ntwo\npart")
    lines, offset = read_new(path, 0)
    assert lines == ["one", "two"]  # the unfinished line waits
    with path.open("a") as f:
        f.write("ial\n")
    lines, offset = read_new(path, offset)
    assert lines == ["partial"]
    path.write_text("fresh\n")  # rotated: smaller than the offset
    assert read_new(path, offset)[0] == ["fresh"]


def test_parse_line_shapes() -> None:
    plain = parse_line("2026-01-02 03:04:05,678 ERROR self_learning_memory.mcp: it broke\n", "mcp")
    assert plain == {
        "ts": "2026-01-02T03:04:05.678",
        "level": "ERROR",
        "logger": "self_learning_memory.mcp",
        "message": "it broke",
        "source": "mcp",
    }
    assert parse_line('{"message": "m"}', "cli")["source"] == "cli"
    assert parse_line("[1, 2]", "cli")["message"] == "[1, 2]"
    assert len(parse_line("x" * 50_000, "cli")["message"]) == 10_000
