//! CRM sync: drains each sink's outbox into its CRM.
//!
//! A run registers the configured sinks (the first time with the backfill of the whole
//! history), then per sink: lease a batch of due items with the data as it is now, hand
//! it to the sink's [`Target`], and record what became of each item. Every write a target
//! makes is an upsert by a key derived from our data (or a delete of a record it told us
//! about), so an item delivered twice (a timeout after the CRM applied it, a worker killed
//! before it recorded the answer) changes nothing the second time.
//!
//! Failures back off exponentially with jitter per item; a rate limit pauses the whole
//! sink without counting against the items; an item the CRM refuses is parked at once
//! (a batch the CRM refuses as a whole is split until the bad item stands alone); an
//! unauthorized answer stops the sink's run and leaves its items untouched.

mod hubspot;
mod render;
mod salesforce;
mod webhook;

use crate::config::{Config, SinkConfig, SinkKind};
use crate::store::{CrmItem, CrmOutcome, CrmPayload, CrmResult, CrmSinkStatus, Store, StoreError};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use std::fmt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use render::{change_subject, interaction_subject};

#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no [[crm.sink]] named `{0}`; fix: use a name from the config file (`tideline crm status` lists them)"
    )]
    UnknownSink(String),
    #[error(
        "no [[crm.sink]] is configured; fix: add one to the config file (see config/example.toml)"
    )]
    NoSinks,
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// What a target says of one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered(Vec<crate::store::CrmLink>),
    /// This CRM cannot take the item (no email for a contact).
    Skipped(String),
    /// Try again later; `counts` towards parking (not for a lock or rate limit);
    /// `uncertain`: the CRM may have applied it.
    Failed {
        error: String,
        counts: bool,
        uncertain: bool,
    },
    /// The CRM refused this item: park it.
    Refused(String),
}

/// Why a whole batch did not go through.
#[derive(Debug, Clone, PartialEq)]
pub enum Halt {
    /// Credentials refused: stop this sink's run; the items stay as they were.
    Unauthorized(String),
    /// Rate limited: wait this long before the next request.
    RateLimited { wait: Duration, error: String },
    /// The CRM refused the request as a whole (a validation error without saying which
    /// item): split the batch to find the bad one.
    Refused(String),
    /// The request failed without an answer about any item (5xx, timeout, connection).
    Failed { error: String, uncertain: bool },
}

/// One CRM.
#[async_trait]
pub trait Target: Send + Sync {
    /// Delivers `items` (at most the sink's batch size): one verdict per item, in order.
    async fn deliver(&self, items: &[CrmItem]) -> Result<Vec<Verdict>, Halt>;

    /// Contacts found or created by the deliveries since the last call, whatever became of
    /// the items (a contact created before a later request of the batch failed must still
    /// be known as Tideline's, or an erasure would leave it behind).
    fn learned(&self) -> Vec<crate::store::CrmLink> {
        Vec::new()
    }
}

/// Builds the target of a sink: one match arm per kind.
pub fn target(sink: &SinkConfig) -> Result<Box<dyn Target>, CrmError> {
    let http = Http::new(sink.timeout)?;
    Ok(match &sink.kind {
        SinkKind::Hubspot(s) => Box::new(hubspot::Hubspot::new(http, s.clone())),
        SinkKind::Salesforce(s) => Box::new(salesforce::Salesforce::new(http, s.clone())),
        SinkKind::Webhook(s) => Box::new(webhook::Webhook::new(http, s.clone())),
    })
}

/// An HTTP answer, whatever its status.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The start of the body, for an error message (bodies are the vendor's JSON, never
    /// our secrets).
    pub fn snippet(&self) -> String {
        crate::outputs::one_line(&self.body, 300)
    }
}

/// The HTTP client a target uses: timeouts, the User-Agent, and the classification of
/// transport failures.
#[derive(Clone)]
pub(crate) struct Http {
    pub client: reqwest::Client,
}

impl Http {
    fn new(timeout: Duration) -> Result<Http, CrmError> {
        let client = reqwest::Client::builder()
            .user_agent(crate::connectors::http::USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CrmError::Setup(e.to_string()))?;
        Ok(Http { client })
    }

