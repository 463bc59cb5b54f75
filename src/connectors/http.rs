//! What every API connector does with HTTP: a descriptive User-Agent, timeouts, retries
//! with backoff, and waits a vendor's rate limit imposes (`Retry-After` in seconds or as an
//! HTTP date), all of them cut short when the daemon stops.
//!
//! Each vendor's own reset headers (epoch seconds, ISO-8601, seconds-until) are read by its
//! connector, which passes the wait here as a [`Wait`]; this module does not guess formats.

use super::ConnectorError;
use crate::config::HttpSettings;
use crate::metrics::Metrics;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const USER_AGENT: &str = concat!(
    "tideline/",
    env!("CARGO_PKG_VERSION"),
    " (self-hosted customer feedback daemon)"
);

/// What a connector needs from the runner while it fetches.
#[derive(Debug, Clone)]
pub struct FetchContext {
    /// Cancelled when the daemon stops: a wait ends at once with `ConnectorError::Stopped`.
    pub stop: CancellationToken,
    pub metrics: Arc<Metrics>,
    /// The connector's name, for metrics and logs.
    pub connector: String,
}

impl FetchContext {
    pub fn new(connector: &str, metrics: Arc<Metrics>, stop: CancellationToken) -> FetchContext {
        FetchContext {
            stop,
            metrics,
            connector: connector.to_string(),
        }
    }

    /// Sleeps, unless the daemon stops first.
    pub async fn sleep(&self, d: Duration) -> Result<(), ConnectorError> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.stop.cancelled() => Err(ConnectorError::Stopped),
        }
    }
}

/// The shared client of one connector.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    settings: HttpSettings,
}

/// A response the connector reads (status 2xx, or 304 to a conditional request), with its
/// headers.
#[derive(Debug)]
pub struct Response {
    /// 2xx, or 304 Not Modified (only ever sent to a request with `If-None-Match` or
    /// `If-Modified-Since`, which only the feed connector sends).
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// How long to wait before retrying a request the server refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// The server said how long (its rate-limit reset or `Retry-After`).
    Told(Duration),
    /// It did not: back off exponentially.
    Backoff,
}

