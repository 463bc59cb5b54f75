//! Sending email digests: for each recipient, the period now due (their last local day
//! or week), claimed in the store, built, sent over SMTP with lettre, and marked.
//!
//! Once per (recipient, period), also across restarts and on a fleet: the claim
//! (`Store::claim_digest`, one `INSERT ... ON CONFLICT DO UPDATE ... WHERE` on
//! `digests_sent`) is taken BEFORE the SMTP conversation and marked `sent` after the
//! server accepted the message. Semantics:
//! - a refusal or an unreachable server marks the digest `failed`; the next check (the
//!   daemon's `digest` job, or `tideline digest --send-now`) takes it again;
//! - a sender that crashes after the server accepted the message but before marking it
//!   leaves a `sending` claim; once its lease ([`claim_lease_ms`]) runs out another check
//!   takes it and the digest goes out a second time, with the same Message-ID. This is
//!   at-least-once in that window (one SMTP round trip wide) and exactly once otherwise;
//!   the alternative, never retaking a stale claim, would lose a digest on every crash.
//! - only the latest due period is sent: a digest still unsent when the next one is due
//!   is given up (a stale digest is not worth a second mail).

use crate::config::{Config, DigestRecipient, SmtpConfig, SmtpSecurity};
use crate::outputs::digest::{self as content, DigestContentError, Period};
use crate::store::{DigestClaim, DigestDone, Store, StoreError};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Serialize;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Content(#[from] DigestContentError),
    #[error(
        "no digest recipient `{0}`; fix: use the email of a [[digest.recipient]] in the configuration"
    )]
    UnknownRecipient(String),
    #[error("no [[digest.recipient]] is configured; fix: add one (see config/example.toml)")]
    NoRecipients,
    #[error("no [smtp] server is configured; fix: add an [smtp] section (see config/example.toml)")]
    NoSmtp,
    #[error("smtp: {0}")]
    Smtp(String),
}

/// What one recipient's check did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Sent now; `attempt` > 1 when an earlier attempt failed or a sender crashed.
    Sent { message_id: String, attempt: i64 },
    /// Sent before, or another sender holds a live claim on it.
    AlreadySent,
    /// The server refused it or could not be reached; the next check tries again.
    Failed { error: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    pub recipient: String,
    pub cadence: &'static str,
    pub period_start: String,
    pub period_end: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}..{}: ",
            self.recipient, self.cadence, self.period_start, self.period_end
        )?;
        match &self.outcome {
            Outcome::Sent {
                message_id,
                attempt,
            } => write!(f, "sent {message_id} (attempt {attempt})"),
            Outcome::AlreadySent => write!(f, "already sent"),
            Outcome::Failed { error } => write!(f, "failed: {error}"),
        }
    }
}

/// How long a claim blocks other senders: four SMTP timeouts, at least ten minutes.
pub fn claim_lease_ms(smtp: &SmtpConfig) -> i64 {
    (smtp.timeout.as_millis() as i64 * 4).max(600_000)
}

/// The SMTP transport an `[smtp]` section describes. Nothing is sent yet.
pub fn transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, DigestError> {
    let tls = |host: &str| {
        TlsParameters::new(host.to_string()).map_err(|e| DigestError::Smtp(e.to_string()))
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .timeout(Some(smtp.timeout));
    b = match smtp.security {
        SmtpSecurity::StartTls => b.tls(Tls::Required(tls(&smtp.host)?)),
        SmtpSecurity::Tls => b.tls(Tls::Wrapper(tls(&smtp.host)?)),
        SmtpSecurity::None => b.tls(Tls::None),
    };
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        b = b.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    Ok(b.build())
}

fn from_mailbox(smtp: &SmtpConfig) -> Result<Mailbox, DigestError> {
    smtp.from
        .parse()
        .map_err(|e| DigestError::Smtp(format!("smtp.from: {e}")))
}

/// The recipients a command names (one, or all).
fn recipients<'a>(
    config: &'a Config,
    only: Option<&str>,
) -> Result<Vec<&'a DigestRecipient>, DigestError> {
    match only {
        Some(email) => config
            .digest
            .recipient(email)
            .map(|r| vec![r])
            .ok_or_else(|| DigestError::UnknownRecipient(email.to_string())),
        None if config.digest.recipients.is_empty() => Err(DigestError::NoRecipients),
        None => Ok(config.digest.recipients.iter().collect()),
    }
}

