//! The daemon's counters, rendered in the Prometheus text format (version 0.0.4) for
//! `GET /metrics`.
//!
//! Counters live in memory (per instance; Prometheus sums a fleet). Queue depths are read
//! from the store at scrape time, so every instance reports the shared backlog.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// One connector's counters.
#[derive(Debug, Default, Clone)]
pub struct ConnectorCounters {
    pub runs: u64,
    pub failed_runs: u64,
    pub pages: u64,
    pub items: u64,
    pub rejects: u64,
    pub errors: u64,
    pub rate_limit_waits: u64,
    pub rate_limit_wait_secs: f64,
    /// Unix seconds of the last run that finished without error.
    pub last_success: Option<f64>,
}

/// One scheduled job's counters.
#[derive(Debug, Default, Clone)]
pub struct JobCounters {
    pub runs: u64,
    pub failures: u64,
    /// Ticks not run because this instance was still running the job.
    pub skipped_overlap: u64,
    /// Ticks another instance had already claimed.
    pub claimed_elsewhere: u64,
    pub catch_up_runs: u64,
    pub last_duration_secs: f64,
}

/// Throughput counters of the ingest and analysis paths.
#[derive(Debug, Default, Clone)]
pub struct Throughput {
    pub ingested: u64,
    pub ingest_secs: f64,
    pub analyzed: u64,
    pub analyze_secs: f64,
}

/// Backlogs read from the store at scrape time.
#[derive(Debug, Default, Clone)]
pub struct QueueDepths {
    /// Stored interactions the change detectors have not read yet.
    pub analysis_backlog: i64,
    /// Quarantined rows waiting for an operator.
    pub quarantine_open: i64,
}

