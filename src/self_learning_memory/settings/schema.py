"""The config file's schema: the library's :class:`~self_learning_memory.config.MemoryConfig`
plus the sections only the front ends read.

A file fills the same pydantic tree the library runs with: ``[storage]``, ``[cache]``,
``[batch]``, ``[extraction]``, ``[queue]``, ``[retrieval]``, ``[embeddings]``, ``[sync]``,
``[resilience]``, ``[sandbox_audit]`` and ``[monitoring]`` are MemoryConfig's sections, key for key. On top of
them: ``preset``, ``storage.data_dir`` (the directory handed to ``SelfLearningMemory.open``),
``[cli]``, ``[logging]`` and ``[sandbox]`` (read by ``memory-cli`` and ``memory-mcp``).
:meth:`Settings.memory_config` is the library's part of the tree, nothing copied by hand.

Keys of older files that moved (``database.url``, ``storage.max_episodes_cache``, ...) are
accepted under their old names (see :data:`.keys.KEY_ALIASES`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import MemoryConfig, StorageConfig
from .keys import ENV_ALIASES, HELP, KEY_ALIASES, SECRET_KEYS, canonical_keys, env_names

__all__ = [
    "ENV_ALIASES",
    "HELP",
    "SECRET_KEYS",
    "SECTIONS",
    "CliSettings",
    "LoggingSettings",
    "SandboxSettings",
    "Settings",
    "StorageSettings",
    "env_names",
    "iter_keys",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StorageSettings(StorageConfig):
    """``[storage]``: the library's StorageConfig plus the data directory."""

    data_dir: str | None = None


class CliSettings(_Section):
    default_format: Literal["human", "json", "yaml"] = "human"


class LoggingSettings(_Section):
    level: str = "INFO"
    file: str | None = None


class SandboxSettings(_Section):
    """``[sandbox]``: read by ``memory-mcp`` (the execute_agent_code tool) and
    ``memory-cli sandbox``, through ``CodeSandbox.from_settings``. Values are checked by the
    validator, so ``config validate`` names every bad one."""

    enabled: bool = True
    backend: str = "wasm"
    node_ratio: float = 0.0
    node_rule: str = "none"
    preset: str = "restrictive"
    max_execution_time_ms: int = 3000
    max_memory_mb: int = 64
    pool_size: int | None = None  # warm runtimes; None: min(20, cores)


class Settings(MemoryConfig):
    """The whole configuration. ``Settings()`` is valid: every key has a default."""

    preset: str | None = None
    storage: StorageSettings = Field(default_factory=StorageSettings)
    cli: CliSettings = Field(default_factory=CliSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """Accept the old names of moved keys (``{"database": {"url": ...}}``)."""
        if not isinstance(data, dict):
            return data
        flat: dict[str, Any] = {}
        for name, value in data.items():
            if isinstance(value, dict) and name in _ALL_SECTIONS:
                flat.update({f"{name}.{key}": item for key, item in value.items()})
            else:
                flat[name] = value
        if not any(key in flat for key in KEY_ALIASES):
            return data
        moved = canonical_keys({key: (value, "") for key, value in flat.items()})
        return nest({key: value for key, (value, _where) in moved.items()})

    def get(self, dotted: str) -> Any:
        """The value of ``section.key`` (or a top-level key such as ``preset``)."""
        node: Any = self
        for part in dotted.split("."):
            node = getattr(node, part)
        return node

    def memory_config(self) -> MemoryConfig:
        """The library's part of the tree. A SQLite ``storage.url`` has already named the data
        directory (see :mod:`.layers`), so the library gets the embedded store there."""
        from ..storage.database_url import parse_database_url

        data = self.model_dump(include=set(MemoryConfig.model_fields))
        storage = data["storage"]
        del storage["data_dir"]
        url = storage["url"]
        if url is not None and (not url.strip() or parse_database_url(url).kind == "sqlite"):
            storage["url"] = None
        return MemoryConfig.model_validate(data)


SECTIONS: tuple[str, ...] = (
    "storage",
    "cache",
    "cli",
    "embeddings",
    "retrieval",
    "sandbox",
    "sandbox_audit",
    "sync",
    "logging",
    "batch",
    "queue",
    "extraction",
    "resilience",
    "monitoring",
)
_ALL_SECTIONS = frozenset({*SECTIONS, "database", "backup"})


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """``{"storage.pool_size": 5}`` -> ``{"storage": {"pool_size": 5}}``."""
    nested: dict[str, Any] = {}
    for key, value in values.items():
        section, dot, name = key.partition(".")
        if not dot:
            nested[section] = value
            continue
        target = nested.setdefault(section, {})
        if isinstance(target, dict):
            target[name] = value
    return nested


def iter_keys() -> Iterator[tuple[str, Any]]:
    """Every known dotted key with its schema default, in file order."""
    yield "preset", None
    defaults = Settings()
    for section in SECTIONS:
        model = getattr(defaults, section)
        for name in type(model).model_fields:
            yield f"{section}.{name}", getattr(model, name)