impl Http {
    pub fn new(settings: &HttpSettings) -> Result<Http, ConnectorError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ConnectorError::Setup(e.to_string()))?;
        Ok(Http {
            client,
            settings: settings.clone(),
        })
    }

    /// A client for crawling pages: like [`Http::new`], but a redirect chain longer than
    /// `max_redirects` hops is an error (RFC 9309 asks crawlers to follow at least five for
    /// robots.txt; pages get the same limit).
    pub fn crawler(settings: &HttpSettings, max_redirects: usize) -> Result<Http, ConnectorError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::limited(max_redirects))
            .build()
            .map_err(|e| ConnectorError::Setup(e.to_string()))?;
        Ok(Http {
            client,
            settings: settings.clone(),
        })
    }

    /// The longest wait a vendor may impose (`max_wait_secs`).
    pub fn max_wait(&self) -> Duration {
        self.settings.max_wait
    }

    /// GETs `url` until it answers 2xx. `authorize` adds the credentials (a fresh request
    /// each attempt); `vendor_wait` reads the vendor's own rate-limit headers of a 429.
    /// `label` names the request in errors (never the credentials).
    pub async fn get(
        &self,
        url: &str,
        label: &str,
        cx: &FetchContext,
        authorize: &(dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync),
        vendor_wait: &(dyn Fn(&HeaderMap) -> Option<Duration> + Sync),
    ) -> Result<Response, ConnectorError> {
        let make = || authorize(self.client.get(url));
        self.send(&make, label, cx, vendor_wait).await
    }

    /// POSTs `body` as JSON until it answers 2xx, with the same retries and waits as
    /// [`Http::get`]. For read-only endpoints that take their query as a body (search
    /// APIs) and session calls: the request must be safe to repeat.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        label: &str,
        cx: &FetchContext,
        authorize: &(dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync),
        vendor_wait: &(dyn Fn(&HeaderMap) -> Option<Duration> + Sync),
    ) -> Result<Response, ConnectorError> {
        let make = || authorize(self.client.post(url).json(body));
        self.send(&make, label, cx, vendor_wait).await
    }

    /// POSTs an `application/x-www-form-urlencoded` body (an OAuth token request) with the
    /// same retries, waits and errors as [`Http::get`]. `label` names the request in
    /// errors, never the form (it may hold a client secret).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        label: &str,
        cx: &FetchContext,
        authorize: &(dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync),
        vendor_wait: &(dyn Fn(&HeaderMap) -> Option<Duration> + Sync),
    ) -> Result<Response, ConnectorError> {
        let body = form_body(form);
        let make = || {
            authorize(
                self.client
                    .post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.clone()),
            )
        };
        self.send(&make, label, cx, vendor_wait).await
    }

    /// Sends the request `make` builds (a fresh one each attempt) until it answers 2xx.
    async fn send(
        &self,
        make: &(dyn Fn() -> reqwest::RequestBuilder + Sync),
        label: &str,
        cx: &FetchContext,
        vendor_wait: &(dyn Fn(&HeaderMap) -> Option<Duration> + Sync),
    ) -> Result<Response, ConnectorError> {
        let mut attempt = 0u32;
        loop {
            if cx.stop.is_cancelled() {
                return Err(ConnectorError::Stopped);
            }
            let sent = tokio::select! {
                r = make().send() => r,
                _ = cx.stop.cancelled() => return Err(ConnectorError::Stopped),
            };
            let (wait, failure) = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    if status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED {
                        let text = tokio::select! {
                            t = resp.text() => t.map_err(|e| ConnectorError::Network {
                                request: label.to_string(),
                                message: without_url(&e),
                            })?,
                            _ = cx.stop.cancelled() => return Err(ConnectorError::Stopped),
                        };
                        return Ok(Response {
                            status: status.as_u16(),
                            headers,
                            body: text,
                        });
                    }
                    let body = resp.text().await.unwrap_or_default();
                    let excerpt: String = body.chars().take(300).collect();
                    match status.as_u16() {
                        401 | 403 => {
                            return Err(ConnectorError::Auth {
                                request: label.to_string(),
                                status: status.as_u16(),
                                message: excerpt,
                            });
                        }
                        429 => {
                            let told = vendor_wait(&headers).or_else(|| retry_after(&headers));
                            cx.metrics
                                .connector(&cx.connector, |c| c.rate_limit_waits += 1);
                            (
                                told.map(Wait::Told).unwrap_or(Wait::Backoff),
                                ConnectorError::RateLimited {
                                    request: label.to_string(),
                                },
                            )
                        }
                        500..=599 => (
                            retry_after(&headers)
                                .map(Wait::Told)
                                .unwrap_or(Wait::Backoff),
                            ConnectorError::Http {
                                request: label.to_string(),
                                status: status.as_u16(),
                                message: excerpt,
                            },
                        ),
                        _ => {
                            return Err(ConnectorError::Http {
                                request: label.to_string(),
                                status: status.as_u16(),
                                message: excerpt,
                            });
                        }
                    }
                }
                Err(e) => (
                    Wait::Backoff,
                    ConnectorError::Network {
                        request: label.to_string(),
                        message: without_url(&e),
                    },
                ),
            };
            cx.metrics.connector(&cx.connector, |c| c.errors += 1);
            attempt += 1;
            if attempt > self.settings.max_retries {
                return Err(failure);
            }
            let d = match wait {
                Wait::Told(d) => d,
                Wait::Backoff => backoff(attempt),
            };
            if d > self.settings.max_wait {
                return Err(ConnectorError::WaitTooLong {
                    request: label.to_string(),
                    secs: d.as_secs(),
                    max_secs: self.settings.max_wait.as_secs(),
                });
            }
            tracing::warn!(connector = %cx.connector, request = label, error = %failure, wait_secs = d.as_secs_f64(), attempt, "Request refused; waiting before the next attempt.");
            if matches!(failure, ConnectorError::RateLimited { .. }) {
                cx.metrics
                    .connector(&cx.connector, |c| c.rate_limit_wait_secs += d.as_secs_f64());
            }
            cx.sleep(d).await?;
        }
    }
}

