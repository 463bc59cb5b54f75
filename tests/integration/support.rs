//! Support desks: the Freshdesk and Help Scout API connectors against fake servers on
//! 127.0.0.1 that answer like the vendors' documentation (shapes from
//! `../shared/reference/connectors.md` 4.2 and 4.4), and their CSV presets over fixtures.

pub mod freshdesk {
    //! Freshdesk `GET /api/v2/tickets` (bare arrays, `page` + `per_page`, `Link rel="next"`,
    //! a page cap, `updated_since` at or after) and `GET /api/v2/surveys/satisfaction_ratings`
    //! (`created_since`), Basic auth with the API key and `X`, 429 + `Retry-After`.

    use crate::common::TestDb;
    use crate::fakes::{self, header, user_agent_ok};
    use crate::on_both_backends;
    use axum::Json;
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use tideline::config::{Config, Overrides};
    use tideline::metrics::Metrics;

    const KEY: &str = "fd-key";
    const AUTH: &str = "Basic ZmQta2V5Olg="; // fd-key:X
    /// 2024-01-02T00:00:00Z
    const T0: i64 = 1_704_153_600;

    fn iso(secs: i64) -> String {
        chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn secs(v: &Value) -> i64 {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp()
    }

    /// The path and query of one request.
    pub type Request = (String, HashMap<String, String>);

    #[derive(Clone)]
    pub struct FakeFreshdesk {
        pub tickets: Arc<Mutex<Vec<Value>>>,
        pub ratings: Arc<Mutex<Vec<Value>>>,
        /// The last page served for one filter (Freshdesk: 300); past it, 400.
        pub max_pages: usize,
        /// Request (0-based, both endpoints) answered with 429 + Retry-After: 1.
        pub throttle_request: Option<usize>,
        /// Request (0-based) answered with 500.
        pub fail_request: Option<usize>,
        /// While set, every ticket request for page 2 gets a 500.
        pub page2_down: Arc<AtomicBool>,
        /// Path and query of every request that passed the auth check.
        pub requests: Arc<Mutex<Vec<Request>>>,
    }

    impl Default for FakeFreshdesk {
        fn default() -> Self {
            FakeFreshdesk {
                tickets: Default::default(),
                ratings: Default::default(),
                max_pages: 300,
                throttle_request: None,
                fail_request: None,
                page2_down: Default::default(),
                requests: Default::default(),
            }
        }
    }

    /// Auth, User-Agent, request log, injected failures; `Ok(request index)` to go on.
    fn gate(
        s: &FakeFreshdesk,
        headers: &HeaderMap,
        path: &str,
        q: &HashMap<String, String>,
    ) -> Result<usize, Box<Response>> {
        if header(headers, "authorization") != Some(AUTH) {
            return Err(Box::new((
                StatusCode::UNAUTHORIZED,
                Json(json!({"code": "invalid_credentials", "message": "You have to be logged in to perform this action."})),
            )
                .into_response()));
        }
        if !user_agent_ok(headers) {
            return Err(Box::new(
                (StatusCode::BAD_REQUEST, "no user agent").into_response(),
            ));
        }
        let n = {
            let mut r = s.requests.lock().unwrap();
            r.push((path.to_string(), q.clone()));
            r.len() - 1
        };
        if s.throttle_request == Some(n) {
            return Err(Box::new(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1"), ("x-ratelimit-remaining", "0")],
                    Json(json!({"message": "You have exceeded the limit of requests per minute"})),
                )
                    .into_response(),
            ));
        }
        if s.fail_request == Some(n) {
            return Err(Box::new(
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
            ));
        }
        Ok(n)
    }

