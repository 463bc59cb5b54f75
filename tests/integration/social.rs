//! The social mention connectors (issue 6) against fake vendor servers on 127.0.0.1 that
//! answer like the vendors' documentation (shapes from `../shared/reference/connectors.md`
//! section 3): several pages and an empty one, 429 with the vendor's reset header, with
//! `Retry-After` and with neither, a 500 that recovers, an HTML page where JSON was
//! expected, a malformed item among good ones, unknown extra fields and missing optional
//! ones. Asserted: every item stored once, nothing lost, the cursor at the source's end,
//! a second run against the unchanged source stores nothing, and each wait measured
//! against what the server asked for.

use crate::common::TestDb;
use crate::fakes::{self, find, header, stored, user_agent_ok};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tideline::config::{Config, Overrides};
use tideline::metrics::Metrics;

/// 2025-02-01T00:00:00Z
const T0: i64 = 1_738_368_000;

/// Items of a fake with the ids it pages by (a malformed item may lack its own).
type Keyed = Vec<(String, Value)>;

/// What a fake answers instead of data at a given request.
#[derive(Debug, Clone, Copy)]
pub enum Trouble {
    /// 429 with the vendor's own reset header.
    Reset,
    /// 429 with `Retry-After: <secs>`.
    RetryAfter(u64),
    /// 429 with no hint at all.
    Bare,
    /// 500, then the next attempt works.
    Error500,
    /// 200 with an HTML page.
    Html,
}

/// The data route's request log and the troubles to answer by request number.
#[derive(Clone, Default)]
pub struct Script {
    troubles: Arc<Mutex<HashMap<usize, Trouble>>>,
    times: Arc<Mutex<Vec<Instant>>>,
    pub queries: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

impl Script {
    pub fn with(troubles: &[(usize, Trouble)]) -> Script {
        let s = Script::default();
        s.troubles.lock().unwrap().extend(troubles.iter().copied());
        s
    }

    /// Logs a request; the trouble to answer it with, if any.
    fn next(&self, q: &HashMap<String, String>) -> Option<Trouble> {
        let n = {
            let mut t = self.times.lock().unwrap();
            t.push(Instant::now());
            t.len() - 1
        };
        self.queries.lock().unwrap().push(q.clone());
        self.troubles.lock().unwrap().remove(&n)
    }

    pub fn count(&self) -> usize {
        self.times.lock().unwrap().len()
    }

    /// The time between request `n` and the next one.
    pub fn gap(&self, n: usize) -> Duration {
        let t = self.times.lock().unwrap();
        t[n + 1] - t[n]
    }

    pub fn assert_gap(&self, n: usize, min: f64, max: f64) {
        let g = self.gap(n).as_secs_f64();
        assert!(
            g >= min && g <= max,
            "the wait after request {n} took {g:.3} s, expected {min} to {max} s"
        );
    }
}

/// The answer to a trouble; `reset` is the vendor's reset header for a wait.
fn trouble(t: Trouble, reset: (&'static str, String)) -> Response {
    let body = json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"});
    match t {
        Trouble::Reset => (
            StatusCode::TOO_MANY_REQUESTS,
            [(reset.0, reset.1)],
            axum::Json(body),
        )
            .into_response(),
        Trouble::RetryAfter(s) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", s.to_string())],
            axum::Json(body),
        )
            .into_response(),
        Trouble::Bare => (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response(),
        Trouble::Error500 => {
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
        Trouble::Html => (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<html><head><title>Just a moment...</title></head><body><h1>Checking your browser</h1></body></html>",
        )
            .into_response(),
    }
}

fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn epoch_in(secs: i64) -> String {
    (chrono::Utc::now().timestamp() + secs).to_string()
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
[[location]]
id = "hamburg"
timezone = "Europe/Berlin"
country = "DE"
{connector}
"#,
        db.url.expose()
    );
    Config::from_toml(&text, "test", &Overrides::default()).unwrap()
}

fn cursor(v: Option<String>) -> Value {
    serde_json::from_str(v.as_deref().expect("a cursor")).unwrap()
}

fn has_identity(i: &tideline::model::Interaction, value: &str) -> bool {
    i.identities.iter().any(|x| x.value == value)
}

/// Every external id once, and as many as expected.
async fn assert_each_once(db: &TestDb, expected: usize) {
    let all = stored(db).await;
    let mut ids: Vec<&str> = all.iter().map(|i| i.external_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "duplicates stored");
    assert_eq!(all.len(), expected, "{ids:?}");
    assert!(
        all.iter()
            .all(|i| i.kind == tideline::model::InteractionKind::Mention)
    );
}

pub mod bluesky {
    //! `app.bsky.feed.searchPosts` behind `createSession` / `refreshSession`.

    use super::*;
    use crate::on_both_backends;
    use axum::Json;
    use axum::extract::{Query, State};

    const PASSWORD: &str = "abcd-efgh-ijkl-mnop";

    #[derive(Clone, Default)]
    struct Fake {
        /// Posts by query, newest first.
        posts: Arc<Mutex<HashMap<String, Vec<Value>>>>,
        script: Script,
        access: Arc<Mutex<String>>,
        refresh: Arc<Mutex<String>>,
        /// Access tokens the server now calls expired.
        expired: Arc<Mutex<Vec<String>>>,
        creates: Arc<Mutex<u32>>,
        refreshes: Arc<Mutex<u32>>,
    }

    impl Fake {
        fn issue(&self) -> Value {
            let n = *self.creates.lock().unwrap() * 100 + *self.refreshes.lock().unwrap();
            let (a, r) = (format!("acc-{n}"), format!("ref-{n}"));
            *self.access.lock().unwrap() = a.clone();
            *self.refresh.lock().unwrap() = r.clone();
            json!({"accessJwt": a, "refreshJwt": r, "handle": "acme.bsky.social",
                   "did": "did:plc:acmeacme", "active": true})
        }
    }

    fn bearer(h: &HeaderMap) -> String {
        header(h, "authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string()
    }

    async fn create(
        State(f): State<Fake>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Response {
        assert!(user_agent_ok(&headers));
        if body["identifier"] != "acme.bsky.social" || body["password"] != PASSWORD {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "AuthenticationRequired", "message": "Invalid identifier or password"})),
            )
                .into_response();
        }
        *f.creates.lock().unwrap() += 1;
        Json(f.issue()).into_response()
    }

