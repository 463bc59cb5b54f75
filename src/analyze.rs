//! Change detection over the store: every new interaction feeds the online detectors of
//! the series it belongs to (its location's, its customer's, its location's channel's),
//! and what they confirm is stored with its evidence.
//!
//! One pass reads interactions by id after the stored progress mark, a page at a time;
//! each page's states, changes and new mark are written in one transaction, so a crash
//! repeats the page and stores nothing twice. An interaction older than what its series
//! has already seen (late data) makes that series start over from its whole history, and
//! so do the series of customers merged or split since the last pass (the store marks
//! them in the transaction that merges or splits).

use crate::model::InteractionKind;
use crate::pipeline::detect::evidence::{self, Item};
use crate::pipeline::detect::{Change, Direction, Kind, Online, Point, Settings, Status};
use crate::store::{
    AnalysisWrite, ChangeRecord, SeriesState, Store, StoreError, StoredInteraction,
};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

const DAY_MS: i64 = 86_400_000;
/// Interactions read per page (and per transaction).
const PAGE: i64 = 5_000;
/// Merged or split customers rebuilt per transaction.
const STALE_PAGE: i64 = 500;
/// Evidence is looked for this far around a change.
const EVIDENCE_WINDOW_MS: i64 = 30 * DAY_MS;
/// Interactions kept as evidence per change.
const EVIDENCE_ITEMS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the stored state of series {series} is not readable ({message}); run `tideline analyze --rebuild`"
    )]
    State { series: String, message: String },
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AnalyzeReport {
    pub interactions: u64,
    pub observations: u64,
    pub series: u64,
    pub rebuilt: u64,
    pub confirmed: u64,
    pub incidents: u64,
    pub watching: u64,
    /// Pages another instance wrote first (this pass then stopped).
    pub skipped_pages: u64,
}

/// A series an interaction belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    entity: &'static str,
    id: String,
    channel: Option<String>,
    kind: Kind,
}

impl SeriesKey {
    fn name(&self) -> String {
        match &self.channel {
            Some(c) => format!("{}:{}/{}:{}", self.entity, self.id, c, self.kind.as_str()),
            None => format!("{}:{}:{}", self.entity, self.id, self.kind.as_str()),
        }
    }
}

/// A ticket's outcome, when its status is final or says it went wrong: 1 resolved, 0 not.
fn outcome(status: Option<&str>) -> Option<f64> {
    let s = status?.trim().to_ascii_lowercase();
    match s.as_str() {
        "solved" | "closed" | "resolved" | "done" => Some(1.0),
        "escalated" | "unresolved" | "reopened" | "abandoned" | "cancelled" => Some(0.0),
        _ => None,
    }
}

fn severity(i: &StoredInteraction) -> f64 {
    let status = i
        .interaction
        .status
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    if ["escalated", "reopened", "unresolved", "abandoned"].contains(&status.as_str()) {
        1.0
    } else {
        0.0
    }
}

/// The (series, value) pairs one interaction contributes.
fn observations(i: &StoredInteraction) -> Vec<(SeriesKey, f64)> {
    let it = &i.interaction;
    let mut out = Vec::new();
    let key = |entity: &'static str, id: &str, channel: Option<&str>, kind: Kind| SeriesKey {
        entity,
        id: id.to_string(),
        channel: channel.map(str::to_string),
        kind,
    };
    if !it.kind.written_by_customer() {
        return out;
    }
    let loc = it.location_id.as_deref();
    let cus = i.customer_id.as_deref();
    let mut both = |kind: Kind, v: f64, channel_too: bool| {
        if kind.check(v).is_err() {
            return;
        }
        if let Some(l) = loc {
            out.push((key("location", l, None, kind), v));
            if channel_too {
                out.push((key("location", l, Some(&it.source), kind), v));
            }
        }
        if let Some(c) = cus {
            out.push((key("customer", c, None, kind), v));
        }
    };
    if let Some(s) = it.stars {
        both(Kind::Stars, s, false);
    }
    if let Some(s) = &it.sentiment {
        both(Kind::Sentiment, s.score, true);
    }
    if let Some(n) = it.nps {
        both(Kind::Nps, n as f64, false);
    }
    if it.kind == InteractionKind::Ticket
        && let Some(o) = outcome(it.status.as_deref())
    {
        both(Kind::Outcome, o, false);
    }
    out
}

