"""Every config key by name: its help line, its environment variables, whether it is secret,
and the old names of keys that moved.

Light on purpose (no pydantic): the CLI resolves its output format from files and the
environment on every start through this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ENV_ALIASES",
    "HELP",
    "KEY_ALIASES",
    "PATH_KEYS",
    "REMOVED_KEYS",
    "SECRET_KEYS",
    "canonical_keys",
    "env_names",
]

SECRET_KEYS = frozenset({"storage.auth_token"})

# Every key, one line each, in file order: the TOML comments, `config show --explain` and
# docs/configuration.md are written from this table (a test checks it against the schema).
HELP: dict[str, str] = {
    "preset": "Starting point: local, cloud, memory or custom (keys set here win over it).",
    "storage.url": "The durable store: unset or a SQLite path/URL ending in memory.db "
    "(sqlite:///dir/memory.db, file:dir/memory.db) for the embedded store in the data "
    "directory, a postgresql://user@host/db DSN for the shared PostgreSQL store, or a "
    "libsql:// URL for Turso (an embedded replica in the data directory).",
    "storage.auth_token": "Turso auth token (secret, masked by `config show`; else "
    "$TURSO_AUTH_TOKEN).",
    "storage.busy_timeout_ms": "How long a writer waits for another process's lock (ms).",
    "storage.synchronous": "SQLite synchronous mode: normal (WAL-safe) or full.",
    "storage.pool_size": "Most connections per process for pooled (remote) backends such as "
    "PostgreSQL (the pool starts with one); the embedded SQLite store uses one writer thread.",
    "storage.pgvector": "PostgreSQL: auto keeps vectors in a pgvector column searched by an "
    "HNSW index in the server when the server has the vector extension (else bytea scored in "
    "process); off keeps bytea (refused once a store's vectors were moved to pgvector).",
    "storage.hnsw_m": "pgvector: HNSW graph degree, used when an index is built (more "
    "memory per vector; more finds more of the exact neighbours).",
    "storage.hnsw_ef_construction": "pgvector: candidates kept per insert while building the "
    "HNSW index (slower builds, better recall); used when an index is built.",
    "storage.hnsw_type": "pgvector: element type of the HNSW index for models of up to 2,000 "
    "dimensions: vector (float32) or halfvec (float16, an index half as big; distances in half "
    "precision). Each type has its own index, built by the first search after a change.",
    "storage.pgvector_exact_below": "pgvector: below this many stored vectors a process scores "
    "them exactly in its own matrix (at most this x dimensions x 4 bytes), above it the "
    "server's HNSW search is used; back in process below 90 % of it; 0 = always the server.",
    "storage.data_dir": "Data directory holding memory.db, the cache and logs.",
    "cache.enabled": "Use the LMDB read cache.",
    "cache.max_episodes": "Episodes kept in the LMDB read cache (LRU).",
    "cache.map_size_mb": "Initial size of the LMDB map (MB); it grows when full.",
    "cache.max_map_size_mb": "Largest size the LMDB map may grow to (MB).",
    "cli.default_format": "memory-cli output when --format is not given: human, json or yaml.",
    "embeddings.provider": "auto (default: local when the extra `local` is installed, else "
    "none), none (lexical retrieval), local (MiniLM, extra `local`), openai, or hashing (tests "
    "only).",
    "embeddings.model": "Model name (default per provider).",
    "embeddings.dimensions": "Vector size (default per provider).",
    "embeddings.base_url": "OpenAI-compatible endpoint.",
    "embeddings.api_key_env": "Environment variable holding the API key (the key itself is "
    "never stored in the config).",
    "embeddings.batch_size": "Texts per embedding request.",
    "embeddings.timeout_s": "Embedding request timeout (s).",
    "embeddings.max_retries": "Retries of a failed embedding request.",
    "embeddings.background": "Embed completed episodes in the background, in batches: "
    "completion returns once the episode is durable; retrieval finds it lexically and says "
    "`vector:pending` until its vector is written (false: embed before completion returns).",
    "embeddings.document_precision": "Local model (ONNX): the graph that embeds the stored "
    "episodes, fp32 (default: the exact vectors) or int8 (the query graph: less memory and "
    "CPU, slightly noisier rankings). Queries always use int8.",
    "retrieval.mode": "hybrid, lexical, vector or legacy.",
    "retrieval.candidate_limit": "Candidates ranked per query.",
    "retrieval.weight_relevance": "Weight of text/vector relevance.",
    "retrieval.weight_context": "Weight of context match (domain, language, tags).",
    "retrieval.weight_outcome": "Weight of the episode's outcome and reward.",
    "retrieval.weight_recency": "Weight of recency.",
    "retrieval.weight_usefulness": "Weight of retrieval feedback: how the tasks an episode was "
    "used for ended (0 = off; adds nothing without feedback).",
    "retrieval.failure_intent": "A query asking what went wrong before: invert the outcome "
    "signal (failures first), neutral (drop it) or off.",
    "retrieval.outcome_gate": "How far the outcome counts: top_similarity (relevance x cosine "
    "with the best match) or relevance.",
    "retrieval.vector_weight": "Hybrid mode: weight of the z-scored vector signal (0..1).",
    "retrieval.lexical_weight_max": "Hybrid: lexical weight for error lines and identifiers.",
    "retrieval.lexical_trust_scale": "Hybrid: how fast code-like query words raise it.",
    "retrieval.feedback_weight": "Query expansion toward the nearest episodes (0 = off).",
    "retrieval.feedback_episodes": "Nearest episodes used to expand the query vector.",
    "retrieval.recency_half_life_days": "Recency half-life (days).",
    "retrieval.mmr_lambda": "MMR diversity trade-off (1 = relevance only).",
    "retrieval.mmr_similarity_floor": "MMR penalises only similarity above this.",
    "retrieval.duplicate_threshold": "Similarity above which results count as duplicates.",
    "retrieval.hnsw_ef_search": "pgvector: HNSW candidates searched per query (hnsw.ef_search); "
    "higher finds more of the exact nearest episodes, slower.",
    "retrieval.hnsw_feedback_ef_search": "pgvector: hnsw.ef_search of the second search, for "
    "the feedback-expanded query (0 = retrieval.hnsw_ef_search); only with "
    "retrieval.hnsw_feedback_pool = 0.",
    "retrieval.hnsw_feedback_pool": "pgvector: rank the feedback-expanded query exactly over "
    "the first search's nearest N episodes (at most retrieval.hnsw_ef_search), one HNSW search "
    "per retrieval (0 = a second search).",
    "retrieval.blas_threads": "Threads numpy's BLAS may use for retrieval's small products "
    "(0 = the library's choice); process-wide.",
    "sandbox.enabled": "Offer the code sandbox (execute_agent_code); false turns it off entirely.",
    "sandbox.backend": "Where sandboxed code runs: wasm (QuickJS in WebAssembly, the default), "
    "node (legacy: a Node 20+ process under its permission model; the network is not blocked "
    "by it) or hybrid (WASM, and Node per node_ratio / node_rule).",
    "sandbox.node_ratio": "Hybrid backend: share of runs sent to Node (0..1, spread evenly).",
    "sandbox.node_rule": "Hybrid backend: none, or uses_require (code that calls require() "
    "runs in Node).",
    "sandbox.preset": "Code sandbox limits: default, restrictive or permissive.",
    "sandbox.max_execution_time_ms": "Longest run of sandboxed code (ms).",
    "sandbox.max_memory_mb": "Memory limit of sandboxed code (MB).",
    "sandbox.pool_size": "Warm sandbox runtimes, one per worker thread (1..20; unset: "
    "min(20, CPU cores)).",
    "sandbox_audit.keep": "Sandbox runs kept in the audit trail (the newest; older ones are "
    "pruned as new ones are recorded).",
    "sync.enabled": "Run the cache synchronizer (unset: on for a remote store, off for the "
    "embedded one).",
    "sync.interval_s": "Seconds between sync rounds.",
    "sync.strategy": "Conflict rule: primary_wins, most_recent or cache_wins.",
    "sync.window_s": "First round: episodes this recent (s) are copied into the cache.",
    "sync.index_limit": "Patterns and heuristics kept in the cache.",
    "logging.level": "Log level of memory-mcp and the log file: DEBUG, INFO, WARNING or ERROR.",
    "logging.file": "Log file (default <data_dir>/logs/<program>.log; 'none' disables it).",
    "batch.max_batch_size": "Steps buffered before they are written.",
    "batch.flush_interval_ms": "Buffered steps are written after this long idle (ms).",
    "batch.auto_flush": "Write buffered steps by size and time (false: only on complete, close "
    "or flush_steps).",
    "queue.enabled": "Learn in background workers instead of inside complete_episode.",
    "queue.worker_count": "Learning workers per process.",
    "queue.max_queue_size": "Most episodes waiting to be learned from.",
    "queue.poll_interval_ms": "How often an idle worker looks for work (ms).",
    "queue.max_attempts": "Attempts before a failing episode is given up.",
    "queue.claim_timeout_s": "A claimed episode not finished in this time is claimed again (s).",
    "extraction.success_threshold": "Step success rate at which tool sequences and decision "
    "points are learned.",
    "extraction.error_recovery_threshold": "Step success rate below which error recoveries are "
    "learned.",
    "extraction.max_sequence_length": "Tools kept in a learned tool sequence.",
    "extraction.heuristic_min_confidence": "Confidence a heuristic needs to be returned.",
    "extraction.heuristic_min_sample_size": "Times a heuristic must be seen to be returned.",
    "resilience.enabled": "Retries, circuit breaker and outbox around the store (unset: on for "
    "a remote store, off for the embedded one).",
    "resilience.max_attempts": "Attempts per store call.",
    "resilience.retry_base_ms": "First retry delay (ms); it doubles per attempt.",
    "resilience.retry_max_delay_ms": "Longest retry delay (ms).",
    "resilience.retry_jitter_ms": "Random delay added to each retry (ms).",
    "resilience.retry_budget_ms": "Most time spent retrying one call (ms).",
    "resilience.call_timeout_s": "Timeout of one store call (s).",
    "resilience.breaker_threshold": "Consecutive failures that open the circuit breaker.",
    "resilience.breaker_recovery_s": "Time the breaker stays open before a trial call (s).",
    "resilience.half_open_max_calls": "Trial calls let through while half open.",
    "resilience.outbox_enabled": "Keep writes in a local outbox while the store is down.",
    "resilience.outbox_path": "Outbox file (default <data_dir>/outbox.db).",
    "resilience.outbox_max_entries": "Most writes the outbox holds.",
    "resilience.replay_interval_s": "How often the outbox is replayed (s).",
    "monitoring.top_agents": "Agents listed one by one in get_metrics and `monitor agents` "
    "(the busiest; the rest are folded into one `other` row).",
    "monitoring.max_agent_labels": "Most agent label values in the Prometheus export (the "
    'busiest agents; the rest are summed under agent="other").',
}

# Old names of keys that moved, old name -> key. Files, the environment (their old
# MEMORY_<SECTION>_<KEY> names) and SettingsBuilder still accept them; the key's own name wins
# when a source gives both. Three old keys name the store; see canonical_keys.
KEY_ALIASES: dict[str, str] = {
    "database.url": "storage.url",
    "database.turso_url": "storage.url",
    "database.postgres_dsn": "storage.url",
    "database.turso_token": "storage.auth_token",
    "database.busy_timeout_ms": "storage.busy_timeout_ms",
    "database.synchronous": "storage.synchronous",
    "storage.max_episodes_cache": "cache.max_episodes",
    "storage.cache_enabled": "cache.enabled",
    "sync.interval_seconds": "sync.interval_s",
    "sync.conflict_resolution": "sync.strategy",
    "sandbox.audit_keep": "sandbox_audit.keep",
}

# Values renamed with their key.
_VALUE_ALIASES: dict[str, dict[Any, Any]] = {"sync.strategy": {"durable_wins": "primary_wins"}}

_NOT_READ = "nothing reads it"
# Keys older files may hold that nothing reads any more: a warning, never an error.
REMOVED_KEYS: dict[str, str] = {
    "storage.cache_ttl_seconds": "the LMDB cache is invalidated on every write, entries never "
    "expire by age",
    "cli.progress_bars": "memory-cli shows progress bars on a terminal only",
    "cli.batch_size": _NOT_READ,
    "sync.batch_size": _NOT_READ,
    "logging.max_file_mb": "log files rotate at 5 MB",
    "logging.backup_count": "3 rotated log files are kept",
    "monitoring.enabled": "metrics are always collected",
    "monitoring.latency_window": _NOT_READ,
    "monitoring.export_format": "`memory-cli monitor export --format` chooses it",
    "backup.dir": "`memory-cli backup create` takes the path",
    "backup.format": "`memory-cli backup create --format` chooses it",
    "backup.compress": _NOT_READ,
    "backup.keep": _NOT_READ,
    "sandbox.max_cpu_percent": _NOT_READ,
    "sandbox.allow_network": "the WASM sandbox has no network",
    "sandbox.allow_filesystem": "the WASM sandbox has no filesystem",
    "sandbox.allow_subprocesses": "the WASM sandbox starts no processes",
    "sandbox.allowed_paths": "the WASM sandbox has no filesystem",
}

# Short names kept from the reference system and the other front ends (lower precedence than
# the MEMORY_<SECTION>_<KEY> name of the same key).
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "storage.data_dir": ("MEMORY_DATA_DIR",),
    "cli.default_format": ("MEMORY_FORMAT",),
    "database.url": ("MEMORY_DB_URL",),
    "database.turso_url": ("TURSO_URL",),
    "database.turso_token": ("TURSO_TOKEN",),
    "logging.level": ("MEMORY_LOG_LEVEL",),
    "embeddings.provider": ("MEMORY_EMBEDDINGS",),
}


def env_names(dotted: str) -> tuple[str, ...]:
    """Environment variables for a key (or an old name), highest precedence first."""
    canonical = "MEMORY_" + dotted.replace(".", "_").upper()
    return (canonical, *ENV_ALIASES.get(dotted, ()))


# Paths: relative values in a file are taken relative to the file's directory.
PATH_KEYS = frozenset({"storage.data_dir", "logging.file", "resilience.outbox_path"})


_URL_KEYS = ("database.url", "database.turso_url", "database.postgres_dsn")


def _kind(value: Any) -> str:
    from ..storage.database_url import parse_database_url

    if not isinstance(value, str) or not value.strip():
        return "empty"
    return parse_database_url(value).kind


def canonical_keys(layer: Mapping[str, tuple[Any, str]]) -> dict[str, tuple[Any, str]]:
    """One source's values (key -> (value, where)) with old names replaced by their key.

    The key's own name wins over an old one. ``storage.url`` comes from ``database.url``, else
    a ``libsql://`` ``database.turso_url``, else ``database.postgres_dsn``; a SQLite
    ``database.url`` gives way to a remote URL from the other two (it still names the data
    directory, see :mod:`.layers`). A ``database.turso_url`` that is not ``libsql://`` stays
    under its old name, so the validator reports it as ignored."""
    out = {key: item for key, item in layer.items() if key not in KEY_ALIASES}
    for old, key in KEY_ALIASES.items():
        if old in layer and old not in _URL_KEYS and key not in out:
            out[key] = layer[old]
    for key, values in _VALUE_ALIASES.items():
        if key in out:
            value, where = out[key]
            out[key] = (values.get(value, value), where)
    urls = [layer[key] for key in _URL_KEYS if key in layer]
    if "database.turso_url" in layer and _kind(layer["database.turso_url"][0]) != "libsql":
        urls.remove(layer["database.turso_url"])
        out["database.turso_url"] = layer["database.turso_url"]
    if urls and "storage.url" not in out:
        remote = (item for item in urls if _kind(item[0]) not in ("sqlite", "empty"))
        out["storage.url"] = next(remote, urls[0])
    return out