impl QueueDepths {
    /// Reads the backlogs from the store.
    pub async fn read(store: &dyn crate::store::Store) -> crate::store::Result<QueueDepths> {
        Ok(QueueDepths {
            analysis_backlog: store.analysis_backlog().await?,
            quarantine_open: store.counts().await?.quarantine_open,
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    connectors: BTreeMap<String, ConnectorCounters>,
    jobs: BTreeMap<String, JobCounters>,
    throughput: Throughput,
    http_requests: BTreeMap<(String, u16), u64>,
}

/// The registry. Cheap to update from any task; one lock, held for a few additions.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    started: Option<std::time::Instant>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            inner: Mutex::default(),
            started: Some(std::time::Instant::now()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Updates one connector's counters.
    pub fn connector(&self, name: &str, f: impl FnOnce(&mut ConnectorCounters)) {
        self.with(|i| f(i.connectors.entry(name.to_string()).or_default()));
    }

    /// Updates one job's counters.
    pub fn job(&self, name: &str, f: impl FnOnce(&mut JobCounters)) {
        self.with(|i| f(i.jobs.entry(name.to_string()).or_default()));
    }

    pub fn ingested(&self, items: u64, secs: f64) {
        self.with(|i| {
            i.throughput.ingested += items;
            i.throughput.ingest_secs += secs;
        });
    }

    pub fn analyzed(&self, items: u64, secs: f64) {
        self.with(|i| {
            i.throughput.analyzed += items;
            i.throughput.analyze_secs += secs;
        });
    }

    /// Counts one HTTP response by route template and status.
    pub fn http_request(&self, route: &str, status: u16) {
        self.with(|i| {
            *i.http_requests
                .entry((route.to_string(), status))
                .or_default() += 1
        });
    }

    /// A copy of one connector's counters (tests, status pages).
    pub fn connector_counters(&self, name: &str) -> Option<ConnectorCounters> {
        self.with(|i| i.connectors.get(name).cloned())
    }

    /// A copy of one job's counters.
    pub fn job_counters(&self, name: &str) -> Option<JobCounters> {
        self.with(|i| i.jobs.get(name).cloned())
    }

    /// The Prometheus text exposition of every counter plus the given queue depths.
    pub fn render(&self, queues: &QueueDepths) -> String {
        let mut out = String::with_capacity(4096);
        let inner = self.with(|i| {
            (
                i.connectors.clone(),
                i.jobs.clone(),
                i.throughput.clone(),
                i.http_requests.clone(),
            )
        });
        let (connectors, jobs, throughput, http) = inner;

        type Field = fn(&ConnectorCounters) -> Option<f64>;
        let connector_families: [(&str, &str, &str, Field); 9] = [
            (
                "tideline_connector_runs_total",
                "counter",
                "Connector runs started.",
                |c| Some(c.runs as f64),
            ),
            (
                "tideline_connector_failed_runs_total",
                "counter",
                "Connector runs that ended with an error.",
                |c| Some(c.failed_runs as f64),
            ),
            (
                "tideline_connector_pages_total",
                "counter",
                "Pages fetched and committed.",
                |c| Some(c.pages as f64),
            ),
            (
                "tideline_connector_items_total",
                "counter",
                "Records fetched and stored.",
                |c| Some(c.items as f64),
            ),
            (
                "tideline_connector_rejects_total",
                "counter",
                "Records quarantined.",
                |c| Some(c.rejects as f64),
            ),
            (
                "tideline_connector_errors_total",
                "counter",
                "Requests that failed (after retries or not).",
                |c| Some(c.errors as f64),
            ),
            (
                "tideline_connector_rate_limit_waits_total",
                "counter",
                "Waits imposed by a vendor's rate limit.",
                |c| Some(c.rate_limit_waits as f64),
            ),
            (
                "tideline_connector_rate_limit_wait_seconds_total",
                "counter",
                "Seconds spent waiting for a vendor's rate limit.",
                |c| Some(c.rate_limit_wait_secs),
            ),
            (
                "tideline_connector_last_success_timestamp_seconds",
                "gauge",
                "When the connector last finished a run without error.",
                |c| c.last_success,
            ),
        ];
        for (name, kind, help, field) in connector_families {
            family(&mut out, name, kind, help);
            for (connector, c) in &connectors {
                if let Some(v) = field(c) {
                    let _ = writeln!(out, "{name}{{connector=\"{}\"}} {v}", label(connector));
                }
            }
        }

        type JobField = fn(&JobCounters) -> f64;
        let job_families: [(&str, &str, &str, JobField); 6] = [
            (
                "tideline_job_runs_total",
                "counter",
                "Scheduled job runs on this instance.",
                |j| j.runs as f64,
            ),
            (
                "tideline_job_failures_total",
                "counter",
                "Scheduled job runs that failed.",
                |j| j.failures as f64,
            ),
            (
                "tideline_job_skipped_ticks_total",
                "counter",
                "Ticks skipped because the previous run was still going.",
                |j| j.skipped_overlap as f64,
            ),
            (
                "tideline_job_claimed_elsewhere_total",
                "counter",
                "Ticks another instance ran.",
                |j| j.claimed_elsewhere as f64,
            ),
            (
                "tideline_job_catch_up_runs_total",
                "counter",
                "Runs for ticks missed while no instance was up.",
                |j| j.catch_up_runs as f64,
            ),
            (
                "tideline_job_last_duration_seconds",
                "gauge",
                "How long the job's last run took.",
                |j| j.last_duration_secs,
            ),
        ];
        for (name, kind, help, field) in job_families {
            family(&mut out, name, kind, help);
            for (job, j) in &jobs {
                let _ = writeln!(out, "{name}{{job=\"{}\"}} {}", label(job), field(j));
            }
        }

        let scalars: [(&str, &str, &str, f64); 6] = [
            (
                "tideline_ingested_interactions_total",
                "counter",
                "Interactions stored by connectors and imports.",
                throughput.ingested as f64,
            ),
            (
                "tideline_ingest_seconds_total",
                "counter",
                "Seconds spent fetching and storing.",
                throughput.ingest_secs,
            ),
            (
                "tideline_analyzed_interactions_total",
                "counter",
                "Interactions read by the change detectors.",
                throughput.analyzed as f64,
            ),
            (
                "tideline_analysis_seconds_total",
                "counter",
                "Seconds spent in change detection.",
                throughput.analyze_secs,
            ),
            (
                "tideline_analysis_backlog",
                "gauge",
                "Stored interactions the change detectors have not read yet.",
                queues.analysis_backlog as f64,
            ),
            (
                "tideline_quarantine_open",
                "gauge",
                "Quarantined records waiting for an operator.",
                queues.quarantine_open as f64,
            ),
        ];
        for (name, kind, help, v) in scalars {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }

        family(
            &mut out,
            "tideline_http_requests_total",
            "counter",
            "HTTP responses by route and status.",
        );
        for ((route, status), n) in &http {
            let _ = writeln!(
                out,
                "tideline_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        if let Some(started) = self.started {
            family(
                &mut out,
                "tideline_uptime_seconds",
                "gauge",
                "Seconds since this instance started.",
            );
            let _ = writeln!(
                out,
                "tideline_uptime_seconds {}",
                started.elapsed().as_secs_f64()
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped as the exposition format asks (backslash, quote, newline).
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_and_escapes_labels() {
        let m = Metrics::new();
        m.connector("zen\"desk", |c| {
            c.runs += 2;
            c.items += 40;
            c.last_success = Some(1.5e9);
        });
        m.job("sync:zendesk", |j| j.skipped_overlap += 3);
        let text = m.render(&QueueDepths {
            analysis_backlog: 7,
            quarantine_open: 1,
        });
        assert!(text.contains("tideline_connector_runs_total{connector=\"zen\\\"desk\"} 2"));
        assert!(text.contains("tideline_connector_items_total{connector=\"zen\\\"desk\"} 40"));
        assert!(text.contains("tideline_job_skipped_ticks_total{job=\"sync:zendesk\"} 3"));
        assert!(text.contains("tideline_analysis_backlog 7"));
        assert!(text.contains("# TYPE tideline_connector_runs_total counter"));
        // Every sample line belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }
}
