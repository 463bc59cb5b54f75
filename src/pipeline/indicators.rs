//! Service indicators: NPS, CSAT, CES, star rating, support times and a composite index,
//! each with its sample size and, where it applies, a 95% confidence interval.
//!
//! Pure: rows in, figures out; no IO and no clock. Periods are computed from a given local
//! date, and bucketing uses the IANA zone it is handed (the location's), so a day is a local
//! day on both sides of a DST change.
//!
//! Methods (README "Indicators"):
//! - NPS: each answer scores +1 (9-10), 0 (7-8) or -1 (0-6); NPS = 100 × mean. The CI uses
//!   the variance of that trinomial score, `p₊ + p₋ − (p₊ − p₋)²`, over n (normal approx.).
//! - Shares (% satisfied, % agreeing, reopen rate): the Wilson score interval.
//! - Means (stars, CSAT mean, CES mean): mean ± 1.96 · s/√n with the sample deviation s
//!   (n − 1); no interval below two answers.
//! - Medians and p90 of durations: linear interpolation between order statistics (the
//!   "type 7" rule: position (n − 1)·q), so the median of an even count is the mean of the
//!   middle two. No interval.

use crate::model::{Ces, Csat, InteractionKind};
use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Below this many answers a figure is flagged `small_sample` (and left out of the composite).
pub const DEFAULT_MIN_SAMPLE: u64 = 30;

/// What the computation needs of one stored interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorRow {
    pub source: String,
    pub external_id: String,
    pub kind: InteractionKind,
    pub parent_external_id: Option<String>,
    pub occurred_at_ms: i64,
    pub updated_at_ms: Option<i64>,
    pub location_id: Option<String>,
    pub customer_id: Option<String>,
    pub stars: Option<f64>,
    pub nps: Option<i64>,
    pub csat: Option<Csat>,
    pub ces: Option<Ces>,
    pub status: Option<String>,
    /// Support times read from the ticket's raw record (tickets only).
    pub ticket: Option<TicketTimes>,
}

/// What a ticket record says about its handling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketTimes {
    pub first_reply_min: Option<f64>,
    pub resolution_min: Option<f64>,
    /// The resolution time is created → last update of a solved ticket (no solve time known).
    pub resolution_approximate: bool,
    pub reopens: Option<i64>,
    /// The customer left before anyone answered (sources that say so).
    pub abandoned: Option<bool>,
}

/// Reads support times from a ticket's raw JSON (a Zendesk ticket, or the importer's
/// `{"ticket": ..., "requester": ...}` wrapper). Zendesk's `metric_set` (ticket metrics,
/// sideloaded with `include=metric_sets`) gives reply and resolution minutes and reopens;
/// without it a solved ticket's resolution is approximated by created → updated.
pub fn ticket_times(
    raw: &str,
    created_ms: i64,
    updated_ms: Option<i64>,
    status: Option<&str>,
    business_hours: bool,
) -> TicketTimes {
    let v: serde_json::Value = serde_json::from_str(raw).unwrap_or(serde_json::Value::Null);
    if let Some(t) = freshdesk_times(&v, created_ms, business_hours)
        .or_else(|| helpscout_times(&v, created_ms, business_hours))
        .or_else(|| intercom_times(&v, created_ms, business_hours))
    {
        return t;
    }
    let ticket = v.get("ticket").unwrap_or(&v);
    let metrics = ticket.get("metric_set").or_else(|| v.get("metric_set"));
    let minutes = |key: &str| {
        let m = metrics?.get(key)?;
        let which = if business_hours {
            "business"
        } else {
            "calendar"
        };
        m.get(which)
            .and_then(serde_json::Value::as_f64)
            .or_else(|| m.as_f64())
    };
    let mut t = TicketTimes {
        first_reply_min: minutes("reply_time_in_minutes"),
        resolution_min: minutes("full_resolution_time_in_minutes"),
        resolution_approximate: false,
        reopens: metrics
            .and_then(|m| m.get("reopens"))
            .and_then(serde_json::Value::as_i64),
        abandoned: None,
    };
    if t.resolution_min.is_none() && !business_hours {
        let solved_at = metrics
            .and_then(|m| m.get("solved_at"))
            .and_then(serde_json::Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp_millis());
        if let Some(s) = solved_at {
            t.resolution_min = Some((s - created_ms) as f64 / 60_000.0);
        } else if let (Some(u), Some("solved")) = (updated_ms, status) {
            t.resolution_min = Some((u - created_ms) as f64 / 60_000.0);
            t.resolution_approximate = true;
        }
    }
    t
}

/// Minutes from `created_ms` to an RFC 3339 instant.
fn minutes_since(created_ms: i64, at: Option<&serde_json::Value>) -> Option<f64> {
    let at = chrono::DateTime::parse_from_rfc3339(at?.as_str()?.trim()).ok()?;
    Some((at.timestamp_millis() - created_ms) as f64 / 60_000.0)
}

/// A number of hours as an export writes it (`1.5`, `1,5`, `01:30`), in minutes.
fn hours_cell(v: Option<&serde_json::Value>) -> Option<f64> {
    let s = v?.as_str()?.trim();
    if let Some((h, m)) = s.split_once(':') {
        let (h, m) = (h.trim().parse::<f64>().ok()?, m.trim().parse::<f64>().ok()?);
        return Some(h * 60.0 + m);
    }
    s.replace(',', ".").parse::<f64>().ok().map(|h| h * 60.0)
}

/// Freshdesk: a ticket of the API (`include=stats`: `first_responded_at`,
/// `agent_responded_at`, `resolved_at`, `closed_at`, `reopened_at`, all calendar instants)
/// or a row of the UI CSV export (`First response time (in hrs)`, `Resolution time (in
/// hrs)`, `Agent interactions`). `None` when the record is neither.
///
/// Freshdesk gives only the last `reopened_at`, so `reopens` is 1 or 0 (reopened at least
/// once or not), which is what the reopen rate counts. A resolved or closed ticket without
/// any agent response (no `first_responded_at` / `agent_responded_at`; in the CSV, zero
/// agent interactions or an empty first-response column) is abandoned; an answered one is
/// not; an open unanswered one is not known yet. In business-hours mode the times are
/// left out: both forms are calendar time.
fn freshdesk_times(
    v: &serde_json::Value,
    created_ms: i64,
    business_hours: bool,
) -> Option<TicketTimes> {
    let calendar = |x: Option<f64>| x.filter(|_| !business_hours);
    if let Some(stats) = v.get("stats").filter(|s| s.is_object()) {
        let at = |k: &str| stats.get(k).filter(|x| x.is_string());
        let first = at("first_responded_at").or_else(|| at("agent_responded_at"));
        let done = at("resolved_at").or_else(|| at("closed_at"));
        let status = v.get("status").and_then(serde_json::Value::as_i64);
        let finished = matches!(status, Some(4 | 5)) || done.is_some();
        return Some(TicketTimes {
            first_reply_min: calendar(minutes_since(created_ms, first)),
            resolution_min: calendar(minutes_since(created_ms, done)),
            resolution_approximate: false,
            reopens: Some(i64::from(at("reopened_at").is_some())),
            abandoned: match (first.is_some(), finished) {
                (true, _) => Some(false),
                (false, true) => Some(true),
                (false, false) => None,
            },
        });
    }
    let row = v.as_object()?;
    let first_col = row.get("First response time (in hrs)");
    let resolution_col = row.get("Resolution time (in hrs)");
    if first_col.is_none() && resolution_col.is_none() {
        return None;
    }
    let status = row
        .get("Status")
        .and_then(serde_json::Value::as_str)
        .map(|s| s.trim().to_lowercase());
    let finished = matches!(status.as_deref(), Some("resolved" | "closed"));
    let first = hours_cell(first_col);
    let agent_interactions = row
        .get("Agent interactions")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.trim().parse::<i64>().ok());
    let answered = match agent_interactions {
        Some(n) => Some(n > 0),
        None if first_col.is_some() => Some(first.is_some()),
        None => None,
    };
    Some(TicketTimes {
        first_reply_min: calendar(first),
        resolution_min: calendar(hours_cell(resolution_col)),
        resolution_approximate: false,
        reopens: None,
        abandoned: match (answered, finished) {
            (Some(true), _) => Some(false),
            (Some(false), true) => Some(true),
            _ => None,
        },
    })
}

