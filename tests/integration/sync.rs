//! API connectors against a fake Zendesk on 127.0.0.1 that answers like the vendor's
//! documentation: the cursor-based incremental ticket export with users sideloaded,
//! `after_cursor` / `end_of_stream`, Basic `{email}/token:{token}` auth, 429 with
//! `Retry-After`.

use crate::common::{self, TestDb};
use crate::on_both_backends;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tideline::config::{Config, Overrides};
use tideline::metrics::Metrics;

/// The fake server's behaviour.
#[derive(Clone)]
pub struct FakeZendesk {
    pub pages: usize,
    pub per_page: usize,
    /// Answer the request with this index (0-based) with 429 + Retry-After: 1.
    pub throttle_request: Option<usize>,
    /// Answer the request with this index with a 500 (then recover).
    pub fail_request: Option<usize>,
    /// Delay per page, to let a test stop a sync mid-way.
    pub delay: Duration,
    pub requests: Arc<AtomicUsize>,
}

const AUTH: &str = "Basic YWdlbnRAYWNtZS5leGFtcGxlL3Rva2VuOnMzY3JldA=="; // agent@acme.example/token:s3cret

fn ticket(n: usize) -> Value {
    json!({
        "id": n, "url": format!("https://acme.zendesk.com/api/v2/tickets/{n}.json"),
        "subject": format!("Order {n}"),
        "description": if n.is_multiple_of(2) { "The delivery was late and the box was damaged." } else { "Thank you, quick and friendly help!" },
        "status": "solved", "requester_id": 1000 + n % 7,
        "tags": ["berlin-mitte"],
        "satisfaction_rating": {"score": if n.is_multiple_of(2) { "bad" } else { "good" }},
        "via": {"channel": "email", "source": {"from": {}, "to": {}, "rel": null}},
        "created_at": format!("2026-03-{:02}T09:00:00Z", 1 + n % 28),
        "updated_at": format!("2026-03-{:02}T10:00:00Z", 1 + n % 28),
        "generated_timestamp": 1_772_000_000 + n
    })
}

async fn export(
    State(s): State<FakeZendesk>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let n = s.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(AUTH) {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"Couldn't authenticate you"}"#,
        )
            .into_response();
    }
    if !headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|u| u.starts_with("tideline/"))
    {
        return (StatusCode::BAD_REQUEST, "no user agent").into_response();
    }
    if s.throttle_request == Some(n) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", "1"),
                ("x-rate-limit", "10"),
                ("x-rate-limit-remaining", "0"),
            ],
            r#"{"error":"APIRateLimitExceeded"}"#,
        )
            .into_response();
    }
    assert_eq!(
        q.get("include").map(String::as_str),
        Some("users,metric_sets")
    );
    if s.fail_request == Some(n) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"InternalError"}"#,
        )
            .into_response();
    }
    let page: usize = match (q.get("cursor"), q.get("start_time")) {
        (Some(c), _) => c
            .strip_prefix("c")
            .and_then(|p| p.parse().ok())
            .expect("our cursor"),
        (None, Some(_)) => 0,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                r#"{"error":"InvalidPaginationParameter"}"#,
            )
                .into_response();
        }
    };
    tokio::time::sleep(s.delay).await;
    let mut tickets: Vec<Value> = (0..s.per_page)
        .map(|i| ticket(page * s.per_page + i + 1))
        .collect();
    if page == 1 {
        // A damaged item in the middle of a page: quarantined, the rest kept.
        tickets.insert(2, json!({"subject": "no id"}));
    }
    let users: Vec<Value> = (0..7)
        .map(|u| json!({"id": 1000 + u, "name": format!("Customer {u}"), "email": format!("c{u}@example.org"), "role": "end-user"}))
        .collect();
    let metric_sets: Vec<Value> = tickets
        .iter()
        .filter_map(|t| t.get("id").and_then(Value::as_u64))
        .map(|id| {
            json!({
                "id": 90_000 + id, "ticket_id": id,
                "reply_time_in_minutes": {"calendar": 30 + id, "business": 10},
                "full_resolution_time_in_minutes": {"calendar": 600, "business": 240},
                "reopens": id % 3, "replies": 2, "solved_at": "2026-03-28T10:00:00Z"
            })
        })
        .collect();
    let next = (page + 1).min(s.pages);
    Json(json!({
        "tickets": if page < s.pages { tickets } else { vec![] },
        "users": users,
        "metric_sets": metric_sets,
        "after_url": format!("http://127.0.0.1/api/v2/incremental/tickets/cursor.json?cursor=c{next}"),
        "after_cursor": format!("c{next}"),
        "before_url": null, "before_cursor": null,
        "end_of_stream": page + 1 >= s.pages
    }))
    .into_response()
}

