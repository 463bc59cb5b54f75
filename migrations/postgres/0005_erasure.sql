-- Issue 5: erasure. Only keyed hashes (HMAC-SHA256 with the deployment's erasure key) of an
-- erased person's identities stay, so a later sync that still sees them imports nothing.
CREATE TABLE tombstones (
    hash           TEXT PRIMARY KEY,
    erased_at_ms   BIGINT NOT NULL
);

-- One row per erasure, for the CRM sync to propagate as a delete. `subject` is the keyed
-- hash of the erased customer id.
CREATE TABLE erasures (
    id                 BIGSERIAL PRIMARY KEY,
    subject            TEXT NOT NULL,
    identities         BIGINT NOT NULL,
    interactions       BIGINT NOT NULL,
    erased_at_ms       BIGINT NOT NULL,
    propagated_at_ms   BIGINT
);
