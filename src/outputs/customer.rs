//! `tideline customers show`: who a customer is, where they spoke, what changed.

use super::timeline::{self, TimelineError};
use super::{one_line, rfc3339};
use crate::model::Identity;
use crate::store::{ChangeFilter, LinkSuggestion, MergeRecord, Store};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct CustomerView {
    pub customer_id: String,
    pub display_name: Option<String>,
    /// `kind:value` of every identity.
    pub identities: Vec<String>,
    pub interactions: usize,
    /// Interactions per source.
    pub sources: BTreeMap<String, usize>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub changes: usize,
    pub incidents: usize,
    /// Open link suggestions that involve one of their identities.
    pub suggestions: Vec<LinkSuggestion>,
    /// How they became one customer: every merge with its evidence.
    pub merges: Vec<MergeRecord>,
}

/// The stored identity an argument names (an email, a phone, a platform id).
pub async fn known_identity(
    store: &dyn Store,
    arg: &str,
    countries: &[String],
) -> Result<Identity, TimelineError> {
    for id in timeline::candidates(arg, countries) {
        if store.customer_by_identity(&id).await?.is_some() {
            return Ok(id);
        }
    }
    Err(TimelineError::NotFound(arg.to_string()))
}

pub async fn show(
    store: &dyn Store,
    arg: &str,
    countries: &[String],
) -> Result<CustomerView, TimelineError> {
    let id = timeline::resolve(store, arg, countries).await?;
    let customer = store
        .customer(&id)
        .await?
        .ok_or_else(|| TimelineError::NotFound(arg.to_string()))?;
    let items = store.timeline(&customer.id).await?;
    let mut sources = BTreeMap::new();
    for i in &items {
        *sources.entry(i.interaction.source.clone()).or_insert(0) += 1;
    }
    let changes = store
        .changes(&ChangeFilter {
            entity: Some(("customer".into(), customer.id.clone())),
            ..Default::default()
        })
        .await?;
    let keys: Vec<String> = customer.identities.iter().map(|i| i.key()).collect();
    let suggestions = store
        .link_suggestions()
        .await?
        .into_iter()
        .filter(|s| keys.contains(&s.shared.key()) || keys.contains(&s.other.key()))
        .collect();
    Ok(CustomerView {
        display_name: customer.display_name,
        identities: keys,
        interactions: items.len(),
        first_seen: items.first().map(|i| rfc3339(i.interaction.occurred_at_ms)),
        last_seen: items.last().map(|i| rfc3339(i.interaction.occurred_at_ms)),
        sources,
        changes: changes
            .iter()
            .filter(|c| c.change.status != "incident")
            .count(),
        incidents: changes
            .iter()
            .filter(|c| c.change.status == "incident")
            .count(),
        suggestions,
        merges: store.merges_of(&customer.id).await?,
        customer_id: customer.id,
    })
}

/// A few lines for a terminal; data-born text on one line without control characters.
pub fn render_table(v: &CustomerView) -> String {
    let mut out = format!(
        "Customer {} ({})\n",
        v.customer_id,
        one_line(v.display_name.as_deref().unwrap_or("no name"), 60)
    );
    for i in &v.identities {
        out.push_str(&format!("  {}\n", one_line(i, 120)));
    }
    let per: Vec<String> = v
        .sources
        .iter()
        .map(|(s, n)| format!("{} {n}", one_line(s, 30)))
        .collect();
    out.push_str(&format!(
        "{} interactions ({}), {} to {}\n{} change(s), {} incident(s); {} open link suggestion(s)\n",
        v.interactions,
        per.join(", "),
        v.first_seen.as_deref().unwrap_or("-"),
        v.last_seen.as_deref().unwrap_or("-"),
        v.changes,
        v.incidents,
        v.suggestions.len()
    ));
    for m in &v.merges {
        let via = match (&m.source, &m.external_id) {
            (Some(s), Some(e)) => format!(" in {}:{}", one_line(s, 30), one_line(e, 40)),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  merged {} into {} ({}, {}{via})\n",
            m.from_customer,
            m.into_customer,
            m.kind,
            one_line(m.identity.as_deref().unwrap_or("-"), 80)
        ));
    }
    out
}

