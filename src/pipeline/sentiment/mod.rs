//! Sentiment per text, in three layers:
//!
//! 1. [`lexicon::Rules`]: lexicons plus negation, contrast, intensifiers, phrases, emojis
//!    and missing diacritics, giving a rule score and the signals behind it;
//! 2. [`linear::LinearModel`]: a logistic regression over hashed word and character
//!    n-grams and those signals, trained at start-up on the project's own labelled
//!    sentences (`data/train/`), one model for every language;
//! 3. optionally a model adapted to the deployment: the same regression trained again with
//!    the deployment's own star-rated reviews and scored surveys added ([`adapt`]).
//!
//! Aspects ([`aspects`]) are tagged on the same tokens, each with the sentiment of the
//! clause that mentions it where that clause is clear.

pub mod aspects;
pub mod lexicon;
pub mod linear;

use crate::model::{Sentiment, SentimentLabel};
use aspects::{Aspect, AspectTagger};
use lexicon::{Rules, Signals};
use linear::{Example, Features, LinearModel, NEGATIVE, NEUTRAL, POSITIVE, TrainOptions};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// The built-in model's name, stored with every score it gives; bump it when the
/// lexicons, the training sentences, the features or the rules change.
pub const MODEL_VERSION: &str = "tideline-sent-0.2";

macro_rules! corpora {
    ($($code:literal),* $(,)?) => {
        &[$(
            ($code, include_str!(concat!("../../../data/train/", $code, ".tsv"))),
            ($code, include_str!(concat!("../../../data/train/", $code, "-social.tsv"))),
            ($code, include_str!(concat!("../../../data/train/", $code, "-reviews.tsv"))),
        )*]
    };
}

/// The project's labelled sentences, per language (`label<TAB>text`): feedback
/// (`<lang>.tsv`), social-media posts (`<lang>-social.tsv`) and review sentences
/// (`<lang>-reviews.tsv`).
const CORPORA: &[(&str, &str)] = corpora!(
    "en", "de", "tr", "pl", "hu", "hr", "fr", "es", "it", "nl", "pt", "ro"
);

/// Class index of a label.
pub fn class_of(label: SentimentLabel) -> usize {
    match label {
        SentimentLabel::Negative => NEGATIVE,
        SentimentLabel::Neutral => NEUTRAL,
        SentimentLabel::Positive => POSITIVE,
    }
}

fn label_of(class: usize) -> SentimentLabel {
    match class {
        NEGATIVE => SentimentLabel::Negative,
        POSITIVE => SentimentLabel::Positive,
        _ => SentimentLabel::Neutral,
    }
}

/// The built-in sentences: (language, class, text).
pub fn builtin_corpus() -> impl Iterator<Item = (&'static str, usize, &'static str)> {
    CORPORA.iter().flat_map(|(lang, text)| {
        text.lines().filter_map(move |line| {
            if line.starts_with('#') {
                return None;
            }
            let (label, text) = line.split_once('\t')?;
            let class = match label.trim() {
                "neg" => NEGATIVE,
                "neu" => NEUTRAL,
                "pos" => POSITIVE,
                _ => return None,
            };
            Some((*lang, class, text.trim()))
        })
    })
}

fn builtin_examples(rules: &Rules) -> Vec<Example> {
    let mut out: Vec<Example> = builtin_corpus()
        .map(|(lang, class, text)| Example {
            features: linear::featurize(&rules.analyse(text, Some(lang))),
            class,
            weight: 1.0,
        })
        .collect();
    // Every word of the lexicons as a one-word example, lightly weighted: the n-gram
    // weights then know the polarity of words no sentence used, and their character
    // n-grams carry it to inflected forms.
    {
        let w = 0.1;
        for lang in lexicon::languages() {
            for (word, v) in rules.lexicon(Some(lang)).entries() {
                if v.abs() >= 1.0 {
                    out.push(Example {
                        features: linear::featurize(&rules.analyse(&word, Some(lang))),
                        class: if v > 0.0 { POSITIVE } else { NEGATIVE },
                        weight: w,
                    });
                }
            }
        }
    }
    out
}

