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
//! - Ratings: no bulk ratings endpoint of v2 could be confirmed (the Reports API's
//!   `happiness/ratings` is known only from third-party clients, its shape not at all), so
//!   the connector reads conversations only; Rating objects (the webhook shape) and the
//!   CSV export's rating column are read by the presets.
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
}

#[async_trait::async_trait]
impl super::Connector for Helpscout {
    fn preset(&self) -> Preset {
        Preset::HelpscoutJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let label = format!("GET {CONVERSATIONS}");
        let mut w = match cursor {
            None => Window::new(self.settings.start_time),
            Some(text) => serde_json::from_str::<Window>(text).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a Help Scout cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
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
        let (cursor, more) = if next && !items.is_empty() {
            w.page = Some(page_no + 1);
            (w, true)
        } else {
            (w.finished(), false)
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
    fn helpscouts_own_wait_header_is_read() {
        let mut h = HeaderMap::new();
        assert_eq!(vendor_wait(&h), None);
        h.insert("x-ratelimit-retry-after", "7".parse().unwrap());
        assert_eq!(vendor_wait(&h), Some(Duration::from_secs(7)));
    }
}
