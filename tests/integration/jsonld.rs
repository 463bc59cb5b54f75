//! The JSON-LD reviews connector (issue 6) against fake sites on 127.0.0.1: robots.txt
//! with groups, a disallowed page that must never be requested and a Crawl-delay; a
//! robots.txt answering 404 (everything allowed) and 503 (nothing fetched); pages with a
//! single Review, a Product with a review array, a `@graph`, a LocalBusiness with an
//! aggregateRating; HTML entities, a block that is not JSON, a review without a date among
//! good ones, unknown fields; 429 with and without Retry-After, a 500 that recovers, an
//! HTML page without JSON-LD, a 404 page; conditional GET and content hashes on a second
//! run; `tideline sync NAME` through the binary.

use crate::common::TestDb;
use crate::fakes::{self, find, header, stored};
use crate::on_both_backends;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tideline::config::{Config, Overrides};
use tideline::metrics::Metrics;

const CONTACT: &str = "https://acme.example/crawler";
const LAST_MODIFIED: &str = "Wed, 01 Jan 2025 00:00:00 GMT";

#[derive(Debug, Clone, Copy)]
enum Trouble {
    RetryAfter(u64),
    Bare429,
    Error500,
    /// 200 with a challenge page and no JSON-LD.
    Challenge,
}

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    at: Instant,
    user_agent: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

#[derive(Clone, Default)]
struct Site {
    /// `Ok(text)` or `Err(status)`.
    robots: Arc<Mutex<Option<Result<String, u16>>>>,
    pages: Arc<Mutex<HashMap<String, String>>>,
    troubles: Arc<Mutex<HashMap<String, VecDeque<Trouble>>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
    /// robots.txt redirects through `/hop/N` ... `/hop/0` (N + 1 redirects) to the rules.
    hops: Arc<Mutex<Option<usize>>>,
}

impl Site {
    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    fn page_hits(&self) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path != "/robots.txt")
            .cloned()
            .collect()
    }
}

fn etag_of(html: &str) -> String {
    use sha2::Digest;
    format!(
        "\"{}\"",
        &hex::encode(sha2::Sha256::digest(html.as_bytes()))[..16]
    )
}

async fn handle(State(site): State<Site>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    site.hits.lock().unwrap().push(Hit {
        path: path.clone(),
        at: Instant::now(),
        user_agent: header(&headers, "user-agent").unwrap_or("").to_string(),
        if_none_match: header(&headers, "if-none-match").map(str::to_string),
        if_modified_since: header(&headers, "if-modified-since").map(str::to_string),
    });
    let hops = *site.hops.lock().unwrap();
    if let Some(n) = hops {
        let next = match path.strip_prefix("/hop/") {
            Some(k) => k.parse::<usize>().unwrap().checked_sub(1),
            None if path == "/robots.txt" => Some(n),
            None => None,
        };
        if let Some(k) = next {
            return (
                StatusCode::MOVED_PERMANENTLY,
                [("location", format!("/hop/{k}"))],
            )
                .into_response();
        }
        if path.starts_with("/hop/") {
            let text = site.robots.lock().unwrap().clone().unwrap().unwrap();
            return (StatusCode::OK, text).into_response();
        }
    }
    if path == "/robots.txt" {
        return match site.robots.lock().unwrap().clone() {
            Some(Ok(text)) => {
                (StatusCode::OK, [("content-type", "text/plain")], text).into_response()
            }
            Some(Err(status)) => (
                StatusCode::from_u16(status).unwrap(),
                "<html><body>robots unavailable</body></html>",
            )
                .into_response(),
            None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
        };
    }
    let trouble = site
        .troubles
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    match trouble {
        Some(Trouble::RetryAfter(s)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", s.to_string())],
                "slow down",
            )
                .into_response();
        }
        Some(Trouble::Bare429) => {
            return (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
        }
        Some(Trouble::Error500) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "<h1>oops</h1>").into_response();
        }
        Some(Trouble::Challenge) => {
            return (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<html><head><title>Just a moment...</title></head><body><h1>Checking your browser</h1></body></html>",
            )
                .into_response();
        }
        None => {}
    }
    let Some(html) = site.pages.lock().unwrap().get(&path).cloned() else {
        return (StatusCode::NOT_FOUND, "<html><body>Not Found</body></html>").into_response();
    };
    // Pages under /etag/ answer If-None-Match, under /lm/ If-Modified-Since; others
    // send no validators (the connector's content hash decides).
    if path.starts_with("/etag/") {
        let etag = etag_of(&html);
        if header(&headers, "if-none-match") == Some(etag.as_str()) {
            return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
        }
        return (
            StatusCode::OK,
            [("content-type", "text/html".to_string()), ("etag", etag)],
            html,
        )
            .into_response();
    }
    if path.starts_with("/lm/") {
        if header(&headers, "if-modified-since") == Some(LAST_MODIFIED) {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        return (
            StatusCode::OK,
            [
                ("content-type", "text/html"),
                ("last-modified", LAST_MODIFIED),
            ],
            html,
        )
            .into_response();
    }
    (StatusCode::OK, [("content-type", "text/html")], html).into_response()
}

