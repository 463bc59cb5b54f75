//! Email digests (issue 10) against an SMTP server embedded in the test on 127.0.0.1 port
//! 0: headers, both MIME parts, content in each recipient's zone and language, hostile
//! review text and location names escaped and never markup or a header; sent once per
//! (recipient, period) across repeated runs and two racing instances, and a failing
//! server leaves the digest unsent and retried. Both backends.

use crate::common::{TestDb, bin};
use crate::on_both_backends;
use chrono::TimeZone;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tideline::config::{Config, Overrides};
use tideline::digest::{self, Outcome};
use tideline::model::{Interaction, InteractionKind, Sentiment, SentimentLabel};
use tideline::pipeline::normalize::content_hash;
use tideline::store::{AnalysisWrite, ChangeRecord, DigestClaim, WriteBatch};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

// --- a small SMTP server: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT ---

#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent (dot-unstuffed), CRLF line ends.
    pub data: String,
}

pub struct SmtpServer {
    pub port: u16,
    pub messages: Arc<Mutex<Vec<Received>>>,
    /// When set, MAIL FROM is answered 451 (a temporary failure) and nothing is kept.
    pub fail: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages: Arc<Mutex<Vec<Received>>> = Arc::default();
        let fail = Arc::new(AtomicBool::new(false));
        let (m, f) = (messages.clone(), fail.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (m, f) = (m.clone(), f.clone());
                tokio::spawn(async move {
                    let _ = session(sock, m, f).await;
                });
            }
        });
        SmtpServer {
            port,
            messages,
            fail,
            task,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }
}

async fn session(
    sock: tokio::net::TcpStream,
    messages: Arc<Mutex<Vec<Received>>>,
    fail: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 test.localhost ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            w.write_all(b"250-test.localhost\r\n250 HELP\r\n").await?;
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            w.write_all(b"250 ok\r\n").await?;
        } else if upper.starts_with("RSET") {
            from.clear();
            rcpt.clear();
            w.write_all(b"250 ok\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            if fail.load(Ordering::SeqCst) {
                w.write_all(b"451 4.3.0 try again later\r\n").await?;
            } else {
                from = cmd[10..].to_string();
                w.write_all(b"250 ok\r\n").await?;
            }
        } else if upper.starts_with("RCPT TO:") {
            rcpt.push(cmd[8..].to_string());
            w.write_all(b"250 ok\r\n").await?;
        } else if upper == "DATA" {
            w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            messages.lock().unwrap().push(Received {
                mail_from: std::mem::take(&mut from),
                rcpt_to: std::mem::take(&mut rcpt),
                data,
            });
            w.write_all(b"250 2.0.0 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            w.write_all(b"502 5.5.2 not implemented\r\n").await?;
        }
    }
}

// --- reading a received message ---

fn b64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let Some(v) = A.iter().position(|a| *a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 2047 encoded words (`=?utf-8?b?...?=`) decoded; adjacent words joined.
fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut last_encoded = false;
    for token in v.split_whitespace() {
        let lower = token.to_ascii_lowercase();
        if lower.starts_with("=?utf-8?b?") && token.ends_with("?=") {
            if !out.is_empty() && !last_encoded {
                out.push(' ');
            }
            out.push_str(&String::from_utf8(b64(&token[10..token.len() - 2])).unwrap());
            last_encoded = true;
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(token);
            last_encoded = false;
        }
    }
    out
}

