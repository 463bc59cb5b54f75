//! The webhook sink: each item POSTed as one JSON event, signed the Standard Webhooks way
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`). The id is derived from the event's content, so a retry
//! carries the same id and a receiver can drop the copy; a newer version of the same
//! record gets a new id.
//!
//! Events: `interaction.upserted`, `change.detected`, `interaction.deleted`,
//! `change.deleted`, `customer.erased`.

use super::{Halt, Http, Target, Verdict, halt_for, render};
use crate::config::WebhookSettings;
use crate::store::{CrmEntity, CrmItem, CrmLink, CrmPayload};
use async_trait::async_trait;
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(super) struct Webhook {
    http: Http,
    settings: WebhookSettings,
    key: Vec<u8>,
}

/// The signing key: `whsec_` + base64 as Standard Webhooks writes it, else the bytes.
pub fn signing_key(secret: &str) -> Vec<u8> {
    let s = secret.trim();
    match s.strip_prefix("whsec_") {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_else(|_| s.as_bytes().to_vec()),
        None => s.as_bytes().to_vec(),
    }
}

/// HMAC-SHA256 (RFC 2104): a key longer than the 64-byte block is hashed first.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// `v1,<base64 signature>` of one message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mac = hmac_sha256(key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    )
}

impl Webhook {
    pub fn new(http: Http, settings: WebhookSettings) -> Self {
        let key = signing_key(settings.secret.expose());
        Self {
            http,
            settings,
            key,
        }
    }

    /// The event type and data of an item; `None` when there is nothing to send.
    fn event(item: &CrmItem) -> Option<(&'static str, Value)> {
        let key = item.crm_key.as_str();
        match &item.payload {
            CrmPayload::Interaction {
                interaction,
                person,
            } => Some((
                "interaction.upserted",
                render::interaction_json(key, interaction, person.as_ref()),
            )),
            CrmPayload::Change { change, person } => Some((
                "change.detected",
                render::change_json(key, change, person.as_ref()),
            )),
            CrmPayload::Delete => Some(match item.entity {
                CrmEntity::Interaction => ("interaction.deleted", json!({ "key": key })),
                CrmEntity::Change => ("change.deleted", json!({ "key": key })),
                CrmEntity::Customer => ("customer.erased", json!({ "customer_id": key })),
            }),
            CrmPayload::Gone => None,
        }
    }

    fn links(item: &CrmItem) -> Vec<CrmLink> {
        let mut links = vec![CrmLink {
            entity: item.entity,
            crm_key: item.crm_key.clone(),
            customer_id: None,
            remote_id: None,
            created: true,
        }];
        let person = match &item.payload {
            CrmPayload::Interaction { person, .. } | CrmPayload::Change { person, .. } => {
                person.as_ref()
            }
            _ => None,
        };
        if let Some(p) = person {
            links[0].customer_id = Some(p.customer_id.clone());
            // The receiver knows the person from now on: an erasure tells it.
            links.push(CrmLink {
                entity: CrmEntity::Customer,
                crm_key: p.customer_id.clone(),
                customer_id: Some(p.customer_id.clone()),
                remote_id: None,
                created: true,
            });
        }
        links
    }
}

#[async_trait]
impl Target for Webhook {
    async fn deliver(&self, items: &[CrmItem]) -> Result<Vec<Verdict>, Halt> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Some((kind, data)) = Self::event(item) else {
                out.push(Verdict::Delivered(Vec::new()));
                continue;
            };
            let digest = {
                let mut h = Sha256::new();
                h.update(kind.as_bytes());
                h.update(data.to_string().as_bytes());
                hex::encode(&h.finalize()[..12])
            };
            let id = format!(
                "msg_{}_{digest}",
                &item.crm_key[..item.crm_key.len().min(16)]
            );
            let ts = chrono::Utc::now().timestamp();
            let body = json!({
                "type": kind,
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": data,
            })
            .to_string();
            let req = self
                .http
                .client
                .post(&self.settings.url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sign(&self.key, &id, ts, &body))
                .body(body);
            let answer = match self.http.send(req).await {
                Ok(a) => a,
                Err(Halt::Failed { error, uncertain }) => {
                    out.push(Verdict::Failed {
                        error: format!("webhook: {error}"),
                        counts: true,
                        uncertain,
                    });
                    continue;
                }
                Err(h) => return Err(h),
            };
            let v = if (200..300).contains(&answer.status) {
                Verdict::Delivered(Self::links(item))
            } else {
                match halt_for(&answer, "the webhook") {
                    Halt::Failed { error, uncertain } => Verdict::Failed {
                        error,
                        counts: true,
                        uncertain,
                    },
                    // A receiver that refuses one event (410 Gone, 400) refuses that event.
                    Halt::Refused(e) => Verdict::Refused(e),
                    // The batch is one event (batch_size 1): the runner pauses or stops.
                    h @ (Halt::Unauthorized(_) | Halt::RateLimited { .. }) => return Err(h),
                }
            };
            out.push(v);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The worked example of the Standard Webhooks specification.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
