//! Scheduled jobs on a fleet: several runners (each with its own connection pool, as
//! separate daemons have) on one database, driven by an accelerated clock.

use crate::common::TestDb;
use crate::on_both_backends;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tideline::metrics::Metrics;
use tideline::schedule::{Clock, Fired, RunFn, Runner, Schedule, ScheduledJob};
use tideline::store::Store;

const MINUTE: i64 = 60_000;
/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600_000;

type Log = Arc<Mutex<Vec<(String, i64, String)>>>;

/// A job body that records (job, tick, instance), checks no other run of the same job is
/// in flight anywhere, and takes a little while.
fn recording_job(
    name: &str,
    log: Log,
    concurrent: Arc<AtomicUsize>,
    worst: Arc<AtomicUsize>,
) -> ScheduledJob {
    let job_name = name.to_string();
    let run: RunFn = Arc::new(move |cx| {
        let log = log.clone();
        let concurrent = concurrent.clone();
        let worst = worst.clone();
        let name = job_name.clone();
        Box::pin(async move {
            let now = concurrent.fetch_add(1, Ordering::SeqCst) + 1;
            worst.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_micros((cx.tick_ms as u64 / 1000) % 1500)).await;
            log.lock()
                .unwrap()
                .push((name, cx.tick_ms, cx.instance.clone()));
            concurrent.fetch_sub(1, Ordering::SeqCst);
            Ok(String::new())
        })
    });
    ScheduledJob {
        name: name.to_string(),
        schedule: Schedule::parse("0 * * * * *", chrono_tz::UTC).unwrap(),
        run_on_first_start: false,
        run,
    }
}

fn clock_of(base: &Arc<AtomicI64>, skew_ms: i64) -> Clock {
    let base = base.clone();
    Arc::new(move || base.load(Ordering::SeqCst) + skew_ms)
}

async fn runners(db: &TestDb, clock: &Arc<AtomicI64>, lease: Duration) -> Vec<Arc<Runner>> {
    let mut out = Vec::new();
    for i in 0..3 {
        let store: Arc<dyn Store> = if i == 0 {
            db.store.clone()
        } else {
            db.another_store().await
        };
        out.push(Arc::new(Runner::new(
            store,
            format!("daemon-{i}"),
            lease,
            // Each instance's clock is off by up to 0.6 s, as real machines' are.
            clock_of(clock, [0, 350, -600][i]),
            Arc::new(Metrics::new()),
        )));
    }
    out
}

/// Three daemons, five jobs, 1,000 ticks each (PostgreSQL): every (job, tick) runs exactly once and
/// no job ever runs twice at the same time.
async fn fleet_runs_every_tick_once(db: TestDb) {
    let clock = Arc::new(AtomicI64::new(T0));
    let fleet = runners(&db, &clock, Duration::from_secs(30)).await;
    let log: Log = Arc::default();
    let worst = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<ScheduledJob> = ["sync:a", "sync:b", "analyze", "digest", "crm-sync"]
        .iter()
        .map(|n| recording_job(n, log.clone(), Arc::new(AtomicUsize::new(0)), worst.clone()))
        .collect();
    // SQLite serves one daemon; three writers contending for its one lock wait in its
    // busy handler, so the fleet-sized run is PostgreSQL's.
    let ticks = if db.store.backend() == "postgres" {
        1000
    } else {
        100
    };
    let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
    for k in 0..ticks {
        // The timers fire a little after the tick.
        clock.store(T0 + k * MINUTE + 200, Ordering::SeqCst);
        let mut tasks = Vec::new();
        for runner in &fleet {
            for job in &jobs {
                let runner = runner.clone();
                let job = job.clone();
                tasks.push(tokio::spawn(async move { runner.fire_now(&job).await }));
            }
        }
        for t in tasks {
            let fired = t.await.unwrap().expect("a tick");
            let key = match fired {
                Fired::Ran(Ok(_)) => "ran",
                Fired::Taken { .. } => "taken",
                Fired::SkippedBusy { .. } => "busy",
                other => panic!("unexpected {other:?}"),
            };
            *outcomes.entry(key).or_default() += 1;
        }
    }
    let log = std::mem::take(&mut *log.lock().unwrap());
    let mut seen: HashMap<(String, i64), usize> = HashMap::new();
    for (job, tick, _) in log.iter() {
        *seen.entry((job.clone(), *tick)).or_default() += 1;
    }
    assert_eq!(seen.len(), 5 * ticks as usize, "every (job, tick) ran");
    assert!(seen.values().all(|n| *n == 1), "no (job, tick) ran twice");
    for k in 0..ticks {
        assert!(seen.contains_key(&("analyze".to_string(), T0 + k * MINUTE)));
    }
    assert_eq!(
        worst.load(Ordering::SeqCst),
        1,
        "never two runs of one job at once"
    );
    assert_eq!(outcomes["ran"], 5 * ticks as usize);
    // The store agrees: one `done` row per (job, tick).
    let runs = db.store.job_runs(None, 100_000).await.unwrap();
    assert_eq!(runs.len(), 5 * ticks as usize);
    assert!(runs.iter().all(|r| r.state == "done" && r.attempts == 1));
    // The work spread over the fleet.
    let by_instance = runs.iter().fold(HashMap::<&str, usize>::new(), |mut m, r| {
        *m.entry(r.instance.as_str()).or_default() += 1;
        m
    });
    assert!(by_instance.len() >= 2, "{by_instance:?}");
}

