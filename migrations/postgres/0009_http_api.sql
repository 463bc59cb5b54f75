-- Issue 8: the HTTP API pages interactions by id (keyset, never OFFSET). With a location or
-- source filter, these indexes make a page a range seek (`location_id = $1 AND id > $2`,
-- ordered by id) instead of a sort of every row of that location or source.
CREATE INDEX interactions_location_id ON interactions (location_id, id);
CREATE INDEX interactions_source_id ON interactions (source, id);
