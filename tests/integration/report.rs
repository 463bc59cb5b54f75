//! `tideline report` on a small fixture whose numbers are computed by hand, across the
//! change to summer time in Berlin (2026-03-29), on both backends.

use crate::common::{self, TestDb};
use crate::hostile::{hostile_corpus, structure};
use crate::on_both_backends;
use chrono::{NaiveDate, TimeZone};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tideline::config::{Config, Overrides};
use tideline::model::{Interaction, InteractionKind, Sentiment, SentimentLabel};
use tideline::outputs::indicators::Scope;
use tideline::outputs::report::{self, ReportRequest};
use tideline::pipeline::indicators::PeriodSpec;
use tideline::pipeline::normalize::content_hash;
use tideline::pipeline::sentiment::AspectScore;
use tideline::pipeline::sentiment::aspects::Aspect;
use tideline::store::WriteBatch;

/// Local wall time in Berlin or New York, as UTC milliseconds.
fn at(tz: chrono_tz::Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    tz.from_local_datetime(
        &NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap(),
    )
    .single()
    .unwrap()
    .timestamp_millis()
}

struct R {
    id: &'static str,
    loc: &'static str,
    at: i64,
    stars: f64,
    lang: &'static str,
    sentiment: f64,
    aspects: Vec<(Aspect, Option<f64>)>,
    reply_after_h: Option<i64>,
}

