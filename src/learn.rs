//! The runner for learning from the deployment's own data: collects texts that came with
//! stars, NPS or CSAT, adapts the sentiment model to them, records the run with its
//! held-out accuracy, and re-scores stored texts with the model in use.
//!
//! The pure part (features, training, measuring) is `pipeline::sentiment`; this module
//! only moves data between the store and it.

use crate::pipeline::Analyzer;
use crate::pipeline::sentiment::{
    self, AdaptReport, AdaptedModel, LabelledText, MODEL_VERSION, label_from_rating,
    linear::{LinearModel, ModelError},
};
use crate::store::{Rescore, SentimentModelRecord, Store, StoreError};
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sentiment model `{version}`: {source}")]
    Model {
        version: String,
        #[source]
        source: ModelError,
    },
    #[error("the training thread failed: {0}")]
    Worker(String),
}

/// At most this many rated texts (the newest) take part in one adaptation.
pub const MAX_ADAPT_EXAMPLES: i64 = 200_000;

/// The adopted model of this deployment, if there is one.
pub async fn adopted_model(store: &dyn Store) -> Result<Option<AdaptedModel>, LearnError> {
    let Some(rec) = store.adopted_sentiment_model().await? else {
        return Ok(None);
    };
    let model = LinearModel::from_bytes(&rec.weights).map_err(|source| LearnError::Model {
        version: rec.version.clone(),
        source,
    })?;
    Ok(Some(AdaptedModel {
        model: Arc::new(model),
        version: rec.version,
    }))
}

/// An analyzer that scores with the deployment's adopted model where there is one.
pub async fn analyzer_for(
    store: &dyn Store,
    config: &crate::config::PipelineConfig,
) -> Result<Analyzer, LearnError> {
    let adopted = adopted_model(store).await?;
    Ok(Analyzer::from_config(config).with_adapted(adopted))
}

/// What one training run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    pub version: String,
    #[serde(flatten)]
    pub report: AdaptReport,
    /// Stored texts scored again with the model now in use.
    pub rescored: u64,
}

/// Adapts the model to the deployment's rated texts and records the run. When the adapted
/// model does at least as well as the built-in one on the held-out fifth, it is adopted
/// and every stored text is scored again with it.
pub async fn train(
    store: &dyn Store,
    config: &crate::config::PipelineConfig,
    now_ms: i64,
) -> Result<TrainOutcome, LearnError> {
    let rated = store.rated_texts(MAX_ADAPT_EXAMPLES).await?;
    let data: Vec<LabelledText> = rated
        .into_iter()
        .filter_map(|r| {
            let label = label_from_rating(r.stars, r.nps, r.csat_satisfied)?;
            Some(LabelledText {
                key: r.id.to_string(),
                text: r.text,
                language: r.language,
                label,
            })
        })
        .collect();
    // Training is CPU work for seconds: keep it off the async workers.
    let (model, report) =
        tokio::task::spawn_blocking(move || sentiment::SentimentScorer::new().adapt(&data))
            .await
            .map_err(|e| LearnError::Worker(e.to_string()))?;
    let stamp = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%S");
    let version = format!("{MODEL_VERSION}+site.{stamp}");
    store
        .save_sentiment_model(&SentimentModelRecord {
            id: 0,
            version: version.clone(),
            base_version: MODEL_VERSION.to_string(),
            trained_at_ms: now_ms,
            report: report.clone(),
            weights: model.to_bytes(),
        })
        .await?;
    let analyzer = Arc::new(analyzer_for(store, config).await?);
    let rescored = rescore(store, analyzer).await?;
    Ok(TrainOutcome {
        version,
        report,
        rescored,
    })
}

/// Scores again every stored text not scored by the analyzer's model, in pages.
pub async fn rescore(store: &dyn Store, analyzer: Arc<Analyzer>) -> Result<u64, LearnError> {
    let version = analyzer.scorer.version().to_string();
    let mut after = 0;
    let mut total = 0;
    loop {
        let page = store.texts_to_rescore(&version, after, 2_000).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.0;
        let analyzer = analyzer.clone();
        let scores: Vec<Rescore> = tokio::task::spawn_blocking(move || {
            page.iter()
                .map(|(id, text, language)| {
                    let t = analyzer.scorer.analyse(text, language.as_deref());
                    Rescore {
                        id: *id,
                        sentiment: t.as_ref().map(|t| t.sentiment.clone()),
                        aspects: t.map(|t| t.aspects).unwrap_or_default(),
                    }
                })
                .collect()
        })
        .await
        .map_err(|e| LearnError::Worker(e.to_string()))?;
        total += store.rescore(&scores).await?;
    }
    Ok(total)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The text `tideline sentiment train` prints.
pub fn render_outcome(o: &TrainOutcome) -> String {
    let r = &o.report;
    let mut s = format!(
        "trained {} on {} rated texts ({} held out)\n",
        o.version, r.trained_on, r.held_out
    );
    s += &format!(
        "held-out accuracy: built-in {} (macro-F1 {:.3}), adapted {} (macro-F1 {:.3})\n",
        pct(r.base_accuracy),
        r.base_macro_f1,
        pct(r.adapted_accuracy),
        r.adapted_macro_f1
    );
    if r.adopted {
        s += &format!("adopted: stored texts re-scored: {}\n", o.rescored);
    } else if r.examples < sentiment::MIN_ADAPT_EXAMPLES {
        s += &format!(
            "not adopted: {} rated texts, at least {} are needed; the built-in model stays in use\n",
            r.examples,
            sentiment::MIN_ADAPT_EXAMPLES
        );
    } else {
        s += "not adopted: it did worse than the model in use on the held-out texts\n";
    }
    s
}

/// The text `tideline sentiment status` prints.
pub fn render_status(active: Option<&str>, runs: &[SentimentModelRecord]) -> String {
    let mut s = format!("model in use: {}\n", active.unwrap_or(MODEL_VERSION));
    if runs.is_empty() {
        s += "no training runs yet; `tideline sentiment train` adapts the model to your rated texts\n";
        return s;
    }
    s += &format!(
        "{:<42} {:>8} {:>9} {:>9} {:>9} {:>9}  adopted\n",
        "run", "texts", "held out", "built-in", "adapted", "F1 gain"
    );
    for m in runs {
        let r = &m.report;
        s += &format!(
            "{:<42} {:>8} {:>9} {:>9} {:>9} {:>+9.3}  {}\n",
            m.version,
            r.examples,
            r.held_out,
            pct(r.base_accuracy),
            pct(r.adapted_accuracy),
            r.adapted_macro_f1 - r.base_macro_f1,
            if r.adopted { "yes" } else { "no" }
        );
    }
    s
}
