//! JSON-LD reviews: schema.org `Review`s in the `<script type="application/ld+json">`
//! blocks of pages the business owns (`[[connector.page]]`), read politely.
//!
//! - Before the first page of an origin in a run, its `/robots.txt` is fetched (once per
//!   run, kept at most 24 h) and read as RFC 9309 says ([`super::robots`]): 2xx is parsed
//!   (the first 500 KiB), 4xx means everything is allowed, 5xx, a 429 or no answer means
//!   nothing is; redirects are followed up to five hops. A disallowed page is skipped
//!   with a warning that names the page and the rule (or why robots.txt could not be read).
//! - Pages of one origin are spaced by its `Crawl-delay` (capped by `max_wait_secs`).
//! - The User-Agent is honest: `<user_agent>/<version> (+<contact_url>)`; robots.txt groups
//!   are matched against the product token `user_agent`.
//! - One page per fetch. The cursor keeps each page's `ETag`, `Last-Modified` and the
//!   SHA-256 of its body: a page answering 304, or the same bytes, yields nothing, so a
//!   second run over unchanged pages fetches nothing new.
//! - A block that is not JSON is a reject (the page's other blocks still count); so is a
//!   review without a date or without both body and rating (see [`files::jsonld`]). A page
//!   with no JSON-LD at all (an error or challenge page served as 200) is skipped with a
//!   warning and read again next run; a page answering 4xx is skipped with a warning; a
//!   5xx or network failure that outlasts the retries fails the run, which resumes at
//!   that page.
//! - Google, X and Reddit hosts are refused when the configuration is read: their terms
//!   forbid scraping ([`forbidden_host`]).

use super::files::{self, Preset};
use super::http::{FetchContext, Http};
use super::robots::Robots;
use super::{ConnectorError, Page};
use crate::config::{HttpSettings, JsonldPage, JsonldSettings};
use crate::pipeline::normalize::{RowError, SourceRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// robots.txt is kept at most this long (RFC 9309 section 2.4).
const ROBOTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Redirect hops followed (RFC 9309 section 2.3.1.2: at least five).
const MAX_REDIRECTS: usize = 5;
/// A larger page is not parsed.
const PAGE_LIMIT: usize = 5 * 1024 * 1024;
/// The raw text kept of a block that is not JSON.
const RAW_LIMIT: usize = 64 * 1024;

/// The hosts whose terms forbid scraping, by the vendor to name in the error.
pub fn forbidden_host(host: &str) -> Option<&'static str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let under = |d: &str| host == d || host.ends_with(&format!(".{d}"));
    let labels: Vec<&str> = host.split('.').collect();
    // google.com, google.de, google.co.uk, maps.google.com, *.googleusercontent.com ...
    if labels[..labels.len().saturating_sub(1)].iter().any(|l| {
        matches!(
            *l,
            "google" | "googleusercontent" | "googleapis" | "gstatic"
        )
    }) || ["goo.gl", "g.page", "g.co"].iter().any(|d| under(d))
    {
        return Some("Google");
    }
    if ["x.com", "twitter.com", "t.co", "twimg.com"]
        .iter()
        .any(|d| under(d))
    {
        return Some("X");
    }
    if [
        "reddit.com",
        "redd.it",
        "redditmedia.com",
        "redditstatic.com",
    ]
    .iter()
    .any(|d| under(d))
    {
        return Some("Reddit");
    }
    None
}

/// What robots.txt of one origin says, and why everything is refused when it could not
/// be read.
#[derive(Debug)]
struct SiteRules {
    robots: Robots,
    unreadable: Option<String>,
    at: Instant,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PageState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    /// SHA-256 of the body last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    /// The index of the next page to read.
    at: usize,
    pages: BTreeMap<String, PageState>,
}

#[derive(Debug)]
pub struct Jsonld {
    http: Http,
    settings: JsonldSettings,
    sites: Mutex<HashMap<String, Arc<SiteRules>>>,
    /// When each origin was last asked for a page (for `Crawl-delay`).
    last_request: Mutex<HashMap<String, Instant>>,
}

