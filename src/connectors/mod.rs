//! Connectors fetch feedback from where it lives. The contract:
//!
//! - A connector MUST NOT write the store. It yields source records and per-record
//!   rejects; the runner ([`crate::ingest`]) normalizes them and commits a batch's
//!   interactions, rejects and progress in one transaction.
//! - A malformed record MUST come back as a reject naming its place (file and line, or
//!   page and index), the field and the expected form; it never fails the batch.
//! - A connector MUST keep the record as read (the raw payload) so it can be replayed.
//!
//! - An API connector fetches one page per call, from the cursor the runner hands it
//!   (the one stored with the last committed page), and returns the page's records with
//!   the cursor that follows it. The runner ([`crate::sync`]) commits both in one
//!   transaction, so a crash or a SIGTERM leaves a page either stored with its cursor or
//!   absent, and the next run resumes from the cursor.
//!
//! Modules: [`files`] (export files and presets), [`http`] (what every API connector does
//! with HTTP), [`zendesk`] (the incremental ticket export), [`delighted`] (survey
//! responses by `updated_since`), [`freshdesk`] (tickets and satisfaction ratings by
//! `updated_since`, past the 300-page cap), [`helpscout`] (conversations with an OAuth2
//! client-credentials token), [`window`] (their shared high-water cursor), [`intercom`]
//! (conversations by `updated_at` search), [`typeform`] (form responses by `after` token),
//! [`google`] (Business Profile reviews, newest first), the social mention sources
//! [`bluesky`], [`mastodon`], [`reddit`] and [`x`] (their shared query cursor and pacing in
//! [`social`]), RSS/Atom [`feed`]s (conditional GETs, a per-feed high-water mark) and
//! [`jsonld`] (schema.org reviews on the business's own pages, behind [`robots`]: RFC
//! 9309). Adding a connector is one module plus one arm of
//! [`crate::config::ConnectorKind`] and of [`build`].

pub mod bluesky;
pub mod delighted;
pub mod feed;
pub mod files;
pub mod freshdesk;
pub mod google;
pub mod helpscout;
pub mod http;
pub mod intercom;
pub mod jsonld;
pub mod mastodon;
pub mod places;
pub mod reddit;
pub mod robots;
pub mod social;
pub mod typeform;
pub mod window;
pub mod x;
pub mod zendesk;

use crate::config::{ConnectorConfig, ConnectorKind};
use crate::pipeline::normalize::{RowError, SourceRecord};
use files::Preset;
use http::FetchContext;

/// Why a fetch failed. Never carries credentials.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    #[error("{request}: {message}")]
    Network { request: String, message: String },
    #[error(
        "{request}: the server refused the credentials (HTTP {status}): {message}; fix: check the token and its scopes"
    )]
    Auth {
        request: String,
        status: u16,
        message: String,
    },
    #[error("{request}: rate limited (HTTP 429)")]
    RateLimited { request: String },
    #[error("{request}: HTTP {status}: {message}")]
    Http {
        request: String,
        status: u16,
        message: String,
    },
    #[error(
        "{request}: the server asks to wait {secs} s, more than max_wait_secs ({max_secs} s); the next run resumes from the cursor"
    )]
    WaitTooLong {
        request: String,
        secs: u64,
        max_secs: u64,
    },
    #[error("{request}: the response is not what the vendor documents: {message}")]
    Payload { request: String, message: String },
    #[error("stopped")]
    Stopped,
}

impl ConnectorError {
    /// A refused credential names the configuration keys of its secrets (never their
    /// values), so the operator knows which file or variable to fix. The runner applies
    /// it to every connector's errors ([`crate::config::ConnectorKind::secret_keys`]); an
    /// error that names its secret already is left as it is.
    pub fn naming_secrets(self, keys: &[&str]) -> ConnectorError {
        match self {
            ConnectorError::Auth {
                request,
                status,
                message,
            } if !keys.is_empty() && !message.contains("[the secret") => {
                let named = match keys {
                    [key] => format!("[the secret is `{key}`: `{key}_file` or `{key}_env`]"),
                    _ => format!(
                        "[the secrets are {}: each as `<key>_file` or `<key>_env`]",
                        keys.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                };
                ConnectorError::Auth {
                    request,
                    status,
                    message: format!("{message} {named}"),
                }
            }
            other => other,
        }
    }
}

/// One fetched page.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<SourceRecord>,
    /// Items of the page that could not be read (kept for the quarantine).
    pub rejects: Vec<RowError>,
    /// The cursor to store with this page; `None`: keep the stored one.
    pub cursor: Option<String>,
    /// More pages are waiting now (`false`: the end of the stream for this run).
    pub more: bool,
}

/// A source that is fetched page by page.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The preset that reads this connector's raw records again (quarantine replay).
    fn preset(&self) -> Preset;

    /// Fetches the page after `cursor` (`None`: the first sync).
    async fn fetch(&self, cursor: Option<&str>, cx: &FetchContext) -> Result<Page, ConnectorError>;
}

/// The connector a configuration describes.
pub fn build(config: &ConnectorConfig) -> Result<Box<dyn Connector>, ConnectorError> {
    match &config.kind {
        ConnectorKind::Zendesk(z) => Ok(Box::new(zendesk::Zendesk::new(z, &config.http)?)),
        ConnectorKind::Delighted(d) => Ok(Box::new(delighted::Delighted::new(d, &config.http)?)),
        ConnectorKind::Google(g) => Ok(Box::new(google::Google::new(g, &config.http)?)),
        ConnectorKind::Freshdesk(f) => Ok(Box::new(freshdesk::Freshdesk::new(f, &config.http)?)),
        ConnectorKind::Helpscout(h) => Ok(Box::new(helpscout::Helpscout::new(h, &config.http)?)),
        ConnectorKind::Intercom(i) => Ok(Box::new(intercom::Intercom::new(i, &config.http)?)),
        ConnectorKind::Typeform(t) => Ok(Box::new(typeform::Typeform::new(t, &config.http)?)),
        ConnectorKind::Bluesky(b) => Ok(Box::new(bluesky::Bluesky::new(b, &config.http)?)),
        ConnectorKind::Mastodon(m) => Ok(Box::new(mastodon::Mastodon::new(m, &config.http)?)),
        ConnectorKind::Reddit(r) => Ok(Box::new(reddit::Reddit::new(r, &config.http)?)),
        ConnectorKind::X(x) => Ok(Box::new(x::X::new(x, &config.http)?)),
        ConnectorKind::Feed(f) => Ok(Box::new(feed::Feed::new(f, &config.http)?)),
        ConnectorKind::Jsonld(j) => Ok(Box::new(jsonld::Jsonld::new(j, &config.http)?)),
    }
}
