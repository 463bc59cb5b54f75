//! Interactions as the pipeline would have stored them (normalized, identified, scored),
//! made directly, for benchmarks of the store and the API that need a million rows fast.

use super::Rng;
use crate::model::{
    Identity, IdentityKind, Interaction, InteractionKind, Sentiment, SentimentLabel,
};

const LOCATIONS: &[&str] = &[
    "berlin-mitte",
    "istanbul-kadikoy",
    "warsaw-centrum",
    "budapest-belvaros",
    "zagreb-centar",
];
const SOURCES: &[(&str, InteractionKind)] = &[
    ("zendesk", InteractionKind::Ticket),
    ("reviews", InteractionKind::Review),
    ("delighted", InteractionKind::SurveyResponse),
];
const LANGUAGES: &[&str] = &["en", "de", "tr", "pl", "hu", "hr"];
const TEXTS: &[&str] = &[
    "The coffee was cold and we waited twenty minutes for a table.",
    "Friendly staff, quick service, lovely pastries. Will come again!",
    "My order arrived late and the receipt was wrong; nobody answered my email.",
    "Okay overall. Prices went up again though.",
    "Best croissant in town, the new barista is great.",
];

/// The email of synthetic customer `c`; every interaction of that customer carries it.
pub fn customer_email(c: u64) -> String {
    format!("customer{c}@bench.example")
}

/// `n` interactions spread uniformly over `customers` people, five locations, three
/// sources and six languages, a year of time (2025), in id order. Deterministic for a seed.
pub fn interactions(n: u64, customers: u64, seed: u64) -> impl Iterator<Item = Interaction> {
    let mut rng = Rng::new(seed);
    const YEAR_MS: u64 = 365 * 86_400_000;
    const T0: i64 = 1_735_689_600_000; // 2025-01-01
    (0..n).map(move |k| {
        let customer = rng.below(customers.max(1));
        let (source, kind) = SOURCES[rng.below(SOURCES.len() as u64) as usize];
        let text = TEXTS[rng.below(TEXTS.len() as u64) as usize];
        let score = (rng.below(2001) as f64 / 1000.0) - 1.0;
        let label = if score < -0.2 {
            SentimentLabel::Negative
        } else if score > 0.2 {
            SentimentLabel::Positive
        } else {
            SentimentLabel::Neutral
        };
        let at = T0 + rng.below(YEAR_MS) as i64;
        let stars = (kind == InteractionKind::Review).then(|| 1.0 + rng.below(5) as f64);
        let nps = (kind == InteractionKind::SurveyResponse).then(|| rng.below(11) as i64);
        let mut i = Interaction {
            source: source.to_string(),
            external_id: format!("b{k}"),
            kind,
            parent_external_id: None,
            occurred_at_ms: at,
            updated_at_ms: Some(at),
            location_id: Some(LOCATIONS[rng.below(LOCATIONS.len() as u64) as usize].to_string()),
            author_name: Some(format!("Customer {customer}")),
            identities: vec![Identity::new(IdentityKind::Email, customer_email(customer))],
            text: Some(text.to_string()),
            language: Some(LANGUAGES[rng.below(LANGUAGES.len() as u64) as usize].to_string()),
            language_confidence: Some(0.9),
            stars,
            nps,
            csat: None,
            ces: None,
            status: (kind == InteractionKind::Ticket).then(|| "solved".to_string()),
            sentiment: Some(Sentiment {
                score,
                label,
                confidence: 0.8,
                model: "bench".into(),
            }),
            aspects: vec![],
            url: None,
            raw: format!(
                "{{\"id\":\"b{k}\",\"email\":\"{}\",\"text\":\"{text}\"}}",
                customer_email(customer)
            ),
            content_hash: String::new(),
        };
        i.content_hash = crate::pipeline::normalize::content_hash(&i);
        i
    })
}
