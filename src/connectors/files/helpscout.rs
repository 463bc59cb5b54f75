//! Help Scout (Mailbox API 2.0): conversations as `GET /v2/conversations?embed=threads`
//! returns them, the Rating object (as webhooks deliver it), and the conversation CSV
//! export.
//!
//! - A conversation is a `ticket`: `primaryCustomer` names the person (`helpscout_customer:`
//!   id, email, first and last name); the text is the first customer thread (HTML reduced to
//!   text) or, without embedded threads, the list's `preview`.
//! - A Rating object (`rating` Great/Okay/Bad, `ticketId`) is a `survey_response` whose
//!   parent is the conversation, with CSAT on `1-3` (Great = 3, Okay = 2, Bad = 1: only
//!   Great counts as satisfied, Help Scout's own happiness score).
//! - The CSV export's column list is not documented; columns are found by header name
//!   with the usual spellings, and a `Rating` column holding the words is read the same
//!   way onto the conversation.

use super::mapping::{Columns, Mapping, json_text};
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use serde_json::Value;
use std::collections::BTreeMap;

/// The scale Help Scout ratings are stored on.
pub const RATING_SCALE: &str = "1-3";

/// Great / Okay / Bad (and the report's "OK", "Not Good") on [`RATING_SCALE`].
pub fn rating_points(word: &str) -> Option<i64> {
    match word.trim().to_lowercase().as_str() {
        "great" => Some(3),
        "okay" | "ok" => Some(2),
        "bad" | "not good" | "not-good" => Some(1),
        _ => None,
    }
}

