//! Freshdesk: tickets as `GET /api/v2/tickets?include=requester,stats,description` returns
//! them, satisfaction ratings (`GET /api/v2/surveys/satisfaction_ratings`), and the UI CSV
//! export.
//!
//! - A ticket's `status`, `priority` and `source` are integer codes in the API and labels
//!   in the CSV export; the status is stored as the label both ways ([`status_label`]).
//!   Priority and source have no field in the interaction record and stay in the raw
//!   record.
//! - A rating is kept as `{"satisfaction_rating": {...}, "csat_scale": "classic-3"}`: the
//!   vendor's item plus the account's survey scale it was read with, so a quarantined
//!   rating replays the same way. Its `ratings.default_question` point value becomes a CSAT
//!   answer on `1-N` ([`CsatScale`]); the rating is a `survey_response` whose parent is its
//!   ticket.
//! - The CSV export's columns are chosen by whoever exports, so columns are found by header
//!   name with the usual spellings; headers that are not Freshdesk's own columns are the
//!   account's custom fields (by label) and may name a location, like `Tags` and `Product`.

use super::mapping::{Columns, Mapping, json_text};
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use serde_json::Value;
use std::collections::BTreeMap;

/// The label of a ticket status code (2..5 are Freshdesk's own; others are custom
/// statuses, named by their code).
pub fn status_label(code: i64) -> String {
    match code {
        2 => "Open".into(),
        3 => "Pending".into(),
        4 => "Resolved".into(),
        5 => "Closed".into(),
        n => format!("Status {n}"),
    }
}

/// The survey scale of an account's satisfaction ratings. Freshdesk does not say it per
/// rating; it is set in the connector's configuration (`csat_scale`).
///
/// Classic surveys answer with point values from 103 (extremely happy) through 100
/// (neutral) to -103 (extremely unhappy), a subset of them for surveys with fewer choices;
/// legacy 3-point surveys answer 1 (happy), 2 (neutral), 3 (unhappy). Each maps onto `1-N`
/// with N the best answer, so the indicators' "top box" rule reads it: on `1-3` and `1-2`
/// only the best answer counts as satisfied, on `1-5` and `1-7` the best two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsatScale {
    Classic2,
    Classic3,
    Classic5,
    Classic7,
    Legacy3,
}

impl CsatScale {
    pub const ALL: [CsatScale; 5] = [
        CsatScale::Classic2,
        CsatScale::Classic3,
        CsatScale::Classic5,
        CsatScale::Classic7,
        CsatScale::Legacy3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CsatScale::Classic2 => "classic-2",
            CsatScale::Classic3 => "classic-3",
            CsatScale::Classic5 => "classic-5",
            CsatScale::Classic7 => "classic-7",
            CsatScale::Legacy3 => "legacy-3",
        }
    }

    pub fn parse(s: &str) -> Option<CsatScale> {
        CsatScale::ALL.into_iter().find(|c| c.name() == s.trim())
    }

    /// The `1-N` scale the answers are stored on.
    pub fn stored_scale(self) -> &'static str {
        match self {
            CsatScale::Classic2 => "1-2",
            CsatScale::Classic3 | CsatScale::Legacy3 => "1-3",
            CsatScale::Classic5 => "1-5",
            CsatScale::Classic7 => "1-7",
        }
    }

    /// What a rating may hold, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            CsatScale::Classic2 => "103 or -103 (csat_scale classic-2)",
            CsatScale::Classic3 => "103, 100 or -103 (csat_scale classic-3)",
            CsatScale::Classic5 => "103, 102, 100, -102 or -103 (csat_scale classic-5)",
            CsatScale::Classic7 => "103 to 100 or -101 to -103 (csat_scale classic-7)",
            CsatScale::Legacy3 => "1, 2 or 3 (csat_scale legacy-3)",
        }
    }

    /// The answer on `1-N`. Classic values of the 7-point set that a shorter survey does
    /// not use are placed by their side of neutral (101 on a 3-point survey is its happy
    /// answer), since sources disagree on which subset each survey length uses.
    pub fn ordinal(self, v: i64) -> Option<i64> {
        let classic = (100..=103).contains(&v) || (-103..=-101).contains(&v);
        match self {
            CsatScale::Legacy3 => (1..=3).contains(&v).then(|| 4 - v),
            _ if !classic => None,
            CsatScale::Classic7 => Some(if v >= 100 { v - 96 } else { v + 104 }),
            CsatScale::Classic5 => Some(match v {
                103 => 5,
                101 | 102 => 4,
                100 => 3,
                -101 | -102 => 2,
                _ => 1,
            }),
            CsatScale::Classic3 => Some(match v {
                100 => 2,
                v if v > 100 => 3,
                _ => 1,
            }),
            CsatScale::Classic2 => match v {
                100 => None,
                v if v > 100 => Some(2),
                _ => Some(1),
            },
        }
    }
}