    /// One page of `all` (already filtered and sorted), with a `Link` header while more
    /// pages exist below the cap, and a 400 past the cap.
    fn paged(
        s: &FakeFreshdesk,
        all: Vec<Value>,
        q: &HashMap<String, String>,
        path: &str,
    ) -> Response {
        let per_page: usize = q["per_page"].parse().unwrap();
        assert!((1..=100).contains(&per_page));
        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        if page > s.max_pages {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"description": "Validation failed", "errors": [{"field": "page", "message": "Has to be less than or equal to the cap", "code": "invalid_value"}]})),
            )
                .into_response();
        }
        let window: Vec<Value> = all
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .cloned()
            .collect();
        let more = all.len() > page * per_page && page < s.max_pages;
        let mut resp = Json(Value::Array(window)).into_response();
        resp.headers_mut()
            .insert("x-ratelimit-remaining", "150".parse().unwrap());
        if more {
            let mut next = q.clone();
            next.insert("page".into(), (page + 1).to_string());
            let query: Vec<String> = next.iter().map(|(k, v)| format!("{k}={v}")).collect();
            resp.headers_mut().insert(
                "link",
                format!(
                    "<https://acme.freshdesk.com{path}?{}>; rel=\"next\"",
                    query.join("&")
                )
                .parse()
                .unwrap(),
            );
        }
        resp
    }

    async fn tickets(
        State(s): State<FakeFreshdesk>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        let path = "/api/v2/tickets";
        if let Err(r) = gate(&s, &headers, path, &q) {
            return *r;
        }
        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        if page == 2 && s.page2_down.load(Ordering::SeqCst) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        // What a sync must send.
        assert_eq!(q.get("order_by").map(String::as_str), Some("updated_at"));
        assert_eq!(q.get("order_type").map(String::as_str), Some("asc"));
        assert_eq!(
            q.get("include").map(String::as_str),
            Some("requester,stats,description")
        );
        let Some(since) = q
            .get("updated_since")
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        else {
            // Without it Freshdesk answers the last 30 days; a sync must never rely on that.
            return (StatusCode::BAD_REQUEST, "updated_since").into_response();
        };
        let mut all: Vec<Value> = s
            .tickets
            .lock()
            .unwrap()
            .iter()
            .filter(|t| secs(&t["updated_at"]) >= since.timestamp())
            .cloned()
            .collect();
        all.sort_by_key(|t| secs(&t["updated_at"]));
        paged(&s, all, &q, path)
    }

    async fn ratings(
        State(s): State<FakeFreshdesk>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        let path = "/api/v2/surveys/satisfaction_ratings";
        if let Err(r) = gate(&s, &headers, path, &q) {
            return *r;
        }
        let Some(since) = q
            .get("created_since")
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        else {
            return (StatusCode::BAD_REQUEST, "created_since").into_response();
        };
        let all: Vec<Value> = s
            .ratings
            .lock()
            .unwrap()
            .iter()
            .filter(|r| secs(&r["created_at"]) >= since.timestamp())
            .cloned()
            .collect();
        paged(&s, all, &q, path)
    }

    pub async fn start(fake: FakeFreshdesk) -> String {
        fakes::serve(
            axum::Router::new()
                .route("/api/v2/tickets", axum::routing::get(tickets))
                .route(
                    "/api/v2/surveys/satisfaction_ratings",
                    axum::routing::get(ratings),
                )
                .with_state(fake),
        )
        .await
    }

    /// A ticket as the documentation shows it with `include=requester,stats,description`.
    fn ticket(n: i64, updated_at: i64) -> Value {
        let person = n % 4;
        json!({
            "id": n,
            "subject": format!("Ticket {n}"),
            "description": format!("<div>Order {n} was <b>late</b></div>"),
            "description_text": format!("Order {n} was late"),
            "status": if n % 3 == 0 { 2 } else { 4 },
            "priority": 2,
            "source": 1,
            "type": "Problem",
            "requester_id": 8000 + person,
            "responder_id": 11,
            "group_id": 3,
            "company_id": null,
            "tags": ["berlin-01"],
            "custom_fields": {"cf_order": format!("A-{n}")},
            "created_at": iso(T0 - 100_000 + n * 60),
            "updated_at": iso(updated_at),
            "due_by": iso(T0 + 86_400),
            "fr_due_by": iso(T0 + 3_600),
            "is_escalated": false,
            "requester": {
                "id": 8000 + person,
                "name": format!("Person {person}"),
                "email": format!("p{person}@example.org"),
                "phone": null,
                "mobile": null
            },
            "stats": {
                "agent_responded_at": iso(T0 - 100_000 + n * 60 + 1800),
                "requester_responded_at": null,
                "first_responded_at": iso(T0 - 100_000 + n * 60 + 1800),
                "status_updated_at": iso(updated_at),
                "reopened_at": null,
                "resolved_at": if n % 3 == 0 { Value::Null } else { json!(iso(updated_at)) },
                "closed_at": null,
                "pending_since": null
            }
        })
    }

    fn rating(id: i64, ticket_id: i64, point: i64, created_at: i64) -> Value {
        json!({
            "id": id,
            "survey_id": 1,
            "user_id": 8000 + ticket_id % 4,
            "agent_id": 11,
            "group_id": 3,
            "ticket_id": ticket_id,
            "feedback": format!("Feedback {id}"),
            "ratings": {"default_question": point},
            "created_at": iso(created_at),
            "updated_at": iso(created_at)
        })
    }

    /// Tickets 1..=25 ten seconds apart with a ticket without an id, one with a date that
    /// is not one, and drifted shapes; four ratings, one outside the survey's scale.
    fn dataset() -> (Vec<Value>, Vec<Value>) {
        let mut t: Vec<Value> = (1..=25).map(|n| ticket(n, T0 + n * 10)).collect();
        // Drift: unknown extra fields; a status as a label; optional fields missing.
        t[1]["sentiment_v2"] = json!({"label": "negative"});
        t[1]["status"] = json!("Open");
        for k in [
            "description_text",
            "description",
            "requester",
            "stats",
            "custom_fields",
        ] {
            t[2].as_object_mut().unwrap().remove(k);
        }
        // A date that is not one: quarantined by field.
        t[3]["created_at"] = json!("soon");
        // No id (ticket 8, page 2 index 3).
        t[7].as_object_mut().unwrap().remove("id");
        let r = vec![
            rating(1, 1, 103, T0 + 1_000),
            rating(2, 2, -103, T0 + 1_010),
            rating(3, 5, 100, T0 + 1_020),
            rating(4, 6, 7, T0 + 1_030),
        ];
        (t, r)
    }

    pub fn config_toml(dir: &std::path::Path, base_url: &str, db_url: &str, extra: &str) -> String {
        let key = fakes::secret_file(dir, "freshdesk_key", KEY);
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
aliases = ["berlin-01"]
[[connector]]
kind = "freshdesk"
name = "fd"
base_url = "{base_url}"
api_key_file = "{}"
per_page = 5
start_time = "2024-01-01"
max_wait_secs = 5
{extra}
"#,
            key.display()
        )
    }

    fn config(db: &TestDb, base: &str, extra: &str) -> Config {
        Config::from_toml(
            &config_toml(db.dir.path(), base, db.url.expose(), extra),
            "test",
            &Overrides::default(),
        )
        .unwrap()
    }

    fn cursor(v: &Option<String>) -> Value {
        serde_json::from_str(v.as_deref().expect("a cursor")).unwrap()
    }

    /// Tickets past a page cap of 2 (the filter moves to the last `updated_at` seen, its
    /// ids skipped), a 429 and a 500 on the way, a ticket without an id and one with a bad
    /// date quarantined with page, index and field, drifted shapes read; then the ratings
    /// (one outside the scale quarantined); then a second sync fetches only what changed,
    /// including a new ticket at the boundary second.
    async fn freshdesk_pages_cap_errors_drift_and_resume(db: TestDb) {
        let (tickets, ratings) = dataset();
        let fake = FakeFreshdesk {
            tickets: Arc::new(Mutex::new(tickets)),
            ratings: Arc::new(Mutex::new(ratings)),
            max_pages: 2,
            throttle_request: Some(1),
            fail_request: Some(3),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &base, "max_pages = 2");
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        // Tickets: three filters of two pages each; ratings: one page.
        assert_eq!(report.pages, 7, "{report}");
        assert_eq!(report.fetched, 29, "{report}");
        assert_eq!(report.quarantined, 3, "{report}");
        assert_eq!(report.inserted, 26, "{report}");
        let c = metrics.connector_counters("fd").unwrap();
        assert_eq!((c.rate_limit_waits, c.errors), (1, 2));
        {
            let reqs = fake.requests.lock().unwrap();
            let seen: Vec<(&str, &str, &str)> = reqs
                .iter()
                .map(|(p, q)| {
                    let since = q
                        .get("updated_since")
                        .or_else(|| q.get("created_since"))
                        .unwrap();
                    (
                        if p.ends_with("tickets") { "t" } else { "r" },
                        q["page"].as_str(),
                        since.as_str(),
                    )
                })
                .collect();
            // Each cap moves the filter to the last ticket read: 10, then 19.
            let (start, t10, t19) = (iso(1_704_067_200), iso(T0 + 100), iso(T0 + 190));
            assert_eq!(
                seen,
                [
                    ("t", "1", start.as_str()),
                    ("t", "2", start.as_str()), // 429
                    ("t", "2", start.as_str()),
                    ("t", "1", t10.as_str()), // 500
                    ("t", "1", t10.as_str()),
                    ("t", "2", t10.as_str()),
                    ("t", "1", t19.as_str()),
                    ("t", "2", t19.as_str()),
                    ("r", "1", start.as_str()),
                ]
            );
        }
        assert_eq!(
            cursor(&db.store.cursor("fd").await.unwrap()),
            json!({"tickets": {"since": T0 + 250, "skip": ["25"]},
                   "ratings": {"since": T0 + 1_030, "skip": ["4"]}, "phase": "tickets"})
        );

        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 3, "{q:?}");
        let by_field = |f: &str| {
            q.iter()
                .find(|i| i.entry.error.field.as_deref() == Some(f))
                .unwrap_or_else(|| panic!("no reject on {f}: {q:?}"))
        };
        // Normalization names the field and its source: "occurred_at (`created_at`)".
        let by_label = |f: &str| {
            q.iter()
                .find(|i| {
                    i.entry
                        .error
                        .field
                        .as_deref()
                        .is_some_and(|x| x.contains(f))
                })
                .unwrap_or_else(|| panic!("no reject on {f}: {q:?}"))
        };
        let no_id = by_field("id");
        assert_eq!(no_id.entry.error.line, Some(3));
        assert!(no_id.entry.error.origin.contains("/api/v2/tickets"));
        assert!(
            no_id.entry.error.origin.contains("page 2"),
            "{:?}",
            no_id.entry.error
        );
        let date = by_label("`created_at`");
        assert_eq!(date.entry.error.line, Some(4));
        assert!(date.entry.error.origin.contains("page 1"));
        let scale = by_field("ratings.default_question");
        assert_eq!(scale.entry.error.line, Some(4));
        assert!(scale.entry.error.expected.contains("103, 100 or -103"));
        assert!(q.iter().all(|i| i.entry.preset == "freshdesk-json"));
        // Replay reads the kept item with the preset: the same field fails again.
        let replay = tideline::ingest::replay_quarantine(
            db.store.as_ref(),
            &crate::common::analyzer(&config),
            &config,
            &[scale.id, date.id],
            None,
        )
        .await
        .unwrap();
        assert_eq!((replay.attempted, replay.still_failing), (2, 2));
        let kept: serde_json::Value = serde_json::from_str(&scale.entry.error.raw).unwrap();
        assert_eq!(kept["csat_scale"], "classic-3", "kept with its scale");

        let stored = db.store.interactions_after(0, 1000).await.unwrap();
        let get = |id: &str| {
            stored
                .iter()
                .find(|s| s.interaction.external_id == id)
                .unwrap_or_else(|| panic!("{id} not stored"))
                .interaction
                .clone()
        };
        let t1 = get("1");
        assert_eq!(t1.status.as_deref(), Some("Resolved"));
        assert_eq!(t1.location_id.as_deref(), Some("berlin-mitte"));
        assert!(t1.text.as_deref().unwrap().contains("Order 1 was late"));
        assert!(
            t1.identities
                .iter()
                .any(|i| i.value == "freshdesk_user:8001")
        );
        assert!(t1.identities.iter().any(|i| i.value == "p1@example.org"));
        assert_eq!(get("3").status.as_deref(), Some("Open"));
        assert_eq!(get("2").status.as_deref(), Some("Open")); // a label already
        assert_eq!(get("3").text.as_deref(), Some("Ticket 3")); // no description: subject
        // Support times from the stats: first response 30 min after creation.
        let times = tideline::pipeline::indicators::ticket_times(
            &t1.raw,
            t1.occurred_at_ms,
            t1.updated_at_ms,
            t1.status.as_deref(),
            false,
        );
        assert_eq!(
            (times.first_reply_min, times.abandoned),
            (Some(30.0), Some(false))
        );
        // Ratings: survey responses under their ticket, on the 3-point scale.
        let r1 = get("rating:1");
        assert_eq!(r1.parent_external_id.as_deref(), Some("1"));
        let csat = r1.csat.unwrap();
        assert_eq!(
            (csat.value, csat.scale.as_str(), csat.satisfied),
            (3.0, "1-3", true)
        );
        let r2 = get("rating:2").csat.unwrap();
        assert_eq!((r2.value, r2.satisfied), (1.0, false));
        assert_eq!(get("rating:3").csat.unwrap().value, 2.0);
        assert_eq!(get("rating:1").text.as_deref(), Some("Feedback 1"));
        // Four people; each ticket and rating joins its requester.
        assert_eq!(db.store.counts().await.unwrap().customers, 4);

        // A new ticket at the boundary second, one later, ticket 2 edited.
        {
            let mut t = fake.tickets.lock().unwrap();
            t.push(ticket(26, T0 + 250));
            t[1]["updated_at"] = json!(iso(T0 + 400));
            t[1]["subject"] = json!("Ticket 2, answered");
        }
        let before = fake.requests.lock().unwrap().len();
        let again = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        {
            let reqs = fake.requests.lock().unwrap();
            assert_eq!(
                reqs.len() - before,
                2,
                "one ticket page and one rating page"
            );
            assert_eq!(reqs[before].1["updated_since"], iso(T0 + 250));
            assert_eq!(reqs[before + 1].1["created_since"], iso(T0 + 1_030));
        }
        assert_eq!(
            (
                again.inserted,
                again.updated,
                again.unchanged,
                again.quarantined
            ),
            (1, 1, 0, 0),
            "{again}"
        );
        assert_eq!(db.store.counts().await.unwrap().interactions, 27);
        let third = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!((third.inserted, third.updated, third.unchanged), (0, 0, 0));
        assert_eq!(db.store.fingerprint().await.unwrap().len(), 27);
    }

    /// A run that fails on page 2 keeps page 1 and its cursor; the next run goes on at page
    /// 2 with the same filter, and every ticket is stored once. `ratings = false` reads
    /// tickets only.
    async fn freshdesk_resume_after_failure(db: TestDb) {
        let tickets: Vec<Value> = (1..=8).map(|n| ticket(n, T0 + n)).collect();
        let fake = FakeFreshdesk {
            tickets: Arc::new(Mutex::new(tickets)),
            ..Default::default()
        };
        fake.page2_down.store(true, Ordering::SeqCst);
        let base = start(fake.clone()).await;
        let config = config(&db, &base, "max_retries = 1\nratings = false");
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 500"), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 5);
        let mid = cursor(&db.store.cursor("fd").await.unwrap());
        assert_eq!(mid["tickets"]["page"], 2);
        assert_eq!(mid["tickets"]["since"], 1_704_067_200);

        fake.page2_down.store(false, Ordering::SeqCst);
        let before = fake.requests.lock().unwrap().len();
        let report = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        let reqs = fake.requests.lock().unwrap().clone();
        let tail: Vec<(&str, &str)> = reqs[before..]
            .iter()
            .map(|(p, q)| (p.as_str(), q["page"].as_str()))
            .collect();
        assert_eq!(tail, [("/api/v2/tickets", "2")]);
        assert_eq!((report.inserted, report.pages), (3, 1));
        assert_eq!(db.store.fingerprint().await.unwrap().len(), 8);
        assert_eq!(
            cursor(&db.store.cursor("fd").await.unwrap()),
            json!({"tickets": {"since": T0 + 8, "skip": ["8"]}, "ratings": {"since": 1_704_067_200}, "phase": "tickets"})
        );
    }

    /// A refused key is an error that names the fix and never the key.
    async fn freshdesk_refused_key_is_named(db: TestDb) {
        let base = start(FakeFreshdesk::default()).await;
        let text = config_toml(db.dir.path(), &base, db.url.expose(), "");
        fakes::secret_file(db.dir.path(), "freshdesk_key", "wrong-key-value");
        let config = Config::from_toml(&text, "test", &Overrides::default()).unwrap();
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 401") && err.contains("fix:"), "{err}");
        assert!(!err.contains("wrong-key-value"), "{err}");
        assert_eq!(db.store.cursor("fd").await.unwrap(), None);
    }

    on_both_backends!(
        freshdesk_pages_cap_errors_drift_and_resume,
        freshdesk_resume_after_failure,
        freshdesk_refused_key_is_named
    );
}