    /// Sends a request. A transport failure is a [`Halt::Failed`]; it is `uncertain` when
    /// the request may have reached the server (a timeout, a connection dropped while
    /// waiting for the answer), not when the connection could not be made.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer, Halt> {
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                match r.text().await {
                    Ok(body) => Ok(Answer {
                        status,
                        headers,
                        body,
                    }),
                    Err(e) => Err(Halt::Failed {
                        error: format!("HTTP {status}, body unreadable: {}", transport(&e)),
                        uncertain: true,
                    }),
                }
            }
            Err(e) => Err(Halt::Failed {
                error: transport(&e),
                uncertain: !e.is_connect(),
            }),
        }
    }
}

/// A transport error without its URL (which may carry a query a vendor logs).
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !text.contains("://") {
            msg = format!("{msg}: {text}");
        }
        src = s.source();
    }
    msg
}

/// How long a server asked us to wait: `Retry-After` in seconds (or an HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (at.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(0);
    Some(Duration::from_millis(ms as u64))
}

/// The link to a person's contact in a CRM (`created`: Tideline created it).
pub(crate) fn contact_link(
    p: &crate::store::CrmPerson,
    id: &str,
    created: bool,
) -> crate::store::CrmLink {
    crate::store::CrmLink {
        entity: crate::store::CrmEntity::Customer,
        crm_key: p.customer_id.clone(),
        customer_id: Some(p.customer_id.clone()),
        remote_id: Some(id.to_string()),
        created,
    }
}

/// The usual meaning of a status for a whole request; targets refine it with the body.
pub(crate) fn halt_for(answer: &Answer, vendor: &str) -> Halt {
    let error = format!(
        "{vendor} answered HTTP {}: {}",
        answer.status,
        answer.snippet()
    );
    match answer.status {
        401 | 403 => Halt::Unauthorized(error),
        429 => Halt::RateLimited {
            wait: retry_after(&answer.headers).unwrap_or(Duration::from_secs(10)),
            error,
        },
        408 | 425 | 500..=599 => Halt::Failed {
            error,
            uncertain: answer.status != 503,
        },
        _ => Halt::Refused(error),
    }
}

/// The delay before attempt `attempts + 1`: doubling from `initial`, capped at `max`,
/// with full jitter over its upper half (so a fleet's retries spread out).
pub fn backoff(attempts: i64, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = attempts.clamp(0, 30) as u32;
    let base = initial
        .as_millis()
        .saturating_mul(1u128 << exp)
        .min(max.as_millis()) as f64;
    Duration::from_millis((base * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as u64)
}

/// A number in [0, 1) that differs between calls and instances (sub-second clock bits;
/// only used to spread retries).
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos.wrapping_mul(2_654_435_761) % 1_000_000) / 1_000_000.0
}

/// One line for an item as `crm sync --dry-run` shows it.
pub fn describe(item: &CrmItem) -> String {
    let what = match &item.payload {
        CrmPayload::Interaction {
            interaction,
            person,
        } => format!(
            "upsert interaction {}: {}{}",
            item.crm_key,
            render::interaction_subject(interaction),
            match person.as_ref().and_then(|p| p.email.as_deref()) {
                Some(_) => " (customer with email)",
                None => " (no email: webhooks only)",
            }
        ),
        CrmPayload::Change { change, .. } => format!(
            "upsert change {}: {}",
            item.crm_key,
            render::change_subject(change)
        ),
        CrmPayload::Delete => format!(
            "delete {} {}{}",
            item.entity.as_str(),
            item.crm_key,
            item.remote_id
                .as_deref()
                .map(|r| format!(" (CRM record {r})"))
                .unwrap_or_default()
        ),
        CrmPayload::Gone => format!(
            "nothing: {} {} no longer exists",
            item.entity.as_str(),
            item.crm_key
        ),
    };
    let retry = if item.attempts > 0 {
        format!(" [{} failed attempt(s)]", item.attempts)
    } else {
        String::new()
    };
    format!(
        "#{} {}{retry}",
        item.id,
        crate::outputs::one_line(&what, 300)
    )
}

/// One sink's run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SinkRun {
    pub sink: String,
    /// Items queued by the first registration (the backfill).
    pub backfilled: u64,
    pub delivered: u64,
    pub skipped: u64,
    pub retried: u64,
    pub parked: u64,
    /// The run stopped on this (credentials refused, a long rate limit, a stop request).
    pub stopped: Option<String>,
    /// The outbox after the run.
    pub status: Option<CrmSinkStatus>,
}

