//! The Google Business Profile connector against a fake on 127.0.0.1 shaped like the v4
//! reviews API: OAuth2 refresh-token exchange (form body checked), a 401 on an expired
//! access token, the Business Information location list, newest-first pages with
//! `nextPageToken`, 429 `RESOURCE_EXHAUSTED` without `Retry-After`, a review without a
//! name, Google's translation wrapper, owner replies, and an edit on the next run.

use crate::common::TestDb;
use crate::{fakes, on_both_backends};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get, routing::post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tideline::config::{Config, Overrides};
use tideline::metrics::Metrics;
use tideline::model::InteractionKind;

#[derive(Clone, Default)]
struct Fake {
    /// Reviews per location id, newest first.
    reviews: Arc<Mutex<HashMap<String, Vec<Value>>>>,
    tokens_issued: Arc<AtomicUsize>,
    /// The access token the API accepts now.
    valid: Arc<Mutex<String>>,
    /// Review requests so far (to answer one with 429).
    review_requests: Arc<AtomicUsize>,
    throttle_request: Option<usize>,
    log: Arc<Mutex<Vec<String>>>,
    /// A pause before each reviews page (to kill a sync mid-way).
    delay: std::time::Duration,
    /// Review request index -> trouble: `500`, `html502` (a proxy's HTML page),
    /// `html200` (HTML where JSON was expected), `retry1` (429 with `Retry-After: 1`).
    troubles: Arc<Mutex<HashMap<usize, &'static str>>>,
    /// When each review request arrived.
    times: Arc<Mutex<Vec<std::time::Instant>>>,
}

async fn token(State(f): State<Fake>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> =
        reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    assert!(fakes::user_agent_ok(&headers));
    assert_eq!(
        fakes::header(&headers, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let ok = form.get("grant_type").map(String::as_str) == Some("refresh_token")
        && form.get("client_id").map(String::as_str) == Some("cid.apps.googleusercontent.com")
        && form.get("client_secret").map(String::as_str) == Some("c-s3cret")
        && form.get("refresh_token").map(String::as_str) == Some("1//r-s3cret");
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Bad Request"})),
        )
            .into_response();
    }
    let n = f.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let t = format!("ya29.token-{n}");
    *f.valid.lock().unwrap() = t.clone();
    Json(json!({"access_token": t, "expires_in": 3599, "scope": "https://www.googleapis.com/auth/business.manage", "token_type": "Bearer"})).into_response()
}

fn unauthorized(f: &Fake, headers: &HeaderMap) -> Option<Response> {
    let want = format!("Bearer {}", f.valid.lock().unwrap());
    if fakes::header(headers, "authorization") != Some(want.as_str()) {
        return Some((StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}))).into_response());
    }
    assert!(fakes::user_agent_ok(headers));
    None
}

async fn locations(
    State(f): State<Fake>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = unauthorized(&f, &headers) {
        return r;
    }
    assert_eq!(q.get("readMask").map(String::as_str), Some("name,title"));
    match q.get("pageToken").map(String::as_str) {
        None => Json(json!({"locations": [{"name": "locations/7001", "title": "Burger Haus Mitte"}], "nextPageToken": "L2"})).into_response(),
        Some("L2") => Json(json!({"locations": [{"name": "locations/9001", "title": "Burger Haus Kreuzberg"}]})).into_response(),
        Some(other) => panic!("unknown page token {other}"),
    }
}

async fn reviews(
    State(f): State<Fake>,
    headers: HeaderMap,
    Path((account, location)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = unauthorized(&f, &headers) {
        return r;
    }
    tokio::time::sleep(f.delay).await;
    let n = f.review_requests.fetch_add(1, Ordering::SeqCst);
    f.log.lock().unwrap().push(format!(
        "{location} {}",
        q.get("pageToken").cloned().unwrap_or_default()
    ));
    f.times.lock().unwrap().push(std::time::Instant::now());
    let html = "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Bad Gateway</h1></body></html>";
    match f.troubles.lock().unwrap().get(&n).copied() {
        Some("500") => return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}))).into_response(),
        Some("html502") => return (StatusCode::BAD_GATEWAY, [("content-type", "text/html; charset=UTF-8")], html).into_response(),
        Some("html200") => return (StatusCode::OK, [("content-type", "text/html; charset=UTF-8")], html).into_response(),
        Some("retry1") => return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], Json(json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}))).into_response(),
        _ => {}
    }
    if f.throttle_request == Some(n) {
        return (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": {"code": 429, "message": "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'", "status": "RESOURCE_EXHAUSTED"}}))).into_response();
    }
    assert_eq!(account, "101");
    assert_eq!(
        q.get("orderBy").map(String::as_str),
        Some("updateTime desc")
    );
    let size: usize = q["pageSize"].parse().unwrap();
    assert!(size <= 50);
    let all = f
        .reviews
        .lock()
        .unwrap()
        .get(&location)
        .cloned()
        .unwrap_or_default();
    let start: usize = q.get("pageToken").map(|t| t.parse().unwrap()).unwrap_or(0);
    let end = (start + size).min(all.len());
    let avg = 3.5;
    // `nextGenSummary`: a field the documentation does not have (yet).
    let mut body = json!({"averageRating": avg, "totalReviewCount": all.len(), "nextGenSummary": {"topics": ["fries"]}});
    if !all.is_empty() {
        body["reviews"] = json!(all[start..end]);
    }
    if end < all.len() {
        body["nextPageToken"] = json!(end.to_string());
    }
    Json(body).into_response()
}