async fn start(site: Site) -> String {
    fakes::serve(axum::Router::new().fallback(handle).with_state(site)).await
}

/// An HTML page with these JSON-LD blocks (raw text, so a broken one stays broken).
fn page(blocks: &[String]) -> String {
    let scripts: String = blocks
        .iter()
        .map(|b| format!("<script type=\"application/ld+json\">\n{b}\n</script>\n"))
        .collect();
    format!(
        "<!DOCTYPE html><html><head><title>Acme reviews</title>\n<script>var x = 1;</script>\n{scripts}</head><body><h1>What our guests say</h1></body></html>"
    )
}

const ROBOTS: &str = "\u{feff}# Acme's robots\r\nUser-agent: *\r\nDisallow: /\r\n\r\nUser-agent: OtherBot\r\nUser-agent: tideline\r\nAllow: /etag/\r\nAllow: /lm/\r\nAllow: /plain/\r\nDisallow: /etag/private # staff only\r\nCrawl-delay: 1\r\nSitemap: https://acme.example/sitemap.xml\r\n";

fn single_page() -> String {
    let r1 = json!({
        "@context": "https://schema.org",
        "@type": "Review",
        "@id": "#r1",
        "datePublished": "2025-03-01",
        "reviewBody": "Great coffee &amp; friendly staff &lt;3",
        "reviewRating": {"@type": "Rating", "ratingValue": "4", "bestRating": "5"},
        "author": {"@type": "Person", "name": "Ana", "email": "ana@shop.example"},
        "x-acme-internal": {"moderated": true}
    });
    let product = json!([{
        "@context": "https://schema.org",
        "@type": ["Product", "Thing"],
        "name": "House blend",
        "aggregateRating": {"@type": "AggregateRating", "ratingValue": "4.1", "reviewCount": "3"},
        "review": [
            {"@type": "Review", "url": "https://acme.example/reviews/2", "datePublished": "2025-03-02T09:30:00+01:00",
             "reviewBody": "Solid, a bit pricey", "author": "Ben",
             "reviewRating": {"ratingValue": 8, "bestRating": 10, "worstRating": 0}},
            {"@type": "Review", "datePublished": "2025-03-03", "author": {"name": "Cem"},
             "reviewRating": {"ratingValue": 2}},
            {"@type": "Review", "reviewBody": "No date on this one", "author": "Dee",
             "reviewRating": {"ratingValue": 5}}
        ]
    }]);
    page(&[
        r1.to_string(),
        "{\"@type\": \"Review\", \"reviewBody\": \"broken".to_string(),
        product.to_string(),
    ])
}

fn graph_page() -> String {
    let g = json!({
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebPage", "@id": "https://acme.example/#page", "name": "Reviews"},
            {"@type": ["LocalBusiness", "CafeOrCoffeeShop"], "@id": "https://acme.example/#cafe", "name": "Acme Mitte",
             "aggregateRating": {"@type": "AggregateRating", "ratingValue": 4.5, "reviewCount": 2},
             "review": [
                {"@type": "Review", "@id": "https://acme.example/#g1", "datePublished": "2025-02-10T12:00:00Z",
                 "reviewBody": "Cosy place, lovely cake", "author": {"@type": "Person", "name": "Eve"},
                 "reviewRating": {"@type": "Rating", "ratingValue": 5}},
                {"@type": "Review", "@id": "https://acme.example/#g2", "datePublished": "2025-02-11",
                 "reviewBody": "Cold cappuccino, slow service", "author": "Finn",
                 "reviewRating": {"@type": "Rating", "ratingValue": 1}}
             ]}
        ]
    });
    page(&[g.to_string()])
}

fn business_page() -> String {
    let b = json!({
        "@context": "https://schema.org",
        "@type": "LocalBusiness",
        "name": "Acme Hamburg",
        "review": {"@type": "Review", "@id": "https://acme.example/#b1", "datePublished": "2025-01-20",
                   "description": "Best flat white in town", "author": {"name": "Gus"},
                   "reviewRating": {"ratingValue": "4.5"}}
    });
    page(&[b.to_string()])
}

