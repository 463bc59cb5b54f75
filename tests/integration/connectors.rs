//! API connectors against fake vendor servers on 127.0.0.1 that answer like the vendors'
//! documentation (shapes from `../shared/reference/connectors.md`): paging and its end
//! conditions, 429 with `Retry-After`, 500 then recovery, a malformed record, schema
//! drift, and resuming from the stored cursor.

pub mod delighted {
    //! Delighted `GET /v1/survey_responses.json`: a bare array, `per_page` + `page`,
    //! `updated_since` (at or after), `expand[]=person`, Basic auth with the API key as
    //! the user name and an empty password, 429 + `Retry-After` seconds.

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

    const KEY: &str = "dl-s3cret";
    const AUTH: &str = "Basic ZGwtczNjcmV0Og=="; // dl-s3cret: (empty password)
    const T0: i64 = 1_704_200_000;

    #[derive(Clone, Default)]
    pub struct FakeDelighted {
        /// The account's responses, in `created_at` order.
        pub responses: Arc<Mutex<Vec<Value>>>,
        /// Request (0-based) answered with 429 + Retry-After: 1.
        pub throttle_request: Option<usize>,
        /// Request (0-based) answered with 500.
        pub fail_request: Option<usize>,
        /// While set, every request for page 2 gets a 500.
        pub page2_down: Arc<AtomicBool>,
        /// The query of every request that passed the auth check.
        pub requests: Arc<Mutex<Vec<HashMap<String, String>>>>,
    }

    fn secs(v: &Value) -> i64 {
        match v {
            Value::Number(n) => n.as_i64().unwrap(),
            Value::String(s) => s.parse().unwrap(),
            _ => panic!("no time"),
        }
    }

