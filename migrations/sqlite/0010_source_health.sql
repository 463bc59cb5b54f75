-- Issue 6: connector health. A failed run keeps why it failed (the error as the operator
-- sees it: it names the request and the secret's key, never a secret), and the recent runs
-- of one source are read newest first for `tideline sources status`.
ALTER TABLE import_runs ADD COLUMN error TEXT;
CREATE INDEX import_runs_source_recent ON import_runs (source, id);