fn interactions(r: &R) -> Vec<Interaction> {
    let label = if r.sentiment > 0.2 {
        SentimentLabel::Positive
    } else if r.sentiment < -0.2 {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    let mut review = Interaction {
        source: "google".into(),
        external_id: r.id.into(),
        kind: InteractionKind::Review,
        parent_external_id: None,
        occurred_at_ms: r.at,
        updated_at_ms: Some(r.at),
        location_id: Some(r.loc.into()),
        author_name: Some(format!("Author {}", r.id)),
        identities: vec![],
        text: Some(format!("Review {}", r.id)),
        language: Some(r.lang.into()),
        language_confidence: Some(0.9),
        stars: Some(r.stars),
        nps: None,
        csat: None,
        ces: None,
        status: None,
        sentiment: Some(Sentiment {
            score: r.sentiment,
            label,
            confidence: 0.9,
            model: "test".into(),
        }),
        aspects: r
            .aspects
            .iter()
            .map(|(aspect, sentiment)| AspectScore {
                aspect: *aspect,
                sentiment: *sentiment,
            })
            .collect(),
        url: Some(format!("https://example.test/{}", r.id)),
        raw: "{}".into(),
        content_hash: String::new(),
    };
    review.content_hash = content_hash(&review);
    let mut out = vec![review.clone()];
    if let Some(h) = r.reply_after_h {
        let mut reply = review.clone();
        reply.external_id = format!("{}#reply", r.id);
        reply.kind = InteractionKind::Reply;
        reply.parent_external_id = Some(r.id.into());
        reply.occurred_at_ms = r.at + h * 3_600_000;
        reply.stars = None;
        reply.sentiment = None;
        reply.aspects = vec![];
        reply.content_hash = content_hash(&reply);
        out.push(reply);
    }
    out
}

fn config(db: &TestDb) -> String {
    format!(
        r#"
[storage]
database_url = "{}"
[pipeline]
sentiment_adapt = false
[[location]]
id = "berlin"
name = "Berlin Mitte"
timezone = "Europe/Berlin"
country = "DE"
[[location]]
id = "nyc"
name = "New York"
timezone = "America/New_York"
country = "US"
"#,
        db.url.expose()
    )
}

async fn seed(db: &TestDb) {
    let b = chrono_tz::Europe::Berlin;
    let n = chrono_tz::America::New_York;
    let rows = [
        // Previous period (2026-03-09 .. 03-22 local).
        R {
            id: "P1",
            loc: "berlin",
            at: at(b, 2026, 3, 10, 12, 0),
            stars: 3.0,
            lang: "de",
            sentiment: 0.0,
            aspects: vec![(Aspect::Staff, Some(-0.3))],
            reply_after_h: Some(6),
        },
        // 23:30 local on the last day of the previous period (22:30 UTC).
        R {
            id: "P2",
            loc: "berlin",
            at: at(b, 2026, 3, 22, 23, 30),
            stars: 4.0,
            lang: "de",
            sentiment: 0.4,
            aspects: vec![],
            reply_after_h: None,
        },
        // Current period (2026-03-23 .. 04-05 local); 00:30 local is 03-22 23:30 UTC.
        R {
            id: "R0",
            loc: "berlin",
            at: at(b, 2026, 3, 23, 0, 30),
            stars: 4.0,
            lang: "en",
            sentiment: 0.6,
            aspects: vec![],
            reply_after_h: None,
        },
        R {
            id: "R1",
            loc: "berlin",
            at: at(b, 2026, 3, 24, 10, 0),
            stars: 5.0,
            lang: "de",
            sentiment: 0.8,
            aspects: vec![(Aspect::Staff, Some(0.7))],
            reply_after_h: Some(2),
        },
        // 01:30 on the night the clocks go forward.
        R {
            id: "R2",
            loc: "berlin",
            at: at(b, 2026, 3, 29, 1, 30),
            stars: 1.0,
            lang: "de",
            sentiment: -0.7,
            aspects: vec![(Aspect::WaitTime, Some(-0.8))],
            reply_after_h: Some(4),
        },
        // 23:30 summer time on the last day (21:30 UTC): inside.
        R {
            id: "R3",
            loc: "berlin",
            at: at(b, 2026, 4, 5, 23, 30),
            stars: 2.0,
            lang: "de",
            sentiment: -0.5,
            aspects: vec![(Aspect::WaitTime, Some(-0.6)), (Aspect::Staff, None)],
            reply_after_h: None,
        },
        // 00:30 local on 04-06 is still 04-05 in UTC: outside.
        R {
            id: "R4",
            loc: "berlin",
            at: at(b, 2026, 4, 6, 0, 30),
            stars: 4.0,
            lang: "de",
            sentiment: 0.5,
            aspects: vec![],
            reply_after_h: None,
        },
        R {
            id: "N1",
            loc: "nyc",
            at: at(n, 2026, 3, 25, 18, 0),
            stars: 5.0,
            lang: "en",
            sentiment: 0.9,
            aspects: vec![],
            reply_after_h: Some(1),
        },
    ];
    let all: Vec<Interaction> = rows.iter().flat_map(interactions).collect();
    db.store
        .write_batch(WriteBatch {
            interactions: all,
            ..Default::default()
        })
        .await
        .unwrap();
}

fn request(scope: Scope) -> ReportRequest {
    ReportRequest {
        scope,
        period: PeriodSpec::Dates(
            NaiveDate::from_ymd_opt(2026, 3, 23).unwrap(),
            NaiveDate::from_ymd_opt(2026, 4, 5).unwrap(),
        ),
        waiting_limit: 1000,
    }
}

async fn report_numbers_match_the_hand_computed_fixture(db: TestDb) {
    seed(&db).await;
    let config = Config::from_toml(&config(&db), "test", &Overrides::default()).unwrap();
    let now = at(chrono_tz::UTC, 2026, 4, 20, 0, 0);
    let r = report::build(
        db.store.as_ref(),
        &config,
        &request(Scope::AllLocations),
        now,
    )
    .await
    .unwrap();
    assert_eq!(r.locations.len(), 2);
    let berlin = &r.locations[0];
    assert_eq!(berlin.indicators.location_id.as_deref(), Some("berlin"));
    assert_eq!(berlin.indicators.period.from.to_string(), "2026-03-23");
    assert_eq!(
        berlin.indicators.previous_period.from.to_string(),
        "2026-03-09"
    );

    // Reviews: R0-R3 now (R4 is the next local day), P1-P2 before.
    let (cur, prev) = (&berlin.reviews.current, &berlin.reviews.previous);
    assert_eq!((cur.reviews, prev.reviews), (4, 2));
    assert_eq!((cur.responded.count, cur.responded.n), (2, 4));
    assert_eq!(cur.responded.pct, Some(50.0));
    assert_eq!(cur.response_time.median_hours, Some(3.0), "2 h and 4 h");
    assert_eq!(prev.response_time.median_hours, Some(6.0));
    assert!(cur.responded.small_sample, "4 answers < min_sample");
    let stars = &berlin.indicators.current.stars;
    assert_eq!(stars.mean.value, Some(3.0), "(4 + 5 + 1 + 2) / 4");
    assert_eq!(stars.distribution, [1, 1, 0, 1, 1]);
    assert_eq!(berlin.indicators.previous.stars.mean.value, Some(3.5));

    // Sentiment per language: de now (0.8 - 0.7 - 0.5) / 3, before (0 + 0.4) / 2.
    let de = berlin
        .sentiment_by_language
        .iter()
        .find(|g| g.key == "de")
        .unwrap();
    let mean = de.current.mean.value.unwrap();
    assert!((mean - (-0.4 / 3.0)).abs() < 1e-9, "{mean}");
    assert_eq!(de.current.negative.count, 2);
    assert!((de.previous.mean.value.unwrap() - 0.2).abs() < 1e-9);
    let en = berlin
        .sentiment_by_language
        .iter()
        .find(|g| g.key == "en")
        .unwrap();
    assert_eq!(en.current.mean.value, Some(0.6));
    assert_eq!(berlin.sentiment_by_channel[0].key, "google/review");

    // Topics rising in negative feedback: wait_time 0 -> 2 first; staff 1 -> 1.
    let neg = &berlin.topics_rising_negative;
    assert_eq!(neg[0].topic, "wait_time");
    assert_eq!((neg[0].current, neg[0].previous), (2, 0));
    assert_eq!(neg[1].topic, "staff");
    assert_eq!((neg[1].current, neg[1].previous), (1, 1));
    assert_eq!(berlin.topics_rising_positive[0].topic, "staff");

    // Waiting for an answer: R3 (2 stars) first, then the oldest: P2, R0.
    assert_eq!(berlin.waiting_total, 3);
    let ids: Vec<&str> = berlin
        .waiting
        .iter()
        .map(|w| w.external_id.as_str())
        .collect();
    assert_eq!(ids, ["R3", "P2", "R0"]);
    assert!(berlin.waiting[0].negative && !berlin.waiting[1].negative);

    // Portfolio: no composite on so few answers, so by name, none moved.
    let names: Vec<&str> = r.portfolio.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Berlin Mitte", "New York"]);
    assert!(r.portfolio.iter().all(|p| p.small_sample && !p.moved));
    assert_eq!(r.portfolio[1].reviews, 1);

    // CSV: one row per location and metric, numbers as numbers.
    let csv = report::csv::render(&r).unwrap();
    assert!(csv.starts_with("location_id,location,period_from,period_until,metric,value,previous,n,previous_n,small_sample,note\n"));
    assert!(
        csv.contains("berlin,Berlin Mitte,2026-03-23,2026-04-06,reviews,4,2,4,2,false,\n"),
        "{csv}"
    );
    assert!(
        csv.contains(
            "berlin,Berlin Mitte,2026-03-23,2026-04-06,review_response_median_hours,3,6,2,1,true,\n"
        ),
        "{csv}"
    );
    assert!(
        csv.contains("nyc,New York,2026-03-23,2026-04-06,stars_5,1,0,1,0,false,\n"),
        "{csv}"
    );
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows = reader.records().count();
    assert!(rows > 40, "{rows}");
}

/// The command writes JSON and CSV files; one location only with --location.
async fn report_command_writes_json_and_csv(db: TestDb) {
    seed(&db).await;
    let cfg = db.dir.path().join("tideline.toml");
    std::fs::write(&cfg, config(&db)).unwrap();
    for (format, file) in [("json", "r.json"), ("csv", "r.csv")] {
        let out = db.dir.path().join(file);
        let o = common::bin()
            .arg("--config")
            .arg(&cfg)
            .args([
                "report",
                "--location",
                "berlin",
                "--from",
                "2026-03-23",
                "--to",
                "2026-04-05",
                "--format",
                format,
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(!text.contains("nyc"), "{text}");
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["locations"][0]["reviews"]["current"]["reviews"], 4);
            assert_eq!(v["portfolio"][0]["location_id"], "berlin");
        } else {
            assert!(text.contains(",reviews,4,2,"), "{text}");
        }
    }
    let bad = common::bin()
        .arg("--config")
        .arg(&cfg)
        .args(["report", "--location", "paris"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("paris") && err.contains("fix:"), "{err}");
}

/// 240 hostile texts, names and URLs in the HTML report: parsed back, the page has exactly
/// the elements and attributes of the same report over harmless data, no script, no event
/// attribute, no link but the report's own anchors; the texts show as text.
async fn hostile_texts_become_text_in_the_html_report(db: TestDb) {
    let corpus = hostile_corpus();
    assert!(corpus.len() >= 200, "{}", corpus.len());
    let b = chrono_tz::Europe::Berlin;
    let write = |texts: Vec<(String, String, String)>| {
        let items: Vec<Interaction> = texts
            .into_iter()
            .enumerate()
            .flat_map(|(i, (text, author, url))| {
                let mut r = interactions(&R {
                    id: "H",
                    loc: "berlin",
                    at: at(b, 2026, 3, 24, 0, 0) + i as i64 * 60_000,
                    stars: 1.0 + (i % 5) as f64,
                    lang: "de",
                    sentiment: -0.5,
                    aspects: vec![],
                    reply_after_h: None,
                });
                let mut one = r.remove(0);
                one.external_id = format!("H{i}");
                one.text = Some(text);
                one.author_name = Some(author);
                one.url = Some(url);
                one.content_hash = content_hash(&one);
                vec![one]
            })
            .collect();
        items
    };
    let config = Config::from_toml(&config(&db), "test", &Overrides::default()).unwrap();
    let now = at(chrono_tz::UTC, 2026, 4, 20, 0, 0);
    let req = ReportRequest {
        scope: Scope::Location("berlin".into()),
        ..request(Scope::AllLocations)
    };
    // Harmless data first: the page's own structure.
    let harmless: Vec<_> = corpus
        .iter()
        .map(|_| ("x".to_string(), "x".to_string(), "x".to_string()))
        .collect();
    db.store
        .write_batch(WriteBatch {
            interactions: write(harmless),
            ..Default::default()
        })
        .await
        .unwrap();
    let r = report::build(db.store.as_ref(), &config, &req, now)
        .await
        .unwrap();
    let expected = structure(&report::html::render(&r));
    // The same interactions again, now hostile (an edit of each).
    let hostile: Vec<_> = corpus
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), corpus[(i + 7) % corpus.len()].clone(), t.clone()))
        .collect();
    db.store
        .write_batch(WriteBatch {
            interactions: write(hostile),
            ..Default::default()
        })
        .await
        .unwrap();
    let r = report::build(db.store.as_ref(), &config, &req, now)
        .await
        .unwrap();
    assert_eq!(r.locations[0].waiting.len(), corpus.len());
    let html = report::html::render(&r);
    let got = structure(&html);
    assert_eq!(got.len(), expected.len(), "element count");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
    assert!(!got.iter().any(|e| e.starts_with("script[")));
    assert!(!got.iter().any(|e| e.contains("[on") || e.contains(",on")));
    assert!(
        got.iter()
            .filter(|e| e.contains("href="))
            .all(|e| e.contains("href=#loc-"))
    );
    // What was written shows as text.
    let doc = scraper::Html::parse_document(&html);
    let text: String = doc.root_element().text().collect();
    assert!(text.contains("<script>alert(1)</script>"));
    assert!(text.contains("<img src=x onerror=alert(1)>"));
    assert!(
        text.contains("gnp.exe<b>bold</b>"),
        "bidi override dropped, text kept"
    );
    assert!(!html.contains('\u{202E}') && !html.contains('\u{2066}'));
}