/// Help Scout: a conversation of the Mailbox API 2.0 (`primaryCustomer`, `createdAt`,
/// `closedAt`, threads under `_embedded.threads` with `embed=threads`). The first reply is
/// the first `reply` thread a user (not the customer) wrote; the resolution is `closedAt`
/// of a closed conversation. Abandoned: closed with threads embedded and no such reply;
/// answered: not abandoned; spam or without threads: not known. `None` when the record is
/// not a Help Scout conversation.
fn helpscout_times(
    v: &serde_json::Value,
    created_ms: i64,
    business_hours: bool,
) -> Option<TicketTimes> {
    if v.get("primaryCustomer").is_none() && v.get("userUpdatedAt").is_none() {
        return None;
    }
    let calendar = |x: Option<f64>| x.filter(|_| !business_hours);
    let threads = v
        .pointer("/_embedded/threads")
        .and_then(serde_json::Value::as_array);
    let first_reply = threads.and_then(|ts| {
        ts.iter()
            .filter(|t| {
                t.get("type").and_then(serde_json::Value::as_str) == Some("reply")
                    && t.pointer("/createdBy/type")
                        .and_then(serde_json::Value::as_str)
                        .is_none_or(|k| k == "user")
            })
            .filter_map(|t| minutes_since(created_ms, t.get("createdAt")))
            .min_by(f64::total_cmp)
    });
    let status = v.get("status").and_then(serde_json::Value::as_str);
    let closed = status == Some("closed");
    Some(TicketTimes {
        first_reply_min: calendar(first_reply),
        resolution_min: calendar(minutes_since(created_ms, v.get("closedAt")).filter(|_| closed)),
        resolution_approximate: false,
        reopens: None,
        abandoned: match (threads.is_some(), first_reply.is_some(), closed) {
            (true, true, _) => Some(false),
            (true, false, true) => Some(true),
            _ => None,
        },
    })
}

/// Support times of an Intercom conversation (its `statistics`, as the search returns it,
/// alone or in the connector's `{"conversation": ...}` wrapper) or of a row of the
/// `intercom-csv` preset; `None` for any other record.
///
/// Intercom's durations (`time_to_admin_reply`, `time_to_last_close`) leave out time
/// outside office hours, so they are the business-hours figures; calendar figures come from
/// the timestamps (`first_admin_reply_at` after `first_contact_reply_at` or creation,
/// `last_close_at` after creation). Resolution counts only for a closed conversation.
/// Abandoned: a closed conversation whose statistics show no teammate reply
/// (`first_admin_reply_at` and `time_to_admin_reply` both absent) and no AI agent
/// (`ai_agent_participated`) answering; an answered one is not abandoned; an open one
/// without a reply is not known yet. The CSV rows say nothing reliable about it.
pub fn intercom_times(
    v: &serde_json::Value,
    created_ms: i64,
    business_hours: bool,
) -> Option<TicketTimes> {
    use serde_json::Value;
    let conv = v.get("conversation").unwrap_or(v);
    let num = |x: Option<&Value>| -> Option<f64> {
        match x? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => crate::pipeline::normalize::parse_number(s),
            _ => None,
        }
    };
    if let Some(stats) = conv.get("statistics").filter(|s| s.is_object()) {
        let at = |k: &str| num(stats.get(k)).map(|s| s * 1000.0);
        let secs = |k: &str| num(stats.get(k));
        let closed = conv.get("state").and_then(Value::as_str) == Some("closed");
        let asked_ms = at("first_contact_reply_at").unwrap_or(created_ms as f64);
        let first_reply_min = if business_hours {
            secs("time_to_admin_reply").map(|s| s / 60.0)
        } else {
            at("first_admin_reply_at").map(|r| (r - asked_ms).max(0.0) / 60_000.0)
        };
        let resolution_min = if !closed {
            None
        } else if business_hours {
            secs("time_to_last_close").map(|s| s / 60.0)
        } else {
            at("last_close_at").map(|c| (c - created_ms as f64).max(0.0) / 60_000.0)
        };
        let replied = stats
            .get("first_admin_reply_at")
            .is_some_and(|x| !x.is_null())
            || stats
                .get("time_to_admin_reply")
                .is_some_and(|x| !x.is_null());
        let ai = conv.get("ai_agent_participated").and_then(Value::as_bool) == Some(true);
        let abandoned = if replied {
            Some(false)
        } else if closed && !ai {
            Some(true)
        } else {
            None
        };
        return Some(TicketTimes {
            first_reply_min,
            resolution_min,
            resolution_approximate: false,
            reopens: num(stats.get("count_reopens")).map(|n| n as i64),
            abandoned,
        });
    }
    // A row of the CSV export: `{header: value}` with a conversation id column.
    let row = v.as_object()?;
    // A header matches with or without a unit in brackets: `First response time (min)`.
    let bare = |k: &str| k.split(" (").next().unwrap_or(k).trim().to_lowercase();
    let find = |names: &[&str]| -> Option<(&String, &Value)> {
        names.iter().find_map(|n| {
            row.iter().find(|(k, x)| {
                bare(k) == n.to_lowercase() && x.as_str().is_some_and(|s| !s.trim().is_empty())
            })
        })
    };
    if !row.keys().any(|k| {
        k.trim().eq_ignore_ascii_case("conversation id")
            || k.trim().eq_ignore_ascii_case("conversation_id")
    }) {
        return None;
    }
    let minutes = |names: &[&str]| {
        find(names).and_then(|(h, x)| duration_minutes(h, x.as_str().unwrap_or("")))
    };
    Some(TicketTimes {
        first_reply_min: minutes(CSV_FIRST_RESPONSE),
        resolution_min: minutes(CSV_CLOSE),
        resolution_approximate: false,
        reopens: find(CSV_REOPENS).and_then(|(_, x)| x.as_str()?.trim().parse::<i64>().ok()),
        abandoned: None,
    })
}

