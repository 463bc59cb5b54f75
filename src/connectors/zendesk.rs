//! Zendesk Support: the cursor-based incremental ticket export with the requesters and
//! the ticket metrics sideloaded
//! (`GET /api/v2/incremental/tickets/cursor.json?include=users,metric_sets`).
//!
//! The first run starts at `start_time` (unix seconds); every page's `after_cursor` is
//! stored with the page, and later runs continue from it until `end_of_stream`. Tickets
//! come back when they change, and are stored again as updates (keyed by ticket id). The
//! endpoint allows 10 requests a minute; a 429 carries `Retry-After` in seconds, which
//! [`super::http`] honours. A ticket is read exactly like one of a saved export page (the
//! `zendesk-json` preset), so a quarantined ticket replays with that preset.

use super::http::{FetchContext, Http};
use super::{ConnectorError, Page};
use crate::config::{HttpSettings, ZendeskAuth, ZendeskSettings};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::RowError;
use serde_json::Value;

const ENDPOINT: &str = "/api/v2/incremental/tickets/cursor.json";

#[derive(Debug)]
pub struct Zendesk {
    http: Http,
    settings: ZendeskSettings,
}

impl Zendesk {
    pub fn new(settings: &ZendeskSettings, http: &HttpSettings) -> Result<Zendesk, ConnectorError> {
        Ok(Zendesk {
            http: Http::new(http)?,
            settings: settings.clone(),
        })
    }

    fn url(&self, cursor: Option<&str>) -> Result<String, ConnectorError> {
        let mut url = reqwest::Url::parse(&format!("{}{ENDPOINT}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
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
}

#[async_trait::async_trait]
impl super::Connector for Zendesk {
    fn preset(&self) -> Preset {
        Preset::ZendeskJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let url = self.url(cursor)?;
        let label = format!("GET {ENDPOINT}");
        let auth = self.settings.auth.clone();
        let authorize = move |rb: reqwest::RequestBuilder| match &auth {
            ZendeskAuth::ApiToken { email, token } => {
                rb.basic_auth(format!("{email}/token"), Some(token.expose()))
            }
            ZendeskAuth::OAuth(t) => rb.bearer_auth(t.expose()),
        };
        let resp = self
            .http
            .get(&url, &label, cx, &authorize, &|_| None)
            .await?;
        let payload = |message: String| ConnectorError::Payload {
            request: label.clone(),
            message,
        };
        let v: Value =
            serde_json::from_str(&resp.body).map_err(|e| payload(format!("not JSON ({e})")))?;
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
            cursor
                .map(short)
                .unwrap_or_else(|| format!("start_time={}", self.settings.start_time))
        );
        let mut page = Page {
            cursor: next.map(str::to_string),
            more: !end,
            ..Default::default()
        };
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
            page.records
                .push(files::page_ticket(t, &side, &origin, Some(index)));
        }
        Ok(page)
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