fn shop_page() -> String {
    let r = json!({"@context": "https://schema.org", "@type": "Review", "@id": "https://shop.example/#s1",
                   "datePublished": "2025-04-01", "reviewBody": "Quick delivery", "reviewRating": "5",
                   "author": {"name": "Hal"}});
    page(&[r.to_string()])
}

fn connector(name: &str, pages: &[(String, Option<&str>)], extra: &str) -> String {
    let mut s = format!(
        "[[connector]]\nkind = \"jsonld\"\nname = \"{name}\"\nuser_agent = \"Tideline\"\ncontact_url = \"{CONTACT}\"\nlocation = \"berlin-mitte\"\nmax_wait_secs = 5\n{extra}"
    );
    for (url, location) in pages {
        s.push_str(&format!("[[connector.page]]\nurl = \"{url}\"\n"));
        if let Some(l) = location {
            s.push_str(&format!("location = \"{l}\"\n"));
        }
    }
    s
}

fn config_text(db: &TestDb, connector: &str) -> String {
    format!(
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
    )
}

fn config(db: &TestDb, connector: &str) -> Config {
    Config::from_toml(&config_text(db, connector), "test", &Overrides::default()).unwrap()
}

fn gap(a: &Hit, b: &Hit) -> f64 {
    (b.at - a.at).as_secs_f64()
}

