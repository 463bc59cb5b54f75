//! Delighted: survey responses (`GET /v1/survey_responses.json`), Basic auth with the API
//! key as the user name and an empty password.
//!
//! The endpoint answers a bare JSON array with no cursor; a run walks
//! `updated_since=<mark>&order=asc&page=1,2,...&per_page=N&expand[]=person` until an empty
//! array comes back. `updated_since` (not `since`, which filters on `created_at`) because
//! notes and tags added later change `updated_at`.
//!
//! The stored cursor is JSON: between runs `{"since": <unix s>, "skip": [ids]}`, the
//! high-water mark of `updated_at` and the ids already stored at that very second. The
//! next run asks for `updated_since=<since>`, which the vendor reads as "at or after"
//! (singer-io/tap-delighted keeps records `>=` its bookmark), and drops the returned
//! responses that are in `skip` and still carry `updated_at == since`: nothing at the
//! boundary second is skipped or stored twice. Within a run the cursor also carries the
//! next page number, the run's own mark so far and the server's clock at the run's first
//! page, so a run stopped mid-way resumes at its page with the same window.
//!
//! The mark never passes the server's clock at the run's start minus [`SETTLE_SECS`]: a
//! response already read on an earlier page may be updated while later pages are read,
//! at a second below the highest one seen; the next run reads that stretch again
//! (unchanged responses are upserts that change nothing).
//!
//! A response is read exactly like one of a saved API page (the `delighted-json` preset),
//! so a quarantined response replays with that preset. 429 carries `Retry-After` in
//! seconds, which [`super::http`] honours; Delighted documents no reset header of its own.

use super::http::{FetchContext, Http};
use super::{ConnectorError, Page};
use crate::config::{DelightedSettings, HttpSettings};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::{RowError, SourceRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const ENDPOINT: &str = "/v1/survey_responses.json";

/// How far behind the server's clock the stored mark stays (see the module comment).
pub const SETTLE_SECS: i64 = 60;

#[derive(Debug)]
pub struct Delighted {
    http: Http,
    settings: DelightedSettings,
}

/// The stored cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// `updated_since` of this run's window (unix seconds).
    since: i64,
    /// Ids stored with `updated_at == since`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    skip: Vec<String>,
    /// Within a run: the next page (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    /// Within a run: the highest `updated_at` read so far and the ids at that second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    high: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    high_ids: Vec<String>,
    /// Within a run: the server's clock (its `Date` header) at the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started: Option<i64>,
}

impl Cursor {
    /// The cursor between runs after this one ends.
    fn finished(&self) -> Cursor {
        let settled = self.started.map_or(i64::MAX, |s| s - SETTLE_SECS);
        let (since, skip) = match self.high {
            Some(h) if h > self.since && h <= settled => (h, self.high_ids.clone()),
            // Updated within the settling time: read that stretch again next time.
            Some(h) if h > self.since && settled > self.since => (settled, Vec::new()),
            Some(h) if h == self.since => {
                let mut skip = self.skip.clone();
                for id in &self.high_ids {
                    if !skip.contains(id) {
                        skip.push(id.clone());
                    }
                }
                (self.since, skip)
            }
            _ => (self.since, self.skip.clone()),
        };
        Cursor {
            since,
            skip,
            ..Default::default()
        }
    }
}