impl fmt::Display for SinkRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} delivered, {} skipped, {} to retry, {} parked",
            self.sink, self.delivered, self.skipped, self.retried, self.parked
        )?;
        if self.backfilled > 0 {
            write!(f, " ({} queued by the first sync)", self.backfilled)?;
        }
        if let Some(s) = &self.status {
            write!(f, "; outbox: {} pending, {} parked", s.pending, s.parked)?;
        }
        if let Some(why) = &self.stopped {
            write!(f, "; stopped: {why}")?;
        }
        Ok(())
    }
}

/// How a run drains.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Wait for items in backoff whose next attempt is at most this far away (a manual
    /// `crm sync` drains the queue; the daemon leaves them to its next tick).
    pub wait_for_retries: Duration,
    /// A rate limit longer than this ends the run instead of waiting.
    pub max_rate_wait: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            wait_for_retries: Duration::ZERO,
            max_rate_wait: Duration::from_secs(60),
        }
    }
}

/// The sinks a run covers: all configured, or the one named.
pub fn select<'a>(config: &'a Config, only: Option<&str>) -> Result<Vec<&'a SinkConfig>, CrmError> {
    if config.crm.sinks.is_empty() {
        return Err(CrmError::NoSinks);
    }
    match only {
        None => Ok(config.crm.sinks.iter().collect()),
        Some(n) => config
            .crm
            .sink(n)
            .map(|s| vec![s])
            .ok_or_else(|| CrmError::UnknownSink(n.to_string())),
    }
}

/// Registers every configured sink (the first time with its backfill): how many items
/// each queued.
pub async fn register(store: &dyn Store, config: &Config) -> Result<Vec<(String, u64)>, CrmError> {
    let mut out = Vec::new();
    for s in &config.crm.sinks {
        if let Some(n) = store.crm_register(&s.name, s.kind.as_str()).await? {
            tracing::info!(sink = %s.name, queued = n, "CRM sink registered; its history is queued");
            out.push((s.name.clone(), n));
        }
    }
    Ok(out)
}

/// Drains the outboxes of `sinks`.
pub async fn sync(
    store: &dyn Store,
    config: &Config,
    sinks: &[&SinkConfig],
    opts: &SyncOptions,
    stop: &CancellationToken,
) -> Result<Vec<SinkRun>, CrmError> {
    let registered = register(store, config).await?;
    let mut runs = Vec::new();
    for sink in sinks {
        let mut run = SinkRun {
            sink: sink.name.clone(),
            backfilled: registered
                .iter()
                .find(|(n, _)| n == &sink.name)
                .map(|(_, n)| *n)
                .unwrap_or(0),
            ..SinkRun::default()
        };
        let target = target(sink)?;
        drain(store, sink, target.as_ref(), opts, stop, &mut run).await?;
        store
            .crm_run_done(&sink.name, run.stopped.as_deref())
            .await?;
        run.status = store
            .crm_status()
            .await?
            .into_iter()
            .find(|s| s.sink == sink.name);
        match &run.stopped {
            Some(why) => tracing::warn!(sink = %sink.name, "CRM sync stopped: {why}"),
            None => tracing::info!("CRM sync: {run}"),
        }
        runs.push(run);
    }
    Ok(runs)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn drain(
    store: &dyn Store,
    sink: &SinkConfig,
    target: &dyn Target,
    opts: &SyncOptions,
    stop: &CancellationToken,
    run: &mut SinkRun,
) -> Result<(), CrmError> {
    let lease_ms = sink.lease.as_millis() as i64;
    loop {
        if stop.is_cancelled() {
            run.stopped = Some("stop requested".into());
            return Ok(());
        }
        let items = store
            .crm_lease(&sink.name, sink.batch_size as i64, Some(lease_ms))
            .await?;
        if items.is_empty() {
            // Nothing due: wait for the next retry if it is close enough.
            let next = store
                .crm_status()
                .await?
                .into_iter()
                .find(|s| s.sink == sink.name)
                .and_then(|s| s.next_attempt_ms);
            let Some(next) = next else { return Ok(()) };
            let wait = Duration::from_millis((next - now_ms()).max(0) as u64 + 5);
            if wait > opts.wait_for_retries {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => continue,
                _ = stop.cancelled() => continue,
            }
        }
        let (verdicts, halt) = deliver_split(target, &items).await;
        let learned = target.learned();
        if !learned.is_empty() {
            store.crm_remember(&sink.name, &learned).await?;
        }
        let mut outcomes = Vec::with_capacity(items.len());
        let now = now_ms();
        let mut pause = None;
        for (item, v) in items.iter().zip(verdicts) {
            let result = match v {
                Some(Verdict::Delivered(links)) => {
                    run.delivered += 1;
                    CrmResult::Delivered { links }
                }
                Some(Verdict::Skipped(reason)) => {
                    run.skipped += 1;
                    CrmResult::Skipped { reason }
                }
                Some(Verdict::Refused(error)) => {
                    run.parked += 1;
                    CrmResult::Park { error }
                }
                Some(Verdict::Failed {
                    error,
                    counts,
                    uncertain,
                }) => {
                    let attempts = item.attempts + i64::from(counts);
                    if counts && attempts >= sink.max_attempts {
                        run.parked += 1;
                    } else {
                        run.retried += 1;
                    }
                    let delay =
                        backoff(item.attempts, sink.retry_initial, sink.retry_max, jitter());
                    CrmResult::Retry {
                        error,
                        at_ms: now + delay.as_millis() as i64,
                        counts,
                        uncertain,
                    }
                }
                // Not tried because the batch halted: back to the queue untouched, after
                // the pause if it was a rate limit.
                None => {
                    let (error, wait) = match &halt {
                        Some(Halt::RateLimited { wait, error }) => (error.clone(), *wait),
                        Some(Halt::Unauthorized(e)) => (e.clone(), Duration::ZERO),
                        _ => ("not tried".to_string(), Duration::ZERO),
                    };
                    run.retried += 1;
                    CrmResult::Retry {
                        error,
                        at_ms: now + wait.as_millis() as i64,
                        counts: false,
                        uncertain: false,
                    }
                }
            };
            outcomes.push(CrmOutcome {
                id: item.id,
                generation: item.generation,
                result,
            });
        }
        store
            .crm_finish(&sink.name, &outcomes, sink.max_attempts)
            .await?;
        match halt {
            Some(Halt::Unauthorized(e)) => {
                run.stopped = Some(e);
                return Ok(());
            }
            Some(Halt::RateLimited { wait, error }) => {
                if wait > opts.max_rate_wait {
                    run.stopped = Some(format!("{error} (asked to wait {} s)", wait.as_secs()));
                    return Ok(());
                }
                pause = Some(wait);
            }
            _ => {}
        }
        if let Some(wait) = pause {
            tracing::info!(sink = %sink.name, wait_ms = wait.as_millis() as u64, "CRM rate limit: pausing");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => {}
            }
        }
    }
}

