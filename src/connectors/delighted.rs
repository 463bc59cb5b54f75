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
//! The mark never passes the server's clock at the run's start minus [`super::window::SETTLE_SECS`]: a
//! response already read on an earlier page may be updated while later pages are read,
//! at a second below the highest one seen; the next run reads that stretch again
//! (unchanged responses are upserts that change nothing).
//!
//! The window logic is [`super::window::Window`], shared with Freshdesk and Help Scout.
//!
//! A response is read exactly like one of a saved API page (the `delighted-json` preset),
//! so a quarantined response replays with that preset. 429 carries `Retry-After` in
//! seconds, which [`super::http`] honours; Delighted documents no reset header of its own.

use super::http::{FetchContext, Http};
use super::window::Window;
use super::{ConnectorError, Page};
use crate::config::{DelightedSettings, HttpSettings};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::{RowError, SourceRecord};
use serde_json::Value;

const ENDPOINT: &str = "/v1/survey_responses.json";

#[derive(Debug)]
pub struct Delighted {
    http: Http,
    settings: DelightedSettings,
}

/// The stored cursor: the shared high-water window (`{"since", "skip"}` between runs).
type Cursor = Window;

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
        c.note_clock(&resp.headers);
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
            if !c.admit(&id, unix_secs(item.get("updated_at"))) {
                continue; // stored by the run that set the mark
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
