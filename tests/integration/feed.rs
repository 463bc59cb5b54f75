//! The RSS/Atom feed connector (issue 6) against a fake publisher on 127.0.0.1 serving an
//! RSS 2.0, an Atom and an RSS 1.0 (RDF) feed and an empty one: entity-escaped and CDATA
//! HTML, RFC 822 dates as feeds write them, unknown elements and namespaces, malformed
//! entries among good ones, 429 with `Retry-After` in seconds, as an HTTP date and with
//! nothing, a 500 that recovers, an HTML page where the feed was expected, conditional
//! requests answered 304 and a server that ignores them. Asserted: each entry stored once,
//! the waits measured against what the server asked for, a re-run of unchanged feeds
//! fetching nothing, and an updated feed bringing only its new entry.

use crate::common::{self, TestDb};
use crate::fakes::{self, find, header, stored, user_agent_ok};
use crate::on_both_backends;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tideline::config::{Config, Overrides};
use tideline::connectors::files::{self, Item, Preset};
use tideline::metrics::Metrics;

/// What the fake answers instead of the feed at a given request.
#[derive(Debug, Clone, Copy)]
enum Trouble {
    /// 429 with `Retry-After: <secs>`.
    RetryAfter(u64),
    /// 429 with `Retry-After` as an HTTP date this many seconds ahead.
    RetryAt(i64),
    /// 429 with no hint.
    Bare,
    /// 500, then the next attempt works.
    Error500,
    /// 200 with an HTML page.
    Html,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    status: u16,
}

#[derive(Default)]
struct Route {
    body: String,
    etag: Option<String>,
    last_modified: Option<String>,
    troubles: HashMap<usize, Trouble>,
    log: Vec<Seen>,
}

#[derive(Clone, Default)]
struct Fake {
    routes: Arc<Mutex<HashMap<String, Route>>>,
}

impl Fake {
    fn add(&self, name: &str, body: String, etag: Option<&str>, last_modified: Option<&str>) {
        self.routes.lock().unwrap().insert(
            name.to_string(),
            Route {
                body,
                etag: etag.map(str::to_string),
                last_modified: last_modified.map(str::to_string),
                ..Default::default()
            },
        );
    }

    fn trouble(&self, name: &str, n: usize, t: Trouble) {
        self.routes
            .lock()
            .unwrap()
            .get_mut(name)
            .unwrap()
            .troubles
            .insert(n, t);
    }

    fn update(&self, name: &str, body: String, etag: Option<&str>) {
        let mut routes = self.routes.lock().unwrap();
        let r = routes.get_mut(name).unwrap();
        r.body = body;
        r.etag = etag.map(str::to_string);
    }

    fn log(&self, name: &str) -> Vec<Seen> {
        self.routes.lock().unwrap()[name].log.clone()
    }

    /// The time between request `n` of a feed and the next, within [min, max] seconds.
    fn assert_gap(&self, name: &str, n: usize, min: f64, max: f64) {
        let log = self.log(name);
        let g = (log[n + 1].at - log[n].at).as_secs_f64();
        eprintln!("{name}: waited {g:.3} s after request {n} (expected {min} to {max} s)");
        assert!(
            g >= min && g <= max,
            "{name}: the wait after request {n} took {g:.3} s, expected {min} to {max} s"
        );
    }
}

async fn feed(State(f): State<Fake>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if !user_agent_ok(&headers) {
        return (StatusCode::BAD_REQUEST, "no user agent").into_response();
    }
    let mut routes = f.routes.lock().unwrap();
    let Some(r) = routes.get_mut(&name) else {
        return (StatusCode::NOT_FOUND, "no such feed").into_response();
    };
    let n = r.log.len();
    let inm = header(&headers, "if-none-match").map(str::to_string);
    let ims = header(&headers, "if-modified-since").map(str::to_string);
    let resp = match r.troubles.remove(&n) {
        Some(Trouble::RetryAfter(s)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", s.to_string())],
            "slow down",
        )
            .into_response(),
        Some(Trouble::RetryAt(s)) => {
            let at = (chrono::Utc::now() + chrono::Duration::seconds(s))
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", at)], "slow down").into_response()
        }
        Some(Trouble::Bare) => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
        Some(Trouble::Error500) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
        Some(Trouble::Html) => (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><h1>Checking your browser</h1></body></html>",
        )
            .into_response(),
        None => {
            let fresh_etag = r.etag.is_some() && inm.is_some() && inm == r.etag;
            let fresh_date = r.last_modified.is_some() && ims.is_some() && ims == r.last_modified;
            if fresh_etag || fresh_date {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                let mut resp = (
                    StatusCode::OK,
                    [("content-type", "application/xml; charset=utf-8")],
                    r.body.clone(),
                )
                    .into_response();
                if let Some(e) = &r.etag {
                    resp.headers_mut().insert("etag", e.parse().unwrap());
                }
                if let Some(l) = &r.last_modified {
                    resp.headers_mut().insert("last-modified", l.parse().unwrap());
                }
                resp
            }
        }
    };
    r.log.push(Seen {
        at: Instant::now(),
        if_none_match: inm,
        if_modified_since: ims,
        status: resp.status().as_u16(),
    });
    resp
}

