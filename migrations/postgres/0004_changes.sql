-- Issue 4: change detection. Series are named "<entity>:<id>:<signal>" (entity location or
-- customer) or "location:<id>/<channel>:<signal>" for one channel of a location.

-- The online detector's state per series, so a restart continues where it stopped.
CREATE TABLE series_state (
    series          TEXT PRIMARY KEY,
    state           TEXT NOT NULL,
    last_ms         BIGINT NOT NULL,
    observations    BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);

-- How far the analysis has read: the highest interaction id fed to the detectors.
CREATE TABLE analysis_progress (
    name            TEXT PRIMARY KEY,
    last_id         BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);

-- Detected changes (confirmed, or still watched) and incidents (one extreme item that
-- moved a detector without changing the series). Evidence is JSON: the interactions that
-- moved the change, ranked, and the topics and words whose share rose.
CREATE TABLE changes (
    id              BIGSERIAL PRIMARY KEY,
    series          TEXT NOT NULL,
    entity          TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    channel         TEXT,
    signal          TEXT NOT NULL,
    idx             BIGINT NOT NULL,
    occurred_at_ms  BIGINT NOT NULL,
    direction       TEXT NOT NULL,
    before_value    DOUBLE PRECISION NOT NULL,
    after_value     DOUBLE PRECISION NOT NULL,
    confidence      DOUBLE PRECISION NOT NULL,
    status          TEXT NOT NULL,
    n_before        BIGINT NOT NULL,
    n_after         BIGINT NOT NULL,
    evidence        TEXT NOT NULL,
    detected_at_ms  BIGINT NOT NULL,
    UNIQUE (series, idx, status)
);
CREATE INDEX changes_entity ON changes (entity, entity_id, occurred_at_ms);
