//! Typeform: responses of each configured form (`GET /forms/{form_id}/responses`), with a
//! personal access token as `Authorization: Bearer`, on the US or EU host.
//!
//! Incremental by the `after` token: each form keeps the token of the last response stored
//! (`after` returns the responses processed after it, in processing order, and is not to be
//! combined with `since`/`until`). The first request of a form that has no token yet asks
//! for `sort=submitted_at,asc`, so its last item is the newest of the page too. Only
//! `completed=true` responses are read (a partial one has no score worth counting yet). A
//! form is done for the run when a page comes back with fewer than `page_size` items; then
//! the next form is read.
//!
//! The stored cursor is JSON: `{"after": {"<form id>": "<token>"}}` between runs; within a
//! run also `"current"` (the form being read) and `"page"` (for reject origins). A page and
//! its token commit together, so a failed run resumes after the last stored response.
//!
//! Typeform allows about 2 requests per second per account (secondary source): requests
//! are spaced by `min_interval` (default 500 ms). A 429 is retried by [`Http`] after its
//! `Retry-After`, or with backoff when there is none.

use super::http::{FetchContext, Http};
use super::{ConnectorError, Page};
use crate::config::{HttpSettings, TypeformSettings};
use crate::connectors::files::{self, Preset};
use crate::pipeline::normalize::{RowError, SourceRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct Typeform {
    http: Http,
    settings: TypeformSettings,
    /// When the last exchange ended (pacing).
    last_request: Mutex<Option<Instant>>,
}

/// The stored cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// Per form: the token of the last response stored.
    #[serde(default)]
    after: BTreeMap<String, String>,
    /// Within a run: the form being read and its next page number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
}

impl Typeform {
    pub fn new(
        settings: &TypeformSettings,
        http: &HttpSettings,
    ) -> Result<Typeform, ConnectorError> {
        Ok(Typeform {
            http: Http::new(http)?,
            settings: settings.clone(),
            last_request: Mutex::new(None),
        })
    }

    fn url(&self, form: &str, after: Option<&str>) -> Result<String, ConnectorError> {
        let mut url = reqwest::Url::parse(&self.settings.base_url)
            .map_err(|e| ConnectorError::Setup(format!("base_url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| ConnectorError::Setup("base_url cannot take a path".into()))?
            .pop_if_empty()
            .extend(["forms", form, "responses"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("page_size", &self.settings.page_size.to_string())
                .append_pair("completed", "true");
            match after {
                Some(a) => q.append_pair("after", a),
                None => q.append_pair("sort", "submitted_at,asc"),
            };
        }
        Ok(url.to_string())
    }

    /// Spaces requests by `min_interval`, counted from the end of the last exchange (so a
    /// request retried inside [`Http`] counts too).
    async fn pace(&self, cx: &FetchContext) -> Result<(), ConnectorError> {
        let last = self.last_request.lock().map(|g| *g).unwrap_or(None);
        if let Some(t) = last {
            let d = (t + self.settings.min_interval).saturating_duration_since(Instant::now());
            if !d.is_zero() {
                cx.sleep(d).await?;
            }
        }
        Ok(())
    }

    fn answered(&self) {
        if let Ok(mut g) = self.last_request.lock() {
            *g = Some(Instant::now());
        }
    }
}

#[async_trait::async_trait]
impl super::Connector for Typeform {
    fn preset(&self) -> Preset {
        Preset::TypeformJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let mut c = match cursor {
            None => Cursor::default(),
            Some(text) => serde_json::from_str::<Cursor>(text).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a Typeform cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
        let forms = &self.settings.forms;
        let Some(first) = forms.first() else {
            return Ok(Page::default());
        };
        // A form removed from the configuration since: start again from the first.
        let form = match &c.current {
            Some(f) if forms.contains(f) => f.clone(),
            _ => {
                c.page = None;
                first.clone()
            }
        };
        let page_no = c.page.unwrap_or(1);
        let label = "GET /forms/{form_id}/responses".to_string();
        let url = self.url(&form, c.after.get(&form).map(String::as_str))?;
        let token = self.settings.token.clone();
        let authorize = move |rb: reqwest::RequestBuilder| {
            rb.bearer_auth(token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
        };
        self.pace(cx).await?;
        let resp = self.http.get(&url, &label, cx, &authorize, &|_| None).await;
        self.answered();
        let resp = resp?;
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
            request: label.clone(),
            message: format!("not JSON ({e})"),
        })?;
        let Some(items) = v.get("items").and_then(Value::as_array) else {
            return Err(ConnectorError::Payload {
                request: label,
                message: "no `items` array".into(),
            });
        };
        let origin = format!("typeform /forms/{form}/responses page {page_no}");
        let mut page = Page::default();
        let mut last_token = None;
        for (i, item) in items.iter().enumerate() {
            let index = i as u64 + 1;
            let token = item
                .get("token")
                .or_else(|| item.get("response_id"))
                .and_then(files::mapping::json_text)
                .filter(|s| !s.trim().is_empty());
            let Some(token) = token.filter(|_| item.is_object()) else {
                page.rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(index),
                    field: Some("token".into()),
                    expected: "a response object with a `token`".into(),
                    message: "the response has no token".into(),
                    raw: item.to_string(),
                });
                continue;
            };
            last_token = Some(token);
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: files::typeform::wrap(&form, &self.settings.answers, item),
                ..Default::default()
            };
            files::typeform::response_record(item, &self.settings.answers, false, &mut rec);
            page.records.push(rec);
        }
        if let Some(t) = last_token {
            c.after.insert(form.clone(), t);
        }
        if items.len() >= self.settings.page_size as usize {
            c.current = Some(form);
            c.page = Some(page_no + 1);
            page.more = true;
        } else {
            let at = forms.iter().position(|f| *f == form).unwrap_or(0);
            match forms.get(at + 1) {
                Some(next) => {
                    c.current = Some(next.clone());
                    c.page = None;
                    page.more = true;
                }
                None => {
                    c.current = None;
                    c.page = None;
                    page.more = false;
                }
            }
        }
        page.cursor = Some(serde_json::to_string(&c).expect("plain data"));
        Ok(page)
    }
}
