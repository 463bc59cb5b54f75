//! `[[watch]]`: folders whose dropped export files are imported, each content once.

use crate::connectors::files::Preset;
use crate::schedule::Schedule;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    name: String,
    dir: PathBuf,
    preset: String,
    mapping: Option<PathBuf>,
    source: Option<String>,
    location: Option<String>,
    timezone: Option<String>,
    schedule: Option<String>,
    settle_secs: Option<u64>,
    max_attempts: Option<u32>,
}

/// One watched folder.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Unique; the daemon's job is `watch:<name>`.
    pub name: String,
    pub dir: PathBuf,
    pub preset: Preset,
    pub mapping: Option<PathBuf>,
    pub source: Option<String>,
    pub location: Option<String>,
    pub timezone: Option<String>,
    pub schedule: Schedule,
    /// A file modified more recently than this is still being written: next time.
    pub settle: Duration,
    /// A file whose import failed this many times is left alone until its content changes.
    pub max_attempts: u32,
}

pub const DEFAULT_WATCH_CRON: &str = "0 * * * * *";

pub(super) fn watches(
    raw: Vec<RawWatch>,
    location_ids: &[String],
    scheduler_tz: chrono_tz::Tz,
    problems: &mut Vec<String>,
) -> Vec<WatchConfig> {
    let mut out: Vec<WatchConfig> = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let at = format!("watch[{i}] ({})", w.name);
        if w.name.is_empty()
            || !w
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push(format!(
                "{at}.name: `{}` is not a name; fix: letters, digits, `-` or `_`",
                w.name
            ));
        }
        if out.iter().any(|o| o.name == w.name) {
            problems.push(format!(
                "{at}.name: `{}` is used twice; fix: give each watch its own name",
                w.name
            ));
        }
        let preset = Preset::parse(&w.preset).unwrap_or_else(|| {
            problems.push(format!(
                "{at}.preset: unknown preset `{}`; fix: one of {}",
                w.preset,
                Preset::ALL.map(|p| p.name()).join(", ")
            ));
            Preset::ALL[0]
        });
        if !w.dir.is_dir() {
            problems.push(format!(
                "{at}.dir: `{}` is not a directory; fix: create it (the daemon's user must read it)",
                w.dir.display()
            ));
        }
        if let Some(m) = &w.mapping
            && !m.is_file()
        {
            problems.push(format!(
                "{at}.mapping: `{}` does not exist; fix: the path of a mapping file",
                m.display()
            ));
        }
        if let Some(l) = &w.location
            && !location_ids.contains(l)
        {
            problems.push(format!(
                "{at}.location: `{l}` is not a configured location; fix: one of the [[location]] ids"
            ));
        }
        if let Some(tz) = &w.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            problems.push(format!(
                "{at}.timezone: `{tz}` is not an IANA time zone; fix: e.g. \"Europe/Berlin\""
            ));
        }
        let schedule = super::daemon::schedule(
            &format!("{at}.schedule"),
            w.schedule.as_deref().unwrap_or(DEFAULT_WATCH_CRON),
            scheduler_tz,
            problems,
        );
        let settle_secs = w.settle_secs.unwrap_or(10);
        if settle_secs > 3600 {
            problems.push(format!(
                "{at}.settle_secs: {settle_secs} is out of range; fix: 0 to 3600 (default 10)"
            ));
        }
        let max_attempts = w.max_attempts.unwrap_or(3);
        if !(1..=100).contains(&max_attempts) {
            problems.push(format!(
                "{at}.max_attempts: {max_attempts} is out of range; fix: 1 to 100 (default 3)"
            ));
        }
        out.push(WatchConfig {
            name: w.name,
            dir: w.dir,
            preset,
            mapping: w.mapping,
            source: w.source,
            location: w.location,
            timezone: w.timezone,
            schedule,
            settle: Duration::from_secs(settle_secs),
            max_attempts,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Overrides};

    #[test]
    fn watch_problems_are_reported_together() {
        let text = "[[watch]]\nname = \"in box\"\ndir = \"/nonexistent/inbox\"\npreset = \"zendesk-xls\"\nschedule = \"* * *\"\nlocation = \"nowhere\"\n";
        let Err(ConfigError::Invalid { problems, .. }) =
            Config::from_toml(text, "t.toml", &Overrides::default())
        else {
            panic!("accepted");
        };
        let all = problems.join("\n");
        for key in [".name", ".dir", ".preset", ".schedule", ".location"] {
            assert!(
                all.contains(&format!("watch[0] (in box){key}")),
                "{key}: {all}"
            );
        }
        assert!(problems.iter().all(|p| p.contains("fix:")), "{all}");
    }
}
