//! Reddit: search listings (`GET /search`, or `/r/{sub}/search` for a query with a
//! subreddit) on `oauth.reddit.com`, with an OAuth token from
//! `POST https://www.reddit.com/api/v1/access_token` (HTTP Basic `client_id:secret`,
//! form `grant_type=client_credentials` for an application-only app, or
//! `grant_type=password` with the developer's user name and password for a script app).
//!
//! Every request carries the configured User-Agent (Reddit throttles or bans generic
//! ones). The free tier allows 100 requests a minute per OAuth client: requests are
//! spaced at `60 / requests_per_minute` seconds, and when `X-Ratelimit-Remaining`
//! reaches 0 the next request waits `X-Ratelimit-Reset` seconds (also the wait after a
//! 429). A token is reused until a minute before it expires, and fetched again once when
//! the API refuses it.
//!
//! Search has no `since`: each query is walked newest first (`sort=new`, `limit=100`,
//! `after=<fullname>`) until `data.after` is null or the walk reaches posts older than
//! the high-water mark (the latest `created_utc` of the last complete walk; the
//! fullnames stored at that very second are skipped). Listings stop at about 1000 items,
//! so the schedule should poll often enough for a query's volume. `raw_json=1` keeps
//! `&`, `<` and `>` unescaped in the text. Posts (`t3`) are read, and comments (`t1`)
//! where a listing holds them; other kinds are quarantined.

use super::files::{self, Preset};
use super::http::{FetchContext, Http};
use super::social::{self, Pace, QueryCursor};
use super::{ConnectorError, Page};
use crate::config::{HttpSettings, RedditAuth, RedditSettings, Secret, SocialQuery};
use crate::pipeline::normalize::{RowError, SourceRecord};
use reqwest::header::{HeaderMap, USER_AGENT};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

#[derive(Debug)]
pub struct Reddit {
    http: Http,
    settings: RedditSettings,
    pace: Pace,
    token: tokio::sync::Mutex<Option<(Secret, tokio::time::Instant)>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct QueryState {
    /// `created_utc` of the newest item of the last complete walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mark: Option<f64>,
    /// Fullnames stored with `created_utc == mark`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    at_mark: Vec<String>,
    /// Mid-walk: `after` of the next page and its number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    /// Mid-walk: the newest `created_utc` seen and the fullnames at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    high: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    high_ids: Vec<String>,
}

impl QueryState {
    fn see(&mut self, at: f64, id: &str) {
        match self.high {
            Some(h) if at < h => {}
            Some(h) if at == h => {
                if !self.high_ids.iter().any(|i| i == id) {
                    self.high_ids.push(id.to_string());
                }
            }
            _ => {
                self.high = Some(at);
                self.high_ids = vec![id.to_string()];
            }
        }
    }

