//! The report as CSV: one row per location and metric, with the previous period's value,
//! both sample sizes and the small-sample flag.
//!
//! Safe to open in a spreadsheet: a text cell that starts with `=`, `+`, `-`, `@`, a tab
//! or a carriage return (a formula to Excel, LibreOffice and Google Sheets) is written
//! with a leading `'`, so it shows as text. Numbers are written as numbers.

use super::{LocationReport, Report};
use crate::pipeline::indicators::{Durations, Mean, Share};

const HEADER: [&str; 11] = [
    "location_id",
    "location",
    "period_from",
    "period_until",
    "metric",
    "value",
    "previous",
    "n",
    "previous_n",
    "small_sample",
    "note",
];

/// A text cell that a spreadsheet cannot read as a formula.
pub fn safe_text(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

struct Metric {
    name: String,
    value: Option<f64>,
    previous: Option<f64>,
    n: u64,
    previous_n: u64,
    small: bool,
    /// Text for the rows that need it (a competitor's name and fetch time, or why it is
    /// unavailable).
    note: String,
}

fn mean(name: &str, c: &Mean, p: &Mean) -> Metric {
    Metric {
        name: name.into(),
        value: c.value,
        previous: p.value,
        n: c.n,
        previous_n: p.n,
        small: c.small_sample,
        note: String::new(),
    }
}

fn share(name: &str, c: &Share, p: &Share) -> Metric {
    Metric {
        name: name.into(),
        value: c.pct,
        previous: p.pct,
        n: c.n,
        previous_n: p.n,
        small: c.small_sample,
        note: String::new(),
    }
}

fn median(name: &str, c: &Durations, p: &Durations) -> Metric {
    Metric {
        name: name.into(),
        value: c.median_hours,
        previous: p.median_hours,
        n: c.n,
        previous_n: p.n,
        small: c.small_sample,
        note: String::new(),
    }
}

fn count(name: &str, c: u64, p: u64) -> Metric {
    Metric {
        name: name.into(),
        value: Some(c as f64),
        previous: Some(p as f64),
        n: c,
        previous_n: p,
        small: false,
        note: String::new(),
    }
}

fn metrics(l: &LocationReport) -> Vec<Metric> {
    let (c, p) = (&l.indicators.current, &l.indicators.previous);
    let mut m = vec![
        Metric {
            name: "composite_index".into(),
            value: c.composite.value,
            previous: p.composite.value,
            n: c.interactions,
            previous_n: p.interactions,
            small: c.composite.value.is_none(),
            note: String::new(),
        },
        mean("stars_mean", &c.stars.mean, &p.stars.mean),
    ];
    for (i, (a, b)) in c
        .stars
        .distribution
        .iter()
        .zip(p.stars.distribution)
        .enumerate()
    {
        m.push(count(&format!("stars_{}", i + 1), *a, b));
    }
    m.push(count(
        "reviews",
        l.reviews.current.reviews,
        l.reviews.previous.reviews,
    ));
    m.push(share(
        "review_response_rate_pct",
        &l.reviews.current.responded,
        &l.reviews.previous.responded,
    ));
    m.push(median(
        "review_response_median_hours",
        &l.reviews.current.response_time,
        &l.reviews.previous.response_time,
    ));
    m.push(Metric {
        name: "nps".into(),
        value: c.nps.value,
        previous: p.nps.value,
        n: c.nps.n,
        previous_n: p.nps.n,
        small: c.nps.small_sample,
        note: String::new(),
    });
    m.push(share(
        "csat_satisfied_pct",
        &c.csat.satisfied_pct,
        &p.csat.satisfied_pct,
    ));
    m.push(share("ces_agree_pct", &c.ces.agree_pct, &p.ces.agree_pct));
    m.push(count("tickets", c.support.tickets, p.support.tickets));
    m.push(median(
        "first_reply_median_hours",
        &c.support.first_reply,
        &p.support.first_reply,
    ));
    m.push(median(
        "resolution_median_hours",
        &c.support.resolution,
        &p.support.resolution,
    ));
    for g in &l.sentiment_by_language {
        m.push(mean(
            &format!("sentiment_mean:language={}", g.key),
            &g.current.mean,
            &g.previous.mean,
        ));
    }
    for g in &l.sentiment_by_channel {
        m.push(mean(
            &format!("sentiment_mean:channel={}", g.key),
            &g.current.mean,
            &g.previous.mean,
        ));
    }
    for t in &l.topics_rising_negative {
        m.push(count(
            &format!("negative_topic:{}", t.topic),
            t.current,
            t.previous,
        ));
    }
    for t in &l.topics_rising_positive {
        m.push(count(
            &format!("positive_topic:{}", t.topic),
            t.current,
            t.previous,
        ));
    }
    m.push(count("changes", l.changes.len() as u64, 0));
    m.push(count("reviews_waiting_for_answer", l.waiting_total, 0));
    // Competitors: Google's figures (all time) as fetched for this report; `n` of a
    // rating is its count of ratings.
    for p in l.competitors.iter().flat_map(|c| &c.places) {
        let note = match (&p.unavailable, &p.fetched_at) {
            (Some(reason), _) => format!("{}: unavailable: {reason}", p.name),
            (None, at) => format!(
                "{}: Google, fetched at {}",
                p.name,
                at.as_deref().unwrap_or("")
            ),
        };
        let n = p.reviews.unwrap_or(0);
        m.push(Metric {
            name: format!("competitor_rating:{}", p.place_id),
            value: p.rating,
            previous: None,
            n,
            previous_n: 0,
            small: false,
            note: note.clone(),
        });
        m.push(Metric {
            name: format!("competitor_reviews:{}", p.place_id),
            value: p.reviews.map(|r| r as f64),
            previous: None,
            n,
            previous_n: 0,
            small: false,
            note,
        });
    }
    m
}

fn number(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let r = (x * 1000.0).round() / 1000.0;
            if r == r.trunc() {
                format!("{}", r as i64)
            } else {
                format!("{r}")
            }
        }
        _ => String::new(),
    }
}

/// The whole report as CSV text.
pub fn render(r: &Report) -> Result<String, ::csv::Error> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER)?;
    for l in &r.locations {
        let g = &l.indicators;
        let id = safe_text(g.location_id.as_deref().unwrap_or(""));
        let name = safe_text(&g.name);
        for m in metrics(l) {
            w.write_record([
                id.as_str(),
                name.as_str(),
                &g.period.from.to_string(),
                &g.period.until.to_string(),
                &safe_text(&m.name),
                &number(m.value),
                &number(m.previous),
                &m.n.to_string(),
                &m.previous_n.to_string(),
                if m.small { "true" } else { "false" },
                &safe_text(&m.note),
            ])?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ::csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text() {
        for hostile in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(safe_text(hostile).starts_with('\''), "{hostile:?}");
        }
        assert_eq!(safe_text("Berlin Mitte"), "Berlin Mitte");
        assert_eq!(number(Some(-0.5)), "-0.5");
        assert_eq!(number(Some(4.0)), "4");
        assert_eq!(number(Some(2.0 / 3.0)), "0.667");
        assert_eq!(number(None), "");
    }
}
