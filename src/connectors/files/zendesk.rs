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

/// How a satisfaction rating's comment is set apart in a ticket's text.
pub const RATING_PREFIX: &str = "Satisfaction comment: ";

/// Fills a record from a ticket object and, when known, its requester.
///
/// Accepts the wrapped form `{"ticket": {...}, "requester": {...}}` that the importer keeps
/// as the raw text of page tickets, so a quarantined ticket replays with its requester.
pub fn ticket_record(v: &Value, requester: Option<&Value>, rec: &mut SourceRecord) {
    if let (Some(t), None) = (v.get("ticket"), requester) {
        ticket_record(t, v.get("requester"), rec);
        // The newer CSAT is read from its survey responses; the ticket's good/bad is
        // Zendesk's reduction of the same answer and would count it twice.
        if v.get("csat").and_then(Value::as_str) == Some("survey_responses") {
            rec.fields.remove(&Field::Csat);
        }
        return;
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
    // The legacy rating's comment (and a bad rating's reason) is the customer's own
    // verdict on the ticket: it joins the text that is scored.
    let rating = v.get("satisfaction_rating");
    let said: Vec<String> = ["comment", "reason"]
        .iter()
        .filter_map(|k| rating.and_then(|r| r.get(*k)).and_then(json_text))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && t != "No reason provided")
        .collect();
    if !said.is_empty() {
        let remark = format!("{RATING_PREFIX}{}", said.join(" / "));
        let text = match rec.fields.get(&Field::Text) {
            Some(t) => format!("{t}\n\n{remark}"),
            None => remark,
        };
        rec.set(Field::Text, "satisfaction_rating.comment", text);
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

/// Fills a record from any item the Zendesk connector keeps: a ticket (bare or wrapped
/// with its sideloads), a comment (`{"comment": ..., "ticket": ..., "author": ...}`) or a
/// newer-CSAT survey response (`{"survey_response": ..., "scale": ...}`).
pub fn item_record(v: &Value, rec: &mut SourceRecord) {
    if v.get("comment").is_some_and(Value::is_object) {
        comment_record(v, rec);
    } else if v.get("survey_response").is_some_and(Value::is_object) {
        survey_response_record(v, rec);
    } else {
        ticket_record(v, None, rec);
    }
}

/// Is the comment's author the customer? The sideloaded user's role says so; without
/// it, the author being the ticket's requester does.
pub fn comment_by_customer(comment: &Value, ticket: &Value, author: Option<&Value>) -> bool {
    match author.and_then(|a| a.get("role")).and_then(Value::as_str) {
        Some(role) => role == "end-user",
        None => {
            let author_id = comment.get("author_id").and_then(Value::as_i64);
            author_id.is_some() && author_id == ticket.get("requester_id").and_then(Value::as_i64)
        }
    }
}

/// A public ticket comment (`GET /api/v2/tickets/{id}/comments?include=users`), kept as
/// `{"comment": ..., "ticket": {id, requester_id, tags, custom_fields}, "author": user}`.
/// The customer's comments are `ticket_comment` interactions of that customer (they count
/// as contacts on the issue); an agent's are `reply` interactions of the ticket.
pub fn comment_record(v: &Value, rec: &mut SourceRecord) {
    let Some(c) = v.get("comment") else { return };
    let ticket = v.get("ticket").unwrap_or(&Value::Null);
    let author = v.get("author").filter(|a| a.is_object());
    let ticket_id = ticket.get("id").and_then(json_text);
    let comment_id = c.get("id").and_then(json_text);
    if let (Some(t), Some(id)) = (&ticket_id, &comment_id) {
        rec.set(Field::ExternalId, "comment.id", format!("{t}#comment-{id}"));
    }
    if let Some(t) = &ticket_id {
        rec.set(Field::Parent, "ticket.id", t.clone());
    }
    let customer = comment_by_customer(c, ticket, author);
    rec.set(
        Field::Kind,
        "author.role",
        if customer { "ticket_comment" } else { "reply" },
    );
    if let Some(at) = c.get("created_at").and_then(json_text) {
        rec.set(Field::OccurredAt, "comment.created_at", at);
    }
    let body = c
        .get("plain_body")
        .and_then(json_text)
        .or_else(|| c.get("body").and_then(json_text));
    if let Some(b) = body {
        rec.set(Field::Text, "comment.plain_body", b);
    }
    if let Some(tags) = ticket.get("tags").and_then(Value::as_array) {
        rec.location_candidates
            .extend(tags.iter().filter_map(json_text));
    }
    if let Some(cf) = ticket.get("custom_fields").and_then(Value::as_array) {
        rec.location_candidates
            .extend(cf.iter().filter_map(|f| f.get("value").and_then(json_text)));
    }
    if !customer {
        return; // an agent is not a customer: no identity
    }
    if let Some(a) = c.get("author_id").and_then(json_text) {
        rec.platform_ids.push(format!("zendesk_user:{a}"));
    }
    if let Some(u) = author {
        let us = |k: &str| u.get(k).and_then(json_text);
        if let Some(e) = us("email") {
            rec.set(Field::Email, "author.email", e);
        }
        if let Some(p) = us("phone") {
            rec.set(Field::Phone, "author.phone", p);
        }
        if let Some(n) = us("name") {
            rec.set(Field::Name, "author.name", n);
        }
        if let Some(x) = us("external_id") {
            rec.platform_ids.push(format!("crm:{x}"));
        }
    }
}

/// The ticket id a survey response is about (`subject_zrns: ["zen:ticket:99"]`).
pub fn survey_response_ticket(r: &Value) -> Option<String> {
    let zrns = r.get("subject_zrns").and_then(Value::as_array)?;
    zrns.iter()
        .filter_map(Value::as_str)
        .find_map(|z| z.strip_prefix("zen:ticket:").map(str::to_string))
}

/// The newest time an answer of the response was given (ISO-8601), if any.
pub fn survey_response_time(r: &Value) -> Option<String> {
    r.get("answers")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|a| {
            a.get("updated_at")
                .or_else(|| a.get("created_at"))
                .and_then(Value::as_str)
        })
        .max()
        .map(str::to_string)
}

/// A newer-CSAT survey response (`GET /api/v2/guide/survey_responses`), kept as
/// `{"survey_response": ..., "scale": "1-5"}`: the rating answer (an answer carrying a
/// numeric `rating`) on the declared scale, the open-ended answer as the text, the
/// responder as the customer, the ticket as the parent.
pub fn survey_response_record(v: &Value, rec: &mut SourceRecord) {
    let Some(r) = v.get("survey_response") else {
        return;
    };
    if let Some(id) = r.get("id").and_then(json_text) {
        rec.set(
            Field::ExternalId,
            "survey_response.id",
            format!("csat-{id}"),
        );
    }
    rec.set(Field::Kind, "preset", "survey_response");
    if let Some(t) = survey_response_ticket(r) {
        rec.set(Field::Parent, "subject_zrns", t);
    }
    if let Some(at) = survey_response_time(r) {
        rec.set(Field::OccurredAt, "answers[].updated_at", at);
    }
    let answers = r.get("answers").and_then(Value::as_array);
    for a in answers.into_iter().flatten() {
        if a.get("type").and_then(Value::as_str) == Some("skipped") {
            continue;
        }
        if let Some(rating) = a.get("rating").and_then(json_text) {
            rec.set(Field::Csat, "answers[].rating", rating);
            let scale = v.get("scale").and_then(json_text);
            rec.set(
                Field::CsatScale,
                "scale",
                scale.unwrap_or_else(|| "1-5".into()),
            );
        } else if let Some(text) = a.get("value").and_then(Value::as_str)
            && !text.trim().is_empty()
        {
            rec.set(Field::Text, "answers[].value", text.to_string());
        }
    }
    if let Some(u) = r.get("responder_id").and_then(json_text) {
        rec.platform_ids.push(format!("zendesk_user:{u}"));
    }
}
