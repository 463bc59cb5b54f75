//! Freshdesk: tickets (`GET /api/v2/tickets`) and satisfaction ratings
//! (`GET /api/v2/surveys/satisfaction_ratings`), Basic auth with the API key as the user
//! name and `X` as the password.
//!
//! A run reads two streams, one page per call: first
//! `tickets?updated_since=<mark>&order_by=updated_at&order_type=asc&per_page=N&page=P&include=requester,stats,description`,
//! then (unless `ratings = false`) `satisfaction_ratings?created_since=<mark>&per_page=N&page=P`.
//! Traps this answers:
//!
//! - Without `updated_since` Freshdesk lists only tickets created in the last 30 days, so
//!   it is always sent, from `start_time` on the first run.
//! - A `Link: <...>; rel="next"` header says more pages exist; its absence ends a stream.
//! - Freshdesk serves at most 300 pages for one filter. At the last page (`max_pages`)
//!   with more to come (a `next` link or a full page), the stream filters again from the
//!   highest `updated_at` seen, with the ids at that second skipped ([`Window::restart`]).
//!
//! Each stream's cursor is a [`Window`]: the high-water mark plus the ids stored at its
//! second, so the boundary is neither skipped nor stored twice. The stored cursor is
//! `{"tickets": {...}, "ratings": {...}, "phase": "tickets"|"ratings"}`; a run stopped
//! mid-way resumes at its stream and page.
//!
//! An item is read exactly like one of a saved page (the `freshdesk-json` preset); a
//! rating is kept with the survey scale it was read on, so a quarantined item replays with
//! the preset. 429 carries `Retry-After` in seconds, which [`super::http`] honours;
//! `X-RateLimit-Remaining` is logged when it runs low.

use super::http::{FetchContext, Http, Response, link_target};
use super::window::{Window, iso_z, rfc3339_secs};
use super::{ConnectorError, Page};
use crate::config::{FreshdeskSettings, HttpSettings};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::{RowError, SourceRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const TICKETS: &str = "/api/v2/tickets";
const RATINGS: &str = "/api/v2/surveys/satisfaction_ratings";

#[derive(Debug)]
pub struct Freshdesk {
    http: Http,
    settings: FreshdeskSettings,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    #[default]
    Tickets,
    Ratings,
}

/// The stored cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    tickets: Window,
    #[serde(default)]
    ratings: Window,
    /// The stream the next call reads.
    #[serde(default)]
    phase: Phase,
}

impl Freshdesk {
    pub fn new(
        settings: &FreshdeskSettings,
        http: &HttpSettings,
    ) -> Result<Freshdesk, ConnectorError> {
        Ok(Freshdesk {
            http: Http::new(http)?,
            settings: settings.clone(),
        })
    }

    fn url(&self, phase: Phase, w: &Window) -> Result<String, ConnectorError> {
        let path = match phase {
            Phase::Tickets => TICKETS,
            Phase::Ratings => RATINGS,
        };
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            match phase {
                Phase::Tickets => {
                    q.append_pair("updated_since", &iso_z(w.since))
                        .append_pair("order_by", "updated_at")
                        .append_pair("order_type", "asc");
                }
                Phase::Ratings => {
                    q.append_pair("created_since", &iso_z(w.since));
                }
            }
            q.append_pair("per_page", &self.settings.per_page.to_string())
                .append_pair("page", &w.page().to_string());
            if phase == Phase::Tickets {
                q.append_pair("include", "requester,stats,description");
            }
        }
        Ok(url.to_string())
    }

    async fn get(
        &self,
        url: &str,
        label: &str,
        cx: &FetchContext,
    ) -> Result<Response, ConnectorError> {
        let key = self.settings.api_key.clone();
        let authorize = move |rb: reqwest::RequestBuilder| rb.basic_auth(key.expose(), Some("X"));
        let resp = self.http.get(url, label, cx, &authorize, &|_| None).await?;
        let remaining = resp
            .headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(r) = remaining
            && r < 5
        {
            tracing::info!(connector = %cx.connector, remaining = r, "Freshdesk's rate limit is nearly used up; a 429 with Retry-After will pause the run.");
        }
        Ok(resp)
    }

    /// The cursor after a stream ends: the next stream, or the end of the run.
    fn after_stream(&self, mut c: Cursor) -> (Cursor, bool) {
        match c.phase {
            Phase::Tickets => {
                c.tickets = c.tickets.finished();
                if self.settings.ratings {
                    c.phase = Phase::Ratings;
                    (c, true)
                } else {
                    (c, false)
                }
            }
            Phase::Ratings => {
                c.ratings = c.ratings.finished();
                c.phase = Phase::Tickets;
                (c, false)
            }
        }
    }
}