/// `updated_at` (or any timestamp) as unix seconds: a number or a numeric string.
fn unix_secs(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

impl Delighted {
    pub fn new(
        settings: &DelightedSettings,
        http: &HttpSettings,
    ) -> Result<Delighted, ConnectorError> {
        Ok(Delighted {
            http: Http::new(http)?,
            settings: settings.clone(),
        })
    }

    fn url(&self, since: i64, page: u32) -> Result<String, ConnectorError> {
        let mut url = reqwest::Url::parse(&format!("{}{ENDPOINT}", self.settings.base_url))
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("per_page", &self.settings.per_page.to_string())
            .append_pair("page", &page.to_string())
            .append_pair("updated_since", &since.to_string())
            .append_pair("order", "asc")
            .append_pair("expand[]", "person");
        Ok(url.to_string())
    }
}

#[async_trait::async_trait]
impl super::Connector for Delighted {
    fn preset(&self) -> Preset {
        Preset::DelightedJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let label = format!("GET {ENDPOINT}");
        let mut c = match cursor {
            None => Cursor {
                since: self.settings.start_time,
                ..Default::default()
            },
            Some(text) => serde_json::from_str::<Cursor>(text).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a Delighted cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
        let page_no = c.page.unwrap_or(1);
        let url = self.url(c.since, page_no)?;
        let key = self.settings.api_key.clone();
        let authorize = move |rb: reqwest::RequestBuilder| rb.basic_auth(key.expose(), Some(""));
        let resp = self
            .http
            .get(&url, &label, cx, &authorize, &|_| None)
            .await?;
        if c.started.is_none() {
            let server_now = resp
                .headers
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
                .map(|d| d.timestamp())
                .unwrap_or_else(|| chrono::Utc::now().timestamp());
            c.started = Some(server_now);
        }
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
            request: label.clone(),
            message: format!("not JSON ({e})"),
        })?;
        let Value::Array(items) = v else {
            return Err(ConnectorError::Payload {
                request: label,
                message: "not a JSON array of survey responses".into(),
            });
        };
        if items.is_empty() {
            return Ok(Page {
                cursor: Some(serde_json::to_string(&c.finished()).expect("plain data")),
                more: false,
                ..Default::default()
            });
        }
        let origin = format!(
            "delighted {ENDPOINT} updated_since={} page {page_no}",
            c.since
        );
        let mut page = Page {
            more: true,
            ..Default::default()
        };
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
                    "a survey response object",
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
                    "a survey response with an `id`",
                    "the response has no id",
                ));
                continue;
            };
            let updated = unix_secs(item.get("updated_at"));
            if updated == Some(c.since) && c.skip.contains(&id) {
                continue; // stored by the run that set the mark
            }
            if let Some(u) = updated {
                match c.high {
                    Some(h) if u < h => {}
                    Some(h) if u == h => {
                        if !c.high_ids.contains(&id) {
                            c.high_ids.push(id.clone());
                        }
                    }
                    _ => {
                        c.high = Some(u);
                        c.high_ids = vec![id.clone()];
                    }
                }
            }
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: item.to_string(),
                ..Default::default()
            };
            files::delighted::response_record(item, &mut rec);
            page.records.push(rec);
        }
        c.page = Some(page_no + 1);
        page.cursor = Some(serde_json::to_string(&c).expect("plain data"));
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_moves_to_the_highest_second_with_its_ids() {
        let c = Cursor {
            since: 100,
            skip: vec!["a".into()],
            page: Some(4),
            high: Some(200),
            high_ids: vec!["x".into(), "y".into()],
            started: Some(10_000),
        };
        let f = c.finished();
        assert_eq!(
            (f.since, f.skip.clone()),
            (200, vec!["x".into(), "y".into()])
        );
        assert_eq!((f.page, f.high, f.started), (None, None, None));
        // Nothing newer: the old mark and its ids stay, joined by any new id at that second.
        let same = Cursor {
            high: Some(100),
            high_ids: vec!["b".into()],
            ..c.clone()
        };
        assert_eq!(same.finished().skip, vec!["a".to_string(), "b".to_string()]);
        let none = Cursor { high: None, ..c };
        assert_eq!(none.finished().since, 100);
    }

    #[test]
    fn the_mark_stays_behind_the_servers_clock() {
        let c = Cursor {
            since: 100,
            high: Some(1_000),
            high_ids: vec!["x".into()],
            started: Some(1_010),
            ..Default::default()
        };
        let f = c.finished();
        assert_eq!(f.since, 1_010 - SETTLE_SECS);
        assert!(f.skip.is_empty());
    }

    #[test]
    fn timestamps_are_read_as_numbers_or_numeric_strings() {
        assert_eq!(
            unix_secs(Some(&serde_json::json!(1704200000))),
            Some(1704200000)
        );
        assert_eq!(
            unix_secs(Some(&serde_json::json!("1704200000"))),
            Some(1704200000)
        );
        assert_eq!(
            unix_secs(Some(&serde_json::json!(1704200000.5))),
            Some(1704200000)
        );
        assert_eq!(unix_secs(Some(&serde_json::json!("soon"))), None);
        assert_eq!(unix_secs(None), None);
    }
}
