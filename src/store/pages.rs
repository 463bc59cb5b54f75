//! Filters and rows of the paged reads the HTTP API makes (`// --- HTTP API reads ---` in
//! the `Store` trait). Every page is a keyset on an id: the caller passes the last id it
//! saw, never an offset, so a page costs the same at the start and at the end of a table
//! and rows inserted meanwhile are neither skipped nor repeated.

use serde::Serialize;

/// Which interactions to list, by id ascending after `after_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InteractionFilter {
    /// The last id of the previous page (0: from the start).
    pub after_id: i64,
    pub limit: i64,
    pub source: Option<String>,
    pub location: Option<String>,
    pub language: Option<String>,
    pub kind: Option<String>,
    pub customer: Option<String>,
    /// `negative`, `neutral` or `positive` (the stored label).
    pub sentiment_label: Option<String>,
    /// Inclusive bounds on the sentiment score in [-1, 1].
    pub sentiment_min: Option<f64>,
    pub sentiment_max: Option<f64>,
    /// `from_ms <= occurred_at < to_ms`.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// Which customers to list, by id ascending after `after`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFilter {
    pub after: Option<String>,
    pub limit: i64,
    /// Only customers with at least one interaction from this source.
    pub source: Option<String>,
    /// Only customers with at least one interaction at this location.
    pub location: Option<String>,
}

/// Which changes to list, by id descending (newest stored first) before `before_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangePageFilter {
    pub before_id: Option<i64>,
    pub limit: i64,
    pub location: Option<String>,
    pub customer: Option<String>,
    /// `stars`, `sentiment`, `nps` or `outcome`.
    pub signal: Option<String>,
    /// `watch`, `confirmed` or `incident`.
    pub status: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// Which quarantined rows to list, by id ascending after `after_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuarantineFilter {
    pub after_id: i64,
    pub limit: i64,
    /// `open`, `replayed` or `dismissed`.
    pub status: Option<String>,
    pub source: Option<String>,
}

/// The last import run of a source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: i64,
    /// `running`, `done`, `stopped` (a stop request; resumes from the cursor) or `failed`.
    pub status: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub read: i64,
    pub inserted: i64,
    pub updated: i64,
    pub quarantined: i64,
    /// Why a failed run failed.
    pub error: Option<String>,
}

/// How one source is doing: its runs, its last success, what it left in quarantine.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceStatus {
    pub source: String,
    pub interactions: i64,
    pub runs: i64,
    pub failed_runs: i64,
    pub last_run: Option<RunSummary>,
    /// When the last run that ended without error finished.
    pub last_success_ms: Option<i64>,
    /// When the connector's cursor last moved (API connectors).
    pub cursor_updated_ms: Option<i64>,
    pub quarantine_open: i64,
}