    async fn refresh(State(f): State<Fake>, headers: HeaderMap) -> Response {
        if bearer(&headers) != *f.refresh.lock().unwrap() {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "ExpiredToken", "message": "Token has been revoked"})),
            )
                .into_response();
        }
        *f.refreshes.lock().unwrap() += 1;
        Json(f.issue()).into_response()
    }

    /// The post's `sortAt`: the earlier of createdAt and indexedAt.
    fn sort_at(p: &Value) -> Option<i64> {
        let t = |s: &Value| {
            s.as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.timestamp_millis())
        };
        match (t(&p["record"]["createdAt"]), t(&p["indexedAt"])) {
            (Some(c), Some(i)) => Some(c.min(i)),
            (c, i) => c.or(i),
        }
    }

    async fn search(
        State(f): State<Fake>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        if !user_agent_ok(&headers) {
            return (StatusCode::BAD_REQUEST, "no user agent").into_response();
        }
        let token = bearer(&headers);
        if f.expired.lock().unwrap().contains(&token) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "ExpiredToken", "message": "Token has expired"})),
            )
                .into_response();
        }
        if token != *f.access.lock().unwrap() {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "InvalidToken", "message": "Bad token"})),
            )
                .into_response();
        }
        if let Some(t) = f.script.next(&q) {
            return trouble(t, ("ratelimit-reset", epoch_in(2)));
        }
        assert_eq!(q["sort"], "latest");
        assert_eq!(q["limit"], "100");
        let since = q.get("since").map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        });
        let all: Vec<Value> = f
            .posts
            .lock()
            .unwrap()
            .get(&q["q"])
            .cloned()
            .unwrap_or_default();
        let window: Vec<Value> = all
            .into_iter()
            .filter(|p| since.is_none_or(|s| sort_at(p).is_some_and(|t| t >= s)))
            .collect();
        let offset: usize = q.get("cursor").map_or(0, |c| c.parse().unwrap());
        let page: Vec<Value> = window.iter().skip(offset).take(5).cloned().collect();
        // "acme" ends with an empty page; the others with a last page without a cursor.
        let cursor = if q["q"] == "acme" {
            (offset < window.len()).then(|| (offset + 5).to_string())
        } else {
            (offset + 5 < window.len()).then(|| (offset + 5).to_string())
        };
        let mut body = json!({"posts": page, "hitsTotal": window.len()});
        if let Some(c) = cursor {
            body["cursor"] = json!(c);
        }
        (
            [
                ("ratelimit-limit", "3000".to_string()),
                ("ratelimit-remaining", "2990".to_string()),
                ("ratelimit-reset", epoch_in(300)),
                ("ratelimit-policy", "3000;w=300".to_string()),
            ],
            Json(body),
        )
            .into_response()
    }

    async fn start(f: Fake) -> String {
        fakes::serve(
            axum::Router::new()
                .route(
                    "/xrpc/com.atproto.server.createSession",
                    axum::routing::post(create),
                )
                .route(
                    "/xrpc/com.atproto.server.refreshSession",
                    axum::routing::post(refresh),
                )
                .route(
                    "/xrpc/app.bsky.feed.searchPosts",
                    axum::routing::get(search),
                )
                .with_state(f),
        )
        .await
    }

    fn post(n: i64, q: &str) -> Value {
        let did = format!("did:plc:user{}", n % 4);
        json!({
            "uri": format!("at://{did}/app.bsky.feed.post/3k{q}{n}"),
            "cid": format!("bafyrei{n}"),
            "author": {"did": did, "handle": format!("user{}.bsky.social", n % 4),
                       "displayName": format!("User {}", n % 4), "labels": []},
            "record": {"$type": "app.bsky.feed.post",
                       "text": if n % 2 == 0 { "@acme coffee was cold again" } else { "Lovely staff at acme today" },
                       "createdAt": iso(T0 + n * 60), "langs": ["en"]},
            "replyCount": 0, "repostCount": 1, "likeCount": n, "quoteCount": 0,
            "indexedAt": iso(T0 + n * 60 + 1),
            "labels": []
        })
    }

    /// "acme": posts 1..=12 (newest first) with drift and two bad ones; "acme mitte": 3.
    fn dataset() -> HashMap<String, Vec<Value>> {
        let mut acme: Vec<Value> = (1..=12).rev().map(|n| post(n, "a")).collect();
        let at = |n: i64| 12 - n as usize;
        acme[at(3)]["embedV3"] = json!({"kind": "new"}); // unknown fields
        acme[at(3)]["record"]["futureThing"] = json!(true);
        acme[at(5)]["record"]
            .as_object_mut()
            .unwrap()
            .remove("langs"); // optional fields gone
        acme[at(5)]["author"]
            .as_object_mut()
            .unwrap()
            .remove("displayName");
        acme[at(5)].as_object_mut().unwrap().remove("likeCount");
        acme[at(4)].as_object_mut().unwrap().remove("uri"); // malformed
        acme[at(6)]["record"]["createdAt"] = json!("yesterday"); // no usable time
        acme[at(6)].as_object_mut().unwrap().remove("indexedAt");
        let mitte: Vec<Value> = (1..=3).rev().map(|n| post(n, "m")).collect();
        HashMap::from([
            ("acme".to_string(), acme),
            ("acme mitte".to_string(), mitte),
        ])
    }

    fn connector(dir: &std::path::Path, base: &str, password: &str) -> String {
        let pw = fakes::secret_file(dir, "bsky_password", password);
        format!(
            r#"
[[connector]]
kind = "bluesky"
name = "bsky"
base_url = "{base}"
identifier = "acme.bsky.social"
app_password_file = "{}"
location = "hamburg"
max_wait_secs = 10
[[connector.query]]
q = "acme"
[[connector.query]]
q = "acme mitte"
location = "berlin-mitte"
"#,
            pw.display()
        )
    }

    /// Four pages of one query (the last empty) and one of another; a 429 with
    /// `ratelimit-reset`, one with `Retry-After`, one bare, and a 500 on the way; a post
    /// without uri and one without a time quarantined, the rest stored once. A second run
    /// finds the access token expired, refreshes the session (no new createSession) and
    /// stores nothing; a new post is then fetched alone.
    async fn bluesky_pages_waits_refresh_and_rerun(db: TestDb) {
        let fake = Fake {
            posts: Arc::new(Mutex::new(dataset())),
            script: Script::with(&[
                (1, Trouble::Reset),
                (3, Trouble::RetryAfter(1)),
                (5, Trouble::Bare),
                (7, Trouble::Error500),
            ]),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(db.dir.path(), &base, PASSWORD));
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        assert_eq!(
            (
                report.pages,
                report.fetched,
                report.inserted,
                report.quarantined
            ),
            (5, 15, 13, 2),
            "{report}"
        );
        assert_eq!(fake.script.count(), 9);
        // ratelimit-reset: now + 2 s as unix seconds, so 1 to 2 s; Retry-After 1 s;
        // no hint: the backoff's first step (1 to 1.25 s); the 500 the same.
        fake.script.assert_gap(1, 0.95, 3.0);
        fake.script.assert_gap(3, 0.95, 2.0);
        fake.script.assert_gap(5, 0.95, 2.5);
        fake.script.assert_gap(7, 0.95, 2.5);
        assert_eq!(
            metrics.connector_counters("bsky").unwrap().rate_limit_waits,
            3
        );
        assert_each_once(&db, 13).await;
        let all = stored(&db).await;
        let p1 = find(&all, "at://did:plc:user1/app.bsky.feed.post/3ka1");
        assert!(has_identity(p1, "bluesky:did:plc:user1"));
        assert_eq!(p1.author_name.as_deref(), Some("User 1"));
        assert_eq!(
            p1.url.as_deref(),
            Some("https://bsky.app/profile/did:plc:user1/post/3ka1")
        );
        assert_eq!(p1.location_id.as_deref(), Some("hamburg"));
        assert_eq!(p1.occurred_at_ms, (T0 + 60) * 1000);
        let drift = find(&all, "at://did:plc:user3/app.bsky.feed.post/3ka3");
        assert!(drift.raw.contains("embedV3") && drift.raw.contains("futureThing"));
        let thin = find(&all, "at://did:plc:user1/app.bsky.feed.post/3ka5");
        assert_eq!(thin.author_name.as_deref(), Some("user1.bsky.social"));
        let m = find(&all, "at://did:plc:user2/app.bsky.feed.post/3km2");
        assert_eq!(m.location_id.as_deref(), Some("berlin-mitte"));
        assert!(m.raw.contains("\"_tideline\""));
        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 2);
        assert!(q.iter().all(|i| i.entry.preset == "bluesky-json"));
        let no_uri = q
            .iter()
            .find(|i| i.entry.error.field.as_deref() == Some("uri"))
            .unwrap();
        assert!(
            no_uri.entry.error.origin.contains("page 2"),
            "{:?}",
            no_uri.entry.error
        );
        assert_eq!(no_uri.entry.error.line, Some(4)); // 12..8 on page 1; 7 6 5 4
        // Replay reads the stored item with the preset: the time is still missing.
        let no_time = q.iter().find(|i| i.id != no_uri.id).unwrap();
        assert!(
            no_time
                .entry
                .error
                .field
                .as_deref()
                .unwrap()
                .contains("occurred_at")
        );
        let replay = tideline::ingest::replay_quarantine(
            db.store.as_ref(),
            &crate::common::analyzer(&config),
            &config,
            &[no_time.id],
            None,
        )
        .await
        .unwrap();
        assert_eq!((replay.attempted, replay.still_failing), (1, 1));
        // The cursor: at the end of both walks, each mark at its newest post.
        let c = cursor(db.store.cursor("bsky").await.unwrap());
        assert_eq!(c["at"], 0);
        assert_eq!(c["queries"]["acme"]["mark"], iso(T0 + 12 * 60));
        assert_eq!(
            c["queries"]["acme"]["at_mark"],
            json!(["at://did:plc:user0/app.bsky.feed.post/3ka12"])
        );
        assert!(c["queries"]["acme"].get("cursor").is_none());
        assert_eq!(c["queries"]["acme mitte"]["mark"], iso(T0 + 3 * 60));

        // The access token expires: one refreshSession, no new session.
        let current = fake.access.lock().unwrap().clone();
        fake.expired.lock().unwrap().push(current);
        let before = fake.script.count();
        let again = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        assert_eq!(
            (
                *fake.creates.lock().unwrap(),
                *fake.refreshes.lock().unwrap()
            ),
            (1, 1)
        );
        assert_eq!(
            (
                again.inserted,
                again.updated,
                again.unchanged,
                again.quarantined
            ),
            (0, 0, 0, 0),
            "{again}"
        );
        {
            let qs = fake.script.queries.lock().unwrap();
            assert_eq!(qs[before]["since"], iso(T0 + 12 * 60));
        }
        // A new post: fetched alone.
        fake.posts
            .lock()
            .unwrap()
            .get_mut("acme")
            .unwrap()
            .insert(0, post(13, "a"));
        let third = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!(
            (third.inserted, third.unchanged, third.quarantined),
            (1, 0, 0),
            "{third}"
        );
        assert_each_once(&db, 14).await;
        assert_eq!(
            *fake.creates.lock().unwrap(),
            1,
            "the session is reused across runs"
        );
    }

    /// An HTML page where JSON was expected fails the run with a clear payload error and
    /// keeps the pages before it; the next run goes on from the stored cursor. A refused
    /// app password names the connector and its key, never the value.
    async fn bluesky_html_body_resume_and_refused_password(db: TestDb) {
        let fake = Fake {
            posts: Arc::new(Mutex::new(dataset())),
            script: Script::with(&[(1, Trouble::Html)]),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(db.dir.path(), &base, PASSWORD));
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("bsky") && err.contains("HTML"), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 5);
        let mid = cursor(db.store.cursor("bsky").await.unwrap());
        assert_eq!(mid["queries"]["acme"]["cursor"], "5");
        let report = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        assert_eq!(report.inserted, 8, "{report}");
        assert_each_once(&db, 13).await;
        let qs = fake.script.queries.lock().unwrap().clone();
        assert_eq!(qs[2].get("cursor").map(String::as_str), Some("5"));

        let text = connector(db.dir.path(), &base, "wrong-password-value");
        let bad = super::config(&db, &text.replace("name = \"bsky\"", "name = \"bsky2\""));
        let mut bad = bad;
        bad.connectors.retain(|c| c.name == "bsky2");
        let err = fakes::sync(&db, &bad, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bsky2") && err.contains("HTTP 401") && err.contains("app_password"),
            "{err}"
        );
        assert!(!err.contains("wrong-password-value"), "{err}");
    }

    on_both_backends!(
        bluesky_pages_waits_refresh_and_rerun,
        bluesky_html_body_resume_and_refused_password
    );
}