/// A fake Places API (New) on 127.0.0.1: Place Details for four competitor ids. `rival_ok`
/// answers; `rival_gone` is a 404 in Google's error shape; `rival_busy` is rate limited
/// once (429 with Retry-After: 1) and then answers; `rival_quota` is always rate limited.
/// Requests without the key or the field mask are refused.
async fn fake_places() -> (String, Arc<AtomicUsize>) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    #[derive(Clone)]
    struct S {
        busy: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
    }
    async fn place(State(s): State<S>, Path(id): Path<String>, h: HeaderMap) -> Response {
        s.requests.fetch_add(1, Ordering::SeqCst);
        let error = |code: u16, status: &str, message: &str| {
            axum::Json(serde_json::json!({
                "error": {"code": code, "message": message, "status": status}
            }))
        };
        if crate::fakes::header(&h, "x-goog-api-key") != Some("places-test-key") {
            return (
                StatusCode::FORBIDDEN,
                error(403, "PERMISSION_DENIED", "API key not valid."),
            )
                .into_response();
        }
        assert_eq!(
            crate::fakes::header(&h, "x-goog-fieldmask"),
            Some("id,displayName,rating,userRatingCount")
        );
        assert!(crate::fakes::user_agent_ok(&h));
        let rate_limited = || {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                error(429, "RESOURCE_EXHAUSTED", "Quota exceeded."),
            )
                .into_response()
        };
        let found = |name: &str, rating: f64, count: u64| {
            axum::Json(serde_json::json!({
                "id": id,
                "displayName": {"text": name, "languageCode": "de"},
                "rating": rating,
                "userRatingCount": count
            }))
            .into_response()
        };
        match id.as_str() {
            "rival_ok" => found("Rival Bakery (Google)", 4.3, 1234),
            "rival_busy" if s.busy.fetch_add(1, Ordering::SeqCst) == 0 => rate_limited(),
            "rival_busy" => found("Rival Busy (Google)", 3.9, 88),
            "rival_quota" => rate_limited(),
            _ => (
                StatusCode::NOT_FOUND,
                error(404, "NOT_FOUND", "Place not found."),
            )
                .into_response(),
        }
    }
    let requests = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/v1/places/{id}", axum::routing::get(place))
        .with_state(S {
            busy: Arc::new(AtomicUsize::new(0)),
            requests: requests.clone(),
        });
    (crate::fakes::serve(app).await, requests)
}

