//! Intercom conversations: as `POST /conversations/search` returns them (the API connector
//! and the `intercom-json` preset share [`conversation_record`]), and the UI's CSV export
//! (`intercom-csv`).
//!
//! A conversation is one ticket interaction: `source.subject` and `source.body` (HTML, read
//! as text), the contacts as `intercom_contact:<id>` platform ids (and `crm:<external_id>`),
//! their email, phone and name when the connector fetched them (`GET /contacts/{id}`; the
//! raw record is then `{"conversation": ..., "contacts": [...]}`), `state` as the status.
//!
//! The rating (`conversation_rating.rating`, Intercom's 1-5 CSAT) stays on the ticket, as
//! Zendesk's `satisfaction_rating` does on its tickets: one conversation has at most one
//! rating, so CSAT per channel is computed the same way for both vendors, and the rating
//! follows the conversation's updates. The rating's `remark` is appended to the text after
//! a blank line, marked, so its sentiment counts; the body itself is kept as written (and
//! the whole conversation is kept in the raw record).
//!
//! The CSV export's columns are not documented by Intercom (not confirmed here either), so
//! the preset accepts the usual header spellings with aliases, case-insensitively:
//! conversation id, created at, updated at, user email / name / id (the workspace's own
//! user id, as `crm:`), contact id, rating, remark, subject, first message, state. The
//! first response and close times stay in the kept row, where the indicators read them
//! (`pipeline::indicators::intercom_times`). A mapping's `[fields]` wins over the aliases.

use super::mapping::{Columns, Mapping, json_text};
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use scraper::{ElementRef, Html, Node};
use serde_json::Value;
use std::collections::BTreeMap;

/// How a rating remark is marked when appended to the conversation's text.
pub const REMARK_PREFIX: &str = "Rating remark: ";

/// Text of an HTML fragment: block elements and `<br>` become line breaks, entities are
/// decoded, runs of blank lines collapse. Plain text passes through unchanged.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') && !html.contains('&') {
        return html.trim().to_string();
    }
    fn walk(el: ElementRef<'_>, out: &mut String) {
        for child in el.children() {
            match child.value() {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => {
                    let name = e.name();
                    let block = matches!(
                        name,
                        "p" | "div"
                            | "li"
                            | "ul"
                            | "ol"
                            | "h1"
                            | "h2"
                            | "h3"
                            | "h4"
                            | "h5"
                            | "h6"
                            | "blockquote"
                            | "pre"
                            | "tr"
                            | "table"
                    );
                    if name == "br" {
                        out.push('\n');
                        continue;
                    }
                    if matches!(name, "script" | "style") {
                        continue;
                    }
                    if block && !out.is_empty() && !out.ends_with('\n') {
                        out.push('\n');
                    }
                    if let Some(c) = ElementRef::wrap(child) {
                        walk(c, out);
                    }
                    if block && !out.ends_with('\n') {
                        out.push('\n');
                    }
                }
                _ => {}
            }
        }
    }
    let frag = Html::parse_fragment(html);
    let mut out = String::new();
    walk(frag.root_element(), &mut out);
    // Tidy: trim each line, keep at most one blank line in a row.
    let mut tidy = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let line = line.trim();
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !tidy.is_empty() {
            tidy.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        tidy.push_str(line);
    }
    tidy
}

/// Is this JSON value a saved page of the search or list endpoint (rather than one
/// conversation)?
pub fn is_page(v: &Value) -> bool {
    v.get("conversations").is_some_and(Value::is_array)
}

/// The raw record the connector keeps: the conversation alone, or with the contacts it
/// fetched for it.
pub fn wrap(conversation: &Value, contacts: &[Value]) -> String {
    if contacts.is_empty() {
        conversation.to_string()
    } else {
        serde_json::json!({"conversation": conversation, "contacts": contacts}).to_string()
    }
}

