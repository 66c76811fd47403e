"""The config file's schema: one pydantic model per section, every key with a default.

A partial file is valid: missing sections and keys take their defaults (then the smart defaults
and the preset, see :mod:`.loader`). Types are checked here, when the file is loaded; value rules
(ranges, allowed names, cross checks) live in :mod:`.validation`, so ``config validate`` can
report every problem at once. Unknown keys are kept and reported as warnings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..config import EmbeddingsConfig, RetrievalConfig
from .keys import ENV_ALIASES, HELP, SECRET_KEYS, env_names

__all__ = [
    "ENV_ALIASES",
    "HELP",
    "SECRET_KEYS",
    "SECTIONS",
    "BackupSettings",
    "CliSettings",
    "DatabaseSettings",
    "EmbeddingsSettings",
    "LoggingSettings",
    "MonitoringSettings",
    "RetrievalSettings",
    "SandboxSettings",
    "Settings",
    "StorageSettings",
    "SyncSettings",
    "env_names",
    "iter_keys",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", validate_assignment=True)


class DatabaseSettings(_Section):
    url: str | None = None
    turso_url: str | None = None
    turso_token: str | None = None
    postgres_dsn: str | None = None
    busy_timeout_ms: int = 30_000
    synchronous: str = "normal"


class StorageSettings(_Section):
    data_dir: str | None = None
    max_episodes_cache: int = 1000
    cache_ttl_seconds: int = 7200
    pool_size: int = 10
    cache_enabled: bool = True


class CliSettings(_Section):
    default_format: str = "human"
    progress_bars: bool = True
    batch_size: int = 200


class EmbeddingsSettings(EmbeddingsConfig):
    model_config = ConfigDict(extra="allow", validate_assignment=True)


class RetrievalSettings(RetrievalConfig):
    model_config = ConfigDict(extra="allow", validate_assignment=True)


class SandboxSettings(_Section):
    enabled: bool = True
    backend: str = "wasm"
    node_ratio: float = 0.0
    node_rule: str = "none"
    preset: str = "restrictive"
    max_execution_time_ms: int = 3000
    max_memory_mb: int = 64
    max_cpu_percent: int = 30
    allow_network: bool = False
    allow_filesystem: bool = False
    allow_subprocesses: bool = False
    allowed_paths: list[str] = Field(default_factory=list)
    audit_keep: int = 10_000


class SyncSettings(_Section):
    enabled: bool = False
    interval_seconds: int = 300
    batch_size: int = 100
    conflict_resolution: str = "durable_wins"


class LoggingSettings(_Section):
    level: str = "INFO"
    file: str | None = None
    max_file_mb: int = 5
    backup_count: int = 3


class MonitoringSettings(_Section):
    enabled: bool = True
    latency_window: int = 1000
    export_format: str = "prometheus"


class BackupSettings(_Section):
    dir: str | None = None
    format: str = "json"
    compress: bool = False
    keep: int = 10


class Settings(BaseModel):
    """The whole configuration. ``Settings()`` is valid: every key has a default."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    preset: str | None = None
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    cli: CliSettings = Field(default_factory=CliSettings)
    embeddings: EmbeddingsSettings = Field(default_factory=EmbeddingsSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)

    def get(self, dotted: str) -> Any:
        """The value of ``section.key`` (or a top-level key such as ``preset``)."""
        node: Any = self
        for part in dotted.split("."):
            node = getattr(node, part)
        return node

    def get_extra(self, dotted: str) -> Any:
        """The value of an unknown key (see :meth:`unknown_keys`)."""
        section, _, name = dotted.partition(".")
        if section not in SECTIONS:
            value = (self.model_extra or {}).get(section)
            return value.get(name) if name and isinstance(value, dict) else value
        return (getattr(self, section).model_extra or {}).get(name)

    def unknown_keys(self) -> list[str]:
        """Keys the schema does not know (kept, reported by the validator as warnings)."""
        found: list[str] = []
        for name, value in (self.model_extra or {}).items():
            if isinstance(value, dict) and value:
                found += [f"{name}.{key}" for key in value]
            else:
                found.append(str(name))
        for section in SECTIONS:
            model = getattr(self, section)
            found += [f"{section}.{name}" for name in (model.model_extra or {})]
        return found


SECTIONS: tuple[str, ...] = (
    "database",
    "storage",
    "cli",
    "embeddings",
    "retrieval",
    "sandbox",
    "sync",
    "logging",
    "monitoring",
    "backup",
)


def iter_keys() -> Iterator[tuple[str, Any]]:
    """Every known dotted key with its schema default, in file order."""
    yield "preset", None
    defaults = Settings()
    for section in SECTIONS:
        model = getattr(defaults, section)
        for name in type(model).model_fields:
            yield f"{section}.{name}", getattr(model, name)
