//! Tideline's integration tests, compiled as one binary. Storage tests run on SQLite and
//! PostgreSQL (set TIDELINE_REQUIRE_POSTGRES=1 to fail instead of skipping when the
//! server is down; CI does).

mod common;

mod browser;
mod changes;
mod cli;
mod config;
mod connectors;
mod conversations;
mod crm;
mod crm_fakes;
mod crm_outbox;
mod daemon;
mod dashboard;
mod digest;
mod erasure;
mod fakes;
mod feed;
mod google;
mod hostile;
mod http;
mod import;
mod jsonld;
mod learn;
mod metrics;
mod report;
mod schedule;
mod social;
mod sources;
mod storage;
mod support;
mod surveys;
mod sync;
mod takeout;
mod watch;
mod zendesk;
