//! Zendesk beyond the ticket export: each ticket's public comments (customer comments as
//! contacts on the issue, agent replies as replies, the description and internal notes
//! skipped), the newer CSAT survey responses with their declared scale, and the pacing
//! of the incremental export (10 requests a minute by default).

use crate::common::TestDb;
use crate::{fakes, on_both_backends};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tideline::config::{Config, Overrides};
use tideline::metrics::Metrics;
use tideline::model::InteractionKind;

const AUTH: &str = "Bearer oauth-s3cret";

#[derive(Clone, Default)]
struct Fake {
    /// When each request to the incremental export arrived.
    export_times: Arc<Mutex<Vec<Instant>>>,
    /// Every request as `path?query`.
    log: Arc<Mutex<Vec<String>>>,
    /// Survey responses served (all pages).
    responses: Arc<Mutex<Vec<Value>>>,
}

fn refused(headers: &HeaderMap) -> Option<Response> {
    if fakes::header(headers, "authorization") != Some(AUTH) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                r#"{"error":"Couldn't authenticate you"}"#,
            )
                .into_response(),
        );
    }
    if !fakes::user_agent_ok(headers) {
        return Some((StatusCode::BAD_REQUEST, "no user agent").into_response());
    }
    None
}

fn ticket(n: i64) -> Value {
    json!({
        "id": n, "subject": format!("Order {n}"), "description": "Where is my parcel?",
        "status": "open", "requester_id": 500 + n, "tags": ["berlin-mitte"],
        "satisfaction_rating": {"score": "bad"},
        "created_at": "2026-03-02T09:00:00Z", "updated_at": "2026-03-03T09:00:00Z"
    })
}

fn log(fake: &Fake, path: &str, q: &HashMap<String, String>) {
    let mut pairs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    fake.log
        .lock()
        .unwrap()
        .push(format!("{path}?{}", pairs.join("&")));
}

async fn export(
    State(f): State<Fake>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    f.export_times.lock().unwrap().push(Instant::now());
    log(&f, "export", &q);
    if let Some(r) = refused(&headers) {
        return r;
    }
    let page = match q.get("cursor").map(String::as_str) {
        None => 0,
        Some("p1") => 1,
        Some("p2") => 2,
        Some(other) => panic!("unknown cursor {other}"),
    };
    let tickets: Vec<Value> = match page {
        0 => vec![ticket(1), ticket(2)],
        1 => vec![ticket(3)],
        _ => vec![],
    };
    let users: Vec<Value> = (1..=3)
        .map(|n| json!({"id": 500 + n, "name": format!("Customer {n}"), "email": format!("c{n}@example.org"), "role": "end-user"}))
        .collect();
    Json(json!({
        "tickets": tickets, "users": users, "metric_sets": [],
        "after_cursor": format!("p{}", (page + 1).min(2)),
        "after_url": "http://127.0.0.1/next", "before_cursor": null, "before_url": null,
        "end_of_stream": page >= 1
    }))
    .into_response()
}

/// Ticket n: its description (by the requester), a customer follow-up, an internal note,
/// an agent's public reply; ticket 2's comments come in two pages, ticket 3 has a
/// comment without an id.
async fn comments(
    State(f): State<Fake>,
    headers: HeaderMap,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let id: i64 = file.trim_end_matches(".json").parse().unwrap();
    log(&f, &format!("tickets/{id}/comments"), &q);
    if let Some(r) = refused(&headers) {
        return r;
    }
    assert_eq!(q.get("include").map(String::as_str), Some("users"));
    let requester = 500 + id;
    let agent = 9;
    let all = vec![
        json!({"id": id * 100 + 1, "type": "Comment", "author_id": requester, "body": "Where is my parcel?", "plain_body": "Where is my parcel?", "public": true, "created_at": "2026-03-02T09:00:00Z"}),
        json!({"id": id * 100 + 2, "type": "Comment", "author_id": agent, "body": "Internal: check the warehouse", "plain_body": "Internal: check the warehouse", "public": false, "created_at": "2026-03-02T10:00:00Z"}),
        json!({"id": id * 100 + 3, "type": "Comment", "author_id": agent, "body": "<p>It ships today.</p>", "plain_body": "It ships today.", "public": true, "created_at": "2026-03-02T11:00:00Z"}),
        json!({"id": id * 100 + 4, "type": "Comment", "author_id": requester, "body": "Still nothing arrived, this is really annoying.", "public": true, "created_at": "2026-03-04T08:00:00Z", "some_new_field": {"x": 1}}),
    ];
    let users = json!([
        {"id": requester, "name": format!("Customer {id}"), "email": format!("c{id}@example.org"), "role": "end-user"},
        {"id": agent, "name": "Agent Smith", "email": "agent@acme.example", "role": "agent"}
    ]);
    let (items, next) = match (id, q.get("page").map(String::as_str)) {
        (2, None) => (
            all[..2].to_vec(),
            Some(format!(
                "http://{}/api/v2/tickets/2/comments.json?include=users&page=2",
                fakes::header(&headers, "host").unwrap()
            )),
        ),
        (2, Some("2")) => (all[2..].to_vec(), None),
        (3, _) => {
            let mut v = all.clone();
            v.insert(
                2,
                json!({"type": "Comment", "author_id": requester, "body": "no id", "public": true}),
            );
            (v, None)
        }
        _ => (all, None),
    };
    Json(json!({
        "comments": items, "users": users,
        "next_page": next,
        "previous_page": null, "count": 4
    }))
    .into_response()
}

