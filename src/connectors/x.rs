//! X: API v2 recent search (`GET /2/tweets/search/recent`, the last 7 days) with the
//! app-only bearer token, one walk per configured query.
//!
//! A walk asks for `max_results=100` posts newer than the query's `since_id` with
//! `created_at`, `author_id` and `lang`, and the authors expanded (`expansions=author_id`,
//! `user.fields=username,name`), and follows `meta.next_token` until it is absent. Results
//! come newest first, so the walk's `meta.newest_id` (the highest id seen) becomes the
//! next walk's `since_id` only when the walk is complete: a walk cut short resumes from
//! its `next_token` with the same `since_id`. Ids are strings (beyond JS integers) and
//! are compared by length, then lexically.
//!
//! Each post is kept with its author from `includes.users` as `{"tweet": ..., "author":
//! ...}` (the `x-json` preset reads the same, or a saved response page). Reads are billed
//! per post: `max_posts_per_run` ends a run early, and the next run goes on from the
//! stored `next_token`. `x-rate-limit-reset` (unix seconds) paces the requests when
//! `x-rate-limit-remaining` reaches 0 and times the wait after a 429.

use super::files::{self, Preset};
use super::http::{FetchContext, Http};
use super::social::{self, Pace, QueryCursor};
use super::{ConnectorError, Page};
use crate::config::{HttpSettings, SocialQuery, XSettings};
use crate::pipeline::normalize::{RowError, SourceRecord};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SEARCH: &str = "/2/tweets/search/recent";

#[derive(Debug)]
pub struct X {
    http: Http,
    settings: XSettings,
    pace: Pace,
    /// Posts read by this run (a connector is built for each run).
    read: AtomicU64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct QueryState {
    /// The newest post id of the last complete walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_id: Option<String>,
    /// Mid-walk: the token of the next page, its number, the newest id seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    newest: Option<String>,
}

fn reset_wait(h: &HeaderMap) -> Option<Duration> {
    social::until_epoch(h, "x-rate-limit-reset")
}

impl X {
    pub fn new(settings: &XSettings, http: &HttpSettings) -> Result<X, ConnectorError> {
        Ok(X {
            http: Http::new(http)?,
            settings: settings.clone(),
            pace: Pace::new(Duration::ZERO),
            read: AtomicU64::new(0),
        })
    }

    fn url(&self, q: &SocialQuery, st: &QueryState) -> Result<String, ConnectorError> {
        let mut url = reqwest::Url::parse(&format!("{}{SEARCH}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        {
            let mut p = url.query_pairs_mut();
            p.append_pair("query", &q.q)
                .append_pair("max_results", "100")
                .append_pair("tweet.fields", "created_at,author_id,lang")
                .append_pair("expansions", "author_id")
                .append_pair("user.fields", "username,name");
            if let Some(s) = &st.since_id {
                p.append_pair("since_id", s);
            }
            if let Some(t) = &st.next_token {
                p.append_pair("next_token", t);
            }
        }
        Ok(url.to_string())
    }
}

#[async_trait::async_trait]
impl super::Connector for X {
    fn preset(&self) -> Preset {
        Preset::XJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let queries = &self.settings.queries;
        let mut c: QueryCursor<QueryState> = QueryCursor::read(cursor, "X", queries.len())?;
        let Some(q) = queries.get(c.at).cloned() else {
            return Ok(Page::default());
        };
        let mut st = c.state(&q).clone();
        let url = self.url(&q, &st)?;
        let label = format!("GET {SEARCH}");
        self.pace.ready(cx, self.http.max_wait()).await?;
        let token = self.settings.bearer_token.clone();
        let authorize = move |rb: reqwest::RequestBuilder| rb.bearer_auth(token.expose());
        let resp = self
            .http
            .get(&url, &label, cx, &authorize, &reset_wait)
            .await?;
        self.pace.after(
            social::header_f64(&resp.headers, "x-rate-limit-remaining"),
            reset_wait(&resp.headers),
        );
        let v = social::json_body(&resp.body, &label)?;
        if !v.is_object() || (v.get("data").is_none() && v.get("meta").is_none()) {
            let detail = v
                .get("detail")
                .or_else(|| v.pointer("/errors/0/message"))
                .and_then(files::mapping::json_text)
                .unwrap_or_else(|| "no `data` and no `meta`".into());
            return Err(ConnectorError::Payload {
                request: label,
                message: detail,
            });
        }
        if let Some(errors) = v.get("errors").and_then(Value::as_array) {
            tracing::warn!(connector = %cx.connector, count = errors.len(), "X returned partial errors beside the data.");
        }
        let items = files::social::x_page_items(&v);
        let page_no = st.page.unwrap_or(1);
        let origin = format!("x search/recent {:?} page {page_no}", q.key());
        let mut page = Page::default();
        for (i, item) in items.iter().enumerate() {
            let index = i as u64 + 1;
            let tweet = item.get("tweet").unwrap_or(item);
            let id = tweet
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty());
            let Some(id) = id.filter(|_| tweet.is_object()) else {
                page.rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(index),
                    field: Some("id".into()),
                    expected: "a post object with a string `id`".into(),
                    message: "the post has no id".into(),
                    raw: item.to_string(),
                });
                continue;
            };
            st.newest = social::max_id(st.newest.take(), Some(id));
            let item = social::with_provenance(item, &q);
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: item.to_string(),
                ..Default::default()
            };
            files::social::x_post(&item, &mut rec);
            page.records.push(rec);
        }
        let meta_newest = v.pointer("/meta/newest_id").and_then(Value::as_str);
        st.newest = social::max_id(st.newest.take(), meta_newest);
        let read = self.read.fetch_add(items.len() as u64, Ordering::SeqCst) + items.len() as u64;
        let next = v
            .pointer("/meta/next_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        match next {
            Some(t) if !items.is_empty() => {
                st.next_token = Some(t.to_string());
                st.page = Some(page_no + 1);
                *c.state(&q) = st;
                page.more = true;
                if let Some(max) = self.settings.max_posts_per_run
                    && read >= max
                {
                    tracing::info!(connector = %cx.connector, read, max, "max_posts_per_run reached; the next run goes on from here.");
                    page.more = false;
                }
            }
            _ => {
                st.since_id = social::max_id(st.since_id.take(), st.newest.as_deref());
                st.next_token = None;
                st.page = None;
                st.newest = None;
                *c.state(&q) = st;
                page.more = c.next_query(queries.len());
                if let Some(max) = self.settings.max_posts_per_run
                    && read >= max
                {
                    page.more = false;
                }
            }
        }
        page.cursor = Some(c.text());
        Ok(page)
    }
}
