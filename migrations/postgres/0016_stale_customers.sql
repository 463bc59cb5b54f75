-- Customers merged or split since the last analysis pass. The pass rebuilds their series
-- from their whole history (and drops an absorbed customer's), instead of re-reading
-- every interaction; a newer mark replaces an older one.
CREATE TABLE stale_customers (
    customer_id TEXT PRIMARY KEY,
    marked_ms BIGINT NOT NULL
);
