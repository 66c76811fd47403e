"""What a ``database.url`` points at: a SQLite file, an in-memory database, libSQL or PostgreSQL.

The embedded store is always ``<data_dir>/memory.db``; a SQLite URL therefore names the data
directory (its parent). Remote schemes are recognised so the validator can refuse them with a
clear message instead of silently storing episodes somewhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = ["DB_FILENAME", "DatabaseTarget", "mask_url", "parse_database_url"]

DB_FILENAME = "memory.db"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass(frozen=True)
class DatabaseTarget:
    kind: str  # sqlite, memory, libsql, postgresql, unknown
    path: Path | None = None  # sqlite: the database file

    @property
    def data_dir(self) -> Path | None:
        """The data directory a SQLite target implies."""
        if self.kind != "sqlite" or self.path is None:
            return None
        if self.path.suffix.lower() in _SQLITE_SUFFIXES:
            return self.path.parent
        return self.path  # a directory


def parse_database_url(url: str) -> DatabaseTarget:
    text = url.strip()
    lowered = text.lower()
    if lowered in (":memory:", "sqlite::memory:", "sqlite://:memory:", "file::memory:"):
        return DatabaseTarget("memory")
    if lowered.startswith(("libsql://", "https://", "http://", "wss://", "ws://")):
        return DatabaseTarget("libsql")
    if lowered.startswith(("postgresql://", "postgres://", "postgresql+")):
        return DatabaseTarget("postgresql")
    for prefix in ("sqlite:///", "sqlite://", "sqlite:", "file://", "file:"):
        if lowered.startswith(prefix):
            rest = text[len(prefix) :]
            # as in SQLAlchemy: sqlite:///relative/memory.db, sqlite:////absolute/memory.db
            rest = rest.split("?", 1)[0]
            return (
                DatabaseTarget("sqlite", Path(rest).expanduser())
                if rest
                else DatabaseTarget("unknown")
            )
    if re.match(r"^[a-z][a-z0-9+.\-]*://", lowered):
        return DatabaseTarget("unknown")
    return DatabaseTarget("sqlite", Path(text).expanduser())


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
