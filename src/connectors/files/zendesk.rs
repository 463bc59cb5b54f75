//! Zendesk exports: the UI CSV export and the JSON forms (account data export, one ticket
//! per line; saved pages of the Incremental Ticket Export API with `users` sideloaded).
//!
//! Field names follow Zendesk's API reference (tickets, users, satisfaction ratings). The
//! CSV column list is not documented by Zendesk, so the preset accepts the usual header
//! spellings and treats `... [list]` custom-field columns, `Store`, `Location`,
//! `Organization` and `Tags` as places that may name a location.

use super::mapping::{Columns, Mapping, json_text};
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The built-in mapping of the Zendesk UI CSV export for a given header, with what a
/// user's mapping adds: its date formats, zone, delimiter and scales, and its `[fields]`
/// (which win over the built-in columns, e.g. for a renamed or localized header).
pub fn csv_mapping_with(header: &[String], user: Option<&Mapping>) -> Mapping {
    csv_mapping(header).with_user(user)
}

/// The built-in mapping of the Zendesk UI CSV export for a given header.
fn csv_mapping(header: &[String]) -> Mapping {
    let mut fields = BTreeMap::new();
    let mut put = |f: Field, names: &[&str]| {
        fields.insert(
            f.as_str().to_string(),
            Columns::Many(names.iter().map(|s| s.to_string()).collect()),
        );
    };
    put(Field::ExternalId, &["Id", "Ticket ID", "ID", "Ticket Id"]);
    put(
        Field::OccurredAt,
        &["Created at", "Created", "Ticket created at", "Created At"],
    );
    put(
        Field::UpdatedAt,
        &["Updated at", "Updated", "Ticket updated at"],
    );
    put(Field::Name, &["Requester", "Requester name"]);
    put(Field::Email, &["Requester email", "Requester e-mail"]);
    put(Field::Phone, &["Requester phone", "Requester phone number"]);
    put(Field::Title, &["Subject"]);
    put(Field::Text, &["Description", "Ticket description"]);
    put(Field::Status, &["Status", "Ticket status"]);
    put(
        Field::Csat,
        &[
            "Satisfaction Score",
            "Satisfaction score",
            "Satisfaction rating",
        ],
    );
    put(
        Field::Language,
        &["Requester language", "Language", "Locale"],
    );
    let location_candidates = header
        .iter()
        .filter(|h| {
            let l = h.trim().to_lowercase();
            l.ends_with("[list]")
                || l.ends_with("[txt]")
                || matches!(
                    l.as_str(),
                    "store" | "location" | "branch" | "organization" | "tags"
                )
        })
        .cloned()
        .collect();
    let mut platform_ids = BTreeMap::new();
    platform_ids.insert("zendesk_user".to_string(), "Requester id".to_string());
    platform_ids.insert("crm".to_string(), "Requester external id".to_string());
    Mapping {
        kind: Some("ticket".into()),
        location_candidates,
        platform_ids,
        fields,
        ..Default::default()
    }
}

/// What a page of the incremental export sideloads: requesters (`include=users`) by user
/// id, and ticket metrics (`include=metric_sets`: reply and resolution minutes, reopens,
/// `solved_at`) by ticket id.
#[derive(Debug, Default)]
pub struct Sideloads {
    pub users: HashMap<i64, Value>,
    pub metric_sets: HashMap<i64, Value>,
}

fn by_key(page: &Value, array: &str, key: &str) -> HashMap<i64, Value> {
    page.get(array)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| u.get(key).and_then(Value::as_i64).map(|id| (id, u.clone())))
                .collect()
        })
        .unwrap_or_default()
}

impl Sideloads {
    pub fn of(page: &Value) -> Sideloads {
        Sideloads {
            users: by_key(page, "users", "id"),
            metric_sets: by_key(page, "metric_sets", "ticket_id"),
        }
    }
}

/// Fills a record from a ticket object and, when known, its requester.
///
/// Accepts the wrapped form `{"ticket": {...}, "requester": {...}}` that the importer keeps
/// as the raw text of page tickets, so a quarantined ticket replays with its requester.
pub fn ticket_record(v: &Value, requester: Option<&Value>, rec: &mut SourceRecord) {
    if let (Some(t), None) = (v.get("ticket"), requester) {
        return ticket_record(t, v.get("requester"), rec);
    }
    let s = |k: &str| v.get(k).and_then(json_text);
    rec.fields.remove(&Field::ExternalId);
    if let Some(id) = s("id") {
        rec.set(Field::ExternalId, "id", id);
    }
    rec.set(Field::Kind, "preset", "ticket");
    if let Some(c) = s("created_at") {
        rec.set(Field::OccurredAt, "created_at", c);
    }
    if let Some(u) = s("updated_at") {
        rec.set(Field::UpdatedAt, "updated_at", u);
    }
    if let Some(t) = s("subject").or_else(|| s("raw_subject")) {
        rec.set(Field::Title, "subject", t);
    }
    if let Some(d) = s("description") {
        rec.set(Field::Text, "description", d);
    }
    if let Some(st) = s("status") {
        rec.set(Field::Status, "status", st);
    }
    if let Some(u) = s("url") {
        rec.set(Field::Url, "url", u);
    }
    if let Some(score) = v
        .get("satisfaction_rating")
        .and_then(|r| r.get("score"))
        .and_then(json_text)
    {
        rec.set(Field::Csat, "satisfaction_rating.score", score);
    }
    if let Some(cf) = v.get("custom_fields").and_then(Value::as_array) {
        rec.location_candidates
            .extend(cf.iter().filter_map(|f| f.get("value").and_then(json_text)));
    }
    if let Some(tags) = v.get("tags").and_then(Value::as_array) {
        rec.location_candidates
            .extend(tags.iter().filter_map(json_text));
    }
    if let Some(rid) = s("requester_id") {
        rec.platform_ids.push(format!("zendesk_user:{rid}"));
    }
    match requester {
        Some(u) => {
            let us = |k: &str| u.get(k).and_then(json_text);
            if let Some(e) = us("email") {
                rec.set(Field::Email, "users[].email", e);
            }
            if let Some(p) = us("phone") {
                rec.set(Field::Phone, "users[].phone", p);
            }
            if let Some(n) = us("name") {
                rec.set(Field::Name, "users[].name", n);
            }
            if let Some(l) = us("locale") {
                rec.set(Field::Language, "users[].locale", l);
            }
            if let Some(x) = us("external_id") {
                rec.platform_ids.push(format!("crm:{x}"));
            }
        }
        None => {
            // The account export has no sideload; the email channel names the sender.
            let from = v.get("via").and_then(|via| via.pointer("/source/from"));
            if let Some(a) = from.and_then(|f| f.get("address")).and_then(json_text) {
                rec.set(Field::Email, "via.source.from.address", a);
            }
            if let Some(n) = from.and_then(|f| f.get("name")).and_then(json_text) {
                rec.set(Field::Name, "via.source.from.name", n);
            }
        }
    }
}

/// Is this JSON value a saved page of the incremental export (rather than one ticket)?
pub fn is_page(v: &Value) -> bool {
    v.get("tickets").is_some_and(Value::is_array)
}
