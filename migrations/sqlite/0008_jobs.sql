-- Issue 8: scheduled jobs run once per (job, tick) across a fleet.
--
-- job_locks: one row per job, the lock a claim takes (PostgreSQL: SELECT ... FOR UPDATE;
-- SQLite: BEGIN IMMEDIATE) and the job's current lease: which instance runs which tick,
-- until when. A holder renews lease_until_ms while it runs (heartbeat); when it dies, the
-- lease runs out and another instance may take the job.
CREATE TABLE job_locks (
    job            TEXT PRIMARY KEY,
    instance       TEXT,
    tick_ms        INTEGER,
    lease_until_ms INTEGER NOT NULL DEFAULT 0
);

-- job_runs: one row per (job, scheduled tick) that an instance claimed. The primary key is
-- what makes a tick run once: a second claim of the same tick finds the row.
CREATE TABLE job_runs (
    job            TEXT NOT NULL,
    tick_ms        INTEGER NOT NULL,
    instance       TEXT NOT NULL,
    state          TEXT NOT NULL,          -- running | done | failed
    catch_up       INTEGER NOT NULL DEFAULT 0,  -- 1: run for ticks missed while no instance was up
    attempts       INTEGER NOT NULL DEFAULT 1,  -- 2+: taken over after a holder's lease ran out
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER,
    error          TEXT,
    PRIMARY KEY (job, tick_ms)
);
CREATE INDEX job_runs_recent ON job_runs (job, tick_ms DESC);
