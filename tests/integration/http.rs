//! Issue 8: the HTTP API, started in-process on 127.0.0.1:0 over the bundled samples, on
//! SQLite and PostgreSQL, driven with reqwest. Every route of the OpenAPI document is
//! called without a token, with a wrong one, with a too-low scope and with the right one.

use crate::common::TestDb;
use crate::on_both_backends;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tideline::analyze::analyze;
use tideline::config::{ApiToken, Config, Overrides, Scope, Secret};
use tideline::ingest::{self, ImportOptions};
use tideline::metrics::Metrics;
use tideline::outputs::http::{self, ApiState, ROUTES, Tokens};
use tideline::pipeline::detect::Settings;

pub(crate) const READ: &str = "read-token-for-tests-0123456789";
pub(crate) const ADMIN: &str = "admin-token-for-tests-0123456789";
const WRONG: &str = "read-token-for-tests-012345678X";

/// The API served in-process (also the dashboard's tests use it).
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) state: ApiState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), http::HttpError>>,
    pub(crate) db: TestDb,
}

impl Api {
    /// Imports the samples, runs one analysis pass, and serves the API on a free port.
    pub(crate) async fn start(db: TestDb) -> Api {
        let config = crate::common::demo_config();
        let analyzer = crate::common::analyzer(&config);
        let samples = crate::common::samples();
        for (file, preset, mapping, source) in tideline::demo::IMPORTS {
            let opts = ImportOptions {
                path: samples.join(file),
                preset: *preset,
                mapping: mapping.map(|m| samples.join(m)),
                source: Some(source.to_string()),
                location: None,
                timezone: None,
            };
            ingest::import_file(db.store.as_ref(), analyzer.clone(), &config, &opts)
                .await
                .unwrap();
        }
        analyze(db.store.as_ref(), &Settings::default(), 0)
            .await
            .unwrap();
        Api::serve(db, &config).await
    }

