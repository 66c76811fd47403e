"""Value rules of the configuration beyond the schema's own ranges and allowed values.

Errors make the configuration unusable (the memory refuses to open with it); warnings are
printed and allowed. Each issue names the field, the value and the limit. The schema's
ranges (``Field(ge=..., le=...)``, literals) are checked when the settings are loaded and
arrive here as ``invalid`` issues, so one report holds every problem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..model.limits import MAX_SANDBOX_POOL
from ..storage.database_url import DB_FILENAME, mask_url, parse_database_url
from .keys import HELP, KEY_ALIASES, REMOVED_KEYS, SECRET_KEYS
from .presets import PRESETS
from .schema import Settings

__all__ = ["ConfigIssue", "ValidationReport", "validate_settings"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SANDBOX_PRESETS = ("default", "restrictive", "permissive")
SANDBOX_BACKENDS = ("wasm", "node", "hybrid")
SANDBOX_NODE_RULES = ("none", "uses_require")
EPISODE_ESTIMATE_KB = 10  # average cached episode, for the memory estimate
MEMORY_WARN_MB = 100  # above the schema default (10,000 episodes, about 98 MB)


@dataclass(frozen=True)
class ConfigIssue:
    severity: str  # error or warning
    field: str
    value: Any
    limit: str
    message: str

    def __str__(self) -> str:
        return f"{self.field} = {self.value!r}: {self.message} (limit: {self.limit})"


@dataclass
class ValidationReport:
    errors: list[ConfigIssue] = field(default_factory=list)
    warnings: list[ConfigIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, key: str, value: Any, limit: str, message: str) -> None:
        self.errors.append(ConfigIssue("error", key, _shown(key, value), limit, message))

    def warning(self, key: str, value: Any, limit: str, message: str) -> None:
        self.warnings.append(ConfigIssue("warning", key, _shown(key, value), limit, message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "errors": [asdict(issue) for issue in self.errors],
            "warnings": [asdict(issue) for issue in self.warnings],
        }


def _shown(key: str, value: Any) -> Any:
    if key in SECRET_KEYS and value:
        return "***"
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def validate_settings(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    invalid: Sequence[ConfigIssue] = (),
    ignored: Mapping[str, Any] | None = None,
) -> ValidationReport:
    """Every rule at once. ``invalid``: values the schema already refused (see
    :func:`.loader.load_settings`); ``ignored``: keys nothing reads, reported as warnings."""
    environ = os.environ if env is None else env
    report = ValidationReport(errors=list(invalid))
    if settings.preset is not None and settings.preset not in PRESETS:
        report.error("preset", settings.preset, " | ".join(PRESETS), "unknown preset")
    _store(settings, report)
    _cache(settings, report)
    _embeddings(settings, report, environ)
    _retrieval(settings, report)
    _others(settings, report)
    for key, value in (ignored or {}).items():
        if key in REMOVED_KEYS:
            report.warning(key, value, "unset", f"no longer read ({REMOVED_KEYS[key]}); delete it")
        elif key in KEY_ALIASES:
            report.warning(key, value, "a libsql:// URL", "not a Turso URL, ignored")
        else:
            near = _closest(key)
            hint = f"did you mean '{near}'?" if near else "see docs/configuration.md"
            report.warning(key, value, "a known key", f"unknown key, ignored; {hint}")
    return report


def _closest(key: str) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, [*HELP, *KEY_ALIASES], n=1, cutoff=0.75)
    return matches[0] if matches else None


def _store(s: Settings, r: ValidationReport) -> None:
    st = s.storage
    if st.data_dir is not None and not str(st.data_dir).strip():
        r.error("storage.data_dir", st.data_dir, "a directory path", "is empty")
    if st.url is None:
        if st.auth_token:
            r.warning(
                "storage.auth_token",
                st.auth_token,
                "with a libsql:// storage.url",
                "token without a URL",
            )
        return
    if not st.url.strip():
        r.error("storage.url", st.url, "a SQLite path or URL", "is empty")
        return
    target = parse_database_url(st.url)
    if target.kind == "memory":
        r.error(
            "storage.url",
            st.url,
            f"a SQLite file named {DB_FILENAME}",
            "an in-memory database cannot be shared between processes; use "
            "preset = 'memory' for a throwaway store",
        )
    elif target.kind == "libsql":
        if not st.auth_token and st.url.strip().lower().startswith("libsql://"):
            r.warning(
                "storage.url",
                st.url,
                "a token for a remote libsql:// URL (storage.auth_token or $TURSO_AUTH_TOKEN)",
                "remote URL without a token",
            )
    elif target.kind == "unknown":
        r.error("storage.url", st.url, "sqlite:, file:, a path", "unknown URL scheme")
    elif target.path is not None:
        suffix = target.path.suffix.lower()
        if suffix and target.path.name != DB_FILENAME:
            r.error(
                "storage.url",
                st.url,
                f"a file named {DB_FILENAME} (or the data directory)",
                f"the embedded store's file is always <data_dir>/{DB_FILENAME}",
            )
        implied = target.data_dir
        if implied is not None and st.data_dir and implied.resolve() != _resolved(st.data_dir):
            r.warning(
                "storage.url",
                st.url,
                f"inside storage.data_dir ({st.data_dir})",
                "storage.data_dir is set with higher precedence and wins: the store "
                f"is {st.data_dir}/{DB_FILENAME}, not under {implied}",
            )


def _resolved(path: str) -> Any:
    from pathlib import Path

    return Path(path).expanduser().resolve()


def _positive(r: ValidationReport, key: str, value: int, warn_above: int | None) -> None:
    if value < 1:
        r.error(
            key,
            value,
            f">= 1{f' (warning above {warn_above})' if warn_above else ''}",
            "must be positive",
        )
    elif warn_above is not None and value > warn_above:
        r.warning(key, value, f"<= {warn_above}", "unusually large")


def _cache(s: Settings, r: ValidationReport) -> None:
    episodes = s.cache.max_episodes
    if episodes > 100_000:
        r.warning("cache.max_episodes", episodes, "<= 100000", "unusually large")
    estimate_mb = episodes * EPISODE_ESTIMATE_KB / 1024
    if estimate_mb > MEMORY_WARN_MB:
        r.warning(
            "cache.max_episodes",
            episodes,
            f"about {MEMORY_WARN_MB} MB of cache ({MEMORY_WARN_MB * 1024 // EPISODE_ESTIMATE_KB} "
            f"episodes of ~{EPISODE_ESTIMATE_KB} KB)",
            f"estimated cache memory {estimate_mb:.0f} MB",
        )
    url = s.storage.url
    remote = url is not None and parse_database_url(url).kind in ("libsql", "postgresql")
    if remote and episodes < 100:
        r.warning(
            "cache.max_episodes",
            episodes,
            ">= 100 with a remote database",
            "small cache in front of a remote database",
        )


def _embeddings(s: Settings, r: ValidationReport, env: Mapping[str, str]) -> None:
    emb = s.embeddings
    if emb.provider == "openai" and not env.get(emb.api_key_env):
        r.warning(
            "embeddings.api_key_env",
            emb.api_key_env,
            "an environment variable that is set",
            f"${emb.api_key_env} is not set: embedding calls will fail",
        )
    if emb.provider == "hashing":
        r.warning("embeddings.provider", "hashing", "local | openai", "a test double, not semantic")
    from ..embeddings import resolve_provider

    if s.retrieval.mode.value == "vector" and resolve_provider(emb) == "none":
        r.error(
            "retrieval.mode",
            "vector",
            "an embeddings.provider other than none",
            "vector retrieval needs embeddings",
        )


def _retrieval(s: Settings, r: ValidationReport) -> None:
    rt = s.retrieval
    total = rt.weight_relevance + rt.weight_context + rt.weight_outcome + rt.weight_recency
    if total <= 0:
        r.error(
            "retrieval.weight_relevance", total, "a positive sum of weights", "all weights are 0"
        )


def _sandbox_backend(s: Settings, r: ValidationReport) -> None:
    sb = s.sandbox
    if sb.backend not in SANDBOX_BACKENDS:
        r.error("sandbox.backend", sb.backend, " | ".join(SANDBOX_BACKENDS), "unknown backend")
    if not 0.0 <= sb.node_ratio <= 1.0:
        r.error("sandbox.node_ratio", sb.node_ratio, "0..1", "out of range")
    if sb.node_rule not in SANDBOX_NODE_RULES:
        r.error("sandbox.node_rule", sb.node_rule, " | ".join(SANDBOX_NODE_RULES), "unknown rule")
    routes = sb.node_ratio > 0 or sb.node_rule != "none"
    if sb.backend in ("wasm", "node") and routes:
        r.warning(
            "sandbox.backend",
            sb.backend,
            "hybrid",
            "node_ratio / node_rule only apply to the hybrid backend; ignored",
        )
    if sb.backend == "hybrid" and not routes:
        r.warning(
            "sandbox.node_ratio",
            sb.node_ratio,
            "> 0, or a node_rule",
            "the hybrid backend sends nothing to Node; every run goes to WASM",
        )
    if sb.enabled and sb.backend in ("node", "hybrid"):
        r.warning(
            "sandbox.backend",
            sb.backend,
            "wasm",
            "the Node backend is legacy: Node's permission model does not block the network "
            "unless the server runs as root (a network namespace); see docs/sandbox.md",
        )


def _others(s: Settings, r: ValidationReport) -> None:
    sb = s.sandbox
    _sandbox_backend(s, r)
    if sb.preset not in SANDBOX_PRESETS:
        r.error("sandbox.preset", sb.preset, " | ".join(SANDBOX_PRESETS), "unknown preset")
    _positive(r, "sandbox.max_execution_time_ms", sb.max_execution_time_ms, 60_000)
    _positive(r, "sandbox.max_memory_mb", sb.max_memory_mb, 4096)
    if sb.pool_size is not None and not 1 <= sb.pool_size <= MAX_SANDBOX_POOL:
        r.error("sandbox.pool_size", sb.pool_size, f"1..{MAX_SANDBOX_POOL}", "out of range")
    if s.logging.level.upper() not in LOG_LEVELS:
        r.error("logging.level", s.logging.level, " | ".join(LOG_LEVELS), "unknown level")
