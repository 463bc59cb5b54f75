//! `tideline run` as real processes: a fleet of three on one PostgreSQL database with the
//! lease holder killed (SIGKILL), and a configuration reload on SIGHUP.

use crate::common::{Backend, TestDb};
use crate::sync::{FakeZendesk, config_toml, start};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tideline::store::{JobRun, Store};

fn daemon(config: &std::path::Path, log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tideline"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(start.elapsed() < within, "did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn poll<T>(within: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < within, "timed out after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn runs(store: &Arc<dyn Store>) -> Vec<JobRun> {
    store.job_runs(Some("sync:support"), 10_000).await.unwrap()
}

/// Three daemons sync one slow Zendesk every 2 s on PostgreSQL. The instance running the
/// sync is killed with SIGKILL mid-run; another instance runs the job within the lease
/// (5 s) plus one tick (2 s); runs of the job never overlap; at the end every ticket is
/// stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_lease_holder_is_replaced_within_lease_plus_one_tick() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let pages = 40;
    let fake = FakeZendesk {
        pages,
        per_page: 10,
        throttle_request: None,
        fail_request: None,
        delay: Duration::from_millis(150),
        requests: Arc::default(),
    };
    let base = start(fake).await;
    let mut text = config_toml(db.dir.path(), &base, db.url.expose());
    text = text.replace(
        "[pipeline]\n",
        "[pipeline]\ndetect_cron = \"0 0 0 1 1 *\"\n",
    );
    text.push_str("schedule = \"*/2 * * * * *\"\n[http]\nenabled = false\n[scheduler]\nlease_secs = 5\nstop_timeout_secs = 5\n");
    let mut children = Vec::new();
    for i in 0..3 {
        let cfg = db.dir.path().join(format!("d{i}.toml"));
        std::fs::write(
            &cfg,
            text.replace(
                "[scheduler]\n",
                &format!("[scheduler]\ninstance = \"d{i}\"\n"),
            ),
        )
        .unwrap();
        children.push(Some(daemon(&cfg, &db.dir.path().join(format!("d{i}.log")))));
    }
    let store = db.store.clone();
    // The first run that gets going: its holder dies.
    let victim = poll(Duration::from_secs(60), async || {
        runs(&store)
            .await
            .into_iter()
            .find(|r| r.state == "running")
    })
    .await;
    // Let it commit a page or two first.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let index: usize = victim.instance.trim_start_matches('d').parse().unwrap();
    let mut dead = children[index].take().unwrap();
    signal(&dead, libc::SIGKILL);
    let killed_at = chrono::Utc::now().timestamp_millis();
    let _ = wait_exit(&mut dead, Duration::from_secs(5));

    let next = poll(Duration::from_secs(30), async || {
        runs(&store)
            .await
            .into_iter()
            .find(|r| r.instance != victim.instance && r.started_at_ms > killed_at)
    })
    .await;
    let waited = next.started_at_ms - killed_at;
    eprintln!(
        "killed {} running tick {}; {} took the job over after {waited} ms",
        victim.instance, victim.tick_ms, next.instance
    );
    assert!(
        waited <= 5_000 + 2_000 + 500,
        "taken over after {waited} ms (lease 5 s + tick 2 s)"
    );
    // Let the survivors finish the stream.
    poll(Duration::from_secs(90), async || {
        let c = store.cursor("support").await.unwrap();
        (c.as_deref() == Some(&format!("c{pages}")[..])).then_some(())
    })
    .await;
    for c in children.iter_mut().flatten() {
        signal(c, libc::SIGTERM);
    }
    for c in children.iter_mut().flatten() {
        assert!(wait_exit(c, Duration::from_secs(15)).success());
    }
    let all = runs(&store).await;
    let dead_run = all.iter().find(|r| r.tick_ms == victim.tick_ms).unwrap();
    assert_eq!(dead_run.state, "abandoned", "{all:?}");
    // No two runs of the job overlapped in time (the dead one ended when it was killed).
    let mut spans: Vec<(i64, i64, &str)> = all
        .iter()
        .map(|r| {
            let end = if r.tick_ms == victim.tick_ms {
                killed_at
            } else {
                r.finished_at_ms.unwrap_or(i64::MAX)
            };
            (r.started_at_ms, end, r.instance.as_str())
        })
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "overlapping runs {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    // Every ticket once.
    assert_eq!(
        store.counts().await.unwrap().interactions,
        (pages * 10) as i64
    );
}

/// SIGHUP: a valid new configuration is applied (a connector appears and syncs); an
/// invalid one is refused and the daemon keeps running; SIGTERM then exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_valid_configuration_and_keeps_the_old_one_otherwise() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let fake = FakeZendesk {
        pages: 2,
        per_page: 5,
        throttle_request: None,
        fail_request: None,
        delay: Duration::ZERO,
        requests: Arc::default(),
    };
    let base = start(fake).await;
    let cfg = db.dir.path().join("t.toml");
    let plain = format!(
        "[storage]\ndatabase_url = \"{}\"\n[http]\nenabled = false\n[pipeline]\nsentiment_adapt = false\n",
        db.url.expose()
    );
    std::fs::write(&cfg, &plain).unwrap();
    let log = db.dir.path().join("d.log");
    let mut child = daemon(&cfg, &log);
    poll(Duration::from_secs(60), async || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("Tideline serving.")
            .then_some(())
    })
    .await;
    assert_eq!(db.store.cursor("support").await.unwrap(), None);
    // A valid file with a connector: it syncs at once (a new connector's first run).
    std::fs::write(
        &cfg,
        config_toml(db.dir.path(), &base, db.url.expose()) + "[http]\nenabled = false\n",
    )
    .unwrap();
    signal(&child, libc::SIGHUP);
    let store = db.store.clone();
    poll(Duration::from_secs(30), async || {
        (store.cursor("support").await.unwrap().as_deref() == Some("c2")).then_some(())
    })
    .await;
    // An invalid file: refused, logged, the daemon keeps going.
    std::fs::write(&cfg, "[scheduler]\nlease_secs = 1\n").unwrap();
    signal(&child, libc::SIGHUP);
    poll(Duration::from_secs(10), async || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("keeping the running one")
            .then_some(())
    })
    .await;
    assert!(child.try_wait().unwrap().is_none(), "still running");
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Configuration reloaded."), "{text}");
    assert!(text.contains("lease_secs"), "the problem is named: {text}");
    assert_eq!(db.store.counts().await.unwrap().interactions, 10);
}
