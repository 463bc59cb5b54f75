//! HubSpot: the CRM v3 objects API with a private app's token.
//!
//! - Contacts are found or created by email: `POST /crm/v3/objects/contacts/batch/upsert`
//!   with `idProperty = email` (the answer's `new` tells whether Tideline created it).
//! - Each interaction is a note (`hs_timestamp` places it on the contact's timeline,
//!   `hs_note_body` is HTML with every value escaped), upserted by a unique-value property
//!   (`id_property`, default `tideline_id`) that holds Tideline's key, then associated
//!   with the contact (`/crm/v4/associations/notes/contacts/batch/associate/default`).
//!   Upsert by key and associating are both idempotent: a delivery repeated after a
//!   timeout or a crash changes nothing.
//! - A change of a customer's series is a note on their contact; a change of a location is
//!   a task (`hs_task_*`), upserted the same way.
//! - Deletes (erasure): notes and tasks are archived in batches; a contact Tideline
//!   created goes through `/crm/v3/objects/contacts/gdpr-delete`.
//! - Rate limits: at most `requests_per_10s` requests per rolling 10 s from this process;
//!   a 429 pauses the sink for `Retry-After`, else the window HubSpot names in
//!   `X-HubSpot-RateLimit-Interval-Milliseconds`, else 10 s (a daily limit ends the run).

use super::{Answer, Halt, Http, Target, Verdict, contact_link, halt_for, render, retry_after};
use crate::config::HubspotSettings;
use crate::store::{CrmEntity, CrmItem, CrmLink, CrmPayload, CrmPerson};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub(super) struct Hubspot {
    http: Http,
    s: HubspotSettings,
    sent: Mutex<VecDeque<Instant>>,
    /// Contacts found or created since the runner last asked.
    learned: std::sync::Mutex<Vec<CrmLink>>,
}

