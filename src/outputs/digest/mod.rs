//! Email digests: what changed for one recipient's locations in their last local day or
//! week, read from the store.
//!
//! Content, per location in the recipient's scope: the indicators of the period against
//! the one before (reviews, stars, NPS, CSAT, response rate, sentiment, composite index,
//! each with its sample size), the changes detected in the period with one line of
//! evidence each, and the negative reviews of the last [`WAITING_DAYS`] days still waiting
//! for an answer; then the connector problems of the whole installation. Periods are
//! whole local days in the recipient's zone ([`due_period`]), so a day across a DST change
//! has 23 or 25 hours.
//!
//! Rendering: [`text`] (the plain part, the subject and the message table for English and
//! German), [`html`] (the HTML part: inline styles only, every data value escaped, no
//! image, links only to `http(s)` evidence), [`message`] (the multipart/alternative MIME
//! message). Sending and the once-per-period bookkeeping are in `crate::digest`.

pub mod html;
pub mod message;
pub mod text;

use crate::config::{Config, DigestLanguage, DigestRecipient, DigestSchedule, DigestScope};
use crate::outputs::report::figures::{self, Waiting};
use crate::pipeline::indicators::{self as ind, local_midnight_ms};
use crate::store::{ChangeFilter, IndicatorFilter, ReportRow, Store, StoreError};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::Serialize;

/// Negative reviews of this many days before the period's end, still unanswered, are
/// listed.
pub const WAITING_DAYS: i64 = 30;
/// How many waiting reviews a location lists (the total is always given).
pub const WAITING_LIMIT: usize = 10;
/// How many changes a location lists.
pub const CHANGE_LIMIT: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum DigestContentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the digest message cannot be built: {0}")]
    Message(String),
}

/// A digest's cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    Day,
    Week,
}

impl Cadence {
    pub fn as_str(self) -> &'static str {
        match self {
            Cadence::Day => "day",
            Cadence::Week => "week",
        }
    }
}

/// Whole local days, `start` to `end` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub cadence: Cadence,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// `[from, until)` in UTC milliseconds for local midnights in `tz`.
    pub fn bounds_ms(&self, tz: Tz) -> (i64, i64) {
        (
            local_midnight_ms(self.start, tz),
            local_midnight_ms(self.end + Duration::days(1), tz),
        )
    }

    /// The period of the same length just before.
    pub fn previous(&self) -> Period {
        let days = (self.end - self.start).num_days() + 1;
        Period {
            cadence: self.cadence,
            start: self.start - Duration::days(days),
            end: self.start - Duration::days(1),
        }
    }
}

/// The latest period whose digest is due at `now_ms`: daily, the day before the last send
/// time (`hour` local) that has passed; weekly, the Monday-to-Sunday week before the week
/// of the last send time (`weekday` at `hour`) that has passed. Local wall time in `tz`.
pub fn due_period(schedule: DigestSchedule, tz: Tz, now_ms: i64) -> Period {
    let local = tz
        .timestamp_millis_opt(now_ms)
        .single()
        .map(|d| d.naive_local())
        .unwrap_or_default();
    let today = local.date();
    match schedule {
        DigestSchedule::Daily { hour } => {
            let send_day = if local.hour() >= hour {
                today
            } else {
                today - Duration::days(1)
            };
            let day = send_day - Duration::days(1);
            Period {
                cadence: Cadence::Day,
                start: day,
                end: day,
            }
        }
        DigestSchedule::Weekly { weekday, hour } => {
            let back = (today.weekday().num_days_from_monday() as i64
                - weekday.num_days_from_monday() as i64)
                .rem_euclid(7);
            let mut send_day = today - Duration::days(back);
            if back == 0 && local.hour() < hour {
                send_day -= Duration::days(7);
            }
            let week = ind::bucket_start(send_day, ind::Unit::Week);
            Period {
                cadence: Cadence::Week,
                start: week - Duration::days(7),
                end: week - Duration::days(1),
            }
        }
    }
}

