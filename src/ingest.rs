//! The runner: reads a source through a connector, runs the pipeline, and commits each
//! batch (interactions, customers, quarantined rows, progress) in one store transaction.
//!
//! Reading and analysis run on a blocking thread while the previous batch is written, so
//! the CPU-bound part and the database overlap. Re-running an import after a crash
//! converges: upserts by (source, external_id) and quarantine keys make every batch
//! idempotent.

use crate::config::{Config, Progress};
use crate::connectors::files::{self, ImportError, Item, Preset, mapping::Mapping};
use crate::pipeline::{Analyzer, LanguageStats, LocationIndex, NormalizeContext, RowError};
use crate::store::{BatchOutcome, QuarantineEntry, Store, StoreError, WriteBatch};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{0}` is not a time zone; fix: use an IANA name such as Europe/Berlin")]
    TimeZone(String),
    #[error("unknown preset `{name}`; fix: use one of {}", Preset::ALL.map(|p| p.name()).join(", "))]
    UnknownPreset { name: String },
    #[error("the reader thread failed: {0}")]
    Reader(String),
    #[error(transparent)]
    Erasure(#[from] crate::erasure::ErasureError),
}

/// What `tideline import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub path: PathBuf,
    pub preset: Preset,
    pub mapping: Option<PathBuf>,
    pub source: Option<String>,
    pub location: Option<String>,
    pub timezone: Option<String>,
}

/// The counts `tideline import` prints.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ImportReport {
    pub source: String,
    pub file: String,
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    pub new_customers: u64,
    pub languages_declared: u64,
    pub languages_fast: u64,
    pub languages_model: u64,
    /// Emails or phones present but unreadable, such as Excel's `4.91701E+12`: kept in
    /// the raw record, not used to join customers.
    pub unreadable_identities: u64,
    /// Records (and rejected rows) of erased people, dropped unread.
    pub erased: u64,
    pub seconds: f64,
    /// Time spent reading and analysing (on the reader thread) and writing (in the store).
    pub seconds_reading: f64,
    pub seconds_writing: f64,
}

impl ImportReport {
    fn add(&mut self, o: &BatchOutcome, l: &LanguageStats) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.quarantined += o.quarantined;
        self.new_customers += o.new_customers;
        self.languages_declared += l.declared;
        self.languages_fast += l.fast;
        self.languages_model += l.model;
    }
}

/// The options a quarantined row keeps so it can be replayed as it was imported.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
struct ReplayOptions {
    mapping: Option<String>,
    location: Option<String>,
    timezone: Option<String>,
}

pub(crate) fn context(
    config: &Config,
    preset: Preset,
    mapping: Option<&Mapping>,
    source: &str,
    location: Option<&str>,
    timezone: Option<&str>,
) -> Result<NormalizeContext, IngestError> {
    let tz = match timezone.or(mapping.and_then(|m| m.timezone.as_deref())) {
        Some(t) => Some(
            t.parse::<chrono_tz::Tz>()
                .map_err(|_| IngestError::TimeZone(t.to_string()))?,
        ),
        None => None,
    };
    Ok(NormalizeContext {
        source: source.to_string(),
        default_kind: preset.default_kind(mapping),
        default_location: location.map(str::to_string),
        timezone: tz,
        fallback_timezone: config.import.default_timezone,
        date_formats: mapping.map(|m| m.date_formats.clone()).unwrap_or_default(),
        csat_scale: mapping
            .and_then(|m| m.csat_scale.clone())
            .unwrap_or_else(|| "1-5".into()),
        ces_scale: mapping
            .and_then(|m| m.ces_scale.clone())
            .unwrap_or_else(|| "1-7".into()),
        locations: LocationIndex::new(&config.locations),
        guard: std::sync::Arc::new(config.identity.guard.clone()),
    })
}

fn quarantine_entry(
    error: RowError,
    source: &str,
    preset: Preset,
    opts: &ReplayOptions,
) -> QuarantineEntry {
    QuarantineEntry {
        source: source.to_string(),
        preset: preset.name().to_string(),
        options: serde_json::to_value(opts).expect("plain data"),
        error,
    }
}

