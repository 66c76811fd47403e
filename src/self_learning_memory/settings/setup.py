"""Setup for programs: ``simple()`` works in one line, ``progressive()`` adds options on request.

    loaded = simple()                                   # preset chosen from the environment
    loaded = progressive().data_dir("./mem").cache(max_episodes=500).build()
    async with SelfLearningMemory.open(loaded.data_dir(), config=loaded.memory_config()):
        ...

Both read ``MEMORY_*`` variables (they win over the preset and the smart defaults); neither
looks for config files unless given one (``progressive().file(path)``). Values set on the
builder win over everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .environment import detect_environment
from .keys import HELP, KEY_ALIASES
from .loader import LoadedSettings, load_settings
from .presets import PRESETS, choose_simple_preset

__all__ = ["SettingsBuilder", "progressive", "simple"]


def simple(
    data_dir: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> LoadedSettings:
    """Zero-configuration settings: ``cloud`` with Turso variables or on a cloud platform,
    ``memory`` under CI, else ``local``. Raises ConfigurationError if they are not usable."""
    builder = progressive(env=env)
    if data_dir is not None:
        builder.data_dir(data_dir)
    return builder.build()


def progressive(
    preset: str | None = None, *, env: Mapping[str, str] | None = None
) -> SettingsBuilder:
    """A builder starting from ``preset`` (default: the one ``simple()`` would choose)."""
    return SettingsBuilder(preset, env=env)


class SettingsBuilder:
    """Collects explicit values; :meth:`build` resolves and validates them."""

    def __init__(self, preset: str | None = None, *, env: Mapping[str, str] | None = None) -> None:
        if preset is not None and preset not in PRESETS:
            raise ConfigurationError(
                f"Unknown preset '{preset}' (limit: one of {', '.join(PRESETS)})."
            )
        self._env = env
        self._preset = preset
        self._values: dict[str, Any] = {}
        self._file: Path | None = None

    def set(self, key: str, value: Any) -> SettingsBuilder:
        if key not in HELP and key not in KEY_ALIASES:
            raise ConfigurationError(f"Unknown config key '{key}' (see docs/configuration.md).")
        self._values[key] = value
        return self

    def _section(self, section: str, values: Mapping[str, Any]) -> SettingsBuilder:
        for name, value in values.items():
            self.set(f"{section}.{name}", value)
        return self

    def data_dir(self, path: str | Path) -> SettingsBuilder:
        return self.set("storage.data_dir", str(Path(path).expanduser()))

    def file(self, path: str | Path) -> SettingsBuilder:
        """Read a config file too (below the environment and the builder's values)."""
        self._file = Path(path)
        return self

    def database(self, **values: Any) -> SettingsBuilder:
        """The old ``[database]`` keys (url, turso_url, turso_token, ...): see KEY_ALIASES."""
        return self._section("database", values)

    def storage(self, **values: Any) -> SettingsBuilder:
        return self._section("storage", values)

    def cache(self, **values: Any) -> SettingsBuilder:
        return self._section("cache", values)

    def cli(self, **values: Any) -> SettingsBuilder:
        return self._section("cli", values)

    def embeddings(self, **values: Any) -> SettingsBuilder:
        return self._section("embeddings", values)

    def retrieval(self, **values: Any) -> SettingsBuilder:
        return self._section("retrieval", values)

    def sync(self, **values: Any) -> SettingsBuilder:
        return self._section("sync", values)

    def batch(self, **values: Any) -> SettingsBuilder:
        return self._section("batch", values)

    def queue(self, **values: Any) -> SettingsBuilder:
        return self._section("queue", values)

    def resilience(self, **values: Any) -> SettingsBuilder:
        return self._section("resilience", values)

    def build(self) -> LoadedSettings:
        environment = detect_environment(self._env)
        preset = self._preset or choose_simple_preset(environment, self._env)
        loaded = load_settings(
            self._file,
            flags={key: (value, "(set in code)") for key, value in self._values.items()},
            env=self._env,
            environment=environment,
            discover=False,
            default_preset=preset,
        )
        report = loaded.validate(self._env)
        if not report.ok:
            raise ConfigurationError(
                "Invalid configuration: " + "; ".join(str(issue) for issue in report.errors) + "."
            )
        return loaded