fn competitor_config(db: &TestDb, places: Option<&str>) -> String {
    let mut c = config(db).replace(
        "country = \"DE\"\n",
        "country = \"DE\"\n\
         [[location.competitor]]\nplace_id = \"rival_ok\"\nname = \"Rival Bakery\"\n\
         [[location.competitor]]\nplace_id = \"rival_gone\"\nname = \"Rival Closed\"\n\
         [[location.competitor]]\nplace_id = \"rival_busy\"\nname = \"Rival Busy\"\n\
         [[location.competitor]]\nplace_id = \"rival_quota\"\nname = \"Rival Quota\"\n",
    );
    if let Some(p) = places {
        c.push_str(p);
    }
    c
}

/// Every text the store holds, lower-cased: the SQLite files' bytes, or each PostgreSQL
/// table's rows as text.
async fn everything_stored(db: &TestDb) -> String {
    if db.url.expose().starts_with("sqlite:") {
        let mut all = String::new();
        for e in std::fs::read_dir(db.dir.path()).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("t.db") {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
        return all.to_lowercase();
    }
    let pool = sqlx::PgPool::connect(db.url.expose()).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "interactions"), "{tables:?}");
    let mut all = String::new();
    for t in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT x::text FROM {t} x")))
                .fetch_all(&pool)
                .await
                .unwrap();
        all.push_str(&rows.join("\n"));
    }
    all.to_lowercase()
}