/// A job body that waits until released.
fn blocking_job(
    name: &str,
    release: Arc<tokio::sync::Notify>,
    started: Arc<tokio::sync::Notify>,
) -> ScheduledJob {
    let run: RunFn = Arc::new(move |_cx| {
        let release = release.clone();
        let started = started.clone();
        Box::pin(async move {
            started.notify_one();
            release.notified().await;
            Ok("released".into())
        })
    });
    ScheduledJob {
        name: name.to_string(),
        schedule: Schedule::parse("0 * * * * *", chrono_tz::UTC).unwrap(),
        run_on_first_start: false,
        run,
    }
}

/// A run that outlasts its interval makes the fleet skip ticks (counted), not overlap.
async fn a_long_run_skips_ticks(db: TestDb) {
    let clock = Arc::new(AtomicI64::new(T0 + 100));
    let fleet = runners(&db, &clock, Duration::from_secs(30)).await;
    let release = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let job = blocking_job("sync:slow", release.clone(), started.clone());
    let holder = {
        let (r, j) = (fleet[0].clone(), job.clone());
        tokio::spawn(async move { r.fire_now(&j).await })
    };
    started.notified().await;
    // Two more ticks pass while it runs; its heartbeat keeps the lease (done by hand
    // here, because the heartbeat renews in real time and this clock is accelerated).
    for k in 1..=2 {
        clock.store(T0 + k * MINUTE + 100, Ordering::SeqCst);
        assert!(
            db.store
                .renew_job_lease("sync:slow", T0, "daemon-0", T0 + k * MINUTE + 30_000)
                .await
                .unwrap()
        );
        for (i, runner) in fleet.iter().enumerate() {
            let fired = runner.fire_now(&job).await.unwrap();
            match (i, fired) {
                (0, Fired::SkippedRunningHere) => {}
                (_, Fired::SkippedBusy { instance, tick_ms }) => {
                    assert_eq!(instance, "daemon-0");
                    assert_eq!(tick_ms, T0);
                }
                (i, other) => panic!("daemon-{i}: {other:?}"),
            }
        }
    }
    release.notify_one();
    assert_eq!(
        holder.await.unwrap(),
        Some(Fired::Ran(Ok("released".into())))
    );
    // The next tick runs again.
    clock.store(T0 + 3 * MINUTE + 100, Ordering::SeqCst);
    let release2 = Arc::new(tokio::sync::Notify::new());
    release2.notify_one();
    let quick = blocking_job("sync:slow", release2, Arc::new(tokio::sync::Notify::new()));
    assert!(matches!(
        fleet[1].fire_now(&quick).await,
        Some(Fired::Ran(Ok(_)))
    ));
    let runs = db.store.job_runs(Some("sync:slow"), 10).await.unwrap();
    let ticks: Vec<i64> = runs.iter().map(|r| r.tick_ms).collect();
    assert_eq!(
        ticks,
        vec![T0 + 3 * MINUTE, T0],
        "ticks 1 and 2 were skipped"
    );
}

