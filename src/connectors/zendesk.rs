//! Zendesk Support: the cursor-based incremental ticket export with the requesters and
//! the ticket metrics sideloaded
//! (`GET /api/v2/incremental/tickets/cursor.json?include=users,metric_sets`), each
//! exported ticket's public comments, and (for accounts on the newer CSAT) the CSAT
//! survey responses.
//!
//! **Tickets.** The first run starts at `start_time` (unix seconds); every page's
//! `after_cursor` is stored with the page, and later runs continue from it until
//! `end_of_stream`. Tickets come back when they change, and are stored again as updates
//! (keyed by ticket id). The endpoint allows 10 requests a minute (30 with the High
//! Volume add-on): requests to it are spaced by `60 / incremental_requests_per_minute`
//! seconds, so a backfill does not run into 429s; a 429 still carries `Retry-After` in
//! seconds, which [`super::http`] honours.
//!
//! **Comments.** For every exported ticket, `GET /api/v2/tickets/{id}/comments.json
//! ?include=users` (an ordinary list endpoint under the account-wide limit; its pages are
//! followed by `next_page`). The first comment is the ticket's description and internal
//! notes are not customer-facing: both are skipped. The comments are part of the
//! ticket's page, so a page and its comments are stored together with the cursor.
//!
//! **Newer CSAT.** Only one CSAT mode is active per account. With `csat =
//! "survey_responses"` a run that reached the end of the ticket stream reads
//! `GET /api/v2/guide/survey_responses?filter[created_at_start]=<mark>` page by page
//! (`page[size]`, `page[after]`; `meta.has_more`, `meta.after_cursor`), and the
//! tickets' own good/bad rating is not counted again.
//!
//! **Cursor.** The stored cursor is the ticket export's `after_cursor` as is, or, while
//! a run is in its CSAT phase or once a CSAT mark exists, JSON holding both. Any item is
//! read exactly like one of a saved export page (the `zendesk-json` preset), so a
//! quarantined item replays with that preset.

use super::http::{FetchContext, Http};
use super::{ConnectorError, Page};
use crate::config::{HttpSettings, ZendeskAuth, ZendeskCsat, ZendeskSettings};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::{RowError, SourceRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};

const ENDPOINT: &str = "/api/v2/incremental/tickets/cursor.json";
const RESPONSES: &str = "/api/v2/guide/survey_responses";
/// The most comment pages read for one ticket (100 comments each).
const MAX_COMMENT_PAGES: usize = 20;

#[derive(Debug)]
pub struct Zendesk {
    http: Http,
    settings: ZendeskSettings,
    /// When the last request to the incremental export was sent (its pacing).
    last_incremental: tokio::sync::Mutex<Option<Instant>>,
}

/// The stored cursor (see the module comment).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// The ticket export's `after_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tickets: Option<String>,
    /// The run reads survey responses now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    csat_phase: bool,
    /// `filter[created_at_start]` of survey responses (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csat_since: Option<i64>,
    /// Within the CSAT phase: `page[after]` of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csat_after: Option<String>,
    /// Within the CSAT phase: the newest answer time read so far (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csat_high: Option<i64>,
}

impl Cursor {
    fn parse(stored: Option<&str>) -> Result<Cursor, ConnectorError> {
        match stored {
            None => Ok(Cursor::default()),
            Some(s) if s.trim_start().starts_with('{') => serde_json::from_str(s).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a Zendesk cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            }),
            Some(s) => Ok(Cursor {
                tickets: Some(s.to_string()),
                ..Default::default()
            }),
        }
    }

    /// The text to store: the bare `after_cursor` while nothing else is kept.
    fn stored(&self) -> Option<String> {
        if !self.csat_phase && self.csat_since.is_none() {
            return self.tickets.clone();
        }
        Some(serde_json::to_string(self).expect("plain data"))
    }
}

impl Zendesk {
    pub fn new(settings: &ZendeskSettings, http: &HttpSettings) -> Result<Zendesk, ConnectorError> {
        Ok(Zendesk {
            http: Http::new(http)?,
            settings: settings.clone(),
            last_incremental: tokio::sync::Mutex::new(None),
        })
    }

