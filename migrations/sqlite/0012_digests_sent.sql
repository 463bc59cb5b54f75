-- Issue 10: an email digest for a (recipient, period) is sent once, across restarts and on
-- a fleet. A sender claims the row BEFORE it talks to the SMTP server (the primary key
-- makes one claim win) and marks it sent after the server accepted the message.
--
-- state: sending (claimed; lease_until_ms bounds how long a crashed sender blocks it),
-- sent, or failed (the server refused or could not be reached; the next check retries).
-- A 'sending' row whose lease ran out is taken over: a sender that crashed after the
-- server accepted the message and before it marked the row makes that digest go out twice
-- (at-least-once in that window, with the same Message-ID); everything else is once.
CREATE TABLE digests_sent (
    recipient      TEXT NOT NULL,     -- the recipient's email address, lower case
    cadence        TEXT NOT NULL,     -- day | week
    period_start   TEXT NOT NULL,     -- first local date of the period (YYYY-MM-DD, recipient's zone)
    period_end     TEXT NOT NULL,     -- last local date, included
    state          TEXT NOT NULL,
    instance       TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 1,
    claimed_at_ms  INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    sent_at_ms     INTEGER,
    message_id     TEXT,
    error          TEXT,               -- the last failure as the operator sees it (never a secret)
    PRIMARY KEY (recipient, cadence, period_start)
);
