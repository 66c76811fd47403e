"""The embedded store's schema. Times are integer microseconds since the Unix epoch (UTC).

Steps live in their own table and are appended, never rewritten with the episode. The
full-text index covers descriptions, steps, outcomes and reflections; it is written in the
same transaction as the completion it describes.
"""

from __future__ import annotations

# The counts migration 9 keeps in ``row_counts``, counted from the rows: how the migration
# starts them and how ``storage vacuum`` recounts them (``storage/maintenance.py``).
COUNTED_ROWS = """
SELECT 'completed', count(*) FROM episodes WHERE end_time IS NOT NULL
UNION ALL
SELECT 'vectors:' || identity, count(*) FROM embeddings GROUP BY identity
"""
RECOUNT_ROWS = f"DELETE FROM row_counts; INSERT INTO row_counts (name, n) {COUNTED_ROWS};"

SQLITE_MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
CREATE TABLE episodes (
    episode_id       TEXT PRIMARY KEY,
    task_type        TEXT NOT NULL,
    task_description TEXT NOT NULL,
    domain           TEXT NOT NULL,
    language         TEXT,
    framework        TEXT,
    complexity       TEXT NOT NULL,
    tags             TEXT NOT NULL DEFAULT '[]',
    context          TEXT NOT NULL,
    start_time       INTEGER NOT NULL,
    end_time         INTEGER,
    outcome          TEXT,
    outcome_type     TEXT,
    reward           TEXT,
    reward_total     REAL,
    reflection       TEXT,
    patterns         TEXT NOT NULL DEFAULT '[]',
    heuristics       TEXT NOT NULL DEFAULT '[]',
    metadata         TEXT NOT NULL DEFAULT '{}',
    step_count       INTEGER NOT NULL DEFAULT 0,
    last_step_number INTEGER NOT NULL DEFAULT 0,
    tool_summary     TEXT NOT NULL DEFAULT '[]',
    learning_status  TEXT,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX idx_episodes_start_time ON episodes(start_time DESC);
CREATE INDEX idx_episodes_task_type ON episodes(task_type, end_time DESC);
CREATE INDEX idx_episodes_domain ON episodes(domain, end_time DESC);
CREATE INDEX idx_episodes_language ON episodes(language, end_time DESC);
CREATE INDEX idx_episodes_end_time ON episodes(end_time DESC);

CREATE TABLE steps (
    episode_id  TEXT NOT NULL REFERENCES episodes(episode_id) ON DELETE CASCADE,
    step_number INTEGER NOT NULL,
    timestamp   INTEGER NOT NULL,
    tool        TEXT NOT NULL,
    action      TEXT NOT NULL,
    parameters  TEXT NOT NULL DEFAULT '{}',
    result      TEXT,
    latency_ms  INTEGER NOT NULL DEFAULT 0,
    tokens_used INTEGER,
    metadata    TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (episode_id, step_number)
) WITHOUT ROWID;

CREATE TABLE patterns (
    pattern_id        TEXT PRIMARY KEY,
    pattern_type      TEXT NOT NULL,
    similarity_key    TEXT NOT NULL UNIQUE,
    pattern_data      TEXT NOT NULL,
    success_rate      REAL NOT NULL,
    occurrence_count  INTEGER NOT NULL,
    context_domain    TEXT,
    context_language  TEXT,
    retrieval_count   INTEGER NOT NULL DEFAULT 0,
    application_count INTEGER NOT NULL DEFAULT 0,
    success_count     INTEGER NOT NULL DEFAULT 0,
    failure_count     INTEGER NOT NULL DEFAULT 0,
    last_retrieved    INTEGER,
    last_applied      INTEGER,
    effectiveness     REAL NOT NULL DEFAULT 0.5,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX idx_patterns_context ON patterns(context_domain, occurrence_count DESC);
CREATE INDEX idx_patterns_language ON patterns(context_language, occurrence_count DESC);
CREATE INDEX idx_patterns_occurrence ON patterns(occurrence_count DESC);
CREATE INDEX idx_patterns_type ON patterns(pattern_type, success_rate DESC);

CREATE TABLE episode_patterns (
    episode_id TEXT NOT NULL REFERENCES episodes(episode_id) ON DELETE CASCADE,
    pattern_id TEXT NOT NULL REFERENCES patterns(pattern_id) ON DELETE CASCADE,
    PRIMARY KEY (episode_id, pattern_id)
) WITHOUT ROWID;
CREATE INDEX idx_episode_patterns_pattern ON episode_patterns(pattern_id);

CREATE TABLE heuristics (
    heuristic_id   TEXT PRIMARY KEY,
    similarity_key TEXT NOT NULL UNIQUE,
    condition_text TEXT NOT NULL,
    action_text    TEXT NOT NULL,
    domain         TEXT NOT NULL,
    confidence     REAL NOT NULL,
    sample_size    INTEGER NOT NULL,
    evidence       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX idx_heuristics_domain ON heuristics(domain, confidence DESC);
CREATE INDEX idx_heuristics_confidence ON heuristics(confidence DESC);

CREATE TABLE learning_jobs (
    episode_id  TEXT PRIMARY KEY REFERENCES episodes(episode_id) ON DELETE CASCADE,
    enqueued_at INTEGER NOT NULL,
    claimed_by  TEXT,
    claimed_at  INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX idx_learning_jobs_order ON learning_jobs(enqueued_at);

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE VIRTUAL TABLE episodes_fts USING fts5(
    task_description, steps_text, outcome_text, reflection_text,
    tokenize = 'porter unicode61'
);
INSERT INTO episodes_fts(episodes_fts, rank) VALUES ('rank', 'bm25(4.0, 1.0, 1.5, 0.5)');

CREATE TRIGGER episodes_fts_delete AFTER DELETE ON episodes BEGIN
    DELETE FROM episodes_fts WHERE rowid = old.rowid;
END;
""",
    ),
    (
        2,
        """
-- Document frequency per (stemmed) term, for choosing selective query terms.
CREATE VIRTUAL TABLE episodes_fts_vocab USING fts5vocab(episodes_fts, 'row');
""",
    ),
    (
        3,
        """
-- One vector per episode and embedding identity (provider:model:dimensions), float32 bytes.
-- Written in the completion transaction, or by reindex; replaced rows get a new rowid, which is
-- how vector indexes in every process find what changed. (Migration 8: a sequence, ``seq``.)
CREATE TABLE embeddings (
    episode_id   TEXT PRIMARY KEY REFERENCES episodes(episode_id) ON DELETE CASCADE,
    identity     TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dimensions   INTEGER NOT NULL,
    vector       BLOB NOT NULL,
    truncated    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
CREATE INDEX idx_embeddings_identity ON embeddings(identity, episode_id);
CREATE INDEX idx_embeddings_hash ON embeddings(identity, content_hash);
""",
    ),
    (
        4,
        """
-- The code sandbox's audit trail (core/sandbox_audit.py): one row per run, never the code or
-- its output. seq orders the rows; retention deletes the oldest (keep the newest N).
CREATE TABLE sandbox_runs (
    seq         INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL UNIQUE,
    time        INTEGER NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_bytes  INTEGER NOT NULL,
    backend     TEXT NOT NULL,
    limits      TEXT NOT NULL DEFAULT '{}',
    duration_ms REAL NOT NULL,
    outcome     TEXT NOT NULL,
    error_type  TEXT,
    caller      TEXT NOT NULL,
    task        TEXT
);
CREATE INDEX idx_sandbox_runs_time ON sandbox_runs(time);
""",
    ),
    (
        5,
        """
-- Retrieval feedback (storage/sql/feedback.py): which retrieved episodes and patterns a task
-- used (retrieved for it, or named by record_retrieval_feedback), whether the caller found
-- them helpful, and whether the task's outcome was counted yet (applied). The counters an
-- episode's usefulness is computed from are in episode_usage.
CREATE TABLE retrieval_uses (
    task_episode_id TEXT NOT NULL REFERENCES episodes(episode_id) ON DELETE CASCADE,
    item_kind       TEXT NOT NULL,
    item_id         TEXT NOT NULL,
    helpful         INTEGER,
    applied         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (task_episode_id, item_kind, item_id)
) WITHOUT ROWID;
CREATE TABLE episode_usage (
    episode_id TEXT PRIMARY KEY REFERENCES episodes(episode_id) ON DELETE CASCADE,
    uses       INTEGER NOT NULL DEFAULT 0,
    success    REAL NOT NULL DEFAULT 0,
    helpful    INTEGER NOT NULL DEFAULT 0,
    unhelpful  INTEGER NOT NULL DEFAULT 0,
    last_used  INTEGER,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
""",
    ),
    (
        6,
        """
-- Agent monitoring (model/agents.py, storage/sql/agent_executions.py): who ran an episode,
-- and one row per agent execution (a completed episode with an agent, or one recorded on its
-- own). execution_id is the episode's id for an episode's execution, so a retried completion
-- writes it once. No foreign key: the history stays when an episode is deleted.
ALTER TABLE episodes ADD COLUMN agent TEXT;
CREATE INDEX idx_episodes_agent ON episodes(agent, start_time DESC) WHERE agent IS NOT NULL;
CREATE TABLE agent_executions (
    seq              INTEGER PRIMARY KEY,
    execution_id     TEXT NOT NULL UNIQUE,
    agent            TEXT NOT NULL,
    agent_type       TEXT NOT NULL,
    task_type        TEXT,
    success          INTEGER NOT NULL,
    outcome          TEXT,
    duration_ms      REAL NOT NULL,
    step_count       INTEGER NOT NULL DEFAULT 0,
    error_count      INTEGER NOT NULL DEFAULT 0,
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER NOT NULL,
    episode_id       TEXT,
    task_description TEXT,
    error_message    TEXT
);
CREATE INDEX idx_agent_executions_agent ON agent_executions(agent, seq);
CREATE INDEX idx_agent_executions_time ON agent_executions(ended_at, agent, success);
-- Per-agent running totals, updated in the transaction that inserts an execution (so they
-- equal the rows'), read without scanning the rows; the streaks follow the insertion order.
CREATE TABLE agent_totals (
    agent          TEXT PRIMARY KEY,
    agent_type     TEXT NOT NULL,
    executions     INTEGER NOT NULL,
    successes      INTEGER NOT NULL,
    total_ms       REAL NOT NULL,
    min_ms         REAL NOT NULL,
    max_ms         REAL NOT NULL,
    step_count     INTEGER NOT NULL,
    error_count    INTEGER NOT NULL,
    last_at        INTEGER NOT NULL,
    current_streak INTEGER NOT NULL,
    longest_streak INTEGER NOT NULL
) WITHOUT ROWID;
""",
    ),
    (
        7,
        """
-- The dashboard's reads at scale (docs/dashboard.md): the learning curve and the outcome
-- counts read only this index (outcome_timeline counts each window's outcomes as index
-- ranges), and a deep page of the episode list skips index entries, not rows.
CREATE INDEX IF NOT EXISTS idx_episodes_outcome_end ON episodes(outcome_type, end_time);
CREATE INDEX IF NOT EXISTS idx_episodes_start_id ON episodes(start_time DESC, episode_id);
""",
    ),
    (
        8,
        """
-- Embedding rows get their order from a sequence that never gives a number twice. Before this
-- the order was the implicit rowid, which SQLite gives again once the newest row is deleted:
-- a vector written after the newest episode was deleted came back under the deleted one's
-- number, and vector indexes that had loaded up to that number never loaded it. The rows keep
-- their numbers; the sequence goes on from the highest. A row whose episode is gone (written
-- by a connection without foreign keys) is not copied: it would fail the copy.
CREATE TABLE embeddings_v8 (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    episode_id   TEXT NOT NULL UNIQUE REFERENCES episodes(episode_id) ON DELETE CASCADE,
    identity     TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dimensions   INTEGER NOT NULL,
    vector       BLOB NOT NULL,
    truncated    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
INSERT INTO embeddings_v8 (seq, episode_id, identity, content_hash, dimensions, vector,
                           truncated, created_at)
    SELECT rowid, episode_id, identity, content_hash, dimensions, vector, truncated, created_at
    FROM embeddings WHERE episode_id IN (SELECT episode_id FROM episodes) ORDER BY rowid;
DROP TABLE embeddings;
ALTER TABLE embeddings_v8 RENAME TO embeddings;
CREATE INDEX idx_embeddings_identity ON embeddings(identity, episode_id);
CREATE INDEX idx_embeddings_hash ON embeddings(identity, content_hash);
""",
    ),
    (
        9,
        """
-- Row counts kept by triggers in every writing transaction, so that the embedding coverage
-- (completed episodes against the vectors of an identity: storage/sql/queries.embedding_status)
-- is read without counting rows: 'completed' and 'vectors:<identity>'. Counting took 15-23 ms
-- at 100K episodes, after every completion and every 2 s of writes. A row that INSERT OR
-- REPLACE replaces is counted off by the BEFORE INSERT trigger (delete triggers do not fire
-- for it unless recursive_triggers is on, which this library never sets); the library itself
-- deletes the old row first.
CREATE TABLE row_counts (
    name TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;
"""
        + RECOUNT_ROWS
        + """
CREATE TRIGGER episodes_counted_insert AFTER INSERT ON episodes
WHEN new.end_time IS NOT NULL BEGIN
    UPDATE row_counts SET n = n + 1 WHERE name = 'completed';
END;
CREATE TRIGGER episodes_counted_delete AFTER DELETE ON episodes
WHEN old.end_time IS NOT NULL BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'completed';
END;
CREATE TRIGGER episodes_counted_end AFTER UPDATE OF end_time ON episodes
WHEN (old.end_time IS NULL) <> (new.end_time IS NULL) BEGIN
    UPDATE row_counts SET n = n + CASE WHEN new.end_time IS NULL THEN -1 ELSE 1 END
    WHERE name = 'completed';
END;
CREATE TRIGGER embeddings_counted_replaced BEFORE INSERT ON embeddings BEGIN
    UPDATE row_counts SET n = n - 1
    WHERE name = (SELECT 'vectors:' || identity FROM embeddings WHERE episode_id = new.episode_id);
END;
CREATE TRIGGER embeddings_counted_insert AFTER INSERT ON embeddings BEGIN
    INSERT INTO row_counts (name, n) VALUES ('vectors:' || new.identity, 1)
    ON CONFLICT (name) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER embeddings_counted_delete AFTER DELETE ON embeddings BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'vectors:' || old.identity;
END;
CREATE TRIGGER embeddings_counted_identity AFTER UPDATE OF identity ON embeddings
WHEN old.identity <> new.identity BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'vectors:' || old.identity;
    INSERT INTO row_counts (name, n) VALUES ('vectors:' || new.identity, 1)
    ON CONFLICT (name) DO UPDATE SET n = n + 1;
END;
""",
    ),
    (
        10,
        """
-- The episodes whose retrieval candidate row may have changed, in commit order, written by
-- triggers in every writing transaction of any process (``storage/sqlite.py``,
-- ``CandidateChanges``): a process keeps the candidate rows it read across store versions and
-- drops only those logged since (``retrieval/hybrid.py``). A candidate row is a completed
-- episode's columns with its retrieval-feedback counters, so the log takes every insert (a
-- replaced row included: INSERT OR REPLACE fires no delete trigger here), every delete, the
-- updates of completed episodes, and every change of episode_usage; the updates of an episode
-- still running (its step count) are not logged: it is no candidate. AUTOINCREMENT: a seq is
-- never reused. The oldest entries are dropped every 1,024 (the newest 65,536 stay); a
-- process that last read the log before them starts over.
CREATE TABLE candidate_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    episode_id TEXT NOT NULL
);
CREATE TRIGGER candidate_changes_insert AFTER INSERT ON episodes BEGIN
    INSERT INTO candidate_changes (episode_id) VALUES (new.episode_id);
END;
CREATE TRIGGER candidate_changes_update AFTER UPDATE ON episodes
WHEN old.end_time IS NOT NULL BEGIN
    INSERT INTO candidate_changes (episode_id) VALUES (old.episode_id);
END;
CREATE TRIGGER candidate_changes_delete AFTER DELETE ON episodes BEGIN
    INSERT INTO candidate_changes (episode_id) VALUES (old.episode_id);
END;
CREATE TRIGGER candidate_changes_usage_insert AFTER INSERT ON episode_usage BEGIN
    INSERT INTO candidate_changes (episode_id) VALUES (new.episode_id);
END;
CREATE TRIGGER candidate_changes_usage_update AFTER UPDATE ON episode_usage BEGIN
    INSERT INTO candidate_changes (episode_id) VALUES (new.episode_id);
END;
CREATE TRIGGER candidate_changes_usage_delete AFTER DELETE ON episode_usage BEGIN
    INSERT INTO candidate_changes (episode_id) VALUES (old.episode_id);
END;
CREATE TRIGGER candidate_changes_pruned AFTER INSERT ON candidate_changes
WHEN new.seq % 1024 = 0 BEGIN
    DELETE FROM candidate_changes WHERE seq <= new.seq - 65536;
END;
""",
    ),
]
