//! Watch folders: export files dropped into a directory are imported, each content once.
//!
//! A pass lists the folder (not its subfolders) and imports every regular file that
//! - is not hidden and not a partial download (`.part`, `.tmp`, `.crdownload`, `~`),
//! - was last modified at least `settle_secs` ago (a file still being copied waits),
//! - has a content hash no earlier import finished (`done`), and that has not failed
//!   `max_attempts` times already (a broken file is not retried forever; a corrected copy
//!   has a new hash and is imported).
//!
//! Files are left in place: the folder may be read-only to the daemon, and the import runs
//! (`import_runs`, with the file's hash and per-file counts) are the record of what was read.

use crate::config::{Config, WatchConfig};
use crate::ingest::{ImportOptions, ImportReport, IngestError, import_file};
use crate::pipeline::Analyzer;
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("watch `{name}`: cannot list `{dir}`: {source}")]
    List {
        name: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no watch named `{0}`; fix: one of the [[watch]] names in the configuration")]
    Unknown(String),
}

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum FileResult {
    Imported { report: ImportReport },
    Failed { error: String, attempt: u32 },
}

#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub file: String,
    pub hash: String,
    #[serde(flatten)]
    pub result: FileResult,
}

/// One pass over one folder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchReport {
    pub watch: String,
    pub files: Vec<FileOutcome>,
    /// Files seen before (same content), still being written, or given up on.
    pub skipped_known: u64,
    pub skipped_unsettled: u64,
    pub skipped_given_up: u64,
}

impl std::fmt::Display for WatchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let imported = self
            .files
            .iter()
            .filter(|f| matches!(f.result, FileResult::Imported { .. }))
            .count();
        write!(
            f,
            "{}: {} imported, {} failed, {} already imported, {} still being written, {} given up",
            self.watch,
            imported,
            self.files.len() - imported,
            self.skipped_known,
            self.skipped_unsettled,
            self.skipped_given_up
        )
    }
}

fn is_candidate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !(name.starts_with('.')
        || name.ends_with('~')
        || [".part", ".tmp", ".crdownload", ".partial"]
            .iter()
            .any(|s| name.to_ascii_lowercase().ends_with(s)))
}

/// The watches `names` picks (all when empty).
pub fn select<'a>(
    config: &'a Config,
    names: &[String],
) -> Result<Vec<&'a WatchConfig>, WatchError> {
    if names.is_empty() {
        return Ok(config.watches.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            config
                .watches
                .iter()
                .find(|w| &w.name == n)
                .ok_or_else(|| WatchError::Unknown(n.clone()))
        })
        .collect()
}

/// One pass over a watched folder.
pub async fn scan(
    store: &dyn Store,
    analyzer: Arc<Analyzer>,
    config: &Config,
    watch: &WatchConfig,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<WatchReport, WatchError> {
    let mut report = WatchReport {
        watch: watch.name.clone(),
        ..Default::default()
    };
    let list_err = |source| WatchError::List {
        name: watch.name.clone(),
        dir: watch.dir.clone(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&watch.dir)
        .map_err(list_err)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| is_candidate(p))
        .collect();
    // Oldest name first is as good as any order; sorted so runs are reproducible.
    paths.sort();
    let now = SystemTime::now();
    let mut seen_this_pass = std::collections::HashSet::new();
    for path in paths {
        if stop.is_cancelled() {
            break;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let file = path.display().to_string();
        let hash = match crate::ingest::file_hash(&path) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(watch = %watch.name, %file, error = %e, "Cannot read a watched file.");
                continue;
            }
        };
        if !seen_this_pass.insert(hash.clone()) {
            report.skipped_known += 1;
            continue;
        }
        let statuses = store.import_statuses(&hash).await?;
        if statuses.iter().any(|s| s == "done") {
            report.skipped_known += 1;
            continue;
        }
        let failures = statuses.iter().filter(|s| *s == "failed").count() as u32;
        if failures >= watch.max_attempts {
            report.skipped_given_up += 1;
            continue;
        }
        // Checked after the hash so files read before are counted as such.
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < watch.settle {
            report.skipped_unsettled += 1;
            continue;
        }
        let opts = ImportOptions {
            path: path.clone(),
            preset: watch.preset,
            mapping: watch.mapping.clone(),
            source: watch.source.clone(),
            location: watch.location.clone(),
            timezone: watch.timezone.clone(),
        };
        let result = match import_file(store, analyzer.clone(), config, &opts).await {
            Ok(r) => {
                tracing::info!(watch = %watch.name, %file, read = r.read, inserted = r.inserted, updated = r.updated, quarantined = r.quarantined, "Watched file imported.");
                FileResult::Imported { report: r }
            }
            Err(IngestError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::error!(watch = %watch.name, %file, error = %e, attempt = failures + 1, max_attempts = watch.max_attempts, "Watched file not imported.");
                FileResult::Failed {
                    error: e.to_string(),
                    attempt: failures + 1,
                }
            }
        };
        report.files.push(FileOutcome { file, hash, result });
    }
    Ok(report)
}
