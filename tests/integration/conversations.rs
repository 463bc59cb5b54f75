//! Intercom and Typeform: the API connectors against fake vendor servers on 127.0.0.1 that
//! answer like the vendors' documentation (shapes from `../shared/reference/connectors.md`
//! 4.3 and 5.2), and the `intercom-csv` and `typeform-json` presets over fixtures.

use crate::common::TestDb;
use crate::fakes::{self, find, header, stored, user_agent_ok};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tideline::config::{Config, Overrides};
use tideline::metrics::Metrics;

const T0: i64 = 1_704_200_000;

fn cursor(v: &Option<String>) -> Value {
    serde_json::from_str(v.as_deref().expect("a cursor")).unwrap()
}

fn config(db: &TestDb, connector: &str) -> Config {
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
aliases = ["Berlin-01"]
{connector}
"#,
        db.url.expose()
    );
    Config::from_toml(&text, "test", &Overrides::default()).unwrap()
}

pub mod intercom {
    //! `POST /conversations/search` (`updated_at` filters, `pagination.starting_after`,
    //! `pages.next`), `GET /contacts/{id}`, Bearer token + `Intercom-Version`,
    //! `X-RateLimit-Remaining` / `X-RateLimit-Reset` in unix seconds.

    use super::*;
    use crate::on_both_backends;
    use axum::extract::{Path, State};

    const TOKEN: &str = "ic-s3cret";

    #[derive(Clone, Default)]
    pub struct FakeIntercom {
        pub conversations: Arc<Mutex<Vec<Value>>>,
        /// Search request (0-based) answered 429 with `X-RateLimit-Remaining: 0` and a reset
        /// two seconds ahead (no `Retry-After`).
        pub throttle_request: Option<usize>,
        /// Search request answered 429 with `Retry-After: 1` only.
        pub retry_after_request: Option<usize>,
        /// Search request answered 500.
        pub fail_request: Option<usize>,
        /// Search request answered 200 but with `X-RateLimit-Remaining: 0` (reset 2 s ahead).
        pub exhaust_request: Option<usize>,
        /// While set, the search for the second page answers 500.
        pub page2_down: Arc<AtomicBool>,
        /// Search bodies that passed the checks, with their arrival.
        pub searches: Arc<Mutex<Vec<(Value, Instant)>>>,
        /// Contact ids asked for.
        pub contact_requests: Arc<Mutex<Vec<String>>>,
    }