pub mod mastodon {
    //! Hashtag timelines paged forward with `min_id` (the `Link` header's `rel="prev"`),
    //! status search with a user token, `X-RateLimit-Reset` as an ISO-8601 time.

    use super::*;
    use crate::on_both_backends;
    use axum::Json;
    use axum::extract::{Path, Query, State};

    const TOKEN: &str = "masto-user-token";

    #[derive(Clone, Default)]
    struct Fake {
        base: Arc<Mutex<String>>,
        /// (id, status), ascending by id; the tag timeline and the search results.
        tag: Arc<Mutex<Vec<(String, Value)>>>,
        found: Arc<Mutex<Vec<(String, Value)>>>,
        script: Script,
    }

    fn cmp(a: &str, b: &str) -> std::cmp::Ordering {
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }

    /// Items just newer than `min_id` (or the newest), newest first, five at most.
    fn chunk(all: &[(String, Value)], min_id: Option<&String>) -> Vec<(String, Value)> {
        let mut page: Vec<(String, Value)> = match min_id {
            Some(m) => all
                .iter()
                .filter(|(id, _)| cmp(id, m).is_gt())
                .take(5)
                .cloned()
                .collect(),
            None => all.iter().rev().take(5).rev().cloned().collect(),
        };
        page.reverse();
        page
    }

