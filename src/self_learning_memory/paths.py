"""Where the embedded store lives. Kept tiny so front ends can resolve it without loading the
storage stack."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["APP_NAME", "resolve_data_dir"]

APP_NAME = "self-learning-memory"


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The argument, else ``$MEMORY_DATA_DIR``, else the user's data directory."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("MEMORY_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
