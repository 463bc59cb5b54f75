//! `tideline bench report`: a fresh store (SQLite, or a fresh PostgreSQL schema) filled
//! with generated interactions over many locations in their own zones (untimed), then
//! the reputation report of all locations, last 90 days against the 90 before, as the CLI
//! builds it (timed), and its rendering to HTML, CSV and JSON (each timed).

use super::{BenchError, Scratch};
use crate::config::{Config, Secret};
use crate::outputs::indicators::Scope;
use crate::outputs::report::{self, ReportRequest};
use crate::pipeline::indicators::PeriodSpec;
use crate::store::{self, ConnectOptions, StoreError, WriteBatch};
use crate::synth::stored::{REPORT_ZONES, report_location, report_world};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ReportBenchOptions {
    pub interactions: u64,
    pub locations: u64,
    pub seed: u64,
    pub dir: PathBuf,
    /// A PostgreSQL server URL: fill a fresh schema there (dropped afterwards) instead of
    /// a SQLite file in `dir`.
    pub postgres: Option<Secret>,
}

#[derive(Debug, Clone, Default)]
pub struct ReportBench {
    pub interactions: i64,
    pub fill_secs: f64,
    pub build_secs: f64,
    pub html_secs: f64,
    pub csv_secs: f64,
    pub json_secs: f64,
    pub html_bytes: usize,
    pub csv_bytes: usize,
    pub json_bytes: usize,
    pub locations: usize,
    /// Interactions of both periods the report covers (not replies).
    pub rows_read: u64,
    pub peak_rss_kib: Option<u64>,
}

/// The configuration of the benchmark's locations: `n` locations spread over the zones of
/// [`REPORT_ZONES`] (most with daylight saving time).
pub fn config(n: u64) -> Result<Config, BenchError> {
    let mut toml = String::new();
    for k in 0..n {
        toml.push_str(&format!(
            "[[location]]\nid = \"{}\"\nname = \"Store {k}\"\ntimezone = \"{}\"\n\n",
            report_location(k),
            REPORT_ZONES[k as usize % REPORT_ZONES.len()]
        ));
    }
    Config::from_toml(&toml, "bench report", &Default::default())
        .map_err(|e| BenchError::Store(StoreError::Corrupt(e.to_string())))
}

/// Fills the store, then times the report and its renderings.
pub async fn run(opts: &ReportBenchOptions) -> Result<ReportBench, BenchError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| BenchError::Io { path, source }
    };
    let mut config = config(opts.locations)?;
    std::fs::create_dir_all(&opts.dir).map_err(io(&opts.dir))?;
    let scratch = Scratch::create(
        &opts.dir,
        "report.db",
        opts.postgres.as_ref(),
        "tideline_bench_report",
    )
    .await?;
    let url = scratch.url.clone();
    config.storage.database_url = Some(url.clone());
    let result = fill_and_measure(opts, &config, &url).await;
    scratch.remove().await;
    result
}

async fn fill_and_measure(
    opts: &ReportBenchOptions,
    config: &Config,
    url: &Secret,
) -> Result<ReportBench, BenchError> {
    let store = store::connect(url, &ConnectOptions::from(&config.storage)).await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    let batch = config.import.batch_rows.max(1);
    let mut items = report_world(opts.interactions, opts.locations, opts.seed, now_ms);
    loop {
        let chunk: Vec<_> = items.by_ref().take(batch).collect();
        if chunk.is_empty() {
            break;
        }
        store
            .write_batch(WriteBatch {
                interactions: chunk,
                max_component: config.identity.max_component_identities,
                max_customers_per_identity: config.identity.max_customers_per_identity,
                ..Default::default()
            })
            .await?;
    }
    let fill_secs = started.elapsed().as_secs_f64();
    let counts = store.counts().await?;

    let req = ReportRequest {
        scope: Scope::AllLocations,
        period: PeriodSpec::LastDays(90),
        waiting_limit: report::WAITING_LIMIT,
    };
    let started = Instant::now();
    let built = report::build(store.as_ref(), config, &req, now_ms)
        .await
        .map_err(|e| BenchError::Store(StoreError::Corrupt(e.to_string())))?;
    let build_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let html = report::html::render(&built);
    let html_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let csv = report::csv::render(&built)
        .map_err(|e| BenchError::Store(StoreError::Corrupt(e.to_string())))?;
    let csv_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let json = serde_json::to_string_pretty(&built)
        .map_err(|e| BenchError::Store(StoreError::Corrupt(e.to_string())))?;
    let json_secs = started.elapsed().as_secs_f64();

    let rows_read = built
        .locations
        .iter()
        .map(|l| l.indicators.current.interactions + l.indicators.previous.interactions)
        .sum();
    Ok(ReportBench {
        interactions: counts.interactions,
        fill_secs,
        build_secs,
        html_secs,
        csv_secs,
        json_secs,
        html_bytes: html.len(),
        csv_bytes: csv.len(),
        json_bytes: json.len(),
        locations: built.locations.len(),
        rows_read,
        peak_rss_kib: super::peak_rss_kib(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_store_reports_every_location() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(&ReportBenchOptions {
            interactions: 3_000,
            locations: 7,
            seed: 7,
            dir: dir.path().to_path_buf(),
            postgres: None,
        })
        .await
        .unwrap();
        assert_eq!(r.interactions, 3_000, "{r:?}");
        assert_eq!(r.locations, 7, "{r:?}");
        // About half of the year's interactions.
        assert!(r.rows_read > 1_000 && r.rows_read < 2_000, "{r:?}");
        assert!(r.html_bytes > 0 && r.csv_bytes > 0 && r.json_bytes > 0);
    }
}
