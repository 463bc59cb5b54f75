//! `tideline report`: the local reputation report of one location or of all of them, for a
//! period compared with the one before it, in each location's time zone.
//!
//! Per location: the service indicators with their sample sizes (from
//! [`crate::outputs::indicators`]: stars and their distribution, NPS, CSAT, CES, support
//! times, the composite index, per channel and per week), review volume, response rate and
//! median response time to reviews, sentiment per language and per channel, the topics
//! rising in negative and in positive feedback, the detected changes with their evidence,
//! and the reviews still waiting for an answer. The portfolio ranks the locations by the
//! composite index and marks those that moved.
//!
//! Formats: JSON (this module's types), CSV (one row per location and metric, see
//! [`csv`]), self-contained HTML ([`html`]). Figures on fewer answers than
//! `indicators.min_sample` carry `small_sample` and never mark a location as moved.

pub mod csv;
pub mod figures;
pub mod html;

use crate::config::Config;
use crate::outputs::indicators::{
    self as ind_out, GroupReport, IndicatorsError, MetricsRequest, Scope,
};
use crate::pipeline::indicators::{PeriodSpec, Unit};
use crate::store::{ChangeFilter, ReportRow, Store, StoredChange};
use chrono_tz::Tz;
use figures::{ReviewStats, SentimentGroup, TopicMove, Waiting};
use serde::Serialize;
use std::collections::HashMap;

/// How many reviews waiting for an answer a location report lists by default.
pub const WAITING_LIMIT: usize = 25;
/// How many topics per tone.
pub const TOPIC_LIMIT: usize = 5;
/// A composite index that moved by at least this many points (on enough answers) marks
/// the location as moved in the portfolio, as does a confirmed change in the period.
pub const MOVED_POINTS: f64 = 5.0;

#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// One location, or all configured locations.
    pub scope: Scope,
    pub period: PeriodSpec,
    /// How many reviews waiting for an answer to list per location.
    pub waiting_limit: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub min_sample: u64,
    /// All locations, best composite index first.
    pub portfolio: Vec<PortfolioRow>,
    pub locations: Vec<LocationReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocationReport {
    /// Indicators of the period and the one before, per channel and per week.
    #[serde(flatten)]
    pub indicators: GroupReport,
    pub reviews: Periods<ReviewStats>,
    pub sentiment_by_language: Vec<SentimentGroup>,
    pub sentiment_by_channel: Vec<SentimentGroup>,
    pub topics_rising_negative: Vec<TopicMove>,
    pub topics_rising_positive: Vec<TopicMove>,
    /// Changes detected for this location in the period (newest first), with evidence.
    pub changes: Vec<StoredChange>,
    /// Reviews of both periods without a reply: how many, and the first few.
    pub waiting_total: u64,
    pub waiting: Vec<Waiting>,
    /// This location against its configured competitors (absent when it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub competitors: Option<Competitors>,
}

/// A location's own rating and review count against its competitors'. The competitors'
/// figures are Google's (all time), fetched while the report was built and kept nowhere
/// else: the Places terms allow storing the place id only.
#[derive(Debug, Clone, Serialize)]
pub struct Competitors {
    /// The location's mean stars and review count in the report's period, from its own
    /// stored reviews.
    pub own_rating: Option<f64>,
    pub own_reviews: u64,
    pub places: Vec<CompetitorFigures>,
}

