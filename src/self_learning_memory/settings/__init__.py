"""The configuration system shared by ``memory-cli`` and ``memory-mcp``.

Config files (TOML, JSON or YAML), ``MEMORY_*`` environment variables, command-line flags,
smart defaults computed from the machine and CI/dev environment, presets, a validator and a
wizard. Precedence, lowest to highest: schema default < smart default < preset < file < env <
flag. See docs/configuration.md.

    from self_learning_memory.settings import load_settings
    loaded = load_settings()
    config, data_dir = loaded.memory_config(), loaded.data_dir()

Exports are loaded lazily: importing this package costs nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .environment import Environment, detect_environment, smart_defaults
    from .files import CONFIG_FILE_NAMES, discover_config_file, read_config_file
    from .layers import quick_default_format
    from .loader import LoadedSettings, load_settings, memory_config_from, resolved_data_dir
    from .presets import PRESETS, choose_simple_preset
    from .schema import Settings
    from .setup import SettingsBuilder, progressive, simple
    from .toml_writer import render_toml
    from .validation import ConfigIssue, ValidationReport, validate_settings
    from .wizard import WizardAnswers, run_wizard

__all__ = [
    "CONFIG_FILE_NAMES",
    "PRESETS",
    "ConfigIssue",
    "Environment",
    "LoadedSettings",
    "Settings",
    "SettingsBuilder",
    "ValidationReport",
    "WizardAnswers",
    "choose_simple_preset",
    "detect_environment",
    "discover_config_file",
    "load_settings",
    "memory_config_from",
    "progressive",
    "quick_default_format",
    "read_config_file",
    "render_toml",
    "resolved_data_dir",
    "run_wizard",
    "simple",
    "smart_defaults",
    "validate_settings",
]

_WHERE = {
    "Environment": "environment",
    "detect_environment": "environment",
    "smart_defaults": "environment",
    "CONFIG_FILE_NAMES": "files",
    "discover_config_file": "files",
    "read_config_file": "files",
    "quick_default_format": "layers",
    "LoadedSettings": "loader",
    "load_settings": "loader",
    "memory_config_from": "loader",
    "resolved_data_dir": "loader",
    "PRESETS": "presets",
    "choose_simple_preset": "presets",
    "Settings": "schema",
    "SettingsBuilder": "setup",
    "progressive": "setup",
    "simple": "setup",
    "render_toml": "toml_writer",
    "ConfigIssue": "validation",
    "ValidationReport": "validation",
    "validate_settings": "validation",
    "WizardAnswers": "wizard",
    "run_wizard": "wizard",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