/// Header lines (unfolded) and the body.
fn split(msg: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = msg.split_once("\r\n\r\n").unwrap();
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in head.split("\r\n") {
        if l.starts_with(' ') || l.starts_with('\t') {
            headers.last_mut().unwrap().1.push_str(l);
        } else {
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.to_string(), v.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

struct Mail {
    headers: Vec<(String, String)>,
    subject: String,
    text: String,
    html: String,
}

fn read_mail(r: &Received) -> Mail {
    let (headers, body) = split(&r.data);
    let ct = header(&headers, "Content-Type").unwrap().to_string();
    assert!(ct.starts_with("multipart/alternative"), "{ct}");
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_string();
    let mut text = None;
    let mut html = None;
    for part in body.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let (ph, pb) = split(part.trim_start_matches("\r\n"));
        assert_eq!(
            header(&ph, "Content-Transfer-Encoding"),
            Some("base64"),
            "{ph:?}"
        );
        let decoded = String::from_utf8(b64(&pb)).unwrap();
        let pct = header(&ph, "Content-Type").unwrap();
        if pct.starts_with("text/plain") {
            text = Some(decoded);
        } else if pct.starts_with("text/html") {
            html = Some(decoded);
        }
    }
    Mail {
        subject: decode_words(header(&headers, "Subject").unwrap()),
        headers,
        text: text.expect("a text/plain part"),
        html: html.expect("a text/html part"),
    }
}

/// Every tag of an HTML document as (name, attribute names); fails on anything that is
/// not a plain tag (a comment, a script).
fn tags(html: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').unwrap();
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('/') {
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let mut attrs = Vec::new();
        let mut s = &tag[name.len()..];
        loop {
            s = s.trim_start();
            if s.is_empty() {
                break;
            }
            let k: String = s
                .chars()
                .take_while(|c| *c != '=' && !c.is_whitespace())
                .collect();
            s = &s[k.len()..];
            if let Some(r) = s.strip_prefix("=\"") {
                let close = r.find('"').unwrap();
                s = &r[close + 1..];
            }
            attrs.push(k);
        }
        out.push((name, attrs));
    }
    out
}

const ALLOWED_TAGS: &[&str] = &[
    "html", "head", "meta", "title", "body", "div", "h1", "h2", "h3", "p", "strong", "span",
    "table", "tr", "th", "td", "ul", "li", "a",
];
const ALLOWED_ATTRS: &[&str] = &[
    "lang", "charset", "name", "content", "style", "role", "href", "rel",
];

fn assert_no_data_born_html(html: &str) {
    for (name, attrs) in tags(html) {
        assert!(
            ALLOWED_TAGS.contains(&name.as_str()),
            "tag <{name}> in {html}"
        );
        for a in attrs {
            assert!(
                ALLOWED_ATTRS.contains(&a.as_str()),
                "attribute {a} on <{name}>"
            );
        }
    }
    for href in html.split("href=\"").skip(1) {
        assert!(href.starts_with("https://"), "{href}");
    }
    let lower = html.to_lowercase();
    for bad in ["<script", "<img", "javascript:", "<style"] {
        assert!(!lower.contains(bad), "{bad} in the HTML part");
    }
}

// --- the fixture ---

/// Local wall time as UTC milliseconds.
fn at(tz: chrono_tz::Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    tz.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis()
}

const BERLIN: chrono_tz::Tz = chrono_tz::Europe::Berlin;
const NEW_YORK: chrono_tz::Tz = chrono_tz::America::New_York;
const HOSTILE_TEXT: &str =
    "<script>alert(\"x\")</script> Kaffee kalt\r\nBcc: evil@example.test <b onmouseover=x>";
const HOSTILE_NAME: &str = "Mitte <b>\r\nBcc: x@evil.test</b>";

/// Monday 30 March 2026, 15:00 in Berlin, 09:00 in New York: Anna's daily digest (08:00
/// Berlin) is due for Sunday 29 March, the day summer time began; Bob's weekly one (Monday
/// 08:00 New York) for 23-29 March.
fn now() -> i64 {
    at(BERLIN, 2026, 3, 30, 15, 0)
}

fn config_text(db_url: &str, port: u16) -> String {
    format!(
        r#"
[storage]
database_url = "{db_url}"
[pipeline]
sentiment_adapt = false
[[location]]
id = "berlin"
name = "{}"
timezone = "Europe/Berlin"
[[location]]
id = "nyc"
name = "New York"
timezone = "America/New_York"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
from = "Tideline <digest@example.test>"
timeout_secs = 5
[[digest.recipient]]
email = "anna@example.test"
name = "Anna <Schmidt>"
scope = ["berlin"]
language = "de"
time_zone = "Europe/Berlin"
schedule = "daily"
hour = 8
[[digest.recipient]]
email = "bob@example.test"
name = "Bob"
scope = "all"
language = "en"
time_zone = "America/New_York"
schedule = "weekly"
weekday = "mon"
hour = 8
"#,
        HOSTILE_NAME.replace('\r', "\\r").replace('\n', "\\n")
    )
}

fn config(db: &TestDb, port: u16) -> Config {
    Config::from_toml(
        &config_text(db.url.expose(), port),
        "digest-test",
        &Overrides::default(),
    )
    .unwrap()
}

fn review(
    id: &str,
    loc: &str,
    at_ms: i64,
    stars: f64,
    text: &str,
    url: &str,
    author: &str,
) -> Interaction {
    let negative = stars <= 2.0;
    let mut i = Interaction {
        source: "google".into(),
        external_id: id.into(),
        kind: InteractionKind::Review,
        parent_external_id: None,
        occurred_at_ms: at_ms,
        updated_at_ms: Some(at_ms),
        location_id: Some(loc.into()),
        author_name: Some(author.into()),
        identities: vec![],
        text: Some(text.into()),
        language: Some("de".into()),
        language_confidence: Some(0.9),
        stars: Some(stars),
        nps: None,
        csat: None,
        ces: None,
        status: None,
        sentiment: Some(Sentiment {
            score: if negative { -0.8 } else { 0.8 },
            label: if negative {
                SentimentLabel::Negative
            } else {
                SentimentLabel::Positive
            },
            confidence: 0.9,
            model: "test".into(),
        }),
        aspects: vec![],
        url: Some(url.into()),
        raw: "{}".into(),
        content_hash: String::new(),
    };
    i.content_hash = content_hash(&i);
    i
}

fn reply_to(r: &Interaction, after_h: i64) -> Interaction {
    let mut reply = r.clone();
    reply.external_id = format!("{}#reply", r.external_id);
    reply.kind = InteractionKind::Reply;
    reply.parent_external_id = Some(r.external_id.clone());
    reply.occurred_at_ms = r.occurred_at_ms + after_h * 3_600_000;
    reply.stars = None;
    reply.sentiment = None;
    reply.content_hash = content_hash(&reply);
    reply
}

async fn seed(db: &TestDb, config: &Config) {
    db.store.put_locations(&config.locations).await.unwrap();
    let b1 = review(
        "B1",
        "berlin",
        at(BERLIN, 2026, 3, 29, 14, 5),
        1.0,
        HOSTILE_TEXT,
        "javascript:alert(1)",
        "<img src=x onerror=alert(1)>",
    );
    let b2 = review(
        "B2",
        "berlin",
        at(BERLIN, 2026, 3, 29, 10, 0),
        5.0,
        "Sehr gut",
        "https://example.test/b2",
        "Carla",
    );
    let b3 = review(
        "B3",
        "berlin",
        at(BERLIN, 2026, 3, 28, 12, 0),
        2.0,
        "Zu laut",
        "https://example.test/b3",
        "Dieter",
    );
    let n1 = review(
        "N1",
        "nyc",
        at(NEW_YORK, 2026, 3, 25, 12, 0),
        1.0,
        "awful bagels",
        "https://example.test/n1",
        "Eve",
    );
    let b2r = reply_to(&b2, 2);
    db.store
        .write_batch(WriteBatch {
            interactions: vec![b1.clone(), b2, b3, n1, b2r],
            ..Default::default()
        })
        .await
        .unwrap();
    let rows = db
        .store
        .report_rows(Some("berlin"), 0, i64::MAX)
        .await
        .unwrap();
    let b1_id = rows.iter().find(|r| r.external_id == "B1").unwrap().id;
    let max_id = db.store.analysis_backlog().await.unwrap();
    let change = ChangeRecord {
        series: "location:berlin:stars".into(),
        entity: "location".into(),
        entity_id: "berlin".into(),
        channel: None,
        signal: "stars".into(),
        index: 12,
        occurred_at_ms: b1.occurred_at_ms,
        direction: "down".into(),
        before: 4.5,
        after: 1.0,
        confidence: 0.97,
        status: "confirmed".into(),
        n_before: 11,
        n_after: 6,
        evidence: serde_json::json!({
            "interactions": [
                {"id": b1_id, "weight": 0.9, "source": "google", "external_id": "B1",
                 "occurred_at_ms": b1.occurred_at_ms, "stars": 1.0, "url": "javascript:alert(1)"}
            ],
            "terms": []
        }),
        detected_at_ms: now(),
    };
    assert!(
        db.store
            .save_analysis(AnalysisWrite {
                changes: vec![change],
                from_id: 0,
                last_id: max_id.max(1),
                ..Default::default()
            })
            .await
            .unwrap()
    );
}

fn sent(r: &[digest::SendReport]) -> usize {
    r.iter()
        .filter(|r| matches!(r.outcome, Outcome::Sent { .. }))
        .count()
}

fn mail_to<'a>(server: &'a [Received], who: &str) -> Vec<&'a Received> {
    server
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.contains(who)))
        .collect()
}

