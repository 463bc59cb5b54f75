//! What the store keeps for CRM sync: the outbox items a sink still has to receive, the
//! links to what it already holds, and the results a delivery reports back.
//!
//! The outbox is written in the same transaction as the data it describes
//! (`write_batch`, `save_analysis`, `erase`); `crm_lease` hands items to one worker at a
//! time with the data as it is now; `crm_finish` removes what was delivered, backs off what
//! failed and parks what the CRM refused.

use super::{StoredChange, StoredInteraction};
use serde::Serialize;

/// The key a CRM knows one of our records by: stable across re-imports and across
/// databases (a fresh import of the same exports gives the same keys), free of personal
/// data, 32 hex characters.
pub fn crm_key(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The key of an interaction: its source and the source's id for it.
pub fn interaction_key(source: &str, external_id: &str) -> String {
    crm_key(&["interaction", source, external_id])
}

/// The key of a change: its series and position (stable when a series is rebuilt).
pub fn change_key(series: &str, index: i64) -> String {
    crm_key(&["change", series, &index.to_string()])
}

/// Which of our records an outbox item or a link is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmEntity {
    Interaction,
    Change,
    Customer,
}

impl CrmEntity {
    pub fn as_str(self) -> &'static str {
        match self {
            CrmEntity::Interaction => "interaction",
            CrmEntity::Change => "change",
            CrmEntity::Customer => "customer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "interaction" => Some(CrmEntity::Interaction),
            "change" => Some(CrmEntity::Change),
            "customer" => Some(CrmEntity::Customer),
            _ => None,
        }
    }
}

/// The person an item belongs to, as a CRM contact needs them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrmPerson {
    pub customer_id: String,
    pub display_name: Option<String>,
    /// The customer's email (the smallest when they have several); HubSpot and Salesforce
    /// find or create the contact by it.
    pub email: Option<String>,
    /// The contact this sink already knows for the customer.
    pub contact_id: Option<String>,
}

/// What an outbox item carries to the sink, read when it is leased.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CrmPayload {
    Interaction {
        interaction: Box<StoredInteraction>,
        person: Option<CrmPerson>,
    },
    Change {
        change: Box<StoredChange>,
        /// For a customer's series.
        person: Option<CrmPerson>,
    },
    /// Remove what the sink holds under the item's key (an erasure, or a change that a
    /// rebuilt series no longer has).
    Delete,
    /// The record is gone and the sink never received it: nothing to do.
    Gone,
}

/// One outbox item handed to a worker.
#[derive(Debug, Clone, Serialize)]
pub struct CrmItem {
    pub id: i64,
    pub generation: i64,
    pub entity: CrmEntity,
    /// The key the CRM knows the record by ([`interaction_key`], [`change_key`], or the
    /// customer id).
    pub crm_key: String,
    /// The CRM's id of the record, when a delivery told us.
    pub remote_id: Option<String>,
    /// Failed deliveries so far.
    pub attempts: i64,
    /// An earlier delivery may have reached the CRM without an answer.
    pub uncertain: bool,
    pub payload: CrmPayload,
}

/// A record the sink now holds (or a contact it found), to remember.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmLink {
    pub entity: CrmEntity,
    pub crm_key: String,
    pub customer_id: Option<String>,
    pub remote_id: Option<String>,
    /// Tideline created it (deleted on erasure) rather than found it.
    pub created: bool,
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq)]
pub enum CrmResult {
    /// Delivered; the links to remember (the record, a contact found or created).
    Delivered { links: Vec<CrmLink> },
    /// This CRM cannot take it (a contact needs an email); counted, not retried.
    Skipped { reason: String },
    /// Try again at `at_ms`. `counts`: a failure that counts towards parking (a 5xx, a
    /// timeout), not a rate limit. `uncertain`: the CRM may have applied it.
    Retry {
        error: String,
        at_ms: i64,
        counts: bool,
        uncertain: bool,
    },
    /// The CRM refused it for good: park it for an operator.
    Park { error: String },
}

#[derive(Debug, Clone)]
pub struct CrmOutcome {
    pub id: i64,
    pub generation: i64,
    pub result: CrmResult,
}

/// One sink's outbox as `tideline crm status` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrmSinkStatus {
    pub sink: String,
    pub kind: String,
    pub registered_at_ms: i64,
    /// Items waiting (not parked), of which `due` could go now.
    pub pending: i64,
    pub due: i64,
    pub parked: i64,
    /// Records the sink holds of ours.
    pub links: i64,
    pub delivered: i64,
    pub skipped: i64,
    pub oldest_pending_ms: Option<i64>,
    pub next_attempt_ms: Option<i64>,
    pub last_run_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// A parked item as `tideline crm parked` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CrmParked {
    pub id: i64,
    pub sink: String,
    pub entity: String,
    pub entity_key: String,
    pub op: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub parked_at_ms: i64,
}

/// An error as kept in the outbox: one line, at most 2,000 characters.
pub(crate) fn crm_error_line(e: &str) -> String {
    let line: String = e
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(2000)
        .collect();
    line
}