/// A content hash of the file, so a run records exactly which file it read.
pub(crate) fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for file in input_files(path)? {
        if path.is_dir() {
            // A folder import: the files' names are part of what was imported.
            let rel = file.strip_prefix(path).unwrap_or(&file);
            h.update(rel.to_string_lossy().as_bytes());
            h.update([0u8]);
        }
        let mut f = std::fs::File::open(&file)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The files an import reads: the file itself, or a folder's files (Takeout).
fn input_files(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    if path.is_dir() {
        files::google::input_files(path)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// The bytes an import reads.
fn input_size(path: &Path) -> std::io::Result<u64> {
    input_files(path)?
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()))
        .sum()
}

fn progress_bar(config: &Config, total_bytes: u64) -> ProgressBar {
    let target = match config.import.progress {
        Progress::Never => ProgressDrawTarget::hidden(),
        // stderr() draws only on a terminal, so logs and pipes stay clean.
        Progress::Auto | Progress::Always => ProgressDrawTarget::stderr(),
    };
    let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({eta} left)",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Imports one file. Returns the counts; row-level problems are quarantined, not errors.
/// Drops what belongs to erased people: interactions carrying a tombstoned identity and
/// rejected rows that name a tombstoned email.
pub(crate) fn drop_erased(
    tombstones: Option<&crate::erasure::Tombstones>,
    mut interactions: Vec<crate::model::Interaction>,
    mut rejects: Vec<RowError>,
) -> (Vec<crate::model::Interaction>, Vec<RowError>, u64) {
    let Some(t) = tombstones else {
        return (interactions, rejects, 0);
    };
    let before = interactions.len() + rejects.len();
    interactions.retain(|i| !t.erased(i));
    rejects.retain(|e| !t.names_erased(&e.raw));
    let dropped = (before - interactions.len() - rejects.len()) as u64;
    (interactions, rejects, dropped)
}

pub async fn import_file(
    store: &dyn Store,
    analyzer: Arc<Analyzer>,
    config: &Config,
    opts: &ImportOptions,
) -> Result<ImportReport, IngestError> {
    let started = Instant::now();
    let mapping = match &opts.mapping {
        Some(p) => Some(Mapping::load(p).map_err(ImportError::from)?),
        None => None,
    };
    let source = opts
        .source
        .clone()
        .unwrap_or_else(|| opts.preset.default_source().to_string());
    let cx = context(
        config,
        opts.preset,
        mapping.as_ref(),
        &source,
        opts.location.as_deref(),
        opts.timezone.as_deref(),
    )?;
    let replay = ReplayOptions {
        mapping: opts.mapping.as_ref().map(|p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        }),
        location: opts.location.clone(),
        timezone: opts.timezone.clone(),
    };
    let io_err = |source| {
        IngestError::Import(ImportError::Io {
            path: opts.path.display().to_string(),
            source,
        })
    };
    let hash = file_hash(&opts.path).map_err(io_err)?;
    let size = input_size(&opts.path).map_err(io_err)?;
    let tombstones = crate::erasure::filter_for(store, config).await?;
    let run = store
        .start_import_run(
            &source,
            opts.preset.name(),
            &opts.path.display().to_string(),
            &hash,
        )
        .await?;
    tracing::info!(file = %opts.path.display(), preset = opts.preset.name(), %source, "Import started.");

    let bar = progress_bar(config, size);
    bar.set_message(format!("{}", opts.path.display()));
    let batch_rows = config.import.batch_rows;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, crate::pipeline::Processed)>(2);
    let reading_nanos = Arc::new(AtomicU64::new(0));
    let bytes_read = Arc::new(AtomicU64::new(0));
    let reader = {
        let bytes_read = bytes_read.clone();
        let reading_nanos = reading_nanos.clone();
        let path = opts.path.clone();
        let preset = opts.preset;
        let analyzer = analyzer.clone();
        let cx = cx.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ImportError> {
            let mut since = Instant::now();
            let mut records = Vec::with_capacity(batch_rows);
            let mut rejects = Vec::new();
            let mut read = 0u64;
            let mut flush = |records: &mut Vec<_>, rejects: &mut Vec<RowError>, read: &mut u64| {
                let mut processed = analyzer.process(records, &cx);
                processed.rejects.splice(0..0, rejects.drain(..));
                records.clear();
                let n = std::mem::take(read);
                reading_nanos.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let sent = tx.blocking_send((n, processed)).is_ok();
                since = Instant::now();
                sent
            };
            files::read_file(
                &path,
                preset,
                mapping.as_ref(),
                Some(bytes_read),
                &mut |item| {
                    read += 1;
                    match item {
                        Item::Record(r) => records.push(r),
                        Item::Reject(e) => rejects.push(e),
                    }
                    if records.len() + rejects.len() >= batch_rows
                        && !flush(&mut records, &mut rejects, &mut read)
                    {
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                },
            )?;
            if read > 0 || !records.is_empty() || !rejects.is_empty() {
                flush(&mut records, &mut rejects, &mut read);
            }
            Ok(())
        })
    };

    let mut report = ImportReport {
        source: source.clone(),
        file: opts.path.display().to_string(),
        ..Default::default()
    };
    let mut write_result = Ok(());
    while let Some((read, processed)) = rx.recv().await {
        report.read += read;
        let unreadable = processed.unreadable_identities;
        let (interactions, rejects, erased) = drop_erased(
            tombstones.as_ref(),
            processed.interactions,
            processed.rejects,
        );
        report.erased += erased;
        let batch = WriteBatch {
            interactions,
            rejects: rejects
                .into_iter()
                .map(|e| quarantine_entry(e, &source, opts.preset, &replay))
                .collect(),
            import_run: Some(run),
            max_component: config.identity.max_component_identities,
            max_customers_per_identity: config.identity.max_customers_per_identity,
            read,
            ..Default::default()
        };
        let write_started = Instant::now();
        let written = store.write_batch(batch).await;
        report.seconds_writing += write_started.elapsed().as_secs_f64();
        match written {
            Ok(outcome) => {
                report.add(&outcome, &processed.languages);
                report.unreadable_identities += unreadable;
            }
            Err(e) => {
                write_result = Err(e);
                break;
            }
        }
        bar.set_position(bytes_read.load(Ordering::Relaxed).min(size));
        bar.set_message(format!("{} records", report.read));
    }
    drop(rx);
    let read_result = reader
        .await
        .map_err(|e| IngestError::Reader(e.to_string()))?;
    bar.finish_and_clear();
    if let Err(e) = write_result {
        store
            .finish_import_run(run, "failed", Some(&e.to_string()))
            .await
            .ok();
        return Err(e.into());
    }
    if let Err(e) = read_result {
        store
            .finish_import_run(run, "failed", Some(&e.to_string()))
            .await?;
        return Err(e.into());
    }
    store.finish_import_run(run, "done", None).await?;
    report.seconds = started.elapsed().as_secs_f64();
    report.seconds_reading = reading_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    tracing::info!(
        file = %report.file,
        read = report.read,
        inserted = report.inserted,
        updated = report.updated,
        unchanged = report.unchanged,
        quarantined = report.quarantined,
        "Import finished."
    );
    Ok(report)
}