/// Text of an HTML fragment: tags dropped, block ends as line breaks, the common entities
/// decoded. Good enough for message bodies; not a sanitizer.
pub fn html_text(html: &str) -> String {
    let fragment = scraper::Html::parse_fragment(
        &html
            .replace("<br>", "\n<br>")
            .replace("<br/>", "\n<br/>")
            .replace("<br />", "\n<br />")
            .replace("</p>", "\n</p>")
            .replace("</div>", "\n</div>"),
    );
    let text: String = fragment.root_element().text().collect();
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Is this a Rating object (rather than a conversation)?
pub fn is_rating(v: &Value) -> bool {
    v.get("rating").is_some_and(Value::is_string)
        && (v.get("ticketId").is_some() || v.get("threadId").is_some())
}

/// Fills a record from a conversation or a Rating object.
pub fn api_record(v: &Value, rec: &mut SourceRecord) {
    if is_report_rating(v) {
        report_rating_record(v, rec)
    } else if is_rating(v) {
        rating_record(v, rec)
    } else {
        conversation_record(v, rec)
    }
}

/// The timestamp a conversation's changes are tracked by: `modifiedAt` where the object
/// has it (what `modifiedSince` and `sortField=modifiedAt` filter on), else `userUpdatedAt`.
pub fn updated_at(v: &Value) -> Option<&Value> {
    v.get("modifiedAt")
        .filter(|m| m.is_string())
        .or_else(|| v.get("userUpdatedAt").filter(|m| m.is_string()))
}

fn threads(v: &Value) -> impl Iterator<Item = &Value> {
    v.pointer("/_embedded/threads")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Fills a record from a conversation.
pub fn conversation_record(v: &Value, rec: &mut SourceRecord) {
    let s = |k: &str| v.get(k).and_then(json_text);
    if let Some(id) = s("id") {
        rec.set(Field::ExternalId, "id", id);
    }
    rec.set(Field::Kind, "preset", "ticket");
    if let Some(c) = s("createdAt") {
        rec.set(Field::OccurredAt, "createdAt", c);
    }
    if let Some(u) = updated_at(v).and_then(json_text) {
        rec.set(Field::UpdatedAt, "modifiedAt", u);
    }
    if let Some(t) = s("subject") {
        rec.set(Field::Title, "subject", t);
    }
    let first_customer =
        threads(v).find(|t| t.get("type").and_then(Value::as_str) == Some("customer"));
    match first_customer
        .and_then(|t| t.get("body"))
        .and_then(json_text)
    {
        Some(body) => rec.set(Field::Text, "_embedded.threads[].body", html_text(&body)),
        None => {
            if let Some(p) = s("preview") {
                rec.set(Field::Text, "preview", p);
            }
        }
    }
    if let Some(st) = s("status") {
        rec.set(Field::Status, "status", st);
    }
    if let Some(u) = v.pointer("/_links/web/href").and_then(json_text) {
        rec.set(Field::Url, "_links.web.href", u);
    }
    if let Some(tags) = v.get("tags").and_then(Value::as_array) {
        rec.location_candidates.extend(tags.iter().filter_map(|t| {
            json_text(t).or_else(|| t.get("tag").or_else(|| t.get("name")).and_then(json_text))
        }));
    }
    if let Some(cf) = v.get("customFields").and_then(Value::as_array) {
        rec.location_candidates.extend(
            cf.iter()
                .filter_map(|f| f.get("text").or_else(|| f.get("value")).and_then(json_text)),
        );
    }
    if let Some(c) = v.get("primaryCustomer").filter(|c| c.is_object()) {
        customer(c, "primaryCustomer", rec);
    }
}

/// A customer object: `{id, email, first, last}` (conversations) or `{id, firstName,
/// lastName, emails[]}` (ratings).
fn customer(c: &Value, label: &str, rec: &mut SourceRecord) {
    let cs = |k: &str| c.get(k).and_then(json_text);
    if let Some(id) = cs("id") {
        rec.platform_ids.push(format!("helpscout_customer:{id}"));
    }
    let email = cs("email").or_else(|| {
        c.get("emails")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|e| json_text(e).or_else(|| e.get("value").and_then(json_text)))
    });
    if let Some(e) = email {
        rec.set(Field::Email, &format!("{label}.email"), e);
    }
    let first = cs("first").or_else(|| cs("firstName")).unwrap_or_default();
    let last = cs("last").or_else(|| cs("lastName")).unwrap_or_default();
    let name = format!("{first} {last}");
    rec.set(Field::Name, &format!("{label}.first"), name.trim());
}

/// Fills a record from a Rating object.
pub fn rating_record(v: &Value, rec: &mut SourceRecord) {
    let s = |k: &str| v.get(k).and_then(json_text);
    if let Some(id) = s("id") {
        rec.set(Field::ExternalId, "id", format!("rating:{id}"));
    }
    rec.set(Field::Kind, "preset", "survey_response");
    if let Some(c) = s("createdAt") {
        rec.set(Field::OccurredAt, "createdAt", c);
    }
    if let Some(u) = s("modifiedAt") {
        rec.set(Field::UpdatedAt, "modifiedAt", u);
    }
    if let Some(t) = s("ticketId") {
        rec.set(Field::Parent, "ticketId", t);
    }
    if let Some(c) = s("comments") {
        rec.set(Field::Text, "comments", c);
    }
    if let Some(r) = s("rating") {
        let value = rating_points(&r).map(|n| n.to_string()).unwrap_or(r);
        rec.set(Field::Csat, "rating", value);
        rec.set(Field::CsatScale, "rating", RATING_SCALE);
    }
    if let Some(c) = v.get("customer").filter(|c| c.is_object()) {
        customer(c, "customer", rec);
    }
}

/// The built-in mapping of the conversation CSV export for a given header, with what a
/// user's mapping adds (its `[fields]` win).
pub fn csv_mapping_with(header: &[String], user: Option<&Mapping>) -> Mapping {
    let mut fields = BTreeMap::new();
    let mut put = |f: Field, names: &[&str]| {
        fields.insert(
            f.as_str().to_string(),
            Columns::Many(names.iter().map(|s| s.to_string()).collect()),
        );
    };
    put(
        Field::ExternalId,
        &[
            "Conversation ID",
            "Conversation Id",
            "ID",
            "Conversation Number",
            "Number",
        ],
    );
    put(
        Field::OccurredAt,
        &[
            "Created At",
            "Created",
            "Date Created",
            "Conversation Created",
        ],
    );
    put(
        Field::UpdatedAt,
        &["Modified At", "Last Modified", "Updated At", "Last Updated"],
    );
    put(Field::Title, &["Subject"]);
    put(
        Field::Text,
        &["First Message", "Message", "Body", "Preview", "Thread"],
    );
    put(Field::Status, &["Status"]);
    put(Field::Name, &["Customer Name", "Customer"]);
    put(Field::Email, &["Customer Email", "Email"]);
    put(Field::Phone, &["Customer Phone", "Phone"]);
    put(
        Field::Csat,
        &["Rating", "Happiness Rating", "Satisfaction Rating"],
    );
    let location_candidates = header
        .iter()
        .filter(|h| {
            matches!(
                h.trim().to_lowercase().as_str(),
                "tags" | "mailbox" | "inbox" | "store" | "location"
            )
        })
        .cloned()
        .collect();
    let mut platform_ids = BTreeMap::new();
    platform_ids.insert("helpscout_customer".to_string(), "Customer ID".to_string());
    Mapping {
        kind: Some("ticket".into()),
        location_candidates,
        platform_ids,
        fields,
        ..Default::default()
    }
    .with_user(user)
}

/// After the columns: a rating word becomes its point on [`RATING_SCALE`]; any other
/// value is left for normalization to reject on that scale.
pub fn finish_csv_record(rec: &mut SourceRecord) {
    if let Some(r) = rec.fields.get(&Field::Csat).cloned() {
        if let Some(n) = rating_points(&r) {
            rec.fields.insert(Field::Csat, n.to_string());
        }
        rec.fields
            .insert(Field::CsatScale, RATING_SCALE.to_string());
    }
}

/// Is this a result of the happiness ratings report (`GET /v2/reports/happiness/ratings`)?
pub fn is_report_rating(v: &Value) -> bool {
    v.get("ratingId").is_some() && v.get("threadid").is_some()
}

/// A result of the happiness ratings report: `id` and `number` (the conversation),
/// `threadid` (the rated reply; one rating each, so the key), `ratingId` (1 Great, 2 Okay,
/// 3 Not Good), `ratingComments`, `ratingCreatedAt`, `ratingCustomerId`,
/// `ratingCustomerName`. A `survey_response` whose parent is the conversation, CSAT on
/// [`RATING_SCALE`].
pub fn report_rating_record(v: &Value, rec: &mut SourceRecord) {
    let s = |k: &str| v.get(k).and_then(json_text);
    if let Some(t) = s("threadid") {
        rec.set(Field::ExternalId, "threadid", format!("rating-thread:{t}"));
    }
    rec.set(Field::Kind, "preset", "survey_response");
    if let Some(c) = s("id") {
        rec.set(Field::Parent, "id", c);
    }
    if let Some(at) = s("ratingCreatedAt") {
        rec.set(Field::OccurredAt, "ratingCreatedAt", at);
    }
    if let Some(r) = s("ratingId") {
        let points = match r.trim() {
            "1" => "3".to_string(),
            "2" => "2".to_string(),
            "3" => "1".to_string(),
            // Kept as read, so the normal validation names it.
            other => other.to_string(),
        };
        rec.set(Field::Csat, "ratingId", points);
        rec.set(Field::CsatScale, "ratingId", RATING_SCALE);
    }
    if let Some(c) = s("ratingComments") {
        rec.set(Field::Text, "ratingComments", c);
    }
    if let Some(id) = s("ratingCustomerId") {
        rec.platform_ids.push(format!("helpscout_customer:{id}"));
    }
    if let Some(n) = s("ratingCustomerName") {
        // The report names a customer without a name by their address.
        if n.contains('@') {
            rec.set(Field::Email, "ratingCustomerName", n);
        } else {
            rec.set(Field::Name, "ratingCustomerName", n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_bodies_become_text() {
        assert_eq!(
            html_text("<p>Hi &amp; hello</p><p>Order <b>#12</b><br>late</p>"),
            "Hi & hello\nOrder #12\nlate"
        );
        assert_eq!(html_text("plain"), "plain");
    }

    #[test]
    fn a_conversation_with_threads_and_customer() {
        let c = json!({
            "id": 1001, "number": 7, "subject": "Refund", "status": "closed",
            "createdAt": "2024-01-02T10:00:00Z", "userUpdatedAt": "2024-01-03T10:00:00Z",
            "primaryCustomer": {"id": 55, "email": "bo@example.org", "first": "Bo", "last": "Lind"},
            "tags": [{"id": 1, "tag": "berlin-01", "color": "none"}],
            "_embedded": {"threads": [
                {"type": "reply", "body": "<p>On it</p>", "createdBy": {"type": "user"}},
                {"type": "customer", "body": "<p>Where is my refund?</p>"}
            ]}
        });
        let mut rec = SourceRecord::default();
        api_record(&c, &mut rec);
        let f = |x: Field| rec.fields.get(&x).cloned().unwrap_or_default();
        assert_eq!(f(Field::ExternalId), "1001");
        assert_eq!(f(Field::Text), "Where is my refund?");
        assert_eq!(f(Field::Name), "Bo Lind");
        assert_eq!(f(Field::UpdatedAt), "2024-01-03T10:00:00Z");
        assert_eq!(rec.platform_ids, vec!["helpscout_customer:55".to_string()]);
        assert_eq!(rec.location_candidates, vec!["berlin-01".to_string()]);
    }

    #[test]
    fn a_rating_object_is_a_survey_response_on_1_3() {
        let r = json!({"id": 3, "rating": "Okay", "ticketId": 1001, "threadId": 9,
            "comments": "fine", "createdAt": "2024-01-04T10:00:00Z",
            "customer": {"id": 55, "firstName": "Bo", "lastName": "Lind", "emails": ["bo@example.org"]}});
        let mut rec = SourceRecord::default();
        api_record(&r, &mut rec);
        assert_eq!(rec.fields[&Field::ExternalId], "rating:3");
        assert_eq!(rec.fields[&Field::Csat], "2");
        assert_eq!(rec.fields[&Field::CsatScale], "1-3");
        assert_eq!(rec.fields[&Field::Parent], "1001");
        assert_eq!(rec.fields[&Field::Email], "bo@example.org");
        assert_eq!(
            ["Great", "okay", "OK", "Bad", "Not Good", "meh"].map(rating_points),
            [Some(3), Some(2), Some(2), Some(1), Some(1), None]
        );
    }
}