    fn endpoint(&self, path: &str) -> Result<reqwest::Url, ConnectorError> {
        reqwest::Url::parse(&format!("{}{path}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))
    }

    fn tickets_url(&self, cursor: Option<&str>) -> Result<String, ConnectorError> {
        let mut url = self.endpoint(ENDPOINT)?;
        {
            let mut q = url.query_pairs_mut();
            match cursor {
                Some(c) => q.append_pair("cursor", c),
                None => q.append_pair("start_time", &self.settings.start_time.to_string()),
            };
            // Requesters (identities) and ticket metrics (reply and resolution times,
            // reopens) come with the page instead of one request per ticket.
            q.append_pair("include", "users,metric_sets");
            q.append_pair("per_page", &self.settings.per_page.to_string());
        }
        Ok(url.to_string())
    }

    fn authorize(&self) -> impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync {
        let auth = self.settings.auth.clone();
        move |rb: reqwest::RequestBuilder| match &auth {
            ZendeskAuth::ApiToken { email, token } => {
                rb.basic_auth(format!("{email}/token"), Some(token.expose()))
            }
            ZendeskAuth::OAuth(t) => rb.bearer_auth(t.expose()),
        }
    }

    /// GETs a JSON document.
    async fn get_json(
        &self,
        url: &str,
        label: &str,
        cx: &FetchContext,
    ) -> Result<Value, ConnectorError> {
        let resp = self
            .http
            .get(url, label, cx, &self.authorize(), &|_| None)
            .await?;
        serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
            request: label.to_string(),
            message: format!("not JSON ({e})"),
        })
    }

    /// Waits until the incremental export may be asked again.
    async fn pace(&self, cx: &FetchContext) -> Result<(), ConnectorError> {
        let gap = Duration::from_secs_f64(
            60.0 / f64::from(self.settings.incremental_requests_per_minute.max(1)),
        );
        let mut last = self.last_incremental.lock().await;
        if let Some(at) = *last {
            let due = at + gap;
            let now = Instant::now();
            if due > now {
                cx.sleep(due - now).await?;
            }
        }
        *last = Some(Instant::now());
        Ok(())
    }