    fn finish(&mut self) {
        match (self.high, self.mark) {
            (Some(h), Some(m)) if h == m => {
                for i in std::mem::take(&mut self.high_ids) {
                    if !self.at_mark.contains(&i) {
                        self.at_mark.push(i);
                    }
                }
            }
            (Some(h), m) if m.is_none_or(|m| h > m) => {
                self.mark = Some(h);
                self.at_mark = std::mem::take(&mut self.high_ids);
            }
            _ => {}
        }
        self.after = None;
        self.page = None;
        self.high = None;
        self.high_ids.clear();
    }
}

fn reset_wait(h: &HeaderMap) -> Option<Duration> {
    social::seconds(h, "x-ratelimit-reset")
}

impl Reddit {
    pub fn new(settings: &RedditSettings, http: &HttpSettings) -> Result<Reddit, ConnectorError> {
        let rpm = settings.requests_per_minute.max(1);
        Ok(Reddit {
            http: Http::new(http)?,
            settings: settings.clone(),
            pace: Pace::new(Duration::from_secs_f64(60.0 / rpm as f64)),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token: the kept one, or a new one from the token endpoint.
    async fn token(&self, cx: &FetchContext, renew: bool) -> Result<Secret, ConnectorError> {
        let mut kept = self.token.lock().await;
        if !renew
            && let Some((t, until)) = kept.as_ref()
            && tokio::time::Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let label = "POST /api/v1/access_token";
        let form: Vec<(&str, &str)> = match &self.settings.auth {
            RedditAuth::Application => vec![("grant_type", "client_credentials")],
            RedditAuth::Script { username, password } => vec![
                ("grant_type", "password"),
                ("username", username.as_str()),
                ("password", password.expose()),
            ],
        };
        let (id, secret, ua) = (
            self.settings.client_id.clone(),
            self.settings.client_secret.clone(),
            self.settings.user_agent.clone(),
        );
        let authorize = move |rb: reqwest::RequestBuilder| {
            rb.basic_auth(&id, Some(secret.expose()))
                .header(USER_AGENT, ua.as_str())
        };
        let resp = self
            .http
            .post_form(
                &self.settings.token_url,
                &form,
                label,
                cx,
                &authorize,
                &reset_wait,
            )
            .await?;
        let v = social::json_body(&resp.body, label)?;
        let Some(token) = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            // Reddit answers some refusals with 200 and {"error": "invalid_grant"}.
            let error = v.get("error").and_then(files::mapping::json_text);
            return Err(ConnectorError::Auth {
                request: label.to_string(),
                status: 200,
                message: format!(
                    "no access_token ({})",
                    error.as_deref().unwrap_or("no error named")
                ),
            });
        };
        let lifetime = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        let until =
            tokio::time::Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(1));
        let token = Secret::new(token);
        *kept = Some((token.clone(), until));
        Ok(token)
    }

    fn url(&self, q: &SocialQuery, st: &QueryState) -> Result<String, ConnectorError> {
        let path = match &q.subreddit {
            Some(sr) => format!("/r/{sr}/search"),
            None => "/search".to_string(),
        };
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        {
            let mut p = url.query_pairs_mut();
            p.append_pair("q", &q.q)
                .append_pair("sort", "new")
                .append_pair("limit", "100")
                .append_pair("type", "link")
                .append_pair("raw_json", "1");
            if q.subreddit.is_some() {
                p.append_pair("restrict_sr", "1");
            }
            if let Some(a) = &st.after {
                p.append_pair("after", a);
            }
        }
        Ok(url.to_string())
    }

    async fn get(
        &self,
        url: &str,
        label: &str,
        cx: &FetchContext,
    ) -> Result<super::http::Response, ConnectorError> {
        let mut renew = false;
        loop {
            let token = self.token(cx, renew).await?;
            self.pace.ready(cx, self.http.max_wait()).await?;
            let ua = self.settings.user_agent.clone();
            let authorize = move |rb: reqwest::RequestBuilder| {
                rb.bearer_auth(token.expose())
                    .header(USER_AGENT, ua.as_str())
            };
            let r = self.http.get(url, label, cx, &authorize, &reset_wait).await;
            match &r {
                Ok(resp) => self.pace.after(
                    social::header_f64(&resp.headers, "x-ratelimit-remaining"),
                    reset_wait(&resp.headers),
                ),
                Err(_) => self.pace.after(None, None),
            }
            match r {
                Err(ConnectorError::Auth { status: 401, .. }) if !renew => {
                    tracing::info!(connector = %cx.connector, "Reddit refused the access token; fetching a new one.");
                    renew = true;
                }
                other => return other,
            }
        }
    }
}

#[async_trait::async_trait]
impl super::Connector for Reddit {
    fn preset(&self) -> Preset {
        Preset::RedditJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let queries = &self.settings.queries;
        let mut c: QueryCursor<QueryState> = QueryCursor::read(cursor, "Reddit", queries.len())?;
        let Some(q) = queries.get(c.at).cloned() else {
            return Ok(Page::default());
        };
        let mut st = c.state(&q).clone();
        let url = self.url(&q, &st)?;
        let label = if q.subreddit.is_some() {
            "GET /r/{subreddit}/search"
        } else {
            "GET /search"
        };
        let resp = self.get(&url, label, cx).await?;
        let v = social::json_body(&resp.body, label)?;
        let Some(children) = v.pointer("/data/children").and_then(Value::as_array) else {
            return Err(ConnectorError::Payload {
                request: label.to_string(),
                message: "not a Listing (no data.children)".into(),
            });
        };
        let page_no = st.page.unwrap_or(1);
        let origin = format!("reddit search {:?} page {page_no}", q.key());
        let mut page = Page::default();
        let mut reached_mark = false;
        for (i, child) in children.iter().enumerate() {
            let index = i as u64 + 1;
            let reject = |field: &str, expected: &str, message: &str| RowError {
                origin: origin.clone(),
                line: Some(index),
                field: Some(field.into()),
                expected: expected.into(),
                message: message.into(),
                raw: child.to_string(),
            };
            let kind = child.get("kind").and_then(Value::as_str);
            let data = child.get("data").filter(|d| d.is_object());
            let (Some(kind), Some(data)) = (kind, data) else {
                page.rejects.push(reject(
                    "data",
                    "a listing child {\"kind\": ..., \"data\": {...}}",
                    "the child has no kind or data",
                ));
                continue;
            };
            if kind != "t3" && kind != "t1" {
                page.rejects.push(reject(
                    "kind",
                    "a post (t3) or comment (t1)",
                    &format!("a `{kind}` is not a mention"),
                ));
                continue;
            }
            let name = data
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    data.get("id")
                        .and_then(Value::as_str)
                        .map(|id| format!("{kind}_{id}"))
                });
            let Some(name) = name.filter(|n| !n.is_empty()) else {
                page.rejects.push(reject(
                    "data.name",
                    "a post with a fullname (`name`) or `id`",
                    "the post has no id",
                ));
                continue;
            };
            let created = data.get("created_utc").and_then(|c| match c {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            });
            if let (Some(t), Some(m)) = (created, st.mark) {
                if t < m {
                    reached_mark = true; // older than the last walk: stored then
                    continue;
                }
                if t == m && st.at_mark.contains(&name) {
                    continue;
                }
            }
            if let Some(t) = created {
                st.see(t, &name);
            }
            let item = social::with_provenance(child, &q);
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: item.to_string(),
                ..Default::default()
            };
            files::social::reddit_thing(&item, &mut rec);
            page.records.push(rec);
        }
        let after = v
            .pointer("/data/after")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty());
        match after {
            Some(a) if !reached_mark && !children.is_empty() => {
                st.after = Some(a.to_string());
                st.page = Some(page_no + 1);
                *c.state(&q) = st;
                page.more = true;
            }
            _ => {
                st.finish();
                *c.state(&q) = st;
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
    fn the_mark_keeps_the_fullnames_at_its_second() {
        let mut s = QueryState::default();
        s.see(10.0, "t3_a");
        s.see(12.0, "t3_b");
        s.see(12.0, "t3_c");
        s.after = Some("t3_a".into());
        s.finish();
        assert_eq!(
            (s.mark, s.at_mark.clone()),
            (Some(12.0), vec!["t3_b".to_string(), "t3_c".to_string()])
        );
        assert!(s.after.is_none());
        s.finish();
        assert_eq!(s.mark, Some(12.0));
    }
}