/// `a=1&b=x+y`: the form encoding (`application/x-www-form-urlencoded`) of the pairs.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://form.invalid/").expect("a valid URL");
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_string()
}

/// reqwest's error text without the URL (which may carry tokens in query strings).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.without_url_ref().to_string();
    if e.is_timeout() {
        s = format!("timed out ({s})");
    }
    s
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut parts = Vec::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(s) = src {
            parts.push(s.to_string());
            src = s.source();
        }
        let kind = if self.is_timeout() {
            "timeout"
        } else if self.is_connect() {
            "cannot connect"
        } else if self.is_body() || self.is_decode() {
            "bad response body"
        } else {
            "request failed"
        };
        if parts.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}: {}", parts.join(": "))
        }
    }
}

/// 1 s, 2 s, 4 s ... capped at 60 s, with up to 25% jitter so a fleet does not retry in
/// step.
fn backoff(attempt: u32) -> Duration {
    let base = 1000u64 << attempt.saturating_sub(1).min(6);
    let base = base.min(60_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(base + (nanos % (base / 4 + 1)))
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 allows both).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// The target of the `Link` header's link with relation `rel` (RFC 8288): links are split
/// on commas outside `<...>` and quoted strings, `rel` may be quoted or bare and may list
/// several space-separated relations, case-insensitively. Not a regex on "next": a URL
/// that contains `rel="next"` in its query does not count.
pub fn link_target(headers: &HeaderMap, rel: &str) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in split_outside(value, ',') {
            let link = link.trim();
            let Some(rest) = link.strip_prefix('<') else {
                continue;
            };
            let Some((target, params)) = rest.split_once('>') else {
                continue;
            };
            for param in split_outside(params, ';') {
                let Some((name, v)) = param.split_once('=') else {
                    continue;
                };
                if !name.trim().eq_ignore_ascii_case("rel") {
                    continue;
                }
                let v = v.trim().trim_matches('"');
                if v.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
                {
                    return Some(target.trim().to_string());
                }
            }
        }
    }
    None
}

/// Splits on `sep` where it is neither inside `<...>` nor inside a quoted string.
fn split_outside(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut angle, mut quoted) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            c if c == sep && !angle && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_are_parsed_not_grepped() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            r#"<https://a.example/api?max_id=1,2&x="rel=next">; rel="prev", <https://a.example/api?page=3>; title="a, b; c"; rel="next last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            link_target(&h, "next").as_deref(),
            Some("https://a.example/api?page=3")
        );
        assert_eq!(
            link_target(&h, "prev").as_deref(),
            Some(r#"https://a.example/api?max_id=1,2&x="rel=next""#)
        );
        h.insert(
            reqwest::header::LINK,
            "<https://a.example/api?page=2>; REL=Next".parse().unwrap(),
        );
        assert_eq!(
            link_target(&h, "next").as_deref(),
            Some("https://a.example/api?page=2")
        );
        // A URL that merely mentions next is not a next link.
        h.insert(
            reqwest::header::LINK,
            r#"<https://a.example/api?rel="next">; rel="prev""#.parse().unwrap(),
        );
        assert_eq!(link_target(&h, "next"), None);
        assert_eq!(link_target(&HeaderMap::new(), "next"), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = chrono::Utc::now() + chrono::Duration::seconds(30);
        h.insert(
            RETRY_AFTER,
            later
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
                .parse()
                .unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn form_bodies_are_encoded() {
        assert_eq!(
            form_body(&[
                ("grant_type", "client_credentials"),
                ("client_secret", "a b&c=d")
            ]),
            "grant_type=client_credentials&client_secret=a+b%26c%3Dd"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= Duration::from_secs(1) && backoff(1) < Duration::from_millis(1300));
        assert!(backoff(3) >= Duration::from_secs(4));
        assert!(backoff(30) <= Duration::from_secs(75));
    }
}
