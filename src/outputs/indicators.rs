//! `tideline metrics`: the service indicators of a period and of the period before it, per
//! location (in the location's time zone), with a breakdown per channel and, on request,
//! per day, week, month or quarter. JSON for machines, a table for a terminal.

use crate::model::Location;
use crate::pipeline::indicators::{
    self as ind, IndicatorRow, IndicatorSettings, Indicators, PeriodSpec, Unit, Window,
};
use crate::store::{IndicatorFilter, Store, StoreError};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum IndicatorsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "location `{0}` is not configured; fix: use an id from the config's [[location]] tables, or --all"
    )]
    UnknownLocation(String),
    #[error(
        "`{0}` is not a period; fix: use last-<N>d (e.g. last-30d), week, month, quarter or year"
    )]
    BadPeriod(String),
}

/// Which locations to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything together, periods in the default zone.
    Overall,
    Location(String),
    /// One group per configured location.
    AllLocations,
}

#[derive(Debug, Clone)]
pub struct MetricsRequest {
    pub scope: Scope,
    pub channel: Option<String>,
    pub customer: Option<String>,
    pub period: PeriodSpec,
    pub by: Option<Unit>,
}

/// Parses `--period`.
pub fn parse_period(s: &str) -> Result<PeriodSpec, IndicatorsError> {
    PeriodSpec::parse(s).ok_or_else(|| IndicatorsError::BadPeriod(s.to_string()))
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsReport {
    pub min_sample: u64,
    pub weights: ind::Weights,
    pub channel: Option<String>,
    pub customer: Option<String>,
    pub groups: Vec<GroupReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub location_id: Option<String>,
    pub name: String,
    pub timezone: String,
    /// Local dates, `from` included, `until` excluded.
    pub period: Window,
    pub previous_period: Window,
    pub current: Indicators,
    pub previous: Indicators,
    /// The current period per `source/kind`.
    pub channels: Vec<Labeled>,
    /// The current period per local bucket (`--by`).
    pub buckets: Vec<Labeled>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Labeled {
    pub key: String,
    pub indicators: Indicators,
}

/// One group to report: its location, zone, periods and their bounds in UTC ms.
struct Target<'a> {
    loc: Option<&'a Location>,
    id: Option<String>,
    tz: Tz,
    cur: Window,
    prev: Window,
    cur_lo: i64,
    cur_hi: i64,
    /// The earlier of both periods' starts.
    lo: i64,
}

/// Reads the store and computes the report. `now_ms` is the clock, read by the caller.
pub async fn report(
    store: &dyn Store,
    locations: &[Location],
    default_tz: Tz,
    settings: &IndicatorSettings,
    req: &MetricsRequest,
    now_ms: i64,
) -> Result<MetricsReport, IndicatorsError> {
    let tz_of = |l: &Location| l.timezone.parse::<Tz>().unwrap_or(default_tz);
    let targets: Vec<(Option<&Location>, Option<String>)> = match &req.scope {
        Scope::Overall => vec![(None, None)],
        Scope::Location(id) => {
            let l = locations
                .iter()
                .find(|l| &l.id == id)
                .ok_or_else(|| IndicatorsError::UnknownLocation(id.clone()))?;
            vec![(Some(l), Some(id.clone()))]
        }
        Scope::AllLocations => locations
            .iter()
            .map(|l| (Some(l), Some(l.id.clone())))
            .collect(),
    };
    // Each target's periods in its own zone, then one read over the union of their
    // windows: a read per location walks the (location_id, occurred_at_ms) index once per
    // location, touching nearly every page of the window each time when the locations'
    // rows are interleaved (as they are when they arrive over time).
    let planned: Vec<_> = targets
        .into_iter()
        .map(|(loc, id)| {
            let tz = loc.map(tz_of).unwrap_or(default_tz);
            let today = ind::local_date(now_ms, tz);
            let (cur, prev) = req.period.windows(today);
            let (cur_lo, cur_hi) = cur.bounds_ms(tz);
            let (prev_lo, _) = prev.bounds_ms(tz);
            Target {
                loc,
                id,
                tz,
                cur,
                prev,
                cur_lo,
                cur_hi,
                lo: prev_lo.min(cur_lo),
            }
        })
        .collect();
    let from_ms = planned.iter().map(|t| t.lo).min().unwrap_or(0);
    let until_ms = planned.iter().map(|t| t.cur_hi).max().unwrap_or(0);
    // One target reads its own location (through the index); several read every
    // location at once, each row then going to the target of its location.
    let single = match planned.as_slice() {
        [one] => one.id.clone(),
        _ => None,
    };
    let all_rows = store
        .indicator_rows(&IndicatorFilter {
            from_ms,
            until_ms,
            location_id: single,
            channel: req.channel.clone(),
            customer_id: req.customer.clone(),
            business_hours: settings.business_hours,
        })
        .await?;
    let split = planned.iter().any(|t| t.id.is_some());
    let by_location = if split {
        super::group_by_location(&all_rows, |r| r.location_id.as_deref())
    } else {
        Default::default()
    };
    let mut groups = Vec::new();
    for Target {
        loc,
        id,
        tz,
        cur,
        prev,
        cur_lo,
        cur_hi,
        lo,
    } in planned
    {
        let in_window = |r: &&IndicatorRow| r.occurred_at_ms >= lo && r.occurred_at_ms < cur_hi;
        let rows: Vec<&IndicatorRow> = match &id {
            Some(id) if split => by_location
                .get(&Some(id.as_str()))
                .map(|rs| rs.iter().copied().filter(in_window).collect())
                .unwrap_or_default(),
            _ => all_rows.iter().filter(in_window).collect(),
        };
        let (current, previous): (Vec<&IndicatorRow>, Vec<&IndicatorRow>) =
            rows.into_iter().partition(|r| r.occurred_at_ms >= cur_lo);
        let channels = ind::group(&current, ind::GroupBy::Channel)
            .into_iter()
            .map(|(k, rs)| Labeled {
                key: k.unwrap_or_default(),
                indicators: ind::compute(&rs, settings),
            })
            .collect();
        let buckets = match req.by {
            Some(unit) => ind::buckets(&current, cur, unit, tz)
                .into_iter()
                .map(|(start, rs)| Labeled {
                    key: start.to_string(),
                    indicators: ind::compute(&rs, settings),
                })
                .collect(),
            None => Vec::new(),
        };
        groups.push(GroupReport {
            location_id: id,
            name: loc
                .map(|l| l.name.clone())
                .unwrap_or_else(|| "all locations".into()),
            timezone: tz.name().to_string(),
            period: cur,
            previous_period: prev,
            current: ind::compute(&current, settings),
            previous: ind::compute(&previous, settings),
            channels,
            buckets,
        });
    }
    Ok(MetricsReport {
        min_sample: settings.min_sample,
        weights: settings.weights.clone(),
        channel: req.channel.clone(),
        customer: req.customer.clone(),
        groups,
    })
}

fn flag(small: bool) -> &'static str {
    if small { "*" } else { "" }
}