fn review(loc: &str, id: &str, stars: &str, comment: Option<&str>, updated: &str) -> Value {
    let mut r = json!({
        "name": format!("accounts/101/locations/{loc}/reviews/{id}"), "reviewId": id,
        "reviewer": {"displayName": format!("Reviewer {id}"), "profilePhotoUrl": "https://lh3.googleusercontent.com/a/x", "isAnonymous": false},
        "starRating": stars, "createTime": "2026-01-10T10:00:00.123456Z", "updateTime": updated
    });
    if let Some(c) = comment {
        r["comment"] = json!(c);
    }
    r
}

async fn start(fake: Fake) -> String {
    let app = Router::new()
        .route("/token", post(token))
        .route("/v1/accounts/101/locations", get(locations))
        .route(
            "/v4/accounts/{account}/locations/{location}/reviews",
            get(reviews),
        )
        .with_state(fake);
    fakes::serve(app).await
}

fn config(db: &TestDb, base: &str) -> Config {
    Config::from_toml(&config_text(db, base), "test", &Overrides::default()).unwrap()
}

fn config_text(db: &TestDb, base: &str) -> String {
    let dir = db.dir.path();
    let secret = fakes::secret_file(dir, "google_client_secret", "c-s3cret");
    let refresh = fakes::secret_file(dir, "google_refresh", "1//r-s3cret");
    format!(
        r#"
[storage]
database_url = "{}"
[pipeline]
sentiment_adapt = false
[[location]]
id = "burger-mitte"
timezone = "Europe/Berlin"
country = "DE"
aliases = ["Burger Haus Mitte"]
[[location]]
id = "burger-kreuzberg"
timezone = "Europe/Berlin"
country = "DE"
aliases = ["9001"]
[[connector]]
kind = "google"
name = "google"
account = "accounts/101"
client_id = "cid.apps.googleusercontent.com"
client_secret_file = "{}"
refresh_token_file = "{}"
base_url = "{base}"
info_base_url = "{base}"
token_url = "{base}/token"
per_page = 2
max_wait_secs = 5
"#,
        db.url.expose(),
        secret.display(),
        refresh.display()
    )
}

