//! Google Business Profile reviews (API v4,
//! `GET /v4/accounts/{a}/locations/{l}/reviews?pageSize=50&orderBy=updateTime desc`).
//!
//! **Auth.** OAuth2 with a refresh token (scope `business.manage`; there is no API-key
//! access): the client id, client secret and refresh token are exchanged at the token
//! endpoint for an access token, kept until a minute before it expires and fetched again
//! once when the API answers 401.
//!
//! **Locations.** The configured list, or every location of the account as the Business
//! Information API lists it (`GET /v1/accounts/{a}/locations?readMask=name,title`); its
//! `title` is kept with each review as a candidate for the location (match it, or the
//! numeric location id, with a `[[location]]`'s `aliases`).
//!
//! **Newest first.** The API sorts by `updateTime` descending only. A run walks each
//! location's pages from the newest review and stops at the first review whose
//! `updateTime` is at or before the location's high-water mark. The mark moves to the
//! newest `updateTime` seen only when a location's walk is complete, so a run stopped
//! mid-way reads the same reviews again next time (stored as unchanged) and nothing is
//! skipped. An edit raises `updateTime`: the review is stored again as an update. The
//! owner's reply (`reviewReply`) is an interaction of its own (a reply), which feeds the
//! response rate and time.
//!
//! **Limits.** 300 requests a minute per project; past it a 429 `RESOURCE_EXHAUSTED`
//! without `Retry-After`, which [`super::http`] answers with exponential backoff.
//!
//! A review is read exactly like one of a Takeout export (the `google-takeout` preset),
//! so a quarantined review replays with that preset.

