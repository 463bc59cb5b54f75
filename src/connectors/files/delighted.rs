//! Delighted survey responses as `GET /v1/survey_responses.json?expand[]=person` returns
//! them: a bare array, unix-second timestamps, `person` expanded (or a bare id), the score
//! on the scale of the `survey_type`, and `person_properties` that often name the store.

use super::mapping::json_text;
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use serde_json::Value;

/// Fills a record from one survey response.
pub fn response_record(v: &Value, rec: &mut SourceRecord) {
    let s = |k: &str| v.get(k).and_then(json_text);
    if let Some(id) = s("id") {
        rec.set(Field::ExternalId, "id", id);
    }
    rec.set(Field::Kind, "preset", "survey_response");
    if let Some(c) = s("created_at") {
        rec.set(Field::OccurredAt, "created_at", c);
    }
    if let Some(u) = s("updated_at") {
        rec.set(Field::UpdatedAt, "updated_at", u);
    }
    if let Some(c) = s("comment") {
        rec.set(Field::Text, "comment", c);
    }
    if let Some(p) = s("permalink") {
        rec.set(Field::Url, "permalink", p);
    }
    let survey_type = s("survey_type").unwrap_or_else(|| "nps".into());
    rec.set(Field::Status, "survey_type", survey_type.clone());
    if let Some(score) = s("score") {
        match survey_type.as_str() {
            "nps" | "enps" => rec.set(Field::Nps, "score", score),
            "csat" => {
                rec.set(Field::Csat, "score", score);
                rec.set(Field::CsatScale, "survey_type", "1-5");
            }
            "ces" => {
                rec.set(Field::Ces, "score", score);
                rec.set(Field::CesScale, "survey_type", "1-7");
            }
            // smileys, thumbs, pmf: no standard indicator; the text still counts.
            _ => {}
        }
    }
    match v.get("person") {
        Some(Value::Object(p)) => {
            if let Some(id) = p.get("id").and_then(json_text) {
                rec.platform_ids.push(format!("delighted_person:{id}"));
            }
            if let Some(e) = p.get("email").and_then(json_text) {
                rec.set(Field::Email, "person.email", e);
            }
            if let Some(ph) = p.get("phone_number").and_then(json_text) {
                rec.set(Field::Phone, "person.phone_number", ph);
            }
            if let Some(n) = p.get("name").and_then(json_text) {
                rec.set(Field::Name, "person.name", n);
            }
        }
        Some(other) => {
            if let Some(id) = json_text(other) {
                rec.platform_ids.push(format!("delighted_person:{id}"));
            }
        }
        None => {}
    }
    if let Some(Value::Object(props)) = v.get("person_properties") {
        rec.location_candidates
            .extend(props.values().filter_map(json_text));
    }
}