/// One competitor's figures, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompetitorFigures {
    pub place_id: String,
    /// The name from the configuration.
    pub name: String,
    /// Google's mean rating (1-5) and how many ratings it is of.
    pub rating: Option<f64>,
    pub reviews: Option<u64>,
    /// When the figures were fetched (RFC 3339), or `None` if they were not.
    pub fetched_at: Option<String>,
    /// Set when the figures could not be fetched: the reason (never a credential).
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Periods<T> {
    pub current: T,
    pub previous: T,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortfolioRow {
    pub rank: usize,
    pub location_id: String,
    pub name: String,
    pub composite: Option<f64>,
    pub composite_previous: Option<f64>,
    pub stars: Option<f64>,
    pub stars_previous: Option<f64>,
    pub reviews: u64,
    pub reviews_previous: u64,
    pub changes: usize,
    /// The composite moved by at least [`MOVED_POINTS`] on enough answers, or a change
    /// was confirmed in the period.
    pub moved: bool,
    pub small_sample: bool,
}

/// Builds the report. `now_ms` fixes "today" for relative periods.
pub async fn build(
    store: &dyn Store,
    config: &Config,
    req: &ReportRequest,
    now_ms: i64,
) -> Result<Report, IndicatorsError> {
    let settings = &config.indicators;
    let min = settings.min_sample;
    let locations = &config.locations;
    let metrics = ind_out::report(
        store,
        locations,
        config.import.default_timezone,
        settings,
        &MetricsRequest {
            scope: req.scope.clone(),
            channel: None,
            customer: None,
            period: req.period,
            by: Some(Unit::Week),
        },
        now_ms,
    )
    .await?;
    // Both periods of every group, read at once over the union of their windows (each
    // group's bounds are in its own zone) and split per location in memory.
    let bounds: Vec<(i64, i64, i64)> = metrics
        .groups
        .iter()
        .map(|g| {
            let tz: Tz = g.timezone.parse().unwrap_or(chrono_tz::UTC);
            let (cur_lo, cur_hi) = g.period.bounds_ms(tz);
            let (prev_lo, _) = g.previous_period.bounds_ms(tz);
            (prev_lo.min(cur_lo), cur_lo, cur_hi)
        })
        .collect();
    let single = match metrics.groups.as_slice() {
        [one] => one.location_id.as_deref(),
        _ => None,
    };
    let from_ms = bounds.iter().map(|b| b.0).min().unwrap_or(0);
    let until_ms = bounds.iter().map(|b| b.2).max().unwrap_or(0);
    let all_rows = if bounds.is_empty() {
        Vec::new()
    } else {
        store.report_rows(single, from_ms, until_ms).await?
    };
    let split = metrics.groups.iter().any(|g| g.location_id.is_some());
    let by_location = if split {
        super::group_by_location(&all_rows, |r| r.location_id.as_deref())
    } else {
        HashMap::new()
    };
    let mut out = Vec::new();
    for (group, (lo, cur_lo, cur_hi)) in metrics.groups.into_iter().zip(bounds) {
        let in_window = |r: &&ReportRow| r.occurred_at_ms >= lo && r.occurred_at_ms < cur_hi;
        let rows: Vec<&ReportRow> = match &group.location_id {
            Some(id) if split => by_location
                .get(&Some(id.as_str()))
                .map(|rs| rs.iter().copied().filter(in_window).collect())
                .unwrap_or_default(),
            _ => all_rows.iter().filter(in_window).collect(),
        };
        let (current, previous): (Vec<&ReportRow>, Vec<&ReportRow>) = rows
            .iter()
            .copied()
            .partition(|r| r.occurred_at_ms >= cur_lo);
        let mut changes = match &group.location_id {
            Some(id) => {
                store
                    .changes(&ChangeFilter {
                        entity: Some(("location".into(), id.clone())),
                        since_ms: Some(cur_lo),
                        limit: None,
                    })
                    .await?
            }
            None => Vec::new(),
        };
        changes.retain(|c| c.change.occurred_at_ms < cur_hi);
        changes.sort_by_key(|c| std::cmp::Reverse(c.change.occurred_at_ms));
        let mut negative = figures::topics_rising(&current, &previous, true);
        let mut positive = figures::topics_rising(&current, &previous, false);
        negative.truncate(TOPIC_LIMIT);
        positive.truncate(TOPIC_LIMIT);
        let (waiting_total, waiting) = figures::awaiting_answer(&rows, req.waiting_limit);
        out.push(LocationReport {
            reviews: Periods {
                current: figures::review_stats(&current, min),
                previous: figures::review_stats(&previous, min),
            },
            sentiment_by_language: figures::sentiment_by(
                &current,
                &previous,
                |r| Some(r.language.clone().unwrap_or_else(|| "unknown".into())),
                min,
            ),
            sentiment_by_channel: figures::sentiment_by(
                &current,
                &previous,
                |r| Some(format!("{}/{}", r.source, r.kind)),
                min,
            ),
            topics_rising_negative: negative,
            topics_rising_positive: positive,
            changes,
            waiting_total,
            waiting,
            competitors: None,
            indicators: group,
        });
    }
    Ok(Report {
        generated_at: crate::outputs::rfc3339(now_ms),
        min_sample: min,
        portfolio: portfolio(&out),
        locations: out,
    })
}

/// Adds each location's competitor figures (by location id, as fetched by
/// [`crate::competitors`]) to the report; locations without an entry keep none.
pub fn attach_competitors(report: &mut Report, fetched: &HashMap<String, Vec<CompetitorFigures>>) {
    for l in &mut report.locations {
        let Some(places) = l
            .indicators
            .location_id
            .as_ref()
            .and_then(|id| fetched.get(id))
        else {
            continue;
        };
        l.competitors = Some(Competitors {
            own_rating: l.indicators.current.stars.mean.value,
            own_reviews: l.reviews.current.reviews,
            places: places.clone(),
        });
    }
}

/// Ranks locations by the composite index (locations without one last, by name).
pub fn portfolio(locations: &[LocationReport]) -> Vec<PortfolioRow> {
    let mut rows: Vec<PortfolioRow> = locations
        .iter()
        .map(|l| {
            let g = &l.indicators;
            let (c, p) = (&g.current.composite, &g.previous.composite);
            // The index is `None` unless some component has enough answers.
            let small = c.value.is_none();
            let moved_points = match (c.value, p.value) {
                (Some(a), Some(b)) => (a - b).abs() >= MOVED_POINTS,
                _ => false,
            };
            PortfolioRow {
                rank: 0,
                location_id: g.location_id.clone().unwrap_or_default(),
                name: g.name.clone(),
                composite: c.value,
                composite_previous: p.value,
                stars: g.current.stars.mean.value,
                stars_previous: g.previous.stars.mean.value,
                reviews: l.reviews.current.reviews,
                reviews_previous: l.reviews.previous.reviews,
                changes: l.changes.len(),
                moved: moved_points || l.changes.iter().any(|c| c.change.status == "confirmed"),
                small_sample: small,
            }
        })
        .collect();
    rows.sort_by(|a, b| match (a.composite, b.composite) {
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.name.cmp(&b.name)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.name.cmp(&b.name),
    });
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    rows
}