use super::http::{FetchContext, Http};
use super::{ConnectorError, Page};
use crate::config::{GoogleSettings, HttpSettings};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::{RowError, SourceRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Google {
    http: Http,
    settings: GoogleSettings,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

/// The stored cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// Per location name (`accounts/a/locations/l`): the newest `updateTime` stored.
    #[serde(default)]
    marks: BTreeMap<String, String>,
    /// The run under way, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<Run>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Run {
    /// The locations of this run: (name, title).
    locations: Vec<(String, Option<String>)>,
    /// The location being read.
    at: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
    /// The newest `updateTime` seen in this location's walk so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    newest: Option<String>,
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The later of two RFC 3339 times (by instant, whatever their fractional digits).
fn later(a: Option<&str>, b: &str) -> String {
    match a {
        Some(a) if instant(a) >= instant(b) => a.to_string(),
        _ => b.to_string(),
    }
}

impl Google {
    pub fn new(settings: &GoogleSettings, http: &HttpSettings) -> Result<Google, ConnectorError> {
        Ok(Google {
            http: Http::new(http)?,
            settings: settings.clone(),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// An access token, from the cache or the token endpoint.
    async fn access_token(&self, cx: &FetchContext, fresh: bool) -> Result<String, ConnectorError> {
        let mut cached = self.token.lock().await;
        if !fresh
            && let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let label = "POST token (refresh_token grant)";
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.settings.client_secret.expose()),
            ("refresh_token", self.settings.refresh_token.expose()),
        ];
        let resp = match self
            .http
            .post_form(
                &self.settings.token_url,
                &form,
                label,
                cx,
                &|rb| rb,
                &|_| None,
            )
            .await
        {
            // Google answers a revoked or wrong refresh token with 400 `invalid_grant`.
            Err(ConnectorError::Http {
                request,
                status: 400,
                message,
            }) => {
                return Err(ConnectorError::Auth {
                    request,
                    status: 400,
                    message,
                });
            }
            other => other?,
        };
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
            request: label.into(),
            message: format!("not JSON ({e})"),
        })?;
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::Payload {
                request: label.into(),
                message: "no `access_token`".into(),
            })?
            .to_string();
        let lifetime = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        // A minute early, so a token never expires between the check and the request.
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60));
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    /// GETs a JSON document with the access token; a 401 fetches a new token once.
    async fn get_json(
        &self,
        url: &str,
        label: &str,
        cx: &FetchContext,
    ) -> Result<Value, ConnectorError> {
        let mut fresh = false;
        loop {
            let token = self.access_token(cx, fresh).await?;
            let authorize = move |rb: reqwest::RequestBuilder| rb.bearer_auth(&token);
            match self.http.get(url, label, cx, &authorize, &|_| None).await {
                Ok(resp) => {
                    return serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
                        request: label.to_string(),
                        message: format!("not JSON ({e})"),
                    });
                }
                Err(ConnectorError::Auth { status: 401, .. }) if !fresh => fresh = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// The run's locations: the configured ones, or the account's as listed.
    async fn locations(
        &self,
        cx: &FetchContext,
    ) -> Result<Vec<(String, Option<String>)>, ConnectorError> {
        let account = self.settings.account.trim_end_matches('/');
        if !self.settings.locations.is_empty() {
            return Ok(self
                .settings
                .locations
                .iter()
                .map(|l| {
                    let name = if l.starts_with("accounts/") {
                        l.clone()
                    } else {
                        format!("{account}/{}", l.trim_start_matches('/'))
                    };
                    (name, None)
                })
                .collect());
        }
        let label = format!("GET /v1/{account}/locations");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&format!(
                "{}/v1/{account}/locations",
                self.settings.info_base_url
            ))
            .map_err(|e| ConnectorError::Setup(format!("info_base_url: {e}")))?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("readMask", "name,title");
                q.append_pair("pageSize", "100");
                if let Some(t) = &token {
                    q.append_pair("pageToken", t);
                }
            }
            let v = self.get_json(url.as_str(), &label, cx).await?;
            for l in v
                .get("locations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // The Business Information API names a location `locations/{l}`.
                let Some(name) = l.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let name = if name.starts_with("accounts/") {
                    name.to_string()
                } else {
                    format!("{account}/{name}")
                };
                let title = l.get("title").and_then(Value::as_str).map(str::to_string);
                out.push((name, title));
            }
            token = v
                .get("nextPageToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[async_trait::async_trait]
impl super::Connector for Google {
    fn preset(&self) -> Preset {
        Preset::GoogleTakeout
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let mut c: Cursor = match cursor {
            None => Cursor::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a Google cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
        let mut run = match c.run.take() {
            Some(r) => r,
            None => Run {
                locations: self.locations(cx).await?,
                ..Default::default()
            },
        };
        let Some((location, title)) = run.locations.get(run.at).cloned() else {
            // No location (an account without any): nothing to read.
            return Ok(Page {
                cursor: Some(serde_json::to_string(&c).expect("plain data")),
                ..Default::default()
            });
        };
        let mut url =
            reqwest::Url::parse(&format!("{}/v4/{location}/reviews", self.settings.base_url))
                .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("pageSize", &self.settings.page_size.to_string());
            q.append_pair("orderBy", "updateTime desc");
            if let Some(t) = &run.page_token {
                q.append_pair("pageToken", t);
            }
        }
        let label = "GET /v4/{location}/reviews";
        let v = match self.get_json(url.as_str(), label, cx).await {
            // A page token from an interrupted run may have expired: that location's
            // walk starts again from its newest review (what was stored is unchanged).
            Err(ConnectorError::Http { status: 400, .. }) if run.page_token.is_some() => {
                tracing::warn!(connector = %cx.connector, %location, "The stored page token was refused; reading this location again from its newest review.");
                run.page_token = None;
                run.newest = None;
                c.run = Some(run);
                return Ok(Page {
                    cursor: Some(serde_json::to_string(&c).expect("plain data")),
                    more: true,
                    ..Default::default()
                });
            }
            other => other?,
        };
        let payload = |message: &str| ConnectorError::Payload {
            request: label.to_string(),
            message: message.to_string(),
        };
        if !v.is_object() {
            return Err(payload("not a ListReviewsResponse object"));
        }
        // `reviews` is absent for a location without any.
        let reviews: &[Value] = match v.get("reviews") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(_) => return Err(payload("`reviews` is not an array")),
        };
        let mark = c.marks.get(&location).cloned();
        let mark_at = mark.as_deref().and_then(instant);
        let origin = format!(
            "google {location}/reviews{}",
            run.page_token
                .as_deref()
                .map(|t| format!(" pageToken {}", t.chars().take(16).collect::<String>()))
                .unwrap_or_default()
        );
        let mut page = Page::default();
        let mut reached_mark = false;
        for (i, r) in reviews.iter().enumerate() {
            let index = i as u64 + 1;
            let updated = r.get("updateTime").and_then(Value::as_str);
            if let (Some(m), Some(u)) = (mark_at, updated.and_then(instant))
                && u <= m
            {
                reached_mark = true;
                break;
            }
            if let Some(u) = updated {
                run.newest = Some(later(run.newest.as_deref(), u));
            }
            if r.get("name").and_then(Value::as_str).is_none() {
                page.rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(index),
                    field: Some("name".into()),
                    expected: "a review with its `name` (accounts/…/locations/…/reviews/…)".into(),
                    message: "the review has no name".into(),
                    raw: r.to_string(),
                });
                continue;
            }
            let mut raw = r.clone();
            if let (Some(t), Value::Object(o)) = (&title, &mut raw) {
                o.insert("listing".into(), Value::from(t.as_str()));
            }
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: raw.to_string(),
                ..Default::default()
            };
            files::google::review_record(&raw, None, &mut rec);
            page.records.push(rec);
        }
        let next = v
            .get("nextPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        match next {
            Some(t) if !reached_mark => {
                run.page_token = Some(t.to_string());
                page.more = true;
            }
            _ => {
                // This location is read up to its mark: the mark moves.
                if let Some(n) = run.newest.take() {
                    c.marks.insert(location, later(mark.as_deref(), &n));
                }
                run.page_token = None;
                run.at += 1;
                page.more = run.at < run.locations.len();
            }
        }
        if page.more {
            c.run = Some(run);
        }
        page.cursor = Some(serde_json::to_string(&c).expect("plain data"));
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_compares_instants_not_digits() {
        assert_eq!(
            later(
                Some("2024-05-03T08:00:00.5Z"),
                "2024-05-03T08:00:00.123456Z"
            ),
            "2024-05-03T08:00:00.5Z"
        );
        assert_eq!(later(None, "2024-05-03T08:00:00Z"), "2024-05-03T08:00:00Z");
        assert_eq!(
            later(Some("2024-05-03T08:00:00Z"), "2024-05-04T00:00:00Z"),
            "2024-05-04T00:00:00Z"
        );
    }

    #[test]
    fn cursors_round_trip() {
        let mut c = Cursor::default();
        c.marks.insert(
            "accounts/1/locations/2".into(),
            "2024-05-03T08:00:00Z".into(),
        );
        c.run = Some(Run {
            locations: vec![("accounts/1/locations/2".into(), Some("Store".into()))],
            at: 0,
            page_token: Some("t".into()),
            newest: None,
        });
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Cursor>(&text).unwrap(), c);
    }
}