/// The lexicons and rules, loaded once per process (they are read-only).
fn shared_rules() -> Arc<Rules> {
    static RULES: OnceLock<Arc<Rules>> = OnceLock::new();
    RULES.get_or_init(|| Arc::new(Rules::new())).clone()
}

/// The built-in model, trained once per process (about a second) on first use.
fn base_model() -> Arc<LinearModel> {
    static BASE: OnceLock<Arc<LinearModel>> = OnceLock::new();
    BASE.get_or_init(|| {
        let rules = shared_rules();
        let model = LinearModel::train(&builtin_examples(&rules), TrainOptions::default());
        crate::telemetry::release_free_memory();
        Arc::new(model)
    })
    .clone()
}

/// A text's sentiment toward one aspect; `sentiment` is `None` where the text is not clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AspectScore {
    pub aspect: Aspect,
    pub sentiment: Option<f64>,
}

/// Everything the scorer says of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextScore {
    pub sentiment: Sentiment,
    pub aspects: Vec<AspectScore>,
}

/// A model adapted to one deployment, as stored.
#[derive(Debug, Clone)]
pub struct AdaptedModel {
    pub model: Arc<LinearModel>,
    /// e.g. `tideline-sent-0.2+site.3`
    pub version: String,
}

/// Scores texts; cheap to share between threads.
#[derive(Debug)]
pub struct SentimentScorer {
    rules: Arc<Rules>,
    base: Arc<LinearModel>,
    adapted: Option<AdaptedModel>,
    aspects: AspectTagger,
}

