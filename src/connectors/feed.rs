//! RSS and Atom feeds as a generic mention source: news and blog search feeds, Mastodon
//! and Reddit `.rss` pages, alert services.
//!
//! One page per feed per fetch. Each request is conditional: the feed's stored `ETag`
//! and `Last-Modified` go out as `If-None-Match` / `If-Modified-Since`, and a `304 Not
//! Modified` is an empty page. A feed answers its recent entries every time, and many
//! servers ignore conditional requests, so each feed also keeps a high-water mark (the
//! newest entry date read) and the digests of the entries its last answer held: an entry
//! already seen and not dated after the mark is skipped, so a re-run over unchanged
//! content fetches nothing. An entry seen before but now dated later (an edited Atom
//! entry) is read again and updates the stored mention.
//!
//! The stored cursor is the social connectors' query cursor
//! (`{"at": i, "queries": {<digest of the feed URL>: state}}`): keyed by a digest so a
//! token in a private feed's URL never reaches the database, and so a feed added later
//! starts on its own.

use super::files::Preset;
use super::files::feed::{self as entries, digest};
use super::http::{FetchContext, Http};
use super::social::QueryCursor;
use super::{ConnectorError, Page};
use crate::config::{FeedSettings, HttpSettings, redact_url};
use crate::pipeline::Field;
use crate::pipeline::normalize::{RowError, SourceRecord};
use chrono::{DateTime, Utc};
use reqwest::header::{ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How many entry digests a feed keeps (feeds serve 10 to 100 entries).
const MAX_SEEN: usize = 1000;

const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5";

#[derive(Debug)]
pub struct Feed {
    http: Http,
    settings: FeedSettings,
}

/// What the cursor keeps of one feed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct FeedState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    /// The newest entry date read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mark: Option<DateTime<Utc>>,
    /// Digests of the dedupe keys (of the XML, for rejected entries) in the last answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    seen: Vec<String>,
}

fn header(h: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 512)
        .map(str::to_string)
}

impl Feed {
    pub fn new(settings: &FeedSettings, http: &HttpSettings) -> Result<Feed, ConnectorError> {
        Ok(Feed {
            http: Http::new(http)?,
            settings: settings.clone(),
        })
    }
}

#[async_trait::async_trait]
impl super::Connector for Feed {
    fn preset(&self) -> Preset {
        Preset::FeedJson
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let feeds = &self.settings.feeds;
        let mut c: QueryCursor<FeedState> = QueryCursor::read(cursor, "feed", feeds.len())?;
        let Some(f) = feeds.get(c.at) else {
            return Ok(Page::default());
        };
        let key = digest(&f.url);
        let old = c.queries.get(&key).cloned().unwrap_or_default();
        let shown = redact_url(&f.url);
        let label = format!("GET {shown}");
        let (etag, since) = (old.etag.clone(), old.last_modified.clone());
        let authorize = move |rb: reqwest::RequestBuilder| {
            let mut rb = rb.header(reqwest::header::ACCEPT, ACCEPT);
            if let Some(e) = &etag {
                rb = rb.header(IF_NONE_MATCH, e);
            }
            if let Some(s) = &since {
                rb = rb.header(IF_MODIFIED_SINCE, s);
            }
            rb
        };
        let resp = self
            .http
            .get(&f.url, &label, cx, &authorize, &|_| None)
            .await?;
        let mut page = Page::default();
        if resp.status == 304 {
            tracing::debug!(connector = %cx.connector, feed = %shown, "Feed not modified.");
            page.more = c.next_query(feeds.len());
            page.cursor = Some(c.text());
            return Ok(page);
        }
        let doc = entries::split(&resp.body).map_err(|message| ConnectorError::Payload {
            request: label.clone(),
            message,
        })?;
        let origin = format!("feed {shown}");
        let mut st = FeedState {
            etag: header(&resp.headers, ETAG),
            last_modified: header(&resp.headers, LAST_MODIFIED),
            mark: old.mark,
            seen: Vec::new(),
        };
        for (i, xml) in doc.entries.iter().enumerate() {
            let index = i as u64 + 1;
            let mut item = json!({"feed": shown, "format": doc.format.as_str(), "xml": xml});
            if !doc.namespaces.is_empty() {
                item["namespaces"] = json!(doc.namespaces);
            }
            if let Some(l) = &f.location {
                item["_tideline"] = json!({"location": l});
            }
            let raw = item.to_string();
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: raw.clone(),
                ..Default::default()
            };
            let read = entries::entry_record(&item, &mut rec);
            let seen_key = match &read {
                Ok(()) => digest(
                    rec.fields
                        .get(&Field::ExternalId)
                        .map_or("", String::as_str),
                ),
                Err(_) => digest(xml),
            };
            let known = old.seen.contains(&seen_key);
            let repeated = st.seen.contains(&seen_key);
            if !repeated && st.seen.len() < MAX_SEEN {
                st.seen.push(seen_key);
            }
            match read {
                Err(p) => {
                    if !known && !repeated {
                        page.rejects.push(RowError {
                            origin: origin.clone(),
                            line: Some(index),
                            field: Some(p.field),
                            expected: p.expected,
                            message: p.message,
                            raw,
                        });
                    }
                }
                Ok(()) => {
                    let date = [Field::UpdatedAt, Field::OccurredAt]
                        .iter()
                        .find_map(|f| rec.fields.get(f))
                        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                        .map(|d| d.with_timezone(&Utc));
                    let newer = match (date, old.mark) {
                        (Some(d), Some(m)) => d > m,
                        _ => true,
                    };
                    if let Some(d) = date {
                        st.mark = Some(st.mark.map_or(d, |m| m.max(d)));
                    }
                    if repeated || (known && !newer) {
                        continue;
                    }
                    page.records.push(rec);
                }
            }
        }
        tracing::debug!(connector = %cx.connector, feed = %shown, entries = doc.entries.len(), new = page.records.len(), "Feed read.");
        c.queries.insert(key, st);
        page.more = c.next_query(feeds.len());
        page.cursor = Some(c.text());
        Ok(page)
    }
}
