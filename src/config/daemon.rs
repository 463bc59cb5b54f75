//! The daemon's sections: `[scheduler]` and the `[[connector]]` tables.

use super::Secret;
use crate::schedule::Schedule;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduler {
    timezone: Option<String>,
    lease_secs: Option<u64>,
    instance: Option<String>,
    stop_timeout_secs: Option<u64>,
}

/// How the daemon schedules and claims jobs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The zone the built-in jobs' cron expressions are read in.
    pub timezone: chrono_tz::Tz,
    /// How long a claim holds without a heartbeat (a dead instance's jobs wait this long).
    pub lease: Duration,
    /// This instance's name in claims (default: host name and process id).
    pub instance: Option<String>,
    /// SIGTERM: how long running jobs get to finish their page before the daemon exits.
    pub stop_timeout: Duration,
}

/// The connector kinds; adding one is one arm here plus its module.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(super) enum RawConnector {
    Zendesk(RawZendesk),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZendesk {
    name: String,
    schedule: Option<String>,
    timezone: Option<String>,
    base_url: String,
    email: Option<String>,
    api_token_file: Option<PathBuf>,
    api_token_env: Option<String>,
    oauth_token_file: Option<PathBuf>,
    oauth_token_env: Option<String>,
    start_time: Option<String>,
    location: Option<String>,
    per_page: Option<u32>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_wait_secs: Option<u64>,
}

/// One configured connector.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Unique; the source name of what it stores and its cursor's key.
    pub name: String,
    pub schedule: Schedule,
    /// Location for records that name none.
    pub location: Option<String>,
    pub http: HttpSettings,
    pub kind: ConnectorKind,
}

/// Request settings every API connector shares.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub timeout: Duration,
    /// Retries of a failed request (network error, 5xx, 429) before the run fails.
    pub max_retries: u32,
    /// The longest single wait a vendor's rate limit may impose; longer ones fail the run
    /// (it resumes from its cursor at the next tick).
    pub max_wait: Duration,
}

#[derive(Debug, Clone)]
pub enum ConnectorKind {
    Zendesk(ZendeskSettings),
}

impl ConnectorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectorKind::Zendesk(_) => "zendesk",
        }
    }
}

#[derive(Debug, Clone)]
pub enum ZendeskAuth {
    /// `{email}/token:{api_token}`
    ApiToken {
        email: String,
        token: Secret,
    },
    OAuth(Secret),
}

#[derive(Debug, Clone)]
pub struct ZendeskSettings {
    /// `https://{subdomain}.zendesk.com` (tests: a server on 127.0.0.1).
    pub base_url: String,
    pub auth: ZendeskAuth,
    /// Unix seconds of the first export (default 0: everything).
    pub start_time: i64,
    pub per_page: u32,
}

pub const DEFAULT_CONNECTOR_CRON: &str = "0 */15 * * * *";

pub(super) fn scheduler(raw: RawScheduler, problems: &mut Vec<String>) -> SchedulerConfig {
    let timezone = parse_tz(
        "scheduler.timezone",
        raw.timezone.as_deref().unwrap_or("UTC"),
        problems,
    );
    let lease_secs = raw.lease_secs.unwrap_or(60);
    if !(5..=3600).contains(&lease_secs) {
        problems.push(format!(
            "scheduler.lease_secs: {lease_secs} is out of range; fix: 5 to 3600 (default 60)"
        ));
    }
    let stop_timeout_secs = raw.stop_timeout_secs.unwrap_or(20);
    if !(1..=600).contains(&stop_timeout_secs) {
        problems.push(format!(
            "scheduler.stop_timeout_secs: {stop_timeout_secs} is out of range; fix: 1 to 600 (default 20; keep it below systemd's TimeoutStopSec)"
        ));
    }
    if let Some(i) = &raw.instance
        && (i.is_empty() || i.len() > 200)
    {
        problems.push(
            "scheduler.instance: must be 1 to 200 characters; fix: a name unique in the fleet, or delete the key for host name + process id"
                .into(),
        );
    }
    SchedulerConfig {
        timezone,
        lease: Duration::from_secs(lease_secs),
        instance: raw.instance,
        stop_timeout: Duration::from_secs(stop_timeout_secs),
    }
}