    fn headers_ok(h: &HeaderMap) -> Option<Response> {
        if header(h, "authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
            return Some(
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]})),
                )
                    .into_response(),
            );
        }
        if !user_agent_ok(h)
            || header(h, "intercom-version") != Some("2.11")
            || header(h, "accept") != Some("application/json")
        {
            return Some((StatusCode::BAD_REQUEST, "headers").into_response());
        }
        None
    }

    fn reset_ahead() -> String {
        (chrono::Utc::now().timestamp() + 2).to_string()
    }

    async fn search(State(s): State<FakeIntercom>, h: HeaderMap, body: String) -> Response {
        if let Some(r) = headers_ok(&h) {
            return r;
        }
        assert_eq!(header(&h, "content-type"), Some("application/json"));
        let b: Value = serde_json::from_str(&body).unwrap();
        // The documented shape: updated_at > since OR updated_at = since, one value.
        let q = &b["query"];
        assert_eq!(q["operator"], "OR", "{b}");
        let parts = q["value"].as_array().unwrap();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p["field"] == "updated_at"));
        let ops: Vec<&str> = parts
            .iter()
            .map(|p| p["operator"].as_str().unwrap())
            .collect();
        assert_eq!(ops, [">", "="]);
        let since = parts[0]["value"]
            .as_i64()
            .expect("unix seconds as a number");
        assert_eq!(parts[1]["value"].as_i64(), Some(since));
        let per_page = b["pagination"]["per_page"].as_u64().unwrap() as usize;
        assert!((1..=150).contains(&per_page));
        let offset: usize = match b["pagination"].get("starting_after") {
            None => 0,
            Some(a) => a
                .as_str()
                .unwrap()
                .strip_prefix("off:")
                .unwrap()
                .parse()
                .unwrap(),
        };
        let n = {
            let mut r = s.searches.lock().unwrap();
            r.push((b.clone(), Instant::now()));
            r.len() - 1
        };
        if s.throttle_request == Some(n) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("x-ratelimit-limit", "1666".to_string()),
                    ("x-ratelimit-remaining", "0".to_string()),
                    ("x-ratelimit-reset", reset_ahead()),
                ],
                axum::Json(
                    json!({"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]}),
                ),
            )
                .into_response();
        }
        if s.retry_after_request == Some(n) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "Too Many Requests",
            )
                .into_response();
        }
        if s.fail_request == Some(n) || (offset > 0 && s.page2_down.load(Ordering::SeqCst)) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        let mut all: Vec<Value> = s
            .conversations
            .lock()
            .unwrap()
            .iter()
            .filter(|c| secs(&c["updated_at"]) >= since)
            .cloned()
            .collect();
        all.sort_by_key(|c| secs(&c["updated_at"]));
        let window: Vec<Value> = all.iter().skip(offset).take(per_page).cloned().collect();
        let page = offset / per_page + 1;
        let total_pages = all.len().div_ceil(per_page).max(1);
        let mut pages = json!({"type": "pages", "page": page, "per_page": per_page, "total_pages": total_pages});
        if offset + per_page < all.len() {
            pages["next"] =
                json!({"page": page + 1, "starting_after": format!("off:{}", offset + per_page)});
        }
        let remaining = if s.exhaust_request == Some(n) {
            "0"
        } else {
            "1500"
        };
        (
            [
                ("x-ratelimit-limit", "1666".to_string()),
                ("x-ratelimit-remaining", remaining.to_string()),
                ("x-ratelimit-reset", reset_ahead()),
            ],
            axum::Json(json!({
                "type": "conversation.list",
                "conversations": window,
                "total_count": all.len(),
                "pages": pages,
            })),
        )
            .into_response()
    }

    async fn contact(
        State(s): State<FakeIntercom>,
        h: HeaderMap,
        Path(id): Path<String>,
    ) -> Response {
        if let Some(r) = headers_ok(&h) {
            return r;
        }
        s.contact_requests.lock().unwrap().push(id.clone());
        if id == "c-gone" {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"type": "error.list", "errors": [{"code": "not_found", "message": "User Not Found"}]})),
            )
                .into_response();
        }
        let n: usize = id.trim_start_matches('c').parse().unwrap();
        axum::Json(json!({
            "type": "contact", "id": id, "workspace_id": "ecahpwf5", "external_id": format!("ext-{id}"),
            "role": "user", "email": format!("person{n}@example.org"), "phone": format!("+49151000000{n}"),
            "name": format!("Person {n}"), "avatar": null, "owner_id": null,
            "custom_attributes": {"plan": "pro"}, "location": {"country": "Germany"}
        }))
        .into_response()
    }

    fn secs(v: &Value) -> i64 {
        match v {
            Value::Number(n) => n.as_i64().unwrap(),
            Value::String(s) => s.parse().unwrap(),
            _ => panic!("no time"),
        }
    }

    pub async fn start(fake: FakeIntercom) -> String {
        fakes::serve(
            axum::Router::new()
                .route("/conversations/search", axum::routing::post(search))
                .route("/contacts/{id}", axum::routing::get(contact))
                .with_state(fake),
        )
        .await
    }

    /// A conversation as the search returns it.
    fn conversation(n: i64, updated_at: i64) -> Value {
        let contact = format!("c{}", n % 4 + 1);
        let created = T0 - 100_000 + n * 60;
        json!({
            "type": "conversation", "id": n.to_string(), "title": null,
            "created_at": created, "updated_at": updated_at,
            "waiting_since": null, "snoozed_until": null,
            "source": {
                "type": "conversation", "id": format!("s{n}"), "delivered_as": "customer_initiated",
                "subject": "", "body": format!("<p>Order {n}: where is my <b>parcel</b>?</p><p>Thanks &amp; bye</p>"),
                "author": {"type": "user", "id": contact, "name": "", "email": ""},
                "attachments": [], "url": null, "redacted": false
            },
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": contact, "external_id": null}]},
            "teammates": {"type": "admin.list", "admins": [{"type": "admin", "id": "814860"}]},
            "admin_assignee_id": 814860, "team_assignee_id": null,
            "custom_attributes": {"Store": "Berlin-01"},
            "open": false, "state": "closed", "read": true, "priority": "not_priority",
            "tags": {"type": "tag.list", "tags": []},
            "conversation_rating": {
                "rating": n % 5 + 1, "remark": if n % 2 == 0 { "Too slow" } else { "Lovely help" },
                "created_at": created + 8000,
                "contact": {"type": "contact", "id": contact}, "teammate": {"type": "admin", "id": "814860"}
            },
            "statistics": {
                "type": "conversation_statistics", "time_to_assignment": 0, "time_to_admin_reply": 300,
                "time_to_first_close": 3000, "time_to_last_close": 3600, "median_time_to_reply": 300,
                "first_contact_reply_at": created, "first_admin_reply_at": created + 600,
                "first_close_at": created + 3000, "last_close_at": created + 7200,
                "count_reopens": n % 2, "count_assignments": 1, "count_conversation_parts": 4
            }
        })
    }

    /// Conversations 1..=12: drift, a rating outside 1-5, a conversation nobody answered,
    /// one without an id, one whose contact was deleted; 12 shares 11's second.
    fn dataset() -> Vec<Value> {
        let mut v: Vec<Value> = (1..=12).map(|n| conversation(n, T0 + n * 10)).collect();
        v[11]["updated_at"] = json!(T0 + 110);
        // Drift: unknown extra fields.
        v[2]["ai_agent"] = json!({"source_type": "essentials_plan_setup"});
        v[2]["linked_objects"] = json!({"type": "list", "data": []});
        // Drift: optional fields missing.
        for k in [
            "conversation_rating",
            "statistics",
            "tags",
            "custom_attributes",
        ] {
            v[3].as_object_mut().unwrap().remove(k);
        }
        v[3]["source"].as_object_mut().unwrap().remove("subject");
        // A rating outside Intercom's 1-5: quarantined by field.
        v[4]["conversation_rating"]["rating"] = json!(9);
        // Drift: times as strings.
        v[5]["updated_at"] = json!((T0 + 60).to_string());
        v[5]["created_at"] = json!((T0 - 100_000 + 360).to_string());
        // Closed with no teammate reply.
        for k in ["first_admin_reply_at", "time_to_admin_reply"] {
            v[6]["statistics"].as_object_mut().unwrap().remove(k);
        }
        // No id.
        v[7].as_object_mut().unwrap().remove("id");
        // The contact no longer exists.
        v[8]["contacts"]["contacts"][0]["id"] = json!("c-gone");
        v[8]["source"]["author"]["id"] = json!("c-gone");
        v
    }

    fn connector(base: &str, dir: &std::path::Path, extra: &str) -> String {
        let token = fakes::secret_file(dir, "intercom_token", TOKEN);
        format!(
            "[[connector]]\nkind = \"intercom\"\nname = \"chat\"\nbase_url = \"{base}\"\naccess_token_file = \"{}\"\nper_page = 5\nmax_wait_secs = 5\n{extra}\n",
            token.display()
        )
    }

    fn afters(searches: &[(Value, Instant)]) -> Vec<Option<String>> {
        searches
            .iter()
            .map(|(b, _)| {
                b["pagination"]
                    .get("starting_after")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }

    /// Three pages (the last without `pages.next`), a 429 with the rate-limit reset and a
    /// 500 on the way, a conversation without an id and one rated 9 quarantined with page,
    /// index and field, drifted shapes read, each contact fetched once per run; then a
    /// second sync reads only the new and changed conversations (one at the boundary
    /// second), and a third nothing.
    async fn intercom_pages_contacts_limits_and_resume(db: TestDb) {
        let fake = FakeIntercom {
            conversations: Arc::new(Mutex::new(dataset())),
            throttle_request: Some(1),
            fail_request: Some(3),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(&base, db.dir.path(), ""));
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        assert_eq!(
            (
                report.pages,
                report.fetched,
                report.inserted,
                report.quarantined
            ),
            (3, 12, 10, 2),
            "{report}"
        );
        let c = metrics.connector_counters("chat").unwrap();
        assert_eq!((c.rate_limit_waits, c.errors), (1, 2));
        {
            let s = fake.searches.lock().unwrap();
            let off = |o: &str| Some(o.to_string());
            assert_eq!(
                afters(&s),
                [
                    None,
                    off("off:5"),
                    off("off:5"),
                    off("off:10"),
                    off("off:10")
                ]
            );
            assert!(s.iter().all(|(b, _)| b["query"]["value"][0]["value"] == 0));
            // The 429's reset was two seconds ahead (at least one second away).
            let waited = s[2].1.duration_since(s[1].1);
            assert!(waited.as_millis() >= 900, "{waited:?}");
        }
        // Five contacts (c1..c4 and the deleted one), each asked for once.
        {
            let mut asked = fake.contact_requests.lock().unwrap().clone();
            assert_eq!(asked.len(), 5, "{asked:?}");
            asked.sort();
            asked.dedup();
            assert_eq!(asked.len(), 5);
        }
        // The mark: the highest second and both ids stored at it.
        assert_eq!(
            cursor(&db.store.cursor("chat").await.unwrap()),
            json!({"since": T0 + 110, "skip": ["11", "12"]})
        );

        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 2);
        let no_id = q
            .iter()
            .find(|i| i.entry.error.field.as_deref() == Some("id"))
            .unwrap();
        assert_eq!(no_id.entry.error.line, Some(3));
        assert!(
            no_id.entry.error.origin.contains("page 2"),
            "{:?}",
            no_id.entry.error
        );
        let rated = q
            .iter()
            .find(|i| {
                i.entry
                    .error
                    .field
                    .as_deref()
                    .is_some_and(|f| f.contains("csat"))
            })
            .unwrap();
        assert_eq!(rated.entry.error.line, Some(5));
        assert!(rated.entry.error.origin.contains("page 1"));
        assert!(q.iter().all(|i| i.entry.preset == "intercom-json"));
        // The kept record carries the fetched contacts, so the replay reads the same.
        assert!(
            rated.entry.error.raw.contains("person2@example.org"),
            "{}",
            rated.entry.error.raw
        );
        let replay = tideline::ingest::replay_quarantine(
            db.store.as_ref(),
            &crate::common::analyzer(&config),
            &config,
            &[rated.id],
            None,
        )
        .await
        .unwrap();
        assert_eq!((replay.attempted, replay.still_failing), (1, 1));

        let all = stored(&db).await;
        let one = find(&all, "1");
        assert_eq!(
            one.text.as_deref(),
            Some("Order 1: where is my parcel?\nThanks & bye\n\nRating remark: Lovely help")
        );
        let csat = one.csat.as_ref().unwrap();
        assert_eq!(
            (csat.value, csat.scale.as_str(), csat.satisfied),
            (2.0, "1-5", false)
        );
        assert_eq!(one.status.as_deref(), Some("closed"));
        assert_eq!(one.location_id.as_deref(), Some("berlin-mitte"));
        let ids: Vec<&str> = one.identities.iter().map(|i| i.value.as_str()).collect();
        assert!(ids.contains(&"person2@example.org"), "{ids:?}");
        assert!(ids.contains(&"intercom_contact:c2"), "{ids:?}");
        assert!(ids.contains(&"crm:ext-c2"), "{ids:?}");
        assert!(ids.contains(&"+491510000002"), "{ids:?}");
        assert_eq!(one.occurred_at_ms, (T0 - 100_000 + 60) * 1000);
        // Drift: extra fields ignored; missing rating, statistics and subject are fine.
        assert!(find(&all, "3").csat.is_some());
        assert!(find(&all, "4").csat.is_none());
        assert_eq!(find(&all, "6").updated_at_ms, Some((T0 + 60) * 1000));
        // The deleted contact: the conversation is kept with its platform id only.
        let gone = find(&all, "9");
        assert!(
            gone.identities
                .iter()
                .any(|i| i.value == "intercom_contact:c-gone")
        );
        assert!(!gone.identities.iter().any(|i| i.value.contains('@')));
        // Support times for the indicators.
        let rows = db
            .store
            .indicator_rows(&tideline::store::IndicatorFilter {
                from_ms: 0,
                until_ms: i64::MAX,
                ..Default::default()
            })
            .await
            .unwrap();
        let times = |id: &str| {
            rows.iter()
                .find(|r| r.external_id == id)
                .and_then(|r| r.ticket.clone())
                .unwrap()
        };
        let t = times("1");
        assert_eq!(
            (t.first_reply_min, t.resolution_min, t.reopens, t.abandoned),
            (Some(10.0), Some(120.0), Some(1), Some(false))
        );
        assert_eq!(times("7").abandoned, Some(true));
        assert_eq!(times("4").first_reply_min, None);

        // New and changed: one at the boundary second, a later one, 2 edited.
        {
            let mut c = fake.conversations.lock().unwrap();
            c.push(conversation(13, T0 + 110));
            c.push(conversation(14, T0 + 500));
            c[1]["updated_at"] = json!(T0 + 400);
            c[1]["conversation_rating"]["remark"] = json!("They called back after all");
        }
        let before = fake.searches.lock().unwrap().len();
        let contacts_before = fake.contact_requests.lock().unwrap().len();
        let again = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        {
            let s = fake.searches.lock().unwrap();
            assert_eq!(s.len() - before, 1, "one page");
            assert_eq!(s[before].0["query"]["value"][0]["value"], T0 + 110);
            // 11 and 12 come back at the boundary second and are dropped; 13, 14 and 2 read.
            let asked = fake.contact_requests.lock().unwrap()[contacts_before..].to_vec();
            let mut distinct = asked.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(asked.len(), distinct.len(), "once per run: {asked:?}");
        }
        assert_eq!(
            (
                again.inserted,
                again.updated,
                again.unchanged,
                again.quarantined
            ),
            (2, 1, 0, 0),
            "{again}"
        );
        assert!(
            find(&stored(&db).await, "2")
                .text
                .as_deref()
                .unwrap()
                .contains("called back")
        );
        assert_eq!(
            cursor(&db.store.cursor("chat").await.unwrap()),
            json!({"since": T0 + 500, "skip": ["14"]})
        );
        let third = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!((third.inserted, third.updated, third.unchanged), (0, 0, 0));
        assert_eq!(db.store.fingerprint().await.unwrap().len(), 12);
    }

    /// A response that uses up the rate limit makes the next request wait for the reset; a
    /// run that fails on page 2 keeps page 1 and its cursor, and the next run goes on with
    /// `starting_after` and the same window (a 429 with only `Retry-After` on the way).
    async fn intercom_rate_reset_and_resume_after_failure(db: TestDb) {
        let fake = FakeIntercom {
            conversations: Arc::new(Mutex::new(
                (1..=10).map(|n| conversation(n, T0 + n)).collect(),
            )),
            exhaust_request: Some(0),
            retry_after_request: Some(3),
            ..Default::default()
        };
        fake.page2_down.store(true, Ordering::SeqCst);
        let base = start(fake.clone()).await;
        let config = config(
            &db,
            &connector(
                &base,
                db.dir.path(),
                "max_retries = 1\nfetch_contacts = false\nstart_time = \"2023-12-01\"",
            ),
        );
        let since = 1_701_388_800; // 2023-12-01T00:00:00Z
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 500"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 5);
        {
            let s = fake.searches.lock().unwrap();
            let waited = s[1].1.duration_since(s[0].1);
            assert!(
                waited.as_millis() >= 900,
                "the reset was not awaited: {waited:?}"
            );
        }
        assert!(fake.contact_requests.lock().unwrap().is_empty());
        let mid = cursor(&db.store.cursor("chat").await.unwrap());
        assert_eq!(
            (mid["since"].as_i64(), mid["after"].as_str()),
            (Some(since), Some("off:5"))
        );

        fake.page2_down.store(false, Ordering::SeqCst);
        let before = fake.searches.lock().unwrap().len();
        assert_eq!(before, 3, "page 1, page 2 and its retry");
        let report = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        let s = fake.searches.lock().unwrap().clone();
        let tail = afters(&s[before..]);
        assert_eq!(tail, [Some("off:5".to_string()), Some("off:5".to_string())]);
        assert!(
            s[before..]
                .iter()
                .all(|(b, _)| b["query"]["value"][0]["value"] == since)
        );
        let waited = s[before + 1].1.duration_since(s[before].1);
        assert!(waited.as_millis() >= 900, "Retry-After: {waited:?}");
        assert_eq!((report.inserted, report.pages), (5, 1));
        assert_eq!(db.store.counts().await.unwrap().interactions, 10);
        assert_eq!(db.store.fingerprint().await.unwrap().len(), 10);
        assert_eq!(
            cursor(&db.store.cursor("chat").await.unwrap()),
            json!({"since": T0 + 10, "skip": ["10"]})
        );
    }

    /// A refused token is an error that names the fix and never the token.
    async fn intercom_refused_token_is_named(db: TestDb) {
        let base = start(FakeIntercom::default()).await;
        let text = connector(&base, db.dir.path(), "");
        fakes::secret_file(db.dir.path(), "intercom_token", "wrong-token-value");
        let config = config(&db, &text);
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 401") && err.contains("fix:"), "{err}");
        assert!(!err.contains("wrong-token-value"), "{err}");
        assert_eq!(db.store.cursor("chat").await.unwrap(), None);
    }

    on_both_backends!(
        intercom_pages_contacts_limits_and_resume,
        intercom_rate_reset_and_resume_after_failure,
        intercom_refused_token_is_named
    );
}