// --- the tests ---

async fn a_digest_per_scope_in_the_recipients_zone_and_language(db: TestDb) {
    let server = SmtpServer::start().await;
    let config = config(&db, server.port);
    seed(&db, &config).await;
    let r = digest::send_due(db.store.as_ref(), &config, None, "one", now())
        .await
        .unwrap();
    assert_eq!(sent(&r), 2, "{r:#?}");
    assert_eq!(
        (r[0].period_start.as_str(), r[0].cadence),
        ("2026-03-29", "day")
    );
    assert_eq!(
        (r[1].period_start.as_str(), r[1].period_end.as_str()),
        ("2026-03-23", "2026-03-29")
    );
    let got = server.received();
    assert_eq!(got.len(), 2);

    // Anna: German, Berlin time, her one location.
    let anna = mail_to(&got, "anna@example.test");
    assert_eq!(anna.len(), 1);
    assert_eq!(anna[0].mail_from, "<digest@example.test>");
    let m = read_mail(anna[0]);
    for h in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
    ] {
        assert!(header(&m.headers, h).is_some(), "no {h}: {:?}", m.headers);
    }
    assert!(
        header(&m.headers, "From")
            .unwrap()
            .contains("digest@example.test")
    );
    assert!(
        header(&m.headers, "To")
            .unwrap()
            .contains("<anna@example.test>")
    );
    let id = header(&m.headers, "Message-ID").unwrap();
    assert!(
        id.starts_with("<tideline-digest.") && id.ends_with("@example.test>"),
        "{id}"
    );
    // The hostile location name and review text never become a header of their own.
    assert!(
        !m.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Bcc")),
        "{:?}",
        m.headers
    );
    assert!(!m.subject.contains('\r') && !m.subject.contains('\n'));
    assert_eq!(
        m.subject,
        "Tideline-Übersicht So 29.03.2026: 1 Veränderungen, 2 negative Bewertungen ohne Antwort – Mitte <b> Bcc: x@evil.test</b>"
    );
    // Text part: German words, Berlin summer time on the day the clocks changed.
    assert!(m.text.contains("Hallo Anna <Schmidt>,"), "{}", m.text);
    assert!(m.text.contains("Was sich verändert hat"), "{}", m.text);
    assert!(m.text.contains("29.03.2026 14:05 CEST"), "{}", m.text);
    assert!(m.text.contains("28.03.2026 12:00 CET"), "{}", m.text);
    assert!(m.text.contains("Zeiten in Europe/Berlin"), "{}", m.text);
    assert!(m.text.contains("stars gesunken: 4,50 → 1,00"), "{}", m.text);
    // The evidence line quotes the review on one line; the javascript: URL is dropped.
    assert!(
        m.text.contains("Beleg: 1★ 29.03.2026 14:05 CEST “<script>alert(\"x\")</script> Kaffee kalt Bcc: evil@example.test"),
        "{}",
        m.text
    );
    assert!(!m.text.contains("javascript:"), "{}", m.text);
    assert!(m.text.contains("https://example.test/b3"), "{}", m.text);
    assert!(
        !m.text.contains("Sehr gut"),
        "answered, not waiting: {}",
        m.text
    );
    // HTML part: the same, escaped; nothing from data is an element or attribute.
    assert_no_data_born_html(&m.html);
    assert!(
        m.html
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        "{}",
        m.html
    );
    assert!(
        m.html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        m.html
    );
    assert!(
        m.html
            .contains("Mitte &lt;b&gt; Bcc: x@evil.test&lt;/b&gt;"),
        "{}",
        m.html
    );
    assert!(m.html.contains("Hallo Anna &lt;Schmidt&gt;,"), "{}", m.html);
    assert!(
        m.html.contains("href=\"https://example.test/b3\""),
        "{}",
        m.html
    );
    assert!(m.html.contains("lang=\"de\""));

    // Bob: English, New York time, every location.
    let bob = mail_to(&got, "bob@example.test");
    assert_eq!(bob.len(), 1);
    let m = read_mail(bob[0]);
    assert_eq!(
        m.subject,
        "Tideline digest Mon 2026-03-23 – Sun 2026-03-29: 1 changes, 3 negative reviews waiting for an answer – all locations"
    );
    assert!(m.text.contains("Hello Bob,"), "{}", m.text);
    assert!(m.text.contains("== New York =="), "{}", m.text);
    assert!(m.text.contains("2026-03-25 12:00 EDT"), "{}", m.text);
    assert!(m.text.contains("awful bagels"), "{}", m.text);
    // Berlin's 14:05 CEST review is 08:05 EDT in New York.
    assert!(m.text.contains("2026-03-29 08:05 EDT"), "{}", m.text);
    assert!(
        m.text.contains("Times are in America/New_York"),
        "{}",
        m.text
    );
    assert_no_data_born_html(&m.html);
    assert!(
        m.html.contains("href=\"https://example.test/n1\""),
        "{}",
        m.html
    );
}