/// The message one recipient would get for the period due at `now_ms` (or `period`),
/// as RFC 5322 bytes (an `.eml` file). Claims and sends nothing.
pub async fn preview(
    store: &dyn Store,
    config: &Config,
    recipient: &str,
    period: Option<Period>,
    now_ms: i64,
) -> Result<Vec<u8>, DigestError> {
    let r = recipients(config, Some(recipient))?[0];
    let smtp = config.smtp.as_ref().ok_or(DigestError::NoSmtp)?;
    let period = period.unwrap_or_else(|| content::due_period(r.schedule, r.time_zone, now_ms));
    let d = content::build(store, config, r, period, now_ms).await?;
    let msg = content::message::build(&d, &from_mailbox(smtp)?, now_ms)?;
    Ok(msg.formatted())
}

/// Sends every due digest not sent yet (one recipient, or all): claim, build, send, mark.
/// An SMTP failure is an [`Outcome::Failed`] of that recipient, not an error of the call.
pub async fn send_due(
    store: &dyn Store,
    config: &Config,
    only: Option<&str>,
    instance: &str,
    now_ms: i64,
) -> Result<Vec<SendReport>, DigestError> {
    let list = recipients(config, only)?;
    let smtp = config.smtp.as_ref().ok_or(DigestError::NoSmtp)?;
    let from = from_mailbox(smtp)?;
    let mailer = transport(smtp)?;
    let mut out = Vec::new();
    for r in list {
        let period = content::due_period(r.schedule, r.time_zone, now_ms);
        let outcome = send_one(
            store, config, smtp, &mailer, &from, r, period, instance, now_ms,
        )
        .await?;
        match &outcome {
            Outcome::Sent {
                message_id,
                attempt,
            } => tracing::info!(
                recipient = %r.email, period = %period.start, cadence = period.cadence.as_str(),
                %message_id, attempt, "Digest sent."
            ),
            Outcome::AlreadySent => tracing::debug!(
                recipient = %r.email, period = %period.start, "Digest already sent."
            ),
            Outcome::Failed { error } => tracing::warn!(
                recipient = %r.email, period = %period.start, %error,
                "Digest not sent; the next check tries again."
            ),
        }
        out.push(SendReport {
            recipient: r.email.clone(),
            cadence: period.cadence.as_str(),
            period_start: period.start.to_string(),
            period_end: period.end.to_string(),
            outcome,
        });
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn send_one(
    store: &dyn Store,
    config: &Config,
    smtp: &SmtpConfig,
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    r: &DigestRecipient,
    period: Period,
    instance: &str,
    now_ms: i64,
) -> Result<Outcome, DigestError> {
    let recipient = r.email.to_lowercase();
    let (start, end) = (period.start.to_string(), period.end.to_string());
    let claim = DigestClaim {
        recipient: &recipient,
        cadence: period.cadence.as_str(),
        period_start: &start,
        period_end: &end,
        instance,
        now_ms,
        lease_ms: claim_lease_ms(smtp),
    };
    let Some(attempt) = store.claim_digest(&claim).await? else {
        return Ok(Outcome::AlreadySent);
    };
    let result: Result<String, String> = async {
        let d = content::build(store, config, r, period, now_ms)
            .await
            .map_err(|e| e.to_string())?;
        let msg = content::message::build(&d, from, now_ms).map_err(|e| e.to_string())?;
        let id = content::message::message_id(&d, from);
        mailer
            .send(msg)
            .await
            .map_err(|e| crate::outputs::one_line(&e.to_string(), 300))?;
        Ok(id)
    }
    .await;
    let done = DigestDone {
        recipient: &recipient,
        cadence: period.cadence.as_str(),
        period_start: &start,
        instance,
        now_ms: crate::store::now_ms().max(now_ms),
        outcome: result.as_deref().map_err(|e| e.as_str()),
    };
    store.finish_digest(&done).await?;
    Ok(match result {
        Ok(message_id) => Outcome::Sent {
            message_id,
            attempt,
        },
        Err(error) => Outcome::Failed { error },
    })
}
