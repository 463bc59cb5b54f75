//! Bluesky: `app.bsky.feed.searchPosts` for each configured query, through the account's
//! PDS with an app-password session.
//!
//! Unauthenticated search is refused (403, often a CDN's HTML page), so the connector
//! opens a session with `com.atproto.server.createSession` (identifier + app password)
//! and sends its `accessJwt`. createSession is limited per account (30 per 5 minutes,
//! 300 a day), so the session is kept for the life of the process and shared by every
//! run of the connector; when the access token expires (XRPC error `ExpiredToken`, HTTP
//! 400) it is renewed with `com.atproto.server.refreshSession` (Bearer `refreshJwt`),
//! and only when that fails is a new session created.
//!
//! Each query is walked newest first (`sort=latest`, `limit=100`) with the opaque
//! `cursor` until the cursor is absent or a page is empty. Its high-water mark is the
//! latest post time of the last complete walk: the earlier of `record.createdAt` (set
//! by the client, may be wrong) and `indexedAt`, close to the `sortAt` that `since`
//! is compared with. The next walk asks for `since=<mark>` (inclusive) and skips the
//! posts already stored at that very instant. The `ratelimit-*` headers (reset in unix
//! seconds) pace the requests and time the wait after a 429.

use super::files::{self, Preset};
use super::http::{FetchContext, Http};
use super::social::{self, Pace, QueryCursor};
use super::{ConnectorError, Page};
use crate::config::{BlueskySettings, HttpSettings, Secret, SocialQuery};
use crate::pipeline::normalize::{RowError, SourceRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

const SEARCH: &str = "/xrpc/app.bsky.feed.searchPosts";
const CREATE: &str = "/xrpc/com.atproto.server.createSession";
const REFRESH: &str = "/xrpc/com.atproto.server.refreshSession";

#[derive(Debug, Clone)]
struct Session {
    access: Secret,
    refresh: Secret,
}

/// Sessions by PDS and account, for every run of the process.
static SESSIONS: LazyLock<Mutex<HashMap<String, Session>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

#[derive(Debug)]
pub struct Bluesky {
    http: Http,
    settings: BlueskySettings,
    pace: Pace,
}

/// One query's part of the cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct QueryState {
    /// `since` of the next walk (RFC 3339, milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mark: Option<String>,
    /// Posts (`uri`) stored with the time of the mark.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    at_mark: Vec<String>,
    /// Mid-walk: the vendor's cursor of the next page and its number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    /// Mid-walk: the latest post time seen (unix ms) and the posts at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    high: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    high_uris: Vec<String>,
}

impl QueryState {
    fn mark_ms(&self) -> Option<i64> {
        self.mark.as_deref().and_then(parse_ms)
    }

    fn see(&mut self, at: i64, uri: &str) {
        match self.high {
            Some(h) if at < h => {}
            Some(h) if at == h => {
                if !self.high_uris.iter().any(|u| u == uri) {
                    self.high_uris.push(uri.to_string());
                }
            }
            _ => {
                self.high = Some(at);
                self.high_uris = vec![uri.to_string()];
            }
        }
    }

    /// The walk ended: the mark moves to the latest post seen.
    fn finish(&mut self) {
        let mark = self.mark_ms();
        match (self.high, mark) {
            (Some(h), Some(m)) if h == m => {
                for u in std::mem::take(&mut self.high_uris) {
                    if !self.at_mark.contains(&u) {
                        self.at_mark.push(u);
                    }
                }
            }
            (Some(h), m) if m.is_none_or(|m| h > m) => {
                self.mark = Some(format_ms(h));
                self.at_mark = std::mem::take(&mut self.high_uris);
            }
            _ => {}
        }
        self.cursor = None;
        self.page = None;
        self.high = None;
        self.high_uris.clear();
    }
}

fn parse_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp_millis())
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The post's time as `since` sees it: the earlier of createdAt and indexedAt.
fn post_ms(post: &Value) -> Option<i64> {
    let created = post
        .pointer("/record/createdAt")
        .and_then(Value::as_str)
        .and_then(parse_ms);
    let indexed = post
        .get("indexedAt")
        .and_then(Value::as_str)
        .and_then(parse_ms);
    match (created, indexed) {
        (Some(c), Some(i)) => Some(c.min(i)),
        (c, i) => c.or(i),
    }
}

/// An expired or otherwise stale session: renew it rather than fail.
fn stale_session(e: &ConnectorError) -> bool {
    match e {
        ConnectorError::Auth { message, .. }
        | ConnectorError::Http {
            status: 400,
            message,
            ..
        } => message.contains("ExpiredToken") || message.contains("InvalidToken"),
        _ => false,
    }
}

