-- Issue 8: the HTTP API pages interactions by id (keyset, never OFFSET). With a location or
-- source filter, these indexes make a page a range seek (`location_id = ? AND id > ?`,
-- ordered by id) instead of a sort of every row of that location or source.
-- (SQLite keeps the rowid at the end of every index entry; `id` is named for clarity.)
CREATE INDEX interactions_location_id ON interactions (location_id, id);
CREATE INDEX interactions_source_id ON interactions (source, id);