async fn sent_once_per_recipient_and_period_also_when_instances_race(db: TestDb) {
    let server = SmtpServer::start().await;
    let config = config(&db, server.port);
    seed(&db, &config).await;
    let first = digest::send_due(db.store.as_ref(), &config, None, "one", now())
        .await
        .unwrap();
    assert_eq!(sent(&first), 2);
    // Again, later the same day, and from another instance: nothing more is sent.
    let again = digest::send_due(db.store.as_ref(), &config, None, "one", now() + 3_600_000)
        .await
        .unwrap();
    assert!(
        again.iter().all(|r| r.outcome == Outcome::AlreadySent),
        "{again:#?}"
    );
    let other = db.another_store().await;
    let r = digest::send_due(other.as_ref(), &config, None, "two", now())
        .await
        .unwrap();
    assert_eq!(sent(&r), 0);
    assert_eq!(server.received().len(), 2);

    // The next day, two instances on their own connection pools race for Anna's digest.
    let next = now() + 86_400_000;
    let (a, b) = tokio::join!(
        digest::send_due(
            db.store.as_ref(),
            &config,
            Some("anna@example.test"),
            "one",
            next
        ),
        digest::send_due(
            other.as_ref(),
            &config,
            Some("ANNA@example.test"),
            "two",
            next
        ),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(sent(&a) + sent(&b), 1, "{a:#?} {b:#?}");
    assert_eq!(a[0].period_start, "2026-03-30");
    let anna = server.received();
    let anna = mail_to(&anna, "anna@example.test");
    assert_eq!(anna.len(), 2);
    let ids: Vec<String> = anna
        .iter()
        .map(|m| header(&split(&m.data).0, "Message-ID").unwrap().to_string())
        .collect();
    assert_ne!(ids[0], ids[1], "one Message-ID per period");
    let rows = db
        .store
        .digest_sends(Some("anna@example.test"), 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r.state == "sent" && r.attempts == 1),
        "{rows:#?}"
    );
}

