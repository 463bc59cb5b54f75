//! The report's own figures, computed from [`ReportRow`]s without IO: review volume,
//! response rate and time, sentiment per language and channel, topics moving in negative
//! and positive feedback, and the reviews still waiting for an answer.

use crate::pipeline::indicators::{Durations, Mean, Share, durations};
use crate::store::ReportRow;
use serde::Serialize;
use std::collections::BTreeMap;

/// Sentiment below this counts as negative for "waiting for an answer" when a review has
/// no stars.
const NEGATIVE_SENTIMENT: f64 = -0.25;

/// Reviews of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewStats {
    pub reviews: u64,
    /// Reviews answered (by a reply interaction), among the period's reviews.
    pub responded: Share,
    /// Hours from a review to its first reply, for the answered ones.
    pub response_time: Durations,
}

pub fn review_stats(rows: &[&ReportRow], min: u64) -> ReviewStats {
    let reviews: Vec<&&ReportRow> = rows.iter().filter(|r| r.kind == "review").collect();
    let minutes: Vec<f64> = reviews
        .iter()
        .filter_map(|r| {
            r.replied_at_ms
                .map(|at| (at - r.occurred_at_ms).max(0) as f64 / 60_000.0)
        })
        .collect();
    ReviewStats {
        reviews: reviews.len() as u64,
        responded: Share::new(minutes.len() as u64, reviews.len() as u64, min),
        response_time: durations(&minutes, min),
    }
}

/// Sentiment of one group (a language or a channel) in both periods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentimentGroup {
    pub key: String,
    pub current: SentimentStats,
    pub previous: SentimentStats,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentimentStats {
    /// Mean score in [-1, 1].
    pub mean: Mean,
    /// Texts labelled negative, among the scored ones.
    pub negative: Share,
}

fn sentiment_stats(rows: &[&&ReportRow], min: u64) -> SentimentStats {
    let scores: Vec<f64> = rows.iter().filter_map(|r| r.sentiment).collect();
    let negative = rows
        .iter()
        .filter(|r| r.sentiment.is_some() && r.sentiment_label.as_deref() == Some("negative"))
        .count() as u64;
    SentimentStats {
        mean: Mean::of(&scores, min),
        negative: Share::new(negative, scores.len() as u64, min),
    }
}