/// `tideline customers suggestions` for a terminal: scored (display-name) suggestions
/// first, highest score first, each with its evidence; data-born text on one line.
pub fn render_suggestions(items: &[LinkSuggestion]) -> String {
    let mut out = String::new();
    for s in items {
        let score = s.score.map_or_else(String::new, |x| format!("[{x:.2}] "));
        out.push_str(&format!(
            "{score}{} (customer {}) <-> {} (customer {}): {}\n",
            one_line(&s.shared.key(), 120),
            s.shared_customer.as_deref().unwrap_or("-"),
            one_line(&s.other.key(), 120),
            s.other_customer.as_deref().unwrap_or("-"),
            one_line(&s.reason, 160)
        ));
        let Some(e) = &s.evidence else { continue };
        for side in ["a", "b"] {
            let v = &e[side];
            let text = |k: &str| one_line(v[k].as_str().unwrap_or("-"), 60);
            out.push_str(&format!(
                "    {} {}:{} \"{}\" at {} on {}\n",
                text("kind"),
                text("source"),
                text("external_id"),
                text("name"),
                text("location_id"),
                v["occurred_at_ms"]
                    .as_i64()
                    .map_or_else(|| "-".into(), rfc3339)
            ));
        }
        let gap_h = e["gap_ms"].as_i64().unwrap_or(0) as f64 / 3_600_000.0;
        out.push_str(&format!(
            "    {:.1} h apart; {} customers carry this name\n",
            gap_h,
            e["customers_with_name"].as_u64().unwrap_or(0)
        ));
    }
    out.push_str(&format!("{} open suggestion(s)\n", items.len()));
    out
}

/// `tideline customers blocked` for a terminal.
pub fn render_blocked(items: &[crate::store::BlockedIdentity]) -> String {
    let mut out = String::new();
    for b in items {
        out.push_str(&format!(
            "{} {}: {} customer(s), {} record(s), since {}: {}\n",
            b.status,
            one_line(&b.identity, 120),
            b.customers,
            b.records,
            rfc3339(b.blocked_at_ms),
            one_line(&b.reason, 200)
        ));
    }
    out.push_str(&format!(
        "{} identit(ies) blocked automatically\n",
        items.iter().filter(|b| b.status == "blocked").count()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IdentityKind;

    #[test]
    fn suggestions_show_their_score_and_evidence_on_single_lines() {
        let side = |id: &str, name: &str, at: i64| {
            serde_json::json!({"kind": "ticket", "source": "zendesk", "external_id": id,
                "name": name, "location_id": "berlin-mitte", "occurred_at_ms": at})
        };
        let s = LinkSuggestion {
            shared: Identity::new(IdentityKind::Email, "anna@x.org"),
            other: Identity::new(IdentityKind::Email, "anna@work.example"),
            reason: "display_name".into(),
            first_seen_ms: 0,
            shared_customer: Some("cus_a".into()),
            other_customer: Some("cus_b".into()),
            score: Some(0.8123),
            evidence: Some(serde_json::json!({
                "a": side("t1", "Anna\nMüller\u{1b}[31m", 0),
                "b": side("s1", "ANNA MULLER", 7_200_000),
                "gap_ms": 7_200_000, "customers_with_name": 2,
            })),
        };
        let out = render_suggestions(&[s]);
        assert!(
            out.starts_with("[0.81] email:anna@x.org (customer cus_a) <-> "),
            "{out}"
        );
        assert!(out.contains("ticket zendesk:t1 \"Anna Müller"), "{out}");
        assert!(
            out.contains("2.0 h apart; 2 customers carry this name"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'), "{out}");
        assert_eq!(out.lines().count(), 5, "{out}");
    }
}
