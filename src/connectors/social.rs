//! What the social mention connectors (Bluesky, Mastodon, Reddit, X) share: the cursor
//! of a list of queries, proactive pacing on a vendor's rate-limit headers, reading a
//! JSON body that may be an HTML error page, and the provenance each record keeps.
//!
//! A run walks the configured queries in order, one page per fetch. The stored cursor is
//! `{"at": i, "queries": {"<query key>": <vendor state>}}`: the query being walked and
//! each query's own state (its high-water mark and, mid-walk, the vendor's page token),
//! so a run that fails on the third query resumes there, and a query added later starts
//! on its own without disturbing the others.

use super::ConnectorError;
use super::http::FetchContext;
use crate::config::SocialQuery;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The stored cursor of a connector with several queries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: DeserializeOwned"))]
pub struct QueryCursor<S> {
    /// The index of the query being walked.
    pub at: usize,
    pub queries: BTreeMap<String, S>,
}

impl<S: Default + Serialize + DeserializeOwned> QueryCursor<S> {
    /// The stored cursor, or a fresh one. `vendor` names the kind in the error of a cursor
    /// that belongs to another kind.
    pub fn read(
        text: Option<&str>,
        vendor: &str,
        queries: usize,
    ) -> Result<QueryCursor<S>, ConnectorError> {
        let mut c = match text {
            None => QueryCursor {
                at: 0,
                queries: BTreeMap::new(),
            },
            Some(t) => serde_json::from_str::<QueryCursor<S>>(t).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a {vendor} cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
        if c.at >= queries {
            c.at = 0; // the list was shortened
        }
        Ok(c)
    }

    /// The state of `q` (created on first use).
    pub fn state(&mut self, q: &SocialQuery) -> &mut S {
        self.queries.entry(q.key()).or_default()
    }

    /// Ends the current query's walk: the next fetch goes to the next query. Returns
    /// `more`: whether another query waits in this run.
    pub fn next_query(&mut self, queries: usize) -> bool {
        self.at += 1;
        if self.at >= queries {
            self.at = 0;
            false
        } else {
            true
        }
    }

    pub fn text(&self) -> String {
        serde_json::to_string(self).expect("plain data")
    }
}

/// Parses a 2xx body as JSON. A CDN or proxy error page (HTML) where JSON was expected
/// is a `Payload` error that says so; the run fails and the page is fetched again next
/// time from the stored cursor.
pub fn json_body(body: &str, label: &str) -> Result<Value, ConnectorError> {
    serde_json::from_str(body).map_err(|e| {
        let trimmed = body.trim_start();
        let message = if trimmed.starts_with('<') {
            "an HTML page came back where JSON was expected (a proxy or CDN error page?)"
                .to_string()
        } else {
            format!("not JSON ({e})")
        };
        ConnectorError::Payload {
            request: label.to_string(),
            message,
        }
    })
}

/// A header as a number.
pub fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
}

/// The wait until a reset given in unix epoch seconds (Bluesky, X).
pub fn until_epoch(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let at = header_f64(headers, name)?;
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    Some(Duration::from_secs_f64((at - now).max(0.0)))
}

/// A wait given as seconds from now (Reddit's `X-Ratelimit-Reset`).
pub fn seconds(headers: &HeaderMap, name: &str) -> Option<Duration> {
    header_f64(headers, name).map(|s| Duration::from_secs_f64(s.clamp(0.0, 86_400.0)))
}

/// Spaces a connector's requests: at least `min_interval` apart, and after a response that
/// says the budget is spent (remaining 0), until the vendor's reset. The waits are cut
/// short by a stop request and never longer than `max_wait_secs`.
#[derive(Debug)]
pub struct Pace {
    min_interval: Duration,
    next: Mutex<Option<tokio::time::Instant>>,
}

impl Pace {
    pub fn new(min_interval: Duration) -> Pace {
        Pace {
            min_interval,
            next: Mutex::new(None),
        }
    }

    /// Waits until the next request may go.
    pub async fn ready(&self, cx: &FetchContext, max_wait: Duration) -> Result<(), ConnectorError> {
        let next = *self.next.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = next {
            let now = tokio::time::Instant::now();
            if at > now {
                let d = (at - now).min(max_wait);
                tracing::debug!(connector = %cx.connector, wait_secs = d.as_secs_f64(), "Pacing under the vendor's rate limit.");
                cx.sleep(d).await?;
            }
        }
        Ok(())
    }

    /// Notes a response: `remaining` requests in the window that resets in `reset`.
    pub fn after(&self, remaining: Option<f64>, reset: Option<Duration>) {
        let now = tokio::time::Instant::now();
        let mut next = now + self.min_interval;
        if let (Some(r), Some(d)) = (remaining, reset)
            && r < 1.0
        {
            next = next.max(now + d);
        }
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = Some(next);
    }
}

/// Orders vendor ids given as strings of digits (Mastodon, X) without parsing them: by
/// length, then lexically. Ids of other shapes compare lexically.
pub fn cmp_ids(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The higher of two optional ids.
pub fn max_id(a: Option<String>, b: Option<&str>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) if cmp_ids(b, &a) == Ordering::Greater => Some(b.to_string()),
        (Some(a), _) => Some(a),
        (None, b) => b.map(str::to_string),
    }
}

/// The item as stored: the vendor's object as received, plus `_tideline` naming the
/// query that found it and that query's location, so a quarantined item replays into
/// the same location with the vendor's preset.
pub fn with_provenance(item: &Value, q: &SocialQuery) -> Value {
    let mut v = item.clone();
    if let Value::Object(o) = &mut v {
        let mut p = serde_json::Map::new();
        p.insert("query".into(), Value::String(q.key()));
        if let Some(l) = &q.location {
            p.insert("location".into(), Value::String(l.clone()));
        }
        o.insert("_tideline".into(), Value::Object(p));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_by_length_then_lexically() {
        assert_eq!(cmp_ids("9", "10"), Ordering::Less);
        assert_eq!(cmp_ids("110", "109"), Ordering::Greater);
        assert_eq!(
            max_id(Some("99".into()), Some("100")).as_deref(),
            Some("100")
        );
        assert_eq!(
            max_id(Some("100".into()), Some("99")).as_deref(),
            Some("100")
        );
        assert_eq!(max_id(None, Some("5")).as_deref(), Some("5"));
    }

    #[test]
    fn html_bodies_are_payload_errors() {
        let e = json_body("<html><body>403 Forbidden</body></html>", "GET /x").unwrap_err();
        assert!(e.to_string().contains("HTML page"), "{e}");
        let e = json_body("{\"a\":", "GET /x").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }

    #[test]
    fn the_query_cursor_walks_the_list_and_wraps() {
        let mut c: QueryCursor<u32> = QueryCursor::read(None, "test", 2).unwrap();
        let q = SocialQuery {
            q: "acme".into(),
            hashtag: false,
            subreddit: None,
            location: None,
        };
        *c.state(&q) = 7;
        assert!(c.next_query(2));
        assert!(!c.next_query(2));
        assert_eq!(c.at, 0);
        let back: QueryCursor<u32> = QueryCursor::read(Some(&c.text()), "test", 1).unwrap();
        assert_eq!(back.queries["acme"], 7);
        assert!(QueryCursor::<u32>::read(Some("{\"since\":1}"), "test", 1).is_err());
    }
}
