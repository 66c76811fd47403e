"""The precedence of configuration sources, as plain data (no pydantic).

From lowest to highest: schema default < smart default < preset < config file < environment
(``MEMORY_*``) < command-line flag. One file is used: the explicit one (``--config`` or
``$MEMORY_CLI_CONFIG``, which must exist) or else the first discovered in the current directory.
Each value remembers where it came from, for ``config show``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .environment import FORMATS, Environment, detect_environment, smart_defaults
from .files import ConfigFile, discover_config_file, read_config_file
from .keys import HELP, KEY_ALIASES, PATH_KEYS, canonical_keys, env_names
from .presets import PRESETS, preset_values

__all__ = ["RawConfig", "flatten", "quick_default_format", "resolve_raw"]


@dataclass
class RawConfig:
    """Merged dotted values with their source, before type checking."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    file: ConfigFile | None = None
    preset: str | None = None
    environment: Environment = field(default_factory=Environment)

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{"storage": {"pool_size": 5}, "preset": "local"}`` -> ``{"storage.pool_size": 5, ...}``.
    Sections hold scalars or lists; a deeper table stays a value (the schema will reject it)."""
    flat: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, Mapping):
            for key, item in value.items():
                flat[f"{name}.{key}"] = item
        else:
            flat[str(name)] = value
    return flat


def _env_layer(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """Every key's variables, and the old variables of keys that moved."""
    found: dict[str, tuple[Any, str]] = {}
    for key in (*HELP, *KEY_ALIASES):
        for name in env_names(key):
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            found[key] = (raw.strip(), f"env {name}")
            break
    return found


def _load_file(config_path: Path | None, cwd: Path | None, discover: bool) -> ConfigFile | None:
    if config_path is not None:
        return read_config_file(Path(config_path).expanduser(), origin="explicit")
    if not discover:
        return None
    discovered = discover_config_file(cwd)
    if discovered is None:
        return None
    return read_config_file(discovered, origin="discovered")


def _file_values(config: ConfigFile) -> dict[str, tuple[Any, str]]:
    values: dict[str, tuple[Any, str]] = {}
    for key, value in flatten(config.data).items():
        if key in PATH_KEYS and isinstance(value, str) and value and value.lower() != "none":
            path = Path(value).expanduser()
            if not path.is_absolute():
                value = str((config.path.parent / path).resolve())
        if key in ("storage.url", "database.url") and isinstance(value, str):
            value = _absolute_sqlite_url(value, config.path.parent)
        values[key] = (value, f"file {config.where(key)} ({config.origin})")
    return values


def _data_dir_from_url(layer: dict[str, tuple[Any, str]]) -> None:
    """A SQLite ``storage.url`` (or old ``database.url``) names the data directory: it sets
    ``storage.data_dir`` at the same precedence, unless that layer sets the directory itself."""
    from ..storage.database_url import parse_database_url

    for key in ("storage.url", "database.url"):
        if key not in layer or "storage.data_dir" in layer:
            continue
        value, source = layer[key]
        if isinstance(value, str) and value.strip():
            implied = parse_database_url(value).data_dir
            if implied is not None:
                layer["storage.data_dir"] = (str(implied), f"{source} via {key}")


def _absolute_sqlite_url(url: str, base: Path) -> str:
    from ..storage.database_url import parse_database_url

    if not url.strip():
        return url
    target = parse_database_url(url)
    if target.kind == "sqlite" and target.path is not None and not target.path.is_absolute():
        return str((base / target.path).resolve())
    return url


def resolve_raw(
    config_path: Path | None = None,
    *,
    flags: Mapping[str, tuple[Any, str]] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    environment: Environment | None = None,
    discover: bool = True,
    default_preset: str | None = None,
) -> RawConfig:
    """Merge every source. ``flags`` maps a dotted key to (value, flag name); ``discover``
    looks for a file in ``cwd`` when no explicit one is given; ``default_preset`` applies when
    no file, variable or flag names a preset."""
    environ = os.environ if env is None else env
    environment = environment or detect_environment(environ)
    raw = RawConfig(environment=environment)

    smart = smart_defaults(environment)
    import platformdirs

    from ..paths import APP_NAME

    raw.set(
        "storage.data_dir",
        platformdirs.user_data_dir(APP_NAME, appauthor=False),
        "smart default (user data dir)",
    )
    for key, (value, why) in smart.items():
        raw.set(key, value, f"smart default ({why})")

    config = _load_file(config_path, cwd, discover)
    raw.file = config
    file_values = _file_values(config) if config is not None else {}
    env_values = _env_layer(environ)
    flag_values = {k: v for k, v in (flags or {}).items() if v[0] is not None}
    for layer in (file_values, env_values, flag_values):
        _data_dir_from_url(layer)
    file_values, env_values, flag_values = (
        canonical_keys(layer) for layer in (file_values, env_values, flag_values)
    )

    preset_name: str | None = default_preset
    for layer in (file_values, env_values, flag_values):
        if "preset" in layer:
            preset_name = layer["preset"][0]
    if isinstance(preset_name, str) and preset_name.strip().lower() in PRESETS:
        name = preset_name.strip().lower()
        raw.preset = name
        if preset_name == default_preset:
            raw.set("preset", name, "simple setup (chosen from the environment)")
        for key, value in preset_values(name, environment, smart, environ).items():
            raw.set(key, value, f"preset {name}")
    elif preset_name is not None:
        raw.preset = str(preset_name)

    for layer in (file_values, env_values):
        for key, (value, source) in layer.items():
            raw.set(key, value, source)
    for key, (value, flag) in flag_values.items():
        raw.set(key, value, f"flag {flag}")
    return raw


def quick_default_format(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    discover: bool = True,
    cwd: Path | None = None,
) -> str:
    """``cli.default_format`` through the full precedence without loading the schema (the CLI
    calls this on every start). An invalid value raises ConfigurationError naming its source."""
    raw = resolve_raw(config_path, env=env, discover=discover, cwd=cwd)
    value = raw.values.get("cli.default_format", "human")
    text = str(value).strip().lower()
    if text not in FORMATS:
        raise ConfigurationError(
            f"Invalid cli.default_format '{value}' from {raw.sources.get('cli.default_format')} "
            f"(limit: one of {', '.join(FORMATS)})."
        )
    return text