fn field<'a>(v: &'a Value, key: &str, label: &str) -> Result<&'a str, ConnectorError> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConnectorError::Payload {
            request: label.to_string(),
            message: format!("the session has no `{key}`"),
        })
}

impl Bluesky {
    pub fn new(settings: &BlueskySettings, http: &HttpSettings) -> Result<Bluesky, ConnectorError> {
        Ok(Bluesky {
            http: Http::new(http)?,
            settings: settings.clone(),
            pace: Pace::new(Duration::ZERO),
        })
    }

    /// The PDS, the account and a digest of the app password: a changed password (a
    /// reloaded configuration) opens its own session.
    fn session_key(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.settings.app_password.expose().hash(&mut h);
        format!(
            "{}\n{}\n{:x}",
            self.settings.base_url,
            self.settings.identifier,
            h.finish()
        )
    }

    fn remember(&self, s: Option<Session>) {
        let mut all = SESSIONS.lock().unwrap_or_else(|p| p.into_inner());
        match s {
            Some(s) => all.insert(self.session_key(), s),
            None => all.remove(&self.session_key()),
        };
    }

    fn wait_for(h: &reqwest::header::HeaderMap) -> Option<Duration> {
        social::until_epoch(h, "ratelimit-reset")
    }

    fn read_session(body: &str, label: &str) -> Result<Session, ConnectorError> {
        let v = social::json_body(body, label)?;
        Ok(Session {
            access: Secret::new(field(&v, "accessJwt", label)?),
            refresh: Secret::new(field(&v, "refreshJwt", label)?),
        })
    }

    async fn create_session(&self, cx: &FetchContext) -> Result<Session, ConnectorError> {
        let label = format!("POST {CREATE}");
        let body = serde_json::json!({
            "identifier": self.settings.identifier,
            "password": self.settings.app_password.expose(),
        });
        self.pace.ready(cx, self.http.max_wait()).await?;
        let resp = self
            .http
            .post_json(
                &format!("{}{CREATE}", self.settings.base_url),
                &body,
                &label,
                cx,
                &|rb| rb,
                &Self::wait_for,
            )
            .await?;
        let s = Self::read_session(&resp.body, &label)?;
        tracing::info!(connector = %cx.connector, "Opened a Bluesky session.");
        self.remember(Some(s.clone()));
        Ok(s)
    }

    async fn refresh_session(
        &self,
        cx: &FetchContext,
        old: &Session,
    ) -> Result<Session, ConnectorError> {
        let label = format!("POST {REFRESH}");
        let refresh = old.refresh.clone();
        let authorize = move |rb: reqwest::RequestBuilder| rb.bearer_auth(refresh.expose());
        // refreshSession takes no input: an empty body.
        let resp = self
            .http
            .post_form(
                &format!("{}{REFRESH}", self.settings.base_url),
                &[],
                &label,
                cx,
                &authorize,
                &Self::wait_for,
            )
            .await?;
        let s = Self::read_session(&resp.body, &label)?;
        self.remember(Some(s.clone()));
        Ok(s)
    }

    async fn search(
        &self,
        url: &str,
        label: &str,
        cx: &FetchContext,
        session: &Session,
    ) -> Result<super::http::Response, ConnectorError> {
        self.pace.ready(cx, self.http.max_wait()).await?;
        let access = session.access.clone();
        let authorize = move |rb: reqwest::RequestBuilder| rb.bearer_auth(access.expose());
        let r = self
            .http
            .get(url, label, cx, &authorize, &Self::wait_for)
            .await;
        if let Ok(resp) = &r {
            self.pace.after(
                social::header_f64(&resp.headers, "ratelimit-remaining"),
                Self::wait_for(&resp.headers),
            );
        }
        r
    }

