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
            store::url_in_schema(server, &schema)
        }
        None => {
            let db = dir.join("bench.db");
            store::remove_database(&db).map_err(io(&db))?;
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

/// Accuracy of language detection and sentiment on one language of a labelled set.
#[derive(Debug, Clone, Default)]
pub struct LanguageScore {
    pub lang: String,
    pub n: u64,
    pub language_correct: u64,
    pub sentiment_correct: u64,
    /// [gold][predicted] over negative, neutral, positive.
    pub confusion: [[u64; 3]; 3],
}

impl LanguageScore {
    /// Macro-averaged F1 over the three labels.
    pub fn macro_f1(&self) -> f64 {
        let mut sum = 0.0;
        for k in 0..3 {
            let tp = self.confusion[k][k] as f64;
            let predicted: u64 = (0..3).map(|g| self.confusion[g][k]).sum();
            let gold: u64 = self.confusion[k].iter().sum();
            let p = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let r = if gold > 0 { tp / gold as f64 } else { 0.0 };
            sum += if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
        }
        sum / 3.0
    }
}

fn label_index(l: crate::model::SentimentLabel) -> usize {
    match l {
        crate::model::SentimentLabel::Negative => 0,
        crate::model::SentimentLabel::Neutral => 1,
        crate::model::SentimentLabel::Positive => 2,
    }
}

/// Scores a labelled CSV (`lang,text,label` with negative/neutral/positive, or a numeric
/// `mean_rating_-4_to_4` column, read as negative below -0.5 and positive above 0.5) with
/// the product's own path: language detection without a hint, then sentiment in the
/// detected language. Returns one score per language and the texts per second.
pub fn eval_sentiment(
    path: &Path,
    analyzer: &Analyzer,
) -> Result<(Vec<LanguageScore>, f64), BenchError> {
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
        let gold = match (label_col, rating_col) {
            (Some(c), _) => SentimentLabel::parse(rec.get(c).unwrap_or("")),
            (None, Some(c)) => rec.get(c).and_then(|v| v.parse::<f64>().ok()).map(|r| {
                if r < -0.5 {
                    SentimentLabel::Negative
                } else if r > 0.5 {
                    SentimentLabel::Positive
                } else {
                    SentimentLabel::Neutral
                }
            }),
            (None, None) => None,
        };
        if let Some(gold) = gold {
            rows.push((
                rec.get(lang_col).unwrap_or("").to_string(),
                rec.get(text_col).unwrap_or("").to_string(),
                gold,
            ));
        }
    }
    let started = std::time::Instant::now();
    let mut by_lang: std::collections::BTreeMap<String, LanguageScore> = Default::default();
    for (lang, text, gold) in &rows {
        let d = analyzer.detector.detect(text, None);
        let predicted = analyzer
            .scorer
            .score(text, d.language.as_deref())
            .map(|s| s.label)
            .unwrap_or(SentimentLabel::Neutral);
        let s = by_lang
            .entry(lang.clone())
            .or_insert_with(|| LanguageScore {
                lang: lang.clone(),
                ..Default::default()
            });
        s.n += 1;
        s.language_correct += u64::from(d.language.as_deref() == Some(lang.as_str()));
        s.sentiment_correct += u64::from(predicted == *gold);
        s.confusion[label_index(*gold)][label_index(predicted)] += 1;
    }
    let rate = rows.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok((by_lang.into_values().collect(), rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_of_a_perfect_and_a_constant_classifier() {
        let perfect = LanguageScore {
            confusion: [[2, 0, 0], [0, 2, 0], [0, 0, 2]],
            ..Default::default()
        };
        assert!((perfect.macro_f1() - 1.0).abs() < 1e-9);
        // Always "positive": F1 of positive = 2*(1/3)*1/(1/3+1) = 0.5, others 0.
        let constant = LanguageScore {
            confusion: [[0, 0, 2], [0, 0, 2], [0, 0, 2]],
            ..Default::default()
        };
        assert!((constant.macro_f1() - 0.5 / 3.0).abs() < 1e-9);
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
        let (scores, _) = eval_sentiment(&a, &analyzer).unwrap();
        assert_eq!(scores.len(), 1);
        assert_eq!((scores[0].n, scores[0].sentiment_correct), (2, 2));
        let (scores, _) = eval_sentiment(&b, &analyzer).unwrap();
        assert_eq!(
            scores[0].confusion[0].iter().sum::<u64>(),
            1,
            "read as negative"
        );
    }
}
