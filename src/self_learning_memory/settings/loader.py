"""Load the effective settings, and turn them into what the library needs.

loaded = load_settings()                 # discovered file, env, smart defaults
loaded = load_settings(Path("memory-cli.toml"), flags={"storage.data_dir": ("/x", "--data-dir")})
async with SelfLearningMemory.open(loaded.data_dir(), config=loaded.memory_config()) as memory:
    ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigurationError
from ..storage.database_url import mask_url, parse_database_url
from .environment import Environment
from .files import ConfigFile
from .keys import HELP, REMOVED_KEYS, SECRET_KEYS
from .layers import RawConfig, resolve_raw
from .schema import SECTIONS, Settings, iter_keys, nest
from .validation import ConfigIssue, ValidationReport, validate_settings

if TYPE_CHECKING:
    from ..config import MemoryConfig

__all__ = ["LoadedSettings", "load_settings", "memory_config_from", "resolved_data_dir"]


@dataclass
class LoadedSettings:
    """The effective settings, the source of every value, and the file they came from.

    ``invalid`` holds the values the schema refused (out of range, not an allowed value): the
    key keeps its default in ``settings`` and :meth:`validate` reports them with every other
    problem. ``ignored`` holds keys nothing reads (unknown, or removed), reported as warnings.
    """

    settings: Settings
    sources: dict[str, str]
    file: ConfigFile | None
    environment: Environment
    preset: str | None = None
    invalid: list[ConfigIssue] = field(default_factory=list)
    ignored: dict[str, Any] = field(default_factory=dict)

    def validate(self, env: Mapping[str, str] | None = None) -> ValidationReport:
        return validate_settings(self.settings, env=env, invalid=self.invalid, ignored=self.ignored)

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
        return self.settings.memory_config()

    def show(self) -> dict[str, Any]:
        """Every key: its value (secrets masked) and where it came from."""
        refused = {issue.field: issue.value for issue in self.invalid}
        rows: dict[str, Any] = {}
        for key, _default in iter_keys():
            value = refused[key] if key in refused else masked(key, self.settings.get(key))
            rows[key] = {"value": value, "source": self.sources.get(key, "default")}
        for key, value in self.ignored.items():
            kind = "removed key" if key in REMOVED_KEYS else "unknown key"
            rows[key] = {
                "value": masked(key, value),
                "source": f"{self.sources.get(key, 'file')} ({kind})",
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


# Errors of a value the schema's rules refuse (reported by the validator) rather than of its
# type (a load error naming the source).
_RULE_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "literal_error",
        "enum",
    }
)
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _key(error: ErrorDetails) -> str:
    loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
    if len(loc) > 1 and loc[0] in SECTIONS:
        return f"{loc[0]}.{loc[-1]}"
    return ".".join(loc[:1]) or "?"


def _rule_issue(key: str, value: Any, error: ErrorDetails) -> ConfigIssue:
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        allowed = str(ctx["expected"]).replace("'", "").replace(" or ", ", ").split(", ")
        limit, message = " | ".join(allowed), "not an allowed value"
    else:
        limit = " ".join(f"{_BOUNDS[b]} {ctx[b]}" for b in _BOUNDS if b in ctx)
        message = "out of range"
    return ConfigIssue("error", key, masked(key, value), limit, message)


def _type_error(raw: RawConfig, errors: Sequence[ErrorDetails]) -> ConfigurationError:
    problems = []
    for error in errors:
        key = _key(error)
        value = raw.values.get(key, error.get("input"))
        source = raw.sources.get(key) or (
            f"file {raw.file.where(key)}" if raw.file is not None else "the defaults"
        )
        problems.append(f"{key} = {masked(key, value)!r} from {source}: {error['msg']}")
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
    Values the schema refuses and the remaining value rules are reported together by
    :meth:`LoadedSettings.validate`.
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
    values: dict[str, Any] = {}
    ignored: dict[str, Any] = {}
    for key, value in raw.values.items():
        if "." in key and key.partition(".")[0] in SECTIONS and isinstance(value, Mapping):
            raise ConfigurationError(
                f"Invalid configuration value: {key} from {raw.sources.get(key)} is a table; "
                "sections hold plain values (limit: one level of [section] keys)."
            )
        (values if key in HELP else ignored)[key] = value
    invalid: list[ConfigIssue] = []
    while True:
        try:
            settings = Settings.model_validate(nest(values))
            break
        except PydanticValidationError as exc:
            errors = exc.errors()
            wrong_type = [
                e for e in errors if e["type"] not in _RULE_ERRORS or _key(e) not in values
            ]
            if wrong_type:
                raise _type_error(raw, wrong_type) from None
            for error in errors:
                key = _key(error)
                if key in values:
                    invalid.append(_rule_issue(key, values.pop(key), error))
    return LoadedSettings(
        settings=settings,
        sources=dict(raw.sources),
        file=raw.file,
        environment=raw.environment,
        preset=raw.preset,
        invalid=invalid,
        ignored=ignored,
    )


def resolved_data_dir(settings: Settings) -> Path:
    """``storage.data_dir`` (which a SQLite ``storage.url`` sets, see :mod:`.layers`); else the
    directory of a SQLite ``storage.url``; else the user's data directory."""
    if settings.storage.data_dir:
        return Path(settings.storage.data_dir).expanduser()
    if settings.storage.url:
        target = parse_database_url(settings.storage.url)
        if target.data_dir is not None:
            return target.data_dir
    from ..paths import resolve_data_dir

    return resolve_data_dir(None)


def database_url(settings: Settings) -> str | None:
    """The URL of a non-embedded durable store, or None for the embedded store in the data
    directory (a SQLite ``storage.url`` has already become ``storage.data_dir``)."""
    return settings.memory_config().storage.url


def memory_config_from(settings: Settings) -> MemoryConfig:
    """The library's :class:`MemoryConfig` for these settings: their library part."""
    return settings.memory_config()