    fn rate_headers() -> [(&'static str, String); 3] {
        [
            ("x-ratelimit-limit", "300".into()),
            ("x-ratelimit-remaining", "290".into()),
            ("x-ratelimit-reset", reset_in(300.0)),
        ]
    }

    fn reset_in(secs: f64) -> String {
        (chrono::Utc::now() + chrono::Duration::milliseconds((secs * 1000.0) as i64))
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    }

    async fn tag(
        State(f): State<Fake>,
        Path(tag): Path<String>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        if !user_agent_ok(&headers) {
            return (StatusCode::BAD_REQUEST, "no user agent").into_response();
        }
        if let Some(t) = f.script.next(&q) {
            return trouble(t, ("x-ratelimit-reset", reset_in(1.5)));
        }
        if tag != "acme" {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "Record not found"})),
            )
                .into_response();
        }
        assert_eq!(q["limit"], "40");
        let page = chunk(&f.tag.lock().unwrap(), q.get("min_id"));
        let base = f.base.lock().unwrap().clone();
        let mut resp = (
            rate_headers(),
            Json(Value::Array(page.iter().map(|(_, s)| s.clone()).collect())),
        )
            .into_response();
        if let (Some(newest), Some(oldest)) = (page.first(), page.last()) {
            let link = format!(
                "<{base}/api/v1/timelines/tag/acme?max_id={}>; rel=\"next\", <{base}/api/v1/timelines/tag/acme?min_id={}>; rel=\"prev\"",
                oldest.0, newest.0
            );
            resp.headers_mut().insert("link", link.parse().unwrap());
        }
        resp
    }

    async fn search(
        State(f): State<Fake>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        if header(&headers, "authorization") != Some(&format!("Bearer {TOKEN}")) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "The access token is invalid"})),
            )
                .into_response();
        }
        if let Some(t) = f.script.next(&q) {
            return trouble(t, ("x-ratelimit-reset", reset_in(1.5)));
        }
        assert_eq!(
            (q["type"].as_str(), q["q"].as_str()),
            ("statuses", "acme coffee")
        );
        let page = chunk(&f.found.lock().unwrap(), q.get("min_id"));
        (
            rate_headers(),
            Json(json!({"accounts": [], "hashtags": [],
                        "statuses": page.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>()})),
        )
            .into_response()
    }

    async fn start(f: Fake) -> String {
        let base = fakes::serve(
            axum::Router::new()
                .route("/api/v1/timelines/tag/{tag}", axum::routing::get(tag))
                .route("/api/v2/search", axum::routing::get(search))
                .with_state(f.clone()),
        )
        .await;
        *f.base.lock().unwrap() = base.clone();
        base
    }

    /// Mastodon's id for a time plus a sequence number.
    fn id(secs: i64, seq: i64) -> String {
        ((((secs as u128) * 1000) << 16) + seq as u128).to_string()
    }

    fn status(n: i64, origin: &str) -> (String, Value) {
        let sid = id(T0 + n * 60, n);
        let acct = n % 3;
        (
            sid.clone(),
            json!({
                "id": sid,
                "uri": format!("https://{origin}/users/u{acct}/statuses/{sid}"),
                "url": format!("https://{origin}/@u{acct}/{sid}"),
                "created_at": iso(T0 + n * 60),
                "edited_at": null,
                "content": format!("<p>Cold coffee at <a href=\"https://m.example/tags/acme\" class=\"mention hashtag\" rel=\"tag\">#<span>acme</span></a> #{n}<br>never again</p><p>Really.</p>"),
                "spoiler_text": "",
                "visibility": "public",
                "sensitive": false,
                "language": "en",
                "account": {"id": format!("{acct}"), "username": format!("u{acct}"), "acct": format!("u{acct}@{origin}"),
                            "display_name": format!("User {acct}"), "uri": format!("https://{origin}/users/u{acct}"),
                            "url": format!("https://{origin}/@u{acct}"), "bot": false},
                "reblog": null,
                "tags": [{"name": "acme", "url": "https://m.example/tags/acme"}],
                "mentions": [],
                "replies_count": 0, "reblogs_count": 0, "favourites_count": n
            }),
        )
    }

    fn dataset() -> (Keyed, Keyed) {
        let mut tag: Vec<(String, Value)> = (1..=12).map(|n| status(n, "m.example")).collect();
        tag[2].1["quote_approval"] = json!({"automatic": ["public"]}); // unknown fields
        tag[2].1["account"]["hide_collections"] = json!(true);
        for k in ["language", "spoiler_text", "edited_at"] {
            tag[4].1.as_object_mut().unwrap().remove(k); // optional fields gone
        }
        tag[4].1["account"].as_object_mut().unwrap().remove("uri"); // an older instance
        tag[3].1.as_object_mut().unwrap().remove("id"); // malformed
        tag[5].1["created_at"] = json!("yesterday"); // unreadable time
        // Status 9 boosts status 2: one mention.
        let boosted = tag[1].1.clone();
        tag[8].1["reblog"] = boosted;
        tag[8].1["content"] = json!("");
        let found: Vec<(String, Value)> = (20..=22).map(|n| status(n, "other.example")).collect();
        (tag, found)
    }

    fn connector(dir: &std::path::Path, base: &str, token: &str) -> String {
        let t = fakes::secret_file(dir, "masto_token", token);
        format!(
            r#"
[[connector]]
kind = "mastodon"
name = "masto"
base_url = "{base}"
access_token_file = "{}"
start_time = "2025-01-01"
max_wait_secs = 10
[[connector.query]]
hashtag = "acme"
[[connector.query]]
q = "acme coffee"
location = "berlin-mitte"
"#,
            t.display()
        )
    }

    /// Forward paging by `min_id` over three pages and an empty one, then a search; a 429
    /// with `X-RateLimit-Reset`, one with `Retry-After`, one bare and a 500; a status
    /// without id and one without a readable time quarantined; a boost stored as the post
    /// it boosts; HTML turned into text; a second run stores nothing.
    async fn mastodon_pages_waits_errors_and_rerun(db: TestDb) {
        let (tag, found) = dataset();
        let fake = Fake {
            tag: Arc::new(Mutex::new(tag.clone())),
            found: Arc::new(Mutex::new(found.clone())),
            script: Script::with(&[
                (1, Trouble::Reset),
                (3, Trouble::RetryAfter(1)),
                (5, Trouble::Bare),
                (7, Trouble::Error500),
            ]),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(db.dir.path(), &base, TOKEN));
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        // tag: 5 + 5 + 2 + empty; search: 3 + empty.
        assert_eq!(
            (
                report.pages,
                report.fetched,
                report.inserted,
                report.unchanged,
                report.quarantined
            ),
            (6, 15, 12, 1, 2),
            "{report}"
        );
        fake.script.assert_gap(1, 1.2, 3.0); // reset 1.5 s ahead
        fake.script.assert_gap(3, 0.95, 2.0);
        fake.script.assert_gap(5, 0.95, 2.5);
        fake.script.assert_gap(7, 0.95, 2.5);
        {
            let qs = fake.script.queries.lock().unwrap();
            // The first request starts at start_time's id; each next one at the prev link.
            assert_eq!(qs[0]["min_id"], id(T0 - 31 * 86_400, 0));
            assert_eq!(qs[2]["min_id"], tag[4].0);
        }
        assert_each_once(&db, 12).await;
        let all = stored(&db).await;
        let s1 = find(
            &all,
            &format!("https://m.example/users/u1/statuses/{}", tag[0].0),
        );
        assert_eq!(
            s1.text.as_deref(),
            Some("Cold coffee at #acme #1\nnever again\n\nReally.")
        );
        assert!(has_identity(s1, "mastodon:https://m.example/users/u1"));
        assert_eq!(s1.author_name.as_deref(), Some("User 1"));
        assert_eq!(
            s1.url.as_deref(),
            Some(format!("https://m.example/@u1/{}", tag[0].0).as_str())
        );
        let old = find(
            &all,
            &format!("https://m.example/users/u2/statuses/{}", tag[4].0),
        );
        assert!(has_identity(old, "mastodon:https://m.example/@u2"));
        let drift = find(
            &all,
            &format!("https://m.example/users/u0/statuses/{}", tag[2].0),
        );
        assert!(drift.raw.contains("quote_approval"));
        let s20 = find(
            &all,
            &format!("https://other.example/users/u2/statuses/{}", found[0].0),
        );
        assert_eq!(s20.location_id.as_deref(), Some("berlin-mitte"));
        assert!(
            all.iter()
                .all(|i| !i.text.as_deref().unwrap_or("").contains('<'))
        );
        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 2);
        assert!(q.iter().all(|i| i.entry.preset == "mastodon-json"));
        let c = cursor(db.store.cursor("masto").await.unwrap());
        assert_eq!(c["queries"]["#acme"]["min_id"], tag[11].0);
        assert_eq!(c["queries"]["acme coffee"]["min_id"], found[2].0);

        let again = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!(
            (
                again.pages,
                again.inserted,
                again.updated,
                again.unchanged,
                again.quarantined
            ),
            (2, 0, 0, 0, 0),
            "{again}"
        );
    }

    /// An HTML page on the second page fails the run, the next one resumes at the stored
    /// `min_id`; a refused token names `access_token`, never its value.
    async fn mastodon_html_body_resume_and_refused_token(db: TestDb) {
        let (tag, found) = dataset();
        let fake = Fake {
            tag: Arc::new(Mutex::new(tag.clone())),
            found: Arc::new(Mutex::new(found)),
            script: Script::with(&[(1, Trouble::Html)]),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(db.dir.path(), &base, TOKEN));
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("masto") && err.contains("HTML"), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 4);
        fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        assert_eq!(fake.script.queries.lock().unwrap()[2]["min_id"], tag[4].0);
        assert_each_once(&db, 12).await;

        let text =
            connector(db.dir.path(), &base, "wrong-token-value").replace("\"masto\"", "\"masto2\"");
        let bad = super::config(&db, &text);
        let err = fakes::sync(&db, &bad, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("masto2") && err.contains("HTTP 401") && err.contains("access_token"),
            "{err}"
        );
        assert!(!err.contains("wrong-token-value"), "{err}");
    }

    on_both_backends!(
        mastodon_pages_waits_errors_and_rerun,
        mastodon_html_body_resume_and_refused_token
    );
}

