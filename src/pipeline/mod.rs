//! The pure pipeline: normalize -> identify -> detect language -> score.
//!
//! Nothing here does IO or reads a clock: the same records in give the same interactions
//! out. Connectors feed it [`SourceRecord`]s; the runner stores what it returns.

pub mod detect;
pub mod identify;
pub mod indicators;
pub mod language;
pub mod normalize;
pub mod sentiment;
pub mod weak;

use crate::model::Interaction;
use language::{LanguageDetector, Method};
pub use normalize::{Field, LocationIndex, NormalizeContext, RowError, SourceRecord};
use sentiment::SentimentScorer;

/// Counts of how languages were decided, for measurement and the import report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LanguageStats {
    pub declared: u64,
    pub fast: u64,
    pub model: u64,
}

/// The output of one batch: interactions ready to store and rows to quarantine.
#[derive(Debug, Default)]
pub struct Processed {
    pub interactions: Vec<Interaction>,
    pub rejects: Vec<RowError>,
    pub languages: LanguageStats,
    /// Emails or phones that could not be read as identities (kept in the raw records).
    pub unreadable_identities: u64,
}

/// Language detection and sentiment, built once and shared by every batch.
#[derive(Debug)]
pub struct Analyzer {
    pub detector: LanguageDetector,
    pub scorer: SentimentScorer,
}

impl Analyzer {
    pub fn from_config(c: &crate::config::PipelineConfig) -> Self {
        Self::new(&c.languages, c.min_detect_chars)
    }

    pub fn new(languages: &[String], min_detect_chars: usize) -> Self {
        Self {
            detector: LanguageDetector::new(languages, min_detect_chars),
            scorer: SentimentScorer::new(),
        }
    }

    /// Scores with a deployment's adapted model, where there is one.
    pub fn with_adapted(self, adapted: Option<sentiment::AdaptedModel>) -> Self {
        Self {
            detector: self.detector,
            scorer: self.scorer.with_adapted(adapted),
        }
    }

    /// Normalizes and analyses a batch. Uses the machine's cores for the analysis, which
    /// dominates the cost; the order of the output follows the input.
    pub fn process(&self, records: &[SourceRecord], cx: &NormalizeContext) -> Processed {
        let mut out = Processed::default();
        let mut work = Vec::with_capacity(records.len());
        for rec in records {
            match normalize::normalize(rec, cx) {
                Ok(items) => {
                    out.unreadable_identities += items
                        .iter()
                        .map(|n| u64::from(n.unreadable_identities))
                        .sum::<u64>();
                    work.extend(items)
                }
                Err(e) => out.rejects.push(*e),
            }
        }
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        let chunk = work.len().div_ceil(threads).max(64);
        let mut parts = Vec::new();
        while work.len() > chunk {
            let rest = work.split_off(chunk);
            parts.push(std::mem::replace(&mut work, rest));
        }
        parts.push(work);
        let results: Vec<(Vec<Interaction>, LanguageStats)> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| s.spawn(move || self.analyse(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("analysis does not panic"))
                .collect()
        });
        for (items, stats) in results {
            out.interactions.extend(items);
            out.languages.declared += stats.declared;
            out.languages.fast += stats.fast;
            out.languages.model += stats.model;
        }
        out
    }

    fn analyse(&self, part: Vec<normalize::Normalized>) -> (Vec<Interaction>, LanguageStats) {
        let mut stats = LanguageStats::default();
        let items = part
            .into_iter()
            .map(|n| {
                let mut i = n.interaction;
                if let Some(text) = i.text.as_deref() {
                    let d = self.detector.detect(text, n.language_hint.as_deref());
                    match d.method {
                        Method::Declared => stats.declared += 1,
                        Method::Fast => stats.fast += 1,
                        Method::Model => stats.model += 1,
                    }
                    if let Some(t) = self.scorer.analyse(text, d.language.as_deref()) {
                        i.sentiment = Some(t.sentiment);
                        i.aspects = t.aspects;
                    }
                    i.language = d.language;
                    i.language_confidence = d.confidence;
                }
                i
            })
            .collect();
        (items, stats)
    }
}
