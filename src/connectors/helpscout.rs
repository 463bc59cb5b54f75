//! Help Scout Mailbox API 2.0: conversations (`GET /v2/conversations`), with an OAuth2
//! client-credentials token (`POST /v2/oauth2/token`).
//!
//! - The token is cached until its `expires_in` (less a margin) and fetched again once
//!   when a request answers 401 (a token revoked or expired early); a second 401 fails the
//!   run with the fix.
//! - A run walks `status=all&modifiedSince=<mark>&sortField=modifiedAt&sortOrder=asc&page=N&embed=threads`
//!   through the HAL pages (`_embedded.conversations`, `page.totalPages`, `_links.next`).
//!   `status=all` because the default status filter of v2 is not documented;
//!   `embed=threads` so the first reply and abandonment can be read from the threads.
//! - The cursor is a [`Window`] over `modifiedAt` (falling back to `userUpdatedAt`): the
//!   high-water mark plus the ids at its second, resumed at its page after a failure.
//! - Rate limits: 429 with `X-RateLimit-Retry-After` (seconds; Help Scout's own) or
//!   `Retry-After`; `X-RateLimit-Remaining-Minute` is logged when it runs low.
//! - Ratings: with `ratings = true` (the default), a run that has read the conversations
//!   reads the happiness ratings report (`GET /v2/reports/happiness/ratings?start&end
//!   &rating=all&sortField=modifiedAt&sortOrder=ASC&page=N`; Plus and Pro plans). Each
//!   result is a rating of one reply thread (`threadid`, the key), `ratingId` 1 Great,
//!   2 Okay, 3 Not Good. The ratings keep their own [`Window`] over `ratingCreatedAt`. A
//!   plan without reports (403/404) ends the phase with a warning; the conversations are
//!   kept. Rating objects (the webhook shape) and the CSV export's rating column are read
//!   by the presets.
//!
//! A conversation is read exactly like one of a saved page (the `helpscout-json` preset),
//! so a quarantined one replays with the preset.

use super::http::{FetchContext, Http, Response};
use super::window::{Window, iso_z, rfc3339_secs};
use super::{ConnectorError, Page};
use crate::config::{HelpscoutSettings, HttpSettings, Secret};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::{RowError, SourceRecord};
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CONVERSATIONS: &str = "/v2/conversations";
const RATINGS: &str = "/v2/reports/happiness/ratings";

/// The stored cursor: the conversations' window (flattened, so a cursor stored before
/// ratings existed still reads) and the ratings' own.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cursor {
    #[serde(flatten)]
    conversations: Window,
    /// The run reads ratings now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ratings_phase: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ratings: Option<Window>,
}

#[derive(Debug)]
struct Token {
    value: Secret,
    /// When to ask for a new one (its lifetime less a margin).
    renew_at: Instant,
}

#[derive(Debug)]
pub struct Helpscout {
    http: Http,
    settings: HelpscoutSettings,
    token: Mutex<Option<Token>>,
}

