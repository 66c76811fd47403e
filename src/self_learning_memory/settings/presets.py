"""Presets: named starting points that sit between the smart defaults and the files.

A file may say just ``preset = "local"`` (the one-liner of the ``simple`` setup) and add keys
only when needed; any key it sets wins over the preset.

- ``local``: the embedded SQLite store in the data dir, a modest cache, pool 5.
- ``cloud``: Turso from a ``libsql://`` ``$TURSO_URL`` when set (else the local store), a
  large cache, JSON output.
- ``memory``: a throwaway store in the system temp dir with a tiny footprint, for tests and CI.
- ``custom``: the smart defaults, nothing changed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .environment import Environment, env_flag

__all__ = ["PRESETS", "choose_simple_preset", "preset_values"]

PRESETS = ("local", "cloud", "memory", "custom")


def memory_data_dir() -> Path:
    """Where the ``memory`` preset keeps its throwaway store (one per user)."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or str(os.getuid())
    return Path(tempfile.gettempdir()) / f"self-learning-memory-{user}"


def preset_values(
    name: str,
    environment: Environment,
    smart: Mapping[str, tuple[Any, str]],
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Dotted key -> value for ``name``. Unknown names raise ``KeyError``."""
    environ = os.environ if env is None else env
    mode = environment.mode
    if name == "custom":
        return {}
    if name == "local":
        return {
            "storage.url": None,
            "cache.max_episodes": {"ci": 100, "dev": 500}.get(mode, 1000),
            "storage.pool_size": 5,
        }
    if name == "cloud":
        values: dict[str, Any] = {
            "cache.max_episodes": min(int(smart["cache.max_episodes"][0]), 5000),
            "cli.default_format": "json",
        }
        if environ.get("TURSO_URL", "").strip().lower().startswith("libsql://"):
            values["storage.url"] = environ["TURSO_URL"]
        if environ.get("TURSO_TOKEN"):
            values["storage.auth_token"] = environ["TURSO_TOKEN"]
        return values
    if name == "memory":
        return {
            "storage.data_dir": str(memory_data_dir()),
            "cache.max_episodes": 100,
            "storage.pool_size": 2,
        }
    raise KeyError(name)


def choose_simple_preset(environment: Environment, env: Mapping[str, str] | None = None) -> str:
    """``cloud`` with Turso variables or on a cloud platform, ``memory`` under CI, else
    ``local``."""
    environ = os.environ if env is None else env
    if environment.turso_env or environment.cloud_platform or env_flag(environ, "TURSO_URL"):
        return "cloud"
    if environment.ci:
        return "memory"
    return "local"
