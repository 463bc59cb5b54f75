-- Issue 4: change detection. Series are named "<entity>:<id>:<signal>" (entity location or
-- customer) or "location:<id>/<channel>:<signal>" for one channel of a location.

-- The online detector's state per series, so a restart continues where it stopped.
CREATE TABLE series_state (
    series          TEXT PRIMARY KEY,
    state           TEXT NOT NULL,
    last_ms         INTEGER NOT NULL,
    observations    INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

-- How far the analysis has read: the highest interaction id fed to the detectors.
CREATE TABLE analysis_progress (
    name            TEXT PRIMARY KEY,
    last_id         INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

-- Detected changes (confirmed, or still watched) and incidents (one extreme item that
-- moved a detector without changing the series). Evidence is JSON: the interactions that
-- moved the change, ranked, and the topics and words whose share rose.
CREATE TABLE changes (
    id              INTEGER PRIMARY KEY,
    series          TEXT NOT NULL,
    entity          TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    channel         TEXT,
    signal          TEXT NOT NULL,
    idx             INTEGER NOT NULL,
    occurred_at_ms  INTEGER NOT NULL,
    direction       TEXT NOT NULL,
    before_value    REAL NOT NULL,
    after_value     REAL NOT NULL,
    confidence      REAL NOT NULL,
    status          TEXT NOT NULL,
    n_before        INTEGER NOT NULL,
    n_after         INTEGER NOT NULL,
    evidence        TEXT NOT NULL,
    detected_at_ms  INTEGER NOT NULL,
    UNIQUE (series, idx, status)
);
CREATE INDEX changes_entity ON changes (entity, entity_id, occurred_at_ms);
