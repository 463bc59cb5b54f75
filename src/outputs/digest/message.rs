//! The digest as a MIME message: `multipart/alternative` with the plain-text part first
//! and the HTML part second (clients show the last part they can render), both UTF-8 and
//! base64-encoded so no line of data can be read as a header or a MIME boundary.
//!
//! The Message-ID is derived from (recipient, cadence, period start), so a digest sent
//! again after a crash (see `crate::digest`) carries the same id and mail clients can fold
//! the copies.

use super::{Digest, DigestContentError};
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest as _, Sha256};
use std::time::{Duration, UNIX_EPOCH};

/// `<tideline-digest.<hash>@<from domain>>`.
pub fn message_id(d: &Digest, from: &Mailbox) -> String {
    let key = format!(
        "{}\n{}\n{}",
        d.recipient.to_lowercase(),
        d.period.cadence.as_str(),
        d.period.start
    );
    let hash = hex::encode(&Sha256::digest(key.as_bytes())[..12]);
    format!("<tideline-digest.{hash}@{}>", from.email.domain())
}

/// The message to `d.recipient` from `from`, dated `now_ms`.
pub fn build(d: &Digest, from: &Mailbox, now_ms: i64) -> Result<Message, DigestContentError> {
    let address = d
        .recipient
        .parse::<lettre::Address>()
        .map_err(|e| DigestContentError::Message(format!("recipient address: {e}")))?;
    // The display name is config text; control characters go so it stays one header line.
    let name = d
        .recipient_name
        .as_deref()
        .map(|n| crate::outputs::one_line(n, 100));
    let to = Mailbox::new(name, address);
    let part = |ct: ContentType, body: String| {
        SinglePart::builder()
            .header(ct)
            .header(ContentTransferEncoding::Base64)
            .body(body)
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(super::text::subject(d))
        .date(UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64))
        .message_id(Some(message_id(d, from)))
        .multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, super::text::render(d)))
                .singlepart(part(ContentType::TEXT_HTML, super::html::render(d))),
        )
        .map_err(|e| DigestContentError::Message(e.to_string()))
}
