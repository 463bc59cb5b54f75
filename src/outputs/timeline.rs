//! One customer's interactions across sources, in time order, with their scores.

use super::{one_line, rfc3339};
use crate::model::{Identity, IdentityKind};
use crate::pipeline::identify::{normalize_email, normalize_phone};
use crate::store::{Store, StoreError, StoredInteraction};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error(
        "no customer is known by `{0}`; fix: give an email, a phone number (+49...), a platform id (zendesk_user:42), a record without contact details (item:SOURCE:EXTERNAL_ID) or a customer id (cus_...)"
    )]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize)]
pub struct IdentityOut {
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct InteractionOut {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub external_id: String,
    pub occurred_at: String,
    pub location: Option<String>,
    pub text: Option<String>,
    pub language: Option<String>,
    pub stars: Option<f64>,
    pub nps: Option<i64>,
    pub csat: Option<f64>,
    pub ces: Option<f64>,
    pub sentiment: Option<f64>,
    /// Not part of the JSON contract; used for display.
    #[serde(skip)]
    pub csat_scale: Option<String>,
}

/// A change point or incident of the customer, in the timeline.
#[derive(Debug, Serialize)]
pub struct ChangeOut {
    pub occurred_at: String,
    /// `stars`, `sentiment`, `nps` or `outcome`.
    pub signal: String,
    /// `confirmed`, `watch` or `incident`.
    pub status: String,
    pub direction: String,
    pub before: f64,
    pub after: f64,
    pub confidence: f64,
    /// Ids of the interactions that moved it, strongest first.
    pub evidence: Vec<i64>,
}

/// The timeline as `tideline timeline --format json` prints it.
#[derive(Debug, Serialize)]
pub struct Timeline {
    pub customer_id: String,
    pub identities: Vec<IdentityOut>,
    pub interactions: Vec<InteractionOut>,
    /// The customer's change points and incidents, oldest first.
    pub changes: Vec<ChangeOut>,
    #[serde(skip)]
    pub stored_changes: Vec<crate::store::StoredChange>,
}

/// The identities a user's argument may mean, most specific first.
pub fn candidates(arg: &str, countries: &[String]) -> Vec<Identity> {
    let a = arg.trim();
    let mut out = Vec::new();
    if a.contains('@') {
        if let Some(e) = normalize_email(a) {
            out.push(Identity::new(IdentityKind::Email, e));
        }
        return out;
    }
    if let Some(item) = a.strip_prefix("item:")
        && item.contains(':')
    {
        // One record's own anchor (a review signed with a display name only).
        out.push(Identity::new(IdentityKind::Item, item));
    }
    if a.contains(':') {
        out.push(Identity::new(IdentityKind::Platform, a));
    }
    if let Some(p) = normalize_phone(a, None) {
        out.push(Identity::new(IdentityKind::Phone, p));
    }
    for c in countries {
        if let Some(p) = normalize_phone(a, Some(c)) {
            let id = Identity::new(IdentityKind::Phone, p);
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// The customer `arg` names: a `cus_` id, an email, a phone or a platform id.
pub async fn resolve(
    store: &dyn Store,
    arg: &str,
    countries: &[String],
) -> Result<String, TimelineError> {
    let mut customer_id = None;
    if arg.trim().starts_with("cus_") {
        customer_id = store.customer(arg.trim()).await?.map(|c| c.id);
    }
    if customer_id.is_none() {
        for id in candidates(arg, countries) {
            if let Some(c) = store.customer_by_identity(&id).await? {
                customer_id = Some(c);
                break;
            }
        }
    }
    customer_id.ok_or_else(|| TimelineError::NotFound(arg.to_string()))
}

/// Finds the customer `arg` names and reads their timeline.
pub async fn load(
    store: &dyn Store,
    arg: &str,
    countries: &[String],
) -> Result<Timeline, TimelineError> {
    let customer_id = resolve(store, arg, countries).await?;
    for_customer(store, &customer_id)
        .await?
        .ok_or_else(|| TimelineError::NotFound(arg.to_string()))
}

/// The timeline of a customer id (`None` when no customer has it; a merged id reads the
/// customer it was merged into).
pub async fn for_customer(
    store: &dyn Store,
    customer_id: &str,
) -> Result<Option<Timeline>, StoreError> {
    let Some(customer) = store.customer(customer_id).await? else {
        return Ok(None);
    };
    let items = store.timeline(&customer.id).await?;
    let mut stored_changes = store
        .changes(&crate::store::ChangeFilter {
            entity: Some(("customer".into(), customer.id.clone())),
            ..Default::default()
        })
        .await?;
    stored_changes.reverse();
    let changes = stored_changes
        .iter()
        .map(|c| {
            let c = &c.change;
            ChangeOut {
                occurred_at: rfc3339(c.occurred_at_ms),
                signal: c.signal.clone(),
                status: c.status.clone(),
                direction: c.direction.clone(),
                before: c.before,
                after: c.after,
                confidence: c.confidence,
                evidence: c.evidence["interactions"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|i| i["id"].as_i64()).collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    Ok(Some(Timeline {
        changes,
        stored_changes,
        customer_id: customer.id,
        identities: customer
            .identities
            .into_iter()
            .map(|i| IdentityOut {
                kind: i.kind.as_str().to_string(),
                value: i.value,
            })
            .collect(),
        interactions: items.into_iter().map(InteractionOut::from).collect(),
    }))
}

impl From<StoredInteraction> for InteractionOut {
    fn from(s: StoredInteraction) -> Self {
        let i = s.interaction;
        InteractionOut {
            id: s.id,
            source: i.source,
            kind: i.kind.as_str().to_string(),
            external_id: i.external_id,
            occurred_at: rfc3339(i.occurred_at_ms),
            location: i.location_id,
            text: i.text,
            language: i.language,
            stars: i.stars,
            nps: i.nps,
            csat_scale: i.csat.as_ref().map(|c| c.scale.clone()),
            csat: i.csat.map(|c| c.value),
            ces: i.ces.map(|c| c.value),
            sentiment: i.sentiment.map(|s| s.score),
        }
    }
}

/// A fixed-width table for a terminal.
pub fn render_table(t: &Timeline) -> String {
    let mut out = format!("Customer {}\n", t.customer_id);
    for i in &t.identities {
        out.push_str(&format!("  {:<8} {}\n", i.kind, one_line(&i.value, 120)));
    }
    out.push_str(&format!(
        "\n{:<20} {:<10} {:<16} {:<18} {:<5} {:<14} {:>6}  {}\n",
        "when (UTC)", "source", "kind", "location", "lang", "score", "sent.", "text"
    ));
    for i in &t.interactions {
        let score = match (i.stars, i.nps, i.csat, i.ces) {
            (Some(s), ..) => format!("{s:.0} stars"),
            (_, Some(n), ..) => format!("NPS {n}"),
            (_, _, Some(c), _) if i.csat_scale.as_deref() == Some("good/bad") => {
                if c >= 1.0 {
                    "CSAT good".into()
                } else {
                    "CSAT bad".into()
                }
            }
            (_, _, Some(c), _) => format!("CSAT {c}"),
            (.., Some(c)) => format!("CES {c}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<20} {:<10} {:<16} {:<18} {:<5} {:<14} {:>6}  {}\n",
            i.occurred_at.replace('T', " ").trim_end_matches('Z'),
            one_line(&i.source, 10),
            i.kind,
            one_line(i.location.as_deref().unwrap_or("-"), 18),
            i.language.as_deref().unwrap_or("-"),
            score,
            i.sentiment.map(|s| format!("{s:+.2}")).unwrap_or_default(),
            one_line(i.text.as_deref().unwrap_or(""), 70),
        ));
    }
    if !t.stored_changes.is_empty() {
        out.push_str("\nChanges and incidents\n");
        out.push_str(&super::changes::render_table(&t.stored_changes));
    }
    out
}
