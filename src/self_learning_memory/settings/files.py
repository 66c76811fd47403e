"""Config files: where they are found, how they are parsed, and where a key sits in one.

TOML, JSON or YAML, chosen by extension (``.toml``, ``.json``, ``.yaml``/``.yml``); any other
extension is parsed as JSON. A file that cannot be read or parsed raises
:class:`~self_learning_memory.errors.ConfigurationError` naming the file and the line.

Every format is refused above ``MAX_CONFIG_BYTES`` (checked before the file is read, and the read
is bounded too), and YAML aliases (``*name``) are refused: nested aliases expand exponentially
(a 400-byte "billion laughs" file becomes a gigabyte-sized structure), and a config needs none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = [
    "CONFIG_FILE_NAMES",
    "ConfigFile",
    "discover_config_file",
    "file_format",
    "key_line",
    "read_config_file",
]

# Looked for in the current directory, first match wins.
CONFIG_FILE_NAMES = (
    "unified-config.toml",
    "memory-cli.toml",
    "memory-cli.json",
    "memory-cli.yaml",
    ".memory-cli.toml",
    ".memory-cli.json",
    ".memory-cli.yaml",
)

MAX_CONFIG_BYTES = 1_000_000


@dataclass(frozen=True)
class ConfigFile:
    """A parsed config file: its path, how it was found, its format, text and data."""

    path: Path
    origin: str  # "explicit" (--config / $MEMORY_CLI_CONFIG) or "discovered"
    format: str  # toml, json or yaml
    text: str
    data: dict[str, Any]

    def line_of(self, dotted: str) -> int | None:
        return key_line(self.text, self.format, dotted)

    def where(self, dotted: str) -> str:
        line = self.line_of(dotted)
        return f"{self.path}, line {line}" if line else str(self.path)


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    return "json"


def discover_config_file(cwd: Path | None = None) -> Path | None:
    directory = Path.cwd() if cwd is None else cwd
    for name in CONFIG_FILE_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path, origin: str = "explicit") -> ConfigFile:
    """Read and parse ``path``. The top level must be a table/object of sections."""
    try:
        if not path.exists():
            raise ConfigurationError(f"Config file {path} does not exist.")
        if path.is_dir():
            raise ConfigurationError(f"Config file {path} is a directory, not a file.")
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigurationError(_too_large(path, size))
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"Cannot read config file {path}: {exc.strerror or exc}.") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigurationError(_too_large(path, len(raw)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigurationError(
            f"Config file {path}, line {line}: not valid UTF-8 text (byte {exc.start})."
        ) from exc
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ConfigurationError(f"Config file {path}, line {line}: contains a NUL byte.")
    fmt = file_format(path)
    data = _parse(path, fmt, text)
    if data is None and fmt == "yaml":  # an empty YAML file
        data = {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"Config file {path}, line 1: the top level must be a table of sections "
            f"(like [storage]), not {type(data).__name__}."
        )
    return ConfigFile(path=path, origin=origin, format=fmt, text=text, data=data)


def _too_large(path: Path, size: int) -> str:
    return (
        f"Config file {path} is {size} bytes or more; config files are limited to "
        f"{MAX_CONFIG_BYTES} bytes."
    )


def _load_yaml(path: Path, text: str) -> Any:
    """``yaml.safe_load`` that refuses aliases before anything is expanded."""
    import yaml

    class _NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event: Any = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
                line = event.start_mark.line + 1 if event.start_mark is not None else 1
                raise ConfigurationError(
                    f"Config file {path}, line {line}: YAML aliases (*{event.anchor}) are not "
                    "allowed in config files (they can expand without bound); write the value out."
                )
            return super().compose_node(parent, index)

    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _parse(path: Path, fmt: str, text: str) -> Any:
    if fmt == "toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            match = re.search(r"\(at line (\d+), column \d+\)", message)
            reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
            line = int(match.group(1)) if match else text.count("\n") + 1
            return _fail(path, line, f"invalid TOML: {reason}", text)
    if fmt == "yaml":
        import yaml

        try:
            return _load_yaml(path, text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            return _fail(path, line, f"invalid YAML: {exc.problem or exc.context}", text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"Config file {path}: invalid YAML: {exc}.") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return _fail(path, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})", text)


def _fail(path: Path, line: int, reason: str, text: str) -> Any:
    key = _key_near(text, line)
    near = f" near key '{key}'" if key else ""
    raise ConfigurationError(f"Config file {path}, line {line}{near}: {reason.strip()}.")


_KEY_RE = re.compile(r"""^\s*(?:\[+\s*([\w.\-]+)\s*\]+|["']?([\w.\-]+)["']?\s*[=:])""")


def _key_near(text: str, line: int) -> str | None:
    """The key (or section) on ``line``, else on the nearest line above that has one."""
    lines = text.splitlines()
    for index in range(min(line, len(lines)) - 1, -1, -1):
        match = _KEY_RE.match(lines[index])
        if match:
            return match.group(1) or match.group(2)
    return None


def key_line(text: str, fmt: str, dotted: str) -> int | None:
    """The 1-based line where ``section.key`` is set, or None when it cannot be found."""
    parts = dotted.split(".")
    if fmt == "yaml":
        return _yaml_key_line(text, parts)
    lines = text.splitlines()
    if fmt == "toml":
        section, key = (parts[0], parts[-1]) if len(parts) > 1 else ("", parts[0])
        current = ""
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            header = re.match(r"^\[\s*([\w.\-]+)\s*\]", stripped)
            if header:
                current = header.group(1)
                if len(parts) == 1 and current == key:
                    return number
                continue
            match = re.match(r"""^["']?([\w.\-]+)["']?\s*=""", stripped)
            if not match:
                continue
            name = match.group(1)
            if (current == section and name == key) or (not current and name == dotted):
                return number
        return None
    # JSON: the key after its section's key
    start = 0
    found: int | None = None
    for part in parts:
        pattern = re.compile(rf'"{re.escape(part)}"\s*:')
        for number in range(start, len(lines)):
            if pattern.search(lines[number]):
                found, start = number + 1, number
                break
        else:
            return None
    return found


def _yaml_key_line(text: str, parts: Sequence[str]) -> int | None:
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line: int | None = None
    for part in parts:
        if not isinstance(node, yaml.MappingNode):
            return None
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == part:
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            return None
    return line