/// One figure of the period against the one before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub key: text::FigureKey,
    pub current: Option<f64>,
    pub previous: Option<f64>,
    /// Answers behind the current value.
    pub n: u64,
    pub small_sample: bool,
}

/// The one line of evidence a change shows: the interaction that moved it most.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub source: String,
    pub external_id: String,
    pub occurred_at_ms: Option<i64>,
    pub stars: Option<f64>,
    /// Its text (first 600 characters) when the store still has it in the digest's window.
    pub text: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeLine {
    pub signal: String,
    /// `up`, `down` or `change`.
    pub direction: String,
    pub status: String,
    pub channel: Option<String>,
    pub occurred_at_ms: i64,
    pub before: f64,
    pub after: f64,
    pub n_before: i64,
    pub n_after: i64,
    pub evidence: Option<Evidence>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocationDigest {
    pub id: String,
    pub name: String,
    pub figures: Vec<Figure>,
    pub changes: Vec<ChangeLine>,
    /// Negative reviews without an answer: how many, and the first few (oldest first).
    pub waiting_total: u64,
    pub waiting: Vec<Waiting>,
}

/// A connector with a problem (`sources status`'s verdict).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorProblem {
    pub source: String,
    pub state: String,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    pub recipient: String,
    pub recipient_name: Option<String>,
    #[serde(serialize_with = "lang_str")]
    pub language: DigestLanguage,
    #[serde(serialize_with = "tz_str")]
    pub time_zone: Tz,
    pub period: Period,
    pub previous: Period,
    /// Every location (`scope = "all"`).
    pub all_locations: bool,
    pub generated_at_ms: i64,
    pub locations: Vec<LocationDigest>,
    pub connector_problems: Vec<ConnectorProblem>,
}

fn lang_str<S: serde::Serializer>(l: &DigestLanguage, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(l.as_str())
}

fn tz_str<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

impl Digest {
    pub fn change_count(&self) -> usize {
        self.locations.iter().map(|l| l.changes.len()).sum()
    }

    pub fn waiting_count(&self) -> u64 {
        self.locations.iter().map(|l| l.waiting_total).sum()
    }
}