/// Headers of the Intercom CSV export that may hold the first reply time, the close time
/// and the reopens (not documented by Intercom; the usual spellings).
const CSV_FIRST_RESPONSE: &[&str] = &[
    "First response time",
    "Time to first response",
    "Time to first reply",
    "First reply time",
    "Time to admin reply",
    "time_to_admin_reply",
];
const CSV_CLOSE: &[&str] = &[
    "Time to close",
    "Time to last close",
    "Resolution time",
    "time_to_last_close",
];
const CSV_REOPENS: &[&str] = &["Reopens", "Times reopened", "count_reopens"];

/// A duration cell in minutes: `1:05:30` (h:m:s), `1h 5m 30s`, `2d 3h`, or a bare number,
/// read in the unit its header names (`(min)`, `minutes`, `(h)`, `hours`), else as seconds
/// (Intercom's API unit). The export's format is not documented; these are the usual ones.
fn duration_minutes(header: &str, cell: &str) -> Option<f64> {
    let c = cell.trim();
    if c.is_empty() {
        return None;
    }
    let h = header.to_lowercase();
    if let Some(n) = crate::pipeline::normalize::parse_number(c) {
        let per_min = if h.contains("(min") || h.contains("minutes") {
            1.0
        } else if h.contains("(h") || h.contains("hours") {
            1.0 / 60.0
        } else {
            60.0
        };
        return (n >= 0.0).then_some(n / per_min);
    }
    if c.contains(':') {
        let parts: Vec<f64> = c
            .split(':')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .ok()?;
        return match parts.as_slice() {
            [h, m, s] => Some(h * 60.0 + m + s / 60.0),
            [m, s] => Some(m + s / 60.0),
            _ => None,
        };
    }
    let mut total = 0.0;
    let mut any = false;
    for tok in c.split_whitespace() {
        let split = tok.find(|ch: char| ch.is_ascii_alphabetic())?;
        let (n, unit) = tok.split_at(split);
        let n = crate::pipeline::normalize::parse_number(n)?;
        total += n * match unit {
            "d" => 1440.0,
            "h" => 60.0,
            "m" | "min" => 1.0,
            "s" => 1.0 / 60.0,
            _ => return None,
        };
        any = true;
    }
    any.then_some(total)
}

/// The weights of the composite index, one per component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weights {
    pub nps: f64,
    pub csat: f64,
    pub ces: f64,
    pub stars: f64,
}

impl Default for Weights {
    /// NPS 0.3, CSAT 0.3, CES 0.2, stars 0.2.
    fn default() -> Self {
        Self {
            nps: 0.3,
            csat: 0.3,
            ces: 0.2,
            stars: 0.2,
        }
    }
}

/// `[indicators]` as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorSettings {
    pub min_sample: u64,
    pub weights: Weights,
    /// Per CSAT scale (`1-5`, `1-10`): the lowest answer that counts as satisfied. Scales
    /// not listed keep the flag set at import (the top two of five or more points).
    pub csat_satisfied_at: BTreeMap<String, f64>,
    /// Zendesk business-hour minutes instead of calendar minutes.
    pub business_hours: bool,
}

impl Default for IndicatorSettings {
    fn default() -> Self {
        Self {
            min_sample: DEFAULT_MIN_SAMPLE,
            weights: Weights::default(),
            csat_satisfied_at: BTreeMap::new(),
            business_hours: false,
        }
    }
}

/// A share in percent with its Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    pub pct: Option<f64>,
    pub count: u64,
    pub n: u64,
    pub ci95: Option<[f64; 2]>,
    pub small_sample: bool,
}

impl Share {
    pub fn new(count: u64, n: u64, min: u64) -> Self {
        Self {
            pct: (n > 0).then(|| 100.0 * count as f64 / n as f64),
            count,
            n,
            ci95: wilson(count, n).map(|(a, b)| [100.0 * a, 100.0 * b]),
            small_sample: n < min,
        }
    }
}

/// The Wilson score interval of `k` successes in `n`, as fractions.
pub fn wilson(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (n, p, z2) = (n as f64, k as f64 / n as f64, Z95 * Z95);
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// A mean with its normal-approximation interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mean {
    pub value: Option<f64>,
    pub n: u64,
    pub ci95: Option<[f64; 2]>,
    pub small_sample: bool,
}

