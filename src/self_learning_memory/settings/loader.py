"""Load the effective settings, and turn them into what the library needs.

loaded = load_settings()                 # discovered file, env, smart defaults
loaded = load_settings(Path("memory-cli.toml"), flags={"storage.data_dir": ("/x", "--data-dir")})
async with SelfLearningMemory.open(loaded.data_dir(), config=loaded.memory_config()) as memory:
    ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError as PydanticValidationError

from ..errors import ConfigurationError
from ..storage.database_url import mask_url, parse_database_url
from .environment import Environment
from .files import ConfigFile
from .keys import SECRET_KEYS
from .layers import RawConfig, resolve_raw
from .schema import SECTIONS, Settings, iter_keys
from .validation import ValidationReport, validate_settings

if TYPE_CHECKING:
    from ..config import MemoryConfig

__all__ = ["LoadedSettings", "load_settings", "memory_config_from", "resolved_data_dir"]


@dataclass
class LoadedSettings:
    """The effective settings, the source of every value, and the file they came from."""

    settings: Settings
    sources: dict[str, str]
    file: ConfigFile | None
    environment: Environment
    preset: str | None = None

    def validate(self, env: Mapping[str, str] | None = None) -> ValidationReport:
        return validate_settings(self.settings, env=env)

    def data_dir(self) -> Path:
        return resolved_data_dir(self.settings)

    def memory_config(self) -> MemoryConfig:
        """The library's config; raises ConfigurationError when the settings have errors."""
        report = self.validate()
        if not report.ok:
            first = report.errors[0]
            more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
            where = self.sources.get(first.field, "")
            raise ConfigurationError(
                f"Invalid configuration: {first}{' from ' + where if where else ''}{more}."
            )
        return memory_config_from(self.settings)

    def show(self) -> dict[str, Any]:
        """Every key: its value (secrets masked) and where it came from."""
        rows: dict[str, Any] = {}
        for key, _default in iter_keys():
            value = self.settings.get(key)
            rows[key] = {"value": masked(key, value), "source": self.sources.get(key, "default")}
        for key in self.settings.unknown_keys():
            rows[key] = {
                "value": masked(key, self.settings.get_extra(key)),
                "source": self.sources.get(key, "file") + " (unknown key)",
            }
        return rows


def masked(key: str, value: Any) -> Any:
    if key in SECRET_KEYS:
        return "***" if value else value
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _nest(values: Mapping[str, Any]) -> dict[str, Any]:
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


def _type_error(raw: RawConfig, exc: PydanticValidationError) -> ConfigurationError:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        key = ".".join(loc[:2]) if loc else "?"
        value = raw.values.get(key, error.get("input"))
        shown = masked(key, value)
        source = raw.sources.get(key) or (
            f"file {raw.file.where(loc[0])}" if raw.file is not None and loc else "the defaults"
        )
        problems.append(f"{key} = {shown!r} from {source}: {error['msg']}")
    return ConfigurationError("Invalid configuration value: " + "; ".join(problems) + ".")


def load_settings(
    config_path: Path | None = None,
    *,
    flags: Mapping[str, tuple[Any, str]] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    environment: Environment | None = None,
    discover: bool = True,
    default_preset: str | None = None,
) -> LoadedSettings:
    """Resolve every source (see :mod:`.layers`) and type-check the result.

    A file that cannot be read or parsed, or a value of the wrong type, raises
    ConfigurationError naming the file, the line and the key (or the environment variable).
    Value rules are checked separately by :meth:`LoadedSettings.validate`.
    """
    raw = resolve_raw(
        config_path,
        flags=flags,
        env=env,
        cwd=cwd,
        environment=environment,
        discover=discover,
        default_preset=default_preset,
    )
    for key, value in raw.values.items():
        section = key.partition(".")[0]
        if "." in key and section in SECTIONS and isinstance(value, Mapping):
            raise ConfigurationError(
                f"Invalid configuration value: {key} from {raw.sources.get(key)} is a table; "
                "sections hold plain values (limit: one level of [section] keys)."
            )
    try:
        settings = Settings.model_validate(_nest(raw.values))
    except PydanticValidationError as exc:
        raise _type_error(raw, exc) from None
    return LoadedSettings(
        settings=settings,
        sources=dict(raw.sources),
        file=raw.file,
        environment=raw.environment,
        preset=raw.preset,
    )


def resolved_data_dir(settings: Settings) -> Path:
    """``storage.data_dir`` (which a SQLite ``database.url`` sets, see :mod:`.layers`); else the
    directory of a SQLite ``database.url``; else the user's data directory."""
    if settings.storage.data_dir:
        return Path(settings.storage.data_dir).expanduser()
    if settings.database.url:
        target = parse_database_url(settings.database.url)
        if target.data_dir is not None:
            return target.data_dir
    from ..paths import resolve_data_dir

    return resolve_data_dir(None)


_SYNC_STRATEGY: dict[str, Literal["primary_wins", "most_recent", "cache_wins"]] = {
    "durable_wins": "primary_wins",
    "primary_wins": "primary_wins",
    "most_recent": "most_recent",
    "cache_wins": "cache_wins",
}


def database_url(settings: Settings) -> str | None:
    """The URL of a non-embedded durable store (``database.url``, else a ``libsql://``
    ``database.turso_url``, else ``database.postgres_dsn``), or None for the embedded store in the data directory (a SQLite
    ``database.url`` has already become ``storage.data_dir``)."""
    url = settings.database.url
    if url and url.strip() and parse_database_url(url).kind not in ("sqlite",):
        return url.strip()
    turso = settings.database.turso_url
    if turso and turso.strip() and parse_database_url(turso).kind == "libsql":
        return turso.strip()
    dsn = settings.database.postgres_dsn
    return dsn.strip() if dsn and dsn.strip() else None


def memory_config_from(settings: Settings) -> MemoryConfig:
    """The library's :class:`MemoryConfig` for these settings."""
    from ..config import (
        CacheConfig,
        EmbeddingsConfig,
        MemoryConfig,
        RetrievalConfig,
        SandboxAuditConfig,
        StorageConfig,
        SyncConfig,
    )

    synchronous = "full" if settings.database.synchronous == "full" else "normal"
    try:
        return MemoryConfig(
            storage=StorageConfig(
                url=database_url(settings),
                auth_token=settings.database.turso_token,
                busy_timeout_ms=settings.database.busy_timeout_ms,
                synchronous=synchronous,
                pool_size=settings.storage.pool_size,
            ),
            cache=CacheConfig(
                enabled=settings.storage.cache_enabled,
                max_episodes=settings.storage.max_episodes_cache,
            ),
            embeddings=EmbeddingsConfig.model_validate(
                settings.embeddings.model_dump(include=set(EmbeddingsConfig.model_fields))
            ),
            retrieval=RetrievalConfig.model_validate(
                settings.retrieval.model_dump(include=set(RetrievalConfig.model_fields))
            ),
            sync=SyncConfig(
                # not set anywhere: automatic (on for a remote primary, off for embedded)
                enabled=(
                    settings.sync.enabled if "enabled" in settings.sync.model_fields_set else None
                ),
                interval_s=settings.sync.interval_seconds,
                strategy=_SYNC_STRATEGY.get(settings.sync.conflict_resolution, "primary_wins"),
            ),
            sandbox_audit=SandboxAuditConfig(keep=settings.sandbox.audit_keep),
        )
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(
            f"Invalid configuration value {key} = {first.get('input')!r}: {first['msg']}."
        ) from None