impl Default for SentimentScorer {
    fn default() -> Self {
        Self::new()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl SentimentScorer {
    pub fn new() -> Self {
        Self {
            rules: shared_rules(),
            base: base_model(),
            adapted: None,
            aspects: AspectTagger::new(),
        }
    }

    /// Uses a deployment's adapted model in place of the built-in one.
    pub fn with_adapted(mut self, adapted: Option<AdaptedModel>) -> Self {
        self.adapted = adapted;
        self
    }

    /// The version stored with the scores this scorer gives.
    pub fn version(&self) -> &str {
        self.adapted
            .as_ref()
            .map_or(MODEL_VERSION, |a| a.version.as_str())
    }

    fn model(&self) -> &LinearModel {
        self.adapted.as_ref().map_or(&self.base, |a| &a.model)
    }

    pub(crate) fn features(&self, text: &str, language: Option<&str>) -> (Signals, Features) {
        let s = self.rules.analyse(text, language);
        let f = linear::featurize(&s);
        (s, f)
    }

    /// Sentiment only. `None` for a text without a word or emoji.
    pub fn score(&self, text: &str, language: Option<&str>) -> Option<Sentiment> {
        self.analyse(text, language).map(|t| t.sentiment)
    }

    /// Sentiment and aspects. `None` for a text without a word or emoji.
    pub fn analyse(&self, text: &str, language: Option<&str>) -> Option<TextScore> {
        let (signals, features) = self.features(text, language);
        let sentiment = self.judge(&signals, &features)?;
        let aspects = self.aspect_scores(text, &signals, language, &sentiment);
        Some(TextScore { sentiment, aspects })
    }

    fn sentiment_of(&self, text: &str, language: Option<&str>) -> Option<Sentiment> {
        let (signals, features) = self.features(text, language);
        self.judge(&signals, &features)
    }

    fn judge(&self, signals: &Signals, features: &Features) -> Option<Sentiment> {
        if signals.tokens.is_empty() {
            return None;
        }
        let p = self.model().predict(features);
        let class = (0..3)
            .max_by(|a, b| p[*a].total_cmp(&p[*b]))
            .unwrap_or(NEUTRAL);
        // The label is the model's; the score also keeps the rules' sense of degree
        // ("good" < "excellent"), which class probabilities flatten, and agrees in sign
        // with the label.
        let blended = 0.5 * f64::from(p[POSITIVE] - p[NEGATIVE]) + 0.5 * signals.score;
        let score = match label_of(class) {
            SentimentLabel::Positive => blended.max(0.05),
            SentimentLabel::Negative => blended.min(-0.05),
            SentimentLabel::Neutral => blended,
        };
        Some(Sentiment {
            score: round3(score),
            label: label_of(class),
            confidence: round3(f64::from(p[class])),
            model: self.version().to_string(),
        })
    }

    /// One entry per aspect mentioned. Its sentiment is that of the clause that mentions it
    /// (the whole text when it is one clause), scored by the same rules and model, where
    /// that clause is clearly positive or negative; otherwise it stays unknown. Several
    /// mentions of one aspect average.
    fn aspect_scores(
        &self,
        text: &str,
        s: &Signals,
        language: Option<&str>,
        overall: &Sentiment,
    ) -> Vec<AspectScore> {
        let mentions = self.aspects.tag(&s.tokens, language);
        let mut out: Vec<(Aspect, f64, u32)> = Vec::new();
        let mut clause_scores: Vec<Option<Option<f64>>> = vec![None; s.clauses.len()];
        let clear = |x: &Sentiment| {
            (x.label != SentimentLabel::Neutral && x.confidence >= 0.5).then_some(x.score)
        };
        for m in mentions {
            let k = s
                .clauses
                .iter()
                .position(|c| c.start <= m.token && m.token < c.end.max(c.start + 1));
            let value = match k {
                _ if s.clauses.len() <= 1 => clear(overall),
                None => None,
                Some(k) => *clause_scores[k].get_or_insert_with(|| {
                    let c = &s.clauses[k];
                    let from = s.tokens.get(c.start).map_or(text.len(), |t| t.start);
                    let to = s.tokens.get(c.end).map_or(text.len(), |t| t.start);
                    let clause = text.get(from..to.max(from)).unwrap_or("");
                    self.sentiment_of(clause, language).as_ref().and_then(clear)
                }),
            };
            match out.iter_mut().find(|(a, _, _)| *a == m.aspect) {
                Some(entry) => {
                    if let Some(v) = value {
                        entry.1 += v;
                        entry.2 += 1;
                    }
                }
                None => out.push((m.aspect, value.unwrap_or(0.0), u32::from(value.is_some()))),
            }
        }
        out.into_iter()
            .map(|(aspect, sum, n)| AspectScore {
                aspect,
                sentiment: (n > 0).then(|| round3(sum / f64::from(n))),
            })
            .collect()
    }

    /// Adapts the model to a deployment's labelled texts; see [`adapt`].
    pub fn adapt(&self, data: &[LabelledText]) -> (LinearModel, AdaptReport) {
        adapt(&self.rules, &self.base, data)
    }
}

/// The satisfaction a customer stated alongside a text: stars 1-2 / 3 / 4-5, NPS 0-6 /
/// 7-8 / 9-10, or failing both a CSAT answer (satisfied or not). `None` without any.
pub fn label_from_rating(
    stars: Option<f64>,
    nps: Option<i64>,
    csat_satisfied: Option<bool>,
) -> Option<SentimentLabel> {
    if let Some(s) = stars {
        return Some(if s < 2.5 {
            SentimentLabel::Negative
        } else if s < 3.5 {
            SentimentLabel::Neutral
        } else {
            SentimentLabel::Positive
        });
    }
    if let Some(n) = nps {
        return Some(match n {
            ..=6 => SentimentLabel::Negative,
            7 | 8 => SentimentLabel::Neutral,
            _ => SentimentLabel::Positive,
        });
    }
    csat_satisfied.map(|ok| {
        if ok {
            SentimentLabel::Positive
        } else {
            SentimentLabel::Negative
        }
    })
}

/// A deployment text whose satisfaction is known from its stars or survey score.
#[derive(Debug, Clone)]
pub struct LabelledText {
    /// Stable key (the interaction id) that decides the held-out split.
    pub key: String,
    pub text: String,
    pub language: Option<String>,
    pub label: SentimentLabel,
}

/// Counts of (gold, predicted) classes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Confusion(pub [[u64; 3]; 3]);

impl Confusion {
    pub fn add(&mut self, gold: SentimentLabel, predicted: SentimentLabel) {
        self.0[class_of(gold)][class_of(predicted)] += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.iter().flatten().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..3).map(|k| self.0[k][k]).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Mean F1 over the classes that occur in the gold labels or the predictions.
    pub fn macro_f1(&self) -> f64 {
        let mut sum = 0.0;
        let mut classes = 0;
        for k in 0..3 {
            let tp = self.0[k][k] as f64;
            let predicted: u64 = (0..3).map(|g| self.0[g][k]).sum();
            let gold: u64 = self.0[k].iter().sum();
            if predicted == 0 && gold == 0 {
                continue;
            }
            classes += 1;
            let p = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let r = if gold > 0 { tp / gold as f64 } else { 0.0 };
            if p + r > 0.0 {
                sum += 2.0 * p * r / (p + r);
            }
        }
        if classes == 0 {
            0.0
        } else {
            sum / f64::from(classes)
        }
    }
}

/// What adapting to a deployment measured on its held-out fifth.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AdaptReport {
    pub examples: usize,
    pub trained_on: usize,
    pub held_out: usize,
    pub base_accuracy: f64,
    pub base_macro_f1: f64,
    pub adapted_accuracy: f64,
    pub adapted_macro_f1: f64,
    /// The adapted model is used only when it does at least as well as the built-in one.
    pub adopted: bool,
}

/// The smallest number of labelled texts worth adapting to; fewer leave the built-in model.
pub const MIN_ADAPT_EXAMPLES: usize = 50;

/// Trains the regression again on the built-in sentences plus four fifths of the
/// deployment's labelled texts, and measures both models on the remaining fifth (chosen
/// by a hash of each text's key, so it is the same fifth every time).
pub fn adapt(
    rules: &Rules,
    base: &LinearModel,
    data: &[LabelledText],
) -> (LinearModel, AdaptReport) {
    let mut train = builtin_examples(rules);
    let mut held_out = Vec::new();
    for d in data {
        let features = linear::featurize(&rules.analyse(&d.text, d.language.as_deref()));
        let h = linear::stable_hash(&d.key);
        if h.is_multiple_of(5) {
            held_out.push((features, d.label));
        } else {
            train.push(Example {
                features,
                class: class_of(d.label),
                // In-domain, in-language text: worth more than a generic sentence.
                weight: 2.0,
            });
        }
    }
    let mut report = AdaptReport {
        examples: data.len(),
        trained_on: data.len() - held_out.len(),
        held_out: held_out.len(),
        ..Default::default()
    };
    let model = LinearModel::train(&train, TrainOptions::default());
    let mut base_c = Confusion::default();
    let mut adapted_c = Confusion::default();
    let best = |p: [f32; 3]| {
        label_of(
            (0..3)
                .max_by(|a, b| p[*a].total_cmp(&p[*b]))
                .unwrap_or(NEUTRAL),
        )
    };
    for (f, gold) in &held_out {
        base_c.add(*gold, best(base.predict(f)));
        adapted_c.add(*gold, best(model.predict(f)));
    }
    report.base_accuracy = round3(base_c.accuracy());
    report.base_macro_f1 = round3(base_c.macro_f1());
    report.adapted_accuracy = round3(adapted_c.accuracy());
    report.adapted_macro_f1 = round3(adapted_c.macro_f1());
    report.adopted = data.len() >= MIN_ADAPT_EXAMPLES
        && report.adapted_macro_f1 >= report.base_macro_f1
        && !held_out.is_empty();
    (model, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SentimentLabel::*;

    fn label(s: &SentimentScorer, text: &str, lang: &str) -> SentimentLabel {
        s.score(text, Some(lang)).unwrap().label
    }

    #[test]
    fn feedback_patterns() {
        let s = SentimentScorer::new();
        assert_eq!(label(&s, "Great coffee, friendly staff!", "en"), Positive);
        assert_eq!(
            label(&s, "The food was great but the service ruined it.", "en"),
            Negative
        );
        assert_eq!(label(&s, "Thank you for nothing.", "en"), Negative);
        assert_eq!(label(&s, "Die Pizza war nicht schlecht.", "de"), Positive);
        assert_eq!(
            label(&s, "Das Essen war kalt und der Fahrer unhöflich.", "de"),
            Negative
        );
        assert_eq!(
            label(&s, "Dostawa spóźniona, jedzenie zimne 😡", "pl"),
            Negative
        );
        assert_eq!(label(&s, "👍👍", "en"), Positive);
        assert_eq!(label(&s, "The cold beer was perfect", "en"), Positive);
        assert_eq!(label(&s, "Cold fries, again.", "en"), Negative);
    }

    #[test]
    fn texts_too_short_to_detect_still_score() {
        let s = SentimentScorer::new();
        assert_eq!(s.score("great!", None).unwrap().label, Positive);
        assert_eq!(s.score("schrecklich", None).unwrap().label, Negative);
        assert_eq!(s.score("👎", None).unwrap().label, Negative);
    }

    #[test]
    fn missing_diacritics_still_score() {
        let s = SentimentScorer::new();
        for text in [
            "Jedzenie było zimne i niesmaczne",
            "Jedzenie bylo zimne i niesmaczne",
        ] {
            assert_eq!(label(&s, text, "pl"), Negative, "{text}");
        }
    }

    #[test]
    fn scores_carry_the_model_version_and_stay_in_range() {
        let s = SentimentScorer::new();
        let r = s.score("Absolutely wonderful!!! 😍", Some("en")).unwrap();
        assert_eq!(r.model, MODEL_VERSION);
        assert!((-1.0..=1.0).contains(&r.score) && r.score > 0.3);
        assert!((0.0..=1.0).contains(&r.confidence));
        assert!(s.score("   ...  ", Some("en")).is_none());
    }

    #[test]
    fn aspects_with_their_own_sentiment() {
        let s = SentimentScorer::new();
        let t = s
            .analyse(
                "The food was delicious but the waiter was rude and we waited an hour.",
                Some("en"),
            )
            .unwrap();
        let get = |a: Aspect| t.aspects.iter().find(|x| x.aspect == a).cloned();
        assert!(
            get(Aspect::Quality).unwrap().sentiment.unwrap() > 0.0,
            "{t:?}"
        );
        assert!(
            get(Aspect::Staff).unwrap().sentiment.unwrap() < 0.0,
            "{t:?}"
        );
        assert!(get(Aspect::WaitTime).is_some(), "{t:?}");
        // The clause is scored as a whole, so sarcasm stays sarcasm.
        let t = s
            .analyse(
                "Great, another hour of waiting. Thanks for nothing.",
                Some("en"),
            )
            .unwrap();
        let wait = t.aspects.iter().find(|a| a.aspect == Aspect::WaitTime);
        assert!(wait.unwrap().sentiment.unwrap() < 0.0, "{t:?}");
        let t = s
            .analyse("Zu teuer und die Lieferung kam zu spät.", Some("de"))
            .unwrap();
        assert!(t.aspects.iter().any(|a| a.aspect == Aspect::Price), "{t:?}");
        assert!(
            t.aspects.iter().any(|a| a.aspect == Aspect::Delivery),
            "{t:?}"
        );
    }

    #[test]
    fn macro_f1_of_perfect_and_constant_classifiers() {
        let perfect = Confusion([[2, 0, 0], [0, 2, 0], [0, 0, 2]]);
        assert!((perfect.macro_f1() - 1.0).abs() < 1e-9);
        let constant = Confusion([[0, 0, 2], [0, 0, 2], [0, 0, 2]]);
        assert!((constant.macro_f1() - 0.5 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn adapting_learns_a_deployments_words() {
        let s = SentimentScorer::new();
        // A house word the built-in model cannot know: "zorbly" means the order was lost.
        let mut data = Vec::new();
        for i in 0..200 {
            let (text, label) = match i % 3 {
                0 => (format!("zorbly again, order {i}"), Negative),
                1 => (format!("order {i} picked up at the counter"), Neutral),
                _ => (format!("order {i} was splendid as always"), Positive),
            };
            data.push(LabelledText {
                key: format!("int_{i}"),
                text,
                language: Some("en".into()),
                label,
            });
        }
        let (model, report) = s.adapt(&data);
        assert!(report.adopted, "{report:?}");
        assert!(report.adapted_macro_f1 > 0.9, "{report:?}");
        assert_eq!(report.trained_on + report.held_out, 200);
        let adapted = SentimentScorer::new().with_adapted(Some(AdaptedModel {
            model: Arc::new(model),
            version: format!("{MODEL_VERSION}+site.1"),
        }));
        let r = adapted.score("zorbly, order 9999", Some("en")).unwrap();
        assert_eq!(r.label, Negative);
        assert_eq!(r.model, "tideline-sent-0.2+site.1");
    }
}