async fn a_failing_server_leaves_the_digest_unsent_and_it_is_retried(db: TestDb) {
    let server = SmtpServer::start().await;
    let config = config(&db, server.port);
    seed(&db, &config).await;
    server.fail.store(true, Ordering::SeqCst);
    let r = digest::send_due(
        db.store.as_ref(),
        &config,
        Some("anna@example.test"),
        "one",
        now(),
    )
    .await
    .unwrap();
    let Outcome::Failed { error } = &r[0].outcome else {
        panic!("{r:#?}")
    };
    assert!(
        error.contains("451") || error.contains("try again"),
        "{error}"
    );
    assert!(server.received().is_empty());
    let rows = db.store.digest_sends(None, 10).await.unwrap();
    assert_eq!(
        (rows[0].state.as_str(), rows[0].sent_at_ms),
        ("failed", None)
    );
    assert!(rows[0].error.is_some());

    // The server recovers: the next check sends it (attempt 2), once.
    server.fail.store(false, Ordering::SeqCst);
    let r = digest::send_due(
        db.store.as_ref(),
        &config,
        Some("anna@example.test"),
        "one",
        now() + 300_000,
    )
    .await
    .unwrap();
    assert!(
        matches!(r[0].outcome, Outcome::Sent { attempt: 2, .. }),
        "{r:#?}"
    );
    assert_eq!(server.received().len(), 1);

    // A sender that crashed holding a claim (no server ever reached): the claim blocks
    // others while its lease lasts, then another instance takes it over.
    let next = now() + 86_400_000;
    let claim = DigestClaim {
        recipient: "anna@example.test",
        cadence: "day",
        period_start: "2026-03-30",
        period_end: "2026-03-30",
        instance: "crashed",
        now_ms: next,
        lease_ms: 600_000,
    };
    assert_eq!(db.store.claim_digest(&claim).await.unwrap(), Some(1));
    let r = digest::send_due(
        db.store.as_ref(),
        &config,
        Some("anna@example.test"),
        "one",
        next + 60_000,
    )
    .await
    .unwrap();
    assert_eq!(r[0].outcome, Outcome::AlreadySent);
    let r = digest::send_due(
        db.store.as_ref(),
        &config,
        Some("anna@example.test"),
        "one",
        next + 600_001,
    )
    .await
    .unwrap();
    assert!(
        matches!(r[0].outcome, Outcome::Sent { attempt: 2, .. }),
        "{r:#?}"
    );
    assert_eq!(server.received().len(), 2);
}

