-- Issue 5: every merge of two customers with its evidence: the identity that joined them
-- and the interaction that carried it (automatic), or the operator's link (manual).
CREATE TABLE merges (
    id              BIGSERIAL PRIMARY KEY,
    from_customer   TEXT NOT NULL,
    into_customer   TEXT NOT NULL,
    identity        TEXT,
    source          TEXT,
    external_id     TEXT,
    kind            TEXT NOT NULL,
    merged_at_ms    BIGINT NOT NULL
);
CREATE INDEX merges_into ON merges (into_customer);
CREATE INDEX merges_from ON merges (from_customer);