/// Robots groups, a disallowed page never requested, the Crawl-delay, every JSON-LD
/// shape, entities, a broken block and a review without a date quarantined, unknown
/// fields kept, 429 with and without Retry-After, a 500 that recovers (waits measured);
/// a second run sends conditional requests and stores nothing.
async fn jsonld_robots_shapes_waits_and_rerun(db: TestDb) {
    let acme = Site::default();
    *acme.robots.lock().unwrap() = Some(Ok(ROBOTS.to_string()));
    {
        let mut p = acme.pages.lock().unwrap();
        p.insert("/etag/reviews".into(), single_page());
        p.insert("/lm/reviews".into(), graph_page());
        p.insert("/etag/private-notes".into(), single_page());
        p.insert("/plain/hamburg".into(), business_page());
        let mut t = acme.troubles.lock().unwrap();
        t.insert(
            "/lm/reviews".into(),
            VecDeque::from([Trouble::RetryAfter(1)]),
        );
        t.insert("/plain/hamburg".into(), VecDeque::from([Trouble::Error500]));
    }
    let a = start(acme.clone()).await;
    // A second origin without robots.txt (404: everything allowed).
    let shop = Site::default();
    shop.pages
        .lock()
        .unwrap()
        .insert("/reviews".into(), shop_page());
    shop.troubles
        .lock()
        .unwrap()
        .insert("/reviews".into(), VecDeque::from([Trouble::Bare429]));
    let b = start(shop.clone()).await;
    let pages = [
        (format!("{a}/etag/reviews"), None),
        (format!("{a}/lm/reviews"), Some("berlin-mitte")),
        (format!("{a}/etag/private-notes"), None),
        (format!("{a}/plain/hamburg"), Some("hamburg")),
        (format!("{b}/reviews"), None),
    ];
    let config = config(&db, &connector("site", &pages, ""));
    let metrics = Arc::new(Metrics::new());
    let started = Instant::now();
    let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(
        (
            report.pages,
            report.fetched,
            report.inserted,
            report.unchanged,
            report.quarantined
        ),
        (5, 9, 7, 0, 2),
        "{report}"
    );
    // Disallowed by `Disallow: /etag/private` (longer than `Allow: /etag/`): never asked.
    assert!(acme.hits("/etag/private-notes").is_empty());
    assert_eq!(acme.hits("/robots.txt").len(), 1);
    assert_eq!(shop.hits("/robots.txt").len(), 1);
    let all_hits: Vec<Hit> = [
        acme.hits.lock().unwrap().clone(),
        shop.hits.lock().unwrap().clone(),
    ]
    .concat();
    for h in &all_hits {
        assert!(
            h.user_agent.starts_with("Tideline/")
                && h.user_agent.ends_with(&format!("(+{CONTACT})")),
            "{}",
            h.user_agent
        );
    }
    // Acme's pages: reviews; (Crawl-delay) graph 429; (Retry-After 1) graph;
    // (Crawl-delay) hamburg 500; (backoff) hamburg.
    let h = acme.page_hits();
    let paths: Vec<&str> = h.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/etag/reviews",
            "/lm/reviews",
            "/lm/reviews",
            "/plain/hamburg",
            "/plain/hamburg"
        ]
    );
    let gaps: Vec<f64> = h.windows(2).map(|w| gap(&w[0], &w[1])).collect();
    for (i, g) in gaps.iter().enumerate() {
        assert!(
            (0.95..2.6).contains(g),
            "gap {i} between acme's requests: {g:.3} s ({gaps:?})"
        );
    }
    let s = shop.page_hits();
    assert_eq!(s.len(), 2);
    let g = gap(&s[0], &s[1]);
    assert!((0.95..1.6).contains(&g), "bare 429 backoff {g:.3} s");
    eprintln!("first run: {took:.2} s, acme gaps {gaps:?}, shop backoff {g:.3} s");

    let all = stored(&db).await;
    assert_eq!(all.len(), 7);
    assert!(
        all.iter()
            .all(|i| i.kind == tideline::model::InteractionKind::Review)
    );
    let r1 = find(&all, &format!("{a}/etag/reviews#r1"));
    assert_eq!(r1.text.as_deref(), Some("Great coffee & friendly staff <3"));
    assert_eq!(r1.stars, Some(4.0));
    assert_eq!(r1.author_name.as_deref(), Some("Ana"));
    assert!(r1.identities.iter().any(|i| i.value == "ana@shop.example"));
    assert!(r1.raw.contains("x-acme-internal"), "unknown fields kept");
    assert_eq!(r1.location_id.as_deref(), Some("berlin-mitte"));
    let r2 = find(&all, "https://acme.example/reviews/2");
    assert_eq!(r2.stars, Some(4.2)); // 8 on 0..10
    assert!(
        r2.raw.contains("\"aggregateRating\""),
        "the product's aggregate rating kept"
    );
    assert!(
        r2.identities.iter().all(|i| !i.value.contains('@')),
        "a name is no key"
    );
    let r3 = all
        .iter()
        .find(|i| i.author_name.as_deref() == Some("Cem"))
        .unwrap();
    assert!(r3.external_id.starts_with("jsonld:"), "{}", r3.external_id);
    assert_eq!((r3.stars, r3.text.as_deref()), (Some(2.0), None));
    let g1 = find(&all, "https://acme.example/#g1");
    assert_eq!(g1.stars, Some(5.0));
    assert_eq!(g1.location_id.as_deref(), Some("berlin-mitte"));
    let g2 = find(&all, "https://acme.example/#g2");
    assert_eq!(g2.author_name.as_deref(), Some("Finn"));
    let b1 = find(&all, "https://acme.example/#b1");
    assert_eq!(b1.text.as_deref(), Some("Best flat white in town"));
    assert_eq!(b1.stars, Some(4.5));
    assert_eq!(b1.location_id.as_deref(), Some("hamburg"));
    let s1 = find(&all, "https://shop.example/#s1");
    assert_eq!(s1.stars, Some(5.0));

    let q = db.store.quarantine(None).await.unwrap();
    assert_eq!(q.len(), 2);
    assert!(q.iter().all(|i| i.entry.preset == "jsonld"));
    let mut origins: Vec<(String, Option<String>)> = q
        .iter()
        .map(|i| (i.entry.error.origin.clone(), i.entry.error.field.clone()))
        .collect();
    origins.sort();
    assert_eq!(
        origins,
        [
            (
                format!("{a}/etag/reviews script 2"),
                Some("script".to_string())
            ),
            (
                format!("{a}/etag/reviews script 3 review 3"),
                Some("datePublished".to_string())
            ),
        ]
    );

    // Second run: conditional requests (304) and the content hash: nothing new.
    let before = acme.hits.lock().unwrap().len();
    let again = fakes::sync(&db, &config, metrics).await.unwrap();
    assert_eq!(
        (
            again.pages,
            again.fetched,
            again.inserted,
            again.updated,
            again.quarantined
        ),
        (5, 0, 0, 0, 0),
        "{again}"
    );
    let second: Vec<Hit> = acme.hits.lock().unwrap()[before..].to_vec();
    let of = |p: &str| second.iter().find(|h| h.path == p).unwrap().clone();
    assert_eq!(
        of("/etag/reviews").if_none_match,
        Some(etag_of(&single_page()))
    );
    assert_eq!(
        of("/lm/reviews").if_modified_since.as_deref(),
        Some(LAST_MODIFIED)
    );
    assert_eq!(of("/plain/hamburg").if_none_match, None);
    // robots.txt once per run.
    assert_eq!(acme.hits("/robots.txt").len(), 2);
    assert!(acme.hits("/etag/private-notes").is_empty());
    assert_eq!(stored(&db).await.len(), 7);
}

