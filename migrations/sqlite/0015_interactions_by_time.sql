-- A report of all locations reads every interaction of its periods at once, in time order
-- (issue 9: 1,000,000 interactions over 100 locations in under 10 s). Without an index on
-- the time alone that read is a scan of the whole table and a sort of what it keeps; with
-- it, a range in time order.
CREATE INDEX interactions_time ON interactions (occurred_at_ms);
