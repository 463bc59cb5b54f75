//! `tideline bench import`: generates a Zendesk-style export, imports it into a fresh
//! SQLite database through the same path as `tideline import`, and prints the rate and
//! the peak memory. Generation is not timed.

pub mod api;
pub mod detect;
pub mod report;

use crate::config::{Config, Secret};
use crate::connectors::files::Preset;
use crate::ingest::{self, ImportOptions, ImportReport, IngestError};
use crate::pipeline::Analyzer;
use crate::pipeline::sentiment::Confusion;
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

/// A fresh database for one benchmark run: a SQLite file in a directory, or a new schema
/// on a PostgreSQL server.
pub(crate) struct Scratch {
    pub url: Secret,
    place: ScratchPlace,
}

enum ScratchPlace {
    Sqlite(PathBuf),
    Postgres { server: Secret, schema: String },
}

impl Scratch {
    /// `file` in `dir` (any earlier copy removed), or the schema `<prefix>_<pid>` on
    /// `postgres` (dropped first if it exists).
    pub(crate) async fn create(
        dir: &Path,
        file: &str,
        postgres: Option<&Secret>,
        prefix: &str,
    ) -> Result<Self, BenchError> {
        match postgres {
            Some(server) => {
                let schema = format!("{prefix}_{}", std::process::id());
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
                Ok(Self {
                    url: store::url_in_schema(server, &schema),
                    place: ScratchPlace::Postgres {
                        server: server.clone(),
                        schema,
                    },
                })
            }
            None => {
                let db = dir.join(file);
                store::remove_database(&db).map_err(|source| BenchError::Io {
                    path: db.clone(),
                    source,
                })?;
                Ok(Self {
                    url: Secret::new(format!("sqlite://{}", db.display())),
                    place: ScratchPlace::Sqlite(db),
                })
            }
        }
    }

    /// Removes the database; a failure to do so is not the benchmark's.
    pub(crate) async fn remove(self) {
        match self.place {
            ScratchPlace::Postgres { server, schema } => {
                if let Ok(admin) = sqlx::PgPool::connect(server.expose()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&admin)
                    .await;
                }
            }
            ScratchPlace::Sqlite(db) => {
                let _ = store::remove_database(&db);
            }
        }
    }
}

/// Peak resident memory of this process (VmHWM), in KiB, where /proc tells it.
pub fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("VmHWM:")
}

/// Resident memory of this process now (VmRSS), in KiB, where /proc tells it.
pub fn rss_kib() -> Option<u64> {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))
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
    let scratch = Scratch::create(dir, "bench.db", postgres, "tideline_bench").await?;
    let url = scratch.url.clone();
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
    // The SQLite file stays in `dir` for a look afterwards; a schema on a shared server goes.
    if postgres.is_some() {
        scratch.remove().await;
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

/// Accuracy of language detection and sentiment on one language of a labelled set.
#[derive(Debug, Clone, Default)]
pub struct LanguageScore {
    pub lang: String,
    pub n: u64,
    pub language_correct: u64,
    /// Three-class confusion (gold labels, or mean ratings read as labels).
    pub confusion: Confusion,
    /// (gold mean rating, predicted score) where the set has ratings.
    pub ratings: Vec<(f64, f64)>,
}

impl LanguageScore {
    pub fn macro_f1(&self) -> f64 {
        self.confusion.macro_f1()
    }

    pub fn accuracy(&self) -> f64 {
        self.confusion.accuracy()
    }

    /// Pearson correlation of the score with the gold rating, where the set has ratings.
    pub fn pearson(&self) -> Option<f64> {
        pearson(&self.ratings)
    }
}

/// Pearson's r of the pairs; `None` under two pairs or without variance.
pub fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return None;
    }
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// One evaluation file's result.
#[derive(Debug, Clone, Default)]
pub struct EvalResult {
    pub languages: Vec<LanguageScore>,
    /// Texts per second through detection, sentiment and aspects, on one thread.
    pub texts_per_sec: f64,
    pub mean_chars: f64,
    /// How the languages were decided.
    pub methods: crate::pipeline::LanguageStats,
}