/// The result of replaying quarantined rows.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReplayReport {
    pub attempted: u64,
    pub imported: u64,
    pub still_failing: u64,
}

/// Replays open quarantined rows (all, or `ids`), optionally with a corrected mapping.
/// A row that now reads is stored and marked `replayed`; one that still fails keeps its
/// place with the new error.
pub async fn replay_quarantine(
    store: &dyn Store,
    analyzer: &Analyzer,
    config: &Config,
    ids: &[i64],
    mapping_override: Option<&Path>,
) -> Result<ReplayReport, IngestError> {
    let mut report = ReplayReport::default();
    let tombstones = crate::erasure::filter_for(store, config).await?;
    let override_mapping = match mapping_override {
        Some(p) => Some(Mapping::load(p).map_err(ImportError::from)?),
        None => None,
    };
    for item in store.quarantine(Some("open")).await? {
        if !ids.is_empty() && !ids.contains(&item.id) {
            continue;
        }
        report.attempted += 1;
        let Some(preset) = Preset::parse(&item.entry.preset) else {
            return Err(IngestError::UnknownPreset {
                name: item.entry.preset.clone(),
            });
        };
        let opts: ReplayOptions =
            serde_json::from_value(item.entry.options.clone()).unwrap_or_default();
        let stored_mapping = match (&override_mapping, &opts.mapping) {
            (Some(_), _) | (None, None) => None,
            (None, Some(p)) => Some(Mapping::load(Path::new(p)).map_err(ImportError::from)?),
        };
        let mapping = override_mapping.as_ref().or(stored_mapping.as_ref());
        let cx = context(
            config,
            preset,
            mapping,
            &item.entry.source,
            opts.location.as_deref(),
            opts.timezone.as_deref(),
        )?;
        let rec = files::record_from_raw(
            &item.entry.error.raw,
            &item.entry.error.origin,
            item.entry.error.line,
            preset,
            mapping,
        );
        let processed = match rec {
            Item::Record(r) => analyzer.process(std::slice::from_ref(&r), &cx),
            Item::Reject(e) => crate::pipeline::Processed {
                rejects: vec![e],
                ..Default::default()
            },
        };
        let ok = processed.rejects.is_empty();
        let (interactions, rejects, _) = drop_erased(
            tombstones.as_ref(),
            processed.interactions,
            processed.rejects,
        );
        let batch = WriteBatch {
            interactions,
            rejects: rejects
                .into_iter()
                .map(|e| quarantine_entry(e, &item.entry.source, preset, &opts))
                .collect(),
            resolved_quarantine: if ok { vec![item.id] } else { vec![] },
            max_component: config.identity.max_component_identities,
            max_customers_per_identity: config.identity.max_customers_per_identity,
            ..Default::default()
        };
        store.write_batch(batch).await?;
        if ok {
            report.imported += 1;
        } else {
            report.still_failing += 1;
        }
    }
    Ok(report)
}