/// `X-RateLimit-Retry-After` (seconds), Help Scout's own wait header of a 429.
fn vendor_wait(h: &HeaderMap) -> Option<Duration> {
    h.get("x-ratelimit-retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

impl Helpscout {
    pub fn new(
        settings: &HelpscoutSettings,
        http: &HttpSettings,
    ) -> Result<Helpscout, ConnectorError> {
        Ok(Helpscout {
            http: Http::new(http)?,
            settings: settings.clone(),
            token: Mutex::new(None),
        })
    }

    /// The cached token, or a new one from the token endpoint.
    async fn token(&self, cx: &FetchContext) -> Result<Secret, ConnectorError> {
        {
            let cached = self.token.lock().expect("not poisoned");
            if let Some(t) = cached.as_ref()
                && Instant::now() < t.renew_at
            {
                return Ok(t.value.clone());
            }
        }
        let label = "POST /v2/oauth2/token";
        let resp = self
            .http
            .post_form(
                &self.settings.token_url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &self.settings.client_id),
                    ("client_secret", self.settings.client_secret.expose()),
                ],
                label,
                cx,
                &|rb| rb,
                &vendor_wait,
            )
            .await?;
        let v: Value = serde_json::from_str(&resp.body).map_err(|_| ConnectorError::Payload {
            request: label.into(),
            message: "the token response is not JSON".into(),
        })?;
        let Some(access) = v.get("access_token").and_then(Value::as_str) else {
            return Err(ConnectorError::Payload {
                request: label.into(),
                message: "the token response has no access_token".into(),
            });
        };
        // Lifetime not documented; 2 days is what Help Scout answers today. Renew a tenth
        // of it (at most a minute) early so a token does not expire mid-request.
        let life = v.get("expires_in").and_then(Value::as_u64).unwrap_or(7200);
        let margin = (life / 10).min(60);
        let value = Secret::new(access.to_string());
        *self.token.lock().expect("not poisoned") = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + Duration::from_secs(life.saturating_sub(margin)),
        });
        Ok(value)
    }

    fn forget_token(&self) {
        *self.token.lock().expect("not poisoned") = None;
    }

    fn url(&self, w: &Window) -> Result<String, ConnectorError> {
        let mut url = reqwest::Url::parse(&format!("{}{CONVERSATIONS}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("status", "all")
            .append_pair("modifiedSince", &iso_z(w.since))
            .append_pair("sortField", "modifiedAt")
            .append_pair("sortOrder", "asc")
            .append_pair("page", &w.page().to_string())
            .append_pair("embed", "threads");
        Ok(url.to_string())
    }

    /// GETs with the token; on a 401, once more with a new token.
    async fn get(
        &self,
        url: &str,
        label: &str,
        cx: &FetchContext,
    ) -> Result<Response, ConnectorError> {
        let mut renewed = false;
        loop {
            let token = self.token(cx).await?;
            let authorize = move |rb: reqwest::RequestBuilder| rb.bearer_auth(token.expose());
            match self
                .http
                .get(url, label, cx, &authorize, &vendor_wait)
                .await
            {
                Err(ConnectorError::Auth { status: 401, .. }) if !renewed => {
                    tracing::info!(connector = %cx.connector, "Help Scout refused the token (401); asking for a new one.");
                    self.forget_token();
                    renewed = true;
                }
                other => return other,
            }
        }
    }

    /// One page of the happiness ratings report.
    async fn ratings_page(&self, mut c: Cursor, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let label = format!("GET {RATINGS}");
        let mut w = c
            .ratings
            .take()
            .unwrap_or_else(|| Window::new(self.settings.start_time));
        // The report needs an end: the run's start, kept for all its pages.
        let end = *w
            .started
            .get_or_insert_with(|| chrono::Utc::now().timestamp());
        let page_no = w.page();
        let mut url = reqwest::Url::parse(&format!("{}{RATINGS}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("start", &iso_z(w.since))
            .append_pair("end", &iso_z(end))
            .append_pair("rating", "all")
            .append_pair("sortField", "modifiedAt")
            .append_pair("sortOrder", "ASC")
            .append_pair("page", &page_no.to_string());
        let finish = |mut c: Cursor, w: Window| {
            c.ratings = Some(w);
            c.ratings_phase = false;
            Page {
                cursor: Some(serde_json::to_string(&c).expect("plain data")),
                more: false,
                ..Default::default()
            }
        };
        let resp = match self.get(url.as_str(), &label, cx).await {
            Err(ConnectorError::Auth { status: 403, .. })
            | Err(ConnectorError::Http { status: 404, .. }) => {
                tracing::warn!(connector = %cx.connector, "Help Scout refused the ratings report (reports need the Plus or Pro plan); ratings are not read. Set `ratings = false` to stop asking.");
                w.started = None;
                w.page = None;
                return Ok(finish(c, w));
            }
            other => other?,
        };
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
            request: label.clone(),
            message: format!("not JSON ({e})"),
        })?;
        let items: &[Value] = match v.get("results") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(ConnectorError::Payload {
                    request: label,
                    message: "`results` is not an array".into(),
                });
            }
        };
        let origin = format!(
            "helpscout {RATINGS} start={} page {page_no}",
            iso_z(w.since)
        );
        let mut page = Page::default();
        for (i, item) in items.iter().enumerate() {
            let index = i as u64 + 1;
            let Some(thread) = item
                .get("threadid")
                .and_then(files::mapping::json_text)
                .filter(|s| !s.trim().is_empty())
            else {
                page.rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(index),
                    field: Some("threadid".into()),
                    expected: "a rating with the `threadid` of the rated reply".into(),
                    message: "the rating has no threadid".into(),
                    raw: item.to_string(),
                });
                continue;
            };
            if !w.admit(&thread, rfc3339_secs(item.get("ratingCreatedAt"))) {
                continue; // stored by the run that set the mark
            }
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: item.to_string(),
                ..Default::default()
            };
            files::helpscout::report_rating_record(item, &mut rec);
            page.records.push(rec);
        }
        let pages = v.get("pages").and_then(Value::as_u64).unwrap_or(0);
        if u64::from(page_no) < pages && !items.is_empty() {
            w.page = Some(page_no + 1);
            c.ratings = Some(w);
            page.more = true;
            page.cursor = Some(serde_json::to_string(&c).expect("plain data"));
            return Ok(page);
        }
        let done = finish(c, w.finished());
        page.cursor = done.cursor;
        page.more = false;
        Ok(page)
    }
}