pub mod reddit {
    //! OAuth application-only token, `/search` and `/r/{sub}/search` listings with
    //! `after`, a descriptive User-Agent, requests paced under the per-minute budget,
    //! `X-Ratelimit-Reset` in seconds.

    use super::*;
    use crate::on_both_backends;
    use axum::Json;
    use axum::extract::{Path, Query, State};

    const SECRET: &str = "rd-s3cret";
    /// `reddit-cid:rd-s3cret`
    const BASIC: &str = "Basic cmVkZGl0LWNpZDpyZC1zM2NyZXQ=";

    fn ua() -> String {
        format!("tideline/{} (by /u/acme_dev)", env!("CARGO_PKG_VERSION"))
    }

    #[derive(Clone, Default)]
    struct Fake {
        /// Posts by subreddit ("" for the site-wide search), newest first.
        posts: Arc<Mutex<HashMap<String, Vec<Value>>>>,
        script: Script,
        tokens: Arc<Mutex<Vec<String>>>,
        /// Bodies of the token requests that passed the checks.
        token_forms: Arc<Mutex<Vec<String>>>,
        /// Request numbers answered with `X-Ratelimit-Remaining: 0`, reset in 1 s.
        spent_at: Arc<Mutex<Vec<usize>>>,
    }

    async fn token(State(f): State<Fake>, headers: HeaderMap, body: String) -> Response {
        let form_ok = header(&headers, "content-type") == Some("application/x-www-form-urlencoded");
        if header(&headers, "authorization") != Some(BASIC)
            || !form_ok
            || body != "grant_type=client_credentials"
            || header(&headers, "user-agent") != Some(ua().as_str())
        {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "Unauthorized", "error": 401})),
            )
                .into_response();
        }
        f.token_forms.lock().unwrap().push(body);
        let t = format!("tok-{}", f.tokens.lock().unwrap().len());
        f.tokens.lock().unwrap().push(t.clone());
        Json(json!({"access_token": t, "token_type": "bearer", "expires_in": 86400, "scope": "*"}))
            .into_response()
    }

    async fn listing(
        f: Fake,
        sub: &str,
        headers: HeaderMap,
        q: HashMap<String, String>,
    ) -> Response {
        let bearer = header(&headers, "authorization")
            .and_then(|a| a.strip_prefix("bearer ").or(a.strip_prefix("Bearer ")));
        if bearer.is_none_or(|b| !f.tokens.lock().unwrap().iter().any(|t| t == b)) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "Unauthorized", "error": 401})),
            )
                .into_response();
        }
        if header(&headers, "user-agent") != Some(ua().as_str()) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "generic user agents are throttled",
            )
                .into_response();
        }
        let n = f.script.count();
        if let Some(t) = f.script.next(&q) {
            return trouble(t, ("x-ratelimit-reset", "1".into()));
        }
        assert_eq!(
            (
                q["sort"].as_str(),
                q["limit"].as_str(),
                q["raw_json"].as_str()
            ),
            ("new", "100", "1")
        );
        if !sub.is_empty() {
            assert_eq!(q["restrict_sr"], "1");
        }
        let all = f
            .posts
            .lock()
            .unwrap()
            .get(sub)
            .cloned()
            .unwrap_or_default();
        let offset = match q.get("after") {
            Some(a) => all
                .iter()
                .position(|c| c["data"]["name"] == a.as_str())
                .map_or(all.len(), |p| p + 1),
            None => 0,
        };
        let page: Vec<Value> = all.iter().skip(offset).take(5).cloned().collect();
        let after = (offset + 5 < all.len()).then(|| page.last().unwrap()["data"]["name"].clone());
        let remaining = if f.spent_at.lock().unwrap().contains(&n) {
            "0"
        } else {
            "90"
        };
        (
            [
                ("x-ratelimit-used", "10".to_string()),
                ("x-ratelimit-remaining", remaining.to_string()),
                ("x-ratelimit-reset", "1".to_string()),
            ],
            Json(json!({"kind": "Listing", "data": {"after": after, "before": null, "dist": page.len(), "modhash": "", "geo_filter": "", "children": page}})),
        )
            .into_response()
    }

    async fn search(
        State(f): State<Fake>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        listing(f, "", headers, q).await
    }

    async fn sub_search(
        State(f): State<Fake>,
        Path(sub): Path<String>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        listing(f, &sub, headers, q).await
    }

    async fn start(f: Fake) -> String {
        fakes::serve(
            axum::Router::new()
                .route("/api/v1/access_token", axum::routing::post(token))
                .route("/search", axum::routing::get(search))
                .route("/r/{sub}/search", axum::routing::get(sub_search))
                .with_state(f),
        )
        .await
    }

    fn post(n: i64, sub: &str) -> Value {
        json!({"kind": "t3", "data": {
            "id": format!("p{sub}{n}"), "name": format!("t3_p{sub}{n}"),
            "title": format!("Acme support & delivery #{n}"),
            "selftext": if n % 2 == 0 { "Waited <two> weeks, nobody answered" } else { "" },
            "author": format!("user{}", n % 4), "author_fullname": format!("t2_u{}", n % 4),
            "subreddit": if sub.is_empty() { "all" } else { sub },
            "created_utc": (T0 + n * 60) as f64,
            "permalink": format!("/r/x/comments/p{sub}{n}/acme/"),
            "url": "https://www.reddit.com/r/x/", "score": n, "num_comments": 1, "over_18": false,
            "edited": false
        }})
    }

    fn dataset() -> HashMap<String, Vec<Value>> {
        let mut all: Vec<Value> = (1..=12).rev().map(|n| post(n, "")).collect();
        let at = |n: i64| 12 - n as usize;
        all[at(3)]["data"]["awarders_v2"] = json!([]); // unknown fields
        all[at(3)]["extra_top"] = json!(1);
        all[at(5)]["data"]
            .as_object_mut()
            .unwrap()
            .remove("author_fullname"); // optional gone
        all[at(5)]["data"]
            .as_object_mut()
            .unwrap()
            .remove("selftext");
        let d = all[at(4)]["data"].as_object_mut().unwrap();
        d.remove("name");
        d.remove("id"); // malformed
        all[at(6)]["data"]["created_utc"] = json!("soon"); // unreadable time
        // A comment among the posts.
        all[at(7)] = json!({"kind": "t1", "data": {"id": "c7", "name": "t1_c7", "body": "Acme refunded me, fair enough",
            "author": "user3", "author_fullname": "t2_u3", "created_utc": (T0 + 7 * 60) as f64,
            "permalink": "/r/x/comments/p1/acme/c7/", "link_id": "t3_p1", "edited": (T0 + 900) as f64}});
        let sub: Vec<Value> = (1..=2).rev().map(|n| post(n, "smallbusiness")).collect();
        HashMap::from([(String::new(), all), ("smallbusiness".to_string(), sub)])
    }

    fn connector(dir: &std::path::Path, base: &str, secret: &str) -> String {
        let s = fakes::secret_file(dir, "reddit_secret", secret);
        format!(
            r#"
[[connector]]
kind = "reddit"
name = "rd"
base_url = "{base}"
token_url = "{base}/api/v1/access_token"
client_id = "reddit-cid"
client_secret_file = "{}"
username = "acme_dev"
requests_per_minute = 600
max_wait_secs = 10
[[connector.query]]
q = "acme"
[[connector.query]]
q = "acme"
subreddit = "smallbusiness"
location = "berlin-mitte"
"#,
            s.display()
        )
    }

    /// One token request (Basic client id and secret, the client-credentials form, the
    /// User-Agent); three pages of site-wide search (the last full without `after`) and
    /// one of a subreddit; every search request at least 100 ms after the one before
    /// (600 a minute), a spent budget waits for `X-Ratelimit-Reset`; 429s and a 500
    /// waited out; a post without fullname and one without time quarantined; a second
    /// run stops at the mark and stores nothing.
    async fn reddit_token_pacing_pages_and_rerun(db: TestDb) {
        let fake = Fake {
            posts: Arc::new(Mutex::new(dataset())),
            script: Script::with(&[
                (1, Trouble::Reset),
                (3, Trouble::RetryAfter(1)),
                (5, Trouble::Error500),
            ]),
            spent_at: Arc::new(Mutex::new(vec![4])),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(db.dir.path(), &base, SECRET));
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        assert_eq!(
            (
                report.pages,
                report.fetched,
                report.inserted,
                report.quarantined
            ),
            (4, 14, 12, 2),
            "{report}"
        );
        assert_eq!(
            *fake.token_forms.lock().unwrap(),
            ["grant_type=client_credentials"]
        );
        assert_eq!(fake.script.count(), 7);
        fake.script.assert_gap(1, 0.95, 2.0); // X-Ratelimit-Reset: 1 (seconds)
        fake.script.assert_gap(3, 0.95, 2.0); // Retry-After: 1
        fake.script.assert_gap(4, 0.95, 2.0); // remaining 0, reset in 1 s
        fake.script.assert_gap(5, 0.95, 2.5); // the 500's backoff
        for n in 0..6 {
            assert!(
                fake.script.gap(n) >= Duration::from_millis(95),
                "request {n}: {:?}",
                fake.script.gap(n)
            );
        }
        {
            let qs = fake.script.queries.lock().unwrap();
            assert_eq!(qs[2]["after"], "t3_p8");
        }
        assert_each_once(&db, 12).await;
        let all = stored(&db).await;
        let p2 = find(&all, "t3_p2");
        assert_eq!(
            p2.text.as_deref(),
            Some("Acme support & delivery #2\n\nWaited <two> weeks, nobody answered")
        );
        assert!(has_identity(p2, "reddit:t2_u2"));
        assert_eq!(
            p2.url.as_deref(),
            Some("https://www.reddit.com/r/x/comments/p2/acme/")
        );
        assert_eq!(p2.occurred_at_ms, (T0 + 120) * 1000);
        let p5 = find(&all, "t3_p5");
        assert!(has_identity(p5, "reddit:u/user1"));
        let c7 = find(&all, "t1_c7");
        assert_eq!(c7.text.as_deref(), Some("Acme refunded me, fair enough"));
        assert_eq!(c7.updated_at_ms, Some((T0 + 900) * 1000));
        assert!(find(&all, "t3_p3").raw.contains("awarders_v2"));
        let s1 = find(&all, "t3_psmallbusiness1");
        assert_eq!(s1.location_id.as_deref(), Some("berlin-mitte"));
        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 2);
        assert!(q.iter().all(|i| i.entry.preset == "reddit-json"));
        let c = cursor(db.store.cursor("rd").await.unwrap());
        assert_eq!(c["queries"]["acme"]["mark"], json!((T0 + 720) as f64));
        assert_eq!(c["queries"]["acme"]["at_mark"], json!(["t3_p12"]));
        assert!(c["queries"]["acme"].get("after").is_none());

        let before = fake.script.count();
        let again = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!(
            (
                again.inserted,
                again.updated,
                again.unchanged,
                again.quarantined
            ),
            (0, 0, 0, 0),
            "{again}"
        );
        assert_eq!(
            fake.script.count() - before,
            2,
            "one page per query: the mark is on it"
        );
        assert_eq!(
            fake.token_forms.lock().unwrap().len(),
            2,
            "one token per run"
        );
    }

    /// An HTML page fails the run and the next one resumes at the stored `after`; a
    /// refused client secret names `client_secret`, never its value.
    async fn reddit_html_body_resume_and_refused_secret(db: TestDb) {
        let fake = Fake {
            posts: Arc::new(Mutex::new(dataset())),
            script: Script::with(&[(1, Trouble::Html)]),
            ..Default::default()
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(db.dir.path(), &base, SECRET));
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("rd") && err.contains("HTML"), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 5);
        fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        assert_eq!(fake.script.queries.lock().unwrap()[2]["after"], "t3_p8");
        assert_each_once(&db, 12).await;

        let text =
            connector(db.dir.path(), &base, "wrong-secret-value").replace("\"rd\"", "\"rd2\"");
        let err = fakes::sync(&db, &super::config(&db, &text), Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rd2") && err.contains("HTTP 401") && err.contains("client_secret"),
            "{err}"
        );
        assert!(!err.contains("wrong-secret-value"), "{err}");
    }

    on_both_backends!(
        reddit_token_pacing_pages_and_rerun,
        reddit_html_body_resume_and_refused_secret
    );
}

