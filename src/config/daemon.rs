//! The daemon's sections: `[scheduler]` and the `[[connector]]` tables.

use super::Secret;
use super::social::{BlueskySettings, MastodonSettings, RedditSettings, XSettings};
pub(super) use super::social::{RawBluesky, RawMastodon, RawReddit, RawX};
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
    Delighted(RawDelighted),
    Bluesky(RawBluesky),
    Mastodon(RawMastodon),
    Reddit(RawReddit),
    X(RawX),
}

/// The keys every connector kind has.
struct RawCommon<'a> {
    name: &'a str,
    schedule: Option<&'a str>,
    timezone: Option<&'a str>,
    location: Option<&'a String>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_wait_secs: Option<u64>,
}

impl RawConnector {
    fn common(&self) -> RawCommon<'_> {
        macro_rules! common {
            ($r:expr) => {
                RawCommon {
                    name: &$r.name,
                    schedule: $r.schedule.as_deref(),
                    timezone: $r.timezone.as_deref(),
                    location: $r.location.as_ref(),
                    timeout_secs: $r.timeout_secs,
                    max_retries: $r.max_retries,
                    max_wait_secs: $r.max_wait_secs,
                }
            };
        }
        match self {
            RawConnector::Zendesk(r) => common!(r),
            RawConnector::Delighted(r) => common!(r),
            RawConnector::Bluesky(r) => common!(r),
            RawConnector::Mastodon(r) => common!(r),
            RawConnector::Reddit(r) => common!(r),
            RawConnector::X(r) => common!(r),
        }
    }
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
    comments: Option<bool>,
    csat: Option<String>,
    csat_scale: Option<String>,
    incremental_requests_per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelighted {
    name: String,
    schedule: Option<String>,
    timezone: Option<String>,
    base_url: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_env: Option<String>,
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
    Delighted(DelightedSettings),
    Bluesky(BlueskySettings),
    Mastodon(MastodonSettings),
    Reddit(RedditSettings),
    X(XSettings),
}

impl ConnectorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectorKind::Zendesk(_) => "zendesk",
            ConnectorKind::Delighted(_) => "delighted",
            ConnectorKind::Bluesky(_) => "bluesky",
            ConnectorKind::Mastodon(_) => "mastodon",
            ConnectorKind::Reddit(_) => "reddit",
            ConnectorKind::X(_) => "x",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DelightedSettings {
    /// `https://api.delighted.com` (tests: a server on 127.0.0.1).
    pub base_url: String,
    /// Sent as the Basic user name with an empty password.
    pub api_key: Secret,
    /// Unix seconds: the first sync asks for responses updated since then (default 0).
    pub start_time: i64,
    /// 1 to 100 (Delighted's maximum).
    pub per_page: u32,
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
    /// Fetch each exported ticket's public comments (`GET /api/v2/tickets/{id}/comments`).
    pub comments: bool,
    pub csat: ZendeskCsat,
    /// The rating scale of the newer CSAT survey (`"1-5"`, `"1-3"` or `"1-2"`).
    pub csat_scale: String,
    /// The incremental export allows 10 requests a minute (30 with the High Volume
    /// add-on); requests to it are spaced to stay under this.
    pub incremental_requests_per_minute: u32,
}

/// Which CSAT the account runs; only one is active per Zendesk account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZendeskCsat {
    /// Legacy satisfaction ratings: good/bad on the ticket (`satisfaction_rating`).
    Legacy,
    /// The newer CSAT: survey responses (`GET /api/v2/guide/survey_responses`) with a
    /// numeric scale. The ticket's `satisfaction_rating` then holds Zendesk's good/bad
    /// reduction of the same answer and is not counted again.
    SurveyResponses,
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

