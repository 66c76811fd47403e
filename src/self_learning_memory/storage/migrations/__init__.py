"""Versioned schema migrations. Each entry runs once, in order, inside one transaction."""

from .sqlite import SQLITE_MIGRATIONS

__all__ = ["SQLITE_MIGRATIONS"]