pub mod helpscout {
    //! Help Scout Mailbox API 2.0: `POST /v2/oauth2/token` (client credentials, form body)
    //! and `GET /v2/conversations` (HAL: `_embedded.conversations`, `page`, `_links.next`;
    //! `modifiedSince`, `sortField=modifiedAt`), 429 with `X-RateLimit-Retry-After`, and a
    //! token that stops working (401) until a new one is fetched.

    use crate::common::TestDb;
    use crate::fakes::{self, header, user_agent_ok};
    use crate::on_both_backends;
    use axum::Json;
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tideline::config::{Config, Overrides};
    use tideline::metrics::Metrics;

    const CLIENT_ID: &str = "app-1";
    const SECRET: &str = "hs-s3cret";
    const PAGE_SIZE: usize = 5;
    /// 2024-01-02T00:00:00Z
    const T0: i64 = 1_704_153_600;

    fn iso(secs: i64) -> String {
        chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// The query and the `Authorization` header of one request.
    pub type Request = (HashMap<String, String>, String);

    #[derive(Clone, Default)]
    pub struct FakeHelpscout {
        pub conversations: Arc<Mutex<Vec<Value>>>,
        /// Tokens issued so far; the valid one is `tok-<count>`.
        pub tokens_issued: Arc<AtomicUsize>,
        /// `expires_in` of issued tokens (default 7200 when 0 is not asked for).
        pub expires_in: Option<u64>,
        /// Conversation request (0-based) from which the current token is refused (401).
        pub revoke_at: Option<usize>,
        pub revoked: Arc<AtomicBool>,
        /// Conversation request answered with 429 + X-RateLimit-Retry-After: 1.
        pub throttle_request: Option<usize>,
        /// Conversation request answered with 500.
        pub fail_request: Option<usize>,
        /// While set, every request for page 2 gets a 500.
        pub page2_down: Arc<AtomicBool>,
        /// Query and bearer token of every conversation request with a User-Agent.
        pub requests: Arc<Mutex<Vec<Request>>>,
        /// Results of the happiness ratings report (all pages).
        pub ratings: Arc<Mutex<Vec<Value>>>,
        /// Queries of the ratings report.
        pub rating_requests: Arc<Mutex<Vec<HashMap<String, String>>>>,
    }

    /// `GET /v2/reports/happiness/ratings`: `start`/`end` on `ratingCreatedAt`, pages of
    /// five, `{results, page, count, pages}`.
    async fn ratings(
        State(s): State<FakeHelpscout>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        if !user_agent_ok(&headers) {
            return (StatusCode::BAD_REQUEST, "no user agent").into_response();
        }
        let current = format!("Bearer tok-{}", s.tokens_issued.load(Ordering::SeqCst));
        if header(&headers, "authorization") != Some(current.as_str()) {
            return (StatusCode::UNAUTHORIZED, "{}").into_response();
        }
        s.rating_requests.lock().unwrap().push(q.clone());
        assert_eq!(q.get("rating").map(String::as_str), Some("all"));
        let secs = |v: &str| chrono::DateTime::parse_from_rfc3339(v).unwrap().timestamp();
        let (start, end) = (secs(&q["start"]), secs(&q["end"]));
        let all: Vec<Value> = s
            .ratings
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                let at = r["ratingCreatedAt"].as_str().map(secs).unwrap_or(start);
                at >= start && at <= end
            })
            .cloned()
            .collect();
        let page: usize = q.get("page").map(|p| p.parse().unwrap()).unwrap_or(1);
        let pages = all.len().div_ceil(PAGE_SIZE).max(1);
        let from = ((page - 1) * PAGE_SIZE).min(all.len());
        let to = (from + PAGE_SIZE).min(all.len());
        Json(json!({"results": all[from..to], "page": page, "count": all.len(), "pages": pages}))
            .into_response()
    }

    fn form(body: &str) -> HashMap<String, String> {
        body.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace('+', " ")))
            .collect()
    }

    async fn token(State(s): State<FakeHelpscout>, headers: HeaderMap, body: String) -> Response {
        if !user_agent_ok(&headers) {
            return (StatusCode::BAD_REQUEST, "no user agent").into_response();
        }
        assert_eq!(
            header(&headers, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let f = form(&body);
        if f.get("grant_type").map(String::as_str) != Some("client_credentials")
            || f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || f.get("client_secret").map(String::as_str) != Some(SECRET)
        {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_client", "error_description": "Bad client credentials"})),
            )
                .into_response();
        }
        let n = s.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
        s.revoked.store(false, Ordering::SeqCst);
        Json(json!({
            "token_type": "bearer",
            "access_token": format!("tok-{n}"),
            "expires_in": s.expires_in.unwrap_or(7200)
        }))
        .into_response()
    }

    async fn conversations(
        State(s): State<FakeHelpscout>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        if !user_agent_ok(&headers) {
            return (StatusCode::BAD_REQUEST, "no user agent").into_response();
        }
        let bearer = header(&headers, "authorization").unwrap_or("").to_string();
        let n = {
            let mut r = s.requests.lock().unwrap();
            r.push((q.clone(), bearer.clone()));
            r.len() - 1
        };
        if s.revoke_at == Some(n) {
            s.revoked.store(true, Ordering::SeqCst);
        }
        let current = format!("Bearer tok-{}", s.tokens_issued.load(Ordering::SeqCst));
        if bearer != current || s.revoked.load(Ordering::SeqCst) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(
                    json!({"error": "invalid_token", "error_description": "Access token expired"}),
                ),
            )
                .into_response();
        }
        if s.throttle_request == Some(n) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("x-ratelimit-retry-after", "1"),
                    ("x-ratelimit-remaining-minute", "0"),
                ],
                Json(json!({"message": "Rate limit exceeded"})),
            )
                .into_response();
        }
        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        if s.fail_request == Some(n) || (page == 2 && s.page2_down.load(Ordering::SeqCst)) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        // What a sync must send.
        assert_eq!(q.get("status").map(String::as_str), Some("all"));
        assert_eq!(q.get("sortField").map(String::as_str), Some("modifiedAt"));
        assert_eq!(q.get("sortOrder").map(String::as_str), Some("asc"));
        assert_eq!(q.get("embed").map(String::as_str), Some("threads"));
        let Some(since) = q
            .get("modifiedSince")
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        else {
            return (StatusCode::BAD_REQUEST, "modifiedSince").into_response();
        };
        let mut all: Vec<Value> = s
            .conversations
            .lock()
            .unwrap()
            .iter()
            .filter(|c| {
                chrono::DateTime::parse_from_rfc3339(c["modifiedAt"].as_str().unwrap()).unwrap()
                    >= since
            })
            .cloned()
            .collect();
        all.sort_by_key(|c| c["modifiedAt"].as_str().unwrap().to_string());
        let total_pages = all.len().div_ceil(PAGE_SIZE);
        let items: Vec<Value> = all
            .iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .cloned()
            .collect();
        let mut links = json!({
            "self": {"href": format!("https://api.helpscout.net/v2/conversations?page={page}")},
            "first": {"href": "https://api.helpscout.net/v2/conversations?page=1"},
        });
        if page < total_pages {
            links["next"] = json!({"href": format!("https://api.helpscout.net/v2/conversations?page={}", page + 1)});
        }
        let mut body = json!({
            "page": {"size": PAGE_SIZE, "totalElements": all.len(), "totalPages": total_pages, "number": page},
            "_links": links
        });
        // An empty list comes without `_embedded`.
        if !items.is_empty() {
            body["_embedded"] = json!({"conversations": items});
        }
        let mut resp = Json(body).into_response();
        resp.headers_mut()
            .insert("x-ratelimit-remaining-minute", "180".parse().unwrap());
        resp
    }

    pub async fn start(fake: FakeHelpscout) -> String {
        fakes::serve(
            axum::Router::new()
                .route("/v2/oauth2/token", axum::routing::post(token))
                .route("/v2/conversations", axum::routing::get(conversations))
                .route("/v2/reports/happiness/ratings", axum::routing::get(ratings))
                .with_state(fake),
        )
        .await
    }

    /// A conversation with `embed=threads`.
    fn conversation(n: i64, modified_at: i64) -> Value {
        let person = n % 3;
        let created = T0 - 50_000 + n * 60;
        json!({
            "id": 7000 + n,
            "number": n,
            "threads": 2,
            "type": "email",
            "folderId": 1,
            "status": if n % 2 == 0 { "closed" } else { "active" },
            "state": "published",
            "subject": format!("Conversation {n}"),
            "preview": format!("Preview {n}"),
            "mailboxId": 10,
            "createdAt": iso(created),
            "closedAt": if n % 2 == 0 { json!(iso(created + 7_200)) } else { Value::Null },
            "userUpdatedAt": iso(modified_at),
            "modifiedAt": iso(modified_at),
            "primaryCustomer": {"id": 300 + person, "email": format!("c{person}@example.org"), "first": "Cus", "last": format!("Tomer{person}")},
            "tags": [{"id": 1, "color": "none", "tag": "berlin-01"}],
            "customFields": [],
            "source": {"type": "email", "via": "customer"},
            "_embedded": {"threads": [
                {"id": 1, "type": "customer", "body": format!("<p>Where is order {n}?</p>"), "createdAt": iso(created), "createdBy": {"id": 300 + person, "type": "customer"}},
                {"id": 2, "type": "reply", "body": "<p>On its way.</p>", "createdAt": iso(created + 900), "createdBy": {"id": 5, "type": "user"}}
            ]}
        })
    }

    fn dataset() -> Vec<Value> {
        let mut v: Vec<Value> = (1..=12).map(|n| conversation(n, T0 + n * 10)).collect();
        // Drift: extra fields, no threads, no customer email.
        v[1]["snooze"] = json!({"snoozedUntil": null});
        v[1].as_object_mut().unwrap().remove("_embedded");
        v[1]["primaryCustomer"]
            .as_object_mut()
            .unwrap()
            .remove("email");
        // A date that is not one.
        v[2]["createdAt"] = json!("later");
        // No id (page 1, index 5).
        v[4].as_object_mut().unwrap().remove("id");
        // Closed with only the customer's thread: abandoned.
        v[5]["_embedded"]["threads"]
            .as_array_mut()
            .unwrap()
            .truncate(1);
        v
    }

    fn config_toml(dir: &std::path::Path, base_url: &str, db_url: &str, extra: &str) -> String {
        let secret = fakes::secret_file(dir, "helpscout_secret", SECRET);
        // The conversation tests leave the ratings report out; the ratings test asks for it.
        let extra = if extra.contains("ratings") {
            extra.to_string()
        } else {
            format!("ratings = false\n{extra}")
        };
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
aliases = ["berlin-01"]
[[connector]]
kind = "helpscout"
name = "hs"
base_url = "{base_url}"
client_id = "{CLIENT_ID}"
client_secret_file = "{}"
start_time = "2024-01-01"
max_wait_secs = 5
{extra}
"#,
            secret.display()
        )
    }

    fn config(db: &TestDb, base: &str, extra: &str) -> Config {
        Config::from_toml(
            &config_toml(db.dir.path(), base, db.url.expose(), extra),
            "test",
            &Overrides::default(),
        )
        .unwrap()
    }

    fn cursor(v: &Option<String>) -> Value {
        serde_json::from_str(v.as_deref().expect("a cursor")).unwrap()
    }

    /// Three HAL pages with a 429 (Help Scout's own wait header) and a 500 on page 2, and
    /// the token refused on page 3 (a new one is fetched once and the page read); a
    /// conversation without an id and one with a bad date quarantined, drift read; then a
    /// second sync reads only what changed.
    async fn helpscout_pages_token_errors_drift_and_resume(db: TestDb) {
        let fake = FakeHelpscout {
            conversations: Arc::new(Mutex::new(dataset())),
            throttle_request: Some(1),
            fail_request: Some(2),
            revoke_at: Some(4),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &base, "");
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        assert_eq!(report.pages, 3, "{report}");
        assert_eq!(report.fetched, 12, "{report}");
        assert_eq!(report.quarantined, 2, "{report}");
        assert_eq!(report.inserted, 10, "{report}");
        assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 2);
        let c = metrics.connector_counters("hs").unwrap();
        assert_eq!((c.rate_limit_waits, c.errors), (1, 2));
        assert!(c.rate_limit_wait_secs >= 1.0);
        {
            let reqs = fake.requests.lock().unwrap();
            let seen: Vec<(&str, &str)> = reqs
                .iter()
                .map(|(q, t)| (q["page"].as_str(), t.as_str()))
                .collect();
            assert_eq!(
                seen,
                [
                    ("1", "Bearer tok-1"),
                    ("2", "Bearer tok-1"), // 429
                    ("2", "Bearer tok-1"), // 500
                    ("2", "Bearer tok-1"),
                    ("3", "Bearer tok-1"), // 401
                    ("3", "Bearer tok-2"),
                ]
            );
            assert!(
                reqs.iter()
                    .all(|(q, _)| q["modifiedSince"] == "2024-01-01T00:00:00Z")
            );
        }
        assert_eq!(
            cursor(&db.store.cursor("hs").await.unwrap()),
            json!({"since": T0 + 120, "skip": ["7012"]})
        );
        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 2, "{q:?}");
        let no_id = q
            .iter()
            .find(|i| i.entry.error.field.as_deref() == Some("id"))
            .unwrap();
        assert_eq!(no_id.entry.error.line, Some(5));
        assert!(no_id.entry.error.origin.contains("page 1"));
        let date = q
            .iter()
            .find(|i| i.entry.error.field.as_deref() == Some("occurred_at (`createdAt`)"))
            .unwrap();
        assert_eq!(date.entry.error.line, Some(3));
        assert!(q.iter().all(|i| i.entry.preset == "helpscout-json"));
        let replay = tideline::ingest::replay_quarantine(
            db.store.as_ref(),
            &crate::common::analyzer(&config),
            &config,
            &[date.id],
            None,
        )
        .await
        .unwrap();
        assert_eq!((replay.attempted, replay.still_failing), (1, 1));

        let stored = db.store.interactions_after(0, 1000).await.unwrap();
        let get = |id: &str| {
            stored
                .iter()
                .find(|s| s.interaction.external_id == id)
                .unwrap_or_else(|| panic!("{id} not stored"))
                .interaction
                .clone()
        };
        let c1 = get("7001");
        assert_eq!(
            c1.text.as_deref(),
            Some("Conversation 1\n\nWhere is order 1?")
        );
        assert_eq!(c1.location_id.as_deref(), Some("berlin-mitte"));
        assert_eq!(c1.author_name.as_deref(), Some("Cus Tomer1"));
        assert!(
            c1.identities
                .iter()
                .any(|i| i.value == "helpscout_customer:301")
        );
        assert!(c1.identities.iter().any(|i| i.value == "c1@example.org"));
        let c2 = get("7002");
        assert_eq!(c2.text.as_deref(), Some("Conversation 2\n\nPreview 2")); // no threads
        let times = |i: &tideline::model::Interaction| {
            tideline::pipeline::indicators::ticket_times(
                &i.raw,
                i.occurred_at_ms,
                i.updated_at_ms,
                i.status.as_deref(),
                false,
            )
        };
        let t4 = times(&get("7004"));
        assert_eq!(
            (t4.first_reply_min, t4.resolution_min, t4.abandoned),
            (Some(15.0), Some(120.0), Some(false))
        );
        assert_eq!(times(&get("7006")).abandoned, Some(true));
        assert_eq!(times(&c2).abandoned, None);
        assert_eq!(db.store.counts().await.unwrap().customers, 3);

        // A new conversation at the boundary second, conversation 1 modified.
        {
            let mut v = fake.conversations.lock().unwrap();
            v.push(conversation(13, T0 + 120));
            v[0]["modifiedAt"] = json!(iso(T0 + 400));
            v[0]["status"] = json!("closed");
        }
        let before = fake.requests.lock().unwrap().len();
        let again = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        {
            let reqs = fake.requests.lock().unwrap();
            assert_eq!(reqs.len() - before, 1);
            assert_eq!(reqs[before].0["modifiedSince"], iso(T0 + 120));
            assert_eq!(
                reqs[before].1, "Bearer tok-3",
                "a new run asks for its token"
            );
        }
        assert_eq!(
            (
                again.inserted,
                again.updated,
                again.unchanged,
                again.quarantined
            ),
            (1, 1, 0, 0),
            "{again}"
        );
        let third = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!((third.inserted, third.updated, third.unchanged), (0, 0, 0));
        assert_eq!(db.store.fingerprint().await.unwrap().len(), 11);
    }

    /// Page 2 down: the run fails with page 1 and its cursor stored, and the next run goes
    /// on at page 2. Tokens that expire at once (`expires_in: 0`) are fetched for every
    /// request, never reused.
    async fn helpscout_resume_after_failure_and_token_lifetime(db: TestDb) {
        let fake = FakeHelpscout {
            conversations: Arc::new(Mutex::new(
                (1..=8).map(|n| conversation(n, T0 + n)).collect(),
            )),
            expires_in: Some(0),
            ..Default::default()
        };
        fake.page2_down.store(true, Ordering::SeqCst);
        let base = start(fake.clone()).await;
        let config = config(&db, &base, "max_retries = 1");
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 500"), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 5);
        assert_eq!(cursor(&db.store.cursor("hs").await.unwrap())["page"], 2);
        fake.page2_down.store(false, Ordering::SeqCst);
        let report = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        assert_eq!((report.inserted, report.pages), (3, 1));
        assert_eq!(db.store.fingerprint().await.unwrap().len(), 8);
        // One token per request (each expired at once), none refused.
        let reqs = fake.requests.lock().unwrap();
        assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), reqs.len() - 1);
        assert!(reqs.iter().all(|(_, t)| t.starts_with("Bearer tok-")));
    }

    /// Wrong client credentials: the token request fails with the fix, never the secret.
    /// After the conversations, the happiness ratings report: Great/Okay/Not Good as CSAT
    /// on 1-3 with the conversation as parent, a rating without a thread quarantined, the
    /// ratings' own mark; the next run asks from that mark and stores only the new rating.
    async fn helpscout_ratings_report_after_the_conversations(db: TestDb) {
        let rating = |thread: i64, conv: i64, id: i64, comment: &str, at: i64| {
            json!({"number": conv, "threadid": thread, "threadCreatedAt": iso(at - 600),
                "id": 7000 + conv, "type": "email", "ratingId": id, "ratingCustomerId": 300 + conv % 3,
                "ratingComments": comment, "ratingCreatedAt": iso(at),
                "ratingCustomerName": format!("c{}@example.org", conv % 3),
                "ratingUserId": 5, "ratingUserName": "Agent", "someNewField": true})
        };
        let fake = FakeHelpscout {
            conversations: Arc::new(Mutex::new(dataset())),
            ..Default::default()
        };
        {
            let mut r = fake.ratings.lock().unwrap();
            for n in 0..6 {
                r.push(rating(90 + n, 1 + n, 1 + n % 3, "Thanks!", T0 + 100 + n));
            }
            r.push(
                json!({"number": 9, "id": 7009, "ratingId": 3, "ratingCreatedAt": iso(T0 + 200)}),
            );
        }
        let base = start(fake.clone()).await;
        let config = config(&db, &base, "ratings = true");
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        // 10 conversations and 6 ratings stored; 2 conversations and 1 rating quarantined.
        assert_eq!((report.inserted, report.quarantined), (16, 3), "{report}");
        let stored = db.store.interactions_after(0, 1000).await.unwrap();
        let r = stored
            .iter()
            .map(|s| &s.interaction)
            .find(|i| i.external_id == "rating-thread:90")
            .expect("the first rating");
        assert_eq!(r.kind, tideline::model::InteractionKind::SurveyResponse);
        assert_eq!(r.parent_external_id.as_deref(), Some("7001"));
        let csat = r.csat.clone().unwrap();
        assert_eq!(
            (csat.value, csat.scale.as_str(), csat.satisfied),
            (3.0, "1-3", true)
        );
        let not_good = stored
            .iter()
            .map(|s| &s.interaction)
            .find(|i| i.external_id == "rating-thread:92")
            .unwrap();
        assert_eq!(not_good.csat.as_ref().unwrap().value, 1.0);
        let q = db.store.quarantine(None).await.unwrap();
        assert!(
            q.iter()
                .any(|i| i.entry.error.field.as_deref() == Some("threadid"))
        );
        {
            let reqs = fake.rating_requests.lock().unwrap();
            let pages: Vec<&str> = reqs.iter().map(|q| q["page"].as_str()).collect();
            assert_eq!(pages, ["1", "2"]);
            assert!(reqs.iter().all(|q| q["start"] == "2024-01-01T00:00:00Z"));
        }
        let c = cursor(&db.store.cursor("hs").await.unwrap());
        // The newest rating stored, and its thread at that second.
        assert_eq!(
            c["ratings"],
            json!({"since": T0 + 105, "skip": ["95"]}),
            "{c}"
        );
        assert_eq!(c["since"], json!(T0 + 120), "{c}");

        // A new rating: the next run asks from the ratings' mark and stores only it.
        fake.ratings
            .lock()
            .unwrap()
            .push(rating(99, 4, 2, "Okay I guess", T0 + 300));
        fake.rating_requests.lock().unwrap().clear();
        let again = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!(again.inserted, 1, "{again}");
        let reqs = fake.rating_requests.lock().unwrap();
        assert_eq!(reqs[0]["start"], iso(T0 + 105));
    }

    async fn helpscout_refused_credentials_are_named(db: TestDb) {
        let fake = FakeHelpscout::default();
        let base = start(fake.clone()).await;
        let text = config_toml(db.dir.path(), &base, db.url.expose(), "");
        fakes::secret_file(db.dir.path(), "helpscout_secret", "wrong-secret-value");
        let config = Config::from_toml(&text, "test", &Overrides::default()).unwrap();
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 401") && err.contains("fix:"), "{err}");
        assert!(!err.contains("wrong-secret-value"), "{err}");
        assert!(fake.requests.lock().unwrap().is_empty());
        assert_eq!(db.store.cursor("hs").await.unwrap(), None);
    }

    on_both_backends!(
        helpscout_pages_token_errors_drift_and_resume,
        helpscout_resume_after_failure_and_token_lifetime,
        helpscout_refused_credentials_are_named,
        helpscout_ratings_report_after_the_conversations
    );
}