/// Fills a record from one conversation and the contacts fetched for it. Accepts the
/// connector's wrapper `{"conversation": ..., "contacts": [...]}`.
pub fn conversation_record(v: &Value, contacts: &[Value], rec: &mut SourceRecord) {
    if let (Some(c), true) = (v.get("conversation"), contacts.is_empty()) {
        let fetched: Vec<Value> = v
            .get("contacts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        return conversation_record(c, &fetched, rec);
    }
    let s = |k: &str| v.get(k).and_then(json_text);
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
    if let Some(st) = s("state") {
        rec.set(Field::Status, "state", st);
    }
    let source = v.get("source");
    let src = |k: &str| source.and_then(|x| x.get(k)).and_then(json_text);
    let title = src("subject")
        .map(|t| html_to_text(&t))
        .filter(|t| !t.is_empty())
        .or_else(|| s("title"));
    if let Some(t) = title {
        rec.set(Field::Title, "source.subject", t);
    }
    let body = src("body").map(|b| html_to_text(&b));
    let rating = v.get("conversation_rating").filter(|r| r.is_object());
    let remark = rating
        .and_then(|r| r.get("remark"))
        .and_then(json_text)
        .map(|r| html_to_text(&r))
        .filter(|r| !r.is_empty());
    match (body.filter(|b| !b.is_empty()), remark) {
        (Some(b), Some(r)) => rec.set(
            Field::Text,
            "source.body",
            format!("{b}\n\n{REMARK_PREFIX}{r}"),
        ),
        (Some(b), None) => rec.set(Field::Text, "source.body", b),
        (None, Some(r)) => rec.set(
            Field::Text,
            "conversation_rating.remark",
            format!("{REMARK_PREFIX}{r}"),
        ),
        (None, None) => {}
    }
    if let Some(score) = rating.and_then(|r| r.get("rating")).and_then(json_text) {
        rec.set(Field::Csat, "conversation_rating.rating", score);
        rec.set(Field::CsatScale, "conversation_rating", "1-5");
    }
    // The customer: the author when a user or lead wrote first, and every contact.
    let author = source.and_then(|x| x.get("author"));
    let author_type = author
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if matches!(author_type, "user" | "lead" | "contact") {
        let a = |k: &str| author.and_then(|x| x.get(k)).and_then(json_text);
        if let Some(id) = a("id") {
            rec.platform_ids.push(format!("intercom_contact:{id}"));
        }
        if let Some(e) = a("email") {
            rec.set(Field::Email, "source.author.email", e);
        }
        if let Some(n) = a("name") {
            rec.set(Field::Name, "source.author.name", n);
        }
    }
    let listed = v
        .pointer("/contacts/contacts")
        .or_else(|| v.get("contacts"))
        .and_then(Value::as_array);
    for c in listed.into_iter().flatten() {
        if let Some(id) = c.get("id").and_then(json_text) {
            rec.platform_ids.push(format!("intercom_contact:{id}"));
        }
        if let Some(x) = c.get("external_id").and_then(json_text) {
            rec.platform_ids.push(format!("crm:{x}"));
        }
    }
    for c in contacts {
        let cs = |k: &str| c.get(k).and_then(json_text);
        if let Some(id) = cs("id") {
            rec.platform_ids.push(format!("intercom_contact:{id}"));
        }
        if let Some(x) = cs("external_id") {
            rec.platform_ids.push(format!("crm:{x}"));
        }
        if !rec.fields.contains_key(&Field::Email)
            && let Some(e) = cs("email")
        {
            rec.set(Field::Email, "contacts[].email", e);
        }
        if !rec.fields.contains_key(&Field::Phone)
            && let Some(p) = cs("phone")
        {
            rec.set(Field::Phone, "contacts[].phone", p);
        }
        if !rec.fields.contains_key(&Field::Name)
            && let Some(n) = cs("name")
        {
            rec.set(Field::Name, "contacts[].name", n);
        }
    }
    rec.platform_ids.sort();
    rec.platform_ids.dedup();
    // Where a location may be named: custom attributes and tags.
    if let Some(Value::Object(attrs)) = v.get("custom_attributes") {
        rec.location_candidates
            .extend(attrs.values().filter_map(json_text));
    }
    if let Some(tags) = v.pointer("/tags/tags").and_then(Value::as_array) {
        rec.location_candidates.extend(
            tags.iter()
                .filter_map(|t| t.get("name").and_then(json_text)),
        );
    }
}

/// Header spellings of the CSV export, per field.
const CSV_ID: &[&str] = &[
    "Conversation ID",
    "Conversation Id",
    "conversation_id",
    "ID",
];
const CSV_CREATED: &[&str] = &[
    "Conversation created at",
    "Created at",
    "Created",
    "Conversation started at",
    "Started at",
    "conversation_created_at",
    "created_at",
];
const CSV_UPDATED: &[&str] = &[
    "Conversation last updated at",
    "Conversation updated at",
    "Last updated at",
    "Updated at",
    "Updated",
    "conversation_updated_at",
    "updated_at",
];
const CSV_EMAIL: &[&str] = &[
    "User email",
    "User Email",
    "Contact email",
    "Customer email",
    "Lead email",
    "Email",
    "user_email",
];
const CSV_NAME: &[&str] = &[
    "User name",
    "User Name",
    "Contact name",
    "Customer name",
    "Lead name",
    "Name",
    "user_name",
];
const CSV_PHONE: &[&str] = &["User phone", "Contact phone", "Phone", "user_phone"];
const CSV_USER_ID: &[&str] = &["User id", "User ID", "External ID", "user_id"];
const CSV_CONTACT_ID: &[&str] = &[
    "Contact ID",
    "Contact id",
    "Intercom user ID",
    "Intercom ID",
    "contact_id",
];
const CSV_RATING: &[&str] = &[
    "Conversation rating",
    "Rating",
    "CSAT rating",
    "CSAT",
    "Conversation rating score",
    "conversation_rating",
];
const CSV_REMARK: &[&str] = &[
    "Conversation rating remark",
    "Rating remark",
    "Remark",
    "CSAT remark",
    "Rating comment",
    "conversation_rating_remark",
];
const CSV_SUBJECT: &[&str] = &[
    "Subject",
    "Conversation subject",
    "Title",
    "Conversation title",
];
const CSV_BODY: &[&str] = &[
    "First message",
    "Initial message",
    "Conversation first message",
    "Message",
    "Body",
    "first_message",
];
const CSV_STATE: &[&str] = &["State", "Conversation state", "Status", "state"];

fn put(fields: &mut BTreeMap<String, Columns>, f: Field, names: &[&str]) {
    fields.insert(
        f.as_str().to_string(),
        Columns::Many(names.iter().map(|s| s.to_string()).collect()),
    );
}

/// The first header (case-insensitive) among `names`.
fn find<'a>(header: &'a [String], names: &[&str]) -> Option<&'a String> {
    names
        .iter()
        .find_map(|n| header.iter().find(|h| h.trim().eq_ignore_ascii_case(n)))
}