/// Sentiment per key (e.g. language, channel), groups with a scored text in either period,
/// largest current group first.
pub fn sentiment_by(
    current: &[&ReportRow],
    previous: &[&ReportRow],
    key: impl Fn(&ReportRow) -> Option<String>,
    min: u64,
) -> Vec<SentimentGroup> {
    let mut keys: BTreeMap<String, (Vec<&&ReportRow>, Vec<&&ReportRow>)> = BTreeMap::new();
    for r in current.iter().filter(|r| r.sentiment.is_some()) {
        if let Some(k) = key(r) {
            keys.entry(k).or_default().0.push(r);
        }
    }
    for r in previous.iter().filter(|r| r.sentiment.is_some()) {
        if let Some(k) = key(r) {
            keys.entry(k).or_default().1.push(r);
        }
    }
    let mut out: Vec<SentimentGroup> = keys
        .into_iter()
        .map(|(key, (c, p))| SentimentGroup {
            key,
            current: sentiment_stats(&c, min),
            previous: sentiment_stats(&p, min),
        })
        .collect();
    out.sort_by(|a, b| {
        b.current
            .mean
            .n
            .cmp(&a.current.mean.n)
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

/// How often a topic came up with one tone, in both periods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicMove {
    pub topic: String,
    pub current: u64,
    pub previous: u64,
    /// Its share of the period's texts with that tone, in percent.
    pub current_pct: f64,
    pub previous_pct: f64,
}

/// Topics of negative (or positive) feedback, the ones that rose most first. A topic
/// counts in a text when the text mentions it with that tone (the aspect's own sentiment,
/// else the text's label).
pub fn topics_rising(
    current: &[&ReportRow],
    previous: &[&ReportRow],
    negative: bool,
) -> Vec<TopicMove> {
    let count = |rows: &[&ReportRow]| {
        let mut by: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut texts = 0u64;
        for r in rows {
            let label = r.sentiment_label.as_deref();
            let mut counted = false;
            for a in &r.aspects {
                let tone_negative = match a.sentiment {
                    Some(s) => s < 0.0,
                    None => label == Some("negative"),
                };
                let tone_positive = match a.sentiment {
                    Some(s) => s > 0.0,
                    None => label == Some("positive"),
                };
                if (negative && tone_negative) || (!negative && tone_positive) {
                    *by.entry(a.aspect.as_str()).or_default() += 1;
                    counted = true;
                }
            }
            let tone = if negative { "negative" } else { "positive" };
            if counted || label == Some(tone) {
                texts += 1;
            }
        }
        (by, texts)
    };
    let (cur, cur_n) = count(current);
    let (prev, prev_n) = count(previous);
    let pct = |k: u64, n: u64| {
        if n == 0 {
            0.0
        } else {
            k as f64 * 100.0 / n as f64
        }
    };
    let mut topics: Vec<TopicMove> = cur
        .keys()
        .chain(prev.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|t| {
            let (c, p) = (
                cur.get(t).copied().unwrap_or(0),
                prev.get(t).copied().unwrap_or(0),
            );
            TopicMove {
                topic: t.to_string(),
                current: c,
                previous: p,
                current_pct: pct(c, cur_n),
                previous_pct: pct(p, prev_n),
            }
        })
        .collect();
    topics.sort_by(|a, b| {
        (b.current as i64 - b.previous as i64)
            .cmp(&(a.current as i64 - a.previous as i64))
            .then_with(|| b.current.cmp(&a.current))
            .then_with(|| a.topic.cmp(&b.topic))
    });
    topics
}

/// A review nobody has answered yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waiting {
    pub id: i64,
    pub source: String,
    pub external_id: String,
    pub occurred_at_ms: i64,
    pub stars: Option<f64>,
    pub sentiment: Option<f64>,
    pub author_name: Option<String>,
    pub language: Option<String>,
    pub text: Option<String>,
    pub url: Option<String>,
    /// At most 2 stars, or no stars and a negative text.
    pub negative: bool,
}

/// Reviews without a reply, negative ones first, then the oldest (longest waiting).
pub fn awaiting_answer(rows: &[&ReportRow], limit: usize) -> (u64, Vec<Waiting>) {
    let mut open: Vec<Waiting> = rows
        .iter()
        .filter(|r| r.kind == "review" && r.replied_at_ms.is_none())
        .map(|r| Waiting {
            id: r.id,
            source: r.source.clone(),
            external_id: r.external_id.clone(),
            occurred_at_ms: r.occurred_at_ms,
            stars: r.stars,
            sentiment: r.sentiment,
            author_name: r.author_name.clone(),
            language: r.language.clone(),
            text: r.text.clone(),
            url: r.url.clone(),
            negative: match r.stars {
                Some(s) => s <= 2.0,
                None => r.sentiment.is_some_and(|s| s < NEGATIVE_SENTIMENT),
            },
        })
        .collect();
    let total = open.len() as u64;
    open.sort_by(|a, b| {
        b.negative
            .cmp(&a.negative)
            .then_with(|| a.occurred_at_ms.cmp(&b.occurred_at_ms))
            .then_with(|| a.id.cmp(&b.id))
    });
    open.truncate(limit);
    (total, open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sentiment::AspectScore;
    use crate::pipeline::sentiment::aspects::Aspect;

    fn row(id: i64, kind: &str, at_h: i64, stars: Option<f64>, reply_h: Option<i64>) -> ReportRow {
        ReportRow {
            id,
            source: "google".into(),
            external_id: format!("r{id}"),
            kind: kind.into(),
            occurred_at_ms: at_h * 3_600_000,
            location_id: Some("mitte".into()),
            author_name: None,
            text: Some("x".into()),
            language: Some("de".into()),
            sentiment: None,
            sentiment_label: None,
            stars,
            url: None,
            aspects: Vec::new(),
            replied_at_ms: reply_h.map(|h| h * 3_600_000),
        }
    }

    #[test]
    fn response_rate_and_median_time_by_hand() {
        let rows = [
            row(1, "review", 0, Some(5.0), Some(2)),
            row(2, "review", 10, Some(1.0), Some(14)),
            row(3, "review", 20, Some(2.0), None),
            row(4, "review", 30, Some(4.0), Some(36)),
            row(5, "ticket", 0, None, Some(1)),
        ];
        let refs: Vec<&ReportRow> = rows.iter().collect();
        let s = review_stats(&refs, 3);
        assert_eq!(s.reviews, 4);
        assert_eq!((s.responded.count, s.responded.n), (3, 4));
        assert_eq!(s.responded.pct, Some(75.0));
        // 2 h, 4 h, 6 h -> median 4 h.
        assert_eq!(s.response_time.median_hours, Some(4.0));
        assert!(!s.response_time.small_sample);
        let (total, waiting) = awaiting_answer(&refs, 10);
        assert_eq!(total, 1);
        assert_eq!(waiting[0].external_id, "r3");
        assert!(waiting[0].negative);
    }

    #[test]
    fn waiting_lists_negative_reviews_first_then_the_oldest() {
        let rows = [
            row(1, "review", 5, Some(5.0), None),
            row(2, "review", 9, Some(1.0), None),
            row(3, "review", 1, Some(4.0), None),
            row(4, "review", 7, Some(2.0), None),
        ];
        let refs: Vec<&ReportRow> = rows.iter().collect();
        let (total, w) = awaiting_answer(&refs, 3);
        assert_eq!(total, 4);
        let ids: Vec<i64> = w.iter().map(|w| w.id).collect();
        assert_eq!(ids, [4, 2, 3]);
    }

    #[test]
    fn sentiment_per_language_and_rising_topics() {
        let mut cur = Vec::new();
        for i in 0..4 {
            let mut r = row(i, "review", i, None, None);
            r.sentiment = Some(-0.5);
            r.sentiment_label = Some("negative".into());
            r.aspects = vec![AspectScore {
                aspect: Aspect::WaitTime,
                sentiment: Some(-0.6),
            }];
            cur.push(r);
        }
        let mut en = row(9, "review", 9, None, None);
        en.language = Some("en".into());
        en.sentiment = Some(0.8);
        en.sentiment_label = Some("positive".into());
        cur.push(en);
        let mut prev = Vec::new();
        for i in 10..12 {
            let mut r = row(i, "review", i, None, None);
            r.sentiment = Some(-0.4);
            r.sentiment_label = Some("negative".into());
            r.aspects = vec![AspectScore {
                aspect: Aspect::Staff,
                sentiment: None,
            }];
            prev.push(r);
        }
        let c: Vec<&ReportRow> = cur.iter().collect();
        let p: Vec<&ReportRow> = prev.iter().collect();
        let by_lang = sentiment_by(&c, &p, |r| r.language.clone(), 3);
        assert_eq!(by_lang[0].key, "de");
        assert_eq!(by_lang[0].current.mean.value, Some(-0.5));
        assert_eq!(by_lang[0].current.negative.count, 4);
        assert!(by_lang[0].previous.mean.small_sample, "2 < 3");
        assert_eq!(by_lang[1].key, "en");
        let neg = topics_rising(&c, &p, true);
        assert_eq!(neg[0].topic, "wait_time");
        assert_eq!((neg[0].current, neg[0].previous), (4, 0));
        assert_eq!(neg[0].current_pct, 100.0);
        assert_eq!(neg.last().unwrap().topic, "staff");
        assert_eq!(neg.last().unwrap().previous, 2);
        assert!(topics_rising(&c, &p, false).is_empty());
    }
}
