"""The PostgreSQL store's schema, as versioned migrations recorded in ``schema_migrations``.

Times are ``timestamptz`` (microsecond precision, so an episode round-trips exactly). Steps live
in their own table and are appended. The full-text index is a weighted ``tsvector`` column on
the episode row (A description, B outcome, C steps, D reflection: the SQLite store's bm25
weights 4 / 1.5 / 1 / 0.5), written in the completion transaction, indexed with GIN and kept
inline in the row (``STORAGE MAIN``, migration 2) so ranking does not read it through TOAST.
Vectors are ``bytea`` (float32, L2-normalised) scored in process. ``data_version`` is a sharded
counter: every write transaction bumps one of its 16 rows, so the sum grows with every commit
without making all writers queue on one row.
"""

from __future__ import annotations

__all__ = ["POSTGRES_MIGRATIONS", "TS_WEIGHTS", "VERSION_SHARDS"]

VERSION_SHARDS = 16
# ts_rank_cd weights in {D, C, B, A} order: reflection, steps, outcome, description.
TS_WEIGHTS = [0.125, 0.25, 0.375, 1.0]

POSTGRES_MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        f"""
CREATE TABLE episodes (
    episode_id       text PRIMARY KEY,
    task_type        text NOT NULL,
    task_description text NOT NULL,
    domain           text NOT NULL,
    language         text,
    framework        text,
    complexity       text NOT NULL,
    tags             jsonb NOT NULL DEFAULT '[]',
    context          text NOT NULL,
    start_time       timestamptz NOT NULL,
    end_time         timestamptz,
    outcome          text,
    outcome_type     text,
    reward           text,
    reward_total     double precision,
    reflection       text,
    patterns         text NOT NULL DEFAULT '[]',
    heuristics       text NOT NULL DEFAULT '[]',
    metadata         text NOT NULL DEFAULT '{{}}',
    step_count       integer NOT NULL DEFAULT 0,
    last_step_number integer NOT NULL DEFAULT 0,
    tool_summary     text NOT NULL DEFAULT '[]',
    learning_status  text,
    search           tsvector,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX idx_episodes_start_time ON episodes(start_time DESC);
CREATE INDEX idx_episodes_task_type ON episodes(task_type, end_time DESC);
CREATE INDEX idx_episodes_domain ON episodes(domain, end_time DESC);
CREATE INDEX idx_episodes_language ON episodes(language, end_time DESC);
CREATE INDEX idx_episodes_end_time ON episodes(end_time DESC);
CREATE INDEX idx_episodes_search ON episodes USING gin(search);
CREATE INDEX idx_episodes_tags ON episodes USING gin(tags jsonb_path_ops);

CREATE TABLE steps (
    episode_id  text NOT NULL REFERENCES episodes(episode_id) ON DELETE CASCADE,
    step_number integer NOT NULL,
    "timestamp" timestamptz NOT NULL,
    tool        text NOT NULL,
    action      text NOT NULL,
    parameters  text NOT NULL DEFAULT '{{}}',
    result      text,
    latency_ms  bigint NOT NULL DEFAULT 0,
    tokens_used bigint,
    metadata    text NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (episode_id, step_number)
);

CREATE TABLE patterns (
    pattern_id        text PRIMARY KEY,
    pattern_type      text NOT NULL,
    similarity_key    text NOT NULL UNIQUE,
    pattern_data      text NOT NULL,
    success_rate      double precision NOT NULL,
    occurrence_count  integer NOT NULL,
    context_domain    text,
    context_language  text,
    retrieval_count   integer NOT NULL DEFAULT 0,
    application_count integer NOT NULL DEFAULT 0,
    success_count     integer NOT NULL DEFAULT 0,
    failure_count     integer NOT NULL DEFAULT 0,
    last_retrieved    timestamptz,
    last_applied      timestamptz,
    effectiveness     double precision NOT NULL DEFAULT 0.5,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX idx_patterns_context ON patterns(context_domain, occurrence_count DESC);
CREATE INDEX idx_patterns_language ON patterns(context_language, occurrence_count DESC);
CREATE INDEX idx_patterns_occurrence ON patterns(occurrence_count DESC);
CREATE INDEX idx_patterns_type ON patterns(pattern_type, success_rate DESC);

CREATE TABLE episode_patterns (
    episode_id text NOT NULL REFERENCES episodes(episode_id) ON DELETE CASCADE,
    pattern_id text NOT NULL REFERENCES patterns(pattern_id) ON DELETE CASCADE,
    PRIMARY KEY (episode_id, pattern_id)
);
CREATE INDEX idx_episode_patterns_pattern ON episode_patterns(pattern_id);

CREATE TABLE heuristics (
    heuristic_id   text PRIMARY KEY,
    similarity_key text NOT NULL UNIQUE,
    condition_text text NOT NULL,
    action_text    text NOT NULL,
    domain         text NOT NULL,
    confidence     double precision NOT NULL,
    sample_size    integer NOT NULL,
    evidence       text NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX idx_heuristics_domain ON heuristics(domain, confidence DESC);
CREATE INDEX idx_heuristics_confidence ON heuristics(confidence DESC);

CREATE TABLE learning_jobs (
    episode_id  text PRIMARY KEY REFERENCES episodes(episode_id) ON DELETE CASCADE,
    enqueued_at timestamptz NOT NULL,
    claimed_by  text,
    claimed_at  timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX idx_learning_jobs_order ON learning_jobs(enqueued_at);

CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

CREATE SEQUENCE embeddings_seq;
CREATE TABLE embeddings (
    episode_id   text PRIMARY KEY REFERENCES episodes(episode_id) ON DELETE CASCADE,
    seq          bigint NOT NULL,
    identity     text NOT NULL,
    content_hash text NOT NULL,
    dimensions   integer NOT NULL,
    vector       bytea NOT NULL,
    truncated    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL
);
CREATE INDEX idx_embeddings_seq ON embeddings(identity, seq);
CREATE INDEX idx_embeddings_hash ON embeddings(identity, content_hash);

CREATE TABLE data_version (
    shard   integer PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0
);
INSERT INTO data_version (shard) SELECT generate_series(0, {VERSION_SHARDS - 1});
""",
    ),
    (
        # Keep the tsvector in the episode row. An episode row is wide (context, outcome,
        # reward, reflection, patterns as text), so with the default EXTENDED storage the
        # ~1.2 KB ``search`` value was moved to the TOAST table, and ranking ~2,000 matches
        # read each one back through the TOAST index: 4-5x the buffer reads of the row
        # itself. MAIN makes the wide text columns go out of line first. Existing rows are
        # rewritten (``|| ''`` builds a new value; an unchanged one would keep its pointer).
        2,
        """
ALTER TABLE episodes ALTER COLUMN search SET STORAGE MAIN;
UPDATE episodes SET search = search || ''::tsvector WHERE search IS NOT NULL;
""",
    ),
    (
        # The code sandbox's audit trail (core/sandbox_audit.py): one row per run, never the
        # code or its output. seq orders the rows; retention deletes the oldest.
        3,
        """
CREATE TABLE sandbox_runs (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL UNIQUE,
    time        timestamptz NOT NULL,
    code_sha256 text NOT NULL,
    code_bytes  integer NOT NULL,
    backend     text NOT NULL,
    limits      jsonb NOT NULL DEFAULT '{}',
    duration_ms double precision NOT NULL,
    outcome     text NOT NULL,
    error_type  text,
    caller      text NOT NULL,
    task        text
);
CREATE INDEX idx_sandbox_runs_time ON sandbox_runs(time);
""",
    ),
    (
        # Retrieval feedback (storage/sql/feedback.py): which retrieved episodes and patterns a
        # task used, whether they helped, and the counters an episode's usefulness reads.
        4,
        """
CREATE TABLE retrieval_uses (
    task_episode_id text NOT NULL REFERENCES episodes(episode_id) ON DELETE CASCADE,
    item_kind       text NOT NULL,
    item_id         text NOT NULL,
    helpful         integer,
    applied         integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (task_episode_id, item_kind, item_id)
);
CREATE TABLE episode_usage (
    episode_id text PRIMARY KEY REFERENCES episodes(episode_id) ON DELETE CASCADE,
    uses       integer NOT NULL DEFAULT 0,
    success    double precision NOT NULL DEFAULT 0,
    helpful    integer NOT NULL DEFAULT 0,
    unhelpful  integer NOT NULL DEFAULT 0,
    last_used  timestamptz,
    updated_at timestamptz NOT NULL
);
""",
    ),
    (
        # Agent monitoring (storage/sql/agent_executions.py): the episode's agent, and one row
        # per agent execution. No foreign key: the history stays when an episode is deleted.
        5,
        """
ALTER TABLE episodes ADD COLUMN agent text;
CREATE INDEX idx_episodes_agent ON episodes(agent, start_time DESC) WHERE agent IS NOT NULL;
CREATE TABLE agent_executions (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id     text NOT NULL UNIQUE,
    agent            text NOT NULL,
    agent_type       text NOT NULL,
    task_type        text,
    success          integer NOT NULL,
    outcome          text,
    duration_ms      double precision NOT NULL,
    step_count       integer NOT NULL DEFAULT 0,
    error_count      integer NOT NULL DEFAULT 0,
    started_at       timestamptz NOT NULL,
    ended_at         timestamptz NOT NULL,
    episode_id       text,
    task_description text,
    error_message    text
);
CREATE INDEX idx_agent_executions_agent ON agent_executions(agent, seq);
CREATE INDEX idx_agent_executions_time ON agent_executions(ended_at, agent, success);
CREATE TABLE agent_totals (
    agent          text PRIMARY KEY,
    agent_type     text NOT NULL,
    executions     bigint NOT NULL,
    successes      bigint NOT NULL,
    total_ms       double precision NOT NULL,
    min_ms         double precision NOT NULL,
    max_ms         double precision NOT NULL,
    step_count     bigint NOT NULL,
    error_count    bigint NOT NULL,
    last_at        timestamptz NOT NULL,
    current_streak integer NOT NULL,
    longest_streak integer NOT NULL
);
""",
    ),
    (
        # The dashboard's reads at scale (docs/dashboard.md): the learning curve and outcome
        # counts from one index, deep pages of the episode list without sorting.
        6,
        """
CREATE INDEX IF NOT EXISTS idx_episodes_outcome_end ON episodes(outcome_type, end_time);
CREATE INDEX IF NOT EXISTS idx_episodes_start_id ON episodes(start_time DESC, episode_id);
""",
    ),
]