/// The built-in mapping of the CSV export for a given header, with what a user's mapping
/// adds (its `[fields]` win).
pub fn csv_mapping_with(header: &[String], user: Option<&Mapping>) -> Mapping {
    let mut fields = BTreeMap::new();
    put(&mut fields, Field::ExternalId, CSV_ID);
    put(&mut fields, Field::OccurredAt, CSV_CREATED);
    put(&mut fields, Field::UpdatedAt, CSV_UPDATED);
    put(&mut fields, Field::Email, CSV_EMAIL);
    put(&mut fields, Field::Name, CSV_NAME);
    put(&mut fields, Field::Phone, CSV_PHONE);
    put(&mut fields, Field::Csat, CSV_RATING);
    put(&mut fields, Field::Title, CSV_SUBJECT);
    put(&mut fields, Field::Text, CSV_BODY);
    put(&mut fields, Field::Status, CSV_STATE);
    let mut platform_ids = BTreeMap::new();
    if let Some(h) = find(header, CSV_USER_ID) {
        platform_ids.insert("crm".to_string(), h.clone());
    }
    if let Some(h) = find(header, CSV_CONTACT_ID) {
        platform_ids.insert("intercom_contact".to_string(), h.clone());
    }
    let location_candidates = header
        .iter()
        .filter(|h| {
            matches!(
                h.trim().to_lowercase().as_str(),
                "store" | "location" | "branch" | "tags" | "team" | "brand"
            )
        })
        .cloned()
        .collect();
    Mapping {
        kind: Some("ticket".into()),
        csat_scale: Some("1-5".into()),
        location_candidates,
        platform_ids,
        fields,
        ..Default::default()
    }
    .with_user(user)
}

