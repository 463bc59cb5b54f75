-- Issue 10: CRM sync through an outbox.
--
-- crm_sinks: the CRM targets this database feeds (`[[crm]]` names). A sink is registered
-- once, in one transaction with the backfill of every stored interaction and change, so
-- a sink added later still receives the whole history.
CREATE TABLE crm_sinks (
    name             TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,          -- hubspot | salesforce | webhook
    registered_at_ms BIGINT NOT NULL,
    delivered        BIGINT NOT NULL DEFAULT 0, -- items delivered (upserts and deletes)
    skipped          BIGINT NOT NULL DEFAULT 0, -- items the CRM cannot take (no email for a contact)
    last_run_ms      BIGINT,
    last_error       TEXT
);

-- crm_outbox: what each sink still has to receive. Written in the same transaction as the
-- data it describes (write_batch, save_analysis, erase), so a crash can neither lose an
-- item nor deliver data that was rolled back.
--
-- entity/entity_key: interaction (its id), change (`series#idx`), customer (its id).
-- op: upsert (the payload is read at delivery time, so the newest version goes out) or
-- delete (an erasure: remote_id and the CRM key are kept here because the data is gone).
-- generation: bumped when the same item is enqueued again while pending; a delivery only
-- removes the row if no newer generation arrived meanwhile.
-- leased_until_ms: a worker holds the row until then; a crashed worker's rows come back.
-- uncertain: a delivery may have reached the CRM without an answer (timeout, crash); the
-- next one must be idempotent (every CRM write is an upsert by key).
-- parked_at_ms: poison items (the CRM refused them, or max attempts) wait here, visible in
-- `tideline crm status` and `tideline crm parked`, until `tideline crm retry`.
CREATE TABLE crm_outbox (
    id              BIGSERIAL PRIMARY KEY,
    sink            TEXT NOT NULL,
    entity          TEXT NOT NULL,
    entity_key      TEXT NOT NULL,
    op              TEXT NOT NULL,
    remote_id       TEXT,
    crm_key         TEXT,
    generation      BIGINT NOT NULL DEFAULT 1,
    attempts        BIGINT NOT NULL DEFAULT 0,
    uncertain       BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    leased_until_ms BIGINT,
    last_error      TEXT,
    parked_at_ms    BIGINT,
    enqueued_ms     BIGINT NOT NULL,
    UNIQUE (sink, entity, entity_key, op)
);
CREATE INDEX crm_outbox_queue ON crm_outbox (sink, id);

-- crm_links: what a sink holds of ours, by the stable key we gave it (interactions and
-- changes: a hash of their natural key; customers: their id), with the CRM's record id.
-- An erasure turns a customer's links into delete items; a delivered delete removes them.
-- created: Tideline created the record (a contact that already existed in the CRM is
-- never deleted by an erasure, only the notes Tideline added to it).
CREATE TABLE crm_links (
    sink        TEXT NOT NULL,
    entity      TEXT NOT NULL,
    crm_key     TEXT NOT NULL,
    customer_id TEXT,
    remote_id   TEXT,
    created     BIGINT NOT NULL DEFAULT 1,
    synced_ms   BIGINT NOT NULL,
    PRIMARY KEY (sink, entity, crm_key)
);
CREATE INDEX crm_links_customer ON crm_links (customer_id);