async fn start(f: Fake) -> String {
    fakes::serve(
        axum::Router::new()
            .route("/feeds/{name}", axum::routing::get(feed))
            .with_state(f),
    )
    .await
}

fn rss_item(n: u32) -> String {
    format!(
        "<item><title>New entry {n}</title><link>https://news.example/acme/{n}</link><guid>https://news.example/acme/{n}</guid>\
         <pubDate>Wed, 0{n} Jul 2025 08:00:00 GMT</pubDate><description>Acme opened store {n}. Lovely staff.</description></item>"
    )
}

/// RSS 2.0: four good items (a permalink guid with entity-escaped HTML and an unknown
/// namespaced element, a non-permalink guid with CDATA and a sloppy date, a link only, a
/// title and date only) and two bad ones (an unreadable date; nothing to key it by).
fn rss(extra: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:acme="urn:x-acme:reviews">
<channel>
  <title>News about Acme</title>
  <link>https://news.example/acme</link>
  <description>Search results</description>
  <acme:generator version="3">indexer</acme:generator>
  {extra}
  <item>
    <title>Acme coffee: cold again</title>
    <link>https://news.example/acme/1</link>
    <guid isPermaLink="true">https://news.example/acme/1</guid>
    <pubDate>Tue, 03 Jun 2025 09:05:00 GMT</pubDate>
    <dc:creator>Ana Example</dc:creator>
    <description>&lt;p&gt;The coffee was &lt;b&gt;cold&lt;/b&gt; &amp;amp; the staff rude.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;</description>
    <acme:sentiment score="-2">negative</acme:sentiment>
  </item>
  <item>
    <title>Great service at Acme</title>
    <link>https://news.example/acme/2</link>
    <guid isPermaLink="false">4711</guid>
    <pubDate>Mon, 3 Jun 2025 9:05:00 EST</pubDate>
    <author>bob@example.com (Bob Builder)</author>
    <description><![CDATA[<p>Friendly people, <i>excellent</i> cake &amp; coffee.</p>]]></description>
  </item>
  <item>
    <title>Acme opens a new store</title>
    <link>https://news.example/acme/3</link>
    <pubDate>Tue, 03 Jun 2025 10:00:00 +0200</pubDate>
    <description>Opening day was busy.</description>
  </item>
  <item>
    <title>A note on Acme</title>
    <pubDate>Tue, 03 Jun 2025 11:00:00 GMT</pubDate>
    <description>Queue was long.</description>
  </item>
  <item>
    <title>Broken date</title>
    <guid>https://news.example/acme/5</guid>
    <pubDate>sometime last week</pubDate>
    <description>Unreadable.</description>
  </item>
  <item>
    <pubDate>Tue, 03 Jun 2025 12:00:00 GMT</pubDate>
    <description>No title, no link, no guid.</description>
  </item>
</channel>
</rss>
"#
    )
}