fn num(v: Option<f64>, decimals: usize, suffix: &str) -> String {
    v.map(|v| format!("{v:.decimals$}{suffix}"))
        .unwrap_or_else(|| "-".into())
}

fn ci(c: Option<[f64; 2]>, decimals: usize) -> String {
    c.map(|[a, b]| format!(" [{a:.decimals$}, {b:.decimals$}]"))
        .unwrap_or_default()
}

/// The figures of one period as (label, text) lines.
fn lines(i: &Indicators) -> Vec<(String, String)> {
    let mut out = vec![(
        "NPS".to_string(),
        format!(
            "{} (n={}){}{}",
            num(i.nps.value, 0, ""),
            i.nps.n,
            ci(i.nps.ci95, 0),
            flag(i.nps.small_sample && i.nps.n > 0)
        ),
    )];
    let share = |s: &ind::Share| {
        format!(
            "{} (n={}){}{}",
            num(s.pct, 1, "%"),
            s.n,
            ci(s.ci95, 1),
            flag(s.small_sample && s.n > 0)
        )
    };
    let mean = |m: &ind::Mean| {
        format!(
            "{} (n={}){}{}",
            num(m.value, 2, ""),
            m.n,
            ci(m.ci95, 2),
            flag(m.small_sample && m.n > 0)
        )
    };
    out.push(("CSAT % satisfied".into(), share(&i.csat.satisfied_pct)));
    for m in &i.csat.mean_by_scale {
        out.push((
            format!("CSAT mean ({})", super::one_line(&m.scale, 20)),
            mean(&m.mean),
        ));
    }
    out.push(("CES mean (1-7)".into(), mean(&i.ces.mean)));
    out.push(("CES % agreeing".into(), share(&i.ces.agree_pct)));
    let d = &i.stars.distribution;
    out.push((
        "Stars mean".into(),
        format!(
            "{}  1-5: {} {} {} {} {}",
            mean(&i.stars.mean),
            d[0],
            d[1],
            d[2],
            d[3],
            d[4]
        ),
    ));
    let dur = |x: &ind::Durations| {
        format!(
            "median {} p90 {} (n={}){}",
            num(x.median_hours, 1, "h"),
            num(x.p90_hours, 1, "h"),
            x.n,
            flag(x.small_sample && x.n > 0)
        )
    };
    let s = &i.support;
    out.push(("First reply".into(), dur(&s.first_reply)));
    out.push((
        "Resolution".into(),
        if s.resolution_approximate > 0 {
            format!(
                "{}, {} approx.",
                dur(&s.resolution),
                s.resolution_approximate
            )
        } else {
            dur(&s.resolution)
        },
    ));
    out.push(("Reopen rate".into(), share(&s.reopen_rate)));
    out.push(("Abandonment rate".into(), share(&s.abandonment_rate)));
    out.push((
        "Tickets per customer".into(),
        format!(
            "{} ({} tickets, {} customers)",
            num(s.tickets_per_customer, 2, ""),
            s.tickets,
            s.customers
        ),
    ));
    out.push((
        "Contacts per issue".into(),
        num(s.contacts_per_issue, 2, ""),
    ));
    let c = &i.composite;
    out.push((
        "Composite index".into(),
        format!(
            "{}{}",
            num(c.value, 1, ""),
            if c.renormalised {
                "  (weights renormalised)"
            } else {
                ""
            }
        ),
    ));
    for comp in &c.components {
        out.push((
            format!("  {}", comp.name),
            format!(
                "{} (n={}) weight {:.2} -> {:.2}{}",
                num(comp.value, 1, ""),
                comp.n,
                comp.weight,
                comp.effective_weight,
                comp.left_out
                    .map(|r| format!("  left out: {r}"))
                    .unwrap_or_default()
            ),
        ));
    }
    out
}

