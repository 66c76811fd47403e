"""Every config key by name: its help line, its environment variables, whether it is secret.

Light on purpose (no pydantic): the CLI resolves its output format from files and the
environment on every start through this table.
"""

from __future__ import annotations

__all__ = ["ENV_ALIASES", "HELP", "LIST_KEYS", "PATH_KEYS", "SECRET_KEYS", "env_names"]

SECRET_KEYS = frozenset({"database.turso_token", "database.postgres_dsn"})

# Every key, one line each: the TOML comments, `config show --explain` and docs/configuration.md
# are written from this table (a test checks that each key has an entry).
HELP: dict[str, str] = {
    "preset": "Starting point: local, cloud, memory or custom (keys set here win over it).",
    "database.url": "Where the episodes live: unset or a SQLite path/URL ending in memory.db "
    "(sqlite:///dir/memory.db, file:dir/memory.db) for the embedded store, or a "
    "postgresql://user@host/db DSN for the shared PostgreSQL store (the LMDB cache stays in "
    "storage.data_dir). libsql:// is Turso (an embedded replica in the data directory).",
    "database.turso_url": "Remote libSQL/Turso URL (used when database.url is unset).",
    "database.turso_token": "Turso auth token (secret, masked by `config show`).",
    "database.postgres_dsn": "PostgreSQL DSN (secret); the same as a postgresql:// "
    "database.url, which wins when both are set.",
    "database.busy_timeout_ms": "How long a writer waits for another process's lock (ms).",
    "database.synchronous": "SQLite synchronous mode: normal (WAL-safe) or full.",
    "storage.data_dir": "Data directory holding memory.db, the cache and logs.",
    "storage.max_episodes_cache": "Episodes kept in the LMDB read cache (LRU).",
    "storage.cache_ttl_seconds": "Reference key, validated and shown: the LMDB cache is "
    "invalidated on every write, so entries do not expire by age.",
    "storage.pool_size": "Most connections per process for pooled (remote) backends such as "
    "PostgreSQL (the pool starts with one); the embedded SQLite store uses one writer thread.",
    "storage.cache_enabled": "Use the LMDB read cache.",
    "cli.default_format": "memory-cli output when --format is not given: human, json or yaml.",
    "cli.progress_bars": "Show progress bars on long CLI work (backup, export).",
    "cli.batch_size": "Records per batch in bulk CLI work (backup, export, sync).",
    "embeddings.provider": "none (lexical retrieval), local (MiniLM, extra `local`), openai, "
    "or hashing (tests only).",
    "embeddings.model": "Model name (default per provider).",
    "embeddings.dimensions": "Vector size (default per provider).",
    "embeddings.base_url": "OpenAI-compatible endpoint.",
    "embeddings.api_key_env": "Environment variable holding the API key (the key itself is "
    "never stored in the config).",
    "embeddings.batch_size": "Texts per embedding request.",
    "embeddings.timeout_s": "Embedding request timeout (s).",
    "embeddings.max_retries": "Retries of a failed embedding request.",
    "retrieval.mode": "hybrid, lexical, vector or legacy.",
    "retrieval.candidate_limit": "Candidates ranked per query.",
    "retrieval.weight_relevance": "Weight of text/vector relevance.",
    "retrieval.weight_context": "Weight of context match (domain, language, tags).",
    "retrieval.weight_outcome": "Weight of the episode's outcome and reward.",
    "retrieval.weight_recency": "Weight of recency.",
    "retrieval.vector_weight": "Hybrid mode: weight of the z-scored vector signal (0..1).",
    "retrieval.lexical_weight_max": "Hybrid: lexical weight for error lines and identifiers.",
    "retrieval.lexical_trust_scale": "Hybrid: how fast code-like query words raise it.",
    "retrieval.feedback_weight": "Query expansion toward the nearest episodes (0 = off).",
    "retrieval.feedback_episodes": "Nearest episodes used to expand the query vector.",
    "retrieval.recency_half_life_days": "Recency half-life (days).",
    "retrieval.mmr_lambda": "MMR diversity trade-off (1 = relevance only).",
    "retrieval.mmr_similarity_floor": "MMR penalises only similarity above this.",
    "retrieval.duplicate_threshold": "Similarity above which results count as duplicates.",
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
    "sandbox.max_cpu_percent": "CPU limit of sandboxed code (%).",
    "sandbox.allow_network": "Let sandboxed code use the network.",
    "sandbox.allow_filesystem": "Let sandboxed code read allowed_paths.",
    "sandbox.allow_subprocesses": "Let sandboxed code start processes.",
    "sandbox.allowed_paths": "Paths sandboxed code may read when allow_filesystem is on.",
    "sandbox.audit_keep": "Sandbox runs kept in the audit trail (the newest; older ones are "
    "pruned as new ones are recorded).",
    "sync.enabled": "Run the cache/replica synchronizer.",
    "sync.interval_seconds": "Seconds between sync rounds.",
    "sync.batch_size": "Episodes per sync batch.",
    "sync.conflict_resolution": "durable_wins, cache_wins or most_recent.",
    "logging.level": "Log level of memory-mcp and the log file: DEBUG, INFO, WARNING or ERROR.",
    "logging.file": "Log file (default <data_dir>/logs/<program>.log; 'none' disables it).",
    "logging.max_file_mb": "Rotate the log file at this size (MB).",
    "logging.backup_count": "Rotated log files kept.",
    "monitoring.enabled": "Collect metrics (latency percentiles, cache hit rate, errors).",
    "monitoring.latency_window": "Latency samples kept for percentiles.",
    "monitoring.export_format": "Default `monitor export` format: prometheus, json or influx.",
    "backup.dir": "Where backups go (default <data_dir>/backups).",
    "backup.format": "Default backup format: json, jsonl or sql.",
    "backup.compress": "Compress backups (gzip).",
    "backup.keep": "Backups kept by retention (0 keeps all).",
}

# Short names kept from the reference system and the other front ends (lower precedence than
# the canonical MEMORY_<SECTION>_<KEY> name of the same key).
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
    """Environment variables for a key, highest precedence first."""
    canonical = "MEMORY_" + dotted.replace(".", "_").upper()
    return (canonical, *ENV_ALIASES.get(dotted, ()))


# Keys whose value is a list: from the environment they are comma-separated.
LIST_KEYS = frozenset({"sandbox.allowed_paths"})

# Paths: relative values in a file are taken relative to the file's directory.
PATH_KEYS = frozenset({"storage.data_dir", "backup.dir", "logging.file"})
