-- Tideline schema, SQLite. Timestamps are UTC milliseconds since the epoch (`*_ms`).
-- Never edit an applied migration; add a new file.

CREATE TABLE locations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    country     TEXT,
    language    TEXT,
    aliases     TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    display_name  TEXT,
    created_at_ms INTEGER NOT NULL,
    merged_into   TEXT REFERENCES customers(id)
);

-- Which customer an identity (email, E.164 phone, platform id) belongs to.
CREATE TABLE identities (
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    customer_id   TEXT NOT NULL REFERENCES customers(id),
    first_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_customer ON identities (customer_id);

CREATE TABLE interactions (
    id                    INTEGER PRIMARY KEY,
    source                TEXT NOT NULL,
    external_id           TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    parent_external_id    TEXT,
    occurred_at_ms        INTEGER NOT NULL,
    updated_at_ms         INTEGER,
    location_id           TEXT,
    customer_id           TEXT,
    author_name           TEXT,
    identities            TEXT NOT NULL DEFAULT '[]', -- strong identities as ["kind:value", ...]
    text                  TEXT,
    language              TEXT,
    language_confidence   REAL,
    stars                 REAL,
    nps                   INTEGER,
    csat                  REAL,
    csat_scale            TEXT,
    csat_satisfied        INTEGER,
    ces                   REAL,
    ces_scale             TEXT,
    ces_agrees            INTEGER,
    status                TEXT,
    sentiment             REAL,
    sentiment_label       TEXT,
    sentiment_confidence  REAL,
    sentiment_model       TEXT,
    url                   TEXT,
    raw                   TEXT NOT NULL,
    content_hash          TEXT NOT NULL,
    revision              INTEGER NOT NULL DEFAULT 1,
    first_seen_ms         INTEGER NOT NULL,
    last_changed_ms       INTEGER NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX interactions_customer_time ON interactions (customer_id, occurred_at_ms);
CREATE INDEX interactions_location_time ON interactions (location_id, occurred_at_ms);

-- Records that could not be read, kept with their place and raw text until replayed.
CREATE TABLE quarantine (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    preset        TEXT NOT NULL,
    origin        TEXT NOT NULL,
    line          INTEGER NOT NULL DEFAULT 0,
    field         TEXT,
    expected      TEXT NOT NULL,
    message       TEXT NOT NULL,
    raw           TEXT NOT NULL,
    raw_hash      TEXT NOT NULL,
    options       TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL DEFAULT 'open',
    created_at_ms INTEGER NOT NULL,
    resolved_at_ms INTEGER,
    UNIQUE (source, origin, line, raw_hash)
);
CREATE INDEX quarantine_status ON quarantine (status, id);

-- Where each connector left off.
CREATE TABLE sync_cursors (
    source        TEXT PRIMARY KEY,
    cursor        TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

-- One row per file import, for history and the watch folder.
CREATE TABLE import_runs (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    preset        TEXT NOT NULL,
    origin        TEXT NOT NULL,
    file_hash     TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER,
    read_count    INTEGER NOT NULL DEFAULT 0,
    inserted      INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    unchanged     INTEGER NOT NULL DEFAULT 0,
    quarantined   INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'running'
);

-- Detected changes in satisfaction, with their evidence.
CREATE TABLE change_points (
    id            INTEGER PRIMARY KEY,
    series        TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    direction     TEXT NOT NULL,
    before_value  REAL,
    after_value   REAL,
    confidence    REAL NOT NULL,
    status        TEXT NOT NULL,
    evidence      TEXT NOT NULL DEFAULT '{}',
    detected_at_ms INTEGER NOT NULL,
    UNIQUE (series, at_ms)
);