on_both_backends!(
    a_digest_per_scope_in_the_recipients_zone_and_language,
    sent_once_per_recipient_and_period_also_when_instances_race,
    a_failing_server_leaves_the_digest_unsent_and_it_is_retried,
    the_daemon_job_sends_each_due_digest_once,
);

/// The binary: `digest --preview` writes the message without sending or marking it;
/// `digest --send-now` twice sends once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_command_previews_and_sends_once() {
    let server = SmtpServer::start().await;
    let db = TestDb::new(crate::common::Backend::Sqlite).await.unwrap();
    let config = config(&db, server.port);
    seed(&db, &config).await;
    let cfg = db.dir.path().join("tideline.toml");
    std::fs::write(&cfg, config_text(db.url.expose(), server.port)).unwrap();
    let eml = db.dir.path().join("anna.eml");
    let at = "2026-03-30T15:00:00+02:00";
    let run = |args: Vec<String>| {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            bin().arg("--config").arg(&cfg).args(args).output().unwrap()
        })
    };
    let out = run(vec![
        "digest".into(),
        "--preview".into(),
        "--recipient".into(),
        "anna@example.test".into(),
        "--out".into(),
        eml.display().to_string(),
        "--at".into(),
        at.into(),
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&eml).unwrap();
    let m = read_mail(&Received {
        mail_from: String::new(),
        rcpt_to: vec![],
        data: written,
    });
    assert!(m.text.contains("29.03.2026 14:05 CEST"), "{}", m.text);
    assert_no_data_born_html(&m.html);
    assert!(server.received().is_empty(), "a preview sends nothing");
    assert!(db.store.digest_sends(None, 10).await.unwrap().is_empty());

    let send = || {
        run(vec![
            "digest".into(),
            "--send-now".into(),
            "--at".into(),
            at.into(),
        ])
    };
    let first = send().await.unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        first.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        stdout.matches(": sent <tideline-digest.").count(),
        2,
        "{stdout}"
    );
    let second = send().await.unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout).to_string();
    assert_eq!(stdout.matches("already sent").count(), 2, "{stdout}");
    assert_eq!(server.received().len(), 2);

    // A recipient that is not configured is named with the fix.
    let out = run(vec![
        "digest".into(),
        "--send-now".into(),
        "--recipient".into(),
        "nobody@example.test".into(),
    ])
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nobody@example.test") && err.contains("fix:"),
        "{err}"
    );
}

/// The daemon's `digest` job (as `tideline run` schedules it) sends every due digest once:
/// a second firing sends nothing. (It reads the wall clock, so the periods are today's.)
async fn the_daemon_job_sends_each_due_digest_once(db: TestDb) {
    let server = SmtpServer::start().await;
    let config = config(&db, server.port);
    seed(&db, &config).await;
    let jobs = tideline::daemon::jobs(
        &config,
        db.store.clone(),
        crate::common::analyzer(&config),
        Arc::new(tideline::metrics::Metrics::new()),
    );
    let job = jobs
        .iter()
        .find(|j| j.name == "digest")
        .expect("a digest job");
    assert!(job.run_on_first_start);
    let fire = |instance: &str| {
        (job.run)(tideline::schedule::RunContext {
            job: "digest".into(),
            instance: instance.into(),
            tick_ms: 0,
            catch_up: false,
            stop: tokio_util::sync::CancellationToken::new(),
        })
    };
    let first = fire("one").await.unwrap();
    assert!(first.starts_with("2 digest(s) sent"), "{first}");
    let second = fire("two").await.unwrap();
    assert!(second.starts_with("0 digest(s) sent"), "{second}");
    assert_eq!(server.received().len(), 2);
    // No recipients, no job.
    let mut none = config.clone();
    none.digest.recipients.clear();
    let jobs = tideline::daemon::jobs(
        &none,
        db.store.clone(),
        crate::common::analyzer(&none),
        Arc::new(tideline::metrics::Metrics::new()),
    );
    assert!(jobs.iter().all(|j| j.name != "digest"));
}
