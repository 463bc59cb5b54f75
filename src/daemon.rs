//! `tideline run`: the scheduled jobs, the HTTP API, signals and systemd.
//!
//! Jobs: `sync:<connector>` per `[[connector]]` (its own schedule and zone), `watch:<name>`
//! per `[[watch]]` folder, `analyze`
//! (change detection catch-up, `pipeline.detect_cron`) and `sentiment-adapt`
//! (`pipeline.sentiment_adapt_cron`), the latter two read in `scheduler.timezone`, and
//! `digest` (`digest.check_cron`, UTC) when `[[digest.recipient]]`s are configured, and
//! `crm` (`crm.cron`, UTC: every sink's outbox drained) when `[[crm.sink]]`s are. Every
//! firing goes through [`Runner`], which claims the tick in the store.
//!
//! Signals: SIGTERM/SIGINT stop taking ticks, let running jobs finish the page in hand
//! (at most `scheduler.stop_timeout_secs`), and exit 0. SIGHUP reads the configuration
//! again: when it is valid, the jobs are drained and scheduled again from it (connectors,
//! schedules, zones, lease); when it is not, every problem is logged and the running
//! configuration stays. Storage settings take effect at the next start.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::pipeline::Analyzer;
use crate::schedule::{RunFn, Runner, Schedule, ScheduledJob, wall_clock};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("scheduler: {0}")]
    Scheduler(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What SIGHUP does: read and validate the configuration file again.
pub type Reload = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// This instance's name in claims: the configured one, else host name and process id.
pub fn instance_name(config: &Config) -> String {
    config.scheduler.instance.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        format!("{host}-{}", std::process::id())
    })
}