fn record(
    key: &SeriesKey,
    c: &Change,
    status: &str,
    evidence: serde_json::Value,
    now_ms: i64,
) -> ChangeRecord {
    ChangeRecord {
        series: key.name(),
        entity: key.entity.to_string(),
        entity_id: key.id.clone(),
        channel: key.channel.clone(),
        signal: key.kind.as_str().to_string(),
        index: c.index as i64,
        occurred_at_ms: (c.t * 1000.0).round() as i64,
        direction: c.direction.as_str().to_string(),
        before: c.before,
        after: c.after,
        confidence: c.confidence,
        status: status.to_string(),
        n_before: c.n_before as i64,
        n_after: c.n_after as i64,
        evidence,
        detected_at_ms: now_ms,
    }
}

/// Ranks the interactions around a change and names the topics that moved, reading the
/// entity's interactions up to `max_id` (what the pass has seen).
async fn evidence_for(
    store: &dyn Store,
    key: &SeriesKey,
    c: &Change,
    max_id: i64,
) -> Result<serde_json::Value, StoreError> {
    let t_ms = (c.t * 1000.0).round() as i64;
    let items = store
        .entity_interactions(
            key.entity,
            &key.id,
            t_ms - EVIDENCE_WINDOW_MS,
            t_ms + EVIDENCE_WINDOW_MS,
        )
        .await?;
    let items: Vec<&StoredInteraction> = items
        .iter()
        .filter(|i| i.id <= max_id && i.interaction.kind != InteractionKind::Reply)
        .filter(|i| {
            key.channel
                .as_deref()
                .is_none_or(|ch| i.interaction.source == ch)
        })
        .collect();
    let kind = key.kind;
    let value_of = |i: &StoredInteraction| {
        observations(i)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    };
    let pure: Vec<Item> = items
        .iter()
        .map(|i| Item {
            t: i.interaction.occurred_at_ms as f64 / 1000.0,
            value: value_of(i),
            sentiment: i.interaction.sentiment.as_ref().map(|s| s.score),
            severity: severity(i),
            language: i.interaction.language.as_deref(),
            text: i.interaction.text.as_deref(),
            aspects: i
                .interaction
                .aspects
                .iter()
                .map(|a| (a.aspect.as_str(), a.sentiment))
                .collect(),
        })
        .collect();
    // The e-folding time: a week for a location, a month for a customer's sparse timeline.
    let window = if key.entity == "customer" { 30.0 } else { 7.0 } * 86_400.0;
    let ranked = evidence::rank(c, kind, &pure, window);
    let list: Vec<serde_json::Value> = ranked
        .iter()
        .take(EVIDENCE_ITEMS)
        .map(|(k, w)| item_json(items[*k], *w))
        .collect();
    let terms = evidence::term_shifts(c, &pure, 8);
    Ok(json!({ "interactions": list, "terms": terms }))
}

/// How an interaction appears in a change's evidence.
fn item_json(i: &StoredInteraction, weight: f64) -> serde_json::Value {
    json!({
        "id": i.id,
        "weight": (weight * 1000.0).round() / 1000.0,
        "kind": i.interaction.kind.as_str(),
        "source": i.interaction.source,
        "external_id": i.interaction.external_id,
        "occurred_at_ms": i.interaction.occurred_at_ms,
        "stars": i.interaction.stars,
        "sentiment": i.interaction.sentiment.as_ref().map(|s| s.score),
        "status": i.interaction.status,
        "url": i.interaction.url,
    })
}

struct Live {
    det: Online,
    last_ms: i64,
}

/// An incident: one extreme observation against the series' current level.
fn incident(
    key: &SeriesKey,
    det: &Online,
    p: Point,
    item: &StoredInteraction,
    now_ms: i64,
) -> ChangeRecord {
    let level = det.level().unwrap_or(p.value);
    let c = Change {
        index: det.observations() as usize,
        t: p.t,
        direction: if p.value < level {
            Direction::Down
        } else {
            Direction::Up
        },
        before: level,
        after: p.value,
        confidence: 1.0,
        status: Status::Watch,
        n_before: det.observations() as usize,
        n_after: 1,
    };
    let evidence = json!({ "interactions": [item_json(item, 1.0)], "terms": [] });
    record(key, &c, "incident", evidence, now_ms)
}