/// robots.txt answering 503: nothing of that site is fetched and the warning says why; a
/// challenge page without JSON-LD is read again next run; a 404 page is skipped; the
/// binary's `tideline sync NAME` prints what it fetched.
async fn jsonld_unreachable_robots_error_pages_and_the_binary(db: TestDb) {
    let down = Site::default();
    *down.robots.lock().unwrap() = Some(Err(503));
    down.pages
        .lock()
        .unwrap()
        .insert("/reviews".into(), shop_page());
    let c = start(down.clone()).await;
    let open = Site::default();
    *open.robots.lock().unwrap() = Some(Ok("User-agent: *\nDisallow:\n".into()));
    open.pages
        .lock()
        .unwrap()
        .insert("/plain/flaky".into(), graph_page());
    open.troubles
        .lock()
        .unwrap()
        .insert("/plain/flaky".into(), VecDeque::from([Trouble::Challenge]));
    let d = start(open.clone()).await;
    let pages = [
        (format!("{c}/reviews"), None),
        (format!("{d}/plain/flaky"), None),
        (format!("{d}/plain/gone"), None),
    ];
    let text = config_text(&db, &connector("site", &pages, "max_retries = 1\n"));
    let config = Config::from_toml(&text, "test", &Overrides::default()).unwrap();
    let report = fakes::sync(&db, &config, Arc::new(Metrics::new()))
        .await
        .unwrap();
    assert_eq!(
        (report.pages, report.fetched, report.inserted),
        (3, 0, 0),
        "{report}"
    );
    // One attempt and one retry of robots.txt, never the page.
    assert_eq!(down.hits("/robots.txt").len(), 2);
    assert!(down.page_hits().is_empty());
    assert_eq!(open.hits("/plain/gone").len(), 1);

    // The binary: the challenge is over, the reviews come; the unreachable site is named.
    let cfg = db.dir.path().join("tideline.toml");
    std::fs::write(&cfg, &text).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        crate::common::bin()
            .arg("--config")
            .arg(&cfg)
            .args(["sync", "site"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("site: 3 pages, 2 fetched, 2 new"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{c}/reviews"))
            && stderr.contains("robots.txt")
            && stderr.contains("503")
            && stderr.contains("disallowing the whole site"),
        "{stderr}"
    );
    assert!(
        stderr.contains("HTTP 404") && stderr.contains("/plain/gone"),
        "{stderr}"
    );
    assert!(down.page_hits().is_empty());
    assert_eq!(stored(&db).await.len(), 2);
    // What robots.txt of the down site said never reached the store either.
    assert!(
        stored(&db)
            .await
            .iter()
            .all(|i| !i.raw.contains("robots unavailable")),
    );
}

/// robots.txt behind five redirects is read; behind six it counts as unreachable, and
/// the site is not fetched at all.
async fn jsonld_robots_redirects_are_followed_five_hops(db: TestDb) {
    let mut bases = Vec::new();
    let mut sites = Vec::new();
    for hops in [4, 5] {
        let site = Site::default();
        *site.hops.lock().unwrap() = Some(hops);
        *site.robots.lock().unwrap() = Some(Ok("User-agent: *\nDisallow: /plain/private\n".into()));
        {
            let mut p = site.pages.lock().unwrap();
            p.insert("/plain/ok".into(), business_page());
            p.insert("/plain/private".into(), business_page());
        }
        bases.push(start(site.clone()).await);
        sites.push(site);
    }
    let pages: Vec<(String, Option<&str>)> = bases
        .iter()
        .flat_map(|b| {
            [
                (format!("{b}/plain/ok"), None),
                (format!("{b}/plain/private"), None),
            ]
        })
        .collect();
    let config = config(&db, &connector("site", &pages, "max_retries = 0\n"));
    let report = fakes::sync(&db, &config, Arc::new(Metrics::new()))
        .await
        .unwrap();
    assert_eq!(
        (report.pages, report.fetched, report.inserted),
        (4, 1, 1),
        "{report}"
    );
    // Five redirects: the rules were read, the allowed page fetched, the other not.
    let paths: Vec<String> = sites[0]
        .page_hits()
        .iter()
        .map(|h| h.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/hop/4",
            "/hop/3",
            "/hop/2",
            "/hop/1",
            "/hop/0",
            "/plain/ok"
        ]
    );
    // Six: too many; nothing of the site is fetched.
    assert!(
        sites[1]
            .page_hits()
            .iter()
            .all(|h| h.path.starts_with("/hop/"))
    );
    assert!(sites[1].hits("/hop/0").is_empty());
}

on_both_backends!(
    jsonld_robots_shapes_waits_and_rerun,
    jsonld_unreachable_robots_error_pages_and_the_binary,
    jsonld_robots_redirects_are_followed_five_hops
);