async fn google_reviews_newest_first_with_marks_replies_and_edits(db: TestDb) {
    let fake = Fake {
        throttle_request: Some(1),
        ..Default::default()
    };
    {
        let mut r = fake.reviews.lock().unwrap();
        let mut with_reply = review(
            "7001",
            "A5",
            "TWO",
            Some(
                "(Translated by Google) Cold fries again.\n\n(Original)\nSchon wieder kalte Pommes.",
            ),
            "2026-03-05T10:00:00Z",
        );
        with_reply["reviewReply"] =
            json!({"comment": "Das tut uns leid!", "updateTime": "2026-03-05T12:00:00Z"});
        r.insert("7001".into(), vec![
            with_reply,
            review("7001", "A4", "FIVE", None, "2026-03-04T10:00:00.5Z"),
            json!({"reviewer": {"displayName": "x"}, "starRating": "ONE", "updateTime": "2026-03-03T10:00:00Z"}),
            review("7001", "A2", "FOUR", Some("Gut und schnell."), "2026-03-02T10:00:00Z"),
            review("7001", "A1", "THREE", Some("Okay."), "2026-03-01T10:00:00Z"),
        ]);
        r.insert(
            "9001".into(),
            vec![review(
                "9001",
                "B1",
                "ONE",
                Some("Nie wieder, unfreundlich."),
                "2026-03-06T09:00:00Z",
            )],
        );
    }
    let base = start(fake.clone()).await;
    let config = config(&db, &base);
    let metrics = Arc::new(Metrics::new());
    let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
    // 5 reviews and 1 reply stored, 1 review without a name quarantined.
    assert_eq!((report.inserted, report.quarantined), (6, 1), "{report}");
    let c = metrics.connector_counters("google").unwrap();
    assert_eq!(c.rate_limit_waits, 1, "the 429 was waited out");

    let stored = db.store.interactions_after(0, 100).await.unwrap();
    let get = |id: &str| {
        stored
            .iter()
            .map(|s| &s.interaction)
            .find(|i| i.external_id == id)
            .unwrap_or_else(|| panic!("{id}: {stored:?}"))
            .clone()
    };
    let a5 = get("locations/7001/reviews/A5");
    assert_eq!(a5.kind, InteractionKind::Review);
    assert_eq!(a5.stars, Some(2.0));
    assert_eq!(a5.text.as_deref(), Some("Schon wieder kalte Pommes."));
    assert_eq!(a5.location_id.as_deref(), Some("burger-mitte"));
    let reply = get("locations/7001/reviews/A5#reply");
    assert_eq!(reply.kind, InteractionKind::Reply);
    assert_eq!(
        get("locations/9001/reviews/B1").location_id.as_deref(),
        Some("burger-kreuzberg")
    );
    assert_eq!(get("locations/7001/reviews/A4").text, None);

    let cursor: Value =
        serde_json::from_str(&db.store.cursor("google").await.unwrap().unwrap()).unwrap();
    assert_eq!(
        cursor["marks"]["accounts/101/locations/7001"],
        "2026-03-05T10:00:00Z"
    );
    assert_eq!(
        cursor["marks"]["accounts/101/locations/9001"],
        "2026-03-06T09:00:00Z"
    );
    assert!(cursor.get("run").is_none(), "{cursor}");

    // The access token expires: the API answers 401 once and a new token is fetched.
    *fake.valid.lock().unwrap() = "ya29.rotated".into();
    let issued = fake.tokens_issued.load(Ordering::SeqCst);
    {
        let mut r = fake.reviews.lock().unwrap();
        let loc = r.get_mut("7001").unwrap();
        // A2 edited (it moves to the top), and a new review.
        let mut edited = review(
            "7001",
            "A2",
            "ONE",
            Some("Beim zweiten Mal: eiskalt und unfreundlich."),
            "2026-03-08T10:00:00Z",
        );
        edited["createTime"] = json!("2026-03-02T10:00:00Z");
        loc.retain(|x| x["reviewId"] != "A2");
        loc.insert(
            0,
            review("7001", "A6", "FIVE", Some("Super!"), "2026-03-07T10:00:00Z"),
        );
        loc.insert(0, edited);
    }
    fake.log.lock().unwrap().clear();
    let again = fakes::sync(&db, &config, metrics).await.unwrap();
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), issued + 1);
    assert_eq!((again.inserted, again.updated), (1, 1), "{again}");
    // One page of 7001 reached the mark; 9001's first page holds only its mark.
    assert_eq!(
        *fake.log.lock().unwrap(),
        vec![
            "7001 ".to_string(),
            "7001 2".to_string(),
            "9001 ".to_string()
        ]
    );
    let a2 = db
        .store
        .interactions_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.interaction)
        .find(|i| i.external_id == "locations/7001/reviews/A2")
        .unwrap();
    assert_eq!(a2.stars, Some(1.0));
}

/// `tideline sync google` killed with SIGKILL ten times in the middle of its newest-first
/// walk, while new reviews arrive and one is edited between kills: after a last run to
/// the end, every review is stored once, the edit wins, and nothing is missing.
async fn google_sigkill_mid_sync_leaves_no_gap_and_no_duplicate(db: TestDb) {
    let fake = Fake {
        delay: std::time::Duration::from_millis(15),
        ..Default::default()
    };
    // Google stamps `updateTime` when a review is written: what arrives later is newer.
    let stamp = |day: u32, n: usize| format!("2026-03-{day:02}T{:02}:{:02}:00Z", n / 60, n % 60);
    {
        let mut r = fake.reviews.lock().unwrap();
        for (loc, prefix) in [("7001", "M"), ("9001", "K")] {
            let list = (0..60)
                .rev()
                .map(|n| {
                    review(
                        loc,
                        &format!("{prefix}{n}"),
                        ["ONE", "THREE", "FIVE"][n % 3],
                        Some(&format!("Besuch {n}: gut.")),
                        &stamp(1, n),
                    )
                })
                .collect();
            r.insert(loc.to_string(), list);
        }
    }
    let base = start(fake.clone()).await;
    let cfg = db.dir.path().join("tideline.toml");
    std::fs::write(&cfg, config_text(&db, &base)).unwrap();
    let rounds = 10;
    fakes::kill_mid_sync(&cfg, "google", &fake.review_requests, rounds, |round| {
        let mut r = fake.reviews.lock().unwrap();
        let loc = r
            .get_mut(if round % 2 == 0 { "7001" } else { "9001" })
            .unwrap();
        let prefix = if round % 2 == 0 { "M" } else { "K" };
        let n = round as usize;
        loc.insert(
            0,
            review(
                if round % 2 == 0 { "7001" } else { "9001" },
                &format!("{prefix}new{n}"),
                "FOUR",
                Some("Neu."),
                &stamp(2, n * 2),
            ),
        );
        if round == 4 {
            // M10 is edited: it moves to the top with a newer updateTime.
            let l = r.get_mut("7001").unwrap();
            l.retain(|x| x["reviewId"] != "M10");
            l.insert(
                0,
                review(
                    "7001",
                    "M10",
                    "ONE",
                    Some("Nachtrag: kalt."),
                    &stamp(2, n * 2 + 1),
                ),
            );
        }
    })
    .await;
    let expected = 120 + rounds as usize;
    let stored: Vec<_> = db
        .store
        .interactions_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.interaction)
        .collect();
    let mut ids: Vec<&str> = stored.iter().map(|i| i.external_id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "no duplicate");
    assert_eq!(ids.len(), expected, "no gap");
    for (loc, prefix) in [("7001", "M"), ("9001", "K")] {
        for n in 0..60 {
            let id = format!("locations/{loc}/reviews/{prefix}{n}");
            assert!(ids.binary_search(&id.as_str()).is_ok(), "{id} missing");
        }
    }
    let m10 = stored
        .iter()
        .find(|i| i.external_id == "locations/7001/reviews/M10")
        .unwrap();
    assert_eq!(m10.stars, Some(1.0), "the edit wins");
}