pub mod typeform {
    //! `GET /forms/{form_id}/responses` with `page_size`, `completed=true` and the `after`
    //! token (never with `since`/`until`), Bearer token, 429 + `Retry-After`.

    use super::*;
    use crate::on_both_backends;
    use axum::extract::{Path, Query, State};
    use std::collections::HashMap;

    const TOKEN: &str = "tf-s3cret";

    /// One request: its form, its query and when it arrived.
    pub type Seen = (String, HashMap<String, String>, Instant);

    #[derive(Clone, Default)]
    pub struct FakeTypeform {
        /// Per form, the responses in processing order.
        pub forms: Arc<Mutex<HashMap<String, Vec<Value>>>>,
        pub throttle_request: Option<usize>,
        pub fail_request: Option<usize>,
        /// While set, every request for form `frmB` answers 500.
        pub form_b_down: Arc<AtomicBool>,
        /// (form, query, arrival) of every request that passed the checks.
        pub requests: Arc<Mutex<Vec<Seen>>>,
    }

    async fn responses(
        State(s): State<FakeTypeform>,
        h: HeaderMap,
        Path(form): Path<String>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        if header(&h, "authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"code": "AUTHENTICATION_FAILED", "description": "Authentication credentials not found on the Request Headers"})),
            )
                .into_response();
        }
        if !user_agent_ok(&h) {
            return (StatusCode::BAD_REQUEST, "no user agent").into_response();
        }
        assert_eq!(q.get("completed").map(String::as_str), Some("true"));
        assert!(
            !q.contains_key("since") && !q.contains_key("until"),
            "{q:?}"
        );
        let page_size: usize = q["page_size"].parse().unwrap();
        assert!((1..=1000).contains(&page_size));
        let n = {
            let mut r = s.requests.lock().unwrap();
            r.push((form.clone(), q.clone(), Instant::now()));
            r.len() - 1
        };
        if s.throttle_request == Some(n) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                axum::Json(json!({"code": "TOO_MANY_REQUESTS"})),
            )
                .into_response();
        }
        if s.fail_request == Some(n) || (form == "frmB" && s.form_b_down.load(Ordering::SeqCst)) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response();
        }
        let all = s
            .forms
            .lock()
            .unwrap()
            .get(&form)
            .cloned()
            .unwrap_or_default();
        let start = match q.get("after") {
            Some(a) => {
                assert!(!q.contains_key("sort"), "after with sort: {q:?}");
                all.iter()
                    .position(|r| r["token"] == json!(a))
                    .map(|p| p + 1)
                    .expect("a known token")
            }
            None => {
                assert_eq!(q.get("sort").map(String::as_str), Some("submitted_at,asc"));
                0
            }
        };
        let rest: Vec<Value> = all[start..].to_vec();
        let items: Vec<Value> = rest.iter().take(page_size).cloned().collect();
        axum::Json(json!({
            "total_items": rest.len(),
            "page_count": rest.len().div_ceil(page_size),
            "items": items,
        }))
        .into_response()
    }

    pub async fn start(fake: FakeTypeform) -> String {
        fakes::serve(
            axum::Router::new()
                .route("/forms/{form}/responses", axum::routing::get(responses))
                .with_state(fake),
        )
        .await
    }

    /// A response as the documentation shows it.
    fn response(form: &str, n: i64) -> Value {
        let at = chrono::DateTime::from_timestamp(T0 + n * 60, 0).unwrap();
        json!({
            "landing_id": format!("l-{form}-{n}"), "token": format!("{form}-t{n}"),
            "response_id": format!("{form}-t{n}"),
            "landed_at": (at - chrono::Duration::seconds(40)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "submitted_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "metadata": {"user_agent": "Mozilla/5.0", "platform": "other", "referer": "https://shop.example/thanks",
                         "network_id": "n1", "browser": "default"},
            "hidden": {"email": format!("p{}@example.org", n % 3), "customer_id": format!("{}", 900 + n % 3), "store": "Berlin-01"},
            "calculated": {"score": 0},
            "variables": [],
            "answers": [
                {"field": {"id": "F1", "type": "nps", "ref": "nps"}, "type": "number", "number": n % 11},
                {"field": {"id": "F2", "type": "rating", "ref": "csat"}, "type": "number", "number": n % 5 + 1},
                {"field": {"id": "F3", "type": "opinion_scale", "ref": "effort"}, "type": "number", "number": n % 7 + 1},
                {"field": {"id": "F4", "type": "long_text", "ref": "comment"}, "type": "text", "text": format!("Answer {n}: quick and friendly")}
            ]
        })
    }

    /// frmA: 7 responses (one without a token, one with NPS 11, drift); frmB: 2.
    fn forms() -> HashMap<String, Vec<Value>> {
        let mut a: Vec<Value> = (1..=7).map(|n| response("frmA", n)).collect();
        a[1].as_object_mut().unwrap().remove("token");
        a[1].as_object_mut().unwrap().remove("response_id");
        a[2]["answers"][0]["number"] = json!(11);
        // Drift: unknown fields; no hidden fields and no comment.
        a[3]["sentiment"] = json!({"label": "positive"});
        a[3].as_object_mut().unwrap().remove("hidden");
        a[3]["answers"].as_array_mut().unwrap().pop();
        let b: Vec<Value> = (1..=2).map(|n| response("frmB", n)).collect();
        HashMap::from([("frmA".to_string(), a), ("frmB".to_string(), b)])
    }

    fn connector(base: &str, dir: &std::path::Path, extra: &str) -> String {
        let token = fakes::secret_file(dir, "typeform_token", TOKEN);
        format!(
            "[[connector]]\nkind = \"typeform\"\nname = \"survey\"\nbase_url = \"{base}\"\ntoken_file = \"{}\"\nforms = [\"frmA\", \"frmB\"]\npage_size = 3\nces = [\"effort\"]\nmax_wait_secs = 5\n{extra}\n",
            token.display()
        )
    }

    /// Two forms, three pages of the first (the last short) and one of the second; a 429
    /// with `Retry-After` and a 500 on the way; requests paced; a response without a token
    /// and one with NPS 11 quarantined with page, index and field; then a second sync asks
    /// each form `after` its stored token, and a third stores nothing.
    async fn typeform_forms_pages_pacing_and_resume(db: TestDb) {
        let fake = FakeTypeform {
            forms: Arc::new(Mutex::new(forms())),
            throttle_request: Some(1),
            fail_request: Some(3),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(
            &db,
            &connector(&base, db.dir.path(), "min_interval_ms = 200"),
        );
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        assert_eq!(
            (
                report.pages,
                report.fetched,
                report.inserted,
                report.quarantined
            ),
            (4, 9, 7, 2),
            "{report}"
        );
        {
            let r = fake.requests.lock().unwrap();
            let seen: Vec<(&str, Option<&str>)> = r
                .iter()
                .map(|(f, q, _)| (f.as_str(), q.get("after").map(String::as_str)))
                .collect();
            assert_eq!(
                seen,
                [
                    ("frmA", None),
                    ("frmA", Some("frmA-t3")),
                    ("frmA", Some("frmA-t3")),
                    ("frmA", Some("frmA-t6")),
                    ("frmA", Some("frmA-t6")),
                    ("frmB", None),
                ]
            );
            // About two requests a second at most: here at least 200 ms apart.
            for w in r.windows(2) {
                let gap = w[1].2.duration_since(w[0].2);
                assert!(gap.as_millis() >= 190, "{gap:?}");
            }
            assert!(
                r[2].2.duration_since(r[1].2).as_millis() >= 900,
                "Retry-After"
            );
        }
        assert_eq!(
            cursor(&db.store.cursor("survey").await.unwrap()),
            json!({"after": {"frmA": "frmA-t7", "frmB": "frmB-t2"}})
        );
        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 2);
        let no_token = q
            .iter()
            .find(|i| i.entry.error.field.as_deref() == Some("token"))
            .unwrap();
        assert_eq!(no_token.entry.error.line, Some(2));
        assert!(
            no_token.entry.error.origin.contains("frmA")
                && no_token.entry.error.origin.contains("page 1")
        );
        let nps = q
            .iter()
            .find(|i| {
                i.entry
                    .error
                    .field
                    .as_deref()
                    .is_some_and(|f| f.contains("nps"))
            })
            .unwrap();
        assert_eq!(nps.entry.error.line, Some(3));
        assert!(q.iter().all(|i| i.entry.preset == "typeform-json"));
        // The replay reads the kept roles: the same field fails again.
        let replay = tideline::ingest::replay_quarantine(
            db.store.as_ref(),
            &crate::common::analyzer(&config),
            &config,
            &[nps.id],
            None,
        )
        .await
        .unwrap();
        assert_eq!((replay.attempted, replay.still_failing), (1, 1));

        let all = stored(&db).await;
        let one = find(&all, "frmA-t1");
        assert_eq!(one.nps, Some(1));
        let csat = one.csat.as_ref().unwrap();
        assert_eq!((csat.value, csat.scale.as_str()), (2.0, "1-5"));
        let ces = one.ces.as_ref().unwrap();
        assert_eq!((ces.value, ces.scale.as_str()), (2.0, "1-7"));
        assert_eq!(one.text.as_deref(), Some("Answer 1: quick and friendly"));
        assert_eq!(one.location_id.as_deref(), Some("berlin-mitte"));
        let ids: Vec<&str> = one.identities.iter().map(|i| i.value.as_str()).collect();
        assert!(
            ids.contains(&"p1@example.org") && ids.contains(&"crm:901"),
            "{ids:?}"
        );
        assert_eq!(one.occurred_at_ms, (T0 + 60) * 1000);
        // Drift: no hidden fields, no comment, an extra field: stored without identities.
        let drift = find(&all, "frmA-t4");
        assert!(drift.identities.is_empty() && drift.text.is_none());
        assert_eq!(find(&all, "frmB-t2").nps, Some(2));

        // New responses on both forms.
        {
            let mut f = fake.forms.lock().unwrap();
            f.get_mut("frmA").unwrap().push(response("frmA", 8));
            f.get_mut("frmB").unwrap().push(response("frmB", 3));
        }
        let before = fake.requests.lock().unwrap().len();
        let again = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        {
            let r = fake.requests.lock().unwrap();
            let seen: Vec<(&str, Option<&str>)> = r[before..]
                .iter()
                .map(|(f, q, _)| (f.as_str(), q.get("after").map(String::as_str)))
                .collect();
            assert_eq!(seen, [("frmA", Some("frmA-t7")), ("frmB", Some("frmB-t2"))]);
        }
        assert_eq!(
            (again.inserted, again.updated, again.quarantined),
            (2, 0, 0),
            "{again}"
        );
        let third = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!((third.inserted, third.updated, third.unchanged), (0, 0, 0));
        assert_eq!(db.store.fingerprint().await.unwrap().len(), 9);
    }

    /// A run that fails on the second form keeps the first form's pages and its tokens; the
    /// next run starts at the second form and stores everything exactly once.
    async fn typeform_resume_after_failure(db: TestDb) {
        let fake = FakeTypeform {
            forms: Arc::new(Mutex::new(forms())),
            ..Default::default()
        };
        fake.form_b_down.store(true, Ordering::SeqCst);
        let base = start(fake.clone()).await;
        let config = config(
            &db,
            &connector(&base, db.dir.path(), "max_retries = 1\nmin_interval_ms = 0"),
        );
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 500") && !err.contains(TOKEN), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 5);
        let mid = cursor(&db.store.cursor("survey").await.unwrap());
        assert_eq!(
            mid,
            json!({"after": {"frmA": "frmA-t7"}, "current": "frmB"})
        );
        fake.form_b_down.store(false, Ordering::SeqCst);
        let before = fake.requests.lock().unwrap().len();
        let report = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        let r = fake.requests.lock().unwrap().clone();
        let forms: Vec<&str> = r[before..].iter().map(|(f, _, _)| f.as_str()).collect();
        assert_eq!(forms, ["frmB"]);
        assert_eq!(report.inserted, 2);
        assert_eq!(db.store.fingerprint().await.unwrap().len(), 7);
    }

    on_both_backends!(
        typeform_forms_pages_pacing_and_resume,
        typeform_resume_after_failure
    );
}