pub mod presets {
    //! The freshdesk-csv and helpscout-csv presets over fixtures: UTF-8 with multi-line
    //! descriptions, `;` with decimal commas and local dates, UTF-16LE; a bad row
    //! quarantined with its line and field.

    use crate::common::{self, TestDb};
    use crate::on_both_backends;
    use tideline::connectors::files::Preset;
    use tideline::ingest::{self, ImportOptions};
    use tideline::model::Interaction;

    fn fixture(dir: &str, name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(dir)
            .join(name)
    }

    async fn import(db: &TestDb, dir: &str, name: &str, preset: Preset) -> ingest::ImportReport {
        let config = common::demo_config();
        let o = ImportOptions {
            path: fixture(dir, name),
            preset,
            mapping: None,
            source: None,
            location: None,
            timezone: None,
        };
        ingest::import_file(db.store.as_ref(), common::analyzer(&config), &config, &o)
            .await
            .unwrap()
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn times(i: &Interaction) -> tideline::pipeline::indicators::TicketTimes {
        tideline::pipeline::indicators::ticket_times(
            &i.raw,
            i.occurred_at_ms,
            i.updated_at_ms,
            i.status.as_deref(),
            false,
        )
    }

    async fn freshdesk_csv_in_three_encodings(db: TestDb) {
        let a = import(&db, "freshdesk", "tickets.csv", Preset::FreshdeskCsv).await;
        assert_eq!((a.read, a.inserted, a.quarantined), (5, 4, 1), "{a:?}");
        let b = import(
            &db,
            "freshdesk",
            "tickets_semicolon.csv",
            Preset::FreshdeskCsv,
        )
        .await;
        assert_eq!((b.read, b.inserted, b.quarantined), (3, 3, 0), "{b:?}");
        let c = import(
            &db,
            "freshdesk",
            "tickets_utf16le.csv",
            Preset::FreshdeskCsv,
        )
        .await;
        assert_eq!((c.read, c.inserted, c.quarantined), (2, 2, 0), "{c:?}");

        let all = db.store.interactions_after(0, 100).await.unwrap();
        let by_id = |id: &str| {
            all.iter()
                .map(|s| &s.interaction)
                .find(|i| i.external_id == id)
                .unwrap_or_else(|| panic!("{id} stored"))
        };
        let t101 = by_id("101");
        assert_eq!(t101.source, "freshdesk");
        assert_eq!(t101.status.as_deref(), Some("Resolved"));
        assert_eq!(
            t101.text.as_deref(),
            Some("Cold fries\n\nThe fries were cold.\r\nSecond line of the complaint.")
        );
        assert_eq!(t101.location_id.as_deref(), Some("berlin-mitte"));
        // 10:11:12 in Berlin (UTC+1 in March before DST) is 09:11:12 UTC.
        assert_eq!(t101.occurred_at_ms, ms("2026-03-04T09:11:12Z"));
        assert!(
            t101.identities
                .iter()
                .any(|i| i.value == "freshdesk_user:5001")
        );
        let t = times(t101);
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.abandoned),
            (Some(90.0), Some(1440.0), Some(false))
        );
        // Closed with no agent interaction: abandoned.
        assert_eq!(times(by_id("102")).abandoned, Some(true));
        assert_eq!(times(by_id("103")).abandoned, None);
        assert!(
            by_id("105")
                .text
                .as_deref()
                .unwrap()
                .contains("\"super\" fast!")
        );
        assert_eq!(by_id("103").location_id, None);

