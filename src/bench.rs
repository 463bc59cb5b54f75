//! `tideline bench import`: generates a Zendesk-style export, imports it into a fresh
//! SQLite database through the same path as `tideline import`, and prints the rate and
//! the peak memory. Generation is not timed.

use crate::config::{Config, Secret};
use crate::connectors::files::Preset;
use crate::ingest::{self, ImportOptions, ImportReport, IngestError};
use crate::pipeline::Analyzer;
use crate::store::{self, ConnectOptions, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot write the benchmark data in `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

#[derive(Debug)]
pub struct BenchResult {
    pub rows: u64,
    pub file_bytes: u64,
    pub report: ImportReport,
    pub rows_per_sec: f64,
    pub peak_rss_kib: Option<u64>,
}

/// Peak resident memory of this process (VmHWM), in KiB, where /proc tells it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Runs the import benchmark in `dir`. With `postgres` (a server URL), the import goes into
/// a fresh schema there, dropped afterwards; otherwise into a fresh SQLite file in `dir`.
pub async fn import(
    dir: &Path,
    rows: u64,
    bad_every: u64,
    config: &Config,
    postgres: Option<&Secret>,
) -> Result<BenchResult, BenchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BenchError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let file = dir.join(format!("zendesk-{rows}.csv"));
    let f = std::fs::File::create(&file).map_err(io(&file))?;
    let mut w = std::io::BufWriter::new(f);
    crate::synth::zendesk_csv(&mut w, rows, bad_every, 7).map_err(io(&file))?;
    // Flush the generated file to disk now, so its write-back does not run during (and
    // slow down) the measured import.
    w.into_inner()
        .map_err(|e| BenchError::Io {
            path: file.clone(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io(&file))?;
    let file_bytes = std::fs::metadata(&file).map_err(io(&file))?.len();
    let schema = format!("tideline_bench_{}", std::process::id());
    let url = match postgres {
        Some(server) => {
            let admin = sqlx::PgPool::connect(server.expose())
                .await
                .map_err(StoreError::from)?;
            for sql in [
                format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                format!("CREATE SCHEMA {schema}"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&admin)
                    .await
                    .map_err(StoreError::from)?;
            }
            let sep = if server.expose().contains('?') {
                '&'
            } else {
                '?'
            };
            Secret::new(format!(
                "{}{sep}options=-c%20search_path%3D{schema}",
                server.expose()
            ))
        }
        None => {
            let db = dir.join("bench.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            Secret::new(format!("sqlite://{}", db.display()))
        }
    };
    let mut config = config.clone();
    config.storage.database_url = Some(url.clone());
    let store = store::connect(&url, &ConnectOptions::default()).await?;
    let analyzer = Arc::new(Analyzer::from_config(&config.pipeline));
    let opts = ImportOptions {
        path: file,
        preset: Preset::ZendeskCsv,
        mapping: None,
        source: Some("bench".into()),
        location: None,
        timezone: Some("Europe/Berlin".into()),
    };
    let report = ingest::import_file(store.as_ref(), analyzer, &config, &opts).await;
    drop(store);
    if let Some(server) = postgres
        && let Ok(admin) = sqlx::PgPool::connect(server.expose()).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await;
    }
    let report = report?;
    Ok(BenchResult {
        rows,
        file_bytes,
        rows_per_sec: report.read as f64 / report.seconds.max(1e-9),
        report,
        peak_rss_kib: peak_rss_kib(),
    })
}