    async fn tickets_page(&self, mut c: Cursor, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let url = self.tickets_url(c.tickets.as_deref())?;
        let label = format!("GET {ENDPOINT}");
        self.pace(cx).await?;
        let v = self.get_json(&url, &label, cx).await?;
        let payload = |message: String| ConnectorError::Payload {
            request: label.clone(),
            message,
        };
        let tickets = v
            .get("tickets")
            .and_then(Value::as_array)
            .ok_or_else(|| payload("no `tickets` array".into()))?;
        let end = v
            .get("end_of_stream")
            .and_then(Value::as_bool)
            .ok_or_else(|| payload("no boolean `end_of_stream`".into()))?;
        let next = v.get("after_cursor").and_then(Value::as_str);
        if !end && next.is_none() {
            return Err(payload(
                "`end_of_stream` is false but there is no `after_cursor`".into(),
            ));
        }
        let side = files::zendesk::Sideloads::of(&v);
        // Where a ticket came from, for messages: the page's starting cursor.
        let origin = format!(
            "zendesk {ENDPOINT} after {}",
            c.tickets
                .as_deref()
                .map(short)
                .unwrap_or_else(|| format!("start_time={}", self.settings.start_time))
        );
        let mut page = Page::default();
        let new_csat = self.settings.csat == ZendeskCsat::SurveyResponses;
        for (i, t) in tickets.iter().enumerate() {
            let index = i as u64 + 1;
            if t.get("id").and_then(Value::as_i64).is_none() {
                page.rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(index),
                    field: Some("id".into()),
                    expected: "a ticket object with a numeric `id`".into(),
                    message: "ticket without an id".into(),
                    raw: t.to_string(),
                });
                continue;
            }
            let mut rec = files::page_ticket(t, &side, &origin, Some(index));
            if new_csat {
                mark_new_csat(&mut rec);
            }
            page.records.push(rec);
            if self.settings.comments && t.get("status").and_then(Value::as_str) != Some("deleted")
            {
                self.comments(t, &origin, index, cx, &mut page).await?;
            }
        }
        if let Some(n) = next {
            c.tickets = Some(n.to_string());
        }
        page.more = !end;
        if end && new_csat {
            // The ticket stream is read up to now: the survey responses follow.
            c.csat_phase = true;
            page.more = true;
        }
        page.cursor = c.stored();
        Ok(page)
    }

    /// Adds the public comments of ticket `t` (except its description) to `page`.
    async fn comments(
        &self,
        t: &Value,
        origin: &str,
        index: u64,
        cx: &FetchContext,
        page: &mut Page,
    ) -> Result<(), ConnectorError> {
        let Some(id) = t.get("id").and_then(Value::as_i64) else {
            return Ok(());
        };
        let path = format!("/api/v2/tickets/{id}/comments.json");
        let label = format!("GET /api/v2/tickets/{{id}}/comments.json (ticket {id})");
        let mut url = self.endpoint(&path)?;
        url.query_pairs_mut()
            .append_pair("include", "users")
            .append_pair("sort_order", "asc")
            .append_pair("per_page", "100");
        let mut next = Some(url.to_string());
        let mut seen = 0usize;
        let slim_ticket = serde_json::json!({
            "id": id,
            "requester_id": t.get("requester_id"),
            "tags": t.get("tags"),
            "custom_fields": t.get("custom_fields"),
        });
        for _ in 0..MAX_COMMENT_PAGES {
            let Some(u) = next.take() else { break };
            let v = match self.get_json(&u, &label, cx).await {
                Ok(v) => v,
                // Deleted or merged away since the export: it has no comments to read.
                Err(ConnectorError::Http { status: 404, .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            let Some(comments) = v.get("comments").and_then(Value::as_array) else {
                return Err(ConnectorError::Payload {
                    request: label,
                    message: "no `comments` array".into(),
                });
            };
            let users = files::zendesk::Sideloads::of(&v).users;
            for (k, c) in comments.iter().enumerate() {
                let first = seen == 0 && k == 0;
                if first || c.get("public").and_then(Value::as_bool) == Some(false) {
                    continue;
                }
                let corigin = format!("{origin}, ticket {index} comments");
                if c.get("id").and_then(Value::as_i64).is_none() {
                    page.rejects.push(RowError {
                        origin: corigin,
                        line: Some((seen + k + 1) as u64),
                        field: Some("id".into()),
                        expected: "a comment object with a numeric `id`".into(),
                        message: "comment without an id".into(),
                        raw: c.to_string(),
                    });
                    continue;
                }
                let author = c
                    .get("author_id")
                    .and_then(Value::as_i64)
                    .and_then(|a| users.get(&a));
                let mut w = serde_json::Map::new();
                w.insert("comment".into(), c.clone());
                w.insert("ticket".into(), slim_ticket.clone());
                if let Some(a) = author {
                    w.insert("author".into(), a.clone());
                }
                let raw = Value::Object(w);
                let mut rec = SourceRecord {
                    origin: corigin,
                    line: Some((seen + k + 1) as u64),
                    raw: raw.to_string(),
                    ..Default::default()
                };
                files::zendesk::comment_record(&raw, &mut rec);
                page.records.push(rec);
            }
            seen += comments.len();
            next = v
                .get("next_page")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    let more = v.pointer("/meta/has_more").and_then(Value::as_bool);
                    (more == Some(true))
                        .then(|| v.pointer("/links/next").and_then(Value::as_str))
                        .flatten()
                        .map(str::to_string)
                });
        }
        Ok(())
    }

    async fn csat_page(&self, mut c: Cursor, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let since = c.csat_since.unwrap_or(self.settings.start_time);
        let mut url = self.endpoint(RESPONSES)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("filter[created_at_start]", &since.to_string());
            q.append_pair("page[size]", "100");
            if let Some(a) = &c.csat_after {
                q.append_pair("page[after]", a);
            }
        }
        let label = format!("GET {RESPONSES}");
        let v = self.get_json(url.as_str(), &label, cx).await?;
        let items = v
            .get("survey_responses")
            .and_then(Value::as_array)
            .ok_or_else(|| ConnectorError::Payload {
                request: label.clone(),
                message: "no `survey_responses` array".into(),
            })?;
        let origin = format!(
            "zendesk {RESPONSES} created_at_start={since}{}",
            c.csat_after
                .as_deref()
                .map(|a| format!(" after {}", short(a)))
                .unwrap_or_default()
        );
        let mut page = Page::default();
        for (i, r) in items.iter().enumerate() {
            let index = i as u64 + 1;
            let reject = |field: &str, expected: &str, message: &str| RowError {
                origin: origin.clone(),
                line: Some(index),
                field: Some(field.into()),
                expected: expected.into(),
                message: message.into(),
                raw: r.to_string(),
            };
            if r.get("id").and_then(files::mapping::json_text).is_none() {
                page.rejects.push(reject(
                    "id",
                    "a survey response with an `id`",
                    "the response has no id",
                ));
                continue;
            }
            if let Some(at) = files::zendesk::survey_response_time(r)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
            {
                c.csat_high = Some(c.csat_high.unwrap_or(i64::MIN).max(at.timestamp()));
            }
            let raw = serde_json::json!({
                "survey_response": r,
                "scale": self.settings.csat_scale,
            });
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: raw.to_string(),
                ..Default::default()
            };
            files::zendesk::survey_response_record(&raw, &mut rec);
            page.records.push(rec);
        }
        let more = v.pointer("/meta/has_more").and_then(Value::as_bool) == Some(true);
        let after = v
            .pointer("/meta/after_cursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        match (more, after) {
            (true, Some(a)) => {
                c.csat_after = Some(a);
                page.more = true;
            }
            _ => {
                // The phase is over: the next run reads from the newest answer time on
                // (responses at that second are read again and stored as unchanged).
                c.csat_phase = false;
                c.csat_after = None;
                c.csat_since = Some(c.csat_high.take().unwrap_or(since).max(since));
                page.more = false;
            }
        }
        page.cursor = c.stored();
        Ok(page)
    }
}

