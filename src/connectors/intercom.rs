//! Intercom: conversations by `POST /conversations/search`, with a Bearer access token and
//! the `Intercom-Version` header, on the workspace's regional host.
//!
//! A run searches `updated_at >= since` and walks the result with
//! `pagination.starting_after` (taken from `pages.next.starting_after`) until `pages.next`
//! is absent. The search has `>` and `=` but no `>=`, so the query is the documented nested
//! form `{"operator": "OR", "value": [{updated_at > since}, {updated_at = since}]}`.
//!
//! The stored cursor is JSON, like Delighted's: between runs `{"since": <unix s>, "skip":
//! [ids]}`, the high-water mark of `updated_at` and the ids already stored at that second,
//! which the next run drops when they still carry `updated_at == since`; so the boundary
//! second is neither skipped nor stored twice. Within a run the cursor also carries
//! `starting_after`, the run's own mark so far and the server's clock at its first page, so
//! a run stopped mid-way resumes at its page with the same query. The mark stays
//! [`super::window::SETTLE_SECS`] behind the server's clock at the run's start, because a conversation
//! read on an earlier page can be updated while later pages are read.
//!
//! With `fetch_contacts` (the default) each contact's email, phone and name come from
//! `GET /contacts/{id}`, once per contact per run (a deleted contact, 404, is skipped); the
//! raw record is then `{"conversation": ..., "contacts": [trimmed contacts]}`, so a
//! quarantined conversation replays with the `intercom-json` preset and the same identities.
//!
//! Rate limits: `X-RateLimit-Remaining` and `X-RateLimit-Reset` (unix seconds). When a
//! response says nothing remains, the next request waits for the reset; a 429 waits for it
//! too (through [`Http`]'s `vendor_wait`), or for `Retry-After` when the reset is missing.

use super::http::{FetchContext, Http};
use super::window::Window;
use super::{ConnectorError, Page};
use crate::config::{HttpSettings, IntercomSettings};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::{RowError, SourceRecord};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SEARCH: &str = "/conversations/search";

/// The contact keys kept with a conversation: what identifies the person, nothing else.
const CONTACT_KEYS: [&str; 6] = ["id", "external_id", "email", "phone", "name", "role"];

#[derive(Debug)]
pub struct Intercom {
    http: Http,
    settings: IntercomSettings,
    /// Contacts read in this run (the connector is built once per run); `None`: not found.
    contacts: Mutex<HashMap<String, Option<Value>>>,
    /// No request before this instant (the rate limit's reset).
    not_before: Mutex<Option<Instant>>,
}

/// The stored cursor: the shared high-water window (see [`super::window`]) and, within a
/// run, `pagination.starting_after` of the next page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    #[serde(flatten)]
    window: Window,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
}

/// A timestamp in unix seconds: a number or a numeric string.
fn unix_secs(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

fn header_i64(h: &HeaderMap, name: &str) -> Option<i64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// How long until `X-RateLimit-Reset` (unix seconds), if it is ahead.
fn until_reset(h: &HeaderMap) -> Option<Duration> {
    let reset_ms = header_i64(h, "x-ratelimit-reset")?.checked_mul(1000)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    (reset_ms > now_ms).then(|| Duration::from_millis((reset_ms - now_ms) as u64))
}

/// The search request body (the documented shape).
fn search_body(since: i64, per_page: u32, after: Option<&str>) -> Value {
    let mut pagination = json!({ "per_page": per_page });
    if let Some(a) = after {
        pagination["starting_after"] = json!(a);
    }
    json!({
        "query": {
            "operator": "OR",
            "value": [
                {"field": "updated_at", "operator": ">", "value": since},
                {"field": "updated_at", "operator": "=", "value": since}
            ]
        },
        "pagination": pagination
    })
}

impl Intercom {
    pub fn new(
        settings: &IntercomSettings,
        http: &HttpSettings,
    ) -> Result<Intercom, ConnectorError> {
        Ok(Intercom {
            http: Http::new(http)?,
            settings: settings.clone(),
            contacts: Mutex::new(HashMap::new()),
            not_before: Mutex::new(None),
        })
    }

    fn authorize(&self) -> impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync {
        let token = self.settings.access_token.clone();
        let version = self.settings.api_version.clone();
        move |rb: reqwest::RequestBuilder| {
            rb.bearer_auth(token.expose())
                .header("Intercom-Version", version.as_str())
                .header(reqwest::header::ACCEPT, "application/json")
        }
    }

    /// Waits for the rate limit's reset when the last response said nothing remains.
    async fn pace(&self, label: &str, cx: &FetchContext) -> Result<(), ConnectorError> {
        let until = self.not_before.lock().map(|mut g| g.take()).unwrap_or(None);
        if let Some(t) = until {
            let d = t.saturating_duration_since(Instant::now());
            if d > self.http.max_wait() {
                return Err(ConnectorError::WaitTooLong {
                    request: label.to_string(),
                    secs: d.as_secs(),
                    max_secs: self.http.max_wait().as_secs(),
                });
            }
            if !d.is_zero() {
                tracing::info!(connector = %cx.connector, wait_secs = d.as_secs_f64(), "Intercom rate limit used up; waiting for its reset.");
                cx.metrics.connector(&cx.connector, |c| {
                    c.rate_limit_waits += 1;
                    c.rate_limit_wait_secs += d.as_secs_f64();
                });
                cx.sleep(d).await?;
            }
        }
        Ok(())
    }

    /// Remembers the reset when the response says no request remains.
    fn note_limit(&self, h: &HeaderMap) {
        if header_i64(h, "x-ratelimit-remaining") == Some(0)
            && let Some(d) = until_reset(h)
            && let Ok(mut g) = self.not_before.lock()
        {
            *g = Some(Instant::now() + d);
        }
    }

    /// The contact's identifying keys, read once per run; `None` when it no longer exists.
    async fn contact(&self, id: &str, cx: &FetchContext) -> Result<Option<Value>, ConnectorError> {
        if let Some(hit) = self.contacts.lock().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(hit);
        }
        let mut url = reqwest::Url::parse(&self.settings.base_url)
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| ConnectorError::Setup("base_url cannot take a path".into()))?
            .pop_if_empty()
            .push("contacts")
            .push(id);
        let label = "GET /contacts/{id}";
        self.pace(label, cx).await?;
        let found = match self
            .http
            .get(url.as_str(), label, cx, &self.authorize(), &until_reset)
            .await
        {
            Ok(resp) => {
                self.note_limit(&resp.headers);
                let v: Value =
                    serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
                        request: label.to_string(),
                        message: format!("not JSON ({e})"),
                    })?;
                let mut kept = serde_json::Map::new();
                for k in CONTACT_KEYS {
                    if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
                        kept.insert(k.to_string(), x.clone());
                    }
                }
                Some(Value::Object(kept))
            }
            Err(ConnectorError::Http { status: 404, .. }) => None,
            Err(e) => return Err(e),
        };
        if let Ok(mut m) = self.contacts.lock() {
            m.insert(id.to_string(), found.clone());
        }
        Ok(found)
    }
}