/// Competitors' ratings and review counts are fetched while the report is built and
/// shown beside the location's own; a 404 and an exhausted quota show as unavailable
/// with the reason, a 429 that clears is waited out; nothing fetched reaches the store.
async fn competitors_are_fetched_for_the_report_and_never_stored(db: TestDb) {
    seed(&db).await;
    let (base, requests) = fake_places().await;
    let key = crate::fakes::secret_file(db.dir.path(), "places.key", "places-test-key");
    let places = format!(
        "[places]\napi_key_file = \"{}\"\nbase_url = \"{base}\"\nmax_retries = 1\nmax_wait_secs = 5\n",
        key.display()
    );
    let text = competitor_config(&db, Some(&places));
    let config = Config::from_toml(&text, "test", &Overrides::default()).unwrap();
    let before = (
        db.store.counts().await.unwrap(),
        db.store.fingerprint().await.unwrap(),
    );
    let now = at(chrono_tz::UTC, 2026, 4, 20, 0, 0);
    let mut r = report::build(
        db.store.as_ref(),
        &config,
        &request(Scope::AllLocations),
        now,
    )
    .await
    .unwrap();
    tideline::competitors::add_to(&mut r, &config, &|| now).await;

    let berlin = &r.locations[0];
    let c = berlin
        .competitors
        .as_ref()
        .expect("berlin names competitors");
    assert_eq!(c.own_rating, Some(3.0), "the period's own stars");
    assert_eq!(c.own_reviews, 4);
    let by_id = |id: &str| c.places.iter().find(|p| p.place_id == id).unwrap();
    let ok = by_id("rival_ok");
    assert_eq!(ok.name, "Rival Bakery");
    assert_eq!((ok.rating, ok.reviews), (Some(4.3), Some(1234)));
    assert_eq!(ok.fetched_at.as_deref(), Some("2026-04-20T00:00:00Z"));
    assert_eq!(ok.unavailable, None);
    let busy = by_id("rival_busy");
    assert_eq!((busy.rating, busy.reviews), (Some(3.9), Some(88)));
    let gone = by_id("rival_gone");
    assert_eq!(
        (gone.rating, gone.reviews, &gone.fetched_at),
        (None, None, &None)
    );
    let reason = gone.unavailable.as_deref().unwrap();
    assert!(
        reason.contains("404") && reason.contains("NOT_FOUND"),
        "{reason}"
    );
    let quota = by_id("rival_quota").unavailable.as_deref().unwrap();
    assert!(quota.contains("429"), "{quota}");
    assert!(r.locations[1].competitors.is_none(), "nyc names none");
    // 1 + 1 + 2 + 2 requests (each 429 retried once).
    assert_eq!(requests.load(Ordering::SeqCst), 6);

    // JSON, HTML and CSV carry the figures.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["locations"][0]["competitors"]["places"][0]["rating"],
        4.3
    );
    assert!(json["locations"][1].get("competitors").is_none());
    let html = report::html::render(&r);
    assert!(
        html.contains("<h3 id=\"competitors\">Competitors</h3>"),
        "{html}"
    );
    assert!(html.contains("Rival Bakery (Google, all time)</td><td class=\"n\">4.3</td><td class=\"n\">1234</td><td>2026-04-20T00:00:00Z</td>"), "{html}");
    assert!(html.contains("Rival Closed</td><td colspan=\"3\" class=\"muted\">unavailable: places rival_gone: HTTP 404: NOT_FOUND: Place not found.</td>"), "{html}");
    let csv = report::csv::render(&r).unwrap();
    assert!(
        csv.contains("berlin,Berlin Mitte,2026-03-23,2026-04-06,competitor_rating:rival_ok,4.3,,1234,0,false,\"Rival Bakery: Google, fetched at 2026-04-20T00:00:00Z\"\n"),
        "{csv}"
    );
    assert!(csv.contains("competitor_reviews:rival_gone,,,0,0,false,Rival Closed: unavailable: places rival_gone: HTTP 404"), "{csv}");

    // The command does the same (HTML here); the key never shows.
    let cfg = db.dir.path().join("tideline.toml");
    std::fs::write(&cfg, &text).unwrap();
    let out = db.dir.path().join("r.html");
    let o = common::bin()
        .arg("--config")
        .arg(&cfg)
        .args([
            "report",
            "--location",
            "berlin",
            "--from",
            "2026-03-23",
            "--to",
            "2026-04-05",
            "--format",
            "html",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(
        page.contains("<td class=\"n\">4.3</td><td class=\"n\">1234</td>"),
        "{page}"
    );
    assert!(
        page.contains("unavailable: places rival_quota: rate limited (HTTP 429)"),
        "{page}"
    );
    assert!(!page.contains("places-test-key"));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("places-test-key"));

    // Nothing fetched, and no competitor id or name, is in the store.
    let after = (
        db.store.counts().await.unwrap(),
        db.store.fingerprint().await.unwrap(),
    );
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
    let stored = everything_stored(&db).await;
    assert!(stored.contains("review r1"), "the scan sees stored text");
    for needle in ["rival", "places-test-key"] {
        assert!(!stored.contains(needle), "`{needle}` is stored");
    }

    // Without [places]: the same report, competitors unavailable, no request.
    let sent = requests.load(Ordering::SeqCst);
    let config =
        Config::from_toml(&competitor_config(&db, None), "test", &Overrides::default()).unwrap();
    let mut plain = report::build(
        db.store.as_ref(),
        &config,
        &request(Scope::AllLocations),
        now,
    )
    .await
    .unwrap();
    tideline::competitors::add_to(&mut plain, &config, &|| now).await;
    let c = plain.locations[0].competitors.as_ref().unwrap();
    assert!(c.places.iter().all(|p| {
        p.unavailable
            .as_deref()
            .is_some_and(|u| u.contains("[places]"))
    }));
    assert_eq!(requests.load(Ordering::SeqCst), sent);
}

on_both_backends!(
    report_numbers_match_the_hand_computed_fixture,
    report_command_writes_json_and_csv,
    hostile_texts_become_text_in_the_html_report,
    competitors_are_fetched_for_the_report_and_never_stored
);