use axum::Json;

/// Starts the fake on 127.0.0.1:0; returns its base URL.
pub async fn start(fake: FakeZendesk) -> String {
    let app = axum::Router::new()
        .route(
            "/api/v2/incremental/tickets/cursor.json",
            axum::routing::get(export),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

pub fn config_toml(dir: &std::path::Path, base_url: &str, db_url: &str) -> String {
    let token = dir.join("zendesk_token");
    std::fs::write(&token, "s3cret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        r#"
[storage]
database_url = "{db_url}"
[pipeline]
sentiment_adapt = false
[[location]]
id = "berlin-mitte"
timezone = "Europe/Berlin"
country = "DE"
[[connector]]
kind = "zendesk"
name = "support"
base_url = "{base_url}"
email = "agent@acme.example"
api_token_file = "{}"
location = "berlin-mitte"
per_page = 25
max_wait_secs = 5
comments = false
incremental_requests_per_minute = 6000
"#,
        token.display()
    )
}

fn config(dir: &std::path::Path, base_url: &str, db_url: &str) -> Config {
    Config::from_toml(
        &config_toml(dir, base_url, db_url),
        "test",
        &Overrides::default(),
    )
    .unwrap()
}

/// Three pages, one 429 and one 500 on the way, one damaged ticket: everything else
/// stored, the damaged one quarantined, the cursor stored; a second run fetches only the
/// tail.
async fn zendesk_pages_throttling_and_resume(db: TestDb) {
    let fake = FakeZendesk {
        pages: 3,
        per_page: 25,
        throttle_request: Some(1),
        fail_request: Some(3),
        delay: Duration::ZERO,
        requests: Arc::default(),
    };
    let base = start(fake.clone()).await;
    let config = config(db.dir.path(), &base, db.url.expose());
    let analyzer = common::analyzer(&config);
    let metrics = Arc::new(Metrics::new());
    let report = tideline::sync::sync_connector(
        db.store.as_ref(),
        analyzer.clone(),
        &config,
        &config.connectors[0],
        metrics.clone(),
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.pages, 3);
    assert_eq!(report.inserted, 75);
    assert_eq!(report.quarantined, 1);
    assert!(!report.stopped);
    let c = metrics.connector_counters("support").unwrap();
    assert_eq!((c.rate_limit_waits, c.pages, c.runs), (1, 3, 1));
    // The 429 and the 500 were retried.
    assert_eq!(c.errors, 2);
    assert!(c.rate_limit_wait_secs >= 1.0);
    assert!(c.last_success.is_some());
    assert_eq!(
        db.store.cursor("support").await.unwrap().as_deref(),
        Some("c3")
    );
    let q = db.store.quarantine(None).await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].entry.error.line, Some(3));
    assert!(
        q[0].entry.error.origin.contains("after c1"),
        "{}",
        q[0].entry.error.origin
    );
    // Requesters are identities: seven customers.
    assert_eq!(db.store.counts().await.unwrap().customers, 7);
    // Each ticket keeps its own metrics (reply and resolution times) in its raw record.
    let stored = db.store.interactions_after(0, 1000).await.unwrap();
    let t5 = stored
        .iter()
        .find(|i| i.interaction.external_id == "5")
        .unwrap();
    let raw: Value = serde_json::from_str(&t5.interaction.raw).unwrap();
    assert_eq!(raw["metric_set"]["ticket_id"], 5);
    assert_eq!(raw["metric_set"]["reply_time_in_minutes"]["calendar"], 35);
    assert_eq!(raw["requester"]["email"], "c5@example.org");

    // The next run resumes from the cursor: one request, nothing new.
    let before = fake.requests.load(Ordering::SeqCst);
    let again = tideline::sync::sync_connector(
        db.store.as_ref(),
        analyzer,
        &config,
        &config.connectors[0],
        metrics,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(fake.requests.load(Ordering::SeqCst) - before, 1);
    assert_eq!((again.inserted, again.updated), (0, 0));
    assert_eq!(db.store.counts().await.unwrap().interactions, 75);
}

/// A wrong token is an error that names the fix and never the secret.
async fn zendesk_refused_credentials_are_named(db: TestDb) {
    let fake = FakeZendesk {
        pages: 1,
        per_page: 5,
        throttle_request: None,
        fail_request: None,
        delay: Duration::ZERO,
        requests: Arc::default(),
    };
    let base = start(fake).await;
    let text = config_toml(db.dir.path(), &base, db.url.expose());
    std::fs::write(db.dir.path().join("zendesk_token"), "wrong-token-value\n").unwrap();
    let config = Config::from_toml(&text, "test", &Overrides::default()).unwrap();
    let err = tideline::sync::sync_connector(
        db.store.as_ref(),
        common::analyzer(&config),
        &config,
        &config.connectors[0],
        Arc::new(Metrics::new()),
        Default::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("HTTP 401") && err.contains("fix:"), "{err}");
    assert!(!err.contains("wrong-token-value"), "{err}");
    assert_eq!(db.store.cursor("support").await.unwrap(), None);
}

on_both_backends!(
    zendesk_pages_throttling_and_resume,
    zendesk_refused_credentials_are_named
);

/// SIGTERM in the middle of `tideline sync`, 20 times: each time the process exits 0
/// within the stop timeout, every stored page came with its cursor (the stored tickets
/// are exactly the pages before the cursor), and the next start resumes from it. At the
/// end every ticket is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_sync_loses_and_duplicates_nothing() {
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let pages = 60;
    let per_page = 25;
    let fake = FakeZendesk {
        pages,
        per_page,
        throttle_request: None,
        fail_request: None,
        delay: Duration::from_millis(40),
        requests: Arc::default(),
    };
    let requests = fake.requests.clone();
    let base = start(fake).await;
    let cfg = db.dir.path().join("tideline.toml");
    std::fs::write(&cfg, config_toml(db.dir.path(), &base, db.url.expose())).unwrap();
    let mut previous = 0i64;
    for round in 0..20u64 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
            .arg("--config")
            .arg(&cfg)
            .args(["sync", "support"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Once it fetches, somewhere in the middle of a page: fetch, analysis or commit.
        let seen = requests.load(Ordering::SeqCst);
        while requests.load(Ordering::SeqCst) == seen {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis((round * 53) % 300)).await;
        let pid = child.id() as i32;
        let sent = std::time::Instant::now();
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(20),
                "round {round}: exits within the stop timeout"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(status.code(), Some(0), "round {round}");
        let cursor = db.store.cursor("support").await.unwrap();
        let done_pages: i64 = cursor
            .as_deref()
            .map(|c| c.trim_start_matches('c').parse().unwrap())
            .unwrap_or(0);
        let stored = db.store.counts().await.unwrap().interactions;
        assert_eq!(
            stored,
            done_pages * per_page as i64,
            "round {round}: page and cursor together"
        );
        assert!(stored >= previous, "round {round}");
        previous = stored;
        if done_pages as usize >= pages {
            break;
        }
    }
    // Finish: the rest, once.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "support"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        db.store.counts().await.unwrap().interactions,
        (pages * per_page) as i64
    );
    let fp = db.store.fingerprint().await.unwrap();
    let mut ids: Vec<&str> = fp.iter().map(|(_, id, _, _)| id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), pages * per_page);
}
