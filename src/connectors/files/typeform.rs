//! Typeform responses as `GET /forms/{form_id}/responses` returns them
//! (`{total_items, page_count, items}`); the API connector and the `typeform-json` preset
//! share [`response_record`].
//!
//! A response names nobody by itself: the only identities are its `hidden` fields (values
//! passed in the survey URL), read by configurable names (email, customer id as `crm:`,
//! phone, store/location). Answers carry their question as `field.ref` (stable, set by the
//! form's author) and `field.id`; which question is NPS, CSAT, CES or the comment is
//! therefore configuration: [`Answers`]. An NPS or opinion-scale answer is
//! `{"type": "number", "number": 7}`; a value outside the scale is left to the pipeline,
//! which quarantines the response naming the field.
//!
//! The preset reads the roles from the `--mapping` file: `[fields]` `nps`, `csat`, `ces`
//! and `text` list answer refs or ids; `email`, `phone` and `location` list hidden field
//! names; `platform_ids.crm` names the customer-id hidden field; `csat_scale` and
//! `ces_scale` give the scales. Without a mapping the defaults are the refs `nps`, `csat`,
//! `ces`, `comment` and the hidden fields `email`, `customer_id`, `phone`, `store` and
//! `location`. The connector keeps each response as
//! `{"form_id": ..., "answers": <the roles it used>, "response": ...}`, so a quarantined
//! response replays with the same roles.

use super::mapping::{Mapping, json_text};
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which answers and hidden fields mean what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Answers {
    /// Field refs or ids of the NPS question (0-10).
    pub nps: Vec<String>,
    pub csat: Vec<String>,
    pub csat_scale: String,
    pub ces: Vec<String>,
    pub ces_scale: String,
    /// Free-text answers, joined in this order.
    pub text: Vec<String>,
    pub hidden_email: Vec<String>,
    pub hidden_customer_id: Vec<String>,
    pub hidden_phone: Vec<String>,
    pub hidden_location: Vec<String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            nps: strings(&["nps"]),
            csat: strings(&["csat"]),
            csat_scale: "1-5".into(),
            ces: strings(&["ces"]),
            ces_scale: "1-7".into(),
            text: strings(&["comment"]),
            hidden_email: strings(&["email"]),
            hidden_customer_id: strings(&["customer_id"]),
            hidden_phone: strings(&["phone"]),
            hidden_location: strings(&["store", "location"]),
        }
    }
}

impl Answers {
    /// The roles a `--mapping` file gives (see the module comment); defaults elsewhere.
    pub fn from_mapping(m: Option<&Mapping>) -> Answers {
        let mut a = Answers::default();
        let Some(m) = m else { return a };
        let names = |f: Field| -> Option<Vec<String>> {
            m.fields
                .get(f.as_str())
                .map(|c| c.names().into_iter().map(str::to_string).collect())
        };
        if let Some(v) = names(Field::Nps) {
            a.nps = v;
        }
        if let Some(v) = names(Field::Csat) {
            a.csat = v;
        }
        if let Some(v) = names(Field::Ces) {
            a.ces = v;
        }
        if let Some(v) = names(Field::Text) {
            a.text = v;
        }
        if let Some(v) = names(Field::Email) {
            a.hidden_email = v;
        }
        if let Some(v) = names(Field::Phone) {
            a.hidden_phone = v;
        }
        if let Some(v) = names(Field::Location) {
            a.hidden_location = v;
        }
        if let Some(c) = m.platform_ids.get("crm") {
            a.hidden_customer_id = vec![c.clone()];
        }
        if let Some(s) = &m.csat_scale {
            a.csat_scale = s.clone();
        }
        if let Some(s) = &m.ces_scale {
            a.ces_scale = s.clone();
        }
        a
    }

    /// Only the roles whose refs this response answers (what the connector keeps with it).
    fn used_by(&self, answers: &[Value]) -> Answers {
        let present = |list: &[String]| -> Vec<String> {
            list.iter()
                .filter(|r| answers.iter().any(|a| answer_is(a, r)))
                .cloned()
                .collect()
        };
        Answers {
            nps: present(&self.nps),
            csat: present(&self.csat),
            ces: present(&self.ces),
            text: present(&self.text),
            ..self.clone()
        }
    }
}

/// Is this page of the API (rather than one response)?
pub fn is_page(v: &Value) -> bool {
    v.get("items").is_some_and(Value::is_array)
}