/// Reads what one recipient's digest of `period` shows.
pub async fn build(
    store: &dyn Store,
    config: &Config,
    recipient: &DigestRecipient,
    period: Period,
    now_ms: i64,
) -> Result<Digest, DigestContentError> {
    let tz = recipient.time_zone;
    let previous = period.previous();
    let (cur_lo, cur_hi) = period.bounds_ms(tz);
    let (prev_lo, _) = previous.bounds_ms(tz);
    let waiting_lo = local_midnight_ms(period.end + Duration::days(1 - WAITING_DAYS), tz);
    let min = config.indicators.min_sample;
    let locations: Vec<&crate::model::Location> = match &recipient.scope {
        DigestScope::All => config.locations.iter().collect(),
        DigestScope::Locations(ids) => ids.iter().filter_map(|id| config.location(id)).collect(),
    };
    let mut out = Vec::new();
    for loc in locations {
        let rows = store
            .report_rows(Some(&loc.id), prev_lo.min(waiting_lo), cur_hi)
            .await?;
        let current: Vec<&ReportRow> = rows.iter().filter(|r| r.occurred_at_ms >= cur_lo).collect();
        let before: Vec<&ReportRow> = rows
            .iter()
            .filter(|r| r.occurred_at_ms >= prev_lo && r.occurred_at_ms < cur_lo)
            .collect();
        let filter = |from_ms, until_ms| IndicatorFilter {
            from_ms,
            until_ms,
            location_id: Some(loc.id.clone()),
            channel: None,
            customer_id: None,
            business_hours: config.indicators.business_hours,
        };
        let cur_ind = store.indicator_rows(&filter(cur_lo, cur_hi)).await?;
        let prev_ind = store.indicator_rows(&filter(prev_lo, cur_lo)).await?;
        let ci = ind::compute(&cur_ind.iter().collect::<Vec<_>>(), &config.indicators);
        let pi = ind::compute(&prev_ind.iter().collect::<Vec<_>>(), &config.indicators);
        let cr = figures::review_stats(&current, min);
        let pr = figures::review_stats(&before, min);
        let sentiment = |rows: &[&ReportRow]| {
            let xs: Vec<f64> = rows.iter().filter_map(|r| r.sentiment).collect();
            ind::Mean::of(&xs, min)
        };
        let (cs, ps) = (sentiment(&current), sentiment(&before));
        let figures = vec![
            Figure {
                key: text::FigureKey::Reviews,
                current: Some(cr.reviews as f64),
                previous: Some(pr.reviews as f64),
                n: cr.reviews,
                small_sample: false,
            },
            Figure {
                key: text::FigureKey::Stars,
                current: ci.stars.mean.value,
                previous: pi.stars.mean.value,
                n: ci.stars.mean.n,
                small_sample: ci.stars.mean.small_sample,
            },
            Figure {
                key: text::FigureKey::Nps,
                current: ci.nps.value,
                previous: pi.nps.value,
                n: ci.nps.n,
                small_sample: ci.nps.small_sample,
            },
            Figure {
                key: text::FigureKey::Csat,
                current: ci.csat.satisfied_pct.pct,
                previous: pi.csat.satisfied_pct.pct,
                n: ci.csat.satisfied_pct.n,
                small_sample: ci.csat.satisfied_pct.small_sample,
            },
            Figure {
                key: text::FigureKey::ResponseRate,
                current: cr.responded.pct,
                previous: pr.responded.pct,
                n: cr.responded.n,
                small_sample: cr.responded.small_sample,
            },
            Figure {
                key: text::FigureKey::Sentiment,
                current: cs.value,
                previous: ps.value,
                n: cs.n,
                small_sample: cs.small_sample,
            },
            Figure {
                key: text::FigureKey::Composite,
                current: ci.composite.value,
                previous: pi.composite.value,
                n: ci.interactions,
                small_sample: ci.composite.value.is_none(),
            },
        ];
        let mut changes = store
            .changes(&ChangeFilter {
                entity: Some(("location".into(), loc.id.clone())),
                since_ms: Some(cur_lo),
                limit: None,
            })
            .await?;
        changes.retain(|c| c.change.occurred_at_ms < cur_hi);
        changes.sort_by_key(|c| std::cmp::Reverse(c.change.occurred_at_ms));
        changes.truncate(CHANGE_LIMIT);
        let changes = changes
            .into_iter()
            .map(|c| {
                let c = c.change;
                ChangeLine {
                    evidence: evidence(&c.evidence, &rows),
                    signal: c.signal,
                    direction: c.direction,
                    status: c.status,
                    channel: c.channel,
                    occurred_at_ms: c.occurred_at_ms,
                    before: c.before,
                    after: c.after,
                    n_before: c.n_before,
                    n_after: c.n_after,
                }
            })
            .collect();
        let recent: Vec<&ReportRow> = rows
            .iter()
            .filter(|r| r.occurred_at_ms >= waiting_lo)
            .collect();
        let (_, mut waiting) = figures::awaiting_answer(&recent, usize::MAX);
        waiting.retain(|w| w.negative);
        let waiting_total = waiting.len() as u64;
        waiting.truncate(WAITING_LIMIT);
        out.push(LocationDigest {
            id: loc.id.clone(),
            name: loc.name.clone(),
            figures,
            changes,
            waiting_total,
            waiting,
        });
    }
    let connector_problems = crate::outputs::sources::report(store, config, now_ms)
        .await?
        .into_iter()
        .filter(|s| s.health.state.is_problem())
        .map(|s| ConnectorProblem {
            state: s.health.state.as_str().to_string(),
            problem: s.health.problems.first().cloned().unwrap_or_default(),
            source: s.status.source,
        })
        .collect();
    Ok(Digest {
        recipient: recipient.email.clone(),
        recipient_name: recipient.name.clone(),
        language: recipient.language,
        time_zone: tz,
        period,
        previous,
        all_locations: recipient.scope == DigestScope::All,
        generated_at_ms: now_ms,
        locations: out,
        connector_problems,
    })
}