        // `;` file: decimal commas in the hours, local dates with dots, a custom field
        // ("Filiale") naming the location, no description column.
        let t201 = by_id("201");
        assert_eq!(t201.occurred_at_ms, ms("2026-03-04T13:22:00Z"));
        assert_eq!(t201.text.as_deref(), Some("Kalte Pommes"));
        assert_eq!(t201.location_id.as_deref(), Some("berlin-mitte"));
        let t = times(t201);
        assert_eq!(
            (t.first_reply_min, t.resolution_min),
            (Some(90.0), Some(1125.0))
        );
        assert_eq!(times(by_id("202")).resolution_min, None);

        // UTF-16LE: Turkish letters, a multi-line description, tags naming the location.
        let t301 = by_id("301");
        assert_eq!(t301.author_name.as_deref(), Some("Çağla Yılmaz"));
        assert!(
            t301.text
                .as_deref()
                .unwrap()
                .contains("soğuktu,\r\nçok kötü.")
        );
        assert_eq!(t301.location_id.as_deref(), Some("istanbul-kadikoy"));
        assert_eq!(
            by_id("302").location_id.as_deref(),
            Some("istanbul-kadikoy")
        );
        // Anna (two tickets, email and contact id) is one customer.
        assert_eq!(by_id("201").identities, by_id("203").identities);

        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 1);
        let e = &q[0].entry.error;
        assert_eq!(e.line, Some(6), "{e:?}");
        assert_eq!(e.field.as_deref(), Some("occurred_at (`Created time`)"));
        assert!(e.raw.contains("yesterday-ish"));
        assert_eq!(q[0].entry.preset, "freshdesk-csv");
        let config = common::demo_config();
        let replay = ingest::replay_quarantine(
            db.store.as_ref(),
            &common::analyzer(&config),
            &config,
            &[q[0].id],
            None,
        )
        .await
        .unwrap();
        assert_eq!((replay.attempted, replay.still_failing), (1, 1));
    }

    async fn helpscout_csv_ratings_on_three_points(db: TestDb) {
        let r = import(&db, "helpscout", "conversations.csv", Preset::HelpscoutCsv).await;
        assert_eq!((r.read, r.inserted, r.quarantined), (4, 3, 1), "{r:?}");
        let all = db.store.interactions_after(0, 100).await.unwrap();
        let by_id = |id: &str| {
            all.iter()
                .map(|s| &s.interaction)
                .find(|i| i.external_id == id)
                .unwrap_or_else(|| panic!("{id} stored"))
        };
        let great = by_id("9001");
        assert_eq!(great.source, "helpscout");
        let c = great.csat.as_ref().unwrap();
        assert_eq!((c.value, c.scale.as_str(), c.satisfied), (3.0, "1-3", true));
        assert_eq!(great.location_id.as_deref(), Some("berlin-mitte"));
        assert!(
            great
                .identities
                .iter()
                .any(|i| i.value == "helpscout_customer:55")
        );
        assert_eq!(great.occurred_at_ms, ms("2026-03-04T10:00:00Z"));
        let bad = by_id("9002").csat.as_ref().unwrap();
        assert_eq!((bad.value, bad.satisfied), (1.0, false));
        assert_eq!(by_id("9003").csat, None);
        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 1);
        let e = &q[0].entry.error;
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(5), Some("csat (`Rating`)")),
            "{e:?}"
        );
        assert!(e.message.contains("1-3"), "{e:?}");
    }

    on_both_backends!(
        freshdesk_csv_in_three_encodings,
        helpscout_csv_ratings_on_three_points
    );
}
