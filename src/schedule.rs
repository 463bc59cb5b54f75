//! Scheduled jobs that run once per tick across a fleet.
//!
//! tokio-cron-scheduler fires each job on every instance; what makes a tick run once is
//! the store: [`Runner::fire`] claims the (job, scheduled tick) in one transaction
//! ([`Store::claim_job`]) and only the instance that gets [`Claim::Run`] runs it. While it
//! runs, a heartbeat renews the claim's lease; an instance that dies stops renewing, the
//! lease runs out, and the next tick runs elsewhere (the dead run is marked `abandoned`).
//!
//! Policies:
//! - **No overlap.** A tick that fires while the job still runs (on this instance, or on
//!   another one that holds its lease) is skipped, counted and logged.
//! - **Missed ticks.** Ticks that passed while no instance was up are not replayed one by
//!   one: at start, a job whose last recorded tick is older than its latest scheduled tick
//!   gets **one** catch-up run, claimed as that latest tick, so a fleet starting together
//!   runs it once. A job that never ran starts with one run only if it asks for it
//!   (connectors do: a new source is synced at once).
//! - **Time zones.** Ticks are computed with the job's IANA zone, so a daily job at 03:30
//!   Europe/Berlin stays at 03:30 across DST changes. (tokio-cron-scheduler fixes a zone's
//!   UTC offset when a job is created; [`Daemon`](crate::daemon) re-creates zoned jobs when
//!   the offset changes.)

use crate::metrics::Metrics;
use crate::store::{Claim, ClaimRequest, Store};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A cron schedule (six fields, seconds first) read in an IANA zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    cron: croner::Cron,
    pub tz: Tz,
}

impl Schedule {
    /// Parses like tokio-cron-scheduler does (seconds required; day-of-month AND
    /// day-of-week when both are given).
    pub fn parse(expr: &str, tz: Tz) -> Result<Schedule, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .map_err(|e| e.to_string())?;
        Ok(Schedule {
            expr: expr.to_string(),
            cron,
            tz,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The latest scheduled time at or before `at_ms`.
    pub fn tick_at_or_before(&self, at_ms: i64) -> Option<i64> {
        let at = self.whole_second(at_ms)?;
        self.cron
            .find_previous_occurrence(&at, true)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The first scheduled time after `after_ms`.
    pub fn tick_after(&self, after_ms: i64) -> Option<i64> {
        let at = self.whole_second(after_ms)?;
        self.cron
            .find_next_occurrence(&at, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The time rounded down to its second (croner keeps the milliseconds it is given).
    fn whole_second(&self, ms: i64) -> Option<DateTime<Tz>> {
        self.tz
            .timestamp_millis_opt(ms - ms.rem_euclid(1000))
            .single()
    }

    /// The tick a firing at `fired_ms` stands for. A timer may fire a little early or
    /// late; a firing within one second before a tick counts as that tick.
    pub fn tick_for_firing(&self, fired_ms: i64) -> Option<i64> {
        self.tick_at_or_before(fired_ms + 1000)
    }
}

/// What a job's body gets.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub job: String,
    /// The instance running it.
    pub instance: String,
    pub tick_ms: i64,
    pub catch_up: bool,
    /// Cancelled when the daemon stops or this instance lost the claim: finish the unit
    /// of work in hand (a page), commit it, and return.
    pub stop: CancellationToken,
}

/// A job's body: `Ok(summary)` or `Err(message)`.
pub type RunFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
pub type RunFn = Arc<dyn Fn(RunContext) -> RunFuture + Send + Sync>;

/// One scheduled job.
#[derive(Clone)]
pub struct ScheduledJob {
    /// Stable name: `sync:<connector>`, `analyze`, `sentiment-adapt`, ...
    pub name: String,
    pub schedule: Schedule,
    /// Run once at the first start, before any tick (connectors).
    pub run_on_first_start: bool,
    pub run: RunFn,
}

impl std::fmt::Debug for ScheduledJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledJob")
            .field("name", &self.name)
            .field("schedule", &self.schedule.expr)
            .field("tz", &self.schedule.tz)
            .finish()
    }
}

/// What a firing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// This instance ran the tick; `Err` holds the job's error.
    Ran(Result<String, String>),
    /// The job was still running here: tick skipped.
    SkippedRunningHere,
    /// The job was still running a previous tick on an instance of the fleet.
    SkippedBusy { instance: String, tick_ms: i64 },
    /// Another instance ran (or runs) this tick.
    Taken { instance: String },
    /// This instance lost its claim while running (its lease ran out).
    LostClaim,
    /// The store could not be asked; the tick is left to the other instances.
    StoreError(String),
}

/// A time source in milliseconds (the wall clock, or a test's accelerated one).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn wall_clock() -> Clock {
    Arc::new(|| Utc::now().timestamp_millis())
}

