-- Issue 5: links the resolver held back for an operator (a phone shared by a household or a
-- front desk would have joined two people). Identities as "kind:value" keys.
CREATE TABLE link_suggestions (
    identity_a     TEXT NOT NULL,
    identity_b     TEXT NOT NULL,
    reason         TEXT NOT NULL,
    first_seen_ms  BIGINT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'open',
    PRIMARY KEY (identity_a, identity_b)
);