/// The jobs a configuration asks for.
pub fn jobs(
    config: &Config,
    store: Arc<dyn Store>,
    analyzer: Arc<Analyzer>,
    metrics: Arc<Metrics>,
) -> Vec<ScheduledJob> {
    let mut jobs = Vec::new();
    for c in &config.connectors {
        let (store, analyzer, metrics, config, connector) = (
            store.clone(),
            analyzer.clone(),
            metrics.clone(),
            Arc::new(config.clone()),
            c.clone(),
        );
        let run: RunFn = Arc::new(move |cx| {
            let (store, analyzer, metrics, config, connector) = (
                store.clone(),
                analyzer.clone(),
                metrics.clone(),
                config.clone(),
                connector.clone(),
            );
            Box::pin(async move {
                crate::sync::sync_connector(
                    store.as_ref(),
                    analyzer,
                    &config,
                    &connector,
                    metrics,
                    cx.stop,
                )
                .await
                .map(|r| r.to_string())
                .map_err(|e| e.to_string())
            })
        });
        jobs.push(ScheduledJob {
            name: format!("sync:{}", c.name),
            schedule: c.schedule.clone(),
            run_on_first_start: true,
            run,
        });
    }
    for w in &config.watches {
        let (store, analyzer, config, watch) = (
            store.clone(),
            analyzer.clone(),
            Arc::new(config.clone()),
            w.clone(),
        );
        let run: RunFn = Arc::new(move |cx| {
            let (store, analyzer, config, watch) = (
                store.clone(),
                analyzer.clone(),
                config.clone(),
                watch.clone(),
            );
            Box::pin(async move {
                let r = crate::watch::scan(store.as_ref(), analyzer, &config, &watch, &cx.stop)
                    .await
                    .map_err(|e| e.to_string())?;
                let failed: Vec<String> = r
                    .files
                    .iter()
                    .filter_map(|f| match &f.result {
                        crate::watch::FileResult::Failed { error, .. } => {
                            Some(format!("{}: {error}", f.file))
                        }
                        _ => None,
                    })
                    .collect();
                if failed.is_empty() {
                    Ok(r.to_string())
                } else {
                    Err(format!("{r}; {}", failed.join("; ")))
                }
            })
        });
        jobs.push(ScheduledJob {
            name: format!("watch:{}", w.name),
            schedule: w.schedule.clone(),
            run_on_first_start: true,
            run,
        });
    }
    let tz = config.scheduler.timezone;
    {
        let (store, metrics) = (store.clone(), metrics.clone());
        let name_window_ms = config.identity.name_window_days as i64 * 86_400_000;
        let run: RunFn = Arc::new(move |_cx| {
            let (store, metrics) = (store.clone(), metrics.clone());
            Box::pin(async move {
                // Display-name link suggestions over what arrived since the last pass.
                let names = store
                    .suggest_by_name(name_window_ms)
                    .await
                    .map_err(|e| e.to_string())?;
                let settings = crate::pipeline::detect::Settings::default();
                let started = std::time::Instant::now();
                let now = chrono::Utc::now().timestamp_millis();
                let r = crate::analyze::analyze(store.as_ref(), &settings, now)
                    .await
                    .map_err(|e| e.to_string())?;
                metrics.analyzed(r.interactions as u64, started.elapsed().as_secs_f64());
                Ok(format!(
                    "{} interactions, {} series, {} confirmed, {} watching, {} incidents; {} display-name suggestion(s)",
                    r.interactions,
                    r.series,
                    r.confirmed,
                    r.watching,
                    r.incidents,
                    names.suggestions
                ))
            })
        });
        jobs.push(ScheduledJob {
            name: "analyze".into(),
            schedule: Schedule::parse(&config.pipeline.detect_cron, tz).expect("validated"),
            run_on_first_start: false,
            run,
        });
    }
    if config.pipeline.sentiment_adapt {
        let (store, pipeline) = (store.clone(), config.pipeline.clone());
        let run: RunFn = Arc::new(move |_cx| {
            let (store, pipeline) = (store.clone(), pipeline.clone());
            Box::pin(async move {
                let now = chrono::Utc::now().timestamp_millis();
                let o = crate::learn::train(store.as_ref(), &pipeline, now)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "model {}: built-in accuracy {:.3}, adapted {:.3}, adopted {}, {} texts re-scored",
                    o.version,
                    o.report.base_accuracy,
                    o.report.adapted_accuracy,
                    o.report.adopted,
                    o.rescored
                ))
            })
        });
        jobs.push(ScheduledJob {
            name: "sentiment-adapt".into(),
            schedule: Schedule::parse(&config.pipeline.sentiment_adapt_cron, tz)
                .expect("validated"),
            run_on_first_start: false,
            run,
        });
    }
    if !config.digest.recipients.is_empty() && config.smtp.is_some() {
        // One job checks every recipient: each digest is due at the recipient's local
        // hour in their zone (`outputs::digest::due_period`), and `digests_sent` makes
        // it go out once; a failed one is tried again at the next check.
        let (store, shared) = (store.clone(), Arc::new(config.clone()));
        let run: RunFn = Arc::new(move |cx| {
            let (store, config) = (store.clone(), shared.clone());
            Box::pin(async move {
                let now = chrono::Utc::now().timestamp_millis();
                let reports =
                    crate::digest::send_due(store.as_ref(), &config, None, &cx.instance, now)
                        .await
                        .map_err(|e| e.to_string())?;
                let sent = reports
                    .iter()
                    .filter(|r| matches!(r.outcome, crate::digest::Outcome::Sent { .. }))
                    .count();
                let failed: Vec<String> = reports
                    .iter()
                    .filter(|r| matches!(r.outcome, crate::digest::Outcome::Failed { .. }))
                    .map(|r| r.to_string())
                    .collect();
                if failed.is_empty() {
                    Ok(format!(
                        "{sent} digest(s) sent, {} recipient(s) checked",
                        reports.len()
                    ))
                } else {
                    Err(format!("{sent} digest(s) sent; {}", failed.join("; ")))
                }
            })
        });
        jobs.push(ScheduledJob {
            name: "digest".into(),
            schedule: Schedule::parse(&config.digest.check_cron, chrono_tz::UTC)
                .expect("validated"),
            run_on_first_start: true,
            run,
        });
    }
    if !config.crm.sinks.is_empty() {
        // One job drains every sink: the tick's claim makes one instance of a fleet run
        // it, and the outbox's leases keep a manual `crm sync` from sending the same item
        // at the same time. Items in backoff wait for the next tick.
        let (store, shared) = (store.clone(), Arc::new(config.clone()));
        let run: RunFn = Arc::new(move |cx| {
            let (store, config) = (store.clone(), shared.clone());
            Box::pin(async move {
                let sinks: Vec<&crate::config::SinkConfig> = config.crm.sinks.iter().collect();
                let runs = crate::sinks::crm::sync(
                    store.as_ref(),
                    &config,
                    &sinks,
                    &crate::sinks::crm::SyncOptions::default(),
                    &cx.stop,
                )
                .await
                .map_err(|e| e.to_string())?;
                let text: Vec<String> = runs.iter().map(|r| r.to_string()).collect();
                if runs
                    .iter()
                    .any(|r| r.stopped.as_deref().is_some_and(|s| s != "stop requested"))
                {
                    Err(text.join("; "))
                } else {
                    Ok(text.join("; "))
                }
            })
        });
        jobs.push(ScheduledJob {
            name: "crm".into(),
            schedule: Schedule::parse(&config.crm.cron, chrono_tz::UTC).expect("validated"),
            run_on_first_start: true,
            run,
        });
    }
    jobs
}