/// Claims and runs ticks for one instance.
pub struct Runner {
    store: Arc<dyn Store>,
    instance: String,
    lease: Duration,
    clock: Clock,
    metrics: Arc<Metrics>,
    running: Mutex<HashSet<String>>,
    shutdown: CancellationToken,
    in_flight: tokio::sync::Semaphore,
}

/// How many runs one instance may have in flight at once (a bound, not a tuning knob:
/// each job runs at most once at a time anyway).
const MAX_IN_FLIGHT: u32 = 1 << 16;

impl Runner {
    pub fn new(
        store: Arc<dyn Store>,
        instance: impl Into<String>,
        lease: Duration,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Runner {
        Runner {
            store,
            instance: instance.into(),
            lease,
            clock,
            metrics,
            running: Mutex::default(),
            shutdown: CancellationToken::new(),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT as usize),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Asks running jobs to stop after their current unit of work; new ticks are ignored.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until no run is in flight, at most `timeout`. `true`: all runs ended.
    pub async fn drained(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.in_flight.acquire_many(MAX_IN_FLIGHT))
            .await
            .is_ok()
    }

    /// Fires `job` at the current time: the tick is the scheduled time it stands for.
    pub async fn fire_now(&self, job: &ScheduledJob) -> Option<Fired> {
        let now = (self.clock)();
        let tick = job.schedule.tick_for_firing(now)?;
        Some(self.fire(job, tick, false).await)
    }

    /// The start-up policy: one catch-up run when ticks were missed while no instance was
    /// up (see the module docs). `None`: nothing to catch up.
    pub async fn catch_up(&self, job: &ScheduledJob) -> Option<Fired> {
        let now = (self.clock)();
        let last = match self.store.job_runs(Some(&job.name), 1).await {
            Ok(runs) => runs.first().map(|r| r.tick_ms),
            Err(e) => return Some(Fired::StoreError(e.to_string())),
        };
        let latest = job.schedule.tick_at_or_before(now);
        let tick = match (last, latest) {
            (Some(last), Some(latest)) if latest > last => latest,
            (Some(_), _) => return None,
            // Never ran: a first run now if the job asks for it, as the latest tick (or
            // now, for a schedule with no past occurrence).
            (None, latest) if job.run_on_first_start => latest.unwrap_or(now),
            (None, _) => return None,
        };
        self.metrics.job(&job.name, |j| j.catch_up_runs += 1);
        tracing::info!(job = %job.name, tick = %fmt_ms(tick), "Catching up: one run for the ticks missed while no instance was up.");
        Some(self.fire(job, tick, true).await)
    }

    /// Claims (job, tick) and runs it if this instance got the claim.
    pub async fn fire(&self, job: &ScheduledJob, tick_ms: i64, catch_up: bool) -> Fired {
        if self.shutdown.is_cancelled() {
            return Fired::SkippedRunningHere;
        }
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return Fired::SkippedRunningHere;
        };
        if !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.name.clone())
        {
            self.metrics.job(&job.name, |j| j.skipped_overlap += 1);
            tracing::warn!(job = %job.name, tick = %fmt_ms(tick_ms), "The previous run is still going; this tick is skipped.");
            return Fired::SkippedRunningHere;
        }
        let fired = self.claim_and_run(job, tick_ms, catch_up).await;
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job.name);
        fired
    }

    async fn claim_and_run(&self, job: &ScheduledJob, tick_ms: i64, catch_up: bool) -> Fired {
        let lease_ms = self.lease.as_millis() as i64;
        let claim = self
            .store
            .claim_job(&ClaimRequest {
                job: &job.name,
                tick_ms,
                instance: &self.instance,
                now_ms: (self.clock)(),
                lease_ms,
                catch_up,
            })
            .await;
        let attempt = match claim {
            Ok(Claim::Run { attempt }) => attempt,
            Ok(Claim::Taken { instance }) => {
                self.metrics.job(&job.name, |j| j.claimed_elsewhere += 1);
                tracing::debug!(job = %job.name, tick = %fmt_ms(tick_ms), %instance, "Tick claimed by another instance.");
                return Fired::Taken { instance };
            }
            Ok(Claim::Busy {
                instance,
                tick_ms: running,
            }) => {
                self.metrics.job(&job.name, |j| j.skipped_overlap += 1);
                tracing::warn!(job = %job.name, tick = %fmt_ms(tick_ms), %instance, running = %fmt_ms(running), "The job is still running an earlier tick; this tick is skipped.");
                return Fired::SkippedBusy {
                    instance,
                    tick_ms: running,
                };
            }
            Err(e) => {
                tracing::error!(job = %job.name, error = %e, "Cannot claim the tick; leaving it to the other instances.");
                return Fired::StoreError(e.to_string());
            }
        };
        if attempt > 1 {
            tracing::warn!(job = %job.name, tick = %fmt_ms(tick_ms), attempt, "Taking the tick over from an instance whose lease ran out.");
        }

        let lost = CancellationToken::new();
        let stop = self.shutdown.child_token();
        let heartbeat = {
            let store = self.store.clone();
            let clock = self.clock.clone();
            let name = job.name.clone();
            let instance = self.instance.clone();
            let lost = lost.clone();
            let stop = stop.clone();
            let every = (self.lease / 3).max(Duration::from_millis(50));
            AbortOnDrop(tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    match store
                        .renew_job_lease(&name, tick_ms, &instance, clock() + lease_ms)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(job = %name, "This instance lost its claim (lease ran out); stopping the run.");
                            lost.cancel();
                            stop.cancel();
                            return;
                        }
                        // A store hiccup: keep the run; the next renewal may succeed
                        // before the lease runs out.
                        Err(e) => {
                            tracing::warn!(job = %name, error = %e, "Cannot renew the lease.")
                        }
                    }
                }
            }))
        };
        let started = Instant::now();
        let result = (job.run)(RunContext {
            job: job.name.clone(),
            instance: self.instance.clone(),
            tick_ms,
            catch_up,
            stop,
        })
        .await;
        drop(heartbeat);
        let secs = started.elapsed().as_secs_f64();
        self.metrics.job(&job.name, |j| {
            j.runs += 1;
            j.failures += u64::from(result.is_err());
            j.last_duration_secs = secs;
        });
        if lost.is_cancelled() {
            return Fired::LostClaim;
        }
        let finished = self
            .store
            .finish_job(
                &job.name,
                tick_ms,
                &self.instance,
                (self.clock)(),
                result.as_ref().err().map(String::as_str),
            )
            .await;
        match (&result, finished) {
            (_, Ok(false)) => return Fired::LostClaim,
            (_, Err(e)) => {
                tracing::error!(job = %job.name, error = %e, "Cannot record the end of the run.")
            }
            (Ok(summary), Ok(true)) => {
                tracing::info!(job = %job.name, tick = %fmt_ms(tick_ms), seconds = secs, %summary, "Job done.")
            }
            (Err(e), Ok(true)) => {
                tracing::error!(job = %job.name, tick = %fmt_ms(tick_ms), seconds = secs, error = %e, "Job failed.")
            }
        }
        Fired::Ran(result)
    }
}