/// What [`feed`] needs besides the detector and the observations.
struct Feed<'a> {
    store: &'a dyn Store,
    key: &'a SeriesKey,
    /// The highest interaction id the evidence may read.
    max_id: i64,
    now_ms: i64,
}

/// Feeds one series' observations (time, interaction id, value) to its detector and adds
/// what it finds (confirmed changes, incidents, the current watch, the new state) to
/// `write`.
async fn feed<'h>(
    f: Feed<'_>,
    mut live: Live,
    obs: &[(i64, i64, f64)],
    lookup: &(dyn Fn(i64) -> Option<&'h StoredInteraction> + Sync),
    write: &mut AnalysisWrite,
    report: &mut AnalyzeReport,
) -> Result<(), AnalyzeError> {
    let (store, key, max_id, now_ms) = (f.store, f.key, f.max_id, f.now_ms);
    let name = key.name();
    for (ms, id, v) in obs {
        let point = Point {
            t: *ms as f64 / 1000.0,
            value: *v,
        };
        if key.entity == "customer"
            && live.det.incident(*v)
            && live.det.level().is_some_and(|l| *v < l)
            && let Some(item) = lookup(*id)
        {
            write
                .changes
                .push(incident(key, &live.det, point, item, now_ms));
            report.incidents += 1;
        }
        if let Some(c) = live.det.push(point) {
            let ev = evidence_for(store, key, &c, max_id).await?;
            write.changes.push(record(key, &c, "confirmed", ev, now_ms));
            report.confirmed += 1;
        }
        live.last_ms = live.last_ms.max(*ms);
    }
    report.observations += obs.len() as u64;
    let watching = match live.det.watching() {
        Some(c) => {
            let ev = evidence_for(store, key, &c, max_id).await?;
            Some(record(key, &c, "watch", ev, now_ms))
        }
        None => None,
    };
    report.watching += u64::from(watching.is_some());
    write.watching.push((name.clone(), watching));
    write.states.push(SeriesState {
        series: name,
        state: serde_json::to_string(&live.det).unwrap_or_default(),
        last_ms: live.last_ms,
        observations: live.det.observations() as i64,
    });
    Ok(())
}

/// Customers merged or split since the last pass start over from their whole history up
/// to the mark `last`: their old series and changes go, the merged or split history is
/// read again, in one transaction per page of customers. Nothing else is re-read.
/// Returns false when another instance moved the mark first (it does this work).
async fn rebuild_stale_customers(
    store: &dyn Store,
    settings: &Settings,
    last: i64,
    now_ms: i64,
    report: &mut AnalyzeReport,
) -> Result<bool, AnalyzeError> {
    loop {
        let stale = store.stale_customers(STALE_PAGE).await?;
        if stale.is_empty() {
            return Ok(true);
        }
        let mut write = AnalysisWrite {
            from_id: last,
            last_id: last,
            ..Default::default()
        };
        for (customer, marked_ms) in &stale {
            let history: Vec<StoredInteraction> = store
                .entity_interactions("customer", customer, i64::MIN, i64::MAX)
                .await?
                .into_iter()
                .filter(|i| i.id <= last)
                .collect();
            let mut series: BTreeMap<SeriesKey, Vec<(i64, i64, f64)>> = BTreeMap::new();
            for i in &history {
                for (k, v) in observations(i) {
                    if k.entity == "customer" {
                        series
                            .entry(k)
                            .or_default()
                            .push((i.interaction.occurred_at_ms, i.id, v));
                    }
                }
            }
            write.cleared.push((customer.clone(), *marked_ms));
            let by_id: HashMap<i64, &StoredInteraction> =
                history.iter().map(|i| (i.id, i)).collect();
            let lookup = |id: i64| by_id.get(&id).copied();
            for (key, obs) in series {
                let live = Live {
                    det: Online::new(key.kind, settings),
                    last_ms: i64::MIN,
                };
                feed(
                    Feed {
                        store,
                        key: &key,
                        max_id: last,
                        now_ms,
                    },
                    live,
                    &obs,
                    &lookup,
                    &mut write,
                    report,
                )
                .await?;
                report.rebuilt += 1;
            }
        }
        if !store.save_analysis(write).await? {
            report.skipped_pages += 1;
            return Ok(false);
        }
    }
}