    pub(crate) async fn serve(db: TestDb, config: &Config) -> Api {
        let mut state = ApiState::new(db.store.clone(), Arc::new(Metrics::new()), config);
        state.tokens = Arc::new(Tokens::new(vec![
            ApiToken::new("reader", Scope::Read, &Secret::new(READ)),
            ApiToken::new("ops", Scope::Admin, &Secret::new(ADMIN)),
        ]));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(http::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Api {
            base,
            client: reqwest::Client::new(),
            state,
            stop: Some(tx),
            task,
            db,
        }
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let r = self.raw(method, path, token).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn raw(&self, method: &str, path: &str, token: Option<&str>) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "post" => self.client.post(url),
            _ => self.client.get(url),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// `GET` with the read token, expecting 200.
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("get", path, Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// Every item of a paged list, walking `next_cursor`.
    async fn walk(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_string(),
            };
            let page = self.get(&url).await;
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
        panic!("{path}: the cursor never ends");
    }

    pub(crate) async fn stop(mut self) -> TestDb {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("graceful shutdown within 10 s")
            .unwrap()
            .unwrap();
        assert!(!self.state.ready.load(Ordering::SeqCst));
        self.db
    }
}

/// Which interactions a filter should return.
type Predicate = Box<dyn Fn(&Value) -> bool>;

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

/// The acceptance test: every route in the OpenAPI document answers 401 without a token
/// and with a wrong one, 403 to a read token on admin routes, and success with the right
/// token; the health checks need none. Path parameters are real ids.
async fn every_documented_route_checks_its_token(db: TestDb) {
    let api = Api::start(db).await;
    let doc = api.get("/openapi.json").await;
    let customer = api.get("/api/v1/customers?limit=1").await["items"][0]["customer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let changes = api.get("/api/v1/changes?limit=1").await;
    let change = changes["items"][0]["id"]
        .as_i64()
        .expect("the samples give at least one change");
    let quarantined = api.get("/api/v1/quarantine?limit=1").await["items"][0]["id"]
        .as_i64()
        .expect("the samples have malformed rows");

    let mut called = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = if path.starts_with("/api/v1/customers/") {
                customer.clone()
            } else if path.starts_with("/api/v1/changes/") {
                change.to_string()
            } else {
                quarantined.to_string()
            };
            let mut url = path.replace("{id}", &id);
            let required: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for (i, name) in required.iter().enumerate() {
                assert_eq!(
                    *name, "identity",
                    "a required parameter this test cannot fill"
                );
                url.push(if i == 0 { '?' } else { '&' });
                url.push_str(&format!("{name}={customer}"));
            }
            let what = format!("{method} {url}");
            called += 1;
            let public = op["security"] == serde_json::json!([]);
            if public {
                let (status, body) = api.call(method, &url, None).await;
                assert_eq!(status, StatusCode::OK, "{what}: {body}");
                continue;
            }
            let r = api.raw(method, &url, None).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
            let challenge = r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
            let body: Value = r.json().await.unwrap();
            assert_error(
                StatusCode::UNAUTHORIZED,
                &body,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &what,
            );

            let (status, body) = api.call(method, &url, Some(WRONG)).await;
            assert_error(
                status,
                &body,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &what,
            );

            let admin = op["x-required-scope"] == "admin";
            let (status, body) = api.call(method, &url, Some(READ)).await;
            if admin {
                assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden", &what);
                let (status, body) = api.call(method, &url, Some(ADMIN)).await;
                assert!(status.is_success(), "{what} as admin: {status} {body}");
            } else {
                assert!(status.is_success(), "{what}: {status} {body}");
                // An admin token may do what a read token may.
                let (status, _) = api.call(method, &url, Some(ADMIN)).await;
                assert!(status.is_success(), "{what} as admin: {status}");
            }
        }
    }
    assert_eq!(called, ROUTES.len(), "the document lists every route once");

    // Security headers on answers of every kind.
    for (path, token) in [
        ("/api/v1/customers", Some(READ)),
        ("/api/v1/customers", None),
        ("/healthz", None),
        ("/nowhere", Some(READ)),
    ] {
        let r = api.raw("get", path, token).await;
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(h.contains_key("content-security-policy"), "{path}");
    }

    // /metrics: the Prometheus text format, responses counted by route template.
    let r = api.raw("get", "/metrics", Some(READ)).await;
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "tideline_http_requests_total{route=\"/api/v1/customers/{id}/timeline\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"/api/v1/customers\",status=\"401\""),
        "{text}"
    );
    assert!(!text.contains(&customer), "a raw id became a label value");
    assert!(text.contains("tideline_quarantine_open "), "{text}");
    api.stop().await;
}