#[async_trait::async_trait]
impl super::Connector for Freshdesk {
    fn preset(&self) -> Preset {
        Preset::FreshdeskJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let mut c = match cursor {
            None => Cursor {
                tickets: Window::new(self.settings.start_time),
                ratings: Window::new(self.settings.start_time),
                phase: Phase::Tickets,
            },
            Some(text) => serde_json::from_str::<Cursor>(text).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a Freshdesk cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
        let phase = c.phase;
        let path = if phase == Phase::Tickets {
            TICKETS
        } else {
            RATINGS
        };
        let label = format!("GET {path}");
        let w = match phase {
            Phase::Tickets => &mut c.tickets,
            Phase::Ratings => &mut c.ratings,
        };
        let page_no = w.page();
        let since = w.since;
        let url = self.url(phase, w)?;
        let resp = self.get(&url, &label, cx).await?;
        w.note_clock(&resp.headers);
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
            request: label.clone(),
            message: format!("not JSON ({e})"),
        })?;
        let Value::Array(items) = v else {
            return Err(ConnectorError::Payload {
                request: label,
                message: "not a JSON array".into(),
            });
        };
        let filter = if phase == Phase::Tickets {
            "updated_since"
        } else {
            "created_since"
        };
        let origin = format!("freshdesk {path} {filter}={} page {page_no}", iso_z(since));
        let mut page = Page::default();
        for (i, item) in items.iter().enumerate() {
            let index = i as u64 + 1;
            // What is kept (and replayed): a rating with the scale it is read on.
            let kept = match phase {
                Phase::Tickets => item.clone(),
                Phase::Ratings => serde_json::json!({
                    "satisfaction_rating": item,
                    "csat_scale": self.settings.csat_scale.name(),
                }),
            };
            let reject = |field: &str, expected: &str, message: &str| RowError {
                origin: origin.clone(),
                line: Some(index),
                field: Some(field.into()),
                expected: expected.into(),
                message: message.into(),
                raw: kept.to_string(),
            };
            if !item.is_object() {
                page.rejects
                    .push(reject("id", "a JSON object", "the item is not an object"));
                continue;
            }
            let Some(id) = item
                .get("id")
                .and_then(files::mapping::json_text)
                .filter(|s| !s.trim().is_empty())
            else {
                page.rejects
                    .push(reject("id", "an item with an `id`", "the item has no id"));
                continue;
            };
            let stamp = match phase {
                Phase::Tickets => "updated_at",
                Phase::Ratings => "created_at",
            };
            if !w.admit(&id, rfc3339_secs(item.get(stamp))) {
                continue; // stored by the run that set the mark
            }
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: kept.to_string(),
                ..Default::default()
            };
            match files::freshdesk::api_record(&kept, &mut rec) {
                Ok(()) => page.records.push(rec),
                Err(p) => page.rejects.push(reject(&p.field, &p.expected, &p.message)),
            }
        }
        let next = link_target(&resp.headers, "next").is_some();
        let full = items.len() as u32 >= self.settings.per_page;
        let capped = page_no >= self.settings.max_pages && (next || full);
        let (cursor, more) = if items.is_empty() || (!next && !capped) {
            self.after_stream(c)
        } else if capped {
            // The page cap: filter again from the last timestamp seen.
            let restarted = w.restart().ok_or_else(|| ConnectorError::Payload {
                request: label.clone(),
                message: format!(
                    "{} pages of {} items all carry one second ({}), so filtering again cannot move on; fix: per_page = 100 if it is lower, or a larger max_pages up to 300",
                    self.settings.max_pages,
                    self.settings.per_page,
                    iso_z(since)
                ),
            })?;
            tracing::info!(connector = %cx.connector, pages = page_no, since = %iso_z(restarted.since), "Freshdesk's page cap reached; filtering again from the last timestamp seen.");
            *w = restarted;
            (c, true)
        } else {
            w.page = Some(page_no + 1);
            (c, true)
        };
        page.more = more;
        page.cursor = Some(serde_json::to_string(&cursor).expect("plain data"));
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_round_trips_and_defaults_the_ratings_stream() {
        let c: Cursor = serde_json::from_str(r#"{"tickets":{"since":5,"skip":["1"]}}"#).unwrap();
        assert_eq!(c.phase, Phase::Tickets);
        assert_eq!(c.ratings, Window::new(0));
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"tickets":{"since":5,"skip":["1"]},"ratings":{"since":0},"phase":"tickets"}"#
        );
    }
}