/// Delivers a batch; a batch refused as a whole is split in halves until the refused item
/// stands alone. `None` for items not tried because of a halt (returned beside).
async fn deliver_split(
    target: &dyn Target,
    items: &[CrmItem],
) -> (Vec<Option<Verdict>>, Option<Halt>) {
    // Items without anything to send are settled here.
    let mut out: Vec<Option<Verdict>> = vec![None; items.len()];
    let mut todo: Vec<Vec<usize>> = Vec::new();
    let live: Vec<usize> = items
        .iter()
        .enumerate()
        .filter_map(|(k, i)| match i.payload {
            CrmPayload::Gone => {
                out[k] = Some(Verdict::Delivered(Vec::new()));
                None
            }
            _ => Some(k),
        })
        .collect();
    if !live.is_empty() {
        todo.push(live);
    }
    while let Some(group) = todo.pop() {
        let batch: Vec<CrmItem> = group.iter().map(|&k| items[k].clone()).collect();
        match target.deliver(&batch).await {
            Ok(verdicts) => {
                for (&k, v) in group.iter().zip(verdicts) {
                    out[k] = Some(v);
                }
            }
            Err(Halt::Refused(e)) if group.len() == 1 => out[group[0]] = Some(Verdict::Refused(e)),
            Err(Halt::Refused(_)) => {
                let (a, b) = group.split_at(group.len() / 2);
                todo.push(b.to_vec());
                todo.push(a.to_vec());
            }
            Err(Halt::Failed { error, uncertain }) => {
                for &k in &group {
                    out[k] = Some(Verdict::Failed {
                        error: error.clone(),
                        counts: true,
                        uncertain,
                    });
                }
            }
            Err(h @ (Halt::Unauthorized(_) | Halt::RateLimited { .. })) => return (out, Some(h)),
        }
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let i = Duration::from_secs(1);
        let m = Duration::from_secs(60);
        assert_eq!(backoff(0, i, m, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(3, i, m, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(20, i, m, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(3, i, m, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(i64::MAX, i, m, 1.0), Duration::from_secs(60));
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
