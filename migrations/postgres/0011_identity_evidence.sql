-- Issue 5: weak evidence and shared identities.
-- A display-name suggestion carries its score in [0, 1] and its evidence (the two
-- interactions, names, location, time gap) as JSON; the strong-identity ones have neither.
-- An operator's dismissal is status 'dismissed': never suggested again.
ALTER TABLE link_suggestions ADD COLUMN score DOUBLE PRECISION;
ALTER TABLE link_suggestions ADD COLUMN evidence TEXT;
CREATE INDEX link_suggestions_status_score ON link_suggestions (status, score);

-- The folded full display name of each interaction the name pass has read ('' when the
-- name is not a full name); the pass reads only interactions above the highest id here.
CREATE TABLE name_keys (
    interaction_id  BIGINT PRIMARY KEY,
    name_key        TEXT NOT NULL,
    occurred_at_ms  BIGINT NOT NULL
);
CREATE INDEX name_keys_key ON name_keys (name_key);

-- Identities blocked automatically because they would have joined more than
-- identity.max_customers_per_identity otherwise separate customers. status 'blocked' (joins
-- nobody, like a configured blocked value) or 'unblocked' (an operator's decision; never
-- blocked automatically again).
CREATE TABLE blocked_identities (
    identity       TEXT PRIMARY KEY,
    reason         TEXT NOT NULL,
    customers      BIGINT NOT NULL,
    records        BIGINT NOT NULL,
    blocked_at_ms  BIGINT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'blocked'
);
