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

/// Zones for the report benchmark's locations: most observe daylight saving time.
pub const REPORT_ZONES: &[&str] = &[
    "Europe/Berlin",
    "Europe/Istanbul",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Europe/London",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Pacific/Auckland",
];

/// The id of report-benchmark location `k`.
pub fn report_location(k: u64) -> String {
    format!("loc-{k:03}")
}

/// `n` interactions for the report benchmark: `locations` locations, a year of time ending
/// at `now_ms`, reviews (stars, text, language, sentiment, aspects; about a third answered by
/// a reply interaction), NPS/CSAT/CES survey answers and tickets with statuses, oldest
/// first. Replies count toward `n`. Deterministic for a seed and `now_ms`.
pub fn report_world(
    n: u64,
    locations: u64,
    seed: u64,
    now_ms: i64,
) -> impl Iterator<Item = Interaction> {
    use crate::pipeline::sentiment::AspectScore;
    use crate::pipeline::sentiment::aspects::Aspect;
    const ASPECTS: [Aspect; 8] = [
        Aspect::WaitTime,
        Aspect::Staff,
        Aspect::Price,
        Aspect::Quality,
        Aspect::Cleanliness,
        Aspect::Delivery,
        Aspect::Billing,
        Aspect::App,
    ];
    const STATUSES: &[&str] = &["new", "open", "pending", "solved", "closed"];
    const YEAR_MS: i64 = 365 * 86_400_000;
    let mut rng = Rng::new(seed);
    let customers = (n / 10).max(1);
    let locations = locations.max(1);
    let step = YEAR_MS / n.max(1) as i64;
    let start = now_ms - YEAR_MS;
    let mut k = 0u64;
    let mut pending_reply: Option<Interaction> = None;
    std::iter::from_fn(move || {
        if let Some(r) = pending_reply.take() {
            return Some(r);
        }
        if k >= n {
            return None;
        }
        let id = k;
        k += 1;
        let customer = rng.below(customers);
        let at = start + id as i64 * step + rng.below(step.max(1) as u64) as i64;
        let location = report_location(rng.below(locations));
        let roll = rng.below(100);
        let (source, kind) = match roll {
            0..=54 => ("google", InteractionKind::Review),
            55..=79 => ("delighted", InteractionKind::SurveyResponse),
            _ => ("zendesk", InteractionKind::Ticket),
        };
        let text = TEXTS[rng.below(TEXTS.len() as u64) as usize];
        let score = (rng.below(2001) as f64 / 1000.0) - 1.0;
        let label = if score < -0.2 {
            SentimentLabel::Negative
        } else if score > 0.2 {
            SentimentLabel::Positive
        } else {
            SentimentLabel::Neutral
        };
        let aspects = (0..rng.below(3))
            .map(|_| AspectScore {
                aspect: ASPECTS[rng.below(ASPECTS.len() as u64) as usize],
                sentiment: Some(score),
            })
            .collect();
        let (mut nps, mut csat, mut ces) = (None, None, None);
        if kind == InteractionKind::SurveyResponse {
            match rng.below(3) {
                0 => nps = Some(rng.below(11) as i64),
                1 => {
                    let value = 1.0 + rng.below(5) as f64;
                    csat = Some(crate::model::Csat {
                        value,
                        scale: "1-5".into(),
                        satisfied: value >= 4.0,
                    });
                }
                _ => {
                    let value = 1.0 + rng.below(7) as f64;
                    ces = Some(crate::model::Ces {
                        value,
                        scale: "1-7".into(),
                        agrees: value >= 5.0,
                    });
                }
            }
        }
        let external_id = format!("r{id}");
        let mut i = Interaction {
            source: source.to_string(),
            external_id: external_id.clone(),
            kind,
            parent_external_id: None,
            occurred_at_ms: at,
            updated_at_ms: Some(at),
            location_id: Some(location.clone()),
            author_name: Some(format!("Customer {customer}")),
            identities: vec![Identity::new(IdentityKind::Email, customer_email(customer))],
            text: Some(text.to_string()),
            language: Some(LANGUAGES[rng.below(LANGUAGES.len() as u64) as usize].to_string()),
            language_confidence: Some(0.9),
            stars: (kind == InteractionKind::Review).then(|| 1.0 + rng.below(5) as f64),
            nps,
            csat,
            ces,
            status: (kind == InteractionKind::Ticket)
                .then(|| STATUSES[rng.below(STATUSES.len() as u64) as usize].to_string()),
            sentiment: Some(Sentiment {
                score,
                label,
                confidence: 0.8,
                model: "bench".into(),
            }),
            aspects,
            url: (kind == InteractionKind::Review)
                .then(|| format!("https://reviews.example/{external_id}")),
            raw: format!("{{\"id\":\"{external_id}\",\"text\":\"{text}\"}}"),
            content_hash: String::new(),
        };
        i.content_hash = crate::pipeline::normalize::content_hash(&i);
        if kind == InteractionKind::Review && k < n && rng.below(3) == 0 {
            // An owner reply, hours to days later, counted as one of the n.
            let rid = k;
            k += 1;
            let reply_at = (at + 3_600_000 * (1 + rng.below(72)) as i64).min(now_ms - 1);
            let mut r = Interaction {
                source: source.to_string(),
                external_id: format!("r{rid}"),
                kind: InteractionKind::Reply,
                parent_external_id: Some(external_id),
                occurred_at_ms: reply_at.max(at),
                updated_at_ms: Some(reply_at.max(at)),
                location_id: Some(location),
                author_name: Some("Owner".into()),
                identities: vec![],
                text: Some("Thank you for your feedback!".into()),
                language: Some("en".into()),
                language_confidence: Some(0.9),
                stars: None,
                nps: None,
                csat: None,
                ces: None,
                status: None,
                sentiment: None,
                aspects: vec![],
                url: None,
                raw: format!("{{\"id\":\"r{rid}\"}}"),
                content_hash: String::new(),
            };
            r.content_hash = crate::pipeline::normalize::content_hash(&r);
            pending_reply = Some(r);
        }
        Some(i)
    })
}
