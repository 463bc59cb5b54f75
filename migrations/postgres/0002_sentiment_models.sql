-- Issue 3: aspects per interaction, and sentiment models adapted to this deployment.

-- [{"aspect": "wait_time", "sentiment": -0.6}, ...] as JSON; NULL when not analysed.
ALTER TABLE interactions ADD COLUMN aspects TEXT;

-- Every adaptation run, adopted or not, with what it measured on its held-out fifth.
CREATE TABLE sentiment_models (
    id                BIGSERIAL PRIMARY KEY,
    version           TEXT NOT NULL UNIQUE,
    base_version      TEXT NOT NULL,
    trained_at_ms     BIGINT NOT NULL,
    examples          BIGINT NOT NULL,
    trained_on        BIGINT NOT NULL,
    held_out          BIGINT NOT NULL,
    base_accuracy     DOUBLE PRECISION NOT NULL,
    base_macro_f1     DOUBLE PRECISION NOT NULL,
    adapted_accuracy  DOUBLE PRECISION NOT NULL,
    adapted_macro_f1  DOUBLE PRECISION NOT NULL,
    adopted           BIGINT NOT NULL,
    weights           BYTEA NOT NULL
);