/// Walking `next_cursor` returns every interaction exactly once, and each filter returns
/// exactly the matching ones.
async fn pages_and_filters_return_each_interaction_once(db: TestDb) {
    let api = Api::start(db).await;
    let total = api.db.store.counts().await.unwrap().interactions as usize;
    let all = api.walk("/api/v1/interactions?limit=7").await;
    let ids: Vec<i64> = all.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), total, "every interaction");
    assert_eq!(unique.len(), total, "exactly once");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "by id");
    // The default page and the largest page agree with the walk.
    let big = api.walk("/api/v1/interactions?limit=500").await;
    assert_eq!(big.len(), total);

    let ids_where = |f: &dyn Fn(&Value) -> bool| -> BTreeSet<i64> {
        all.iter()
            .filter(|i| f(i))
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let walked = |items: Vec<Value>| -> BTreeSet<i64> {
        items.iter().map(|i| i["id"].as_i64().unwrap()).collect()
    };
    let location = all
        .iter()
        .find_map(|i| i["location"].as_str())
        .unwrap()
        .to_string();
    let cases: Vec<(String, Predicate)> = vec![
        (
            "source=zendesk".into(),
            Box::new(|i: &Value| i["source"] == "zendesk"),
        ),
        (format!("location={location}"), {
            let l = location.clone();
            Box::new(move |i: &Value| i["location"] == l.as_str())
        }),
        (
            "language=de".into(),
            Box::new(|i: &Value| i["language"] == "de"),
        ),
        (
            "kind=review".into(),
            Box::new(|i: &Value| i["kind"] == "review"),
        ),
        (
            "sentiment=negative".into(),
            Box::new(|i: &Value| i["sentiment_label"] == "negative"),
        ),
        (
            "sentiment_min=-0.2&sentiment_max=0.3".into(),
            Box::new(|i: &Value| {
                i["sentiment"]
                    .as_f64()
                    .is_some_and(|s| (-0.2..=0.3).contains(&s))
            }),
        ),
        (
            "from=2026-01-15&to=2026-02-10".into(),
            Box::new(|i: &Value| {
                let t = i["occurred_at"].as_str().unwrap();
                ("2026-01-15".."2026-02-11").contains(&t)
            }),
        ),
        (
            "source=reviews&sentiment=positive".into(),
            Box::new(|i: &Value| i["source"] == "reviews" && i["sentiment_label"] == "positive"),
        ),
    ];
    let mut nonempty = 0;
    for (query, pred) in &cases {
        let expected = ids_where(pred.as_ref());
        let got = walked(
            api.walk(&format!("/api/v1/interactions?limit=5&{query}"))
                .await,
        );
        assert_eq!(got, expected, "{query}");
        nonempty += usize::from(!expected.is_empty());
    }
    assert!(nonempty >= 6, "the samples exercise the filters");

    // Customers: every one once, by id.
    let customers = api.walk("/api/v1/customers?limit=3").await;
    let cids: Vec<&str> = customers
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        cids.len() as i64,
        api.db.store.counts().await.unwrap().customers
    );
    assert!(cids.windows(2).all(|w| w[0] < w[1]));
    for (filter, field, value) in [
        ("source=delighted", "source", "delighted"),
        (
            &*format!("location={location}"),
            "location",
            location.as_str(),
        ),
    ] {
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|i| i[field] == value)
            .filter_map(|i| i["customer_id"].as_str().map(str::to_string))
            .collect();
        let got: BTreeSet<String> = api
            .walk(&format!("/api/v1/customers?limit=2&{filter}"))
            .await
            .iter()
            .map(|c| c["customer_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, expected, "{filter}");
        assert!(!expected.is_empty(), "{filter}");
    }
    // A customer's interactions at one location (the customer's index drives the query).
    let someone = all
        .iter()
        .find(|i| i["customer_id"].is_string() && i["location"].is_string())
        .unwrap();
    let (cid, loc) = (
        someone["customer_id"].as_str().unwrap(),
        someone["location"].as_str().unwrap(),
    );
    let got = walked(
        api.walk(&format!(
            "/api/v1/interactions?customer={cid}&location={loc}&limit=1"
        ))
        .await,
    );
    assert_eq!(
        got,
        ids_where(&|i: &Value| i["customer_id"] == cid && i["location"] == loc)
    );
    let active = api.get("/api/v1/customers?order=activity&limit=5").await;
    assert!(active["next_cursor"].is_null());
    assert_eq!(active["items"].as_array().unwrap().len(), 5);

    // Quarantine and changes walk too, with their filters.
    let open = api.walk("/api/v1/quarantine?status=open&limit=1").await;
    assert!(!open.is_empty() && open.iter().all(|q| q["status"] == "open"));
    let changes = api.walk("/api/v1/changes?limit=2").await;
    assert!(!changes.is_empty());
    let ids: Vec<i64> = changes.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest stored first");
    let signal = changes[0]["signal"].as_str().unwrap().to_string();
    let same = api
        .walk(&format!("/api/v1/changes?limit=2&signal={signal}"))
        .await;
    assert_eq!(
        same.len(),
        changes
            .iter()
            .filter(|c| c["signal"] == signal.as_str())
            .count()
    );
    let first = &changes[0];
    let one = api.get(&format!("/api/v1/changes/{}", first["id"])).await;
    assert_eq!(&one, first);
    assert!(one["evidence"]["interactions"].is_array());
    if first["entity"] == "location" {
        let of = api
            .walk(&format!(
                "/api/v1/changes?location={}",
                first["entity_id"].as_str().unwrap()
            ))
            .await;
        assert!(of.iter().all(|c| c["entity_id"] == first["entity_id"]));
    }

    // Bad parameters: 400, the stable code, the parameter named.
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("limit=ten", "limit"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-03-02&to=2026-03-01", "to"),
        ("cursor=not-a-cursor", "cursor"),
        ("sentiment=sad", "sentiment"),
        ("sentiment_min=2", "sentiment_min"),
        ("kind=tweet", "kind"),
        ("locaton=berlin", "locaton"),
        ("source=", "source"),
    ] {
        let (status, body) = api
            .call("get", &format!("/api/v1/interactions?{query}"), Some(READ))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", query);
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("`{name}`")), "{query}: {msg}");
    }
    // A cursor of another list is refused.
    let page = api.get("/api/v1/customers?limit=1").await;
    let c = page["next_cursor"].as_str().unwrap();
    let (status, body) = api
        .call(
            "get",
            &format!("/api/v1/interactions?cursor={c}"),
            Some(READ),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "foreign cursor",
    );
    api.stop().await;
}

