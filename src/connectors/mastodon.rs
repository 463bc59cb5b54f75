//! Mastodon: hashtag timelines (`GET /api/v1/timelines/tag/:hashtag`) and, with a user
//! token, status search (`GET /api/v2/search?type=statuses`) on one instance.
//!
//! Status search needs a signed-in user, an instance running Elasticsearch and authors
//! who opted in to being searchable, so hashtag timelines are the dependable source and
//! search a complement. Either is polled forward with `min_id`: the instance answers the
//! items immediately newer than it (up to 40), and the `Link` header's `rel="prev"`
//! carries the `min_id` of the next newer chunk; an empty array ends the walk. Each page
//! commits with its new `min_id`, so there is no separate walk state to lose. Ids are
//! strings (compared by length, then lexically, never parsed). The first sync without
//! `start_time` takes the newest page only; with it, the first `min_id` is built from
//! the time the way Mastodon builds its ids (milliseconds shifted left by 16 bits).
//!
//! `X-RateLimit-Reset` is an ISO-8601 time: it paces the requests when
//! `X-RateLimit-Remaining` reaches 0 and times the wait after a 429.

use super::files::{self, Preset};
use super::http::{FetchContext, Http, link_target};
use super::social::{self, Pace, QueryCursor, cmp_ids};
use super::{ConnectorError, Page};
use crate::config::{HttpSettings, MastodonSettings, SocialQuery};
use crate::pipeline::normalize::{RowError, SourceRecord};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;
use std::time::Duration;