impl Mean {
    pub fn of(xs: &[f64], min: u64) -> Self {
        let n = xs.len() as u64;
        let value = (n > 0).then(|| xs.iter().sum::<f64>() / n as f64);
        let ci95 = match value {
            Some(m) if n >= 2 => {
                let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
                let half = Z95 * (var / n as f64).sqrt();
                Some([m - half, m + half])
            }
            _ => None,
        };
        Self {
            value,
            n,
            ci95,
            small_sample: n < min,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nps {
    /// −100..100; `None` without answers (never 0).
    pub value: Option<f64>,
    pub n: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub ci95: Option<[f64; 2]>,
    pub small_sample: bool,
}

pub fn nps(answers: &[i64], min: u64) -> Nps {
    let promoters = answers.iter().filter(|a| **a >= 9).count() as u64;
    let detractors = answers.iter().filter(|a| **a <= 6).count() as u64;
    let n = answers.len() as u64;
    let (value, ci95) = if n == 0 {
        (None, None)
    } else {
        let (pp, pd) = (promoters as f64 / n as f64, detractors as f64 / n as f64);
        let m = pp - pd;
        let se = ((pp + pd - m * m).max(0.0) / n as f64).sqrt();
        let lo = (100.0 * (m - Z95 * se)).max(-100.0);
        let hi = (100.0 * (m + Z95 * se)).min(100.0);
        (Some(100.0 * m), Some([lo, hi]))
    };
    Nps {
        value,
        n,
        promoters,
        passives: n - promoters - detractors,
        detractors,
        ci95,
        small_sample: n < min,
    }
}

/// CSAT: the share satisfied and, apart, the mean on each declared scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsatFigures {
    pub satisfied_pct: Share,
    /// One mean per declared scale (`good/bad` answers are 1 and 0).
    pub mean_by_scale: Vec<ScaleMean>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleMean {
    pub scale: String,
    pub mean: Mean,
}

pub fn csat(answers: &[&Csat], settings: &IndicatorSettings) -> CsatFigures {
    let satisfied = answers
        .iter()
        .filter(|c| match settings.csat_satisfied_at.get(&c.scale) {
            Some(t) => c.value >= *t,
            None => c.satisfied,
        })
        .count() as u64;
    let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for c in answers {
        by.entry(c.scale.as_str()).or_default().push(c.value);
    }
    CsatFigures {
        satisfied_pct: Share::new(satisfied, answers.len() as u64, settings.min_sample),
        mean_by_scale: by
            .into_iter()
            .map(|(scale, xs)| ScaleMean {
                scale: scale.to_string(),
                mean: Mean::of(&xs, settings.min_sample),
            })
            .collect(),
    }
}

/// A CES answer on the CES 2.0 1-7 scale (7 = easiest). Other declared scales map
/// linearly; `-reversed` ones (the original 5-point CES, 1 = least effort) flip first, so
/// reversed 1 → 7 and 5 → 1.
pub fn ces_on_1_7(c: &Ces) -> Option<f64> {
    let reversed = c.scale.ends_with("-reversed");
    let (a, b) = c.scale.trim_end_matches("-reversed").split_once('-')?;
    let (lo, hi) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
    if hi <= lo {
        return None;
    }
    let pos = if reversed { hi - c.value } else { c.value - lo };
    Some(1.0 + 6.0 * pos / (hi - lo))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CesFigures {
    /// On 1-7 (reversed and other scales mapped, see [`ces_on_1_7`]).
    pub mean: Mean,
    /// Agreeing that it was easy: 5-7 on 1-7, 1-2 on the reversed 5-point form.
    pub agree_pct: Share,
}

pub fn ces(answers: &[&Ces], min: u64) -> CesFigures {
    let xs: Vec<f64> = answers.iter().filter_map(|c| ces_on_1_7(c)).collect();
    let agree = answers.iter().filter(|c| c.agrees).count() as u64;
    CesFigures {
        mean: Mean::of(&xs, min),
        agree_pct: Share::new(agree, answers.len() as u64, min),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StarFigures {
    pub mean: Mean,
    /// Answers with 1, 2, 3, 4, 5 stars (half stars round down).
    pub distribution: [u64; 5],
}

pub fn stars(xs: &[f64], min: u64) -> StarFigures {
    let mut distribution = [0; 5];
    for x in xs {
        distribution[(x.floor().clamp(1.0, 5.0) as usize) - 1] += 1;
    }
    StarFigures {
        mean: Mean::of(xs, min),
        distribution,
    }
}

/// The q-quantile (0..=1) by linear interpolation between order statistics.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    let hi = (lo + 1).min(sorted.len() - 1);
    Some(sorted[lo] + frac * (sorted[hi] - sorted[lo]))
}

/// Median and p90 of durations, in hours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Durations {
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
    pub n: u64,
    pub small_sample: bool,
}

pub fn durations(minutes: &[f64], min: u64) -> Durations {
    let mut s: Vec<f64> = minutes.iter().map(|m| m / 60.0).collect();
    s.sort_by(f64::total_cmp);
    Durations {
        median_hours: quantile(&s, 0.5),
        p90_hours: quantile(&s, 0.9),
        n: s.len() as u64,
        small_sample: (s.len() as u64) < min,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupportFigures {
    pub tickets: u64,
    pub first_reply: Durations,
    pub resolution: Durations,
    /// Resolution times taken as created → last update of a solved ticket.
    pub resolution_approximate: u64,
    /// Tickets reopened at least once, among tickets whose metrics say.
    pub reopen_rate: Share,
    /// Contacts the customer left before anyone answered, among tickets of sources that
    /// say so (none do: no figure).
    pub abandonment_rate: Share,
    /// Tickets per customer (tickets with a known customer / their distinct customers).
    pub tickets_per_customer: Option<f64>,
    pub customers: u64,
    /// Per ticket: 1 + the customer's own comments on it; only when comments are stored.
    pub contacts_per_issue: Option<f64>,
}

fn support(rows: &[&IndicatorRow], min: u64) -> SupportFigures {
    let tickets: Vec<&&IndicatorRow> = rows
        .iter()
        .filter(|r| r.kind == InteractionKind::Ticket)
        .collect();
    let times: Vec<&TicketTimes> = tickets.iter().filter_map(|t| t.ticket.as_ref()).collect();
    let first: Vec<f64> = times.iter().filter_map(|t| t.first_reply_min).collect();
    let resolution: Vec<f64> = times.iter().filter_map(|t| t.resolution_min).collect();
    let reopens: Vec<i64> = times.iter().filter_map(|t| t.reopens).collect();
    let abandoned: Vec<bool> = times.iter().filter_map(|t| t.abandoned).collect();
    let with_customer: Vec<&str> = tickets
        .iter()
        .filter_map(|t| t.customer_id.as_deref())
        .collect();
    let customers: BTreeSet<&str> = with_customer.iter().copied().collect();
    let comments: Vec<&&IndicatorRow> = rows
        .iter()
        .filter(|r| r.kind == InteractionKind::TicketComment)
        .collect();
    let contacts_per_issue = (!comments.is_empty() && !tickets.is_empty()).then(|| {
        let total: u64 = tickets
            .iter()
            .map(|t| {
                let own_comments = comments
                    .iter()
                    .filter(|c| {
                        c.source == t.source
                            && c.parent_external_id.as_deref() == Some(t.external_id.as_str())
                            && c.customer_id.is_some()
                            && c.customer_id == t.customer_id
                    })
                    .count() as u64;
                1 + own_comments
            })
            .sum();
        total as f64 / tickets.len() as f64
    });
    SupportFigures {
        tickets: tickets.len() as u64,
        first_reply: durations(&first, min),
        resolution: durations(&resolution, min),
        resolution_approximate: times
            .iter()
            .filter(|t| t.resolution_min.is_some() && t.resolution_approximate)
            .count() as u64,
        reopen_rate: Share::new(
            reopens.iter().filter(|r| **r > 0).count() as u64,
            reopens.len() as u64,
            min,
        ),
        abandonment_rate: Share::new(
            abandoned.iter().filter(|a| **a).count() as u64,
            abandoned.len() as u64,
            min,
        ),
        tickets_per_customer: (!customers.is_empty())
            .then(|| with_customer.len() as f64 / customers.len() as f64),
        customers: customers.len() as u64,
        contacts_per_issue,
    }
}

/// One part of the composite index, on 0-100.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    pub name: &'static str,
    /// The component on 0-100: NPS (v + 100) / 2, CSAT % satisfied, CES % agreeing, stars
    /// (mean − 1) / 4 × 100.
    pub value: Option<f64>,
    pub n: u64,
    /// The declared weight.
    pub weight: f64,
    /// The weight after renormalising over the components used (0 when left out).
    pub effective_weight: f64,
    /// Why it was left out (`no answers`, `small sample`), if it was.
    pub left_out: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Composite {
    /// 0-100; `None` when no component has enough answers.
    pub value: Option<f64>,
    pub components: Vec<Component>,
    /// Whether some weight was left out and the rest renormalised.
    pub renormalised: bool,
}

/// Combines components given as (name, value on 0-100, n, weight).
pub fn composite(parts: &[(&'static str, Option<f64>, u64, f64)], min: u64) -> Composite {
    let mut components: Vec<Component> = parts
        .iter()
        .map(|&(name, value, n, weight)| Component {
            name,
            value,
            n,
            weight,
            effective_weight: 0.0,
            left_out: if value.is_none() || n == 0 {
                Some("no answers")
            } else if n < min {
                Some("small sample")
            } else {
                None
            },
        })
        .collect();
    let used: f64 = components
        .iter()
        .filter(|c| c.left_out.is_none())
        .map(|c| c.weight)
        .sum();
    let mut value = None;
    if used > 0.0 {
        let mut sum = 0.0;
        for c in components.iter_mut().filter(|c| c.left_out.is_none()) {
            c.effective_weight = c.weight / used;
            sum += c.effective_weight * c.value.unwrap_or(0.0);
        }
        value = Some(sum);
    }
    let renormalised = components
        .iter()
        .any(|c| c.left_out.is_some() && c.weight > 0.0);
    Composite {
        value,
        components,
        renormalised,
    }
}

/// Every indicator of one group of rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Indicators {
    pub interactions: u64,
    pub nps: Nps,
    pub csat: CsatFigures,
    pub ces: CesFigures,
    pub stars: StarFigures,
    pub support: SupportFigures,
    pub composite: Composite,
}

pub fn compute(rows: &[&IndicatorRow], settings: &IndicatorSettings) -> Indicators {
    let min = settings.min_sample;
    let nps_answers: Vec<i64> = rows.iter().filter_map(|r| r.nps).collect();
    let csat_answers: Vec<&Csat> = rows.iter().filter_map(|r| r.csat.as_ref()).collect();
    let ces_answers: Vec<&Ces> = rows.iter().filter_map(|r| r.ces.as_ref()).collect();
    let star_answers: Vec<f64> = rows.iter().filter_map(|r| r.stars).collect();
    let nps = nps(&nps_answers, min);
    let csat = csat(&csat_answers, settings);
    let ces = ces(&ces_answers, min);
    let stars = stars(&star_answers, min);
    let w = &settings.weights;
    let composite = composite(
        &[
            ("nps", nps.value.map(|v| (v + 100.0) / 2.0), nps.n, w.nps),
            ("csat", csat.satisfied_pct.pct, csat.satisfied_pct.n, w.csat),
            ("ces", ces.agree_pct.pct, ces.agree_pct.n, w.ces),
            (
                "stars",
                stars.mean.value.map(|m| (m - 1.0) / 4.0 * 100.0),
                stars.mean.n,
                w.stars,
            ),
        ],
        min,
    );
    Indicators {
        interactions: rows.len() as u64,
        support: support(rows, min),
        nps,
        csat,
        ces,
        stars,
        composite,
    }
}

/// The unit of a period or bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// The local date that starts `date`'s bucket (weeks start on Monday).
pub fn bucket_start(date: NaiveDate, unit: Unit) -> NaiveDate {
    match unit {
        Unit::Day => date,
        Unit::Week => date - Duration::days(date.weekday().num_days_from_monday() as i64),
        Unit::Month => date.with_day(1).unwrap_or(date),
        Unit::Quarter => {
            NaiveDate::from_ymd_opt(date.year(), (date.month0() / 3) * 3 + 1, 1).unwrap_or(date)
        }
        Unit::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date),
    }
}

/// The start of the bucket after the one starting at `start`.
pub fn next_start(start: NaiveDate, unit: Unit) -> NaiveDate {
    match unit {
        Unit::Day => start + Duration::days(1),
        Unit::Week => start + Duration::days(7),
        Unit::Month => start + chrono::Months::new(1),
        Unit::Quarter => start + chrono::Months::new(3),
        Unit::Year => start + chrono::Months::new(12),
    }
}

/// The UTC instant of local midnight starting `date` in `tz`; a midnight inside a DST gap
/// moves to the first local time that exists.
pub fn local_midnight_ms(date: NaiveDate, tz: Tz) -> i64 {
    let mut t = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return dt.timestamp_millis();
        }
        t += Duration::minutes(30);
    }
    tz.from_utc_datetime(&t).timestamp_millis()
}

/// The local date of an instant in `tz`.
pub fn local_date(ms: i64, tz: Tz) -> NaiveDate {
    tz.timestamp_millis_opt(ms)
        .single()
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

/// A span of whole local days: `from` inclusive, `until` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: NaiveDate,
    pub until: NaiveDate,
}

impl Window {
    pub fn bounds_ms(&self, tz: Tz) -> (i64, i64) {
        (
            local_midnight_ms(self.from, tz),
            local_midnight_ms(self.until, tz),
        )
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodSpec {
    /// The last n local days, today included.
    LastDays(u32),
    /// The last complete week, month, quarter or year.
    Last(Unit),
    /// From and to, both dates included.
    Dates(NaiveDate, NaiveDate),
}

impl PeriodSpec {
    /// `last-30d`, `week`, `month`, `quarter`, `year`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "week" | "last-week" => Some(Self::Last(Unit::Week)),
            "month" | "last-month" => Some(Self::Last(Unit::Month)),
            "quarter" | "last-quarter" => Some(Self::Last(Unit::Quarter)),
            "year" | "last-year" => Some(Self::Last(Unit::Year)),
            _ => {
                let n: u32 = s.strip_prefix("last-")?.strip_suffix('d')?.parse().ok()?;
                (n > 0).then_some(Self::LastDays(n))
            }
        }
    }

    /// The period and the one before it, of equal length: the same number of days
    /// before, or the previous calendar week, month, quarter or year.
    pub fn windows(&self, today: NaiveDate) -> (Window, Window) {
        match *self {
            Self::LastDays(n) => days_back(today + Duration::days(1), n as i64),
            Self::Dates(a, b) => {
                let until = b + Duration::days(1);
                days_back(until, (until - a).num_days().max(1))
            }
            Self::Last(unit) => {
                let this = bucket_start(today, unit);
                let cur_from = bucket_start(this - Duration::days(1), unit);
                let prev_from = bucket_start(cur_from - Duration::days(1), unit);
                (
                    Window {
                        from: cur_from,
                        until: this,
                    },
                    Window {
                        from: prev_from,
                        until: cur_from,
                    },
                )
            }
        }
    }
}

fn days_back(until: NaiveDate, days: i64) -> (Window, Window) {
    let from = until - Duration::days(days);
    (
        Window { from, until },
        Window {
            from: from - Duration::days(days),
            until: from,
        },
    )
}

/// Rows split into local buckets of `unit` inside `window` (empty buckets included).
pub fn buckets<'a>(
    rows: &[&'a IndicatorRow],
    window: Window,
    unit: Unit,
    tz: Tz,
) -> Vec<(NaiveDate, Vec<&'a IndicatorRow>)> {
    let mut out: BTreeMap<NaiveDate, Vec<&IndicatorRow>> = BTreeMap::new();
    let mut s = bucket_start(window.from, unit);
    while s < window.until {
        out.insert(s, Vec::new());
        s = next_start(s, unit);
    }
    let (lo, hi) = window.bounds_ms(tz);
    for r in rows {
        if r.occurred_at_ms >= lo && r.occurred_at_ms < hi {
            let b = bucket_start(local_date(r.occurred_at_ms, tz), unit);
            out.entry(b).or_default().push(r);
        }
    }
    out.into_iter().collect()
}

/// What a group is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Location,
    /// `source/kind`.
    Channel,
    Customer,
}

/// Rows grouped by location, channel or customer (`None` keys for rows without one).
pub fn group<'a>(
    rows: &[&'a IndicatorRow],
    by: GroupBy,
) -> Vec<(Option<String>, Vec<&'a IndicatorRow>)> {
    let mut out: BTreeMap<Option<String>, Vec<&IndicatorRow>> = BTreeMap::new();
    for r in rows {
        let key = match by {
            GroupBy::Location => r.location_id.clone(),
            GroupBy::Channel => Some(format!("{}/{}", r.source, r.kind)),
            GroupBy::Customer => r.customer_id.clone(),
        };
        out.entry(key).or_default().push(r);
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-6, "{a} != {b}");
    }

    fn s(min: u64) -> IndicatorSettings {
        IndicatorSettings {
            min_sample: min,
            ..IndicatorSettings::default()
        }
    }

    #[test]
    fn nps_mixed_all_detractors_all_promoters_and_none() {
        // 10, 9, 9 promoters; 8, 7 passives; 6, 0 detractors: n = 7.
        let r = nps(&[10, 9, 9, 8, 7, 6, 0], 30);
        // (3 - 2) / 7 × 100 = 14.285714...
        close(r.value.unwrap(), 100.0 / 7.0);
        assert_eq!((r.promoters, r.passives, r.detractors, r.n), (3, 2, 2, 7));
        assert!(r.small_sample);
        // var = 3/7 + 2/7 - (1/7)² = 35/49 - 1/49 = 34/49; se = sqrt(34/49 / 7) = 0.3148...
        // CI = 100 × (0.142857 ± 1.96 × 0.314838) = 100 × (0.142857 ± 0.617071) = [-47.42, 75.99]
        let se = (34.0f64 / 49.0 / 7.0).sqrt();
        let [lo, hi] = r.ci95.unwrap();
        close(lo, 100.0 * (1.0 / 7.0 - Z95 * se));
        close(hi, 100.0 * (1.0 / 7.0 + Z95 * se));
        assert!(
            (lo - -47.42).abs() < 0.01 && (hi - 75.99).abs() < 0.01,
            "{lo} {hi}"
        );

        // All detractors: -100, variance 1 - 1 = 0, so the CI collapses to [-100, -100].
        let d = nps(&[0, 3, 6], 30);
        assert_eq!(d.value, Some(-100.0));
        assert_eq!(d.ci95, Some([-100.0, -100.0]));
        // All promoters: +100.
        assert_eq!(nps(&[9, 10], 30).value, Some(100.0));
        // No answers: no figure, not 0.
        let none = nps(&[], 30);
        assert_eq!((none.value, none.n, none.ci95), (None, 0, None));
    }

    fn c(value: f64, scale: &str, satisfied: bool) -> Csat {
        Csat {
            value,
            scale: scale.into(),
            satisfied,
        }
    }

    #[test]
    fn csat_share_and_mean_on_1_5_and_good_bad() {
        // 1-5: 5, 4, 4, 3, 1 -> satisfied (≥ 4) 3 of 5 = 60%; mean (5+4+4+3+1)/5 = 17/5 = 3.4.
        let a = [
            c(5.0, "1-5", true),
            c(4.0, "1-5", true),
            c(4.0, "1-5", true),
            c(3.0, "1-5", false),
            c(1.0, "1-5", false),
        ];
        let refs: Vec<&Csat> = a.iter().collect();
        let f = csat(&refs, &s(30));
        close(f.satisfied_pct.pct.unwrap(), 60.0);
        assert_eq!(f.mean_by_scale.len(), 1);
        close(f.mean_by_scale[0].mean.value.unwrap(), 3.4);
        // Wilson, k = 3, n = 5, z² = 3.8415: centre (0.6 + 0.3841) / 1.7683 = 0.5565;
        // half 1.96/1.7683 × sqrt(0.048 + 0.0384) = 0.3258 -> [23.07%, 88.24%].
        let [lo, hi] = f.satisfied_pct.ci95.unwrap();
        assert!(
            (lo - 23.07).abs() < 0.01 && (hi - 88.24).abs() < 0.01,
            "{lo} {hi}"
        );

        // good/bad: good, good, good, bad -> 3 of 4 = 75%; mean (1+1+1+0)/4 = 0.75.
        let g = [
            c(1.0, "good/bad", true),
            c(1.0, "good/bad", true),
            c(1.0, "good/bad", true),
            c(0.0, "good/bad", false),
        ];
        let refs: Vec<&Csat> = g.iter().collect();
        let f = csat(&refs, &s(30));
        close(f.satisfied_pct.pct.unwrap(), 75.0);
        close(f.mean_by_scale[0].mean.value.unwrap(), 0.75);

        // A configured threshold wins over the stored flag: ≥ 5 on 1-5 -> 1 of 5 = 20%.
        let mut st = s(30);
        st.csat_satisfied_at.insert("1-5".into(), 5.0);
        let refs: Vec<&Csat> = a.iter().collect();
        close(csat(&refs, &st).satisfied_pct.pct.unwrap(), 20.0);
    }

    fn e(value: f64, scale: &str, agrees: bool) -> Ces {
        Ces {
            value,
            scale: scale.into(),
            agrees,
        }
    }

    #[test]
    fn ces_on_1_7_and_reversed_5_point() {
        // 1-7: 7, 6, 5, 2 -> mean 20/4 = 5.0; agreeing (5-7) 3 of 4 = 75%.
        let a = [
            e(7.0, "1-7", true),
            e(6.0, "1-7", true),
            e(5.0, "1-7", true),
            e(2.0, "1-7", false),
        ];
        let refs: Vec<&Ces> = a.iter().collect();
        let f = ces(&refs, 30);
        close(f.mean.value.unwrap(), 5.0);
        close(f.agree_pct.pct.unwrap(), 75.0);
        // Reversed 1-5: 1 -> 1 + 6×(5-1)/4 = 7; 2 -> 5.5; 5 -> 1. Mean (7+5.5+1)/3 = 4.5;
        // agreeing (1-2) 2 of 3 = 66.67%.
        let r = [
            e(1.0, "1-5-reversed", true),
            e(2.0, "1-5-reversed", true),
            e(5.0, "1-5-reversed", false),
        ];
        let refs: Vec<&Ces> = r.iter().collect();
        let f = ces(&refs, 30);
        close(f.mean.value.unwrap(), 4.5);
        close(f.agree_pct.pct.unwrap(), 200.0 / 3.0);
    }

    #[test]
    fn stars_mean_distribution_and_interval() {
        // 5, 4, 4, 2: mean 15/4 = 3.75; s² = (1.5625 + 0.0625 + 0.0625 + 3.0625)/3 = 4.75/3;
        // half = 1.96 × sqrt(4.75/3/4) = 1.96 × 0.6292 = 1.2332 -> [2.5168, 4.9832].
        let f = stars(&[5.0, 4.0, 4.0, 2.0], 30);
        close(f.mean.value.unwrap(), 3.75);
        assert_eq!(f.distribution, [0, 1, 0, 2, 1]);
        let [lo, hi] = f.mean.ci95.unwrap();
        close(hi - 3.75, Z95 * (4.75f64 / 3.0 / 4.0).sqrt());
        assert!((lo - 2.5168).abs() < 1e-3, "{lo}");
        // One answer: a mean, no interval.
        assert_eq!(stars(&[3.0], 30).mean.ci95, None);
    }

    #[test]
    fn medians_and_p90_of_odd_and_even_counts() {
        // Odd: 1, 2, 3, 4, 100 -> median the 3rd = 3; p90 at (5-1)×0.9 = 3.6 ->
        // 4 + 0.6 × (100 - 4) = 61.6.
        let s = [4.0, 1.0, 100.0, 3.0, 2.0];
        let mut v = s.to_vec();
        v.sort_by(f64::total_cmp);
        close(quantile(&v, 0.5).unwrap(), 3.0);
        close(quantile(&v, 0.9).unwrap(), 61.6);
        // Even: 1, 2, 3, 4 -> median (2 + 3)/2 = 2.5; p90 at 3 × 0.9 = 2.7 -> 3 + 0.7 = 3.7.
        close(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5).unwrap(), 2.5);
        close(quantile(&[1.0, 2.0, 3.0, 4.0], 0.9).unwrap(), 3.7);
        assert_eq!(quantile(&[], 0.5), None);
        // In hours: 60 and 180 minutes -> median 2 h.
        let d = durations(&[180.0, 60.0], 30);
        close(d.median_hours.unwrap(), 2.0);
        assert!(d.small_sample);
    }

    #[test]
    fn composite_renormalises_when_a_component_is_missing() {
        // NPS 20 -> (20 + 100)/2 = 60 (w 0.3); CSAT 80 (w 0.3); CES none (w 0.2);
        // stars 4.0 -> 75 (w 0.2). Used weight 0.8: 60×0.375 + 80×0.375 + 75×0.25 = 71.25.
        let c = composite(
            &[
                ("nps", Some(60.0), 40, 0.3),
                ("csat", Some(80.0), 40, 0.3),
                ("ces", None, 0, 0.2),
                ("stars", Some(75.0), 40, 0.2),
            ],
            30,
        );
        close(c.value.unwrap(), 71.25);
        assert!(c.renormalised);
        assert_eq!(c.components[2].left_out, Some("no answers"));
        close(c.components[0].effective_weight, 0.375);
        // A small sample is left out too: only NPS (n 40) counts -> 60.
        let c = composite(
            &[("nps", Some(60.0), 40, 0.5), ("csat", Some(10.0), 5, 0.5)],
            30,
        );
        close(c.value.unwrap(), 60.0);
        assert_eq!(c.components[1].left_out, Some("small sample"));
        // Nothing usable: no index.
        assert_eq!(composite(&[("nps", None, 0, 1.0)], 30).value, None);
    }

    #[test]
    fn wilson_bounds() {
        // k = 0, n = 10: lower 0; upper = 2 × (z²/20) / (1 + z²/10) = 0.38415/1.38415 = 0.2775.
        let (lo, hi) = wilson(0, 10).unwrap();
        close(lo, 0.0);
        assert!((hi - 0.2775).abs() < 1e-4, "{hi}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn ticket_times_from_metric_set_or_solved_update() {
        let raw = r#"{"ticket":{"id":1,"metric_set":{"reply_time_in_minutes":{"calendar":30,"business":10},
            "full_resolution_time_in_minutes":{"calendar":600,"business":200},"reopens":1}}}"#;
        let t = ticket_times(raw, 0, None, Some("closed"), false);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.reopens),
            (Some(30.0), Some(600.0), Some(1))
        );
        assert_eq!(
            ticket_times(raw, 0, None, None, true).first_reply_min,
            Some(10.0)
        );
        // No metrics, solved: created -> updated, 2 h = 120 min, marked approximate.
        let t = ticket_times(r#"{"id":2}"#, 0, Some(7_200_000), Some("solved"), false);
        assert_eq!(
            (t.resolution_min, t.resolution_approximate),
            (Some(120.0), true)
        );
        assert_eq!(
            ticket_times("{}", 0, Some(1), Some("open"), false).resolution_min,
            None
        );
    }

    #[test]
    fn freshdesk_times_from_stats_and_from_the_csv_hours() {
        // Created 2024-01-02T10:00:00Z; first response 90 min later, resolved after 1 day.
        let created = 1_704_189_600_000;
        let api = r#"{"id":1,"status":4,"created_at":"2024-01-02T10:00:00Z","stats":{
            "first_responded_at":"2024-01-02T11:30:00Z","agent_responded_at":"2024-01-02T11:30:00Z",
            "resolved_at":"2024-01-03T10:00:00Z","closed_at":null,"reopened_at":"2024-01-02T20:00:00Z"}}"#;
        let t = ticket_times(api, created, None, Some("Resolved"), false);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.reopens, t.abandoned),
            (Some(90.0), Some(1440.0), Some(1), Some(false))
        );
        // Business hours: Freshdesk gives calendar instants only.
        let b = ticket_times(api, created, None, None, true);
        assert_eq!((b.first_reply_min, b.abandoned), (None, Some(false)));
        // Closed with no agent response: abandoned; open and unanswered: not known yet.
        let closed = r#"{"id":2,"status":5,"stats":{"first_responded_at":null,"closed_at":"2024-01-02T12:00:00Z","reopened_at":null}}"#;
        let t = ticket_times(closed, created, None, None, false);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.reopens, t.abandoned),
            (None, Some(120.0), Some(0), Some(true))
        );
        let open = r#"{"id":3,"status":2,"stats":{"first_responded_at":null}}"#;
        assert_eq!(
            ticket_times(open, created, None, None, false).abandoned,
            None
        );
        // The CSV row: hours with a decimal comma, agent interactions.
        let row = r#"{"Ticket ID":"4","Status":"Closed","First response time (in hrs)":"1,5",
            "Resolution time (in hrs)":"24","Agent interactions":"2"}"#;
        let t = ticket_times(row, created, None, Some("Closed"), false);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.abandoned),
            (Some(90.0), Some(1440.0), Some(false))
        );
        let row = r#"{"Ticket ID":"5","Status":"Resolved","First response time (in hrs)":"","Resolution time (in hrs)":"00:30"}"#;
        let t = ticket_times(row, created, None, None, false);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.abandoned),
            (None, Some(30.0), Some(true))
        );
    }

    #[test]
    fn helpscout_times_from_threads() {
        let created = 1_704_189_600_000; // 2024-01-02T10:00:00Z
        let conv = r#"{"id":1,"status":"closed","createdAt":"2024-01-02T10:00:00Z",
            "closedAt":"2024-01-02T14:00:00Z","primaryCustomer":{"id":5},
            "_embedded":{"threads":[
              {"type":"note","createdAt":"2024-01-02T10:05:00Z","createdBy":{"type":"user"}},
              {"type":"reply","createdAt":"2024-01-02T10:45:00Z","createdBy":{"type":"user"}},
              {"type":"customer","createdAt":"2024-01-02T10:00:00Z","createdBy":{"type":"customer"}}]}}"#;
        let t = ticket_times(conv, created, None, Some("closed"), false);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.abandoned),
            (Some(45.0), Some(240.0), Some(false))
        );
        let left = r#"{"id":2,"status":"closed","closedAt":"2024-01-02T11:00:00Z","primaryCustomer":{"id":5},
            "_embedded":{"threads":[{"type":"customer","createdAt":"2024-01-02T10:00:00Z"}]}}"#;
        let t = ticket_times(left, created, None, None, false);
        assert_eq!((t.first_reply_min, t.abandoned), (None, Some(true)));
        // Without threads nothing is known about replies.
        let bare = r#"{"id":3,"status":"active","primaryCustomer":{"id":5}}"#;
        let t = ticket_times(bare, created, None, None, false);
        assert_eq!((t.resolution_min, t.abandoned), (None, None));
    }

    #[test]
    fn intercom_times_from_statistics() {
        // Created at 1000 s; the contact wrote at 1060 s, a teammate answered at 1660 s
        // (10 min), last closed at 8200 s (120 min after creation).
        let raw = r#"{"conversation":{"id":"1","state":"closed","created_at":1000,
            "statistics":{"first_contact_reply_at":1060,"first_admin_reply_at":1660,
            "time_to_admin_reply":300,"last_close_at":8200,"time_to_last_close":3600,"count_reopens":2}}}"#;
        let t = ticket_times(raw, 1_000_000, None, Some("closed"), false);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.reopens, t.abandoned),
            (Some(10.0), Some(120.0), Some(2), Some(false))
        );
        // Office hours: Intercom's own durations.
        let t = ticket_times(raw, 1_000_000, None, Some("closed"), true);
        assert_eq!(
            (t.first_reply_min, t.resolution_min),
            (Some(5.0), Some(60.0))
        );
        // Closed with no teammate reply: abandoned; still open: not known.
        let quiet =
            r#"{"id":"2","state":"closed","statistics":{"last_close_at":2000,"count_reopens":0}}"#;
        assert_eq!(
            ticket_times(quiet, 1_000_000, None, None, false).abandoned,
            Some(true)
        );
        let open = r#"{"id":"3","state":"open","statistics":{}}"#;
        let t = ticket_times(open, 1_000_000, None, None, false);
        assert_eq!((t.abandoned, t.resolution_min), (None, None));
        let bot = r#"{"id":"4","state":"closed","ai_agent_participated":true,"statistics":{}}"#;
        assert_eq!(ticket_times(bot, 0, None, None, false).abandoned, None);
        // Zendesk records are not read as Intercom ones.
        assert_eq!(
            ticket_times(r#"{"id":5}"#, 0, None, None, false).abandoned,
            None
        );
    }

    #[test]
    fn intercom_csv_rows_and_their_duration_forms() {
        let row = r#"{"Conversation ID":"77","First response time":"1h 30m","Time to close":"2:00:30","Reopens":"1"}"#;
        let t = ticket_times(row, 0, None, None, false);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.reopens),
            (Some(90.0), Some(120.5), Some(1))
        );
        assert_eq!(duration_minutes("First response time", "600"), Some(10.0));
        assert_eq!(
            duration_minutes("First response time (min)", "7,5"),
            Some(7.5)
        );
        assert_eq!(
            duration_minutes("Resolution time (hours)", "2"),
            Some(120.0)
        );
        assert_eq!(duration_minutes("x", "1d 2h"), Some(1560.0));
        assert_eq!(duration_minutes("x", "soon"), None);
        assert_eq!(duration_minutes("x", "-5"), None);
    }

    #[test]
    fn periods_in_local_days_across_dst() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        // Last month from 2024-04-15: March 2024; before it February 2024.
        let (cur, prev) = PeriodSpec::Last(Unit::Month).windows(d(2024, 4, 15));
        assert_eq!((cur.from, cur.until), (d(2024, 3, 1), d(2024, 4, 1)));
        assert_eq!((prev.from, prev.until), (d(2024, 2, 1), d(2024, 3, 1)));
        // March 2024 in Berlin: 2024-02-29T23:00Z .. 2024-03-31T22:00Z (DST on 31 March),
        // 31 days minus one hour.
        let (lo, hi) = cur.bounds_ms(chrono_tz::Europe::Berlin);
        assert_eq!(hi - lo, (31 * 24 - 1) * 3_600_000);
        // last-7d from 2024-04-15: 9..16 April, before 2..9 April.
        let (cur, prev) = PeriodSpec::parse("last-7d")
            .unwrap()
            .windows(d(2024, 4, 15));
        assert_eq!(
            (cur.from, cur.until, prev.from),
            (d(2024, 4, 9), d(2024, 4, 16), d(2024, 4, 2))
        );
        // Quarter from 2024-05-02: Q1; before it Q4 2023.
        let (cur, prev) = PeriodSpec::parse("quarter").unwrap().windows(d(2024, 5, 2));
        assert_eq!((cur.from, prev.from), (d(2024, 1, 1), d(2023, 10, 1)));
        assert_eq!(PeriodSpec::parse("last-0d"), None);
        // 2024-03-31 00:30 Berlin (CET, 23:30Z on the 30th) is the 31st's bucket; so is
        // 23:30 local (CEST, 21:30Z).
        let berlin = chrono_tz::Europe::Berlin;
        let ms = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
        assert_eq!(
            local_date(ms("2024-03-30T23:30:00Z"), berlin),
            d(2024, 3, 31)
        );
        assert_eq!(
            local_date(ms("2024-03-31T21:30:00Z"), berlin),
            d(2024, 3, 31)
        );
        assert_eq!(
            local_date(ms("2024-03-31T22:30:00Z"), berlin),
            d(2024, 4, 1)
        );
        assert_eq!(bucket_start(d(2024, 3, 31), Unit::Week), d(2024, 3, 25));
    }
}

