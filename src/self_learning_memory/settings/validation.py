"""Value rules of the configuration (reference validator.rs, plus the new sections).

Errors make the configuration unusable (the memory refuses to open with it); warnings are
printed and allowed. Each issue names the field, the value and the limit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..storage.database_url import DB_FILENAME, mask_url, parse_database_url
from .environment import FORMATS
from .keys import HELP, SECRET_KEYS
from .presets import PRESETS
from .schema import Settings

__all__ = ["ConfigIssue", "ValidationReport", "validate_settings"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SANDBOX_PRESETS = ("default", "restrictive", "permissive")
SANDBOX_BACKENDS = ("wasm", "node", "hybrid")
SANDBOX_NODE_RULES = ("none", "uses_require")
BACKUP_FORMATS = ("json", "jsonl", "sql")
EXPORT_FORMATS = ("prometheus", "json", "influx")
CONFLICT_RULES = ("durable_wins", "primary_wins", "cache_wins", "most_recent")
EPISODE_ESTIMATE_KB = 10  # average cached episode, for the memory estimate
MEMORY_WARN_MB = 50


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
    settings: Settings, *, env: Mapping[str, str] | None = None
) -> ValidationReport:
    environ = os.environ if env is None else env
    report = ValidationReport()
    if settings.preset is not None and settings.preset not in PRESETS:
        report.error("preset", settings.preset, " | ".join(PRESETS), "unknown preset")
    _database(settings, report)
    _storage(settings, report)
    _cli(settings, report)
    _cross(settings, report)
    _embeddings(settings, report, environ)
    _retrieval(settings, report)
    _others(settings, report)
    for key in settings.unknown_keys():
        near = _closest(key)
        hint = f"did you mean '{near}'?" if near else "see docs/configuration.md"
        report.warning(key, settings.get_extra(key), "a known key", f"unknown key, ignored; {hint}")
    return report


def _closest(key: str) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, list(HELP), n=1, cutoff=0.75)
    return matches[0] if matches else None


def _database(s: Settings, r: ValidationReport) -> None:
    db = s.database
    if db.url is not None:
        if not db.url.strip():
            r.error("database.url", db.url, "a SQLite path or URL", "is empty")
        else:
            target = parse_database_url(db.url)
            if target.kind == "memory":
                r.error(
                    "database.url",
                    db.url,
                    f"a SQLite file named {DB_FILENAME}",
                    "an in-memory database cannot be shared between processes; use "
                    "preset = 'memory' for a throwaway store",
                )
            elif target.kind == "postgresql":
                if db.postgres_dsn and db.postgres_dsn.strip() != db.url.strip():
                    r.warning(
                        "database.postgres_dsn",
                        db.postgres_dsn,
                        "the same DSN as database.url, or unset",
                        "database.url is a PostgreSQL DSN too and wins",
                    )
            elif target.kind == "libsql":
                if not db.turso_token and db.url.strip().lower().startswith("libsql://"):
                    r.warning(
                        "database.url",
                        db.url,
                        "a token for a remote libsql:// URL (database.turso_token or "
                        "$TURSO_AUTH_TOKEN)",
                        "remote URL without a token",
                    )
            elif target.kind == "unknown":
                r.error("database.url", db.url, "sqlite:, file:, a path", "unknown URL scheme")
            elif target.path is not None:
                suffix = target.path.suffix.lower()
                if suffix and target.path.name != DB_FILENAME:
                    r.error(
                        "database.url",
                        db.url,
                        f"a file named {DB_FILENAME} (or the data directory)",
                        f"the embedded store's file is always <data_dir>/{DB_FILENAME}",
                    )
                implied = target.data_dir
                if (
                    implied is not None
                    and s.storage.data_dir
                    and implied.resolve() != _resolved(s.storage.data_dir)
                ):
                    r.warning(
                        "database.url",
                        db.url,
                        f"inside storage.data_dir ({s.storage.data_dir})",
                        "storage.data_dir is set with higher precedence and wins: the store "
                        f"is {s.storage.data_dir}/{DB_FILENAME}, not under {implied}",
                    )
    if db.turso_url is not None:
        if not db.turso_url.strip():
            r.error("database.turso_url", db.turso_url, "a libsql:// URL", "is empty")
        else:
            if not db.turso_url.startswith(("libsql://", "file:")):
                r.warning(
                    "database.turso_url",
                    db.turso_url,
                    "libsql:// or file:",
                    "unusual URL scheme",
                )
            if not db.turso_token and db.turso_url.startswith("libsql://"):
                r.warning(
                    "database.turso_url",
                    db.turso_url,
                    "a token for a remote URL (database.turso_token or $TURSO_AUTH_TOKEN)",
                    "remote URL without a token",
                )
            if db.url and db.url.strip() and parse_database_url(db.url).kind != "sqlite":
                r.warning(
                    "database.turso_url",
                    db.turso_url,
                    "unset when database.url names the store",
                    "database.url wins",
                )
    elif db.turso_token:
        r.warning("database.turso_token", db.turso_token, "with turso_url", "token without a URL")
    if db.postgres_dsn and parse_database_url(db.postgres_dsn).kind != "postgresql":
        r.error(
            "database.postgres_dsn",
            db.postgres_dsn,
            "a postgresql://user@host:port/database DSN",
            "not a PostgreSQL URL",
        )
    if db.busy_timeout_ms < 0 or db.busy_timeout_ms > 600_000:
        r.error("database.busy_timeout_ms", db.busy_timeout_ms, "0..600000", "out of range")
    if db.synchronous not in ("normal", "full"):
        r.error("database.synchronous", db.synchronous, "normal | full", "unknown mode")


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


def _storage(s: Settings, r: ValidationReport) -> None:
    st = s.storage
    if st.data_dir is not None and not str(st.data_dir).strip():
        r.error("storage.data_dir", st.data_dir, "a directory path", "is empty")
    _positive(r, "storage.max_episodes_cache", st.max_episodes_cache, 100_000)
    if st.max_episodes_cache > 10_000_000:
        r.error("storage.max_episodes_cache", st.max_episodes_cache, "<= 10000000", "too large")
    ttl = st.cache_ttl_seconds
    if ttl < 1:
        r.error(
            "storage.cache_ttl_seconds", ttl, ">= 1 (60..86400 recommended)", "must be positive"
        )
    elif ttl < 60:
        r.warning("storage.cache_ttl_seconds", ttl, ">= 60", "very short TTL")
    elif ttl > 86_400:
        r.warning("storage.cache_ttl_seconds", ttl, "<= 86400", "TTL longer than a day")
    _positive(r, "storage.pool_size", st.pool_size, 200)


def _cli(s: Settings, r: ValidationReport) -> None:
    if s.cli.default_format not in FORMATS:
        r.error("cli.default_format", s.cli.default_format, " | ".join(FORMATS), "unknown format")
    _positive(r, "cli.batch_size", s.cli.batch_size, 10_000)


def _cross(s: Settings, r: ValidationReport) -> None:
    st = s.storage
    if 0 < st.max_episodes_cache < s.cli.batch_size:
        r.warning(
            "storage.max_episodes_cache",
            st.max_episodes_cache,
            f">= cli.batch_size ({s.cli.batch_size})",
            "cache smaller than one batch",
        )
    estimate_mb = max(st.max_episodes_cache, 0) * EPISODE_ESTIMATE_KB / 1024
    if estimate_mb > MEMORY_WARN_MB:
        r.warning(
            "storage.max_episodes_cache",
            st.max_episodes_cache,
            f"about {MEMORY_WARN_MB} MB of cache ({MEMORY_WARN_MB * 1024 // EPISODE_ESTIMATE_KB} "
            f"episodes of ~{EPISODE_ESTIMATE_KB} KB)",
            f"estimated cache memory {estimate_mb:.0f} MB",
        )
    remote = s.database.turso_url or s.database.postgres_dsn
    if remote and st.max_episodes_cache < 100:
        r.warning(
            "storage.max_episodes_cache",
            st.max_episodes_cache,
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
    if s.retrieval.mode.value == "vector" and emb.provider == "none":
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
    if not 1 <= sb.max_cpu_percent <= 100:
        r.error("sandbox.max_cpu_percent", sb.max_cpu_percent, "1..100", "out of range")
    if not 1 <= sb.audit_keep <= 10_000_000:
        r.error("sandbox.audit_keep", sb.audit_keep, "1..10000000", "out of range")
    if sb.allow_network:
        r.warning("sandbox.allow_network", True, "false", "sandboxed code may reach the network")
    if sb.allow_filesystem and not sb.allowed_paths:
        r.warning(
            "sandbox.allowed_paths", [], "at least one path", "filesystem allowed but no paths"
        )
    if s.sync.conflict_resolution not in CONFLICT_RULES:
        r.error(
            "sync.conflict_resolution",
            s.sync.conflict_resolution,
            " | ".join(CONFLICT_RULES),
            "unknown rule",
        )
    _positive(r, "sync.interval_seconds", s.sync.interval_seconds, 86_400)
    _positive(r, "sync.batch_size", s.sync.batch_size, 10_000)
    if s.logging.level.upper() not in LOG_LEVELS:
        r.error("logging.level", s.logging.level, " | ".join(LOG_LEVELS), "unknown level")
    _positive(r, "logging.max_file_mb", s.logging.max_file_mb, 1024)
    if s.logging.backup_count < 0:
        r.error("logging.backup_count", s.logging.backup_count, ">= 0", "negative")
    _positive(r, "monitoring.latency_window", s.monitoring.latency_window, 1_000_000)
    if s.monitoring.export_format not in EXPORT_FORMATS:
        r.error(
            "monitoring.export_format",
            s.monitoring.export_format,
            " | ".join(EXPORT_FORMATS),
            "unknown format",
        )
    if s.backup.format not in BACKUP_FORMATS:
        r.error("backup.format", s.backup.format, " | ".join(BACKUP_FORMATS), "unknown format")
    if s.backup.keep < 0:
        r.error("backup.keep", s.backup.keep, ">= 0 (0 keeps all)", "negative")