/// The holder dies mid-run (its task is dropped: no finish, no heartbeat, as after
/// kill -9). Another instance runs the next tick once the lease ran out, and the dead
/// run is marked abandoned.
async fn a_dead_holder_is_taken_over(db: TestDb) {
    let clock = Arc::new(AtomicI64::new(T0 + 100));
    let lease = Duration::from_secs(90);
    let fleet = runners(&db, &clock, lease).await;
    let started = Arc::new(tokio::sync::Notify::new());
    let never = blocking_job(
        "analyze",
        Arc::new(tokio::sync::Notify::new()),
        started.clone(),
    );
    let doomed = {
        let (r, j) = (fleet[0].clone(), never.clone());
        tokio::spawn(async move { r.fire_now(&j).await })
    };
    started.notified().await;
    doomed.abort();
    let _ = doomed.await;
    let release = Arc::new(tokio::sync::Notify::new());
    release.notify_one();
    let job = blocking_job(
        "analyze",
        release.clone(),
        Arc::new(tokio::sync::Notify::new()),
    );
    // Within the lease the others skip; the first tick after it expires runs.
    let mut taken_over_at = None;
    for k in 1..=4 {
        clock.store(T0 + k * MINUTE + 100, Ordering::SeqCst);
        let fired = fleet[1].fire_now(&job).await.unwrap();
        if let Fired::Ran(Ok(_)) = fired {
            taken_over_at = Some(T0 + k * MINUTE);
            break;
        }
        assert!(matches!(fired, Fired::SkippedBusy { .. }), "{fired:?}");
    }
    let at = taken_over_at.expect("taken over");
    // Within lease TTL plus one tick of the death.
    assert!(at - T0 <= lease.as_millis() as i64 + MINUTE, "{at}");
    let runs = db.store.job_runs(Some("analyze"), 10).await.unwrap();
    let dead = runs.iter().find(|r| r.tick_ms == T0).unwrap();
    assert_eq!(dead.state, "abandoned");
    assert_eq!(dead.instance, "daemon-0");
    let next = runs.iter().find(|r| r.tick_ms == at).unwrap();
    assert_eq!(
        (next.state.as_str(), next.instance.as_str()),
        ("done", "daemon-1")
    );
}

/// Ticks missed while every instance was down: one catch-up run, once for the fleet.
async fn missed_ticks_get_one_catch_up_run(db: TestDb) {
    let clock = Arc::new(AtomicI64::new(T0 + 100));
    let fleet = runners(&db, &clock, Duration::from_secs(30)).await;
    let log: Log = Arc::default();
    let job = recording_job(
        "digest",
        log.clone(),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    // Never ran and does not ask for a first run: nothing to catch up.
    assert_eq!(fleet[0].catch_up(&job).await, None);
    assert!(matches!(
        fleet[0].fire_now(&job).await,
        Some(Fired::Ran(Ok(_)))
    ));
    // Down for 10 minutes, then the three start together.
    clock.store(T0 + 10 * MINUTE + 30_000, Ordering::SeqCst);
    let mut tasks = Vec::new();
    for r in &fleet {
        let (r, j) = (r.clone(), job.clone());
        tasks.push(tokio::spawn(async move { r.catch_up(&j).await }));
    }
    let mut ran = 0;
    for t in tasks {
        if let Some(Fired::Ran(Ok(_))) = t.await.unwrap() {
            ran += 1;
        }
    }
    assert_eq!(ran, 1, "one catch-up run for the fleet");
    let runs = db.store.job_runs(Some("digest"), 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0].tick_ms,
        T0 + 10 * MINUTE,
        "claimed as the latest missed tick"
    );
    assert!(runs[0].catch_up);
    // Up to date: no second catch-up.
    assert_eq!(fleet[1].catch_up(&job).await, None);
    // A job that asks for a first run gets it when it never ran.
    let mut first = recording_job(
        "sync:new",
        log.clone(),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    first.run_on_first_start = true;
    assert!(matches!(
        fleet[2].catch_up(&first).await,
        Some(Fired::Ran(Ok(_)))
    ));
}

on_both_backends!(
    fleet_runs_every_tick_once,
    a_long_run_skips_ticks,
    a_dead_holder_is_taken_over,
    missed_ticks_get_one_catch_up_run,
);

/// Several daemons starting at once on a fresh PostgreSQL database apply each migration
/// once (sqlx takes an advisory lock around the migrator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_start_migrates_once() {
    use tideline::config::Secret;
    let base = crate::common::postgres_url();
    let Ok(admin) = sqlx::PgPool::connect(&base).await else {
        assert!(
            std::env::var("TIDELINE_REQUIRE_POSTGRES").is_err(),
            "PostgreSQL required"
        );
        return;
    };
    let schema = format!("mig_{}_{}", std::process::id(), T0 % 1000);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let url = tideline::store::url_in_schema(&Secret::new(base.clone()), &schema);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            tideline::store::connect(&url, &Default::default())
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every instance starts");
    }
    let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, COUNT(*) FROM {schema}._sqlx_migrations GROUP BY version ORDER BY version"
    )))
    .fetch_all(&admin)
    .await
    .unwrap();
    let files = std::fs::read_dir("migrations/postgres").unwrap().count();
    assert_eq!(rows.len(), files);
    assert!(rows.iter().all(|(_, n)| *n == 1));
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}
