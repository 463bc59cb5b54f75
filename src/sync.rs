//! The runner for API connectors: `tideline sync` and the daemon's `sync:<name>` jobs.
//!
//! Page by page: fetch after the stored cursor -> pipeline -> one transaction with the
//! page's interactions, its quarantined items and the cursor that follows it. A stop
//! request (SIGTERM) cancels a fetch or a rate-limit wait at once but never a commit: the
//! page in hand is either stored with its cursor or absent, and the next run resumes from
//! the cursor. Re-fetching a page is harmless (upserts by source and external id).

use crate::config::{Config, ConnectorConfig};
use crate::connectors::http::FetchContext;
use crate::connectors::{self, ConnectorError};
use crate::metrics::Metrics;
use crate::pipeline::Analyzer;
use crate::store::{QuarantineEntry, Store, StoreError, WriteBatch};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("connector `{connector}`: {source}")]
    Connector {
        connector: String,
        #[source]
        source: ConnectorError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error(transparent)]
    Erasure(#[from] crate::erasure::ErasureError),
    #[error("the analysis thread failed: {0}")]
    Worker(String),
    #[error("no connector named `{0}`; fix: one of the [[connector]] names in the configuration")]
    Unknown(String),
}

/// What one run of one connector did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    pub connector: String,
    pub pages: u64,
    pub fetched: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    pub erased: u64,
    /// Stopped by a stop request before the end of the stream (resumes from the cursor).
    pub stopped: bool,
    pub seconds: f64,
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} pages, {} fetched, {} new, {} updated, {} unchanged, {} quarantined{}",
            self.connector,
            self.pages,
            self.fetched,
            self.inserted,
            self.updated,
            self.unchanged,
            self.quarantined,
            if self.stopped {
                ", stopped (resumes from the cursor)"
            } else {
                ""
            }
        )
    }
}

/// The connectors `names` picks (all when empty), in configuration order.
pub fn select<'a>(
    config: &'a Config,
    names: &[String],
) -> Result<Vec<&'a ConnectorConfig>, SyncError> {
    if names.is_empty() {
        return Ok(config.connectors.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            config
                .connectors
                .iter()
                .find(|c| &c.name == n)
                .ok_or_else(|| SyncError::Unknown(n.clone()))
        })
        .collect()
}