    async fn survey_responses(
        State(s): State<FakeDelighted>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        if header(&headers, "authorization") != Some(AUTH) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"status": 401, "message": "Invalid API key"})),
            )
                .into_response();
        }
        if !user_agent_ok(&headers) {
            return (StatusCode::BAD_REQUEST, "no user agent").into_response();
        }
        let n = {
            let mut r = s.requests.lock().unwrap();
            r.push(q.clone());
            r.len() - 1
        };
        if s.throttle_request == Some(n) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                Json(json!({"status": 429, "message": "Too Many Requests"})),
            )
                .into_response();
        }
        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        if s.fail_request == Some(n) || (page == 2 && s.page2_down.load(Ordering::SeqCst)) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        // What a sync must send.
        assert_eq!(q.get("expand[]").map(String::as_str), Some("person"));
        assert_eq!(q.get("order").map(String::as_str), Some("asc"));
        let per_page: usize = q["per_page"].parse().unwrap();
        assert!((1..=100).contains(&per_page));
        let Some(since) = q.get("updated_since").and_then(|v| v.parse::<i64>().ok()) else {
            return (StatusCode::BAD_REQUEST, "updated_since").into_response();
        };
        let all = s.responses.lock().unwrap().clone();
        let window: Vec<Value> = all
            .into_iter()
            .filter(|r| secs(&r["updated_at"]) >= since)
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        Json(Value::Array(window)).into_response()
    }

    pub async fn start(fake: FakeDelighted) -> String {
        fakes::serve(
            axum::Router::new()
                .route(
                    "/v1/survey_responses.json",
                    axum::routing::get(survey_responses),
                )
                .with_state(fake),
        )
        .await
    }

    /// A response as the documentation shows it (`expand[]=person`).
    fn response(n: i64, updated_at: i64) -> Value {
        json!({
            "id": n.to_string(),
            "person": {
                "id": (5000 + n % 6).to_string(),
                "email": format!("p{}@example.org", n % 6),
                "name": format!("Person {}", n % 6),
                "phone_number": null,
                "created_at": 1_700_000_000,
                "last_sent_at": 1_704_000_000
            },
            "survey_type": "nps",
            "score": n % 11,
            "comment": if n % 2 == 0 { "Support never called back" } else { "Great staff, quick help" },
            "permalink": format!("https://delighted.com/r/abc{n}"),
            "created_at": T0 - 100_000 + n * 60,
            "updated_at": updated_at,
            "person_properties": {"Store": "Berlin-01"},
            "notes": [],
            "tags": ["support"],
            "additional_answers": []
        })
    }

    /// Responses 1..=22 with a damaged one (no id), an NPS answer outside the scale,
    /// drifted shapes, a CSAT and a CES survey; the last two share their second.
    fn dataset() -> Vec<Value> {
        let mut v: Vec<Value> = (1..=22).map(|n| response(n, T0 + n * 10)).collect();
        v[21]["updated_at"] = json!(T0 + 210); // 22 shares 21's second
        // Drift: unknown extra fields.
        v[2]["sentiment_v2"] = json!({"label": "positive"});
        v[2]["thumbs_up"] = json!(true);
        // Drift: optional fields missing.
        for k in ["comment", "permalink", "person_properties", "notes", "tags"] {
            v[3].as_object_mut().unwrap().remove(k);
        }
        // A score outside the NPS scale: quarantined by field.
        v[4]["score"] = json!(11);
        // Drift: numbers as strings.
        v[5]["score"] = json!("9");
        v[5]["updated_at"] = json!((T0 + 60).to_string());
        v[5]["created_at"] = json!((T0 - 100_000 + 360).to_string());
        // Other survey types.
        v[6]["survey_type"] = json!("csat");
        v[6]["score"] = json!(4);
        v[8]["survey_type"] = json!("ces");
        v[8]["score"] = json!(6);
        // No id.
        v[7].as_object_mut().unwrap().remove("id");
        v
    }

    pub fn config_toml(dir: &std::path::Path, base_url: &str, db_url: &str, extra: &str) -> String {
        let key = fakes::secret_file(dir, "delighted_key", KEY);
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
aliases = ["Berlin-01"]
[[connector]]
kind = "delighted"
name = "nps"
base_url = "{base_url}"
api_key_file = "{}"
per_page = 10
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

    /// Three pages and an empty one, a 429 and a 500 on the way, a response without an id
    /// and one outside the NPS scale (quarantined with page, index and field, the rest
    /// kept), drifted shapes read; then a second sync fetches only the new and changed
    /// responses (including a new one at the boundary second), and a third nothing.
    async fn delighted_pages_errors_drift_and_resume(db: TestDb) {
        let fake = FakeDelighted {
            responses: Arc::new(Mutex::new(dataset())),
            throttle_request: Some(1),
            fail_request: Some(3),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &base, "");
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        assert_eq!(report.pages, 4, "{report}");
        assert_eq!(report.fetched, 22);
        assert_eq!(report.inserted, 20);
        assert_eq!(report.quarantined, 2);
        let c = metrics.connector_counters("nps").unwrap();
        assert_eq!((c.rate_limit_waits, c.errors), (1, 2));
        assert!(c.rate_limit_wait_secs >= 1.0);
        {
            let reqs = fake.requests.lock().unwrap();
            let pages: Vec<&str> = reqs.iter().map(|q| q["page"].as_str()).collect();
            assert_eq!(pages, ["1", "2", "2", "3", "3", "4"]);
            assert!(reqs.iter().all(|q| q["updated_since"] == "0"));
        }
        // The mark: the highest second and both ids stored at it.
        let mark = cursor(&db.store.cursor("nps").await.unwrap());
        assert_eq!(mark, json!({"since": T0 + 210, "skip": ["21", "22"]}));

        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 2);
        let by_field = |f: &str| {
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
        assert_eq!(no_id.entry.error.line, Some(8));
        assert!(
            no_id.entry.error.origin.contains("page 1"),
            "{:?}",
            no_id.entry.error
        );
        let nps = by_field("nps");
        assert_eq!(nps.entry.error.line, Some(5));
        assert!(nps.entry.error.raw.contains("\"score\":11"));
        assert!(q.iter().all(|i| i.entry.preset == "delighted-json"));
        // Replay reads the raw response with that preset: the same field fails again.
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
        let after = db.store.quarantine(None).await.unwrap();
        let again = after.iter().find(|i| i.id == nps.id).unwrap();
        assert!(again.entry.error.field.as_deref().unwrap().contains("nps"));

        let stored = db.store.interactions_after(0, 1000).await.unwrap();
        let get = |id: &str| {
            stored
                .iter()
                .find(|s| s.interaction.external_id == id)
                .unwrap_or_else(|| panic!("{id} not stored"))
                .interaction
                .clone()
        };
        assert_eq!(get("6").nps, Some(9)); // the score sent as a string
        assert_eq!(get("6").updated_at_ms, Some((T0 + 60) * 1000));
        let csat = get("7").csat.unwrap();
        assert_eq!(
            (csat.value, csat.scale.as_str(), csat.satisfied),
            (4.0, "1-5", true)
        );
        let ces = get("9").ces.unwrap();
        assert_eq!((ces.value, ces.agrees), (6.0, true));
        assert_eq!(get("3").nps, Some(3)); // extra fields ignored
        assert_eq!(get("4").text, None); // no comment
        assert_eq!(get("1").location_id.as_deref(), Some("berlin-mitte"));
        assert!(
            get("1")
                .identities
                .iter()
                .any(|i| i.value == "delighted_person:5001")
        );
        // Six people, each one customer (email and person id).
        assert_eq!(db.store.counts().await.unwrap().customers, 6);

        // New and changed responses: a new one at the boundary second, a later one, and
        // response 2 edited (a note changes its updated_at).
        {
            let mut r = fake.responses.lock().unwrap();
            r.push(response(23, T0 + 210));
            r.push(response(24, T0 + 500));
            r[1]["updated_at"] = json!(T0 + 400);
            r[1]["comment"] = json!("They called back after all");
        }
        let before = fake.requests.lock().unwrap().len();
        let again = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        {
            let reqs = fake.requests.lock().unwrap();
            assert_eq!(reqs.len() - before, 2, "one page and the empty one");
            assert_eq!(reqs[before]["updated_since"], (T0 + 210).to_string());
            assert_eq!(reqs[before]["page"], "1");
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
        assert_eq!(db.store.counts().await.unwrap().interactions, 22);
        assert_eq!(
            cursor(&db.store.cursor("nps").await.unwrap()),
            json!({"since": T0 + 500, "skip": ["24"]})
        );
        // Nothing new: nothing stored, nothing counted twice.
        let third = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!((third.inserted, third.updated, third.unchanged), (0, 0, 0));
        let fp = db.store.fingerprint().await.unwrap();
        assert_eq!(fp.len(), 22);
    }

    /// A full last page is followed by one more request, whose empty array ends the run;
    /// a run that fails on page 2 keeps page 1 and its cursor, and the next run goes on
    /// at page 2 with the same window.
    async fn delighted_full_last_page_and_resume_after_failure(db: TestDb) {
        let responses: Vec<Value> = (1..=20).map(|n| response(n, T0 + n)).collect();
        let fake = FakeDelighted {
            responses: Arc::new(Mutex::new(responses)),
            ..Default::default()
        };
        fake.page2_down.store(true, Ordering::SeqCst);
        let base = start(fake.clone()).await;
        let config = config(&db, &base, "max_retries = 1\nstart_time = \"2023-12-01\"");
        let since = "1701388800"; // 2023-12-01T00:00:00Z
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 500"), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 10);
        let mid = cursor(&db.store.cursor("nps").await.unwrap());
        assert_eq!(mid["page"], 2);
        assert_eq!(mid["since"].to_string(), since);

        fake.page2_down.store(false, Ordering::SeqCst);
        let before = fake.requests.lock().unwrap().len();
        let report = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        let reqs = fake.requests.lock().unwrap().clone();
        let tail: Vec<(&str, &str)> = reqs[before..]
            .iter()
            .map(|q| (q["page"].as_str(), q["updated_since"].as_str()))
            .collect();
        assert_eq!(tail, [("2", since), ("3", since)]);
        assert_eq!((report.inserted, report.pages), (10, 2));
        assert_eq!(db.store.counts().await.unwrap().interactions, 20);
        assert_eq!(
            cursor(&db.store.cursor("nps").await.unwrap()),
            json!({"since": T0 + 20, "skip": ["20"]})
        );
    }

    /// A refused key is an error that names the fix and never the key.
    async fn delighted_refused_key_is_named(db: TestDb) {
        let base = start(FakeDelighted::default()).await;
        let text = config_toml(db.dir.path(), &base, db.url.expose(), "");
        fakes::secret_file(db.dir.path(), "delighted_key", "wrong-key-value");
        let config = Config::from_toml(&text, "test", &Overrides::default()).unwrap();
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 401") && err.contains("fix:"), "{err}");
        assert!(!err.contains("wrong-key-value"), "{err}");
        assert_eq!(db.store.cursor("nps").await.unwrap(), None);
    }

    on_both_backends!(
        delighted_pages_errors_drift_and_resume,
        delighted_full_last_page_and_resume_after_failure,
        delighted_refused_key_is_named
    );
}