/// Customers, timelines and the lookup give the shapes of `customers show` and
/// `timeline --format json`; unknown ones are 404 without internals.
async fn customers_timelines_and_lookup(db: TestDb) {
    let api = Api::start(db).await;
    let busiest = api.get("/api/v1/customers?order=activity&limit=1").await["items"][0].clone();
    let id = busiest["customer_id"].as_str().unwrap();
    let view = api.get(&format!("/api/v1/customers/{id}")).await;
    assert_eq!(view["customer_id"], id);
    let email = view["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i.as_str().and_then(|k| k.strip_prefix("email:")))
        .expect("the busiest customer has an email")
        .to_string();
    let found = api
        .get(&format!(
            "/api/v1/customers/lookup?identity={}",
            email.to_uppercase().replace('+', "%2B")
        ))
        .await;
    assert_eq!(found["customer_id"], id);

    let t = api.get(&format!("/api/v1/customers/{id}/timeline")).await;
    let cli = tideline::outputs::timeline::load(api.db.store.as_ref(), id, &[])
        .await
        .unwrap();
    assert_eq!(t, serde_json::to_value(&cli).unwrap(), "the CLI's JSON");
    assert_eq!(
        t["interactions"].as_array().unwrap().len() as i64,
        busiest["interactions"].as_i64().unwrap()
    );
    assert!(t["changes"].is_array());

    let locations = api.get("/api/v1/metrics/locations").await;
    assert!(locations["items"].as_array().unwrap().len() >= 2);
    assert!(locations["items"][0]["stars"]["n"].is_i64());
    let sources = api.get("/api/v1/sources").await;
    let names: Vec<&str> = sources["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["delighted", "reviews", "zendesk"]);
    for s in sources["items"].as_array().unwrap() {
        assert_eq!(s["last_run"]["status"], "done", "{s}");
        assert!(s["last_success_ms"].is_i64() && s["interactions"].as_i64().unwrap() > 0);
    }

    for path in [
        "/api/v1/customers/cus_doesnotexist",
        "/api/v1/customers/cus_doesnotexist/timeline",
        "/api/v1/customers/lookup?identity=nobody%40example.org",
        "/api/v1/changes/999999999",
        "/nowhere",
    ] {
        let (status, body) = api.call("get", path, Some(READ)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", path);
        assert_no_internals(&body, path);
    }
    let (status, body) = api.call("get", "/api/v1/changes/abc", Some(READ)).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "bad id",
    );
    let (status, body) = api
        .call("post", "/api/v1/quarantine/999999999/dismiss", Some(ADMIN))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "dismiss");
    let (status, body) = api.call("post", "/api/v1/customers", Some(READ)).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "post",
    );

    // Dismiss and reopen (admin) move a row between the status filters.
    let q = api.get("/api/v1/quarantine?status=open&limit=1").await["items"][0]["id"]
        .as_i64()
        .unwrap();
    let (status, _) = api
        .call(
            "post",
            &format!("/api/v1/quarantine/{q}/dismiss"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let dismissed = api.walk("/api/v1/quarantine?status=dismissed").await;
    assert!(dismissed.iter().any(|d| d["id"] == q));
    api.call(
        "post",
        &format!("/api/v1/quarantine/{q}/reopen"),
        Some(ADMIN),
    )
    .await;
    assert!(
        api.walk("/api/v1/quarantine?status=dismissed")
            .await
            .is_empty()
    );
    api.stop().await;
}

fn assert_no_internals(body: &Value, what: &str) {
    let text = body.to_string().to_lowercase();
    for needle in [
        "select ",
        "from changes",
        "from customers",
        "where ",
        "sqlite",
        "postgres",
        "sqlx",
        "no such table",
        "relation \"",
        "database error",
        "/tmp",
        ".db",
        "panicked",
    ] {
        assert!(!text.contains(needle), "{what}: `{needle}` in {text}");
    }
}

/// A store failure is a 500 with the stable code and a generic message: no SQL, no table,
/// no path. Readiness follows the flag and the store.
async fn store_failures_do_not_leak(db: TestDb) {
    let config = crate::common::demo_config();
    let url = db.url.clone();
    let api = Api::serve(db, &config).await;
    let (status, _) = api.call("get", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    api.state.ready.store(false, Ordering::SeqCst);
    let (status, body) = api.call("get", "/readyz", None).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "readyz",
    );
    api.state.ready.store(true, Ordering::SeqCst);

    if url.expose().starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url.expose()).await.unwrap();
        sqlx::query("DROP TABLE changes")
            .execute(&pool)
            .await
            .unwrap();
    } else {
        let pool = sqlx::PgPool::connect(url.expose()).await.unwrap();
        sqlx::query("DROP TABLE changes")
            .execute(&pool)
            .await
            .unwrap();
    }
    for path in ["/api/v1/changes", "/api/v1/changes/1"] {
        let (status, body) = api.call("get", path, Some(READ)).await;
        assert_error(
            status,
            &body,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            path,
        );
        assert_no_internals(&body, path);
    }
    api.stop().await;
}