#[cfg(test)]
mod abandonment_tests {
    use super::*;

    fn ticket(abandoned: Option<bool>) -> IndicatorRow {
        IndicatorRow {
            source: "s".into(),
            external_id: "t".into(),
            kind: InteractionKind::Ticket,
            parent_external_id: None,
            occurred_at_ms: 0,
            updated_at_ms: None,
            location_id: None,
            customer_id: None,
            stars: None,
            nps: None,
            csat: None,
            ces: None,
            status: None,
            ticket: Some(TicketTimes {
                abandoned,
                ..TicketTimes::default()
            }),
        }
    }

    #[test]
    fn abandonment_counts_only_tickets_of_sources_that_say() {
        // Two abandoned of four that say; two tickets from a source that does not.
        let rows = [
            ticket(Some(true)),
            ticket(Some(false)),
            ticket(Some(true)),
            ticket(Some(false)),
            ticket(None),
            ticket(None),
        ];
        let refs: Vec<&IndicatorRow> = rows.iter().collect();
        let s = support(&refs, 30);
        assert_eq!((s.abandonment_rate.count, s.abandonment_rate.n), (2, 4));
        assert_eq!(s.abandonment_rate.pct, Some(50.0));
        assert!(s.abandonment_rate.small_sample);
        // No source says: no figure, not 0 %.
        let none = [ticket(None)];
        let refs: Vec<&IndicatorRow> = none.iter().collect();
        assert_eq!(support(&refs, 30).abandonment_rate.pct, None);
    }
}