pub mod presets {
    //! `intercom-csv` (comma and `;` with decimal commas) and `typeform-json` (a saved page
    //! with the default refs; an array of items with a mapping of the form's own refs).

    use super::*;
    use crate::common;
    use crate::on_both_backends;
    use tideline::connectors::files::Preset;
    use tideline::ingest::{self, ImportOptions};

    fn fixture(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(path)
    }

    async fn import(
        db: &TestDb,
        path: &str,
        preset: Preset,
        mapping: Option<&str>,
    ) -> ingest::ImportReport {
        let config = common::demo_config();
        let o = ImportOptions {
            path: fixture(path),
            preset,
            mapping: mapping.map(fixture),
            source: None,
            location: None,
            timezone: None,
        };
        ingest::import_file(db.store.as_ref(), common::analyzer(&config), &config, &o)
            .await
            .unwrap()
    }

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    async fn intercom_csv_reads_both_dialects(db: TestDb) {
        let r = import(&db, "intercom/conversations.csv", Preset::IntercomCsv, None).await;
        // Three rows; 217's rating of 7 is outside 1-5 and quarantined.
        assert_eq!((r.read, r.inserted, r.quarantined), (3, 2, 1), "{r:?}");
        let s = import(
            &db,
            "intercom/conversations_semicolon.csv",
            Preset::IntercomCsv,
            None,
        )
        .await;
        assert_eq!((s.read, s.inserted, s.quarantined), (2, 2, 0), "{s:?}");
        let all = stored(&db).await;
        let ana = find(&all, "215");
        assert_eq!(ana.source, "intercom");
        assert_eq!(
            ana.text.as_deref(),
            Some("Parcel\n\nWhere is my parcel?\nOrder 4411\n\nRating remark: Super fast!")
        );
        assert_eq!(
            ana.csat.as_ref().map(|c| (c.value, c.satisfied)),
            Some((5.0, true))
        );
        assert_eq!(ana.location_id.as_deref(), Some("berlin-mitte"));
        // 09:15 in Berlin (the store's zone, winter) is 08:15 UTC.
        assert_eq!(ana.occurred_at_ms, utc("2026-03-02T08:15:00Z"));
        let ids: Vec<&str> = ana.identities.iter().map(|i| i.value.as_str()).collect();
        assert!(
            ids.contains(&"ana@example.org") && ids.contains(&"crm:u-991"),
            "{ids:?}"
        );
        let ben = find(&all, "216");
        assert_eq!(ben.text.as_deref(), Some("Two lines\nin one cell"));
        assert!(ben.csat.is_none());
        assert_eq!(ben.status.as_deref(), Some("open"));
        let eli = find(&all, "302");
        assert_eq!(eli.csat.as_ref().map(|c| c.value), Some(2.0));
        assert!(
            eli.text
                .as_deref()
                .unwrap()
                .ends_with("Rating remark: Zu langsam; leider")
        );

        let bad = &db.store.quarantine(None).await.unwrap()[0].entry.error;
        // The physical line: 216's message spans two lines.
        assert_eq!(bad.line, Some(5));
        assert_eq!(bad.field.as_deref(), Some("csat (`Rating`)"), "{bad:?}");

        let rows = db
            .store
            .indicator_rows(&tideline::store::IndicatorFilter {
                from_ms: 0,
                until_ms: i64::MAX,
                ..Default::default()
            })
            .await
            .unwrap();
        let times = |id: &str| {
            rows.iter()
                .find(|r| r.external_id == id)
                .and_then(|r| r.ticket.clone())
                .unwrap()
        };
        // "10m 30s" and "1:45:00"; "12,5" minutes and "1,5" hours.
        assert_eq!(
            (times("215").first_reply_min, times("215").resolution_min),
            (Some(10.5), Some(105.0))
        );
        assert_eq!(
            (times("301").first_reply_min, times("301").resolution_min),
            (Some(12.5), Some(90.0))
        );
        assert_eq!(times("216").first_reply_min, None);
    }