/// A plain-text table for a terminal; small samples carry a `*`.
pub fn render_table(r: &MetricsReport) -> String {
    let mut out = String::new();
    for g in &r.groups {
        out.push_str(&format!(
            "{} [{}]  {}\n",
            super::one_line(&g.name, 80),
            super::one_line(g.location_id.as_deref().unwrap_or("-"), 80),
            g.timezone
        ));
        let until = |w: &Window| w.until.pred_opt().unwrap_or(w.until);
        out.push_str(&format!(
            "  period {} .. {} ({} interactions)   previous {} .. {} ({} interactions)\n",
            g.period.from,
            until(&g.period),
            g.current.interactions,
            g.previous_period.from,
            until(&g.previous_period),
            g.previous.interactions
        ));
        let cur = lines(&g.current);
        let prev = lines(&g.previous);
        let w = cur
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        let wv = cur
            .iter()
            .map(|(_, v)| v.chars().count())
            .max()
            .unwrap_or(0);
        out.push_str(&format!("  {:w$}  {:wv$}  {}\n", "", "current", "previous"));
        for ((label, c), (_, p)) in cur.iter().zip(prev.iter()) {
            out.push_str(&format!("  {label:w$}  {c:wv$}  {p}\n"));
        }
        for (title, list) in [("by channel", &g.channels), ("by period", &g.buckets)] {
            if list.is_empty() {
                continue;
            }
            out.push_str(&format!("  {title}:\n"));
            for l in list {
                out.push_str(&format!(
                    "    {:24} {}\n",
                    super::one_line(&l.key, 24),
                    compact(&l.indicators)
                ));
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "* fewer than {} answers: a small sample, shown but not used in the composite index.\n",
        r.min_sample
    ));
    out
}

fn compact(i: &Indicators) -> String {
    format!(
        "n={} NPS {}{} CSAT {}{} CES {}{} stars {}{} index {}",
        i.interactions,
        num(i.nps.value, 0, ""),
        flag(i.nps.small_sample && i.nps.n > 0),
        num(i.csat.satisfied_pct.pct, 0, "%"),
        flag(i.csat.satisfied_pct.small_sample && i.csat.satisfied_pct.n > 0),
        num(i.ces.mean.value, 1, ""),
        flag(i.ces.mean.small_sample && i.ces.mean.n > 0),
        num(i.stars.mean.value, 2, ""),
        flag(i.stars.mean.small_sample && i.stars.mean.n > 0),
        num(i.composite.value, 1, "")
    )
}

/// A local date as the CLI reads it (`2024-03-31`).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}