async fn survey_responses(
    State(f): State<Fake>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    log(&f, "survey_responses", &q);
    if let Some(r) = refused(&headers) {
        return r;
    }
    let since: i64 = q["filter[created_at_start]"].parse().unwrap();
    let all: Vec<Value> = f
        .responses
        .lock()
        .unwrap()
        .iter()
        .filter(|r| {
            let at = r["answers"][0]["created_at"]
                .as_str()
                .unwrap_or("2000-01-01T00:00:00Z");
            chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp()
                >= since
        })
        .cloned()
        .collect();
    let size: usize = q["page[size]"].parse().unwrap();
    let start: usize = q
        .get("page[after]")
        .map(|a| a.strip_prefix("a").unwrap().parse().unwrap())
        .unwrap_or(0);
    let end = (start + 2).min(all.len()); // two a page, whatever the size asked
    assert!(size >= 2);
    let more = end < all.len();
    Json(json!({
        "survey_responses": all[start..end],
        "meta": {"has_more": more, "after_cursor": if more { json!(format!("a{end}")) } else { Value::Null }, "before_cursor": null},
        "links": {"next": null, "prev": null}
    }))
    .into_response()
}

fn response(id: &str, ticket: i64, rating: Option<i64>, comment: Option<&str>, at: &str) -> Value {
    let mut answers = vec![];
    if let Some(r) = rating {
        answers.push(json!({"type": "rating_scale", "rating": r, "rating_category": if r >= 4 { "good" } else { "bad" },
            "question": {"id": "q1", "type": "rating_scale", "alias": "rating"}, "created_at": at, "updated_at": at}));
    }
    match comment {
        Some(c) => answers.push(json!({"type": "open_ended", "value": c,
            "question": {"id": "q2", "type": "open_ended", "alias": "comment"}, "created_at": at, "updated_at": at})),
        None => answers.push(json!({"type": "skipped",
            "question": {"id": "q2", "type": "open_ended", "alias": "comment"}, "created_at": at, "updated_at": at})),
    }
    json!({"id": id, "answers": answers, "responder_id": 500 + ticket,
        "subject_zrns": [format!("zen:ticket:{ticket}")], "survey_id": "S1", "survey_version": 3,
        "expires_at": "2026-04-30T00:00:00Z"})
}

async fn start(fake: Fake) -> String {
    let app = Router::new()
        .route("/api/v2/incremental/tickets/cursor.json", get(export))
        .route("/api/v2/tickets/{file}/comments.json", get(comments))
        .route("/api/v2/guide/survey_responses", get(survey_responses))
        .with_state(fake);
    fakes::serve(app).await
}

fn config(db: &TestDb, base: &str) -> Config {
    let token = fakes::secret_file(db.dir.path(), "zendesk_oauth", "oauth-s3cret");
    let text = format!(
        r#"
[storage]
database_url = "{}"
[pipeline]
sentiment_adapt = false
[[location]]
id = "berlin-mitte"
timezone = "Europe/Berlin"
country = "DE"
[[connector]]
kind = "zendesk"
name = "support"
base_url = "{base}"
oauth_token_file = "{}"
csat = "survey_responses"
csat_scale = "1-5"
incremental_requests_per_minute = 120
max_wait_secs = 5
"#,
        db.url.expose(),
        token.display()
    );
    Config::from_toml(&text, "test", &Overrides::default()).unwrap()
}