    async fn typeform_json_reads_pages_and_arrays(db: TestDb) {
        let r = import(
            &db,
            "typeform/responses_page.json",
            Preset::TypeformJson,
            None,
        )
        .await;
        // Four responses; a3's NPS of 11 is quarantined.
        assert_eq!((r.read, r.inserted, r.quarantined), (4, 3, 1), "{r:?}");
        let all = stored(&db).await;
        let a1 = find(&all, "a1");
        assert_eq!(a1.source, "typeform");
        assert_eq!(a1.nps, Some(9));
        assert_eq!(a1.text.as_deref(), Some("Friendly staff, quick pickup"));
        assert_eq!(a1.location_id.as_deref(), Some("berlin-mitte"));
        assert_eq!(a1.occurred_at_ms, utc("2026-03-01T10:02:00Z"));
        let ids: Vec<&str> = a1.identities.iter().map(|i| i.value.as_str()).collect();
        assert!(
            ids.contains(&"ana@example.org") && ids.contains(&"crm:991"),
            "{ids:?}"
        );
        let a2 = find(&all, "a2");
        assert_eq!(
            (a2.nps, a2.csat.as_ref().map(|c| c.value)),
            (Some(3), Some(2.0))
        );
        assert!(a2.identities.iter().any(|i| i.value == "+4915112345678"));
        let a4 = find(&all, "a4");
        assert_eq!(
            a4.ces.as_ref().map(|c| (c.value, c.agrees)),
            Some((6.0, true))
        );
        assert!(a4.identities.is_empty());
        let bad = &db.store.quarantine(None).await.unwrap()[0].entry.error;
        assert!(bad.field.as_deref().unwrap().contains("nps"), "{bad:?}");

        let c = import(
            &db,
            "typeform/responses_custom.json",
            Preset::TypeformJson,
            Some("typeform/custom.mapping.toml"),
        )
        .await;
        assert_eq!((c.read, c.inserted, c.quarantined), (2, 2, 0), "{c:?}");
        let all = stored(&db).await;
        let c1 = find(&all, "c1");
        assert_eq!(c1.nps, Some(10));
        let ces = c1.ces.as_ref().unwrap();
        // 2 on the reversed 1-5 scale (1 = very easy) agrees the task was easy.
        assert_eq!(
            (ces.value, ces.scale.as_str(), ces.agrees),
            (2.0, "1-5-reversed", true)
        );
        assert_eq!(c1.text.as_deref(), Some("Easy returns"));
        assert_eq!(c1.location_id.as_deref(), Some("berlin-mitte"));
        let ids: Vec<&str> = c1.identities.iter().map(|i| i.value.as_str()).collect();
        assert!(
            ids.contains(&"dora@example.org") && ids.contains(&"crm:c-77"),
            "{ids:?}"
        );
        assert_eq!(find(&all, "c2").nps, Some(6));
    }

    on_both_backends!(
        intercom_csv_reads_both_dialects,
        typeform_json_reads_pages_and_arrays
    );
}
