//! The daemon's sections: `[scheduler]` and the `[[connector]]` tables.

use super::Secret;
use super::feed::{FeedSettings, RawFeed};
pub(super) use super::jsonld::RawJsonld;
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
    Intercom(RawIntercom),
    /// Boxed: its answer roles make it several times the size of the other kinds.
    Typeform(Box<RawTypeform>),
    Google(RawGoogle),
    Freshdesk(RawFreshdesk),
    Helpscout(RawHelpscout),
    Bluesky(RawBluesky),
    Mastodon(RawMastodon),
    Reddit(RawReddit),
    X(RawX),
    Feed(RawFeed),
    Jsonld(RawJsonld),
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
            RawConnector::Intercom(r) => common!(r),
            RawConnector::Typeform(r) => common!(r),
            RawConnector::Google(r) => common!(r),
            RawConnector::Freshdesk(r) => common!(r),
            RawConnector::Helpscout(r) => common!(r),
            RawConnector::Bluesky(r) => common!(r),
            RawConnector::Mastodon(r) => common!(r),
            RawConnector::Reddit(r) => common!(r),
            RawConnector::X(r) => common!(r),
            RawConnector::Feed(r) => common!(r),
            RawConnector::Jsonld(r) => common!(r),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGoogle {
    name: String,
    schedule: Option<String>,
    timezone: Option<String>,
    account: String,
    #[serde(default)]
    locations: Vec<String>,
    client_id: String,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    refresh_token_file: Option<PathBuf>,
    refresh_token_env: Option<String>,
    base_url: Option<String>,
    info_base_url: Option<String>,
    token_url: Option<String>,
    per_page: Option<u32>,
    location: Option<String>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_wait_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFreshdesk {
    name: String,
    schedule: Option<String>,
    timezone: Option<String>,
    base_url: String,
    api_key_file: Option<PathBuf>,
    api_key_env: Option<String>,
    start_time: Option<String>,
    location: Option<String>,
    per_page: Option<u32>,
    max_pages: Option<u32>,
    ratings: Option<bool>,
    csat_scale: Option<String>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_wait_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHelpscout {
    name: String,
    schedule: Option<String>,
    timezone: Option<String>,
    base_url: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    start_time: Option<String>,
    ratings: Option<bool>,
    location: Option<String>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_wait_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntercom {
    name: String,
    schedule: Option<String>,
    timezone: Option<String>,
    region: Option<String>,
    base_url: Option<String>,
    api_version: Option<String>,
    access_token_file: Option<PathBuf>,
    access_token_env: Option<String>,
    start_time: Option<String>,
    location: Option<String>,
    per_page: Option<u32>,
    fetch_contacts: Option<bool>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_wait_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTypeform {
    name: String,
    schedule: Option<String>,
    timezone: Option<String>,
    region: Option<String>,
    base_url: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    #[serde(default)]
    forms: Vec<String>,
    location: Option<String>,
    page_size: Option<u32>,
    min_interval_ms: Option<u64>,
    nps: Option<Vec<String>>,
    csat: Option<Vec<String>>,
    csat_scale: Option<String>,
    ces: Option<Vec<String>>,
    ces_scale: Option<String>,
    text: Option<Vec<String>>,
    hidden_email: Option<Vec<String>>,
    hidden_customer_id: Option<Vec<String>>,
    hidden_phone: Option<Vec<String>>,
    hidden_location: Option<Vec<String>>,
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
    Intercom(IntercomSettings),
    /// Boxed: its answer roles make it several times the size of the other kinds.
    Typeform(Box<TypeformSettings>),
    Google(GoogleSettings),
    Freshdesk(FreshdeskSettings),
    Helpscout(HelpscoutSettings),
    Bluesky(BlueskySettings),
    Mastodon(MastodonSettings),
    Reddit(RedditSettings),
    X(XSettings),
    Feed(FeedSettings),
    Jsonld(super::JsonldSettings),
}

impl ConnectorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectorKind::Zendesk(_) => "zendesk",
            ConnectorKind::Delighted(_) => "delighted",
            ConnectorKind::Intercom(_) => "intercom",
            ConnectorKind::Typeform(_) => "typeform",
            ConnectorKind::Google(_) => "google",
            ConnectorKind::Freshdesk(_) => "freshdesk",
            ConnectorKind::Helpscout(_) => "helpscout",
            ConnectorKind::Bluesky(_) => "bluesky",
            ConnectorKind::Mastodon(_) => "mastodon",
            ConnectorKind::Reddit(_) => "reddit",
            ConnectorKind::X(_) => "x",
            ConnectorKind::Feed(_) => "feed",
            ConnectorKind::Jsonld(_) => "jsonld",
        }
    }

    /// The configuration keys of the secrets a refused request may be about (named in
    /// the error, never their values).
    pub fn secret_keys(&self) -> &'static [&'static str] {
        match self {
            ConnectorKind::Zendesk(z) => match z.auth {
                ZendeskAuth::ApiToken { .. } => &["api_token"],
                ZendeskAuth::OAuth(_) => &["oauth_token"],
            },
            ConnectorKind::Delighted(_) | ConnectorKind::Freshdesk(_) => &["api_key"],
            ConnectorKind::Intercom(_) | ConnectorKind::Mastodon(_) => &["access_token"],
            ConnectorKind::Typeform(_) => &["token"],
            ConnectorKind::Google(_) => &["client_secret", "refresh_token"],
            ConnectorKind::Helpscout(_) | ConnectorKind::Reddit(_) => &["client_secret"],
            ConnectorKind::Bluesky(_) => &["app_password"],
            ConnectorKind::X(_) => &["bearer_token"],
            ConnectorKind::Feed(_) | ConnectorKind::Jsonld(_) => &[],
        }
    }
}

