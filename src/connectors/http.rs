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

/// A response the connector reads (status 2xx), with its headers.
#[derive(Debug)]
pub struct Response {
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
        let mut attempt = 0u32;
        loop {
            if cx.stop.is_cancelled() {
                return Err(ConnectorError::Stopped);
            }
            let sent = tokio::select! {
                r = authorize(self.client.get(url)).send() => r,
                _ = cx.stop.cancelled() => return Err(ConnectorError::Stopped),
            };
            let (wait, failure) = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    if status.is_success() {
                        let text = tokio::select! {
                            t = resp.text() => t.map_err(|e| ConnectorError::Network {
                                request: label.to_string(),
                                message: without_url(&e),
                            })?,
                            _ = cx.stop.cancelled() => return Err(ConnectorError::Stopped),
                        };
                        return Ok(Response {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= Duration::from_secs(1) && backoff(1) < Duration::from_millis(1300));
        assert!(backoff(3) >= Duration::from_secs(4));
        assert!(backoff(30) <= Duration::from_secs(75));
    }
}