/// Feeds every interaction stored since the last pass to the detectors and stores what
/// they find.
pub async fn analyze(
    store: &dyn Store,
    settings: &Settings,
    now_ms: i64,
) -> Result<AnalyzeReport, AnalyzeError> {
    let mut report = AnalyzeReport::default();
    let mut last = store.analysis_progress().await?;
    if !rebuild_stale_customers(store, settings, last, now_ms, &mut report).await? {
        return Ok(report);
    }
    let mut seen_series: std::collections::HashSet<String> = Default::default();
    loop {
        let page = store.interactions_after(last, PAGE).await?;
        let Some(max_id) = page.last().map(|i| i.id) else {
            break;
        };
        report.interactions += page.len() as u64;
        let by_id: HashMap<i64, &StoredInteraction> = page.iter().map(|i| (i.id, i)).collect();
        let mut new: BTreeMap<SeriesKey, Vec<(i64, i64, f64)>> = BTreeMap::new();
        for i in &page {
            for (k, v) in observations(i) {
                new.entry(k)
                    .or_default()
                    .push((i.interaction.occurred_at_ms, i.id, v));
            }
        }
        let names: Vec<String> = new.keys().map(SeriesKey::name).collect();
        let stored: HashMap<String, SeriesState> = store
            .series_states(&names)
            .await?
            .into_iter()
            .map(|s| (s.series.clone(), s))
            .collect();
        let mut write = AnalysisWrite {
            from_id: last,
            last_id: max_id,
            ..Default::default()
        };
        for (key, mut obs) in new {
            let name = key.name();
            obs.sort_by_key(|o| (o.0, o.1));
            let kind = key.kind;
            let mut live = match stored.get(&name) {
                Some(s) => {
                    let mut det: Online =
                        serde_json::from_str(&s.state).map_err(|e| AnalyzeError::State {
                            series: name.clone(),
                            message: e.to_string(),
                        })?;
                    det.warm();
                    Live {
                        det,
                        last_ms: s.last_ms,
                    }
                }
                None => Live {
                    det: Online::new(kind, settings),
                    last_ms: i64::MIN,
                },
            };
            let mut history: Vec<StoredInteraction> = Vec::new();
            if obs[0].0 < live.last_ms {
                // Late data: start this series over from everything stored up to this page.
                history = store
                    .entity_interactions(key.entity, &key.id, i64::MIN, i64::MAX)
                    .await?;
                obs = history
                    .iter()
                    .filter(|i| i.id <= max_id)
                    .flat_map(|i| {
                        observations(i)
                            .into_iter()
                            .filter(|(k, _)| *k == key)
                            .map(|(_, v)| (i.interaction.occurred_at_ms, i.id, v))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                obs.sort_by_key(|o| (o.0, o.1));
                live = Live {
                    det: Online::new(kind, settings),
                    last_ms: i64::MIN,
                };
                write.rebuilt.push(name.clone());
                report.rebuilt += 1;
            }
            let history_by_id: HashMap<i64, &StoredInteraction> =
                history.iter().map(|i| (i.id, i)).collect();
            let lookup = |id: i64| by_id.get(&id).or_else(|| history_by_id.get(&id)).copied();
            feed(
                Feed {
                    store,
                    key: &key,
                    max_id,
                    now_ms,
                },
                live,
                &obs,
                &lookup,
                &mut write,
                &mut report,
            )
            .await?;
            seen_series.insert(name);
        }
        if !store.save_analysis(write).await? {
            // Another daemon on the same database analysed this page first; it carries on.
            report.skipped_pages += 1;
            break;
        }
        last = max_id;
    }
    report.series = seen_series.len() as u64;
    Ok(report)
}