/// Scores a labelled CSV (`lang,text,label` with negative/neutral/positive, or a numeric
/// `mean_rating_-4_to_4` column, read as negative below -0.5 and positive above 0.5) with
/// the product's own path on one thread: language detection without a hint, then
/// sentiment and aspects in the detected language.
pub fn eval_sentiment(path: &Path, analyzer: &Analyzer) -> Result<EvalResult, BenchError> {
    use crate::model::SentimentLabel;
    let io = |source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut rdr = csv::Reader::from_path(path).map_err(|e| io(e.into()))?;
    let header = rdr.headers().map_err(|e| io(e.into()))?.clone();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(lang_col), Some(text_col)) = (col("lang"), col("text")) else {
        return Err(io(std::io::Error::other(
            "expected columns `lang` and `text`",
        )));
    };
    let label_col = col("label");
    let rating_col = col("mean_rating_-4_to_4");
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| io(e.into()))?;
        let rating = rating_col.and_then(|c| rec.get(c)?.parse::<f64>().ok());
        let gold = match (label_col, rating) {
            (Some(c), _) => SentimentLabel::parse(rec.get(c).unwrap_or("")),
            (None, Some(r)) => Some(if r < -0.5 {
                SentimentLabel::Negative
            } else if r > 0.5 {
                SentimentLabel::Positive
            } else {
                SentimentLabel::Neutral
            }),
            (None, None) => None,
        };
        if let Some(gold) = gold {
            rows.push((
                rec.get(lang_col).unwrap_or("").to_string(),
                rec.get(text_col).unwrap_or("").to_string(),
                gold,
                rating,
            ));
        }
    }
    let started = std::time::Instant::now();
    let mut by_lang: std::collections::BTreeMap<String, LanguageScore> = Default::default();
    let mut chars = 0usize;
    let mut methods = crate::pipeline::LanguageStats::default();
    for (lang, text, gold, rating) in &rows {
        chars += text.chars().count();
        let d = analyzer.detector.detect(text, None);
        match d.method {
            crate::pipeline::language::Method::Declared => methods.declared += 1,
            crate::pipeline::language::Method::Fast => methods.fast += 1,
            crate::pipeline::language::Method::Model => methods.model += 1,
        }
        let scored = analyzer.scorer.analyse(text, d.language.as_deref());
        let (predicted, score) = scored
            .map(|t| (t.sentiment.label, t.sentiment.score))
            .unwrap_or((SentimentLabel::Neutral, 0.0));
        let s = by_lang
            .entry(lang.clone())
            .or_insert_with(|| LanguageScore {
                lang: lang.clone(),
                ..Default::default()
            });
        s.n += 1;
        s.language_correct += u64::from(d.language.as_deref() == Some(lang.as_str()));
        s.confusion.add(*gold, predicted);
        if let Some(r) = rating {
            s.ratings.push((*r, score));
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(EvalResult {
        languages: by_lang.into_values().collect(),
        texts_per_sec: rows.len() as f64 / secs,
        mean_chars: chars as f64 / rows.len().max(1) as f64,
        methods,
    })
}

/// What `bench score` measured.
#[derive(Debug, Clone, Default)]
pub struct ScoreBench {
    pub texts: u64,
    pub mean_chars: f64,
    pub seconds: f64,
    pub texts_per_sec: f64,
}

/// Runs `tideline score`'s own loop (JSON in, detection, sentiment, aspects, JSON out) on
/// one thread over the texts of `files` (CSV with a `text` column) whose length is within
/// `chars`, repeated until there are at least `min_texts`.
pub fn score_throughput(
    files: &[PathBuf],
    chars: std::ops::RangeInclusive<usize>,
    min_texts: usize,
    analyzer: &Analyzer,
) -> Result<ScoreBench, BenchError> {
    let mut texts = Vec::new();
    for path in files {
        let io = |source| BenchError::Io {
            path: path.clone(),
            source,
        };
        let mut rdr = csv::Reader::from_path(path).map_err(|e| io(e.into()))?;
        let col = rdr
            .headers()
            .map_err(|e| io(e.into()))?
            .iter()
            .position(|h| h == "text")
            .ok_or_else(|| io(std::io::Error::other("expected a `text` column")))?;
        for rec in rdr.records() {
            let rec = rec.map_err(|e| io(e.into()))?;
            let t = rec.get(col).unwrap_or("");
            if chars.contains(&t.chars().count()) {
                texts.push(t.to_string());
            }
        }
    }
    if texts.is_empty() {
        return Ok(ScoreBench::default());
    }
    let mut input = Vec::new();
    let mut n = 0u64;
    let mut total_chars = 0usize;
    while (n as usize) < min_texts {
        for t in &texts {
            serde_json::to_writer(&mut input, &serde_json::json!({"id": n, "text": t}))
                .expect("JSON to memory");
            input.push(b'\n');
            n += 1;
            total_chars += t.chars().count();
        }
    }
    let started = std::time::Instant::now();
    let summary =
        crate::score::score_lines(analyzer, None, input.as_slice(), std::io::sink(), |_, _| {})
            .map_err(|source| BenchError::Io {
                path: PathBuf::from("-"),
                source,
            })?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(ScoreBench {
        texts: summary.scored,
        mean_chars: total_chars as f64 / n as f64,
        seconds,
        texts_per_sec: summary.scored as f64 / seconds.max(1e-9),
    })
}

/// What `bench identity` measured.
#[derive(Debug, Clone, Default)]
pub struct IdentityBench {
    pub people: u32,
    pub records: u64,
    /// Records with at least one usable strong identity (the pairs are counted over these).
    pub evaluated: u64,
    pub precision: f64,
    pub recall: f64,
    /// Records with no usable identity of a person (a display name, a blocked inbox) that
    /// were nevertheless attached to a customer holding other records. Must be 0.
    pub attached_without_strong_identity: u64,
    /// Wrongly joined pairs of different people who share a display name.
    pub false_pairs_same_name: u64,
    pub customers: u64,
    pub seconds: f64,
    /// Display-name link suggestions after the name pass, and how many of them join two
    /// customers of one person (their precision).
    pub name_suggestions: u64,
    pub name_suggestions_same_person: u64,
    /// Interactions whose customer the name pass changed. Must be 0: names never merge.
    pub name_merges: u64,
    pub name_pass_seconds: f64,
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Generates a world of `people` with `interactions` records, normalizes it and resolves
/// it through the store's own write path into a fresh SQLite database in `dir`, and
/// measures pairwise merge precision and recall against the truth.
pub async fn identity(
    dir: &Path,
    people: u32,
    interactions: u64,
    seed: u64,
    config: &Config,
) -> Result<IdentityBench, BenchError> {
    use crate::pipeline::normalize::{NormalizeContext, normalize};
    use std::collections::HashMap;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BenchError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let world = crate::synth::identity_world(people, interactions, seed);
    // The configured guard, plus the world's shop number as an operator would block it.
    let mut guard = config.identity.guard.clone();
    guard.block(&[crate::synth::WORLD_SHOP_PHONE.to_string()]);
    let cx = NormalizeContext {
        source: "world".into(),
        default_kind: crate::model::InteractionKind::Ticket,
        default_location: None,
        timezone: None,
        fallback_timezone: chrono_tz::UTC,
        date_formats: vec![],
        csat_scale: "1-5".into(),
        ces_scale: "1-7".into(),
        locations: crate::pipeline::LocationIndex::new(&[crate::model::Location {
            id: "berlin-mitte".into(),
            name: "Berlin Mitte".into(),
            timezone: "Europe/Berlin".into(),
            country: Some("DE".into()),
            language: Some("de".into()),
            aliases: vec![],
        }]),
        guard: Arc::new(guard),
    };
    let mut items = Vec::with_capacity(world.records.len());
    let mut truth: HashMap<String, (u32, String, bool)> = HashMap::new();
    for (rec, person) in world.records.iter().zip(&world.person) {
        if let Ok(out) = normalize(rec, &cx) {
            for n in out {
                let i = n.interaction;
                let strong = i.identities.iter().any(|id| id.kind.is_personal());
                truth.insert(
                    i.external_id.clone(),
                    (*person, i.author_name.clone().unwrap_or_default(), strong),
                );
                items.push(i);
            }
        }
    }
    let db = dir.join("identity.db");
    store::remove_database(&db).map_err(io(&db))?;
    let url = Secret::new(format!("sqlite://{}", db.display()));
    let store = store::connect(&url, &ConnectOptions::default()).await?;
    let started = std::time::Instant::now();
    let batch_rows = config.import.batch_rows.max(1);
    // Batches are taken off an iterator: splitting the vector would copy the rest of a
    // million records once per batch.
    let mut records = items.into_iter();
    loop {
        let batch: Vec<_> = records.by_ref().take(batch_rows).collect();
        if batch.is_empty() {
            break;
        }
        store
            .write_batch(crate::store::WriteBatch {
                interactions: batch,
                max_component: config.identity.max_component_identities,
                max_customers_per_identity: config.identity.max_customers_per_identity,
                ..Default::default()
            })
            .await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let before = store.fingerprint().await?;
    let started = std::time::Instant::now();
    store
        .suggest_by_name(config.identity.name_window_days as i64 * 86_400_000)
        .await?;
    let name_pass_seconds = started.elapsed().as_secs_f64();
    let stored = store.fingerprint().await?;
    let name_merges = before
        .iter()
        .zip(&stored)
        .filter(|(a, b)| a.3 != b.3)
        .count() as u64
        + before.len().abs_diff(stored.len()) as u64;
    let suggestions = store.link_suggestions().await?;
    drop(store);
    let _ = store::remove_database(&db);

    let mut r = IdentityBench {
        people,
        records: stored.len() as u64,
        seconds,
        name_merges,
        name_pass_seconds,
        ..Default::default()
    };
    for s in suggestions.iter().filter(|s| s.reason == "display_name") {
        r.name_suggestions += 1;
        let person = |side: &str| {
            s.evidence
                .as_ref()
                .and_then(|e| e[side]["external_id"].as_str())
                .and_then(|x| truth.get(x))
                .map(|t| t.0)
        };
        if let (Some(a), Some(b)) = (person("a"), person("b"))
            && a == b
        {
            r.name_suggestions_same_person += 1;
        }
    }
    let mut by_customer: HashMap<&str, u64> = HashMap::new();
    let mut by_person: HashMap<u32, u64> = HashMap::new();
    let mut by_both: HashMap<(&str, u32), u64> = HashMap::new();
    let mut members: HashMap<&str, Vec<(u32, &str)>> = HashMap::new();
    // A record without a person's identity has a customer of its own (its anchor) and
    // must share it with no other record.
    let mut records_of: HashMap<&str, u64> = HashMap::new();
    for (_, _, _, customer) in &stored {
        if let Some(c) = customer.as_deref() {
            *records_of.entry(c).or_default() += 1;
        }
    }
    for (_, external_id, _, customer) in &stored {
        let Some((person, name, strong)) = truth.get(external_id) else {
            continue;
        };
        if !strong {
            r.attached_without_strong_identity += u64::from(
                customer
                    .as_deref()
                    .is_some_and(|c| records_of.get(c).copied().unwrap_or(0) > 1),
            );
            continue;
        }
        r.evaluated += 1;
        *by_person.entry(*person).or_default() += 1;
        if let Some(c) = customer.as_deref() {
            *by_customer.entry(c).or_default() += 1;
            *by_both.entry((c, *person)).or_default() += 1;
            members.entry(c).or_default().push((*person, name.as_str()));
        }
    }
    let tp: u64 = by_both.values().map(|n| pairs(*n)).sum();
    let predicted: u64 = by_customer.values().map(|n| pairs(*n)).sum();
    let actual: u64 = by_person.values().map(|n| pairs(*n)).sum();
    r.precision = if predicted == 0 {
        1.0
    } else {
        tp as f64 / predicted as f64
    };
    r.recall = if actual == 0 {
        1.0
    } else {
        tp as f64 / actual as f64
    };
    r.customers = by_customer.len() as u64;
    for list in members.values() {
        for (k, (pa, na)) in list.iter().enumerate() {
            for (pb, nb) in &list[k + 1..] {
                if pa != pb && na == nb {
                    r.false_pairs_same_name += 1;
                }
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_world_resolves_without_name_merges() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml("", "t", &Default::default()).unwrap();
        let r = identity(dir.path(), 300, 1_200, 5, &config).await.unwrap();
        assert!(r.records >= 1_200, "{r:?}");
        assert_eq!(r.attached_without_strong_identity, 0, "{r:?}");
        assert!(r.precision >= 0.97 && r.recall >= 0.95, "{r:?}");
        assert!(r.customers >= 300, "{r:?}");
        assert_eq!(r.name_merges, 0, "{r:?}");
    }

    #[test]
    fn pearson_of_perfect_inverse_and_flat_pairs() {
        let up = [(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)];
        assert!((pearson(&up).unwrap() - 1.0).abs() < 1e-9);
        let down = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)];
        assert!((pearson(&down).unwrap() + 1.0).abs() < 1e-9);
        assert_eq!(pearson(&[(1.0, 1.0), (2.0, 1.0)]), None);
    }

    #[test]
    fn eval_reads_labels_and_mean_ratings() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(
            &a,
            "lang,text,label\nen,\"The coffee was great, friendly staff and fresh cake.\",positive\nen,\"The soup was cold and the waiter was rude to us.\",negative\n",
        )
        .unwrap();
        let b = dir.path().join("b.csv");
        std::fs::write(
            &b,
            "lang,text,mean_rating_-4_to_4\nen,\"Terrible, broken on arrival and nobody answered my emails.\",-3.1\n",
        )
        .unwrap();
        let analyzer = Analyzer::new(&["en".to_string(), "de".to_string()], 12);
        let r = eval_sentiment(&a, &analyzer).unwrap();
        assert_eq!(r.languages.len(), 1);
        assert_eq!(r.languages[0].n, 2);
        assert_eq!(r.languages[0].accuracy(), 1.0);
        let r = eval_sentiment(&b, &analyzer).unwrap();
        assert_eq!(
            r.languages[0].confusion.0[0].iter().sum::<u64>(),
            1,
            "read as negative"
        );
        assert_eq!(r.languages[0].ratings.len(), 1);
    }
}
