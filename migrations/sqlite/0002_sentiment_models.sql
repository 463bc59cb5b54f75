-- Issue 3: aspects per interaction, and sentiment models adapted to this deployment.

-- [{"aspect": "wait_time", "sentiment": -0.6}, ...] as JSON; NULL when not analysed.
ALTER TABLE interactions ADD COLUMN aspects TEXT;

-- Every adaptation run, adopted or not, with what it measured on its held-out fifth.
CREATE TABLE sentiment_models (
    id                INTEGER PRIMARY KEY,
    version           TEXT NOT NULL UNIQUE,
    base_version      TEXT NOT NULL,
    trained_at_ms     INTEGER NOT NULL,
    examples          INTEGER NOT NULL,
    trained_on        INTEGER NOT NULL,
    held_out          INTEGER NOT NULL,
    base_accuracy     REAL NOT NULL,
    base_macro_f1     REAL NOT NULL,
    adapted_accuracy  REAL NOT NULL,
    adapted_macro_f1  REAL NOT NULL,
    adopted           INTEGER NOT NULL,
    weights           BLOB NOT NULL
);
