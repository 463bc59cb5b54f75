//! Salesforce: the REST API with an OAuth access token.
//!
//! - Contacts by email: one SOQL query for the batch's emails
//!   (`SELECT Id, Email FROM Contact WHERE Email IN (...)`), the missing ones created with
//!   one sObject Collections `POST` (at most 200). A contact created just before a crash
//!   is found by the next query, not created twice.
//! - Records: one sObject Collections upsert per batch,
//!   `PATCH /composite/sobjects/{object}/{external_id_field}` with `allOrNone: false`, so
//!   each record succeeds or fails on its own and the same key always lands on the same
//!   record. `Task` (the default) gets `Subject`, `Description`, `ActivityDate` (the UTC
//!   date: Salesforce stores it at midnight UTC), `Status`, `Priority` and `WhoId`; a
//!   custom object gets the fields listed in the README (`Contact__c`, `Occurred_At__c`, ...).
//! - Deletes (erasure): `DELETE /composite/sobjects?ids=...` (at most 200); a record that
//!   is already gone counts as deleted. Contacts Tideline created are deleted too.

use super::{Answer, Halt, Http, Target, Verdict, contact_link, halt_for, render};
use crate::config::SalesforceSettings;
use crate::store::{CrmItem, CrmLink, CrmPayload, CrmPerson};
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub(super) struct Salesforce {
    http: Http,
    s: SalesforceSettings,
    /// Contacts found or created since the runner last asked.
    learned: std::sync::Mutex<Vec<CrmLink>>,
}

/// Per-record error codes worth another try (a lock held by another transaction).
const RETRYABLE: [&str; 3] = [
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "REQUEST_RUNNING_TOO_LONG",
];
/// Delete answers that mean the record is already gone.
const GONE: [&str; 2] = ["ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"];

/// A SOQL string literal.
fn soql_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `LastName` is required on a Contact: the display name's last word, else the email's
/// local part.
fn last_name(p: &CrmPerson, email: &str) -> String {
    let from_name = p
        .display_name
        .as_deref()
        .and_then(|n| n.split_whitespace().last())
        .map(|w| crate::outputs::one_line(w, 80));
    from_name
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| crate::outputs::one_line(email.split('@').next().unwrap_or(email), 80))
}