/// The raw record the connector keeps for a response.
pub fn wrap(form_id: &str, answers: &Answers, response: &Value) -> String {
    let items = response
        .get("answers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    serde_json::json!({
        "form_id": form_id,
        "answers": answers.used_by(items),
        "response": response,
    })
    .to_string()
}

fn answer_is(answer: &Value, key: &str) -> bool {
    let f = answer.get("field");
    let is = |k: &str| {
        f.and_then(|f| f.get(k))
            .and_then(Value::as_str)
            .is_some_and(|v| v == key)
    };
    is("ref") || is("id")
}

/// The value of an answer as text: `number`, `text`, `email`, `phone_number`, `boolean`,
/// `date`, `url`, a choice's label or a list of choice labels.
fn answer_value(answer: &Value) -> Option<String> {
    let kind = answer.get("type").and_then(Value::as_str).unwrap_or("");
    let direct = answer.get(kind).filter(|_| !kind.is_empty());
    match (kind, direct) {
        ("choice", Some(c)) => c
            .get("label")
            .or_else(|| c.get("other"))
            .and_then(json_text),
        ("choices", Some(c)) => c.get("labels").and_then(Value::as_array).map(|l| {
            l.iter()
                .filter_map(json_text)
                .collect::<Vec<_>>()
                .join(", ")
        }),
        (_, Some(v)) => json_text(v),
        // Drift: no `type`, or a value under another key.
        _ => ["number", "text", "choice"]
            .iter()
            .find_map(|k| answer.get(*k))
            .and_then(|v| json_text(v).or_else(|| v.get("label").and_then(json_text))),
    }
}

/// The first answer to one of `keys` (refs or ids), with the key it matched.
fn first_answer(answers: &[Value], keys: &[String]) -> Option<(String, String)> {
    keys.iter().find_map(|k| {
        answers
            .iter()
            .find(|a| answer_is(a, k))
            .and_then(answer_value)
            .map(|v| (k.clone(), v))
    })
}