#[async_trait::async_trait]
impl super::Connector for Intercom {
    fn preset(&self) -> Preset {
        Preset::IntercomJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let label = format!("POST {SEARCH}");
        let mut c = match cursor {
            None => Cursor {
                window: Window::new(self.settings.start_time),
                after: None,
            },
            Some(text) => serde_json::from_str::<Cursor>(text).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not an Intercom cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
        let page_no = c.window.page();
        let body = search_body(c.window.since, self.settings.per_page, c.after.as_deref());
        let url = format!("{}{SEARCH}", self.settings.base_url);
        self.pace(&label, cx).await?;
        let resp = self
            .http
            .post_json(&url, &body, &label, cx, &self.authorize(), &until_reset)
            .await?;
        self.note_limit(&resp.headers);
        c.window.note_clock(&resp.headers);
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
            request: label.clone(),
            message: format!("not JSON ({e})"),
        })?;
        let Some(items) = v.get("conversations").and_then(Value::as_array) else {
            return Err(ConnectorError::Payload {
                request: label,
                message: "no `conversations` array".into(),
            });
        };
        let next = v
            .pointer("/pages/next/starting_after")
            .and_then(files::mapping::json_text)
            .filter(|s| !s.is_empty());
        let origin = format!(
            "intercom {SEARCH} updated_at>={} page {page_no}",
            c.window.since
        );
        let mut page = Page::default();
        for (i, item) in items.iter().enumerate() {
            let index = i as u64 + 1;
            let reject = |field: &str, expected: &str, message: &str| RowError {
                origin: origin.clone(),
                line: Some(index),
                field: Some(field.into()),
                expected: expected.into(),
                message: message.into(),
                raw: item.to_string(),
            };
            if !item.is_object() {
                page.rejects.push(reject(
                    "id",
                    "a conversation object",
                    "the item is not an object",
                ));
                continue;
            }
            let Some(id) = item
                .get("id")
                .and_then(files::mapping::json_text)
                .filter(|s| !s.trim().is_empty())
            else {
                page.rejects.push(reject(
                    "id",
                    "a conversation with an `id`",
                    "the conversation has no id",
                ));
                continue;
            };
            if !c.window.admit(&id, unix_secs(item.get("updated_at"))) {
                continue; // stored by the run that set the mark
            }
            let mut fetched = Vec::new();
            if self.settings.fetch_contacts {
                let ids = item
                    .pointer("/contacts/contacts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.get("id").and_then(files::mapping::json_text));
                for cid in ids {
                    if let Some(contact) = self.contact(&cid, cx).await? {
                        fetched.push(contact);
                    }
                }
            }
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: files::intercom::wrap(item, &fetched),
                ..Default::default()
            };
            files::intercom::conversation_record(item, &fetched, &mut rec);
            page.records.push(rec);
        }
        match next {
            Some(n) => {
                c.after = Some(n);
                c.window.page = Some(page_no + 1);
                page.more = true;
                page.cursor = Some(serde_json::to_string(&c).expect("plain data"));
            }
            None => {
                page.more = false;
                let between_runs = Cursor {
                    window: c.window.finished(),
                    after: None,
                };
                page.cursor = Some(serde_json::to_string(&between_runs).expect("plain data"));
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_asks_for_at_or_after_the_mark() {
        let b = search_body(1704067200, 150, Some("WzE3MDQwNjcyMDAwMDAsMTIzXQ=="));
        assert_eq!(b["query"]["operator"], "OR");
        assert_eq!(b["query"]["value"][0]["operator"], ">");
        assert_eq!(b["query"]["value"][1]["operator"], "=");
        assert_eq!(b["query"]["value"][1]["value"], 1704067200);
        assert_eq!(b["pagination"]["per_page"], 150);
        assert!(
            search_body(0, 5, None)["pagination"]
                .get("starting_after")
                .is_none()
        );
    }

    #[test]
    fn the_reset_header_is_read_in_unix_seconds() {
        let mut h = HeaderMap::new();
        let ahead = chrono::Utc::now().timestamp() + 30;
        h.insert("x-ratelimit-reset", ahead.to_string().parse().unwrap());
        let d = until_reset(&h).unwrap();
        assert!(
            d > Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert("x-ratelimit-reset", "1".parse().unwrap());
        assert_eq!(until_reset(&h), None);
    }
}