    /// Searches with the kept session, renewing it once when it went stale.
    async fn search_with_session(
        &self,
        url: &str,
        label: &str,
        cx: &FetchContext,
    ) -> Result<super::http::Response, ConnectorError> {
        let cached = SESSIONS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.session_key())
            .cloned();
        let session = match cached {
            Some(s) => s,
            None => self.create_session(cx).await?,
        };
        match self.search(url, label, cx, &session).await {
            Err(e) if stale_session(&e) => {
                tracing::info!(connector = %cx.connector, "The Bluesky session expired; refreshing it.");
                let renewed = match self.refresh_session(cx, &session).await {
                    Ok(s) => s,
                    Err(ConnectorError::Stopped) => return Err(ConnectorError::Stopped),
                    Err(e) => {
                        tracing::warn!(connector = %cx.connector, error = %e, "refreshSession failed; opening a new session.");
                        self.remember(None);
                        self.create_session(cx).await?
                    }
                };
                self.search(url, label, cx, &renewed).await
            }
            other => other,
        }
    }

    fn url(&self, q: &SocialQuery, st: &QueryState) -> Result<String, ConnectorError> {
        let mut url = reqwest::Url::parse(&format!("{}{SEARCH}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        {
            let mut p = url.query_pairs_mut();
            p.append_pair("q", &q.q)
                .append_pair("sort", "latest")
                .append_pair("limit", "100");
            let since = st.mark.clone().or_else(|| {
                self.settings
                    .start_time
                    .map(|s| format_ms(s.saturating_mul(1000)))
            });
            if let Some(s) = since {
                p.append_pair("since", &s);
            }
            if let Some(c) = &st.cursor {
                p.append_pair("cursor", c);
            }
        }
        Ok(url.to_string())
    }
}

#[async_trait::async_trait]
impl super::Connector for Bluesky {
    fn preset(&self) -> Preset {
        Preset::BlueskyJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let queries = &self.settings.queries;
        let mut c: QueryCursor<QueryState> = QueryCursor::read(cursor, "Bluesky", queries.len())?;
        let Some(q) = queries.get(c.at).cloned() else {
            return Ok(Page::default());
        };
        let st = c.state(&q).clone();
        let url = self.url(&q, &st)?;
        let label = format!("GET {SEARCH}");
        let resp = self.search_with_session(&url, &label, cx).await?;
        let v = social::json_body(&resp.body, &label)?;
        let Some(posts) = v.get("posts").and_then(Value::as_array) else {
            return Err(ConnectorError::Payload {
                request: label,
                message: "no `posts` array".into(),
            });
        };
        let page_no = st.page.unwrap_or(1);
        let origin = format!("bluesky searchPosts q={:?} page {page_no}", q.key());
        let mut page = Page::default();
        let mut state = st;
        let mark = state.mark_ms();
        for (i, post) in posts.iter().enumerate() {
            let index = i as u64 + 1;
            let uri = post
                .get("uri")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty());
            let Some(uri) = uri.filter(|_| post.is_object()) else {
                page.rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(index),
                    field: Some("uri".into()),
                    expected: "a postView object with a `uri`".into(),
                    message: "the post has no uri".into(),
                    raw: post.to_string(),
                });
                continue;
            };
            let at = post_ms(post);
            if at.is_some() && at == mark && state.at_mark.iter().any(|u| u == uri) {
                continue; // stored by the walk that set the mark
            }
            if let Some(t) = at {
                state.see(t, uri);
            }
            let item = social::with_provenance(post, &q);
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: item.to_string(),
                ..Default::default()
            };
            files::social::bluesky_post(&item, &mut rec);
            page.records.push(rec);
        }
        let next = v
            .get("cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty());
        match next {
            Some(n) if !posts.is_empty() => {
                state.cursor = Some(n.to_string());
                state.page = Some(page_no + 1);
                *c.state(&q) = state;
                page.more = true;
            }
            _ => {
                state.finish();
                *c.state(&q) = state;
                page.more = c.next_query(queries.len());
            }
        }
        page.cursor = Some(c.text());
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_moves_to_the_latest_post_with_the_posts_at_it() {
        let mut s = QueryState::default();
        s.see(2_000, "b");
        s.see(1_000, "a");
        s.see(2_000, "c");
        s.cursor = Some("x".into());
        s.finish();
        assert_eq!(s.mark.as_deref(), Some("1970-01-01T00:00:02.000Z"));
        assert_eq!(s.at_mark, ["b", "c"]);
        assert!(s.cursor.is_none() && s.high.is_none());
        // Nothing newer: the mark stays and gains the new posts at its instant.
        s.see(2_000, "d");
        s.finish();
        assert_eq!(s.at_mark, ["b", "c", "d"]);
        s.finish();
        assert_eq!(s.mark.as_deref(), Some("1970-01-01T00:00:02.000Z"));
    }

    #[test]
    fn stale_sessions_are_recognised() {
        let e = ConnectorError::Http {
            request: "GET".into(),
            status: 400,
            message: r#"{"error":"ExpiredToken","message":"Token has expired"}"#.into(),
        };
        assert!(stale_session(&e));
        let e = ConnectorError::Http {
            request: "GET".into(),
            status: 400,
            message: r#"{"error":"BadQueryString"}"#.into(),
        };
        assert!(!stale_session(&e));
    }
}