#[derive(Debug)]
pub struct Mastodon {
    http: Http,
    settings: MastodonSettings,
    pace: Pace,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct QueryState {
    /// The newest id stored: the next request's `min_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_id: Option<String>,
    /// The pages read by the current walk (for the origin of rejects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
}

/// Mastodon's `X-RateLimit-Reset` (ISO-8601, microseconds) as a wait from now.
fn reset_wait(h: &HeaderMap) -> Option<Duration> {
    let v = h.get("x-ratelimit-reset")?.to_str().ok()?;
    let at = chrono::DateTime::parse_from_rfc3339(v.trim()).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// A Mastodon id for a time: milliseconds since the epoch shifted left 16 bits (the
/// instance's snowflake scheme; the low bits are a sequence, so 0 is before any post of
/// that millisecond).
fn id_at(unix_secs: i64) -> String {
    ((unix_secs.max(0) as u128 * 1000) << 16).to_string()
}

/// The `min_id` of the `rel="prev"` link (the next newer chunk).
fn prev_min_id(h: &HeaderMap) -> Option<String> {
    let target = link_target(h, "prev")?;
    let url = reqwest::Url::parse(&target).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "min_id")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

impl Mastodon {
    pub fn new(
        settings: &MastodonSettings,
        http: &HttpSettings,
    ) -> Result<Mastodon, ConnectorError> {
        Ok(Mastodon {
            http: Http::new(http)?,
            settings: settings.clone(),
            pace: Pace::new(Duration::ZERO),
        })
    }

    fn url(
        &self,
        q: &SocialQuery,
        min_id: Option<&str>,
    ) -> Result<(String, String), ConnectorError> {
        let (path, label) = if q.hashtag {
            (
                format!("/api/v1/timelines/tag/{}", q.q),
                "GET /api/v1/timelines/tag/:hashtag".to_string(),
            )
        } else {
            (
                "/api/v2/search".to_string(),
                "GET /api/v2/search".to_string(),
            )
        };
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        {
            let mut p = url.query_pairs_mut();
            if !q.hashtag {
                p.append_pair("q", &q.q)
                    .append_pair("type", "statuses")
                    .append_pair("resolve", "false");
            }
            p.append_pair("limit", "40");
            if let Some(m) = min_id {
                p.append_pair("min_id", m);
            }
        }
        Ok((url.to_string(), label))
    }
}

#[async_trait::async_trait]
impl super::Connector for Mastodon {
    fn preset(&self) -> Preset {
        Preset::MastodonJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let queries = &self.settings.queries;
        let mut c: QueryCursor<QueryState> = QueryCursor::read(cursor, "Mastodon", queries.len())?;
        let Some(q) = queries.get(c.at).cloned() else {
            return Ok(Page::default());
        };
        let mut st = c.state(&q).clone();
        let first_sync = st.min_id.is_none();
        let min_id = st
            .min_id
            .clone()
            .or_else(|| self.settings.start_time.map(id_at));
        let (url, label) = self.url(&q, min_id.as_deref())?;
        self.pace.ready(cx, self.http.max_wait()).await?;
        let token = self.settings.access_token.clone();
        let authorize = move |rb: reqwest::RequestBuilder| match &token {
            Some(t) => rb.bearer_auth(t.expose()),
            None => rb,
        };
        let resp = self
            .http
            .get(&url, &label, cx, &authorize, &reset_wait)
            .await?;
        self.pace.after(
            social::header_f64(&resp.headers, "x-ratelimit-remaining"),
            reset_wait(&resp.headers),
        );
        let v = social::json_body(&resp.body, &label)?;
        let statuses = if q.hashtag {
            v.as_array()
        } else {
            v.get("statuses").and_then(Value::as_array)
        };
        let Some(statuses) = statuses else {
            return Err(ConnectorError::Payload {
                request: label,
                message: if q.hashtag {
                    "not a JSON array of statuses".into()
                } else {
                    "no `statuses` array".into()
                },
            });
        };
        let page_no = st.page.unwrap_or(1);
        let origin = format!("mastodon {} page {page_no}", q.key());
        let mut page = Page::default();
        let mut newest: Option<String> = None;
        let mut seen: Vec<String> = Vec::new();
        for (i, s) in statuses.iter().enumerate() {
            let index = i as u64 + 1;
            let id = s
                .get("id")
                .and_then(files::mapping::json_text)
                .filter(|id| !id.is_empty());
            let Some(id) = id.filter(|_| s.is_object()) else {
                page.rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(index),
                    field: Some("id".into()),
                    expected: "a Status object with an `id`".into(),
                    message: "the status has no id".into(),
                    raw: s.to_string(),
                });
                continue;
            };
            newest = social::max_id(newest, Some(&id));
            let item = social::with_provenance(s, &q);
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: item.to_string(),
                ..Default::default()
            };
            files::social::mastodon_status(&item, &mut rec);
            // A post and its boost in one page are one mention.
            if let Some(key) = rec.fields.get(&crate::pipeline::Field::ExternalId) {
                if seen.contains(key) {
                    continue;
                }
                seen.push(key.clone());
            }
            page.records.push(rec);
        }
        let next = prev_min_id(&resp.headers)
            .into_iter()
            .chain(newest)
            .max_by(|a, b| cmp_ids(a, b));
        let advanced = match (&next, &min_id) {
            (Some(n), Some(m)) => cmp_ids(n, m) == Ordering::Greater,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if statuses.is_empty() || !advanced || first_sync && self.settings.start_time.is_none() {
            // The end of the walk (or the first sync's newest page: no backfill).
            if advanced {
                st.min_id = next;
            } else if st.min_id.is_none() {
                st.min_id = min_id;
            }
            st.page = None;
            *c.state(&q) = st;
            page.more = c.next_query(queries.len());
        } else {
            st.min_id = next;
            st.page = Some(page_no + 1);
            *c.state(&q) = st;
            page.more = true;
        }
        page.cursor = Some(c.text());
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_is_an_iso_time_and_ids_come_from_times() {
        let mut h = HeaderMap::new();
        let at = chrono::Utc::now() + chrono::Duration::seconds(20);
        h.insert(
            "x-ratelimit-reset",
            at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string()
                .parse()
                .unwrap(),
        );
        let d = reset_wait(&h).unwrap();
        assert!(
            d > Duration::from_secs(18) && d <= Duration::from_secs(20),
            "{d:?}"
        );
        // 2022-11-01T00:00:00Z
        assert_eq!(
            id_at(1_667_260_800),
            (1_667_260_800_000u128 << 16).to_string()
        );
        h.insert(
            reqwest::header::LINK,
            r#"<https://m.example/api/v1/timelines/tag/acme?max_id=100>; rel="next", <https://m.example/api/v1/timelines/tag/acme?min_id=205>; rel="prev""#
                .parse()
                .unwrap(),
        );
        assert_eq!(prev_min_id(&h).as_deref(), Some("205"));
    }
}
