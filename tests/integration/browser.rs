//! Issue 9 acceptance in a real browser: Debian's headless Chromium, driven over WebDriver
//! (`chromedriver`, plain HTTP with reqwest), logs in by token, clicks from the portfolio to
//! a location to a customer's timeline, and saves screenshots (`target/screenshots/`);
//! then the report HTML of `tideline report` is opened in the same browser and its sections
//! checked.
//!
//! SQLite only: the browser checks what the pages look like and how they link, which does
//! not depend on the backend; the pages' reads run on both backends in `dashboard.rs`.
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` the test prints SKIPPED, or
//! fails when `TIDELINE_REQUIRE_BROWSER=1` (CI sets it and installs them).

use crate::common::{Backend, TestDb};
use crate::http::{Api, READ};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tideline::outputs::indicators::Scope;
use tideline::outputs::report::{self, ReportRequest};
use tideline::pipeline::indicators::PeriodSpec;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one browser session. Dropping it ends the session's
/// processes: chromedriver runs in its own process group, which is killed as a whole.
struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signals our own child's process group.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the browser is here; fails when CI requires it.
fn browser_available() -> bool {
    let here = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !here {
        if std::env::var("TIDELINE_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "TIDELINE_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing; fix: apt-get install -y chromium chromium-driver"
            );
        }
        eprintln!("SKIPPED: browser test ({CHROMIUM} or {CHROMEDRIVER} missing)");
    }
    here
}

impl Driver {
    async fn start(profile: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("chromedriver starts");
        let mut d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        };
        let mut ready = false;
        for _ in 0..300 {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not answer on port {port}");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,1600",
                    "--hide-scrollbars", "--no-first-run",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let v = d.call("POST", "/session", Some(caps)).await;
        d.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        d
    }

    /// One WebDriver command; its `value`, or a panic with the driver's error.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self.http.post(url).json(&body.unwrap_or(json!({}))),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let r = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    async fn s(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn goto(&self, url: &str) {
        self.s("POST", "/url", Some(json!({ "url": url }))).await;
    }

    async fn url(&self) -> String {
        self.s("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits (at most 30 s) until the current URL contains `part`.
    async fn wait_url(&self, part: &str) -> String {
        self.wait_until(part, |u| u.contains(part)).await
    }

    /// Waits (at most 30 s) until the current URL passes `ok`.
    async fn wait_until(&self, part: &str, ok: impl Fn(&str) -> bool) -> String {
        for _ in 0..300 {
            let u = self.url().await;
            if ok(&u) {
                return u;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the browser never reached {part}; it is at {}",
            self.url().await
        );
    }

    async fn find_all(&self, using: &str, value: &str) -> Vec<String> {
        let v = self
            .s(
                "POST",
                "/elements",
                Some(json!({ "using": using, "value": value })),
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("{value}: {v}"))
                    .to_string()
            })
            .collect()
    }

    async fn find(&self, css: &str) -> String {
        self.find_all("css selector", css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css}"))
    }

    async fn click(&self, element: &str) {
        self.s("POST", &format!("/element/{element}/click"), None)
            .await;
    }

    async fn text(&self, element: &str) -> String {
        self.s("GET", &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.find_all("css selector", css).await {
            out.push(self.text(&e).await);
        }
        out
    }

    async fn type_into(&self, element: &str, text: &str) {
        self.s(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Saves a PNG of the window.
    async fn screenshot(&self, file: &Path) {
        let b64 = self.s("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(file, png).unwrap();
    }

    async fn quit(self) {
        self.s("DELETE", "", None).await;
    }
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_report_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let api = Api::start(db).await;
    let profile = tempfile::tempdir().unwrap();
    let shots = screenshots();
    let b = Driver::start(profile.path()).await;

    // Not logged in: the login form. Log in by token.
    b.goto(&format!("{}/dashboard", api.base)).await;
    b.wait_url("/dashboard/login").await;
    let token = b.find("input#token").await;
    b.type_into(&token, READ).await;
    b.screenshot(&shots.join("dashboard-login.png")).await;
    b.click(&b.find("form.login button[type=submit]").await)
        .await;
    // The login page's URL contains `/dashboard` too: wait for the portfolio's own.
    b.wait_until("/dashboard", |u| u.ends_with("/dashboard"))
        .await;

    // The portfolio of the samples' last 90 days: five ranked stores.
    b.goto(&format!(
        "{}/dashboard{}",
        api.base,
        crate::dashboard::PERIOD
    ))
    .await;
    let names = b.texts("table#portfolio a.location").await;
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names.iter().any(|n| n == "Warszawa Centrum"), "{names:?}");
    b.screenshot(&shots.join("dashboard-portfolio.png")).await;

    // Click a location.
    let warsaw = b.find_all("link text", "Warszawa Centrum").await;
    b.click(&warsaw[0]).await;
    b.wait_url("/dashboard/locations/warsaw-centrum").await;
    let h2 = b.texts("section.location h2").await;
    assert_eq!(h2, ["Warszawa Centrum"]);
    let h3 = b.texts("h3").await.join(" | ");
    for section in [
        "Indicators",
        "When satisfaction changed",
        "Reviews waiting for an answer",
        "Customers seen here",
    ] {
        assert!(h3.contains(section), "{section} in {h3}");
    }
    assert!(!b.find_all("css selector", "svg").await.is_empty());
    b.screenshot(&shots.join("dashboard-location.png")).await;

    // Click a customer: the timeline.
    let customer = b.find("a.customer").await;
    let name = b.text(&customer).await;
    b.click(&customer).await;
    b.wait_url("/dashboard/customers/cus_").await;
    let h1 = b.texts("h1").await.join(" ");
    assert!(h1.contains(&name), "{h1} / {name}");
    let rows = b
        .find_all("css selector", "section#interactions tbody tr")
        .await;
    assert!(!rows.is_empty());
    assert!(!b.texts("section#identities td").await.is_empty());
    b.screenshot(&shots.join("dashboard-timeline.png")).await;

    // Sources and quarantine from the navigation.
    b.click(&b.find_all("link text", "Sources").await[0]).await;
    b.wait_url("/dashboard/sources").await;
    assert!(!b.texts("table#sources tbody tr").await.is_empty());
    b.screenshot(&shots.join("dashboard-sources.png")).await;
    b.click(&b.find_all("link text", "Quarantine").await[0])
        .await;
    b.wait_url("/dashboard/quarantine").await;
    assert!(!b.texts("table#quarantine tbody tr").await.is_empty());
    b.screenshot(&shots.join("dashboard-quarantine.png")).await;

    // Log out: back to the login form, and the pages are closed again.
    b.click(&b.find("form.logout button").await).await;
    b.wait_url("/dashboard/login").await;
    b.goto(&format!("{}/dashboard/sources", api.base)).await;
    b.wait_url("/dashboard/login").await;

    // The report HTML, as `tideline report` writes it, in the same browser.
    let config = crate::common::demo_config();
    let r = report::build(
        api.db.store.as_ref(),
        &config,
        &ReportRequest {
            scope: Scope::AllLocations,
            period: PeriodSpec::Dates(
                chrono::NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2026, 6, 28).unwrap(),
            ),
            waiting_limit: report::WAITING_LIMIT,
        },
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .unwrap();
    let file = profile.path().join("report.html");
    std::fs::write(&file, report::html::render(&r)).unwrap();
    b.goto(&format!("file://{}", file.display())).await;
    assert_eq!(b.texts("h1").await, ["Reputation report"]);
    assert_eq!(b.texts("section#portfolio h2").await, ["Portfolio"]);
    assert_eq!(
        b.find_all("css selector", "section#portfolio tbody tr")
            .await
            .len(),
        5
    );
    let sections = b.find_all("css selector", "section.location").await;
    assert_eq!(sections.len(), 5);
    let h3 = b.texts("section.location h3").await;
    for section in [
        "Indicators",
        "Star ratings",
        "Sentiment by language",
        "Topics rising in negative feedback",
        "When satisfaction changed",
        "Reviews waiting for an answer",
    ] {
        assert_eq!(
            h3.iter().filter(|t| t.starts_with(section)).count(),
            5,
            "{section}: {h3:?}"
        );
    }
    b.screenshot(&shots.join("report.png")).await;
    b.quit().await;
    api.stop().await;
}