fn record_errors(r: &Value) -> (String, bool) {
    let errs: Vec<&Value> = r["errors"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let codes: Vec<&str> = errs
        .iter()
        .filter_map(|e| e["statusCode"].as_str())
        .collect();
    let text = errs
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["statusCode"].as_str().unwrap_or("ERROR"),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let retry = codes.iter().any(|c| RETRYABLE.contains(c));
    (crate::outputs::one_line(&text, 500), retry)
}

/// The verdict on one record Salesforce did not accept: a lock or a transient error is
/// tried again, anything else parks the record.
fn refused(r: &Value, what: &str) -> Verdict {
    let (error, retry) = record_errors(r);
    let error = format!("Salesforce refused the {what}: {error}");
    if retry {
        Verdict::Failed {
            error,
            counts: true,
            uncertain: false,
        }
    } else {
        Verdict::Refused(error)
    }
}

impl Salesforce {
    pub fn new(http: Http, s: SalesforceSettings) -> Self {
        Self {
            http,
            s,
            learned: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/services/data/v{}{path}",
            self.s.instance_url, self.s.api_version
        )
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, Halt> {
        let a = self
            .http
            .send(req.bearer_auth(self.s.token.expose()))
            .await?;
        if !(200..300).contains(&a.status) {
            return Err(halt(&a));
        }
        serde_json::from_str(&a.body).map_err(|e| Halt::Failed {
            error: format!("Salesforce: answer is not JSON: {e}"),
            uncertain: true,
        })
    }

    /// email (lower case) → (contact id, created now), for every email given.
    async fn contacts(
        &self,
        wanted: &[(String, &CrmPerson)],
    ) -> Result<HashMap<String, (String, bool)>, Halt> {
        let mut found: HashMap<String, (String, bool)> = HashMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        // A GET's URI stays far below Salesforce's 16,384 characters with 50 emails a query.
        for chunk in wanted.chunks(50) {
            let list: Vec<String> = chunk.iter().map(|(e, _)| soql_quote(e)).collect();
            let q = format!(
                "SELECT Id, Email FROM Contact WHERE Email IN ({})",
                list.join(", ")
            );
            let mut v = self
                .send(
                    self.http
                        .client
                        .get(with_query(&self.url("/query"), &[("q", q.as_str())])?),
                )
                .await?;
            loop {
                for r in v["records"].as_array().into_iter().flatten() {
                    if let (Some(id), Some(email)) = (r["Id"].as_str(), r["Email"].as_str()) {
                        found
                            .entry(email.to_lowercase())
                            .or_insert((id.to_string(), false));
                    }
                }
                match v["nextRecordsUrl"].as_str() {
                    Some(next) if v["done"] == Value::Bool(false) => {
                        let url = format!("{}{next}", self.s.instance_url);
                        v = self.send(self.http.client.get(url)).await?;
                    }
                    _ => break,
                }
            }
        }
        let missing: Vec<&(String, &CrmPerson)> = wanted
            .iter()
            .filter(|(e, _)| !found.contains_key(e))
            .collect();
        if !missing.is_empty() {
            let body = json!({
                "allOrNone": false,
                "records": missing.iter().map(|(e, p)| json!({
                    "attributes": {"type": "Contact"},
                    "LastName": last_name(p, e),
                    "Email": e,
                })).collect::<Vec<_>>(),
            });
            let v = self
                .send(
                    self.http
                        .client
                        .post(self.url("/composite/sobjects"))
                        .header("content-type", "application/json")
                        .body(body.to_string()),
                )
                .await?;
            for ((e, _), r) in missing.iter().zip(v.as_array().into_iter().flatten()) {
                if r["success"].as_bool() == Some(true)
                    && let Some(id) = r["id"].as_str()
                {
                    found.insert(e.clone(), (id.to_string(), true));
                }
            }
        }
        Ok(found)
    }

    fn fields(&self, item: &CrmItem, who: Option<&str>) -> Option<Map<String, Value>> {
        let task = self.s.object == "Task";
        let mut f = Map::new();
        f.insert("attributes".into(), json!({ "type": self.s.object }));
        f.insert(self.s.external_id_field.clone(), json!(item.crm_key));
        match &item.payload {
            CrmPayload::Interaction { interaction, .. } => {
                let x = &interaction.interaction;
                if task {
                    f.insert(
                        "Subject".into(),
                        json!(render::interaction_subject(interaction)),
                    );
                    f.insert(
                        "Description".into(),
                        json!(render::interaction_text(interaction)),
                    );
                    f.insert("ActivityDate".into(), json!(utc_date(x.occurred_at_ms)));
                    f.insert("Status".into(), json!("Completed"));
                    let negative = x
                        .sentiment
                        .as_ref()
                        .is_some_and(|s| s.label.as_str() == "negative");
                    f.insert(
                        "Priority".into(),
                        json!(if negative { "High" } else { "Normal" }),
                    );
                } else {
                    f.insert(
                        "Occurred_At__c".into(),
                        json!(render::iso_ms(x.occurred_at_ms)),
                    );
                    f.insert("Source__c".into(), json!(x.source));
                    f.insert("Kind__c".into(), json!(x.kind.as_str()));
                    f.insert("Location__c".into(), json!(x.location_id));
                    f.insert("Rating__c".into(), json!(x.stars));
                    f.insert(
                        "Sentiment__c".into(),
                        json!(x.sentiment.as_ref().map(|s| s.score)),
                    );
                    f.insert(
                        "Sentiment_Label__c".into(),
                        json!(x.sentiment.as_ref().map(|s| s.label.as_str())),
                    );
                    f.insert("Language__c".into(), json!(x.language));
                    f.insert(
                        "Text__c".into(),
                        json!(render::interaction_text(interaction)),
                    );
                    f.insert("Url__c".into(), json!(x.url));
                }
            }
            CrmPayload::Change { change, .. } => {
                let c = &change.change;
                if task {
                    f.insert("Subject".into(), json!(render::change_subject(change)));
                    f.insert("Description".into(), json!(render::change_text(change)));
                    f.insert("ActivityDate".into(), json!(utc_date(c.occurred_at_ms)));
                    f.insert("Status".into(), json!("Not Started"));
                    f.insert(
                        "Priority".into(),
                        json!(if c.direction == "down" {
                            "High"
                        } else {
                            "Normal"
                        }),
                    );
                } else {
                    f.insert(
                        "Occurred_At__c".into(),
                        json!(render::iso_ms(c.occurred_at_ms)),
                    );
                    f.insert("Kind__c".into(), json!("change"));
                    f.insert(
                        "Location__c".into(),
                        json!((c.entity == "location").then_some(&c.entity_id)),
                    );
                    f.insert("Text__c".into(), json!(render::change_text(change)));
                }
            }
            _ => return None,
        }
        if let Some(who) = who {
            f.insert(if task { "WhoId" } else { "Contact__c" }.into(), json!(who));
        }
        Some(f)
    }
}

/// A URL with its query parameters encoded.
fn with_query(url: &str, params: &[(&str, &str)]) -> Result<reqwest::Url, Halt> {
    reqwest::Url::parse_with_params(url, params)
        .map_err(|e| Halt::Unauthorized(format!("Salesforce instance_url is not a URL: {e}")))
}

/// Whom a record is about (an interaction's person, a customer's change's person).
fn person_of(i: &CrmItem) -> Option<&CrmPerson> {
    match &i.payload {
        CrmPayload::Interaction { person, .. } => person.as_ref(),
        CrmPayload::Change { person, change } if change.change.entity == "customer" => {
            person.as_ref()
        }
        _ => None,
    }
}

fn utc_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A Salesforce error answer as a halt (its body is a list of `{message, errorCode}`).
fn halt(a: &Answer) -> Halt {
    let code = serde_json::from_str::<Value>(&a.body)
        .ok()
        .and_then(|v| v[0]["errorCode"].as_str().map(str::to_string))
        .unwrap_or_default();
    if a.status == 403 && code == "REQUEST_LIMIT_EXCEEDED" {
        // The org's daily API request limit: wait for it rather than hammer it.
        return Halt::RateLimited {
            wait: super::retry_after(&a.headers).unwrap_or(std::time::Duration::from_secs(3600)),
            error: format!("Salesforce API limit: {}", a.snippet()),
        };
    }
    halt_for(a, "Salesforce")
}

#[async_trait]
impl Target for Salesforce {
    fn learned(&self) -> Vec<CrmLink> {
        std::mem::take(&mut *self.learned.lock().expect("not poisoned"))
    }

    async fn deliver(&self, items: &[CrmItem]) -> Result<Vec<Verdict>, Halt> {
        let mut out: Vec<Option<Verdict>> = vec![None; items.len()];

        // Whom each record is about; a record needs its person's email for the contact.
        let mut wanted: Vec<(String, &CrmPerson)> = Vec::new();
        for (k, item) in items.iter().enumerate() {
            let needs_person = match &item.payload {
                CrmPayload::Interaction { .. } => true,
                CrmPayload::Change { change, .. } => change.change.entity == "customer",
                _ => false,
            };
            if !needs_person {
                continue;
            }
            match person_of(item).and_then(|p| p.email.as_ref().map(|e| (e, p))) {
                Some((e, p)) => {
                    if p.contact_id.is_none() && !wanted.iter().any(|(w, _)| w == &e.to_lowercase())
                    {
                        wanted.push((e.to_lowercase(), p));
                    }
                }
                None => {
                    out[k] = Some(Verdict::Skipped(
                        "no email: Salesforce contacts are found by email".into(),
                    ))
                }
            }
        }
        let contacts = self.contacts(&wanted).await?;
        // Remembered now: a contact created here is Tideline's even if the upsert below
        // fails (the next query would only find it).
        {
            let mut learned = self.learned.lock().expect("not poisoned");
            for (e, p) in &wanted {
                if let Some((id, new)) = contacts.get(e) {
                    learned.push(contact_link(p, id, *new));
                }
            }
        }
        let contact_of = |p: &CrmPerson| -> Option<(String, bool)> {
            match &p.contact_id {
                Some(id) => Some((id.clone(), false)),
                None => p
                    .email
                    .as_ref()
                    .and_then(|e| contacts.get(&e.to_lowercase()).cloned()),
            }
        };

        // Upserts.
        let mut records = Vec::new();
        let mut upserted: Vec<usize> = Vec::new();
        for (k, item) in items.iter().enumerate() {
            if out[k].is_some() {
                continue;
            }
            let who = person_of(item).and_then(contact_of);
            if person_of(item).is_some() && who.is_none() {
                out[k] = Some(Verdict::Failed {
                    error: "Salesforce did not create the contact".into(),
                    counts: true,
                    uncertain: false,
                });
                continue;
            }
            if let Some(f) = self.fields(item, who.as_ref().map(|w| w.0.as_str())) {
                records.push(Value::Object(f));
                upserted.push(k);
            }
        }
        if !records.is_empty() {
            let path = format!(
                "/composite/sobjects/{}/{}",
                self.s.object, self.s.external_id_field
            );
            let v = self
                .send(
                    self.http
                        .client
                        .patch(self.url(&path))
                        .header("content-type", "application/json")
                        .body(json!({"allOrNone": false, "records": records}).to_string()),
                )
                .await?;
            let results = v.as_array().cloned().unwrap_or_default();
            for (n, &k) in upserted.iter().enumerate() {
                let item = &items[k];
                let v = match results.get(n) {
                    Some(r) if r["success"].as_bool() == Some(true) => {
                        let person = person_of(item);
                        let mut links = vec![CrmLink {
                            entity: item.entity,
                            crm_key: item.crm_key.clone(),
                            customer_id: person.map(|p| p.customer_id.clone()),
                            remote_id: r["id"].as_str().map(str::to_string),
                            created: true,
                        }];
                        if let Some(p) = person
                            && let Some((id, new)) = contact_of(p)
                        {
                            links.push(contact_link(p, &id, new));
                        }
                        Verdict::Delivered(links)
                    }
                    Some(r) => refused(r, "record"),
                    None => Verdict::Failed {
                        error: "Salesforce's answer did not list this record".into(),
                        counts: true,
                        uncertain: true,
                    },
                };
                out[k] = Some(v);
            }
        }

        // Deletes.
        let deletes: Vec<usize> = (0..items.len())
            .filter(|&k| out[k].is_none() && matches!(items[k].payload, CrmPayload::Delete))
            .collect();
        let done = |item: &CrmItem| {
            Verdict::Delivered(vec![CrmLink {
                entity: item.entity,
                crm_key: item.crm_key.clone(),
                customer_id: None,
                remote_id: None,
                created: true,
            }])
        };
        let with_id: Vec<usize> = deletes
            .iter()
            .copied()
            .filter(|&k| items[k].remote_id.is_some())
            .collect();
        for &k in &deletes {
            if items[k].remote_id.is_none() {
                out[k] = Some(done(&items[k]));
            }
        }
        if !with_id.is_empty() {
            let ids: Vec<&str> = with_id
                .iter()
                .filter_map(|&k| items[k].remote_id.as_deref())
                .collect();
            let v = self
                .send(self.http.client.delete(with_query(
                    &self.url("/composite/sobjects"),
                    &[("ids", ids.join(",").as_str()), ("allOrNone", "false")],
                )?))
                .await?;
            let results = v.as_array().cloned().unwrap_or_default();
            for (n, &k) in with_id.iter().enumerate() {
                let v = match results.get(n) {
                    Some(r) if r["success"].as_bool() == Some(true) => done(&items[k]),
                    Some(r) => {
                        let codes: Vec<&str> = r["errors"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e["statusCode"].as_str())
                            .collect();
                        if codes.iter().any(|c| GONE.contains(c)) {
                            done(&items[k])
                        } else {
                            refused(r, "delete")
                        }
                    }
                    None => Verdict::Failed {
                        error: "Salesforce's answer did not list this delete".into(),
                        counts: true,
                        uncertain: true,
                    },
                };
                out[k] = Some(v);
            }
        }
        Ok(out
            .into_iter()
            .map(|v| v.unwrap_or(Verdict::Delivered(Vec::new())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_literals_are_escaped() {
        assert_eq!(soql_quote("o'brien@x.com"), "'o\\'brien@x.com'");
        assert_eq!(soql_quote("a\\b"), "'a\\\\b'");
    }
}