pub mod x {
    //! API v2 recent search: bearer token, `next_token`, `since_id`, authors expanded,
    //! `x-rate-limit-reset` in epoch seconds.

    use super::*;
    use crate::on_both_backends;
    use axum::Json;
    use axum::extract::{Query, State};

    const TOKEN: &str = "x-bearer-s3cret";
    const BASE_ID: u64 = 1_790_000_000_000_000_000;

    #[derive(Clone, Default)]
    struct Fake {
        /// (id, post) by query, newest first, and the users to include.
        posts: Arc<Mutex<HashMap<String, Keyed>>>,
        users: Arc<Mutex<Vec<Value>>>,
        script: Script,
    }

    fn cmp(a: &str, b: &str) -> std::cmp::Ordering {
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }

    async fn search(
        State(f): State<Fake>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        if header(&headers, "authorization") != Some(&format!("Bearer {TOKEN}")) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})),
            )
                .into_response();
        }
        if !user_agent_ok(&headers) {
            return (StatusCode::BAD_REQUEST, "no user agent").into_response();
        }
        if let Some(t) = f.script.next(&q) {
            return trouble(t, ("x-rate-limit-reset", epoch_in(2)));
        }
        assert_eq!(q["max_results"], "100");
        assert_eq!(q["expansions"], "author_id");
        assert!(
            q["tweet.fields"].contains("created_at") && q["tweet.fields"].contains("author_id")
        );
        assert_eq!(q["user.fields"], "username,name");
        let all: Vec<(String, Value)> = f
            .posts
            .lock()
            .unwrap()
            .get(&q["query"])
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|(id, _)| q.get("since_id").is_none_or(|s| cmp(id, s).is_gt()))
            .collect();
        let offset: usize = q
            .get("next_token")
            .map_or(0, |t| t.trim_start_matches('p').parse().unwrap());
        let page: Vec<(String, Value)> = all.iter().skip(offset).take(5).cloned().collect();
        let headers = [
            ("x-rate-limit-limit", "450".to_string()),
            ("x-rate-limit-remaining", "440".to_string()),
            ("x-rate-limit-reset", epoch_in(900)),
        ];
        if page.is_empty() {
            return (headers, Json(json!({"meta": {"result_count": 0}}))).into_response();
        }
        // "acme" ends with an empty page; others with a last page without next_token.
        let more = if q["query"] == "acme" {
            true
        } else {
            offset + 5 < all.len()
        };
        let users = f.users.lock().unwrap().clone();
        let included: Vec<Value> = users
            .into_iter()
            .filter(|u| page.iter().any(|(_, p)| p["author_id"] == u["id"]))
            .collect();
        let mut meta = json!({"newest_id": page[0].0, "oldest_id": page.last().unwrap().0, "result_count": page.len()});
        if more {
            meta["next_token"] = json!(format!("p{}", offset + 5));
        }
        (
            headers,
            Json(
                json!({"data": page.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
                        "includes": {"users": included}, "meta": meta}),
            ),
        )
            .into_response()
    }

    async fn start(f: Fake) -> String {
        fakes::serve(
            axum::Router::new()
                .route("/2/tweets/search/recent", axum::routing::get(search))
                .with_state(f),
        )
        .await
    }

    fn post(n: u64) -> (String, Value) {
        let id = (BASE_ID + n).to_string();
        (
            id.clone(),
            json!({"id": id, "text": format!("@acme worst checkout ever #{n}"),
                   "edit_history_tweet_ids": [id], "author_id": format!("{}", 100 + n % 4),
                   "created_at": iso(T0 + n as i64 * 60), "lang": "en"}),
        )
    }

    fn dataset() -> HashMap<String, Vec<(String, Value)>> {
        let mut acme: Vec<(String, Value)> = (1..=12).rev().map(post).collect();
        let at = |n: usize| 12 - n;
        acme[at(3)].1["context_annotations"] = json!([{"domain": {"id": "1"}}]); // unknown
        acme[at(5)].1["author_id"] = json!("999"); // an author not included
        acme[at(5)].1.as_object_mut().unwrap().remove("lang");
        acme[at(4)].1.as_object_mut().unwrap().remove("id"); // malformed
        acme[at(6)].1["created_at"] = json!("yesterday"); // unreadable time
        let berlin: Vec<(String, Value)> = (20..=22).rev().map(post).collect();
        HashMap::from([
            ("acme".to_string(), acme),
            ("acme berlin".to_string(), berlin),
        ])
    }

    fn users() -> Vec<Value> {
        (0..4)
            .map(|i| json!({"id": format!("{}", 100 + i), "name": format!("Name {i}"), "username": format!("user_{i}"), "verified": false}))
            .collect()
    }

    fn connector(dir: &std::path::Path, base: &str, token: &str) -> String {
        let t = fakes::secret_file(dir, "x_token", token);
        format!(
            r#"
[[connector]]
kind = "x"
name = "xs"
base_url = "{base}"
bearer_token_file = "{}"
max_wait_secs = 10
[[connector.query]]
q = "acme"
[[connector.query]]
q = "acme berlin"
location = "berlin-mitte"
"#,
            t.display()
        )
    }

    /// Three pages of one query and an empty one, one page of another (full, no token);
    /// 429s with `x-rate-limit-reset`, `Retry-After` and nothing, a 500; a post without id
    /// and one without a readable time quarantined; authors named from `includes.users`;
    /// the second run asks `since_id` = the newest id and stores nothing.
    async fn x_pages_waits_errors_and_rerun(db: TestDb) {
        let fake = Fake {
            posts: Arc::new(Mutex::new(dataset())),
            users: Arc::new(Mutex::new(users())),
            script: Script::with(&[
                (1, Trouble::Reset),
                (3, Trouble::RetryAfter(1)),
                (5, Trouble::Bare),
                (7, Trouble::Error500),
            ]),
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(db.dir.path(), &base, TOKEN));
        let metrics = Arc::new(Metrics::new());
        let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
        assert_eq!(
            (
                report.pages,
                report.fetched,
                report.inserted,
                report.quarantined
            ),
            (5, 15, 13, 2),
            "{report}"
        );
        fake.script.assert_gap(1, 0.95, 3.0);
        fake.script.assert_gap(3, 0.95, 2.0);
        fake.script.assert_gap(5, 0.95, 2.5);
        fake.script.assert_gap(7, 0.95, 2.5);
        assert_each_once(&db, 13).await;
        let all = stored(&db).await;
        let p1 = find(&all, &(BASE_ID + 1).to_string());
        assert!(has_identity(p1, "x:101"));
        assert_eq!(p1.author_name.as_deref(), Some("Name 1"));
        assert_eq!(
            p1.url.as_deref(),
            Some(format!("https://x.com/user_1/status/{}", BASE_ID + 1).as_str())
        );
        assert!(p1.raw.contains("\"author\""));
        let p5 = find(&all, &(BASE_ID + 5).to_string());
        assert!(has_identity(p5, "x:999") && p5.author_name.is_none());
        assert!(
            find(&all, &(BASE_ID + 3).to_string())
                .raw
                .contains("context_annotations")
        );
        let b = find(&all, &(BASE_ID + 21).to_string());
        assert_eq!(b.location_id.as_deref(), Some("berlin-mitte"));
        let q = db.store.quarantine(None).await.unwrap();
        assert_eq!(q.len(), 2);
        assert!(q.iter().all(|i| i.entry.preset == "x-json"));
        let c = cursor(db.store.cursor("xs").await.unwrap());
        assert_eq!(c["queries"]["acme"]["since_id"], (BASE_ID + 12).to_string());
        assert_eq!(
            c["queries"]["acme berlin"]["since_id"],
            (BASE_ID + 22).to_string()
        );

        let before = fake.script.count();
        let again = fakes::sync(&db, &config, metrics).await.unwrap();
        assert_eq!(
            (
                again.inserted,
                again.updated,
                again.unchanged,
                again.quarantined
            ),
            (0, 0, 0, 0),
            "{again}"
        );
        let qs = fake.script.queries.lock().unwrap();
        assert_eq!(qs[before]["since_id"], (BASE_ID + 12).to_string());
        assert!(!qs[before].contains_key("next_token"));
    }

    /// An HTML page mid-walk fails the run; the next run resumes at the stored
    /// `next_token` with the same `since_id`; a refused token names `bearer_token`.
    async fn x_html_body_resume_and_refused_token(db: TestDb) {
        let fake = Fake {
            posts: Arc::new(Mutex::new(dataset())),
            users: Arc::new(Mutex::new(users())),
            script: Script::with(&[(1, Trouble::Html)]),
        };
        let base = start(fake.clone()).await;
        let config = config(&db, &connector(db.dir.path(), &base, TOKEN));
        let err = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("xs") && err.contains("HTML"), "{err}");
        assert_eq!(db.store.counts().await.unwrap().interactions, 5);
        fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        assert_eq!(fake.script.queries.lock().unwrap()[2]["next_token"], "p5");
        assert_each_once(&db, 13).await;

        let text =
            connector(db.dir.path(), &base, "wrong-token-value").replace("\"xs\"", "\"xs2\"");
        let err = fakes::sync(&db, &super::config(&db, &text), Arc::new(Metrics::new()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("xs2") && err.contains("HTTP 401") && err.contains("bearer_token"),
            "{err}"
        );
        assert!(!err.contains("wrong-token-value"), "{err}");
    }

    /// `max_posts_per_run` ends a run after the page that reaches it; the next run goes on
    /// from the stored `next_token` with the same `since_id`, and the mark moves only when
    /// the walk is complete.
    async fn x_post_budget_ends_a_run_and_the_next_goes_on(db: TestDb) {
        let fake = Fake {
            posts: Arc::new(Mutex::new(dataset())),
            users: Arc::new(Mutex::new(users())),
            script: Script::default(),
        };
        let base = start(fake.clone()).await;
        let text = connector(db.dir.path(), &base, TOKEN).replace(
            "max_wait_secs = 10",
            "max_wait_secs = 10\nmax_posts_per_run = 5",
        );
        let config = config(&db, &text);
        let first = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        assert_eq!((first.pages, first.fetched), (1, 5), "{first}");
        let c = cursor(db.store.cursor("xs").await.unwrap());
        assert_eq!(c["queries"]["acme"]["next_token"], "p5");
        assert!(c["queries"]["acme"].get("since_id").is_none());
        let second = fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        assert_eq!((second.pages, second.fetched), (1, 5), "{second}");
        assert_eq!(fake.script.queries.lock().unwrap()[1]["next_token"], "p5");
        while fakes::sync(&db, &config, Arc::new(Metrics::new()))
            .await
            .unwrap()
            .fetched
            > 0
        {}
        assert_each_once(&db, 13).await;
        let c = cursor(db.store.cursor("xs").await.unwrap());
        assert_eq!(c["queries"]["acme"]["since_id"], (BASE_ID + 12).to_string());
    }

    on_both_backends!(
        x_pages_waits_errors_and_rerun,
        x_html_body_resume_and_refused_token,
        x_post_budget_ends_a_run_and_the_next_goes_on
    );
}