/// Why an item cannot be read: the field and the expected form.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemProblem {
    pub field: String,
    pub expected: String,
    pub message: String,
}

/// Fills a record from one item of the API as the connector keeps it: a ticket, or a
/// wrapped satisfaction rating.
pub fn api_record(v: &Value, rec: &mut SourceRecord) -> Result<(), ItemProblem> {
    match v.get("satisfaction_rating") {
        Some(r) => {
            let scale = v
                .get("csat_scale")
                .and_then(Value::as_str)
                .and_then(CsatScale::parse)
                .unwrap_or(CsatScale::Classic3);
            rating_record(r, scale, rec)
        }
        None => {
            ticket_record(v, rec);
            Ok(())
        }
    }
}

/// Fills a record from a ticket (with `requester` and `stats` included, when they are).
pub fn ticket_record(v: &Value, rec: &mut SourceRecord) {
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
    if let Some(t) = s("subject") {
        rec.set(Field::Title, "subject", t);
    }
    if let Some(d) = s("description_text").filter(|d| !d.trim().is_empty()) {
        rec.set(Field::Text, "description_text", d);
    } else if let Some(d) = s("description") {
        rec.set(Field::Text, "description", super::helpscout::html_text(&d));
    }
    match v.get("status") {
        Some(Value::Number(n)) => {
            if let Some(code) = n.as_i64() {
                rec.set(Field::Status, "status", status_label(code));
            }
        }
        Some(other) => {
            if let Some(label) = json_text(other) {
                rec.set(Field::Status, "status", label);
            }
        }
        None => {}
    }
    if let Some(tags) = v.get("tags").and_then(Value::as_array) {
        rec.location_candidates
            .extend(tags.iter().filter_map(json_text));
    }
    if let Some(Value::Object(cf)) = v.get("custom_fields") {
        rec.location_candidates
            .extend(cf.values().filter_map(json_text));
    }
    let requester = v.get("requester").filter(|r| r.is_object());
    let rid = requester
        .and_then(|r| r.get("id"))
        .and_then(json_text)
        .or_else(|| s("requester_id"));
    if let Some(id) = rid {
        rec.platform_ids.push(format!("freshdesk_user:{id}"));
    }
    let rs = |k: &str| requester.and_then(|r| r.get(k)).and_then(json_text);
    if let Some(e) = rs("email") {
        rec.set(Field::Email, "requester.email", e);
    } else if let Some(e) = s("email") {
        rec.set(Field::Email, "email", e);
    }
    if let Some(p) = rs("phone") {
        rec.set(Field::Phone, "requester.phone", p);
    } else if let Some(p) = rs("mobile") {
        rec.set(Field::Phone, "requester.mobile", p);
    } else if let Some(p) = s("phone") {
        rec.set(Field::Phone, "phone", p);
    }
    if let Some(n) = rs("name") {
        rec.set(Field::Name, "requester.name", n);
    } else if let Some(n) = s("name") {
        rec.set(Field::Name, "name", n);
    }
}

