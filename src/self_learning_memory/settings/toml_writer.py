"""Write settings as a commented TOML file (``config init``, ``config wizard``).

Keys given in ``explicit`` are written as values; every other key is written commented out with
its effective value, its help line and its environment variable, so the file documents the whole
configuration while setting only what was chosen (a partial file is valid).
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping
from enum import Enum
from typing import Any

from .keys import HELP, SECRET_KEYS, canonical_keys, env_names
from .schema import SECTIONS, Settings, iter_keys

__all__ = ["render_toml", "toml_value"]

HEADER = """\
# Configuration of self-learning-memory (memory-cli and memory-mcp).
# Every key is optional: a missing key takes its default. Precedence, highest first:
#   command-line flag > environment (MEMORY_<SECTION>_<KEY>) > this file > preset > smart defaults.
# Reference: docs/configuration.md. Check it with `memory-cli config validate`.
"""


def toml_value(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def render_toml(
    explicit: Mapping[str, Any],
    effective: Settings | None = None,
    *,
    sources: Mapping[str, str] | None = None,
    title: str | None = None,
) -> str:
    """A commented TOML file. ``explicit`` maps dotted keys to the values to set; None values
    and secrets not given are left commented."""
    effective = effective or Settings()
    moved = canonical_keys({key: (value, "") for key, value in explicit.items()})
    explicit = {key: value for key, (value, _where) in moved.items()}
    lines = [HEADER.rstrip("\n")]
    if title:
        lines += [f"# {line}" for line in textwrap.wrap(title, 96)]
    lines.append("")
    preset = explicit.get("preset")
    lines.append(f"# {HELP['preset']}")
    if preset is not None:
        lines.append(f"preset = {toml_value(preset)}")
    else:
        lines.append('# preset = "custom"')
    by_section: dict[str, list[str]] = {section: [] for section in SECTIONS}
    for key, _default in iter_keys():
        if key == "preset":
            continue
        section, _, name = key.partition(".")
        out = by_section[section]
        out += [f"# {line}" for line in textwrap.wrap(HELP.get(key, ""), 96)]
        note = f"env {', '.join(env_names(key))}"
        source = (sources or {}).get(key, "")
        if source.startswith("smart default") and key not in explicit:
            note += f"; {source}"
        out += [f"# {line}" for line in textwrap.wrap(f"({note})", 96)]
        if key in explicit and explicit[key] is not None:
            out.append(f"{name} = {toml_value(explicit[key])}")
        else:
            value = effective.get(key)
            if key in SECRET_KEYS or value is None:
                out.append(f'# {name} = ""')
            else:
                out.append(f"# {name} = {toml_value(value)}")
    for section in SECTIONS:
        lines += ["", f"[{section}]", *by_section[section]]
    return "\n".join(lines) + "\n"