/// The error matrix: a 500 that recovers, a 429 with `Retry-After: 1` (waited at least a
/// second), a proxy's HTML 502 that recovers, an HTML page with status 200 where JSON was
/// expected (the run fails naming the connector and the request, the next run resumes
/// from the stored page), unknown fields kept in the raw payload, a malformed review
/// quarantined, a location without reviews (an empty page). Then a run over unchanged
/// sources stores nothing.
async fn google_error_matrix_resumes_without_loss(db: TestDb) {
    let fake = Fake::default();
    {
        let mut r = fake.reviews.lock().unwrap();
        let mut list: Vec<Value> = (1..=7)
            .rev()
            .map(|n| {
                let mut v = review(
                    "7001",
                    &format!("E{n}"),
                    "FOUR",
                    Some("Sehr lecker."),
                    &format!("2026-04-0{n}T10:00:00Z"),
                );
                v["reviewerLocale"] = json!("de-DE"); // not in the documentation
                v
            })
            .collect();
        list[3] = json!({"reviewer": {"displayName": "no name"}, "starRating": "TWO", "updateTime": "2026-04-04T10:00:00Z"});
        r.insert("7001".into(), list);
        r.insert("9001".into(), Vec::new());
        fake.troubles.lock().unwrap().extend([
            (0, "500"),
            (2, "retry1"),
            (4, "html502"),
            (6, "html200"),
        ]);
    }
    let base = start(fake.clone()).await;
    let config = config(&db, &base);
    let metrics = Arc::new(Metrics::new());
    let err = fakes::sync(&db, &config, metrics.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`google`"), "{err}");
    assert!(err.contains("not what the vendor documents"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    {
        let times = fake.times.lock().unwrap();
        let waited = times[3] - times[2];
        assert!(
            waited >= std::time::Duration::from_millis(990)
                && waited < std::time::Duration::from_secs(4),
            "Retry-After: 1 -> {waited:?}"
        );
    }
    // Pages 1-3 are stored with their cursor: 5 reviews and the quarantined one.
    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.interactions, counts.quarantine_open), (5, 1));

    let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
    assert_eq!((report.inserted, report.quarantined), (1, 0), "{report}");
    let log = fake.log.lock().unwrap().clone();
    assert_eq!(
        log[log.len() - 2..],
        ["7001 6".to_string(), "9001 ".to_string()]
    );
    let stored = db.store.interactions_after(0, 100).await.unwrap();
    let mut ids: Vec<_> = stored
        .iter()
        .map(|s| s.interaction.external_id.clone())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [1, 2, 3, 5, 6, 7].map(|n| format!("locations/7001/reviews/E{n}"))
    );
    let raw = &stored[0].interaction.raw;
    assert!(raw.contains("reviewerLocale"), "{raw}");
    let q = db.store.quarantine(Some("open")).await.unwrap();
    assert_eq!(q.len(), 1);
    assert!(q[0].entry.error.raw.contains("no name"), "{:?}", q[0]);

    let again = fakes::sync(&db, &config, metrics).await.unwrap();
    assert_eq!(
        (again.inserted, again.updated, again.quarantined),
        (0, 0, 0),
        "{again}"
    );
    assert_eq!(db.store.counts().await.unwrap().interactions, 6);
}

on_both_backends!(
    google_reviews_newest_first_with_marks_replies_and_edits,
    google_error_matrix_resumes_without_loss,
    google_sigkill_mid_sync_leaves_no_gap_and_no_duplicate
);