fn atom() -> String {
    r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:georss="http://www.georss.org/georss">
  <title>Acme blog comments</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2025-06-04T12:00:00Z</updated>
  <entry>
    <title type="html">Acme &amp;lt;3</title>
    <id>tag:blog.example,2025:comment-1</id>
    <link rel="alternate" href="https://blog.example/c/1"/>
    <link rel="replies" href="https://blog.example/c/1/replies"/>
    <published>2025-06-04T10:00:00+02:00</published>
    <updated>2025-06-04T10:00:00+02:00</updated>
    <author><name>Cleo</name><uri>https://blog.example/u/cleo</uri></author>
    <content type="html">&lt;p&gt;Best croissants in town.&lt;br/&gt;Will come back.&lt;/p&gt;</content>
    <georss:point>53.55 9.99</georss:point>
  </entry>
  <entry>
    <title>Slow checkout</title>
    <id>tag:blog.example,2025:comment-2</id>
    <link href="https://blog.example/c/2"/>
    <updated>2025-06-04T11:00:00Z</updated>
    <author><name>Dan</name></author>
    <summary>Waited 20 minutes at the till.</summary>
  </entry>
  <entry>
    <title>XHTML content</title>
    <id>tag:blog.example,2025:comment-3</id>
    <updated>2025-06-04T11:30:00Z</updated>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Nice <em>terrace</em>.</p></div></content>
  </entry>
</feed>
"#
    .to_string()
}

fn rdf(extra: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://forum.example/acme.rdf">
    <title>Forum: Acme</title>
    <link>https://forum.example/acme</link>
    <description>Threads</description>
    <items><rdf:Seq><rdf:li resource="https://forum.example/t/1"/></rdf:Seq></items>
  </channel>
  {extra}
  <item rdf:about="https://forum.example/t/1">
    <title>Acme Hamburg review</title>
    <link>https://forum.example/t/1</link>
    <description>Decent food, slow service.</description>
    <dc:date>2025-06-05T08:00:00Z</dc:date>
    <dc:creator>eve</dc:creator>
  </item>
  <item rdf:about="https://forum.example/t/2">
    <title>Acme again</title>
    <link>https://forum.example/t/2</link>
    <description>Clean tables.</description>
    <dc:date>2025-06-05T09:00:00Z</dc:date>
  </item>
</rdf:RDF>
"#
    )
}

fn empty() -> String {
    r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Nothing yet</title><link>https://quiet.example/</link><description/></channel></rss>"#.to_string()
}