pub mod presets {
    //! Saved API pages read by the `*-json` presets with the connectors' record functions.

    use crate::common::{self, TestDb};
    use crate::on_both_backends;
    use tideline::connectors::files::Preset;
    use tideline::ingest::{self, ImportOptions};

    async fn import(db: &TestDb, name: &str, preset: Preset) -> ingest::ImportReport {
        let config = common::demo_config();
        let o = ImportOptions {
            path: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/social")
                .join(name),
            preset,
            mapping: None,
            source: None,
            location: Some("berlin-mitte".into()),
            timezone: None,
        };
        ingest::import_file(db.store.as_ref(), common::analyzer(&config), &config, &o)
            .await
            .unwrap()
    }

    /// A page of each vendor: its items as mentions with the same fields as the API
    /// connectors give them; the Bluesky post without uri is quarantined.
    async fn social_presets_read_saved_api_pages(db: TestDb) {
        let b = import(&db, "bluesky_searchPosts.json", Preset::BlueskyJson).await;
        assert_eq!((b.read, b.inserted, b.quarantined), (3, 2, 1), "{b:?}");
        let m = import(&db, "mastodon_tag_timeline.json", Preset::MastodonJson).await;
        assert_eq!((m.read, m.inserted), (2, 2), "{m:?}");
        let r = import(&db, "reddit_search_listing.json", Preset::RedditJson).await;
        assert_eq!((r.read, r.inserted), (2, 2), "{r:?}");
        let x = import(&db, "x_search_recent.json", Preset::XJson).await;
        assert_eq!((x.read, x.inserted), (2, 2), "{x:?}");

        let all = super::stored(&db).await;
        let get = |id: &str| super::find(&all, id);
        let ana = get("at://did:plc:abc123/app.bsky.feed.post/3kxyz");
        assert_eq!(ana.source, "bluesky");
        assert!(super::has_identity(ana, "bluesky:did:plc:abc123"));
        let m1 = get("https://m.example/users/ana/statuses/113891420000000001");
        assert_eq!(
            m1.text.as_deref(),
            Some("Queue at #acme again\ntwenty minutes\n\nhttps://acme.example/menu")
        );
        assert!(m1.updated_at_ms.is_some());
        // The boost is the boosted post, with its content warning first.
        let boost = get("https://other.example/users/cat/statuses/99");
        assert_eq!(
            boost.text.as_deref(),
            Some("coffee opinions\n\nBest flat white in town, @acme")
        );
        assert!(super::has_identity(
            boost,
            "mastodon:https://other.example/users/cat"
        ));
        let r1 = get("t3_1abcde");
        assert_eq!(
            r1.text.as_deref(),
            Some("Acme support is awful\n\nThree emails & no answer. <sigh>")
        );
        assert!(super::has_identity(r1, "reddit:t2_xyz"));
        let deleted = get("t3_1abcdf");
        assert!(deleted.identities.is_empty() && deleted.author_name.is_none());
        let x1 = get("1790000000000000002");
        assert_eq!(x1.author_name.as_deref(), Some("Ana"));
        assert_eq!(
            x1.url.as_deref(),
            Some("https://x.com/ana_p/status/1790000000000000002")
        );
        let x2 = get("1790000000000000001");
        assert!(super::has_identity(x2, "x:67890"));
        assert_eq!(
            x2.url.as_deref(),
            Some("https://x.com/i/web/status/1790000000000000001")
        );
        assert!(
            all.iter()
                .all(|i| i.location_id.as_deref() == Some("berlin-mitte"))
        );
    }

    on_both_backends!(social_presets_read_saved_api_pages);
}
