//! `tideline sources status` and connector health, against the fake Zendesk of
//! `sync.rs`: a connector that never ran, one that ran well, one whose token stopped
//! working (failed, then failing after three runs in a row, with the error naming the
//! secret's key and never its value), and the warning a sync logs about it.

use crate::common::{self, TestDb};
use crate::fakes;
use crate::on_both_backends;
use crate::sync::{FakeZendesk, config_toml, start};
use std::sync::Arc;
use std::time::Duration;
use tideline::config::{Config, Overrides};
use tideline::metrics::Metrics;
use tideline::outputs::sources::{self, HealthState};

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn status(db: &TestDb, cfg: &std::path::Path) -> (i32, String, String) {
    let out = common::bin()
        .arg("--config")
        .arg(cfg)
        .args(["sources", "status"])
        .output()
        .unwrap();
    let _ = db;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn sources_status_names_runs_counts_and_failures(db: TestDb) {
    let fake = FakeZendesk {
        pages: 3,
        per_page: 5,
        throttle_request: None,
        fail_request: None,
        delay: Duration::ZERO,
        requests: Arc::default(),
    };
    let base = start(fake).await;
    let toml = config_toml(db.dir.path(), &base, db.url.expose());
    let cfg_path = db.dir.path().join("tideline.toml");
    std::fs::write(&cfg_path, &toml).unwrap();
    let config = Config::from_toml(&toml, "test", &Overrides::default()).unwrap();

    // Configured, never run: listed, not a problem.
    let r = sources::report(db.store.as_ref(), &config, now())
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status.source, "support");
    assert_eq!(r[0].kind, "zendesk");
    assert_eq!(r[0].health.state, HealthState::NeverRun);
    let (code, out, err) = status(&db, &cfg_path);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("support") && out.contains("never_run"),
        "{out}"
    );

    // A good run: its counts, its time, healthy.
    let metrics = Arc::new(Metrics::new());
    // Fifteen tickets, one of them damaged (quarantined).
    let report = fakes::sync(&db, &config, metrics.clone()).await.unwrap();
    assert_eq!((report.fetched, report.inserted), (16, 15), "{report}");
    let r = sources::report(db.store.as_ref(), &config, now())
        .await
        .unwrap();
    let s = &r[0];
    assert_eq!(s.health.state, HealthState::Ok, "{s:?}");
    let last = s.status.last_run.as_ref().unwrap();
    assert_eq!(
        (
            last.status.as_str(),
            last.read,
            last.inserted,
            last.quarantined
        ),
        ("done", 16, 15, 1)
    );
    assert_eq!(s.health.fetched_24h, 16);
    assert_eq!(s.health.new_24h, 15);
    assert_eq!(s.status.interactions, 15);
    assert!(s.status.last_success_ms.is_some());

    // The token is revoked: each run fails with the key named, the value never.
    std::fs::write(db.dir.path().join("zendesk_token"), "revoked-token-value\n").unwrap();
    let revoked = Config::from_toml(&toml, "test", &Overrides::default()).unwrap();
    for attempt in 1..=3 {
        let e = fakes::sync(&db, &revoked, metrics.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP 401"), "{e}");
        let r = sources::report(db.store.as_ref(), &config, now())
            .await
            .unwrap();
        let h = &r[0].health;
        assert_eq!(h.consecutive_failures, attempt);
        let want = if attempt < 3 {
            HealthState::Failed
        } else {
            HealthState::Failing
        };
        assert_eq!(h.state, want, "{h:?}");
        let stored = h.last_error.as_deref().unwrap();
        assert!(
            stored.contains("HTTP 401") && stored.contains("api_token"),
            "{stored}"
        );
        assert!(!stored.contains("revoked-token-value"), "{stored}");
        assert_eq!(r[0].status.last_run.as_ref().unwrap().status, "failed");
    }

    // The command shows it, names it a connector problem, and exits 1 for monitors.
    let (code, out, err) = status(&db, &cfg_path);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("failing"), "{out}");
    assert!(
        out.contains("connector problem: support: failing: the last 3 runs failed"),
        "{out}"
    );
    assert!(!out.contains("revoked-token-value"), "{out}");
    let json = common::bin()
        .arg("--config")
        .arg(&cfg_path)
        .args(["sources", "status", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["health"]["state"], "failing");
    assert_eq!(v[0]["health"]["consecutive_failures"], 3);
    assert_eq!(v[0]["runs"], 4);

    // A sync through the binary logs the problem as a connector problem too.
    let out = common::bin()
        .arg("--config")
        .arg(&cfg_path)
        .args(["sync", "support"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("connector problem"), "{log}");
    assert!(log.contains("failing"), "{log}");
    assert!(!log.contains("revoked-token-value"), "{log}");

    // The token is fixed: the next run clears the problem.
    std::fs::write(db.dir.path().join("zendesk_token"), "s3cret\n").unwrap();
    fakes::sync(&db, &config, metrics).await.unwrap();
    let r = sources::report(db.store.as_ref(), &config, now())
        .await
        .unwrap();
    assert_eq!(r[0].health.state, HealthState::Ok, "{:?}", r[0].health);
    assert_eq!(r[0].health.last_error, None);
    let (code, out, _) = status(&db, &cfg_path);
    assert_eq!(code, 0, "{out}");
}

/// A file import is a source too: listed after the connectors, as `import`.
async fn file_imports_are_listed_as_sources(db: TestDb) {
    let config = common::demo_config();
    let opts = tideline::ingest::ImportOptions {
        path: common::samples().join("reviews.csv"),
        preset: tideline::connectors::files::Preset::GenericCsv,
        mapping: Some(common::samples().join("reviews.mapping.toml")),
        source: Some("shop-reviews".into()),
        location: None,
        timezone: None,
    };
    tideline::ingest::import_file(db.store.as_ref(), common::analyzer(&config), &config, &opts)
        .await
        .unwrap();
    let r = sources::report(db.store.as_ref(), &config, now())
        .await
        .unwrap();
    let s = r
        .iter()
        .find(|s| s.status.source == "shop-reviews")
        .unwrap();
    assert_eq!(s.kind, "import");
    assert_eq!(s.health.state, HealthState::Ok);
    assert!(s.status.interactions > 0);
    let text = sources::render_text(&r, now());
    assert!(text.contains("shop-reviews"), "{text}");
}

on_both_backends!(
    sources_status_names_runs_counts_and_failures,
    file_imports_are_listed_as_sources
);