/// Fills a record from a satisfaction rating read on `scale`.
pub fn rating_record(
    v: &Value,
    scale: CsatScale,
    rec: &mut SourceRecord,
) -> Result<(), ItemProblem> {
    let s = |k: &str| v.get(k).and_then(json_text);
    if let Some(id) = s("id") {
        rec.set(Field::ExternalId, "id", format!("rating:{id}"));
    }
    rec.set(Field::Kind, "preset", "survey_response");
    if let Some(c) = s("created_at") {
        rec.set(Field::OccurredAt, "created_at", c);
    }
    if let Some(u) = s("updated_at") {
        rec.set(Field::UpdatedAt, "updated_at", u);
    }
    if let Some(f) = s("feedback") {
        rec.set(Field::Text, "feedback", f);
    }
    if let Some(t) = s("ticket_id") {
        rec.set(Field::Parent, "ticket_id", t);
    }
    if let Some(u) = s("user_id") {
        rec.platform_ids.push(format!("freshdesk_user:{u}"));
    }
    let answer = v.pointer("/ratings/default_question");
    match answer {
        None | Some(Value::Null) => Ok(()), // a rating without the main question: text only
        Some(a) => {
            let point = match a {
                Value::Number(n) => n.as_i64(),
                Value::String(t) => t.trim().parse::<i64>().ok(),
                _ => None,
            };
            let problem = || ItemProblem {
                field: "ratings.default_question".into(),
                expected: scale.expected().into(),
                message: format!("`{a}` is not an answer of this survey scale"),
            };
            let n = point.and_then(|p| scale.ordinal(p)).ok_or_else(problem)?;
            rec.set(Field::Csat, "ratings.default_question", n.to_string());
            rec.set(Field::CsatScale, "csat_scale", scale.stored_scale());
            Ok(())
        }
    }
}

/// The columns Freshdesk's ticket export offers of its own; any other header is a custom
/// field's label.
const STANDARD_COLUMNS: &[&str] = &[
    "ticket id",
    "subject",
    "description",
    "status",
    "priority",
    "source",
    "type",
    "agent",
    "group",
    "created time",
    "due by time",
    "resolved time",
    "closed time",
    "last update time",
    "last updated time",
    "initial response time",
    "time tracked",
    "first response time (in hrs)",
    "resolution time (in hrs)",
    "agent interactions",
    "customer interactions",
    "resolution status",
    "first response status",
    "survey results",
    "association type",
    "internal agent",
    "internal group",
    "every response status",
    "full name",
    "contact id",
    "email",
    "work phone",
    "mobile phone",
    "twitter id",
    "facebook id",
    "company name",
    "company id",
    "requester name",
    "requester email",
];