/// The jobs registered with tokio-cron-scheduler, and the UTC offset each zoned job was
/// registered with (the scheduler keeps that offset; a DST change needs a new job).
struct Registered {
    scheduler: JobScheduler,
    jobs: Mutex<HashMap<String, (uuid::Uuid, i32)>>,
}

fn offset_now(tz: chrono_tz::Tz) -> i32 {
    use chrono::{Offset, TimeZone};
    tz.offset_from_utc_datetime(&chrono::Utc::now().naive_utc())
        .fix()
        .local_minus_utc()
}

fn cron_job(job: &ScheduledJob, runner: Arc<Runner>) -> Result<Job, DaemonError> {
    let name = job.name.clone();
    let job = job.clone();
    let tz = job.schedule.tz;
    let expr = job.schedule.expr().to_string();
    Job::new_async_tz(expr.as_str(), tz, move |_, _| {
        let (runner, job) = (runner.clone(), job.clone());
        Box::pin(async move {
            // Detached, so a long run never holds up the scheduler's other jobs.
            tokio::spawn(async move {
                runner.fire_now(&job).await;
            });
        })
    })
    .map_err(|e| DaemonError::Scheduler(format!("{name}: {e}")))
}

impl Registered {
    async fn start(
        jobs: &[ScheduledJob],
        runner: &Arc<Runner>,
    ) -> Result<Arc<Registered>, DaemonError> {
        let scheduler = JobScheduler::new()
            .await
            .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
        let reg = Arc::new(Registered {
            scheduler,
            jobs: Mutex::default(),
        });
        for job in jobs {
            reg.add(job, runner).await?;
        }
        // DST: every minute, jobs whose zone changed its UTC offset are registered again.
        let (jobs_again, runner_again, weak) =
            (jobs.to_vec(), runner.clone(), Arc::downgrade(&reg));
        let watcher = Job::new_async("0 * * * * *", move |_, _| {
            let (jobs, runner, weak) = (jobs_again.clone(), runner_again.clone(), weak.clone());
            Box::pin(async move {
                let Some(reg) = weak.upgrade() else { return };
                for job in &jobs {
                    let stale = reg
                        .jobs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&job.name)
                        .is_some_and(|(_, off)| *off != offset_now(job.schedule.tz));
                    if stale {
                        tracing::info!(job = %job.name, zone = %job.schedule.tz, "The zone changed its UTC offset; scheduling the job again.");
                        if let Err(e) = reg.add(job, &runner).await {
                            tracing::error!(job = %job.name, error = %e, "Cannot schedule the job again.");
                        }
                    }
                }
            })
        })
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
        reg.scheduler
            .add(watcher)
            .await
            .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
        reg.scheduler
            .start()
            .await
            .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
        Ok(reg)
    }

    async fn add(&self, job: &ScheduledJob, runner: &Arc<Runner>) -> Result<(), DaemonError> {
        let old = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job.name);
        if let Some((id, _)) = old {
            let _ = self.scheduler.remove(&id).await;
        }
        let id = self
            .scheduler
            .add(cron_job(job, runner.clone())?)
            .await
            .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.name.clone(), (id, offset_now(job.schedule.tz)));
        Ok(())
    }

    async fn stop(&self) {
        let mut s = self.scheduler.clone();
        if let Err(e) = s.shutdown().await {
            tracing::warn!(error = %e, "Scheduler shutdown.");
        }
    }
}