fn config(db: &TestDb, connector: &str) -> String {
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

fn parse(text: &str) -> Config {
    Config::from_toml(text, "test", &Overrides::default()).unwrap()
}

/// Every external id once, as many as expected, all mentions.
async fn assert_each_once(db: &TestDb, expected: usize) -> Vec<tideline::model::Interaction> {
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
    all
}

/// Three dialects and an empty feed in one connector; a 429 with `Retry-After` seconds,
/// one with an HTTP date, a bare one and a 500, each waited out; two malformed RSS items
/// quarantined; the second run is answered 304 (ETag, Last-Modified) or, where the server
/// ignores conditional requests, skipped by the high-water mark: nothing fetched. Then
/// one new entry in RSS and RDF each: only those are new.
async fn feeds_three_dialects_waits_conditional_rerun_and_update(db: TestDb) {
    let fake = Fake::default();
    fake.add("rss.xml", rss(""), Some("\"rss-v1\""), None);
    fake.add(
        "atom.xml",
        atom(),
        None,
        Some("Wed, 04 Jun 2025 12:00:00 GMT"),
    );
    fake.add("rdf.xml", rdf(""), None, None); // ignores conditional requests
    fake.add("empty.xml", empty(), None, None);
    fake.trouble("rss.xml", 0, Trouble::RetryAfter(1));
    fake.trouble("atom.xml", 0, Trouble::RetryAt(2));
    fake.trouble("rdf.xml", 0, Trouble::Bare);
    fake.trouble("empty.xml", 0, Trouble::Error500);
    let base = start(fake.clone()).await;
    let config = parse(&config(
        &db,
        &format!(
            r#"
[[connector]]
kind = "feed"
name = "press"
location = "berlin-mitte"
max_wait_secs = 10
[[connector.feed]]
url = "{base}/feeds/rss.xml"
location = "hamburg"
[[connector.feed]]
url = "{base}/feeds/atom.xml"
[[connector.feed]]
url = "{base}/feeds/rdf.xml"
[[connector.feed]]
url = "{base}/feeds/empty.xml"
"#
        ),
    ));
    let metrics = Arc::new(Metrics::new());
    let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
    assert_eq!(
        (
            report.pages,
            report.fetched,
            report.inserted,
            report.quarantined
        ),
        (4, 11, 9, 2),
        "{report}"
    );
    fake.assert_gap("rss.xml", 0, 0.95, 2.0);
    fake.assert_gap("atom.xml", 0, 0.95, 2.6); // the date has whole seconds: 1 to 2 s
    fake.assert_gap("rdf.xml", 0, 0.95, 1.6); // backoff: 1 s plus jitter
    fake.assert_gap("empty.xml", 0, 0.95, 1.6);

    let all = assert_each_once(&db, 9).await;
    let first = find(&all, "https://news.example/acme/1");
    assert_eq!(
        first.text.as_deref(),
        Some("Acme coffee: cold again\n\nThe coffee was cold & the staff rude.")
    );
    assert_eq!(first.author_name.as_deref(), Some("Ana Example"));
    assert_eq!(first.location_id.as_deref(), Some("hamburg"));
    assert_eq!(first.url.as_deref(), Some("https://news.example/acme/1"));
    assert!(first.raw.contains("acme:sentiment") && first.raw.contains("urn:x-acme:reviews"));
    assert_eq!(
        first.occurred_at_ms,
        chrono::DateTime::parse_from_rfc3339("2025-06-03T09:05:00Z")
            .unwrap()
            .timestamp_millis()
    );
    let cdata = find(&all, &format!("{base}/feeds/rss.xml#4711"));
    assert_eq!(
        cdata.text.as_deref(),
        Some("Great service at Acme\n\nFriendly people, excellent cake & coffee.")
    );
    assert_eq!(cdata.author_name.as_deref(), Some("Bob Builder"));
    // "Mon, 3 Jun 2025 9:05:00 EST": a wrong weekday and a one-digit hour, read anyway.
    assert_eq!(
        cdata.occurred_at_ms,
        chrono::DateTime::parse_from_rfc3339("2025-06-03T14:05:00Z")
            .unwrap()
            .timestamp_millis()
    );
    find(&all, "https://news.example/acme/3");
    assert!(all.iter().any(|i| {
        i.external_id
            .starts_with(&format!("{base}/feeds/rss.xml#sha256:"))
    }));
    let cleo = find(&all, "tag:blog.example,2025:comment-1");
    assert_eq!(
        cleo.text.as_deref(),
        Some("Acme <3\n\nBest croissants in town.\nWill come back.")
    );
    assert_eq!(cleo.location_id.as_deref(), Some("berlin-mitte"));
    assert_eq!(cleo.url.as_deref(), Some("https://blog.example/c/1"));
    assert!(
        cleo.identities
            .iter()
            .any(|x| x.value == "feed:https://blog.example/u/cleo")
    );
    assert!(cleo.raw.contains("georss:point"));
    assert_eq!(
        find(&all, "tag:blog.example,2025:comment-3")
            .text
            .as_deref(),
        Some("XHTML content\n\nNice terrace.")
    );
    let forum = find(&all, "https://forum.example/t/1");
    assert_eq!(forum.author_name.as_deref(), Some("eve"));
    assert!(
        all.iter()
            .all(|i| !i.text.as_deref().unwrap_or("").contains("<p>"))
    );

    let q = db.store.quarantine(None).await.unwrap();
    assert_eq!(q.len(), 2);
    assert!(q.iter().all(|i| i.entry.preset == "feed-json"
        && i.entry.error.origin == format!("feed {base}/feeds/rss.xml")));
    let mut bad: Vec<(Option<u64>, Option<String>)> = q
        .iter()
        .map(|i| (i.entry.error.line, i.entry.error.field.clone()))
        .collect();
    bad.sort();
    assert_eq!(
        bad,
        [
            (Some(5), Some("pubDate".to_string())),
            (Some(6), Some("guid".to_string()))
        ]
    );
    // A quarantined entry replays with its preset: the same reading, the same problem.
    let Item::Reject(again) = files::record_from_raw(
        &q[0].entry.error.raw,
        "replay",
        None,
        Preset::FeedJson,
        None,
    ) else {
        panic!("a malformed entry replayed as a record")
    };
    assert_eq!(again.field, q[0].entry.error.field);
    let Item::Record(r) = files::record_from_raw(&cleo.raw, "replay", None, Preset::FeedJson, None)
    else {
        panic!("a stored entry does not replay")
    };
    assert_eq!(
        r.fields[&tideline::pipeline::Field::ExternalId],
        "tag:blog.example,2025:comment-1"
    );

    // Unchanged: 304 where the server honours conditional requests, the mark elsewhere.
    let again = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
    assert_eq!(
        (
            again.pages,
            again.fetched,
            again.inserted,
            again.updated,
            again.quarantined
        ),
        (4, 0, 0, 0, 0),
        "{again}"
    );
    let rss_log = fake.log("rss.xml");
    let last = rss_log.last().unwrap();
    assert_eq!(
        (last.if_none_match.as_deref(), last.status),
        (Some("\"rss-v1\""), 304)
    );
    let atom_log = fake.log("atom.xml");
    let last = atom_log.last().unwrap();
    assert_eq!(
        (last.if_modified_since.as_deref(), last.status),
        (Some("Wed, 04 Jun 2025 12:00:00 GMT"), 304)
    );
    assert_eq!(fake.log("rdf.xml").last().unwrap().status, 200);
    assert_eq!(stored(&db).await.len(), 9);

    // One new entry in RSS (a new ETag) and in RDF: only those two.
    fake.update("rss.xml", rss(&rss_item(7)), Some("\"rss-v2\""));
    fake.update(
        "rdf.xml",
        rdf(r#"<item rdf:about="https://forum.example/t/3"><title>Acme news</title><link>https://forum.example/t/3</link><dc:date>2025-06-06T08:00:00Z</dc:date></item>"#),
        None,
    );
    let third = fakes::sync(&db, &config, metrics).await.unwrap();
    assert_eq!(
        (
            third.pages,
            third.fetched,
            third.inserted,
            third.updated,
            third.quarantined
        ),
        (4, 2, 2, 0, 0),
        "{third}"
    );
    let all = assert_each_once(&db, 11).await;
    find(&all, "https://news.example/acme/7");
    find(&all, "https://forum.example/t/3");
    assert_eq!(db.store.quarantine(None).await.unwrap().len(), 2);
}

/// An HTML page where the feed was expected fails the run with an error naming the
/// connector and the feed (never the token in its query); nothing is stored and the next
/// run, through the binary's `tideline sync NAME`, reads the feed and prints what it
/// fetched.
async fn feed_html_page_then_recovers_through_the_binary(db: TestDb) {
    let fake = Fake::default();
    fake.add("rss.xml", rss(""), Some("\"rss-v1\""), None);
    fake.trouble("rss.xml", 0, Trouble::Html);
    let base = start(fake.clone()).await;
    let text = config(
        &db,
        &format!(
            r#"
[[connector]]
kind = "feed"
name = "news"
url = "{base}/feeds/rss.xml?token=s3cret-feed-token"
"#
        ),
    );
    let cfg = parse(&text);
    let err = fakes::sync(&db, &cfg, Arc::new(Metrics::new()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("news")
            && err.contains(&format!("{base}/feeds/rss.xml"))
            && err.contains("HTML page"),
        "{err}"
    );
    assert!(!err.contains("s3cret-feed-token"), "{err}");
    assert_eq!(db.store.counts().await.unwrap().interactions, 0);
    assert_eq!(db.store.cursor("news").await.unwrap(), None);

    let path = db.dir.path().join("tideline.toml");
    std::fs::write(&path, &text).unwrap();
    let out = common::bin()
        .arg("--config")
        .arg(&path)
        .args(["sync", "news"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("news: 1 pages, 6 fetched, 4 new") && stdout.contains("2 quarantined"),
        "{stdout}"
    );
    let log = fake.log("rss.xml");
    assert_eq!(log.len(), 2);
    assert!(log[1].if_none_match.is_none());
    let all = assert_each_once(&db, 4).await;
    let cursor = db.store.cursor("news").await.unwrap().unwrap();
    assert!(cursor.contains("rss-v1"), "{cursor}");
    let q = db.store.quarantine(None).await.unwrap();
    for text in all
        .iter()
        .map(|i| i.raw.as_str())
        .chain(q.iter().map(|i| i.entry.error.raw.as_str()))
        .chain([cursor.as_str()])
    {
        assert!(!text.contains("s3cret-feed-token"), "{text}");
    }
    // Unchanged: 304.
    let again = fakes::sync(&db, &cfg, Arc::new(Metrics::new()))
        .await
        .unwrap();
    assert_eq!((again.fetched, again.inserted), (0, 0), "{again}");
    assert_eq!(fake.log("rss.xml")[2].status, 304);
}

on_both_backends!(
    feeds_three_dialects_waits_conditional_rerun_and_update,
    feed_html_page_then_recovers_through_the_binary
);