pub(super) fn secret(
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
    let mut names: Vec<String> = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        let common = c.common();
        let name = common.name.to_string();
        let at = format!("connector[{i}] ({name})");
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            problems.push(format!(
                "{at}.name: `{name}` is not a connector name; fix: 1 to 64 letters, digits, `-` or `_`"
            ));
        }
        if names.contains(&name) {
            problems.push(format!(
                "{at}.name: `{name}` is used twice; fix: give each connector its own name (it keys the stored cursor)"
            ));
        }
        names.push(name.clone());
        let tz = parse_tz(
            &format!("{at}.timezone"),
            common.timezone.unwrap_or("UTC"),
            problems,
        );
        let schedule = schedule(
            &format!("{at}.schedule"),
            common.schedule.unwrap_or(DEFAULT_CONNECTOR_CRON),
            tz,
            problems,
        );
        if let Some(l) = common.location
            && !location_ids.contains(l)
        {
            problems.push(format!(
                "{at}.location: `{l}` is not a configured location; fix: one of the [[location]] ids ({})",
                location_ids.join(", ")
            ));
        }
        let location = common.location.cloned();
        let http = http_settings(
            &at,
            common.timeout_secs,
            common.max_retries,
            common.max_wait_secs,
            problems,
        );
        let kind = match c {
            RawConnector::Zendesk(z) => zendesk(&at, z, problems),
            RawConnector::Delighted(d) => delighted(&at, d, problems),
            RawConnector::Bluesky(b) => super::social::bluesky(&at, b, location_ids, problems),
            RawConnector::Mastodon(m) => super::social::mastodon(&at, m, location_ids, problems),
            RawConnector::Reddit(r) => super::social::reddit(&at, r, location_ids, problems),
            RawConnector::X(x) => super::social::x(&at, x, location_ids, problems),
        };
        if let Some(kind) = kind {
            out.push(ConnectorConfig {
                name,
                schedule,
                location,
                http,
                kind,
            });
        }
    }
    out
}

/// `base_url` without its trailing slash, or a problem naming the key with an example.
pub(super) fn base_url(at: &str, value: &str, example: &str, problems: &mut Vec<String>) -> String {
    let base_url = value.trim_end_matches('/').to_string();
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        problems.push(format!(
            "{at}.base_url: `{}` is not an http(s) URL; fix: \"{example}\"",
            crate::config::redact_url(&base_url)
        ));
    }
    base_url
}

pub(super) fn start_time(at: &str, value: Option<&str>, problems: &mut Vec<String>) -> i64 {
    match value {
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
    }
}

fn per_page(
    at: &str,
    value: Option<u32>,
    max: u32,
    vendor: &str,
    problems: &mut Vec<String>,
) -> u32 {
    let per_page = value.unwrap_or(max);
    if !(1..=max).contains(&per_page) {
        problems.push(format!(
            "{at}.per_page: {per_page} is out of range; fix: 1 to {max} ({vendor}'s maximum)"
        ));
    }
    per_page
}

fn zendesk(at: &str, z: RawZendesk, problems: &mut Vec<String>) -> Option<ConnectorKind> {
    let base_url = base_url(at, &z.base_url, "https://SUBDOMAIN.zendesk.com", problems);
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
    let start_time = start_time(at, z.start_time.as_deref(), problems);
    let per_page = per_page(at, z.per_page, 1000, "Zendesk", problems);
    let csat = match z.csat.as_deref() {
        None | Some("legacy") => ZendeskCsat::Legacy,
        Some("survey_responses") => ZendeskCsat::SurveyResponses,
        Some(other) => {
            problems.push(format!(
                "{at}.csat: `{other}` is not a CSAT mode; fix: \"legacy\" (good/bad ratings) or \"survey_responses\" (the newer numeric CSAT)"
            ));
            ZendeskCsat::Legacy
        }
    };
    let csat_scale = z.csat_scale.unwrap_or_else(|| "1-5".into());
    if !matches!(csat_scale.as_str(), "1-5" | "1-3" | "1-2") {
        problems.push(format!(
            "{at}.csat_scale: `{csat_scale}` is not a Zendesk CSAT scale; fix: \"1-5\", \"1-3\" or \"1-2\" (the survey's number of choices)"
        ));
    }
    let rpm = z.incremental_requests_per_minute.unwrap_or(10);
    if rpm == 0 || rpm > 6000 {
        problems.push(format!(
            "{at}.incremental_requests_per_minute: {rpm} is out of range; fix: 10 (30 with Zendesk's High Volume API add-on)"
        ));
    }
    Some(ConnectorKind::Zendesk(ZendeskSettings {
        base_url,
        auth: auth?,
        start_time,
        per_page,
        comments: z.comments.unwrap_or(true),
        csat,
        csat_scale,
        incremental_requests_per_minute: rpm.clamp(1, 6000),
    }))
}