/// What the CSV preset adds after the columns are applied: the rating remark appended to
/// the text (as the API conversations have it), and the rating's scale.
pub fn finish_csv_record(rec: &mut SourceRecord) {
    let Ok(Value::Object(row)) = serde_json::from_str::<Value>(&rec.raw) else {
        return;
    };
    let remark = CSV_REMARK.iter().find_map(|n| {
        row.iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(n))
            .and_then(|(_, v)| json_text(v))
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
    });
    if let Some(r) = remark {
        let text = match rec.fields.get(&Field::Text) {
            Some(b) => format!("{b}\n\n{REMARK_PREFIX}{r}"),
            None => format!("{REMARK_PREFIX}{r}"),
        };
        rec.fields.insert(Field::Text, text);
    }
    if let Some(b) = rec.fields.get(&Field::Text).cloned() {
        let t = html_to_text(&b);
        if t.is_empty() {
            rec.fields.remove(&Field::Text);
        } else {
            rec.fields.insert(Field::Text, t);
        }
    }
    if rec.fields.contains_key(&Field::Csat) && !rec.fields.contains_key(&Field::CsatScale) {
        rec.set(Field::CsatScale, "preset", "1-5");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_becomes_text_with_line_breaks() {
        assert_eq!(
            html_to_text("<p>Hi,</p><p>my order &amp; the <b>refund</b></p>thanks<br>bye"),
            "Hi,\nmy order & the refund\nthanks\nbye"
        );
        assert_eq!(html_to_text("plain text "), "plain text");
        assert_eq!(html_to_text("<p></p>"), "");
        assert_eq!(
            html_to_text("<ul><li>one</li><li>two</li></ul><script>x()</script>"),
            "one\ntwo"
        );
    }

    #[test]
    fn a_conversation_with_its_contacts_and_rating() {
        let v = json!({
            "type": "conversation", "id": "123", "created_at": 1704067200, "updated_at": 1704070800,
            "state": "closed",
            "source": {"type": "conversation", "subject": "", "body": "<p>Where is my parcel?</p>",
                       "author": {"type": "user", "id": "c1", "name": "Ana", "email": "ana@example.org"}},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c1", "external_id": "991"}]},
            "conversation_rating": {"rating": 2, "remark": "Too slow", "created_at": 1704070000},
            "custom_attributes": {"Store": "berlin-01"},
            "tags": {"type": "tag.list", "tags": [{"type": "tag", "name": "vip"}]}
        });
        let contacts =
            vec![json!({"id": "c1", "email": "other@example.org", "phone": "+4915112345678"})];
        let mut rec = SourceRecord::default();
        conversation_record(
            &json!({"conversation": v, "contacts": contacts}),
            &[],
            &mut rec,
        );
        let f = |x: Field| rec.fields.get(&x).cloned();
        assert_eq!(f(Field::ExternalId).as_deref(), Some("123"));
        assert_eq!(
            f(Field::Text).as_deref(),
            Some("Where is my parcel?\n\nRating remark: Too slow")
        );
        assert_eq!(f(Field::Csat).as_deref(), Some("2"));
        assert_eq!(f(Field::Email).as_deref(), Some("ana@example.org"));
        assert_eq!(f(Field::Phone).as_deref(), Some("+4915112345678"));
        assert_eq!(f(Field::Title), None);
        assert_eq!(
            rec.platform_ids,
            vec!["crm:991".to_string(), "intercom_contact:c1".to_string()]
        );
        assert!(rec.location_candidates.contains(&"berlin-01".to_string()));
        assert!(rec.location_candidates.contains(&"vip".to_string()));
    }

    #[test]
    fn an_admin_initiated_conversation_does_not_name_the_admin() {
        let v = json!({"id": "9", "created_at": 1, "source": {"body": "Hello from us",
            "author": {"type": "admin", "id": "a1", "email": "agent@shop.example"}},
            "contacts": {"contacts": [{"id": "c2"}]}});
        let mut rec = SourceRecord::default();
        conversation_record(&v, &[], &mut rec);
        assert_eq!(rec.fields.get(&Field::Email), None);
        assert_eq!(rec.platform_ids, vec!["intercom_contact:c2".to_string()]);
    }
}
