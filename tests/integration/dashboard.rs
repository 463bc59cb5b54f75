//! Issue 9: the dashboard's pages over HTTP (no browser: `browser.rs` drives Chromium),
//! on both backends: login by token into a session cookie, the redirect to the login form,
//! the CSRF check of the posts, the pages' security headers, logout; and 240 hostile texts
//! on the portfolio, location, timeline and quarantine pages, parsed back.

use crate::common::TestDb;
use crate::hostile::{hostile_corpus, structure};
use crate::http::{ADMIN, Api, READ};
use crate::on_both_backends;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use tideline::config::{Config, Overrides};
use tideline::model::{Identity, IdentityKind, Interaction, InteractionKind};
use tideline::model::{Sentiment, SentimentLabel};
use tideline::pipeline::normalize::{RowError, content_hash};
use tideline::store::{QuarantineEntry, WriteBatch};

/// The samples' last 90 days, as the demo reports them.
pub const PERIOD: &str = "?from=2026-03-31&to=2026-06-28";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts the login form as a browser on this origin would; returns the response.
async fn post_login(api: &Api, token: &str, origin: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}/dashboard/login", api.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap()
}

/// Logs in with the read token; returns the `Cookie` header value.
pub async fn login(api: &Api) -> String {
    let r = post_login(api, READ, Some(&api.base)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

/// `GET` a dashboard path with a cookie; status, headers and body.
pub async fn page(api: &Api, path: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let r = client()
        .get(format!("{}{path}", api.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

/// Every `href` of a page that starts with `prefix`.
fn links(html: &str, prefix: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let a = scraper::Selector::parse("a[href]").unwrap();
    doc.select(&a)
        .filter_map(|e| e.value().attr("href"))
        .filter(|h| h.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

async fn login_sessions_csrf_and_headers(db: TestDb) {
    let api = Api::start(db).await;
    // No session: every page sends the browser to the login form, whatever bearer token.
    for path in [
        "/dashboard",
        "/dashboard/locations/berlin-mitte",
        "/dashboard/sources",
        "/dashboard/quarantine",
        "/dashboard/customers/cus_0",
    ] {
        let r = client()
            .get(format!("{}{path}", api.base))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[LOCATION], "/dashboard/login", "{path}");
    }
    // The bare address leads to the dashboard.
    let r = client().get(format!("{}/", api.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/dashboard");
    let (status, h, body) = page(&api, "/dashboard/login", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'; frame-ancestors 'none'")
    );
    assert!(body.contains("name=\"token\""));

    // CSRF: a post without this origin is refused, even with the right token.
    for origin in [None, Some("http://evil.example"), Some("null")] {
        let r = post_login(&api, READ, origin).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin:?}");
        assert!(r.headers().get(SET_COOKIE).is_none());
    }
    // A wrong token: 401, the form again, the token not echoed, no cookie.
    let wrong = "wrong-token-<b>0123456789";
    let r = post_login(&api, wrong, Some(&api.base)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("not accepted") && !body.contains("wrong-token"));

    // The right token: a session cookie that is not the token.
    let r = post_login(&api, ADMIN, Some(&api.base)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/dashboard");
    let set = r.headers()[SET_COOKIE].to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains(ADMIN) && !set.contains(&READ[..12]), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();

    // Pages: 200, the dashboard's policy, every location linked from the portfolio.
    let (status, h, portfolio) = page(&api, &format!("/dashboard{PERIOD}"), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{portfolio}");
    assert_eq!(
        h["content-security-policy"],
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let locations = links(&portfolio, "/dashboard/locations/");
    assert_eq!(locations.len(), 5, "{locations:?}");
    assert!(
        locations[0].ends_with(PERIOD),
        "the period follows the links"
    );
    assert!(portfolio.contains("Warszawa Centrum"));
    let warsaw = format!("/dashboard/locations/warsaw-centrum{PERIOD}");
    let (status, _, location) = page(&api, &warsaw, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    for section in [
        "Indicators",
        "When satisfaction changed",
        "Reviews waiting for an answer",
        "Customers seen here",
    ] {
        assert!(location.contains(section), "{section}");
    }
    assert!(location.contains("<svg"), "charts inline");
    let customers = links(&location, "/dashboard/customers/cus_");
    assert!(!customers.is_empty());
    let (status, _, timeline) = page(&api, &customers[0], &cookie).await;
    assert_eq!(status, StatusCode::OK);
    for section in ["Identities", "When satisfaction changed", "Interactions"] {
        assert!(timeline.contains(section), "{section}");
    }
    for path in ["/dashboard/sources", "/dashboard/quarantine"] {
        let (status, _, body) = page(&api, path, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains("<table"), "{path}");
    }
    let (_, _, quarantine) = page(&api, "/dashboard/quarantine", &cookie).await;
    assert!(quarantine.contains("reviews.csv"), "the samples' bad rows");
    let (status, h, css) = page(&api, "/dashboard/static/dashboard.css", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/css"));
    assert!(css.contains("@media print"));

    // Unknown ids and bad periods: pages, not panics, and nothing of the input echoed.
    for (path, expected) in [
        ("/dashboard/locations/paris", StatusCode::NOT_FOUND),
        ("/dashboard/customers/cus_ffff", StatusCode::NOT_FOUND),
        ("/dashboard/customers/%3Cscript%3E", StatusCode::NOT_FOUND),
        (
            "/dashboard?from=%3Cscript%3E&to=2026-01-01",
            StatusCode::BAD_REQUEST,
        ),
        ("/dashboard?period=%3Cscript%3E", StatusCode::BAD_REQUEST),
        (
            "/dashboard/quarantine?status=%3Cscript%3E",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, _, body) = page(&api, path, &cookie).await;
        assert_eq!(status, expected, "{path}");
        assert!(!body.contains("<script"), "{path}");
    }

    // The JSON API keeps wanting its bearer token: a session cookie is not one.
    let r = client()
        .get(format!("{}/api/v1/customers", api.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );

    // Logout: refused from elsewhere, then the session ends.
    let logout = |origin: Option<String>| {
        let mut req = client()
            .post(format!("{}/dashboard/logout", api.base))
            .header("cookie", &cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let r = logout(Some("http://evil.example".into())).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(page(&api, "/dashboard", &cookie).await.0, StatusCode::OK);
    let r = logout(Some(api.base.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        page(&api, "/dashboard", &cookie).await.0,
        StatusCode::SEE_OTHER
    );
    assert!(api.state.sessions.is_empty());
    api.stop().await;
}

fn config(db: &TestDb, name: &str) -> Config {
    let name = toml::Value::String(name.to_string()).to_string();
    Config::from_toml(
        &format!(
            r#"
[storage]
database_url = "{}"
[pipeline]
sentiment_adapt = false
[[location]]
id = "berlin"
name = {name}
timezone = "Europe/Berlin"
country = "DE"
"#,
            db.url.expose()
        ),
        "test",
        &Overrides::default(),
    )
    .unwrap()
}

/// One review per corpus entry by one customer, and one quarantined row per entry.
fn batch(texts: &[String], hostile: bool) -> WriteBatch {
    let start = 1_774_310_400_000; // 2026-03-24T00:00:00Z
    let interactions = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let neighbour = &texts[(i + 7) % texts.len()];
            let mut r = Interaction {
                source: "google".into(),
                external_id: format!("H{i}"),
                kind: InteractionKind::Review,
                parent_external_id: None,
                occurred_at_ms: start + i as i64 * 60_000,
                updated_at_ms: Some(start + i as i64 * 60_000 + hostile as i64),
                location_id: Some("berlin".into()),
                author_name: Some(neighbour.clone()),
                identities: vec![Identity::new(IdentityKind::Email, "guest@example.test")],
                text: Some(t.clone()),
                language: Some("de".into()),
                language_confidence: Some(0.9),
                stars: Some(1.0 + (i % 5) as f64),
                nps: None,
                csat: None,
                ces: None,
                status: None,
                sentiment: Some(Sentiment {
                    score: -0.5,
                    label: SentimentLabel::Negative,
                    confidence: 0.9,
                    model: "test".into(),
                }),
                aspects: vec![],
                url: Some(t.clone()),
                raw: "{}".into(),
                content_hash: String::new(),
            };
            r.content_hash = content_hash(&r);
            r
        })
        .collect();
    let rejects = texts
        .iter()
        .enumerate()
        .map(|(i, t)| QuarantineEntry {
            source: "reviews".into(),
            preset: "generic-csv".into(),
            options: serde_json::json!({}),
            error: RowError {
                origin: t.clone(),
                line: Some(i as u64 + 2),
                field: Some(texts[(i + 3) % texts.len()].clone()),
                expected: texts[(i + 5) % texts.len()].clone(),
                message: t.clone(),
                raw: texts[(i + 11) % texts.len()].clone(),
            },
        })
        .collect();
    WriteBatch {
        interactions,
        rejects,
        ..Default::default()
    }
}

/// The four pages whose content comes from data, over the current store.
async fn pages_of(api: &Api) -> Vec<(String, String)> {
    let cookie = login(api).await;
    let q = "?from=2026-03-23&to=2026-04-05";
    let (_, _, portfolio) = page(api, &format!("/dashboard{q}"), &cookie).await;
    let (_, _, location) = page(api, &format!("/dashboard/locations/berlin{q}"), &cookie).await;
    let customer = links(&location, "/dashboard/customers/cus_")
        .into_iter()
        .next()
        .expect("the customer is linked from the location page");
    let (_, _, timeline) = page(api, &customer, &cookie).await;
    let (_, _, quarantine) = page(api, "/dashboard/quarantine", &cookie).await;
    vec![
        ("portfolio".into(), portfolio),
        ("location".into(), location),
        ("timeline".into(), timeline),
        ("quarantine".into(), quarantine),
    ]
}

/// 240 hostile texts as review texts, author names, URLs, quarantined rows' fields and the
/// location's name: parsed back, each page has exactly the elements and attributes of the
/// same page over harmless data, no script, no event attribute, and no link but the
/// dashboard's own; the texts show as text.
async fn hostile_texts_become_text_in_the_dashboard(db: TestDb) {
    let corpus = hostile_corpus();
    assert!(corpus.len() >= 200, "{}", corpus.len());
    let harmless: Vec<String> = corpus.iter().map(|_| "x".to_string()).collect();
    let hostile_name = corpus[4].clone();
    let (plain_config, hostile_config) = (config(&db, "x"), config(&db, &hostile_name));
    db.store.write_batch(batch(&harmless, false)).await.unwrap();
    let api = Api::serve(db, &plain_config).await;
    let expected = pages_of(&api).await;
    let db = api.stop().await;

    // Dismiss the harmless rows so the open quarantine holds the hostile ones only.
    let ids: Vec<i64> = db
        .store
        .quarantine(Some("open"))
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    db.store
        .set_quarantine_status(&ids, "dismissed")
        .await
        .unwrap();
    db.store.write_batch(batch(&corpus, true)).await.unwrap();
    let api = Api::serve(db, &hostile_config).await;
    let got = pages_of(&api).await;
    for ((name, e), (_, g)) in expected.iter().zip(&got) {
        let (e, g) = (structure(e), structure(g));
        assert!(g.len() > 20, "{name}: {g:?}");
        assert_eq!(g.len(), e.len(), "{name}: element count");
        for (a, b) in g.iter().zip(&e) {
            assert_eq!(a, b, "{name}");
        }
        assert!(!g.iter().any(|x| x.starts_with("script[")), "{name}");
        assert!(
            !g.iter().any(|x| x.contains("[on") || x.contains(",on")),
            "{name}"
        );
        assert!(
            g.iter()
                .filter_map(|x| x.split("href=").nth(1))
                .all(|h| h.starts_with('/') || h.starts_with("#i-")),
            "{name}: only the dashboard's own links"
        );
    }
    let text = |html: &str| -> String {
        scraper::Html::parse_document(html)
            .root_element()
            .text()
            .collect()
    };
    let (location, timeline, quarantine) = (text(&got[1].1), text(&got[2].1), text(&got[3].1));
    assert!(location.contains("<img src=x onerror=alert(1)>"));
    assert!(timeline.contains("<script>alert(1)</script>"));
    assert!(quarantine.contains("<svg onload=alert(1)>"));
    assert!(text(&got[0].1).contains(&hostile_name));
    assert!(got.iter().all(|(_, h)| !h.contains('\u{202E}')));
    api.stop().await;
}

on_both_backends!(
    login_sessions_csrf_and_headers,
    hostile_texts_become_text_in_the_dashboard
);
