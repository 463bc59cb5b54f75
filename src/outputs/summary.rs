//! Per-location figures: volume, star rating, NPS, CSAT, CES, sentiment, languages, each
//! with its sample size. Samples under [`SMALL_SAMPLE`] are marked, never hidden.

use super::rfc3339;
use crate::model::Location;
use crate::store::LocationSummary;
use serde::Serialize;

/// Below this many answers a figure is flagged as a small sample.
pub const SMALL_SAMPLE: i64 = 10;

/// A figure with its sample size.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub value: Option<f64>,
    pub n: i64,
    pub small_sample: bool,
}

impl Figure {
    fn new(value: Option<f64>, n: i64) -> Self {
        Self {
            value: if n > 0 { value } else { None },
            n,
            small_sample: n < SMALL_SAMPLE,
        }
    }

    fn show(&self, decimals: usize, suffix: &str) -> String {
        match self.value {
            None => "-".to_string(),
            Some(v) => {
                let flag = if self.small_sample { "*" } else { "" };
                format!("{v:.decimals$}{suffix} (n={}){flag}", self.n)
            }
        }
    }
}

/// The indicators of one location, derived from the stored counts.
#[derive(Debug, Clone, Serialize)]
pub struct LocationFigures {
    pub location_id: Option<String>,
    pub name: String,
    pub configured: bool,
    pub interactions: i64,
    pub reviews: i64,
    pub tickets: i64,
    pub survey_responses: i64,
    pub customers: i64,
    pub stars: Figure,
    /// % promoters (9-10) minus % detractors (0-6).
    pub nps: Figure,
    /// % of answers in the top of their scale.
    pub csat_pct: Figure,
    /// % agreeing that it was easy (5-7 on 1-7).
    pub ces_agree_pct: Figure,
    pub sentiment_mean: Figure,
    pub negative_pct: Figure,
    /// Owner replies per review.
    pub review_response_rate: Figure,
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    pub languages: Vec<(String, i64)>,
}

pub fn figures(rows: &[LocationSummary], locations: &[Location]) -> Vec<LocationFigures> {
    rows.iter()
        .filter(|s| s.interactions > 0)
        .map(|s| {
            let loc = s
                .location_id
                .as_deref()
                .and_then(|id| locations.iter().find(|l| l.id == id));
            let pct = |a: i64, n: i64| (n > 0).then(|| 100.0 * a as f64 / n as f64);
            LocationFigures {
                location_id: s.location_id.clone(),
                name: loc
                    .map(|l| l.name.clone())
                    .or_else(|| s.location_id.clone())
                    .unwrap_or_else(|| "(no location)".into()),
                configured: loc.is_some(),
                interactions: s.interactions,
                reviews: s.reviews,
                tickets: s.tickets,
                survey_responses: s.survey_responses,
                customers: s.customers,
                stars: Figure::new(s.stars_mean, s.stars_n),
                nps: Figure::new(
                    (s.nps_n > 0)
                        .then(|| 100.0 * (s.promoters - s.detractors) as f64 / s.nps_n as f64),
                    s.nps_n,
                ),
                csat_pct: Figure::new(pct(s.csat_satisfied, s.csat_n), s.csat_n),
                ces_agree_pct: Figure::new(pct(s.ces_agree, s.ces_n), s.ces_n),
                sentiment_mean: Figure::new(s.sentiment_mean, s.sentiment_n),
                negative_pct: Figure::new(pct(s.negative, s.sentiment_n), s.sentiment_n),
                review_response_rate: Figure::new(pct(s.replies, s.reviews), s.reviews),
                first_at: s.first_ms.map(rfc3339),
                last_at: s.last_ms.map(rfc3339),
                languages: s.languages.clone(),
            }
        })
        .collect()
}

/// A plain-text table for a terminal.
pub fn render_text(figs: &[LocationFigures]) -> String {
    let mut out = String::new();
    for f in figs {
        // Unconfigured location names come from the data: one line, no control characters.
        out.push_str(&format!(
            "{} [{}]{}\n",
            super::one_line(&f.name, 80),
            super::one_line(f.location_id.as_deref().unwrap_or("-"), 80),
            if f.configured {
                ""
            } else {
                "  (not in the config)"
            }
        ));
        out.push_str(&format!(
            "  {} interactions: {} reviews, {} tickets, {} survey answers; {} customers\n",
            f.interactions, f.reviews, f.tickets, f.survey_responses, f.customers
        ));
        out.push_str(&format!(
            "  stars {}   NPS {}   CSAT {}   CES agree {}\n",
            f.stars.show(2, ""),
            f.nps.show(0, ""),
            f.csat_pct.show(0, "%"),
            f.ces_agree_pct.show(0, "%")
        ));
        out.push_str(&format!(
            "  sentiment {}   negative {}   review replies {}\n",
            f.sentiment_mean.show(2, ""),
            f.negative_pct.show(0, "%"),
            f.review_response_rate.show(0, "%")
        ));
        let langs: Vec<String> = f
            .languages
            .iter()
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        out.push_str(&format!("  languages: {}\n\n", langs.join(", ")));
    }
    out.push_str(&format!(
        "* fewer than {SMALL_SAMPLE} answers: a small sample, read with care.\n"
    ));
    out
}

/// The same as a Markdown table, for the demo's summary file.
pub fn render_markdown(figs: &[LocationFigures]) -> String {
    let mut out = String::from(
        "| Location | Interactions | Stars | NPS | CSAT | CES agree | Sentiment | Negative | Review replies | Languages |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for f in figs {
        let langs: Vec<String> = f
            .languages
            .iter()
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            md_escape(&f.name),
            f.interactions,
            f.stars.show(2, ""),
            f.nps.show(0, ""),
            f.csat_pct.show(0, "%"),
            f.ces_agree_pct.show(0, "%"),
            f.sentiment_mean.show(2, ""),
            f.negative_pct.show(0, "%"),
            f.review_response_rate.show(0, "%"),
            langs.join(", ")
        ));
    }
    out.push_str(&format!(
        "\n`*` fewer than {SMALL_SAMPLE} answers: a small sample.\n"
    ));
    out
}

/// Escapes text from data for a Markdown table cell.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
