//! Sources status: every connector's last run, what it brought, and whether it needs a
//! look (`tideline sources status`, `GET /api/v1/sources`, and the warning a sync logs at
//! the end of a run).
//!
//! Health is judged from a source's recent runs (`import_runs`), newest first:
//! - `failing`: the last [`FAILING_RUNS`] runs or more failed in a row; `failed`: the last
//!   run failed, fewer in a row. The last error is shown as stored (it names the request
//!   and the secret's key, never a secret).
//! - `quiet`: the source returned at least [`QUIET_MIN_ITEMS`] items in the 24 hours before
//!   the last 24 hours, and none in the last 24 hours although runs completed: a query, a
//!   token's scope or the source itself changed. Rolling 24-hour windows, not calendar days,
//!   so the verdict is the same in every time zone of a fleet.
//! - `stale`: a scheduled connector with no successful run over its last three scheduled
//!   ticks (the daemon is down, or every run dies before it ends).
//! - `never_run`, `running` and `ok` say what they mean.
//!
//! Sources that are not configured connectors (file imports, watched folders) are listed
//! with their runs; only the failure rules apply to them, as they have no schedule of
//! their own to be quiet or stale against.

use crate::config::Config;
use crate::store::{RunSummary, SourceStatus, Store, StoreError};
use serde::Serialize;
use std::fmt::Write as _;

/// This many failed runs in a row make a source `failing`.
pub const FAILING_RUNS: usize = 3;
/// A source must have returned at least this many items in the previous 24 hours for
/// none in the last 24 hours to count as `quiet` (low-volume sources are often silent).
pub const QUIET_MIN_ITEMS: i64 = 10;
/// Runs read per source (at one run every five minutes, more than three days).
pub const RECENT_RUNS: i64 = 1000;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Ok,
    NeverRun,
    Running,
    Failed,
    Failing,
    Quiet,
    Stale,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::NeverRun => "never_run",
            HealthState::Running => "running",
            HealthState::Failed => "failed",
            HealthState::Failing => "failing",
            HealthState::Quiet => "quiet",
            HealthState::Stale => "stale",
        }
    }

    /// A problem to show and to log as a connector problem.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            HealthState::Failed | HealthState::Failing | HealthState::Quiet | HealthState::Stale
        )
    }
}

/// A source's health and the figures it was judged on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub state: HealthState,
    /// One sentence per problem, with what to check.
    pub problems: Vec<String>,
    /// Items the source returned in the last 24 hours, and in the 24 hours before.
    pub fetched_24h: i64,
    pub fetched_prev_24h: i64,
    /// Interactions it added in the last 24 hours.
    pub new_24h: i64,
    /// Runs that ended in the last 24 hours.
    pub runs_24h: i64,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
}

/// What the health rules know about a source besides its runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expectation<'a> {
    /// A configured connector (file imports are not).
    pub connector: bool,
    /// Its schedule, for `stale`.
    pub schedule: Option<&'a crate::schedule::Schedule>,
}