/// Runs one connector until the end of its stream (or a stop request).
pub async fn sync_connector(
    store: &dyn Store,
    analyzer: Arc<Analyzer>,
    config: &Config,
    connector: &ConnectorConfig,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> Result<SyncReport, SyncError> {
    let name = connector.name.clone();
    metrics.connector(&name, |c| c.runs += 1);
    let started = Instant::now();
    let result = run(store, analyzer, config, connector, &metrics, stop).await;
    let secs = started.elapsed().as_secs_f64();
    match &result {
        Ok(r) => {
            metrics.ingested(r.inserted + r.updated, secs);
            if !r.stopped {
                let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
                metrics.connector(&name, |c| c.last_success = Some(now));
            }
        }
        Err(_) => metrics.connector(&name, |c| c.failed_runs += 1),
    }
    result.map(|mut r| {
        r.seconds = secs;
        r
    })
}

async fn run(
    store: &dyn Store,
    analyzer: Arc<Analyzer>,
    config: &Config,
    connector: &ConnectorConfig,
    metrics: &Arc<Metrics>,
    stop: CancellationToken,
) -> Result<SyncReport, SyncError> {
    let name = connector.name.as_str();
    let fetcher = connectors::build(connector).map_err(|source| SyncError::Connector {
        connector: name.to_string(),
        source,
    })?;
    let preset = fetcher.preset();
    let cx = crate::ingest::context(
        config,
        preset,
        None,
        name,
        connector.location.as_deref(),
        None,
    )?;
    let replay_options = serde_json::json!({
        "mapping": null,
        "location": connector.location,
        "timezone": null,
    });
    let tombstones = crate::erasure::filter_for(store, config).await?;
    let fetch_cx = FetchContext::new(name, metrics.clone(), stop.clone());
    let run_id = store
        .start_import_run(name, connector.kind.as_str(), "api", "")
        .await?;
    let mut report = SyncReport {
        connector: name.to_string(),
        ..Default::default()
    };
    let mut cursor = store.cursor(name).await?;
    let outcome: Result<(), SyncError> = async {
        loop {
            if stop.is_cancelled() {
                report.stopped = true;
                return Ok(());
            }
            let page = match fetcher.fetch(cursor.as_deref(), &fetch_cx).await {
                Ok(p) => p,
                Err(ConnectorError::Stopped) => {
                    report.stopped = true;
                    return Ok(());
                }
                Err(source) => {
                    return Err(SyncError::Connector {
                        connector: name.to_string(),
                        source: source.naming_secrets(connector.kind.secret_keys()),
                    });
                }
            };
            let read = (page.records.len() + page.rejects.len()) as u64;
            let (analyzer, cx) = (analyzer.clone(), cx.clone());
            let records = page.records;
            let processed = tokio::task::spawn_blocking(move || analyzer.process(&records, &cx))
                .await
                .map_err(|e| SyncError::Worker(e.to_string()))?;
            let mut rejects = page.rejects;
            rejects.extend(processed.rejects);
            let (interactions, rejects, erased) =
                crate::ingest::drop_erased(tombstones.as_ref(), processed.interactions, rejects);
            let batch = WriteBatch {
                interactions,
                rejects: rejects
                    .into_iter()
                    .map(|error| QuarantineEntry {
                        source: name.to_string(),
                        preset: preset.name().to_string(),
                        options: replay_options.clone(),
                        error,
                    })
                    .collect(),
                import_run: Some(run_id),
                read,
                cursor: page.cursor.clone().map(|c| (name.to_string(), c)),
                max_component: config.identity.max_component_identities,
                max_customers_per_identity: config.identity.max_customers_per_identity,
                ..Default::default()
            };
            // The commit is not raced against the stop request: it completes or, if the
            // process dies, rolls back as a whole.
            let o = store.write_batch(batch).await?;
            report.pages += 1;
            report.fetched += read;
            report.inserted += o.inserted;
            report.updated += o.updated;
            report.unchanged += o.unchanged;
            report.quarantined += o.quarantined;
            report.erased += erased;
            metrics.connector(name, |c| {
                c.pages += 1;
                c.items += read;
                c.rejects += o.quarantined;
            });
            if page.cursor.is_some() {
                cursor = page.cursor;
            }
            if !page.more {
                return Ok(());
            }
        }
    }
    .await;
    let status = match (&outcome, report.stopped) {
        (Err(_), _) => "failed",
        (Ok(()), true) => "stopped",
        (Ok(()), false) => "done",
    };
    let error = outcome.as_ref().err().map(ToString::to_string);
    store
        .finish_import_run(run_id, status, error.as_deref())
        .await?;
    log_health(store, connector).await;
    outcome.map(|()| report)
}

/// After each run: a connector that keeps failing, went quiet or missed its schedule is
/// logged as a connector problem (the same verdict `tideline sources status` shows).
async fn log_health(store: &dyn Store, connector: &ConnectorConfig) {
    let now = chrono::Utc::now().timestamp_millis();
    match crate::outputs::sources::connector_health(store, connector, now).await {
        Ok(h) if h.state.is_problem() => {
            for problem in &h.problems {
                tracing::warn!(
                    connector = %connector.name,
                    health = h.state.as_str(),
                    consecutive_failures = h.consecutive_failures,
                    fetched_24h = h.fetched_24h,
                    fetched_prev_24h = h.fetched_prev_24h,
                    "connector problem: {problem}"
                );
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(connector = %connector.name, error = %e, "Cannot judge the connector's health.")
        }
    }
}