/// Stops the heartbeat with the run, also when the run's future is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A tick as RFC 3339 UTC, for logs.
pub fn fmt_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn ticks_follow_the_zone_across_dst() {
        // 03:30 every day in Berlin: 01:30 UTC in summer, 02:30 UTC in winter.
        let s = Schedule::parse("0 30 3 * * *", chrono_tz::Europe::Berlin).unwrap();
        let before_change = s.tick_after(ms("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(before_change, ms("2026-10-25T02:30:00Z"));
        let summer = s.tick_after(ms("2026-10-23T12:00:00Z")).unwrap();
        assert_eq!(summer, ms("2026-10-24T01:30:00Z"));
        assert_eq!(
            s.tick_at_or_before(ms("2026-10-25T09:00:00Z")),
            Some(ms("2026-10-25T02:30:00Z"))
        );
    }

    #[test]
    fn a_firing_stands_for_its_tick() {
        let s = Schedule::parse("*/10 * * * * *", chrono_tz::UTC).unwrap();
        // Early by 300 ms, late by 400 ms: both are the tick at :10.
        assert_eq!(
            s.tick_for_firing(ms("2026-01-01T00:00:09.700Z")),
            Some(ms("2026-01-01T00:00:10Z"))
        );
        assert_eq!(
            s.tick_for_firing(ms("2026-01-01T00:00:10.400Z")),
            Some(ms("2026-01-01T00:00:10Z"))
        );
        assert!(Schedule::parse("*/5 * * * *", chrono_tz::UTC).is_err());
    }
}