/// Judges a source from its recent runs, newest first.
pub fn judge(runs: &[RunSummary], now_ms: i64, expect: Expectation<'_>) -> Health {
    let window = |from: i64, to: i64| {
        runs.iter()
            .filter(move |r| r.started_at_ms >= from && r.started_at_ms < to)
    };
    let last_day = || window(now_ms - DAY_MS, i64::MAX);
    let fetched_24h = last_day().map(|r| r.read).sum();
    let new_24h = last_day().map(|r| r.inserted).sum();
    let runs_24h = last_day().filter(|r| r.status == "done").count() as i64;
    let fetched_prev_24h = window(now_ms - 2 * DAY_MS, now_ms - DAY_MS)
        .map(|r| r.read)
        .sum();
    // A run left `running` by a process that died is not a failure and not a success;
    // skip it when counting failures in a row.
    let finished = || {
        runs.iter()
            .enumerate()
            .filter(|(i, r)| r.status != "running" || *i == 0)
            .map(|(_, r)| r)
    };
    let consecutive_failures = finished()
        .skip_while(|r| r.status == "running")
        .take_while(|r| r.status == "failed")
        .count() as i64;
    let last_error = runs
        .iter()
        .find(|r| r.status == "failed")
        .and_then(|r| r.error.clone())
        .filter(|_| consecutive_failures > 0);
    let mut health = Health {
        state: HealthState::Ok,
        problems: Vec::new(),
        fetched_24h,
        fetched_prev_24h,
        new_24h,
        runs_24h,
        consecutive_failures,
        last_error: last_error.clone(),
    };
    let Some(last) = runs.first() else {
        health.state = if expect.connector {
            HealthState::NeverRun
        } else {
            HealthState::Ok
        };
        return health;
    };
    let error = last_error
        .as_deref()
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default();
    if consecutive_failures as usize >= FAILING_RUNS {
        let since = finished()
            .skip_while(|r| r.status == "running")
            .take_while(|r| r.status == "failed")
            .last()
            .map(|r| super::rfc3339(r.started_at_ms))
            .unwrap_or_default();
        health.state = HealthState::Failing;
        health.problems.push(format!(
            "failing: the last {consecutive_failures} runs failed (since {since}){error}"
        ));
    } else if consecutive_failures > 0 {
        health.state = HealthState::Failed;
        health
            .problems
            .push(format!("failed: the last run failed{error}"));
    }
    if expect.connector && fetched_prev_24h >= QUIET_MIN_ITEMS && fetched_24h == 0 && runs_24h > 0 {
        if health.state == HealthState::Ok {
            health.state = HealthState::Quiet;
        }
        health.problems.push(format!(
            "quiet: returned {fetched_prev_24h} items in the 24 hours before and none in the \
             last 24 hours over {runs_24h} completed runs; check the query or account, the \
             token's scopes, and the source itself"
        ));
    }
    if let (true, Some(schedule)) = (expect.connector, expect.schedule) {
        let last_success = runs
            .iter()
            .filter(|r| r.status == "done")
            .filter_map(|r| r.finished_at_ms)
            .max();
        let third_tick = schedule
            .tick_at_or_before(now_ms)
            .and_then(|t| schedule.tick_at_or_before(t - 1000))
            .and_then(|t| schedule.tick_at_or_before(t - 1000));
        // Judged only once the source has been running longer than three ticks.
        let oldest = runs.last().map_or(now_ms, |r| r.started_at_ms);
        if let Some(third) = third_tick.filter(|t| oldest < *t)
            && last_success.is_none_or(|s| s < third)
        {
            if health.state == HealthState::Ok {
                health.state = HealthState::Stale;
            }
            let since = last_success.map_or_else(|| "ever".to_string(), super::rfc3339);
            health.problems.push(format!(
                "stale: no successful run since {since}, over three scheduled runs (`{}`); \
                 check that a daemon is running (`tideline run`) and its log",
                schedule.expr()
            ));
        }
    }
    if health.state == HealthState::Ok && last.status == "running" {
        health.state = HealthState::Running;
    }
    health
}

/// One source as `tideline sources status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// The connector kind (`zendesk`, `mastodon`, ...), or `import` for file imports.
    pub kind: String,
    /// The connector's schedule (cron, seconds first).
    pub schedule: Option<String>,
    #[serde(flatten)]
    pub status: SourceStatus,
    pub health: Health,
}

/// Every configured connector (in configuration order, also those that never ran), then
/// every other source the store holds runs or interactions of.
pub async fn report(
    store: &dyn Store,
    config: &Config,
    now_ms: i64,
) -> Result<Vec<SourceReport>, StoreError> {
    let mut stored = store.sources_status().await?;
    let mut out = Vec::new();
    for c in &config.connectors {
        let status = match stored.iter().position(|s| s.source == c.name) {
            Some(i) => stored.remove(i),
            None => SourceStatus {
                source: c.name.clone(),
                ..Default::default()
            },
        };
        let runs = store.recent_runs(&c.name, RECENT_RUNS).await?;
        let expect = Expectation {
            connector: true,
            schedule: Some(&c.schedule),
        };
        out.push(SourceReport {
            kind: c.kind.as_str().to_string(),
            schedule: Some(c.schedule.expr().to_string()),
            health: judge(&runs, now_ms, expect),
            status,
        });
    }
    for status in stored {
        let runs = store.recent_runs(&status.source, RECENT_RUNS).await?;
        out.push(SourceReport {
            kind: "import".to_string(),
            schedule: None,
            health: judge(&runs, now_ms, Expectation::default()),
            status,
        });
    }
    Ok(out)
}