#[derive(Debug, Clone)]
pub struct FreshdeskSettings {
    /// `https://{domain}.freshdesk.com` (tests: a server on 127.0.0.1).
    pub base_url: String,
    /// Sent as the Basic user name with the password `X`.
    pub api_key: Secret,
    /// Unix seconds: always sent as `updated_since` (without it Freshdesk returns only the
    /// last 30 days). Default 0.
    pub start_time: i64,
    /// 1 to 100 (Freshdesk's maximum).
    pub per_page: u32,
    /// The last page Freshdesk serves for one filter (300); the run then filters again
    /// from the last `updated_at` seen.
    pub max_pages: u32,
    /// Also fetch satisfaction ratings (default true).
    pub ratings: bool,
    /// The account's survey scale (Freshdesk does not say it per rating).
    pub csat_scale: crate::connectors::files::freshdesk::CsatScale,
}

#[derive(Debug, Clone)]
pub struct HelpscoutSettings {
    /// `https://api.helpscout.net` (tests: a server on 127.0.0.1).
    pub base_url: String,
    /// Where client credentials are exchanged for a token (default `{base_url}/v2/oauth2/token`).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Unix seconds: the first sync asks for conversations modified since then (default 0).
    pub start_time: i64,
    /// Also read the happiness ratings report (`GET /v2/reports/happiness/ratings`, Plus
    /// and Pro plans) after the conversations.
    pub ratings: bool,
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
pub struct GoogleSettings {
    /// `accounts/{accountId}`.
    pub account: String,
    /// Location ids or names (`accounts/a/locations/l`); empty: every location.
    pub locations: Vec<String>,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// `https://mybusiness.googleapis.com` (reviews, v4).
    pub base_url: String,
    /// `https://mybusinessbusinessinformation.googleapis.com` (the location list, v1).
    pub info_base_url: String,
    /// `https://oauth2.googleapis.com/token`.
    pub token_url: String,
    /// 1 to 50 (the API's maximum).
    pub page_size: u32,
}

#[derive(Debug, Clone)]
pub struct IntercomSettings {
    /// From `region` (`https://api.intercom.io`, `https://api.eu.intercom.io`,
    /// `https://api.au.intercom.io`) or `base_url` (tests: a server on 127.0.0.1).
    pub base_url: String,
    /// Sent as `Intercom-Version` (default "2.11").
    pub api_version: String,
    /// Sent as `Authorization: Bearer`.
    pub access_token: Secret,
    /// Unix seconds: the first sync asks for conversations updated since then (default 0).
    pub start_time: i64,
    /// 1 to 150 (the search endpoint's maximum).
    pub per_page: u32,
    /// Read each contact's email, phone and name (`GET /contacts/{id}`, once per run).
    pub fetch_contacts: bool,
}

#[derive(Debug, Clone)]
pub struct TypeformSettings {
    /// From `region` (`https://api.typeform.com`, EU `https://api.eu.typeform.com`) or
    /// `base_url`.
    pub base_url: String,
    /// A personal access token with `responses:read`, sent as `Authorization: Bearer`.
    pub token: Secret,
    /// The form ids, read one after the other; each keeps its own `after` token.
    pub forms: Vec<String>,
    /// 1 to 1000.
    pub page_size: u32,
    /// The shortest time between two requests (Typeform allows about 2 per second).
    pub min_interval: Duration,
    /// Which answers and hidden fields mean what.
    pub answers: crate::connectors::files::typeform::Answers,
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
            RawConnector::Intercom(r) => intercom(&at, r, problems),
            RawConnector::Typeform(r) => typeform(&at, *r, problems),
            RawConnector::Google(g) => google(&at, g, problems),
            RawConnector::Freshdesk(f) => freshdesk(&at, f, problems),
            RawConnector::Helpscout(h) => helpscout(&at, h, problems),
            RawConnector::Bluesky(b) => super::social::bluesky(&at, b, location_ids, problems),
            RawConnector::Mastodon(m) => super::social::mastodon(&at, m, location_ids, problems),
            RawConnector::Reddit(r) => super::social::reddit(&at, r, location_ids, problems),
            RawConnector::X(x) => super::social::x(&at, x, location_ids, problems),
            RawConnector::Feed(f) => super::feed::feed(&at, f, location_ids, problems),
            RawConnector::Jsonld(j) => super::jsonld::jsonld(&at, j, location_ids, problems),
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
    url_key(at, "base_url", value, example, problems)
}

/// An http(s) URL under `key`, without a trailing slash.
pub(super) fn url_key(
    at: &str,
    key: &str,
    value: &str,
    example: &str,
    problems: &mut Vec<String>,
) -> String {
    let url = value.trim_end_matches('/').to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        problems.push(format!(
            "{at}.{key}: `{}` is not an http(s) URL; fix: \"{example}\"",
            crate::config::redact_url(&url)
        ));
    }
    url
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

fn freshdesk(at: &str, f: RawFreshdesk, problems: &mut Vec<String>) -> Option<ConnectorKind> {
    use crate::connectors::files::freshdesk::CsatScale;
    let base_url = base_url(at, &f.base_url, "https://DOMAIN.freshdesk.com", problems);
    let key = secret(
        &format!("{at}.api_key"),
        f.api_key_file.as_ref(),
        f.api_key_env.as_ref(),
        problems,
    );
    if key.is_none() && f.api_key_file.is_none() && f.api_key_env.is_none() {
        problems.push(format!(
            "{at}: no credentials; fix: api_key_file (a file of mode 600 holding the Freshdesk API key) or api_key_env"
        ));
    }
    let start_time = start_time(at, f.start_time.as_deref(), problems);
    let per_page = per_page(at, f.per_page, 100, "Freshdesk", problems);
    let max_pages = f.max_pages.unwrap_or(300);
    if !(1..=300).contains(&max_pages) {
        problems.push(format!(
            "{at}.max_pages: {max_pages} is out of range; fix: 1 to 300 (Freshdesk serves 300 pages per filter; default 300)"
        ));
    }
    let csat_scale = match f.csat_scale.as_deref() {
        None => CsatScale::Classic3,
        Some(s) => CsatScale::parse(s).unwrap_or_else(|| {
            problems.push(format!(
                "{at}.csat_scale: `{s}` is not a Freshdesk survey scale; fix: one of {} (the number of answers of the account's satisfaction survey; legacy-3 for the old 1/2/3 survey)",
                CsatScale::ALL.map(|c| c.name()).join(", ")
            ));
            CsatScale::Classic3
        }),
    };
    Some(ConnectorKind::Freshdesk(FreshdeskSettings {
        base_url,
        api_key: key?,
        start_time,
        per_page,
        max_pages,
        ratings: f.ratings.unwrap_or(true),
        csat_scale,
    }))
}

fn helpscout(at: &str, h: RawHelpscout, problems: &mut Vec<String>) -> Option<ConnectorKind> {
    let base_url = base_url(
        at,
        h.base_url.as_deref().unwrap_or("https://api.helpscout.net"),
        "https://api.helpscout.net",
        problems,
    );
    let token_url = match &h.token_url {
        Some(t) => {
            let t = t.trim().to_string();
            if !(t.starts_with("https://") || t.starts_with("http://")) {
                problems.push(format!(
                    "{at}.token_url: `{}` is not an http(s) URL; fix: \"https://api.helpscout.net/v2/oauth2/token\" or delete the key",
                    crate::config::redact_url(&t)
                ));
            }
            t
        }
        None => format!("{base_url}/v2/oauth2/token"),
    };
    let client_id = h.client_id.clone().unwrap_or_default();
    if client_id.trim().is_empty() {
        problems.push(format!(
            "{at}.client_id: missing; fix: the App ID of the Help Scout app (Your Profile > My Apps)"
        ));
    }
    let secret = secret(
        &format!("{at}.client_secret"),
        h.client_secret_file.as_ref(),
        h.client_secret_env.as_ref(),
        problems,
    );
    if secret.is_none() && h.client_secret_file.is_none() && h.client_secret_env.is_none() {
        problems.push(format!(
            "{at}: no credentials; fix: client_secret_file (a file of mode 600 holding the app's secret) or client_secret_env"
        ));
    }
    let start_time = start_time(at, h.start_time.as_deref(), problems);
    Some(ConnectorKind::Helpscout(HelpscoutSettings {
        base_url,
        token_url,
        client_id: client_id.trim().to_string(),
        client_secret: secret?,
        start_time,
        ratings: h.ratings.unwrap_or(true),
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

fn google(at: &str, g: RawGoogle, problems: &mut Vec<String>) -> Option<ConnectorKind> {
    let base_url = base_url(
        at,
        g.base_url
            .as_deref()
            .unwrap_or("https://mybusiness.googleapis.com"),
        "https://mybusiness.googleapis.com",
        problems,
    );
    let info_base_url = url_key(
        at,
        "info_base_url",
        g.info_base_url
            .as_deref()
            .unwrap_or("https://mybusinessbusinessinformation.googleapis.com"),
        "https://mybusinessbusinessinformation.googleapis.com",
        problems,
    );
    let token_url = url_key(
        at,
        "token_url",
        g.token_url
            .as_deref()
            .unwrap_or("https://oauth2.googleapis.com/token"),
        "https://oauth2.googleapis.com/token",
        problems,
    );
    let account = g.account.trim().trim_end_matches('/').to_string();
    let digits = account.strip_prefix("accounts/").unwrap_or("");
    if digits.is_empty() || digits.contains('/') {
        problems.push(format!(
            "{at}.account: `{account}` is not an account name; fix: account = \"accounts/1234567890\" (from the accounts.list call or the Business Profile Manager URL)"
        ));
    }
    if g.client_id.trim().is_empty() {
        problems.push(format!(
            "{at}.client_id: empty; fix: the OAuth client id of your Google Cloud project (…apps.googleusercontent.com)"
        ));
    }
    let secret_ = secret(
        &format!("{at}.client_secret"),
        g.client_secret_file.as_ref(),
        g.client_secret_env.as_ref(),
        problems,
    );
    if secret_.is_none() && g.client_secret_file.is_none() && g.client_secret_env.is_none() {
        problems.push(format!(
            "{at}: no client secret; fix: client_secret_file (a file of mode 600) or client_secret_env"
        ));
    }
    let refresh = secret(
        &format!("{at}.refresh_token"),
        g.refresh_token_file.as_ref(),
        g.refresh_token_env.as_ref(),
        problems,
    );
    if refresh.is_none() && g.refresh_token_file.is_none() && g.refresh_token_env.is_none() {
        problems.push(format!(
            "{at}: no refresh token; fix: refresh_token_file (a file of mode 600 holding the OAuth refresh token with scope business.manage) or refresh_token_env"
        ));
    }
    let page_size = per_page(at, g.per_page, 50, "Google", problems);
    Some(ConnectorKind::Google(GoogleSettings {
        account,
        locations: g.locations,
        client_id: g.client_id,
        client_secret: secret_?,
        refresh_token: refresh?,
        base_url,
        info_base_url,
        token_url,
        page_size,
    }))
}

/// The base URL from `region` (a key of `regions`) or `base_url`, which wins.
fn regional_base_url(
    at: &str,
    region: Option<&str>,
    base: Option<&str>,
    regions: &[(&str, &str)],
    problems: &mut Vec<String>,
) -> String {
    let names: Vec<&str> = regions.iter().map(|(r, _)| *r).collect();
    let from_region = match region {
        None => regions[0].1,
        Some(r) => match regions
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(r.trim()))
        {
            Some((_, url)) => *url,
            None => {
                problems.push(format!(
                    "{at}.region: `{r}` is not a region; fix: one of {}",
                    names.join(", ")
                ));
                regions[0].1
            }
        },
    };
    base_url(at, base.unwrap_or(from_region), regions[0].1, problems)
}

fn intercom(at: &str, r: RawIntercom, problems: &mut Vec<String>) -> Option<ConnectorKind> {
    let base_url = regional_base_url(
        at,
        r.region.as_deref(),
        r.base_url.as_deref(),
        &[
            ("us", "https://api.intercom.io"),
            ("eu", "https://api.eu.intercom.io"),
            ("au", "https://api.au.intercom.io"),
        ],
        problems,
    );
    let token = secret(
        &format!("{at}.access_token"),
        r.access_token_file.as_ref(),
        r.access_token_env.as_ref(),
        problems,
    );
    if r.access_token_file.is_none() && r.access_token_env.is_none() {
        problems.push(format!(
            "{at}: no credentials; fix: access_token_file (a file of mode 600 holding the Intercom access token) or access_token_env"
        ));
    }
    let api_version = r.api_version.unwrap_or_else(|| "2.11".into());
    let version_ok = !api_version.is_empty()
        && api_version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.');
    if !version_ok {
        problems.push(format!(
            "{at}.api_version: `{api_version}` is not an API version; fix: e.g. \"2.11\" (sent as Intercom-Version)"
        ));
    }
    let start_time = start_time(at, r.start_time.as_deref(), problems);
    let per_page = per_page(at, r.per_page, 150, "Intercom search", problems);
    Some(ConnectorKind::Intercom(IntercomSettings {
        base_url,
        api_version,
        access_token: token?,
        start_time,
        per_page,
        fetch_contacts: r.fetch_contacts.unwrap_or(true),
    }))
}

fn typeform(at: &str, r: RawTypeform, problems: &mut Vec<String>) -> Option<ConnectorKind> {
    use crate::connectors::files::typeform::Answers;
    let base_url = regional_base_url(
        at,
        r.region.as_deref(),
        r.base_url.as_deref(),
        &[
            ("us", "https://api.typeform.com"),
            ("eu", "https://api.eu.typeform.com"),
        ],
        problems,
    );
    let token = secret(
        &format!("{at}.token"),
        r.token_file.as_ref(),
        r.token_env.as_ref(),
        problems,
    );
    if r.token_file.is_none() && r.token_env.is_none() {
        problems.push(format!(
            "{at}: no credentials; fix: token_file (a file of mode 600 holding a personal access token with responses:read) or token_env"
        ));
    }
    if r.forms.is_empty() {
        problems.push(format!(
            "{at}.forms: no form; fix: forms = [\"u6nXL7\"] (the id in the form's URL)"
        ));
    }
    for f in &r.forms {
        if f.is_empty()
            || !f
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            problems.push(format!(
                "{at}.forms: `{f}` is not a form id; fix: the id in the form's URL, e.g. \"u6nXL7\""
            ));
        }
    }
    let page_size = r.page_size.unwrap_or(1000);
    if !(1..=1000).contains(&page_size) {
        problems.push(format!(
            "{at}.page_size: {page_size} is out of range; fix: 1 to 1000 (Typeform's maximum)"
        ));
    }
    let min_interval_ms = r.min_interval_ms.unwrap_or(500);
    if min_interval_ms > 60_000 {
        problems.push(format!(
            "{at}.min_interval_ms: {min_interval_ms} is out of range; fix: 0 to 60000 (default 500: Typeform allows about 2 requests per second)"
        ));
    }
    let d = Answers::default();
    let mut scale = |key: &str, v: Option<String>, default: String| -> String {
        let v = v.unwrap_or(default);
        let base = v.trim_end_matches("-reversed");
        let ok = base
            .split_once('-')
            .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !ok {
            problems.push(format!(
                "{at}.{key}: `{v}` is not a scale; fix: e.g. \"1-5\" or \"1-7\""
            ));
        }
        v
    };
    let csat_scale = scale("csat_scale", r.csat_scale, d.csat_scale.clone());
    let ces_scale = scale("ces_scale", r.ces_scale, d.ces_scale.clone());
    let answers = Answers {
        nps: r.nps.unwrap_or(d.nps),
        csat: r.csat.unwrap_or(d.csat),
        csat_scale,
        ces: r.ces.unwrap_or(d.ces),
        ces_scale,
        text: r.text.unwrap_or(d.text),
        hidden_email: r.hidden_email.unwrap_or(d.hidden_email),
        hidden_customer_id: r.hidden_customer_id.unwrap_or(d.hidden_customer_id),
        hidden_phone: r.hidden_phone.unwrap_or(d.hidden_phone),
        hidden_location: r.hidden_location.unwrap_or(d.hidden_location),
    };
    Some(ConnectorKind::Typeform(Box::new(TypeformSettings {
        base_url,
        token: token?,
        forms: r.forms,
        page_size,
        min_interval: Duration::from_millis(min_interval_ms),
        answers,
    })))
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
    fn freshdesk_and_helpscout_problems_are_named_with_their_fix() {
        let text = r#"
[[connector]]
kind = "freshdesk"
name = "fd"
base_url = "acme.freshdesk.com"
per_page = 101
max_pages = 301
csat_scale = "five"
[[connector]]
kind = "helpscout"
name = "hs"
token_url = "ftp://x"
client_secret_env = "TIDELINE_TEST_SURELY_UNSET"
"#;
        let Err(ConfigError::Invalid { problems, .. }) =
            Config::from_toml(text, "t.toml", &Overrides::default())
        else {
            panic!("invalid config accepted");
        };
        let all = problems.join("\n");
        for needle in [
            "connector[0] (fd).base_url",
            "connector[0] (fd).per_page: 101 is out of range; fix: 1 to 100",
            "connector[0] (fd).max_pages",
            "connector[0] (fd).csat_scale: `five`",
            "connector[0] (fd): no credentials",
            "connector[1] (hs).token_url",
            "connector[1] (hs).client_id",
            "connector[1] (hs).client_secret_env",
        ] {
            assert!(all.contains(needle), "missing {needle}:\n{all}");
        }
        assert!(problems.iter().all(|p| p.contains("fix:")), "{all}");
        assert_eq!(problems.len(), 8, "{all}");
    }

    #[test]
    fn freshdesk_and_helpscout_defaults() {
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("TIDELINE_TEST_FD_HS_SECRET", "s3") };
        let text = r#"
[[connector]]
kind = "freshdesk"
name = "fd"
base_url = "https://acme.freshdesk.com/"
api_key_env = "TIDELINE_TEST_FD_HS_SECRET"
[[connector]]
kind = "helpscout"
name = "hs"
client_id = "app-1"
client_secret_env = "TIDELINE_TEST_FD_HS_SECRET"
"#;
        let c = Config::from_toml(text, "t.toml", &Overrides::default()).unwrap();
        let crate::config::ConnectorKind::Freshdesk(f) = &c.connectors[0].kind else {
            panic!("not freshdesk");
        };
        assert_eq!(
            (f.base_url.as_str(), f.per_page, f.max_pages, f.ratings),
            ("https://acme.freshdesk.com", 100, 300, true)
        );
        assert_eq!(f.csat_scale.name(), "classic-3");
        let crate::config::ConnectorKind::Helpscout(h) = &c.connectors[1].kind else {
            panic!("not helpscout");
        };
        assert_eq!(
            h.token_url.as_str(),
            "https://api.helpscout.net/v2/oauth2/token"
        );
        assert!(!format!("{f:?}{h:?}").contains("s3\""));
        let bad = text.replace(
            "client_id = \"app-1\"",
            "client_id = \"app-1\"\nper_page = 5",
        );
        let err = Config::from_toml(&bad, "t.toml", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
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

    #[test]
    fn intercom_and_typeform_problems_are_named_with_their_fix() {
        let text = r#"
[[connector]]
kind = "intercom"
name = "chat"
region = "mars"
per_page = 500
api_version = "2.11; drop"
[[connector]]
kind = "typeform"
name = "survey"
forms = ["ok1", "not a form"]
page_size = 5000
csat_scale = "five"
token_env = "TIDELINE_TEST_SURELY_UNSET"
[[connector]]
kind = "typeform"
name = "survey2"
token_env = "TIDELINE_TEST_SURELY_UNSET"
"#;
        let Err(ConfigError::Invalid { problems, .. }) =
            Config::from_toml(text, "t.toml", &Overrides::default())
        else {
            panic!("invalid config accepted");
        };
        let all = problems.join("\n");
        for needle in [
            "connector[0] (chat).region: `mars` is not a region",
            "connector[0] (chat).per_page: 500 is out of range; fix: 1 to 150",
            "connector[0] (chat).api_version",
            "connector[0] (chat): no credentials",
            "connector[1] (survey).forms: `not a form`",
            "connector[1] (survey).page_size: 5000",
            "connector[1] (survey).csat_scale",
            "connector[1] (survey).token_env",
            "connector[2] (survey2).forms: no form",
        ] {
            assert!(all.contains(needle), "missing {needle}:\n{all}");
        }
        assert!(problems.iter().all(|p| p.contains("fix:")), "{all}");
    }

    /// The commented examples in config/example.toml parse once uncommented.
    #[test]
    fn intercom_and_typeform_examples_and_defaults() {
        // SAFETY: variables only this test reads.
        unsafe {
            std::env::set_var("TIDELINE_TEST_INTERCOM_TOKEN", "ic-token");
            std::env::set_var("TIDELINE_TEST_TYPEFORM_TOKEN", "tf-token");
        }
        let example = include_str!("../../config/example.toml");
        let block = |kind: &str, secret_key: &str, var: &str| -> String {
            let start = example
                .find(&format!("# kind = \"{kind}\""))
                .expect("example block");
            let start = example[..start].rfind("# [[connector]]").unwrap();
            let end = example[start..]
                .find("# schedule, timezone")
                .map(|e| start + e)
                .unwrap();
            example[start..end]
                .lines()
                .map(|l| l.trim_start_matches("# "))
                .filter(|l| !l.starts_with(secret_key))
                .collect::<Vec<_>>()
                .join("\n")
                + &format!("\n{secret_key}_env = \"{var}\"\n")
        };
        let text = format!(
            "[[location]]\nid = \"berlin-mitte\"\n{}\n{}",
            block("intercom", "access_token", "TIDELINE_TEST_INTERCOM_TOKEN"),
            block("typeform", "token", "TIDELINE_TEST_TYPEFORM_TOKEN"),
        );
        let c = Config::from_toml(&text, "t.toml", &Overrides::default())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let crate::config::ConnectorKind::Intercom(i) = &c.connectors[0].kind else {
            panic!("not intercom");
        };
        assert_eq!(
            (
                i.base_url.as_str(),
                i.api_version.as_str(),
                i.per_page,
                i.fetch_contacts
            ),
            ("https://api.eu.intercom.io", "2.11", 150, true)
        );
        assert!(!format!("{i:?}").contains("ic-token"));
        let crate::config::ConnectorKind::Typeform(t) = &c.connectors[1].kind else {
            panic!("not typeform");
        };
        assert_eq!(
            (t.base_url.as_str(), t.page_size, t.min_interval.as_millis()),
            ("https://api.typeform.com", 1000, 500)
        );
        assert_eq!(t.forms, vec!["u6nXL7".to_string()]);
        assert_eq!(
            t.answers,
            crate::connectors::files::typeform::Answers::default()
        );
        // Defaults: the US hosts; base_url wins over region.
        let min = "[[connector]]\nkind = \"intercom\"\nname = \"c\"\naccess_token_env = \"TIDELINE_TEST_INTERCOM_TOKEN\"\n";
        let c = Config::from_toml(min, "t.toml", &Overrides::default()).unwrap();
        let crate::config::ConnectorKind::Intercom(i) = &c.connectors[0].kind else {
            panic!("not intercom");
        };
        assert_eq!(i.base_url, "https://api.intercom.io");
        let c = Config::from_toml(
            &format!("{min}region = \"au\"\nbase_url = \"http://127.0.0.1:9/\"\n"),
            "t.toml",
            &Overrides::default(),
        )
        .unwrap();
        let crate::config::ConnectorKind::Intercom(i) = &c.connectors[0].kind else {
            panic!("not intercom");
        };
        assert_eq!(i.base_url, "http://127.0.0.1:9");
        let err = Config::from_toml(
            &format!("{min}page_size = 3\n"),
            "t.toml",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}