#[async_trait::async_trait]
impl super::Connector for Helpscout {
    fn preset(&self) -> Preset {
        Preset::HelpscoutJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let mut c = match cursor {
            None => Cursor {
                conversations: Window::new(self.settings.start_time),
                ..Default::default()
            },
            Some(text) => serde_json::from_str::<Cursor>(text).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a Help Scout cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
        if c.ratings_phase {
            return self.ratings_page(c, cx).await;
        }
        let label = format!("GET {CONVERSATIONS}");
        let mut w = std::mem::take(&mut c.conversations);
        let page_no = w.page();
        let url = self.url(&w)?;
        let resp = self.get(&url, &label, cx).await?;
        w.note_clock(&resp.headers);
        if let Some(r) = resp
            .headers
            .get("x-ratelimit-remaining-minute")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            && r < 5
        {
            tracing::info!(connector = %cx.connector, remaining = r, "Help Scout's per-minute limit is nearly used up; a 429 will pause the run.");
        }
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
            request: label.clone(),
            message: format!("not JSON ({e})"),
        })?;
        if !v.is_object() {
            return Err(ConnectorError::Payload {
                request: label,
                message: "not a HAL object with `_embedded.conversations`".into(),
            });
        }
        // An empty list may come without `_embedded`.
        let items: &[Value] = match v.pointer("/_embedded/conversations") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(ConnectorError::Payload {
                    request: label,
                    message: "`_embedded.conversations` is not an array".into(),
                });
            }
        };
        let origin = format!(
            "helpscout {CONVERSATIONS} modifiedSince={} page {page_no}",
            iso_z(w.since)
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
            if !w.admit(&id, rfc3339_secs(files::helpscout::updated_at(item))) {
                continue; // stored by the run that set the mark
            }
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: item.to_string(),
                ..Default::default()
            };
            files::helpscout::conversation_record(item, &mut rec);
            page.records.push(rec);
        }
        let total = v.pointer("/page/totalPages").and_then(Value::as_u64);
        let next = v.pointer("/_links/next").is_some_and(|n| !n.is_null())
            || total.is_some_and(|t| u64::from(page_no) < t);
        if next && !items.is_empty() {
            w.page = Some(page_no + 1);
            c.conversations = w;
            page.more = true;
        } else {
            c.conversations = w.finished();
            // The ratings follow the conversations in the same run.
            c.ratings_phase = self.settings.ratings;
            page.more = self.settings.ratings;
        }
        page.cursor = Some(serde_json::to_string(&c).expect("plain data"));
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpscouts_own_wait_header_is_read() {
        let mut h = HeaderMap::new();
        assert_eq!(vendor_wait(&h), None);
        h.insert("x-ratelimit-retry-after", "7".parse().unwrap());
        assert_eq!(vendor_wait(&h), Some(Duration::from_secs(7)));
    }
}