/// Why the serving loop ended.
enum Signal {
    Stop,
    Reload,
}

/// The daemon's signal streams, installed before anything slow starts, so a SIGTERM that
/// arrives while the model loads is a stop request and not the default kill.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// Hooks the daemon offers to what runs beside the scheduler (the HTTP API).
pub struct Services {
    pub metrics: Arc<Metrics>,
    /// Set once the daemon serves; cleared when it stops (`/readyz`).
    pub ready: Arc<std::sync::atomic::AtomicBool>,
}

/// Runs until SIGTERM. `serve_http` starts the HTTP API for a configuration and returns
/// a handle that stops it when its token is cancelled.
pub async fn run(
    mut config: Config,
    mut signals: Signals,
    store: Arc<dyn Store>,
    analyzer: Arc<Analyzer>,
    services: Services,
    reload: Reload,
    serve_http: &(dyn Fn(&Config, CancellationToken) -> Option<tokio::task::JoinHandle<()>> + Sync),
) -> Result<(), DaemonError> {
    let metrics = services.metrics.clone();
    let watchdog = crate::notify::watchdog_interval().map(|every| {
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            loop {
                t.tick().await;
                crate::notify::notify("WATCHDOG=1");
            }
        })
    });
    loop {
        let instance = instance_name(&config);
        let runner = Arc::new(Runner::new(
            store.clone(),
            instance.clone(),
            config.scheduler.lease,
            wall_clock(),
            metrics.clone(),
        ));
        let jobs = jobs(&config, store.clone(), analyzer.clone(), metrics.clone());
        let registered = Registered::start(&jobs, &runner).await?;
        for job in &jobs {
            let (runner, job) = (runner.clone(), job.clone());
            tokio::spawn(async move {
                runner.catch_up(&job).await;
            });
        }
        let http_stop = CancellationToken::new();
        let http = serve_http(&config, http_stop.clone());
        services
            .ready
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let status = format!(
            "READY=1\nSTATUS=serving: {} jobs, {} connectors, instance {instance}",
            jobs.len(),
            config.connectors.len()
        );
        crate::notify::notify(&status);
        tracing::info!(
            backend = store.backend(),
            %instance,
            jobs = jobs.len(),
            connectors = config.connectors.len(),
            "Tideline serving."
        );
        let signal = signals.next().await;
        let next = match signal {
            Signal::Stop => None,
            Signal::Reload => match reload() {
                Ok(c) => Some(c),
                Err(problems) => {
                    tracing::error!(%problems, "The configuration has problems; keeping the running one.");
                    // Keep serving with the running configuration until the next signal.
                    loop {
                        match signals.next().await {
                            Signal::Stop => break None,
                            Signal::Reload => match reload() {
                                Ok(c) => break Some(c),
                                Err(p) => {
                                    tracing::error!(problems = %p, "The configuration has problems; keeping the running one.")
                                }
                            },
                        }
                    }
                }
            },
        };
        crate::notify::notify(if next.is_some() {
            "RELOADING=1\nSTATUS=reloading the configuration"
        } else {
            "STOPPING=1\nSTATUS=stopping: finishing the pages in hand"
        });
        tracing::info!(reload = next.is_some(), "Draining running jobs.");
        services
            .ready
            .store(false, std::sync::atomic::Ordering::SeqCst);
        registered.stop().await;
        runner.shutdown();
        let timeout = config.scheduler.stop_timeout;
        if !runner.drained(timeout).await {
            tracing::warn!(
                timeout_secs = timeout.as_secs(),
                "Jobs still running at the stop timeout; their uncommitted page is dropped and fetched again next time."
            );
        }
        http_stop.cancel();
        if let Some(h) = http {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        match next {
            Some(c) => {
                if c.storage.database_url != config.storage.database_url
                    || c.storage.data_dir != config.storage.data_dir
                {
                    tracing::warn!("Storage settings changed; they take effect at the next start.");
                }
                config = c;
                tracing::info!("Configuration reloaded.");
            }
            None => break,
        }
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("Stopped.");
    Ok(())
}