/// The scripts and reviews of one page body.
#[derive(Debug, Default)]
pub struct Extracted {
    pub records: Vec<SourceRecord>,
    pub rejects: Vec<RowError>,
    /// `<script type="application/ld+json">` blocks seen.
    pub scripts: usize,
    /// The aggregate ratings seen (not interactions).
    pub aggregates: Vec<Value>,
}

fn ld_json_type(t: &str) -> bool {
    t.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/ld+json")
}

/// Reads the JSON-LD blocks of `html` (the page at `page`) into records and rejects.
pub fn extract(html: &str, page: &JsonldPage) -> Extracted {
    let doc = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse("script").expect("a valid selector");
    let mut out = Extracted::default();
    let mut seen: Vec<String> = Vec::new();
    for el in doc.select(&selector) {
        if !el.value().attr("type").is_some_and(ld_json_type) {
            continue;
        }
        out.scripts += 1;
        let s = out.scripts;
        let text: String = el.text().collect();
        // Some CMSs wrap the block in an HTML comment or CDATA.
        let trimmed = text
            .trim()
            .trim_start_matches("<!--")
            .trim_end_matches("-->")
            .trim()
            .trim_start_matches("//<![CDATA[")
            .trim_end_matches("//]]>")
            .trim();
        let block: Value = match serde_json::from_str(trimmed) {
            Ok(v) => v,
            Err(e) => {
                let mut raw = text;
                if raw.len() > RAW_LIMIT {
                    let mut end = RAW_LIMIT;
                    while !raw.is_char_boundary(end) {
                        end -= 1;
                    }
                    raw.truncate(end);
                }
                out.rejects.push(RowError {
                    origin: format!("{} script {s}", page.url),
                    line: None,
                    field: Some("script".into()),
                    expected: "a JSON-LD block (valid JSON)".into(),
                    message: format!("script {s} is not JSON: {e}"),
                    raw,
                });
                continue;
            }
        };
        let (found, aggregates) = files::jsonld::reviews_in(&block);
        out.aggregates.extend(aggregates.into_iter().cloned());
        for (i, f) in found.iter().enumerate() {
            let r = i + 1;
            let item = files::jsonld::with_provenance(f, &page.url, s, r, page.location.as_deref());
            let origin = format!("{} script {s} review {r}", page.url);
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(r as u64),
                raw: item.to_string(),
                ..Default::default()
            };
            match files::jsonld::review_record(&item, &mut rec) {
                Ok(()) => {
                    // The same review shown twice on a page (a Product and a @graph) is one.
                    if let Some(id) = rec.fields.get(&crate::pipeline::Field::ExternalId) {
                        if seen.contains(id) {
                            continue;
                        }
                        seen.push(id.clone());
                    }
                    out.records.push(rec);
                }
                Err(p) => out.rejects.push(RowError {
                    origin,
                    line: Some(r as u64),
                    field: Some(p.field),
                    expected: p.expected,
                    message: p.message,
                    raw: item.to_string(),
                }),
            }
        }
    }
    out
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// `https://host:port` of a URL.
fn origin_of(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

fn header(h: &reqwest::header::HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Jsonld {
    pub fn new(settings: &JsonldSettings, http: &HttpSettings) -> Result<Jsonld, ConnectorError> {
        Ok(Jsonld {
            http: Http::crawler(http, MAX_REDIRECTS)?,
            settings: settings.clone(),
            sites: Mutex::new(HashMap::new()),
            last_request: Mutex::new(HashMap::new()),
        })
    }

    fn with_agent(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.header(reqwest::header::USER_AGENT, &self.settings.user_agent)
    }

    /// The robots.txt rules of `origin`, fetched once per run (and at most every 24 h).
    async fn site(
        &self,
        origin: &str,
        cx: &FetchContext,
    ) -> Result<Arc<SiteRules>, ConnectorError> {
        if let Some(s) = self
            .sites
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
            && s.at.elapsed() < ROBOTS_MAX_AGE
        {
            return Ok(s.clone());
        }
        let url = format!("{origin}/robots.txt");
        let label = format!("GET {url}");
        let authorize = |rb: reqwest::RequestBuilder| self.with_agent(rb);
        let (robots, unreadable) = match self
            .http
            .get(&url, &label, cx, &authorize, &|_| None)
            .await
        {
            Ok(resp) => (Robots::parse(&resp.body), None),
            Err(ConnectorError::Stopped) => return Err(ConnectorError::Stopped),
            // 4xx: "unavailable", everything is allowed (RFC 9309 section 2.3.1.3).
            Err(ConnectorError::Http { status, .. } | ConnectorError::Auth { status, .. })
                if (400..500).contains(&status) && status != 429 =>
            {
                tracing::debug!(connector = %cx.connector, origin, status, "robots.txt is unavailable; every page of the site may be read.");
                (Robots::allow_all(), None)
            }
            // 5xx, 429, no answer: "unreachable", nothing is allowed (section 2.3.1.4).
            // The error may quote the site's answer: one line, bounded, in the log.
            Err(e) => (
                Robots::disallow_all(),
                Some(crate::outputs::one_line(
                    &format!(
                        "{e}; RFC 9309 treats an unreachable robots.txt as disallowing the whole site"
                    ),
                    600,
                )),
            ),
        };
        let site = Arc::new(SiteRules {
            robots,
            unreadable,
            at: Instant::now(),
        });
        self.sites
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(origin.to_string(), site.clone());
        Ok(site)
    }

    /// Waits out the origin's `Crawl-delay` since its last request.
    async fn pace(
        &self,
        origin: &str,
        delay: Option<f64>,
        cx: &FetchContext,
    ) -> Result<(), ConnectorError> {
        let Some(delay) = delay.filter(|d| *d > 0.0) else {
            return Ok(());
        };
        let delay = Duration::from_secs_f64(delay.min(86_400.0)).min(self.http.max_wait());
        let last = self
            .last_request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
            .copied();
        if let Some(last) = last {
            let since = last.elapsed();
            if since < delay {
                let d = delay - since;
                tracing::debug!(connector = %cx.connector, origin, wait_secs = d.as_secs_f64(), "Waiting for the site's Crawl-delay.");
                cx.sleep(d).await?;
            }
        }
        Ok(())
    }

    fn note_request(&self, origin: &str) {
        self.last_request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(origin.to_string(), Instant::now());
    }

    /// Reads one page into `out`; returns the page's new state (`None`: keep the old one).
    async fn read_page(
        &self,
        page: &JsonldPage,
        state: &PageState,
        cx: &FetchContext,
        out: &mut Page,
    ) -> Result<Option<PageState>, ConnectorError> {
        let url = reqwest::Url::parse(&page.url)
            .map_err(|e| ConnectorError::Setup(format!("page url `{}`: {e}", page.url)))?;
        let origin = origin_of(&url);
        let site = self.site(&origin, cx).await?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let decision = site.robots.check(&self.settings.product_token, &path);
        if !decision.allowed() {
            match &site.unreadable {
                Some(why) => {
                    tracing::warn!(connector = %cx.connector, page = %page.url, "Skipping the page: robots.txt of {origin} could not be read ({why}).")
                }
                None => {
                    let rule = decision
                        .rule
                        .as_ref()
                        .map(|r| crate::outputs::one_line(&r.to_string(), 200))
                        .unwrap_or_default();
                    tracing::warn!(connector = %cx.connector, page = %page.url, rule = %rule, "Skipping the page: {origin}/robots.txt disallows it for `{}` by {rule}.", self.settings.product_token);
                }
            }
            return Ok(None);
        }
        self.pace(
            &origin,
            site.robots.crawl_delay(&self.settings.product_token),
            cx,
        )
        .await?;
        let label = format!("GET {}", page.url);
        let (etag, modified) = (state.etag.clone(), state.last_modified.clone());
        let authorize = move |rb: reqwest::RequestBuilder| {
            let mut rb = self.with_agent(rb);
            if let Some(e) = &etag {
                rb = rb.header(reqwest::header::IF_NONE_MATCH, e);
            }
            if let Some(m) = &modified {
                rb = rb.header(reqwest::header::IF_MODIFIED_SINCE, m);
            }
            rb
        };
        let got = self
            .http
            .get(&page.url, &label, cx, &authorize, &|_| None)
            .await;
        self.note_request(&origin);
        let resp = match got {
            Ok(r) => r,
            Err(ConnectorError::Http { status: 304, .. }) => {
                tracing::debug!(connector = %cx.connector, page = %page.url, "Not modified since the last run.");
                return Ok(None);
            }
            Err(
                ConnectorError::Http {
                    status, message, ..
                }
                | ConnectorError::Auth {
                    status, message, ..
                },
            ) if (400..500).contains(&status) => {
                let excerpt = crate::outputs::one_line(&message, 120);
                tracing::warn!(connector = %cx.connector, page = %page.url, status, "Skipping the page: it answered HTTP {status} ({excerpt}); fix: correct or remove its [[connector.page]] entry.");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut next = PageState {
            etag: header(&resp.headers, reqwest::header::ETAG),
            last_modified: header(&resp.headers, reqwest::header::LAST_MODIFIED),
            sha256: Some(sha256(&resp.body)),
        };
        if next.sha256 == state.sha256 {
            tracing::debug!(connector = %cx.connector, page = %page.url, "The page is unchanged since the last run.");
            return Ok(Some(next));
        }
        if resp.body.len() > PAGE_LIMIT {
            tracing::warn!(connector = %cx.connector, page = %page.url, bytes = resp.body.len(), "Skipping the page: larger than {PAGE_LIMIT} bytes.");
            return Ok(None);
        }
        let found = extract(&resp.body, page);
        if found.scripts == 0 {
            tracing::warn!(connector = %cx.connector, page = %page.url, "The page has no JSON-LD block (an error or challenge page?); nothing read, it is read again next run.");
            next.sha256 = None;
            next.etag = None;
            next.last_modified = None;
            return Ok(Some(next));
        }
        for a in &found.aggregates {
            tracing::debug!(
                connector = %cx.connector,
                page = %page.url,
                rating = %a.get("ratingValue").map(|v| v.to_string()).unwrap_or_default(),
                count = %a.get("reviewCount").or_else(|| a.get("ratingCount")).map(|v| v.to_string()).unwrap_or_default(),
                "AggregateRating on the page (not an interaction; kept in its reviews' raw payload)."
            );
        }
        out.records.extend(found.records);
        out.rejects.extend(found.rejects);
        Ok(Some(next))
    }
}

#[async_trait::async_trait]
impl super::Connector for Jsonld {
    fn preset(&self) -> Preset {
        Preset::Jsonld
    }

    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError> {
        let mut c: Cursor = match cursor {
            None => Cursor::default(),
            Some(t) => serde_json::from_str(t).map_err(|e| {
                ConnectorError::Setup(format!(
                    "the stored cursor is not a jsonld cursor ({e}); fix: check that the connector's name was not reused for another kind"
                ))
            })?,
        };
        let pages = &self.settings.pages;
        if c.at >= pages.len() {
            c.at = 0; // the list was shortened
        }
        // Pages no longer configured drop out of the cursor.
        c.pages.retain(|url, _| pages.iter().any(|p| &p.url == url));
        let mut out = Page::default();
        let Some(page) = pages.get(c.at) else {
            return Ok(out);
        };
        let state = c.pages.get(&page.url).cloned().unwrap_or_default();
        if let Some(next) = self.read_page(page, &state, cx, &mut out).await? {
            c.pages.insert(page.url.clone(), next);
        }
        c.at += 1;
        out.more = c.at < pages.len();
        if !out.more {
            c.at = 0;
        }
        out.cursor = Some(serde_json::to_string(&c).expect("plain data"));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scraping_hosts_are_refused() {
        for (h, v) in [
            ("google.com", "Google"),
            ("www.google.co.uk", "Google"),
            ("maps.google.de", "Google"),
            ("lh3.googleusercontent.com", "Google"),
            ("goo.gl", "Google"),
            ("x.com", "X"),
            ("mobile.twitter.com", "X"),
            ("t.co", "X"),
            ("www.reddit.com", "Reddit"),
            ("OLD.Reddit.com.", "Reddit"),
            ("redd.it", "Reddit"),
        ] {
            assert_eq!(forbidden_host(h), Some(v), "{h}");
        }
        for h in [
            "acme.example",
            "googlefan.example",
            "box.com",
            "notreddit.com",
            "127.0.0.1",
            "google",
        ] {
            assert_eq!(forbidden_host(h), None, "{h}");
        }
    }

    /// A Crawl-delay longer than max_wait_secs waits max_wait_secs.
    #[tokio::test]
    async fn crawl_delay_is_capped_by_max_wait() {
        let http = HttpSettings {
            timeout: Duration::from_secs(5),
            max_retries: 0,
            max_wait: Duration::from_millis(300),
        };
        let settings = JsonldSettings {
            product_token: "Tideline".into(),
            user_agent: "Tideline/0 (test)".into(),
            pages: vec![],
        };
        let j = Jsonld::new(&settings, &http).unwrap();
        let cx = FetchContext::new(
            "t",
            Arc::new(crate::metrics::Metrics::new()),
            Default::default(),
        );
        let t = Instant::now();
        j.pace("http://a.example", Some(3600.0), &cx).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(50),
            "no wait before the first request"
        );
        j.note_request("http://a.example");
        j.pace("http://a.example", Some(3600.0), &cx).await.unwrap();
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(290) && waited < Duration::from_millis(800),
            "{waited:?}"
        );
        let t = Instant::now();
        j.pace("http://b.example", Some(3600.0), &cx).await.unwrap();
        j.pace("http://a.example", None, &cx).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(50),
            "other origins and no delay do not wait"
        );
    }

    #[test]
    fn blocks_are_read_and_a_broken_one_is_a_reject() {
        let html = r#"<html><head>
<script type="application/ld+json">{"@type": "Review", "@id": "https://a.example/#r1", "datePublished": "2025-01-01", "reviewBody": "Good &amp; fast"}</script>
<script type="application/json">{"@type": "Review"}</script>
<script type="Application/LD+JSON; charset=utf-8">{"@type": "Review", "reviewBody": </script>
<script type="application/ld+json"><!-- [{"@type": "Product", "review": [{"@type": "Review", "datePublished": "2025-01-02", "reviewRating": {"ratingValue": 2}}, {"@type": "Review", "reviewBody": "no date"}]}] --></script>
</head><body></body></html>"#;
        let page = JsonldPage {
            url: "https://a.example/".into(),
            location: Some("berlin".into()),
        };
        let x = extract(html, &page);
        assert_eq!(x.scripts, 3);
        assert_eq!(x.records.len(), 2);
        assert_eq!(x.rejects.len(), 2);
        assert_eq!(x.rejects[0].origin, "https://a.example/ script 2");
        assert_eq!(x.rejects[0].field.as_deref(), Some("script"));
        assert_eq!(x.rejects[1].origin, "https://a.example/ script 3 review 2");
        assert_eq!(x.rejects[1].field.as_deref(), Some("datePublished"));
        assert_eq!(
            x.records[0].fields[&crate::pipeline::Field::Text],
            "Good & fast"
        );
        assert!(x.records[1].raw.contains("\"location\":\"berlin\""));
    }
}