/// The built-in mapping of the Freshdesk ticket CSV export for a given header, with what a
/// user's mapping adds (its `[fields]` win, e.g. for a localized header).
pub fn csv_mapping_with(header: &[String], user: Option<&Mapping>) -> Mapping {
    let mut fields = BTreeMap::new();
    let mut put = |f: Field, names: &[&str]| {
        fields.insert(
            f.as_str().to_string(),
            Columns::Many(names.iter().map(|s| s.to_string()).collect()),
        );
    };
    put(Field::ExternalId, &["Ticket ID", "Ticket Id", "ID"]);
    put(
        Field::OccurredAt,
        &["Created time", "Created Time", "Created at"],
    );
    put(
        Field::UpdatedAt,
        &["Last update time", "Last updated time", "Updated time"],
    );
    put(Field::Title, &["Subject"]);
    put(Field::Text, &["Description", "Ticket description"]);
    put(Field::Status, &["Status"]);
    put(
        Field::Name,
        &["Full name", "Requester name", "Contact name", "Name"],
    );
    put(
        Field::Email,
        &["Email", "Requester email", "Contact email", "Email address"],
    );
    put(Field::Phone, &["Work phone", "Mobile phone", "Phone"]);
    let location_candidates = header
        .iter()
        .filter(|h| {
            let l = h.trim().to_lowercase();
            // Tags and Product are not in the list: both may name a store.
            !l.is_empty() && !STANDARD_COLUMNS.contains(&l.as_str())
        })
        .cloned()
        .collect();
    let mut platform_ids = BTreeMap::new();
    platform_ids.insert("freshdesk_user".to_string(), "Contact ID".to_string());
    Mapping {
        kind: Some("ticket".into()),
        location_candidates,
        platform_ids,
        fields,
        ..Default::default()
    }
    .with_user(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classic_and_legacy_points_map_onto_1_to_n() {
        use CsatScale::*;
        assert_eq!(
            [103, 100, -103].map(|v| Classic3.ordinal(v)),
            [Some(3), Some(2), Some(1)]
        );
        assert_eq!(Classic3.ordinal(101), Some(3));
        assert_eq!(
            [103, 102, 100, -102, -103].map(|v| Classic5.ordinal(v)),
            [Some(5), Some(4), Some(3), Some(2), Some(1)]
        );
        assert_eq!(
            [103, 102, 101, 100, -101, -102, -103].map(|v| Classic7.ordinal(v)),
            [7, 6, 5, 4, 3, 2, 1].map(Some)
        );
        assert_eq!(
            [103, 100, -103].map(|v| Classic2.ordinal(v)),
            [Some(2), None, Some(1)]
        );
        assert_eq!(
            [1, 2, 3, 4].map(|v| Legacy3.ordinal(v)),
            [Some(3), Some(2), Some(1), None]
        );
        for s in CsatScale::ALL {
            assert_eq!(s.ordinal(5), None, "{}", s.name());
            assert_eq!(s.ordinal(-100), None);
            assert_eq!(CsatScale::parse(s.name()), Some(s));
        }
    }

    #[test]
    fn a_ticket_with_its_requester() {
        let t = json!({
            "id": 42, "subject": "Cold fries", "description": "<p>Cold</p>",
            "description_text": "Cold", "status": 4, "priority": 2, "source": 1,
            "requester_id": 7, "tags": ["berlin-01"], "custom_fields": {"cf_store": "Mitte"},
            "created_at": "2024-01-02T10:00:00Z", "updated_at": "2024-01-03T10:00:00Z",
            "requester": {"id": 7, "name": "Ana", "email": "ana@example.org", "phone": null, "mobile": "+4915112345678"}
        });
        let mut rec = SourceRecord::default();
        api_record(&t, &mut rec).unwrap();
        let f = |x: Field| rec.fields.get(&x).cloned();
        assert_eq!(f(Field::ExternalId).as_deref(), Some("42"));
        assert_eq!(f(Field::Status).as_deref(), Some("Resolved"));
        assert_eq!(f(Field::Text).as_deref(), Some("Cold"));
        assert_eq!(f(Field::Phone).as_deref(), Some("+4915112345678"));
        assert_eq!(rec.platform_ids, vec!["freshdesk_user:7".to_string()]);
        assert!(rec.location_candidates.contains(&"Mitte".to_string()));
    }

    #[test]
    fn a_rating_on_its_scale_or_a_problem() {
        let r = json!({"satisfaction_rating": {"id": 9, "ticket_id": 42, "user_id": 7,
            "feedback": "ok", "ratings": {"default_question": 100},
            "created_at": "2024-01-04T10:00:00Z"}, "csat_scale": "classic-3"});
        let mut rec = SourceRecord::default();
        api_record(&r, &mut rec).unwrap();
        assert_eq!(rec.fields[&Field::ExternalId], "rating:9");
        assert_eq!(rec.fields[&Field::Parent], "42");
        assert_eq!(
            (
                &rec.fields[&Field::Csat][..],
                &rec.fields[&Field::CsatScale][..]
            ),
            ("2", "1-3")
        );
        let bad = json!({"satisfaction_rating": {"id": 9, "ratings": {"default_question": 7}},
            "csat_scale": "classic-3"});
        let p = api_record(&bad, &mut SourceRecord::default()).unwrap_err();
        assert_eq!(p.field, "ratings.default_question");
        assert!(p.expected.contains("103, 100 or -103"), "{p:?}");
    }

    #[test]
    fn custom_field_labels_are_location_candidates() {
        let header: Vec<String> = ["Ticket ID", "Subject", "Store", "Tags", "Created time"]
            .map(String::from)
            .to_vec();
        let m = csv_mapping_with(&header, None);
        assert_eq!(
            m.location_candidates,
            vec!["Store".to_string(), "Tags".to_string()]
        );
    }
}