/// What one item needs sent.
enum Plan<'a> {
    Note { props: Value, person: &'a CrmPerson },
    Task { props: Value },
    Delete { object: &'static str, id: String },
    Done(Verdict),
}

const WINDOW: Duration = Duration::from_secs(10);

impl Hubspot {
    pub fn new(http: Http, s: HubspotSettings) -> Self {
        Self {
            http,
            s,
            sent: Mutex::new(VecDeque::new()),
            learned: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Waits until one more request fits the rolling window.
    async fn pace(&self) {
        let mut sent = self.sent.lock().await;
        loop {
            let now = Instant::now();
            while sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                sent.pop_front();
            }
            if sent.len() < self.s.requests_per_10s as usize {
                sent.push_back(now);
                return;
            }
            let wait = WINDOW - now.duration_since(*sent.front().expect("full window"));
            tokio::time::sleep(wait).await;
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Answer, Halt> {
        self.pace().await;
        let req = self
            .http
            .client
            .post(format!("{}{path}", self.s.base_url))
            .bearer_auth(self.s.token.expose())
            .header("content-type", "application/json")
            .body(body.to_string());
        let a = self.http.send(req).await?;
        if (200..300).contains(&a.status) {
            return Ok(a);
        }
        Err(halt(&a))
    }

    /// Batch upsert of `object` by `id_property`: key → record id (and whether it is new).
    async fn upsert(
        &self,
        object: &str,
        id_property: &str,
        inputs: Vec<(String, Value)>,
    ) -> Result<HashMap<String, (String, bool)>, Halt> {
        if inputs.is_empty() {
            return Ok(HashMap::new());
        }
        let body = json!({
            "inputs": inputs.iter().map(|(id, props)| json!({
                "idProperty": id_property,
                "id": id,
                "properties": props,
            })).collect::<Vec<_>>()
        });
        let a = self
            .post(&format!("/crm/v3/objects/{object}/batch/upsert"), &body)
            .await?;
        let v: Value = serde_json::from_str(&a.body).map_err(|e| Halt::Failed {
            error: format!("HubSpot {object} upsert: answer is not JSON: {e}"),
            uncertain: true,
        })?;
        let mut out = HashMap::new();
        for r in v["results"].as_array().into_iter().flatten() {
            let (Some(id), Some(key)) = (r["id"].as_str(), r["properties"][id_property].as_str())
            else {
                continue;
            };
            out.insert(
                key.to_lowercase(),
                (id.to_string(), r["new"].as_bool().unwrap_or(false)),
            );
        }
        Ok(out)
    }

    fn plan<'a>(&self, item: &'a CrmItem) -> Plan<'a> {
        let key = item.crm_key.as_str();
        let no_email = || {
            Plan::Done(Verdict::Skipped(
                "no email: HubSpot contacts are found by email".into(),
            ))
        };
        match &item.payload {
            CrmPayload::Interaction {
                interaction,
                person,
            } => match person {
                Some(p) if p.email.is_some() => Plan::Note {
                    props: json!({
                        self.s.id_property.as_str(): key,
                        "hs_timestamp": render::iso_ms(interaction.interaction.occurred_at_ms),
                        "hs_note_body": render::interaction_html(interaction),
                    }),
                    person: p,
                },
                _ => no_email(),
            },
            CrmPayload::Change { change, person } => {
                if change.change.entity == "customer" {
                    match person {
                        Some(p) if p.email.is_some() => Plan::Note {
                            props: json!({
                                self.s.id_property.as_str(): key,
                                "hs_timestamp": render::iso_ms(change.change.occurred_at_ms),
                                "hs_note_body": render::change_html(change),
                            }),
                            person: p,
                        },
                        _ => no_email(),
                    }
                } else {
                    Plan::Task {
                        props: json!({
                            self.s.id_property.as_str(): key,
                            "hs_timestamp": render::iso_ms(change.change.occurred_at_ms),
                            "hs_task_subject": render::change_subject(change),
                            "hs_task_body": render::change_html(change),
                            "hs_task_status": "NOT_STARTED",
                            "hs_task_priority": if change.change.direction == "down" { "HIGH" } else { "MEDIUM" },
                        }),
                    }
                }
            }
            CrmPayload::Delete => {
                let link = vec![CrmLink {
                    entity: item.entity,
                    crm_key: item.crm_key.clone(),
                    customer_id: None,
                    remote_id: None,
                    created: true,
                }];
                match item.remote_id.as_deref() {
                    Some(r) => match r.split_once('/') {
                        Some(("notes", id)) => Plan::Delete {
                            object: "notes",
                            id: id.to_string(),
                        },
                        Some(("tasks", id)) => Plan::Delete {
                            object: "tasks",
                            id: id.to_string(),
                        },
                        _ if item.entity == CrmEntity::Customer => Plan::Delete {
                            object: "contacts",
                            id: r.to_string(),
                        },
                        _ => Plan::Done(Verdict::Delivered(link)),
                    },
                    None => Plan::Done(Verdict::Delivered(link)),
                }
            }
            CrmPayload::Gone => Plan::Done(Verdict::Delivered(Vec::new())),
        }
    }
}

/// A HubSpot error answer as a halt: a daily limit ends the run, a rolling one pauses.
fn halt(a: &Answer) -> Halt {
    if a.status == 429 {
        let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        let daily = v["policyName"]
            .as_str()
            .is_some_and(|p| p.eq_ignore_ascii_case("DAILY"));
        let wait = if daily {
            Duration::from_secs(3600)
        } else {
            retry_after(&a.headers)
                .or_else(|| {
                    a.headers
                        .get("x-hubspot-ratelimit-interval-milliseconds")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_millis)
                })
                .unwrap_or(Duration::from_secs(10))
        };
        return Halt::RateLimited {
            wait,
            error: format!("HubSpot rate limit: {}", a.snippet()),
        };
    }
    halt_for(a, "HubSpot")
}

#[async_trait]
impl Target for Hubspot {
    fn learned(&self) -> Vec<CrmLink> {
        std::mem::take(&mut *self.learned.lock().expect("not poisoned"))
    }

    async fn deliver(&self, items: &[CrmItem]) -> Result<Vec<Verdict>, Halt> {
        let plans: Vec<Plan> = items.iter().map(|i| self.plan(i)).collect();

        // 1. Contacts for the notes whose person the sink does not know yet.
        let mut emails: Vec<String> = plans
            .iter()
            .filter_map(|p| match p {
                Plan::Note { person, .. } if person.contact_id.is_none() => {
                    person.email.as_ref().map(|e| e.to_lowercase())
                }
                _ => None,
            })
            .collect();
        emails.sort();
        emails.dedup();
        let contacts = self
            .upsert(
                "contacts",
                "email",
                emails
                    .iter()
                    .map(|e| (e.clone(), json!({ "email": e })))
                    .collect(),
            )
            .await?;

        // HubSpot says `new` only once: remember the contacts now, before a later request
        // of this batch can fail.
        {
            let mut learned = self.learned.lock().expect("not poisoned");
            for p in &plans {
                if let Plan::Note { person, .. } = p
                    && person.contact_id.is_none()
                    && let Some((id, new)) = person
                        .email
                        .as_ref()
                        .and_then(|e| contacts.get(&e.to_lowercase()))
                {
                    learned.push(contact_link(person, id, *new));
                }
            }
        }

        // 2. Notes and tasks, upserted by key.
        let mut notes = Vec::new();
        let mut tasks = Vec::new();
        for (item, plan) in items.iter().zip(&plans) {
            match plan {
                Plan::Note { props, .. } => notes.push((item.crm_key.clone(), props.clone())),
                Plan::Task { props, .. } => tasks.push((item.crm_key.clone(), props.clone())),
                _ => {}
            }
        }
        let notes = self.upsert("notes", &self.s.id_property, notes).await?;
        let tasks = self.upsert("tasks", &self.s.id_property, tasks).await?;

        // 3. Each note on its contact's timeline.
        let contact_of = |p: &CrmPerson| -> Option<(String, bool)> {
            match &p.contact_id {
                Some(id) => Some((id.clone(), false)),
                None => p
                    .email
                    .as_ref()
                    .and_then(|e| contacts.get(&e.to_lowercase()).cloned()),
            }
        };
        let mut pairs = Vec::new();
        for (item, plan) in items.iter().zip(&plans) {
            if let Plan::Note { person, .. } = plan
                && let (Some((note, _)), Some((contact, _))) =
                    (notes.get(&item.crm_key.to_lowercase()), contact_of(person))
            {
                pairs.push(json!({"from": {"id": note}, "to": {"id": contact}}));
            }
        }
        if !pairs.is_empty() {
            self.post(
                "/crm/v4/associations/notes/contacts/batch/associate/default",
                &json!({ "inputs": pairs }),
            )
            .await?;
        }

        // 4. Deletes.
        for object in ["notes", "tasks"] {
            let ids: Vec<Value> = plans
                .iter()
                .filter_map(|p| match p {
                    Plan::Delete { object: o, id } if *o == object => Some(json!({ "id": id })),
                    _ => None,
                })
                .collect();
            if !ids.is_empty() {
                self.post(
                    &format!("/crm/v3/objects/{object}/batch/archive"),
                    &json!({ "inputs": ids }),
                )
                .await?;
            }
        }
        let mut contact_deletes: HashMap<String, Verdict> = HashMap::new();
        for p in &plans {
            if let Plan::Delete {
                object: "contacts",
                id,
            } = p
            {
                let v = match self
                    .post(
                        "/crm/v3/objects/contacts/gdpr-delete",
                        &json!({ "objectId": id }),
                    )
                    .await
                {
                    Ok(_) | Err(Halt::Refused(_)) => None,
                    Err(Halt::Failed { error, uncertain }) => Some(Verdict::Failed {
                        error,
                        counts: true,
                        uncertain,
                    }),
                    Err(h) => return Err(h),
                };
                // 404: the contact is already gone, which is what was asked.
                if let Some(v) = v {
                    contact_deletes.insert(id.clone(), v);
                }
            }
        }

        // 5. The verdicts.
        let mut out = Vec::with_capacity(items.len());
        for (item, plan) in items.iter().zip(plans) {
            let v = match plan {
                Plan::Done(v) => v,
                Plan::Note { person, .. } => {
                    match (notes.get(&item.crm_key.to_lowercase()), contact_of(person)) {
                        (Some((note, _)), Some((contact, new))) => Verdict::Delivered(vec![
                            CrmLink {
                                entity: item.entity,
                                crm_key: item.crm_key.clone(),
                                customer_id: Some(person.customer_id.clone()),
                                remote_id: Some(format!("notes/{note}")),
                                created: true,
                            },
                            contact_link(person, &contact, new),
                        ]),
                        _ => Verdict::Failed {
                            error: "HubSpot's answer did not list this note or its contact".into(),
                            counts: true,
                            uncertain: true,
                        },
                    }
                }
                Plan::Task { .. } => match tasks.get(&item.crm_key.to_lowercase()) {
                    Some((task, _)) => Verdict::Delivered(vec![CrmLink {
                        entity: item.entity,
                        crm_key: item.crm_key.clone(),
                        customer_id: None,
                        remote_id: Some(format!("tasks/{task}")),
                        created: true,
                    }]),
                    None => Verdict::Failed {
                        error: "HubSpot's answer did not list this task".into(),
                        counts: true,
                        uncertain: true,
                    },
                },
                Plan::Delete { object, id } => {
                    match (object == "contacts")
                        .then(|| contact_deletes.remove(id.as_str()))
                        .flatten()
                    {
                        Some(v) => v,
                        None => Verdict::Delivered(vec![CrmLink {
                            entity: item.entity,
                            crm_key: item.crm_key.clone(),
                            customer_id: None,
                            remote_id: None,
                            created: true,
                        }]),
                    }
                }
            };
            out.push(v);
        }
        Ok(out)
    }
}