on_both_backends!(
    every_documented_route_checks_its_token,
    pages_and_filters_return_each_interaction_once,
    customers_timelines_and_lookup,
    store_failures_do_not_leak,
);

/// Collects every `$ref` in a JSON value.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_openapi_document_is_valid_and_lists_every_route() {
    let doc = http::openapi::document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    let mut operation_ids = HashSet::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        for (method, op) in item.as_object().unwrap() {
            assert!(["get", "post"].contains(&method.as_str()), "{method}");
            documented.insert((method.clone(), path.clone()));
            assert!(
                operation_ids.insert(op["operationId"].as_str().unwrap().to_string()),
                "operationId repeated"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{method} {path}");
            for (code, r) in responses {
                assert!(r["description"].is_string(), "{method} {path} {code}");
            }
            // Path parameters and the template agree.
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .inspect(|p| assert_eq!(p["required"], true))
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            let in_template: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_string)
                .collect();
            assert_eq!(declared, in_template, "{method} {path}");
            for p in op["parameters"].as_array().unwrap() {
                assert!(
                    p["schema"].is_object() && p["description"].is_string(),
                    "{p}"
                );
            }
        }
    }
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
        .collect();
    assert_eq!(
        documented, routes,
        "the document and the router's table differ"
    );
    for must in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/api/v1/customers/{id}/timeline",
        "/api/v1/interactions",
        "/api/v1/changes",
        "/api/v1/sources",
        "/api/v1/quarantine",
        "/api/v1/metrics/locations",
    ] {
        assert!(paths.contains_key(must), "{must}");
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20);
    for r in all {
        let pointer = r.strip_prefix('#').expect("local refs only");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

#[test]
fn check_bind_refuses_a_public_address_without_tokens() {
    let parse = |text: &str| {
        let mut c = Config::from_toml("", "t", &Overrides::default())
            .unwrap()
            .http;
        c.bind = text.parse().unwrap();
        c
    };
    let public = parse("0.0.0.0:8080");
    let err = http::check_bind(&public).unwrap_err().to_string();
    assert!(
        err.contains("0.0.0.0:8080") && err.contains("fix:"),
        "{err}"
    );
    assert!(http::check_bind(&parse("127.0.0.1:8080")).is_ok());
    assert!(http::check_bind(&parse("[::1]:8080")).is_ok());
    let mut with_token = public.clone();
    with_token.tokens = vec![ApiToken::new("t", Scope::Read, &Secret::new(READ))];
    assert!(http::check_bind(&with_token).is_ok());
    // The example config documents [http] and parses with its defaults.
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml"),
    )
    .unwrap();
    let c = Config::from_toml(&example, "example", &Overrides::default()).unwrap();
    assert_eq!(c.http.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.http.page_size_max, 500);
    assert!(c.http.enabled);
}
