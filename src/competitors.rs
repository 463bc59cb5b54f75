//! Competitors' public figures for a report: each configured competitor place of the
//! report's locations, fetched from the Places API through [`crate::connectors::places`]
//! while the report is built, then added to it. Nothing fetched is written anywhere: the
//! Places terms allow keeping the place id only, which is configuration.
//!
//! A competitor that cannot be fetched (no `[places]` section, a wrong id, the quota,
//! the network) is shown as unavailable with the reason; it never fails the report.

use crate::config::Config;
use crate::connectors::http::FetchContext;
use crate::connectors::places::{PlaceFigures, Places};
use crate::metrics::Metrics;
use crate::outputs::report::{self, CompetitorFigures, Report};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One place's figures and when they were fetched, or why they were not.
type Fetched = Result<(PlaceFigures, i64), String>;

/// Fetches the competitors of the report's locations and adds them to the report.
/// `now_ms` reads the clock for each fetch's time. A report whose locations have no
/// competitors is left as it is, without any request.
pub async fn add_to(report: &mut Report, config: &Config, now_ms: &(dyn Fn() -> i64 + Sync)) {
    let wanted: Vec<&str> = report
        .locations
        .iter()
        .filter_map(|l| l.indicators.location_id.as_deref())
        .filter(|id| config.competitors.contains_key(*id))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let fetched = fetch(config, &wanted, now_ms).await;
    report::attach_competitors(report, &fetched);
}

/// The figures of each listed location's competitors, by location id. A place that
/// several locations name is fetched once.
pub async fn fetch(
    config: &Config,
    location_ids: &[&str],
    now_ms: &(dyn Fn() -> i64 + Sync),
) -> HashMap<String, Vec<CompetitorFigures>> {
    let client = match &config.places {
        None => Err(
            "not fetched: the configuration has no [places] section with an API key".to_string(),
        ),
        Some(settings) => Places::new(settings).map_err(|e| format!("not fetched: {e}")),
    };
    let cx = FetchContext::new("places", Arc::new(Metrics::new()), CancellationToken::new());
    let mut by_place: HashMap<String, Fetched> = HashMap::new();
    let mut out = HashMap::new();
    for id in location_ids {
        let Some(list) = config.competitors.get(*id) else {
            continue;
        };
        let mut figures = Vec::with_capacity(list.len());
        for c in list {
            if !by_place.contains_key(&c.place_id) {
                let got = match &client {
                    Err(reason) => Err(reason.clone()),
                    Ok(places) => match places.place(&c.place_id, &cx).await {
                        Ok(p) => Ok((p, now_ms())),
                        Err(e) => {
                            tracing::warn!(place_id = %c.place_id, error = %e, "Competitor figures not fetched; the report shows the place as unavailable.");
                            Err(e.to_string())
                        }
                    },
                };
                by_place.insert(c.place_id.clone(), got);
            }
            let (rating, reviews, fetched_at, unavailable) = match &by_place[&c.place_id] {
                Ok((p, at)) => (
                    p.rating,
                    Some(p.rating_count.unwrap_or(0)),
                    Some(crate::outputs::rfc3339(*at)),
                    None,
                ),
                Err(reason) => (None, None, None, Some(reason.clone())),
            };
            figures.push(CompetitorFigures {
                place_id: c.place_id.clone(),
                name: c.name.clone(),
                rating,
                reviews,
                fetched_at,
                unavailable,
            });
        }
        out.insert(id.to_string(), figures);
    }
    out
}