/// Marks a ticket record of an account on the newer CSAT: its good/bad is not counted.
fn mark_new_csat(rec: &mut SourceRecord) {
    use crate::pipeline::Field;
    rec.fields.remove(&Field::Csat);
    rec.labels.remove(&Field::Csat);
    if let Ok(Value::Object(mut w)) = serde_json::from_str::<Value>(&rec.raw) {
        if !w.contains_key("ticket") {
            let t = Value::Object(std::mem::take(&mut w));
            w.insert("ticket".into(), t);
        }
        w.insert("csat".into(), Value::from("survey_responses"));
        rec.raw = Value::Object(w).to_string();
    }
}

#[async_trait::async_trait]
impl super::Connector for Zendesk {
    fn preset(&self) -> Preset {
        Preset::ZendeskJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let c = Cursor::parse(cursor)?;
        if c.csat_phase {
            self.csat_page(c, cx).await
        } else {
            self.tickets_page(c, cx).await
        }
    }
}

/// A cursor shortened for messages.
fn short(c: &str) -> String {
    if c.chars().count() > 24 {
        format!("{}…", c.chars().take(24).collect::<String>())
    } else {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_after_cursor_stays_bare_until_a_csat_mark_exists() {
        let c = Cursor::parse(Some("MTU3NjYxMzUzOS4wfHw0Njd8")).unwrap();
        assert_eq!(c.tickets.as_deref(), Some("MTU3NjYxMzUzOS4wfHw0Njd8"));
        assert_eq!(c.stored().as_deref(), Some("MTU3NjYxMzUzOS4wfHw0Njd8"));
        let with_mark = Cursor {
            csat_since: Some(1_700_000_000),
            ..c
        };
        let text = with_mark.stored().unwrap();
        assert!(text.starts_with('{'), "{text}");
        assert_eq!(Cursor::parse(Some(&text)).unwrap(), with_mark);
        assert_eq!(Cursor::parse(None).unwrap(), Cursor::default());
        assert!(Cursor::parse(Some("{\"tickets\": 3}")).is_err());
    }

    #[test]
    fn new_csat_tickets_keep_their_raw_but_not_their_good_bad() {
        let mut rec = SourceRecord {
            raw: r#"{"id":5,"satisfaction_rating":{"score":"bad"}}"#.into(),
            ..Default::default()
        };
        rec.set(crate::pipeline::Field::Csat, "x", "bad");
        mark_new_csat(&mut rec);
        assert!(!rec.fields.contains_key(&crate::pipeline::Field::Csat));
        let v: Value = serde_json::from_str(&rec.raw).unwrap();
        assert_eq!(v["ticket"]["id"], 5);
        let mut again = SourceRecord::default();
        files::zendesk::item_record(&v, &mut again);
        assert!(!again.fields.contains_key(&crate::pipeline::Field::Csat));
        assert_eq!(
            again
                .fields
                .get(&crate::pipeline::Field::ExternalId)
                .map(String::as_str),
            Some("5")
        );
    }
}