fn parse_tz(key: &str, value: &str, problems: &mut Vec<String>) -> chrono_tz::Tz {
    value.parse().unwrap_or_else(|_| {
        problems.push(format!(
            "{key}: `{value}` is not an IANA time zone; fix: e.g. \"Europe/Berlin\" or \"UTC\""
        ));
        chrono_tz::UTC
    })
}

/// A cron schedule, or a problem naming the key.
pub(super) fn schedule(
    key: &str,
    expr: &str,
    tz: chrono_tz::Tz,
    problems: &mut Vec<String>,
) -> Schedule {
    Schedule::parse(expr, tz).unwrap_or_else(|e| {
        problems.push(format!(
            "{key}: `{expr}` is not a cron schedule ({e}); fix: six fields with seconds first, e.g. \"0 */15 * * * *\" (every 15 minutes)"
        ));
        Schedule::parse(DEFAULT_CONNECTOR_CRON, tz).expect("valid")
    })
}

fn secret(
    key: &str,
    file: Option<&PathBuf>,
    env: Option<&String>,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    match (file, env) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{key}: set only one of `{key}_file` and `{key}_env`; fix: delete one"
            ));
            None
        }
        (Some(path), None) => match Secret::from_file(path) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("{key}_file: {e}"));
                None
            }
        },
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                problems.push(format!(
                    "{key}_env: environment variable `{var}` is not set; fix: set it in the service's environment (systemd: Environment= or LoadCredential=)"
                ));
                None
            }
        },
        (None, None) => None,
    }
}

pub(super) fn connectors(
    raw: Vec<RawConnector>,
    location_ids: &[String],
    problems: &mut Vec<String>,
) -> Vec<ConnectorConfig> {
    let mut out: Vec<ConnectorConfig> = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        let RawConnector::Zendesk(z) = c;
        let at = format!("connector[{i}] ({})", z.name);
        let name_ok = !z.name.is_empty()
            && z.name.len() <= 64
            && z.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            problems.push(format!(
                "{at}.name: `{}` is not a connector name; fix: 1 to 64 letters, digits, `-` or `_`",
                z.name
            ));
        }
        if out.iter().any(|o| o.name == z.name) {
            problems.push(format!(
                "{at}.name: `{}` is used twice; fix: give each connector its own name (it keys the stored cursor)",
                z.name
            ));
        }
        let tz = parse_tz(
            &format!("{at}.timezone"),
            z.timezone.as_deref().unwrap_or("UTC"),
            problems,
        );
        let schedule = schedule(
            &format!("{at}.schedule"),
            z.schedule.as_deref().unwrap_or(DEFAULT_CONNECTOR_CRON),
            tz,
            problems,
        );
        if let Some(l) = &z.location
            && !location_ids.contains(l)
        {
            problems.push(format!(
                "{at}.location: `{l}` is not a configured location; fix: one of the [[location]] ids ({})",
                location_ids.join(", ")
            ));
        }
        let base_url = z.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            problems.push(format!(
                "{at}.base_url: `{}` is not an http(s) URL; fix: \"https://SUBDOMAIN.zendesk.com\"",
                crate::config::redact_url(&base_url)
            ));
        }
        let api = secret(
            &format!("{at}.api_token"),
            z.api_token_file.as_ref(),
            z.api_token_env.as_ref(),
            problems,
        );
        let oauth = secret(
            &format!("{at}.oauth_token"),
            z.oauth_token_file.as_ref(),
            z.oauth_token_env.as_ref(),
            problems,
        );
        let auth = match (api, oauth, &z.email) {
            (Some(token), None, Some(email)) => Some(ZendeskAuth::ApiToken {
                email: email.clone(),
                token,
            }),
            (None, Some(t), _) => Some(ZendeskAuth::OAuth(t)),
            (Some(_), None, None) => {
                problems.push(format!(
                    "{at}.email: an API token needs the agent's email; fix: email = \"agent@example.com\""
                ));
                None
            }
            (Some(_), Some(_), _) => {
                problems.push(format!(
                    "{at}: set either an API token or an OAuth token, not both; fix: delete one"
                ));
                None
            }
            (None, None, _) => {
                problems.push(format!(
                    "{at}: no credentials; fix: api_token_file (with email) or oauth_token_file, a file of mode 600"
                ));
                None
            }
        };
        let start_time = match z.start_time.as_deref() {
            None => 0,
            Some(s) => match parse_start(s) {
                Some(t) => t,
                None => {
                    problems.push(format!(
                        "{at}.start_time: `{s}` is not a date; fix: \"2024-01-01\" or \"2024-01-01T00:00:00Z\""
                    ));
                    0
                }
            },
        };
        let per_page = z.per_page.unwrap_or(1000);
        if !(1..=1000).contains(&per_page) {
            problems.push(format!(
                "{at}.per_page: {per_page} is out of range; fix: 1 to 1000 (Zendesk's maximum)"
            ));
        }
        let http = http_settings(
            &at,
            z.timeout_secs,
            z.max_retries,
            z.max_wait_secs,
            problems,
        );
        if let Some(auth) = auth {
            out.push(ConnectorConfig {
                name: z.name,
                schedule,
                location: z.location,
                http,
                kind: ConnectorKind::Zendesk(ZendeskSettings {
                    base_url,
                    auth,
                    start_time,
                    per_page,
                }),
            });
        }
    }
    out
}