async fn zendesk_comments_new_csat_and_pacing(db: TestDb) {
    let fake = Fake::default();
    *fake.responses.lock().unwrap() = vec![
        response(
            "R1",
            1,
            Some(2),
            Some("Took a week, nobody called"),
            "2026-03-05T10:00:00Z",
        ),
        response("R2", 2, Some(5), None, "2026-03-05T11:00:00Z"),
        json!({"answers": [], "subject_zrns": ["zen:ticket:3"]}), // no id: quarantined
        response("R3", 3, Some(7), None, "2026-03-06T12:00:00Z"), // off the 1-5 scale
    ];
    let base = start(fake.clone()).await;
    let config = config(&db, &base);
    let metrics = Arc::new(Metrics::new());
    let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();

    // Pacing: 120 a minute is one request every 0.5 s on the incremental export.
    let times = fake.export_times.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= std::time::Duration::from_millis(480),
        "{:?}",
        times[1] - times[0]
    );

    let stored = db.store.interactions_after(0, 1000).await.unwrap();
    let of_kind = |k: InteractionKind| {
        stored
            .iter()
            .filter(|s| s.interaction.kind == k)
            .map(|s| s.interaction.clone())
            .collect::<Vec<_>>()
    };
    let tickets = of_kind(InteractionKind::Ticket);
    assert_eq!(tickets.len(), 3);
    // The newer CSAT is counted from its responses, not from the ticket's good/bad.
    assert!(tickets.iter().all(|t| t.csat.is_none()), "{tickets:?}");
    let customer_comments = of_kind(InteractionKind::TicketComment);
    assert_eq!(customer_comments.len(), 3, "one follow-up per ticket");
    for c in &customer_comments {
        assert!(c.text.as_deref().unwrap().contains("Still nothing arrived"));
        let ticket = c.parent_external_id.as_deref().unwrap();
        assert_eq!(c.external_id, format!("{ticket}#comment-{ticket}04"));
        assert!(
            c.identities
                .iter()
                .any(|i| i.value == format!("zendesk_user:50{ticket}"))
        );
        assert_eq!(c.location_id.as_deref(), Some("berlin-mitte"));
    }
    let replies = of_kind(InteractionKind::Reply);
    assert_eq!(
        replies.len(),
        3,
        "one agent reply per ticket; notes skipped"
    );
    assert!(
        replies
            .iter()
            .all(|r| r.identities.is_empty() && r.text.as_deref() == Some("It ships today."))
    );
    assert!(
        !stored
            .iter()
            .any(|s| s.interaction.text.as_deref() == Some("Internal: check the warehouse"))
    );

    let surveys = of_kind(InteractionKind::SurveyResponse);
    assert_eq!(surveys.len(), 2, "{surveys:?}");
    let r1 = surveys.iter().find(|s| s.external_id == "csat-R1").unwrap();
    let csat = r1.csat.clone().unwrap();
    assert_eq!(
        (csat.value, csat.scale.as_str(), csat.satisfied),
        (2.0, "1-5", false)
    );
    assert_eq!(r1.text.as_deref(), Some("Took a week, nobody called"));
    assert_eq!(r1.parent_external_id.as_deref(), Some("1"));
    // The responder is the ticket's requester: one customer.
    let t1 = tickets.iter().find(|t| t.external_id == "1").unwrap();
    assert!(r1.identities.iter().any(|i| i.value == "zendesk_user:501"));
    assert!(t1.identities.iter().any(|i| i.value == "zendesk_user:501"));

    // Quarantined: the comment without an id (with its ticket), the response without an
    // id and the rating off the scale.
    let q = db.store.quarantine(None).await.unwrap();
    assert_eq!(q.len(), 3, "{q:?}");
    assert_eq!(report.quarantined, 3, "{report}");
    assert!(
        q.iter()
            .any(|i| i.entry.error.origin.contains("ticket 1 comments")
                && i.entry.error.field.as_deref() == Some("id"))
    );
    assert!(q.iter().any(|i| {
        i.entry
            .error
            .field
            .as_deref()
            .is_some_and(|f| f.contains("csat"))
    }));
    assert!(q.iter().all(|i| i.entry.preset == "zendesk-json"));

    // The cursor holds both streams; the next run asks the export from its cursor and the
    // survey responses from the newest answer second on.
    let cursor: Value =
        serde_json::from_str(&db.store.cursor("support").await.unwrap().unwrap()).unwrap();
    let mark = chrono::DateTime::parse_from_rfc3339("2026-03-06T12:00:00Z")
        .unwrap()
        .timestamp();
    assert_eq!(cursor, json!({"tickets": "p2", "csat_since": mark}));
    fake.log.lock().unwrap().clear();
    fake.responses.lock().unwrap().push(response(
        "R4",
        2,
        Some(4),
        Some("Fine in the end"),
        "2026-03-07T09:00:00Z",
    ));
    let again = fakes::sync(&db, &config, metrics).await.unwrap();
    let log = fake.log.lock().unwrap().clone();
    assert_eq!(
        log[0], "export?cursor=p2&include=users,metric_sets&per_page=1000",
        "{log:?}"
    );
    assert!(
        log[1].starts_with(&format!("survey_responses?filter[created_at_start]={mark}")),
        "{log:?}"
    );
    assert_eq!((again.inserted, again.quarantined), (1, 1), "{again}"); // R4; R3 read again at the mark
    let all = db.store.interactions_after(0, 1000).await.unwrap();
    assert_eq!(all.len(), stored.len() + 1);
}

on_both_backends!(zendesk_comments_new_csat_and_pacing);
