-- Issue 5: identities an operator split apart (`customers unlink`); the resolver never
-- joins their customers again, later syncs included. Keys sorted: identity_a < identity_b.
CREATE TABLE unlinks (
    identity_a     TEXT NOT NULL,
    identity_b     TEXT NOT NULL,
    unlinked_at_ms BIGINT NOT NULL,
    PRIMARY KEY (identity_a, identity_b)
);
