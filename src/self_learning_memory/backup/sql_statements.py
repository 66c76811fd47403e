"""Reading back the ``sql`` export format: only the exact statements the exporter writes.

The exporter writes one ``INSERT INTO <table> (<col>, ...) VALUES (<literal>, ...);`` per row,
with the literals of :func:`~self_learning_memory.backup.export.sql_literal`. The reader parses
each statement into a table name and a row of Python values, and anything else (a second
statement after the first, an ``UPDATE``, a sub-select, a function call, an unknown literal) is
refused with the line it starts on. The rows are then inserted with bound parameters, so no
text from a backup file is ever executed as SQL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import DataIntegrityError

__all__ = ["parse_insert"]

_STATEMENT = re.compile(
    r"INSERT INTO ([A-Za-z_][A-Za-z0-9_]*) \(([A-Za-z_][A-Za-z0-9_]*(?:, [A-Za-z_][A-Za-z0-9_]*)*)\)"
    r" VALUES \((.*)\);",
    re.DOTALL,
)
_LITERAL = re.compile(
    r"NULL"
    r"|(?P<number>-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)"
    r"|CAST\(X'(?P<text_hex>(?:[0-9a-f]{2})*)' AS TEXT\)"
    r"|X'(?P<blob>(?:[0-9a-f]{2})*)'"
    r"|'(?P<text>(?:[^']|'')*)'",
    re.DOTALL,
)


def _value(match: re.Match[str]) -> Any:
    if (number := match.group("number")) is not None:
        return float(number) if ("." in number or "e" in number) else int(number)
    if (text_hex := match.group("text_hex")) is not None:
        return bytes.fromhex(text_hex).decode("utf-8")
    if (blob := match.group("blob")) is not None:
        return bytes.fromhex(blob)
    if (text := match.group("text")) is not None:
        return text.replace("''", "'")
    return None


def parse_insert(statement: str, path: Path, line: int) -> tuple[str, dict[str, Any]]:
    """``(table, row)`` of one exported INSERT statement, else DataIntegrityError naming the line."""

    def refuse(problem: str) -> DataIntegrityError:
        return DataIntegrityError(
            f"{path.name}, line {line}: {problem}; a backup may hold only the "
            f"'INSERT INTO <table> (...) VALUES (...);' statements the exporter writes "
            f"({statement[:60]!r})."
        )

    match = _STATEMENT.fullmatch(statement)
    if match is None:
        raise refuse("not an exported INSERT statement")
    table, columns, values_text = match.group(1), match.group(2).split(", "), match.group(3)
    values: list[Any] = []
    position = 0
    while True:
        literal = _LITERAL.match(values_text, position)
        if literal is None:
            raise refuse(f"value {len(values) + 1} is not a literal the exporter writes")
        try:
            values.append(_value(literal))
        except UnicodeDecodeError as exc:
            raise refuse(f"value {len(values) + 1} is not UTF-8 text") from exc
        position = literal.end()
        if position == len(values_text):
            break
        if not values_text.startswith(", ", position):
            raise refuse(f"unexpected text after value {len(values)}")
        position += 2
    if len(values) != len(columns) or len(set(columns)) != len(columns):
        raise refuse(f"{len(columns)} columns but {len(values)} values")
    return table, dict(zip(columns, values, strict=True))