fn delighted(at: &str, d: RawDelighted, problems: &mut Vec<String>) -> Option<ConnectorKind> {
    let base_url = base_url(
        at,
        d.base_url.as_deref().unwrap_or("https://api.delighted.com"),
        "https://api.delighted.com",
        problems,
    );
    let key = secret(
        &format!("{at}.api_key"),
        d.api_key_file.as_ref(),
        d.api_key_env.as_ref(),
        problems,
    );
    if key.is_none() && d.api_key_file.is_none() && d.api_key_env.is_none() {
        problems.push(format!(
            "{at}: no credentials; fix: api_key_file (a file of mode 600 holding the Delighted API key) or api_key_env"
        ));
    }
    let start_time = start_time(at, d.start_time.as_deref(), problems);
    let per_page = per_page(at, d.per_page, 100, "Delighted", problems);
    Some(ConnectorKind::Delighted(DelightedSettings {
        base_url,
        api_key: key?,
        start_time,
        per_page,
    }))
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

    #[test]
    fn delighted_problems_are_named_with_their_fix() {
        let text = r#"
[[connector]]
kind = "delighted"
name = "nps"
base_url = "api.delighted.com"
per_page = 500
start_time = "last week"
[[connector]]
kind = "delighted"
name = "nps2"
api_key_env = "TIDELINE_TEST_SURELY_UNSET"
"#;
        let Err(ConfigError::Invalid { problems, .. }) =
            Config::from_toml(text, "t.toml", &Overrides::default())
        else {
            panic!("invalid config accepted");
        };
        let all = problems.join("\n");
        for needle in [
            "connector[0] (nps).base_url",
            "connector[0] (nps).per_page: 500 is out of range; fix: 1 to 100",
            "connector[0] (nps).start_time",
            "connector[0] (nps): no credentials",
            "connector[1] (nps2).api_key_env",
        ] {
            assert!(all.contains(needle), "missing {needle}:\n{all}");
        }
        assert!(problems.iter().all(|p| p.contains("fix:")), "{all}");
        assert_eq!(problems.len(), 5, "{all}");
    }

    #[test]
    fn delighted_defaults_and_unknown_keys() {
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("TIDELINE_TEST_DELIGHTED_KEY", "k") };
        let ok = "[[connector]]\nkind = \"delighted\"\nname = \"nps\"\napi_key_env = \"TIDELINE_TEST_DELIGHTED_KEY\"\n";
        let c = Config::from_toml(ok, "t.toml", &Overrides::default()).unwrap();
        let crate::config::ConnectorKind::Delighted(d) = &c.connectors[0].kind else {
            panic!("not delighted");
        };
        assert_eq!(
            (d.base_url.as_str(), d.per_page, d.start_time),
            ("https://api.delighted.com", 100, 0)
        );
        assert!(!format!("{d:?}").contains("\"k\""));
        for bad in [
            format!("{ok}api_token_env = \"X\"\n"),
            format!("{ok}email = \"a@b.c\"\n"),
        ] {
            let err = Config::from_toml(&bad, "t.toml", &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("unknown field"), "{err}");
        }
    }
}