/// The evidence item with the largest weight, with its text when the digest read it.
fn evidence(ev: &serde_json::Value, rows: &[ReportRow]) -> Option<Evidence> {
    let items = ev.get("interactions")?.as_array()?;
    let top = items.iter().max_by(|a, b| {
        let w = |v: &serde_json::Value| v.get("weight").and_then(|w| w.as_f64()).unwrap_or(0.0);
        w(a).total_cmp(&w(b))
    })?;
    let s = |k: &str| top.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let id = top.get("id").and_then(|v| v.as_i64());
    let row = id.and_then(|id| rows.iter().find(|r| r.id == id));
    Some(Evidence {
        source: s("source").unwrap_or_default(),
        external_id: s("external_id").unwrap_or_default(),
        occurred_at_ms: top.get("occurred_at_ms").and_then(|v| v.as_i64()),
        stars: top.get("stars").and_then(|v| v.as_f64()),
        text: row.and_then(|r| r.text.clone()),
        url: s("url").or_else(|| row.and_then(|r| r.url.clone())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    fn at(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        tz.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .timestamp_millis()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn daily_is_the_day_before_the_last_send_time_in_the_zone() {
        let b = chrono_tz::Europe::Berlin;
        let s = DigestSchedule::Daily { hour: 8 };
        // 07:59 Berlin on 30 March: today's 08:00 has not passed, so 28 March.
        let p = due_period(s, b, at(b, 2026, 3, 30, 7, 59));
        assert_eq!((p.start, p.end), (date(2026, 3, 28), date(2026, 3, 28)));
        let p = due_period(s, b, at(b, 2026, 3, 30, 8, 0));
        assert_eq!(p.start, date(2026, 3, 29));
        // 29 March 2026 is the change to summer time: 23 hours.
        let (lo, hi) = p.bounds_ms(b);
        assert_eq!(hi - lo, 23 * 3_600_000);
        // The same instant is still 29 March in New York (02:00 local): due is 27 March.
        let ny = chrono_tz::America::New_York;
        let p = due_period(s, ny, at(b, 2026, 3, 30, 8, 0));
        assert_eq!(p.start, date(2026, 3, 28));
    }

    #[test]
    fn weekly_is_the_monday_to_sunday_week_before_the_send_day() {
        let b = chrono_tz::Europe::Berlin;
        let s = DigestSchedule::Weekly {
            weekday: Weekday::Mon,
            hour: 8,
        };
        // Monday 30 March 2026, 09:00: the week of 23-29 March (167 hours: DST).
        let p = due_period(s, b, at(b, 2026, 3, 30, 9, 0));
        assert_eq!((p.start, p.end), (date(2026, 3, 23), date(2026, 3, 29)));
        let (lo, hi) = p.bounds_ms(b);
        assert_eq!(hi - lo, 167 * 3_600_000);
        assert_eq!(
            (p.previous().start, p.previous().end),
            (date(2026, 3, 16), date(2026, 3, 22))
        );
        // Monday 07:00: the week before that.
        let p = due_period(s, b, at(b, 2026, 3, 30, 7, 0));
        assert_eq!(p.start, date(2026, 3, 16));
        // Sent on Wednesdays: on Tuesday 31 March the due week is still 16-22 March.
        let wed = DigestSchedule::Weekly {
            weekday: Weekday::Wed,
            hour: 8,
        };
        let p = due_period(wed, b, at(b, 2026, 3, 31, 12, 0));
        assert_eq!(p.start, date(2026, 3, 16));
        let p = due_period(wed, b, at(b, 2026, 4, 1, 8, 0));
        assert_eq!(p.start, date(2026, 3, 23));
    }
}