/// The health of one connector after a run, for the log.
pub async fn connector_health(
    store: &dyn Store,
    connector: &crate::config::ConnectorConfig,
    now_ms: i64,
) -> Result<Health, StoreError> {
    let runs = store.recent_runs(&connector.name, RECENT_RUNS).await?;
    Ok(judge(
        &runs,
        now_ms,
        Expectation {
            connector: true,
            schedule: Some(&connector.schedule),
        },
    ))
}

/// A table for the terminal, then one line per problem. Data-born text (errors quote
/// servers) goes through [`super::one_line`], so it cannot move the cursor or clear the
/// screen.
pub fn render_text(sources: &[SourceReport], now_ms: i64) -> String {
    let mut out = String::new();
    if sources.is_empty() {
        out.push_str(
            "No sources yet: configure a [[connector]] (config/example.toml shows each kind) or import a file.\n",
        );
        return out;
    }
    let ago = |ms: i64| {
        let secs = ((now_ms - ms) / 1000).max(0);
        match secs {
            s if s < 120 => format!("{s}s ago"),
            s if s < 7200 => format!("{}m ago", s / 60),
            s if s < 172_800 => format!("{}h ago", s / 3600),
            s => format!("{}d ago", s / 86_400),
        }
    };
    let rows: Vec<[String; 8]> = sources
        .iter()
        .map(|s| {
            let last = s.status.last_run.as_ref();
            [
                super::one_line(&s.status.source, 40),
                s.kind.clone(),
                last.map_or("never".into(), |r| {
                    format!("{} {}", r.status, ago(r.started_at_ms))
                }),
                last.map_or("-".into(), |r| format!("{}/{}", r.read, r.inserted)),
                format!("{}/{}", s.health.fetched_24h, s.health.fetched_prev_24h),
                s.status.last_success_ms.map_or("never".into(), &ago),
                s.status.interactions.to_string(),
                s.health.state.as_str().to_string(),
            ]
        })
        .collect();
    let header = [
        "SOURCE",
        "KIND",
        "LAST RUN",
        "FETCHED/NEW",
        "24H/PREV 24H",
        "LAST SUCCESS",
        "STORED",
        "HEALTH",
    ];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", line(&cells));
    }
    let problems: Vec<(&str, &str)> = sources
        .iter()
        .flat_map(|s| {
            s.health
                .problems
                .iter()
                .map(move |p| (s.status.source.as_str(), p.as_str()))
        })
        .collect();
    if !problems.is_empty() {
        out.push('\n');
        for (source, p) in problems {
            let _ = writeln!(
                out,
                "connector problem: {}: {}",
                super::one_line(source, 40),
                super::one_line(p, 600)
            );
        }
    }
    let open: i64 = sources.iter().map(|s| s.status.quarantine_open).sum();
    if open > 0 {
        let _ = writeln!(
            out,
            "\n{open} quarantined items are open: `tideline quarantine list` shows them, `tideline quarantine replay` reads them again."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;
    const H: i64 = 3_600_000;

    fn run(hours_ago: i64, status: &str, read: i64) -> RunSummary {
        RunSummary {
            id: 0,
            status: status.into(),
            started_at_ms: NOW - hours_ago * H,
            finished_at_ms: (status != "running").then_some(NOW - hours_ago * H + 1000),
            read,
            inserted: read,
            updated: 0,
            quarantined: 0,
            error: (status == "failed").then(|| format!("HTTP 503 at {hours_ago}h")),
        }
    }

    fn connector() -> Expectation<'static> {
        Expectation {
            connector: true,
            schedule: None,
        }
    }

    #[test]
    fn never_run_and_ok() {
        assert_eq!(judge(&[], NOW, connector()).state, HealthState::NeverRun);
        assert_eq!(
            judge(&[], NOW, Expectation::default()).state,
            HealthState::Ok
        );
        let h = judge(&[run(1, "done", 4), run(30, "done", 6)], NOW, connector());
        assert_eq!(h.state, HealthState::Ok);
        assert_eq!((h.fetched_24h, h.fetched_prev_24h, h.runs_24h), (4, 6, 1));
        assert!(h.problems.is_empty());
    }

    #[test]
    fn failures_in_a_row_count_past_an_interrupted_run() {
        let runs = [
            run(1, "failed", 0),
            run(2, "running", 0), // killed
            run(3, "failed", 0),
            run(4, "done", 9),
        ];
        let h = judge(&runs, NOW, connector());
        assert_eq!(h.state, HealthState::Failed);
        assert_eq!(h.consecutive_failures, 2);
        assert_eq!(h.last_error.as_deref(), Some("HTTP 503 at 1h"));
        let runs = [
            run(1, "failed", 0),
            run(2, "failed", 0),
            run(3, "failed", 0),
            run(4, "done", 9),
        ];
        let h = judge(&runs, NOW, connector());
        assert_eq!(h.state, HealthState::Failing);
        assert!(h.problems[0].contains("last 3 runs failed"), "{:?}", h);
        assert!(h.problems[0].contains("HTTP 503 at 1h"), "{:?}", h);
        // A success clears it.
        let h = judge(&[run(0, "done", 1), runs[0].clone()], NOW, connector());
        assert_eq!(h.state, HealthState::Ok);
        assert_eq!(h.last_error, None);
    }

    #[test]
    fn quiet_needs_volume_before_and_completed_runs_now() {
        let mut runs = vec![run(1, "done", 0), run(10, "done", 0)];
        runs.extend((25..40).map(|h| run(h, "done", 2)));
        let h = judge(&runs, NOW, connector());
        assert_eq!(h.state, HealthState::Quiet, "{h:?}");
        assert!(h.problems[0].contains("returned 30 items"), "{h:?}");
        // Not for file imports, not below the minimum, not without a run today.
        assert_eq!(
            judge(&runs, NOW, Expectation::default()).state,
            HealthState::Ok
        );
        let few: Vec<_> = [run(1, "done", 0), run(30, "done", 9)].into();
        assert_eq!(judge(&few, NOW, connector()).state, HealthState::Ok);
        let none_today: Vec<_> = runs[2..].to_vec();
        assert_eq!(judge(&none_today, NOW, connector()).state, HealthState::Ok);
    }

    #[test]
    fn stale_after_three_scheduled_ticks_without_success() {
        let hourly = crate::schedule::Schedule::parse("0 0 * * * *", chrono_tz::UTC).unwrap();
        let expect = Expectation {
            connector: true,
            schedule: Some(&hourly),
        };
        let runs = [run(5, "done", 3), run(6, "done", 1)];
        let h = judge(&runs, NOW, expect);
        assert_eq!(h.state, HealthState::Stale, "{h:?}");
        assert!(h.problems[0].contains("tideline run"), "{h:?}");
        let fresh = [run(1, "done", 3), run(6, "done", 1)];
        assert_eq!(judge(&fresh, NOW, expect).state, HealthState::Ok);
        // A connector added two hours ago is not stale yet.
        assert_eq!(
            judge(&[run(2, "failed", 0)], NOW, expect).state,
            HealthState::Failed
        );
    }

    #[test]
    fn text_names_each_problem_on_one_line() {
        let status = SourceStatus {
            source: "reviews\x1b[2J".into(),
            ..Default::default()
        };
        let mut health = judge(
            &[
                run(1, "failed", 0),
                run(2, "failed", 0),
                run(3, "failed", 0),
            ],
            NOW,
            connector(),
        );
        health.problems[0].push_str("\r\nInjected: line");
        let text = render_text(
            &[SourceReport {
                kind: "google".into(),
                schedule: None,
                status,
                health,
            }],
            NOW,
        );
        assert!(
            text.contains("connector problem: reviews [2J: failing"),
            "{text}"
        );
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text}");
        assert!(!text.contains("\nInjected"), "{text}");
    }
}