fn http_settings(
    at: &str,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_wait_secs: Option<u64>,
    problems: &mut Vec<String>,
) -> HttpSettings {
    let timeout_secs = timeout_secs.unwrap_or(30);
    if !(1..=600).contains(&timeout_secs) {
        problems.push(format!(
            "{at}.timeout_secs: {timeout_secs} is out of range; fix: 1 to 600 (default 30)"
        ));
    }
    let max_retries = max_retries.unwrap_or(5);
    if max_retries > 20 {
        problems.push(format!(
            "{at}.max_retries: {max_retries} is out of range; fix: 0 to 20 (default 5)"
        ));
    }
    let max_wait_secs = max_wait_secs.unwrap_or(300);
    if !(1..=3600).contains(&max_wait_secs) {
        problems.push(format!(
            "{at}.max_wait_secs: {max_wait_secs} is out of range; fix: 1 to 3600 (default 300)"
        ));
    }
    HttpSettings {
        timeout: Duration::from_secs(timeout_secs),
        max_retries,
        max_wait: Duration::from_secs(max_wait_secs),
    }
}

fn parse_start(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp()
        })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Overrides};

    #[test]
    fn connector_problems_are_reported_together() {
        let text = r#"
[scheduler]
timezone = "Mars/Olympus"
[[location]]
id = "berlin"
[[connector]]
kind = "zendesk"
name = "support desk"
base_url = "acme.zendesk.com"
schedule = "*/5 * * * *"
location = "paris"
per_page = 5000
[[connector]]
kind = "zendesk"
name = "other"
base_url = "https://acme.zendesk.com"
api_token_env = "TIDELINE_TEST_SURELY_UNSET"
"#;
        let Err(ConfigError::Invalid { problems, .. }) =
            Config::from_toml(text, "t.toml", &Overrides::default())
        else {
            panic!("invalid config accepted");
        };
        let all = problems.join("\n");
        for needle in [
            "scheduler.timezone",
            "connector[0] (support desk).name",
            "connector[0] (support desk).schedule",
            "connector[0] (support desk).location",
            "connector[0] (support desk).base_url",
            "connector[0] (support desk).per_page",
            "connector[0] (support desk): no credentials",
            "connector[1] (other).api_token_env",
        ] {
            assert!(all.contains(needle), "missing {needle}:\n{all}");
        }
        assert!(problems.iter().all(|p| p.contains("fix:")), "{all}");
    }

    #[test]
    fn unknown_connector_keys_and_kinds_are_refused() {
        for text in [
            "[[connector]]\nkind = \"zendesk\"\nname = \"a\"\nbase_url = \"https://x\"\nsubdomian = \"x\"\n",
            "[[connector]]\nkind = \"zendeks\"\nname = \"a\"\n",
        ] {
            assert!(
                Config::from_toml(text, "t.toml", &Overrides::default()).is_err(),
                "{text}"
            );
        }
    }
}