/// Fills a record from one response with the given roles. Accepts the connector's wrapper
/// `{"form_id", "answers", "response"}`, whose roles win unless `roles_override` is set.
pub fn response_record(v: &Value, roles: &Answers, roles_override: bool, rec: &mut SourceRecord) {
    if let Some(r) = v.get("response").filter(|r| r.is_object()) {
        let kept = v
            .get("answers")
            .and_then(|a| serde_json::from_value::<Answers>(a.clone()).ok());
        let roles = match kept {
            Some(k) if !roles_override => k,
            _ => roles.clone(),
        };
        return response_record(r, &roles, true, rec);
    }
    let s = |k: &str| v.get(k).and_then(json_text);
    if let Some(id) = s("token").or_else(|| s("response_id")) {
        rec.set(Field::ExternalId, "token", id);
    }
    rec.set(Field::Kind, "preset", "survey_response");
    if let Some(t) = s("submitted_at").or_else(|| s("landed_at")) {
        rec.set(Field::OccurredAt, "submitted_at", t);
    }
    let answers: &[Value] = v
        .get("answers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let label = |k: &str| format!("answers[{k}]");
    if let Some((k, n)) = first_answer(answers, &roles.nps) {
        rec.set(Field::Nps, &label(&k), n);
    }
    if let Some((k, n)) = first_answer(answers, &roles.csat) {
        rec.set(Field::Csat, &label(&k), n);
        rec.set(Field::CsatScale, "csat_scale", roles.csat_scale.clone());
    }
    if let Some((k, n)) = first_answer(answers, &roles.ces) {
        rec.set(Field::Ces, &label(&k), n);
        rec.set(Field::CesScale, "ces_scale", roles.ces_scale.clone());
    }
    let texts: Vec<String> = roles
        .text
        .iter()
        .filter_map(|k| {
            answers
                .iter()
                .find(|a| answer_is(a, k))
                .and_then(answer_value)
        })
        .filter(|t| !t.trim().is_empty())
        .collect();
    if !texts.is_empty() {
        rec.set(Field::Text, "answers[text]", texts.join("\n\n"));
    }
    let hidden = v.get("hidden").filter(|h| h.is_object());
    let h = |names: &[String]| -> Option<(String, String)> {
        names.iter().find_map(|n| {
            hidden
                .and_then(|h| h.get(n))
                .and_then(json_text)
                .filter(|x| !x.trim().is_empty())
                .map(|x| (n.clone(), x))
        })
    };
    if let Some((n, e)) = h(&roles.hidden_email) {
        rec.set(Field::Email, &format!("hidden.{n}"), e);
    }
    if let Some((n, p)) = h(&roles.hidden_phone) {
        rec.set(Field::Phone, &format!("hidden.{n}"), p);
    }
    if let Some((_, id)) = h(&roles.hidden_customer_id) {
        rec.platform_ids.push(format!("crm:{}", id.trim()));
    }
    for n in &roles.hidden_location {
        if let Some(l) = hidden.and_then(|h| h.get(n)).and_then(json_text) {
            rec.location_candidates.push(l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Value {
        json!({
            "landing_id": "l1", "token": "tok1", "landed_at": "2026-03-01T10:00:00Z",
            "submitted_at": "2026-03-01T10:02:00Z",
            "hidden": {"email": "Ana@Example.org", "customer_id": "991", "store": "berlin-01"},
            "answers": [
                {"field": {"id": "f1", "type": "nps", "ref": "nps"}, "type": "number", "number": 9},
                {"field": {"id": "f2", "type": "opinion_scale", "ref": "effort"}, "type": "number", "number": 6},
                {"field": {"id": "f3", "type": "long_text", "ref": "comment"}, "type": "text", "text": "Quick and kind"},
                {"field": {"id": "f4", "type": "multiple_choice", "ref": "sat"}, "type": "choice", "choice": {"label": "4"}}
            ]
        })
    }

    #[test]
    fn answers_by_ref_or_id_and_identity_from_hidden_fields() {
        let roles = Answers {
            ces: vec!["effort".into()],
            csat: vec!["f4".into()],
            ..Answers::default()
        };
        let mut rec = SourceRecord::default();
        response_record(&item(), &roles, false, &mut rec);
        let f = |x: Field| rec.fields.get(&x).cloned();
        assert_eq!(f(Field::ExternalId).as_deref(), Some("tok1"));
        assert_eq!(
            f(Field::OccurredAt).as_deref(),
            Some("2026-03-01T10:02:00Z")
        );
        assert_eq!(f(Field::Nps).as_deref(), Some("9"));
        assert_eq!(f(Field::Ces).as_deref(), Some("6"));
        assert_eq!(f(Field::CesScale).as_deref(), Some("1-7"));
        assert_eq!(f(Field::Csat).as_deref(), Some("4"));
        assert_eq!(f(Field::Text).as_deref(), Some("Quick and kind"));
        assert_eq!(f(Field::Email).as_deref(), Some("Ana@Example.org"));
        assert_eq!(rec.platform_ids, vec!["crm:991".to_string()]);
        assert_eq!(rec.location_candidates, vec!["berlin-01".to_string()]);
    }

    #[test]
    fn the_kept_wrapper_replays_with_its_roles() {
        let roles = Answers {
            ces: vec!["effort".into()],
            ..Answers::default()
        };
        let raw = wrap("form1", &roles, &item());
        let kept: Value = serde_json::from_str(&raw).unwrap();
        // Only the roles this response answered are kept.
        assert_eq!(kept["answers"]["csat"], json!([]));
        assert_eq!(kept["answers"]["ces"], json!(["effort"]));
        let mut rec = SourceRecord::default();
        response_record(&kept, &Answers::default(), false, &mut rec);
        assert_eq!(rec.fields.get(&Field::Ces).map(String::as_str), Some("6"));
        // An explicit mapping wins over the kept roles.
        let mut rec = SourceRecord::default();
        response_record(&kept, &Answers::default(), true, &mut rec);
        assert_eq!(rec.fields.get(&Field::Ces), None);
    }

    #[test]
    fn roles_from_a_mapping() {
        let m = Mapping::parse(
            "csat_scale = \"1-7\"\n[platform_ids]\ncrm = \"cid\"\n[fields]\nnps = [\"q_rec\", \"nps\"]\ncsat = \"q_sat\"\nemail = \"mail\"\n",
            "m.toml",
        )
        .unwrap();
        let a = Answers::from_mapping(Some(&m));
        assert_eq!(a.nps, vec!["q_rec".to_string(), "nps".to_string()]);
        assert_eq!(a.csat, vec!["q_sat".to_string()]);
        assert_eq!(a.csat_scale, "1-7");
        assert_eq!(a.hidden_email, vec!["mail".to_string()]);
        assert_eq!(a.hidden_customer_id, vec!["cid".to_string()]);
        assert_eq!(a.text, vec!["comment".to_string()]);
    }
}
