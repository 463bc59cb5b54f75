//! `[crm]` and `[[crm.sink]]`: the CRMs that receive every customer's timeline. Tokens and
//! signing secrets are read from files (mode 0600) or the environment and are [`Secret`]s:
//! they never reach a log line, an error or the database.

use super::Secret;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Every five minutes: how often the daemon drains the outbox (UTC).
pub const DEFAULT_CRM_CRON: &str = "30 */5 * * * *";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCrm {
    cron: Option<String>,
    #[serde(default, rename = "sink")]
    sinks: Vec<RawSink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: Option<String>,
    kind: Option<String>,
    /// HubSpot: the API host; webhook: the endpoint.
    base_url: Option<String>,
    url: Option<String>,
    /// Salesforce: `https://{my-domain}.my.salesforce.com`.
    instance_url: Option<String>,
    api_version: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    /// Accepted only to refuse them with a fix.
    token: Option<Secret>,
    secret: Option<Secret>,
    id_property: Option<String>,
    object: Option<String>,
    external_id_field: Option<String>,
    batch_size: Option<usize>,
    requests_per_10s: Option<u32>,
    timeout_secs: Option<u64>,
    max_attempts: Option<i64>,
    retry_initial_ms: Option<u64>,
    retry_max_secs: Option<u64>,
    lease_secs: Option<u64>,
}

/// HubSpot: contacts by email (batch upsert), each interaction a note, each change of a
/// customer a note and of a location a task; notes and tasks upserted by `id_property`.
#[derive(Debug, Clone)]
pub struct HubspotSettings {
    /// `https://api.hubapi.com` (tests: a server on 127.0.0.1).
    pub base_url: String,
    /// A private app's access token.
    pub token: Secret,
    /// A custom property with unique values on notes and tasks that holds Tideline's key
    /// (created once by the HubSpot admin; see the README).
    pub id_property: String,
    /// Requests per rolling 10 s (HubSpot: 100 for private apps on most tiers).
    pub requests_per_10s: u32,
}

/// Salesforce: contacts by email (query, then create), each record upserted into `object`
/// by `external_id_field` with sObject Collections (at most 200 per call).
#[derive(Debug, Clone)]
pub struct SalesforceSettings {
    pub instance_url: String,
    /// `61.0`.
    pub api_version: String,
    /// An OAuth access token (a Connected App's; refreshed outside Tideline).
    pub token: Secret,
    /// `Task` (default) or a custom object such as `Tideline_Event__c`.
    pub object: String,
    /// A text field marked External ID and Unique on `object`.
    pub external_id_field: String,
}

/// Any other CRM: each item POSTed as JSON, signed Standard Webhooks style.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// The signing key (`whsec_` + base64, or raw bytes).
    pub secret: Secret,
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    Hubspot(HubspotSettings),
    Salesforce(SalesforceSettings),
    Webhook(WebhookSettings),
}

impl SinkKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Hubspot(_) => "hubspot",
            SinkKind::Salesforce(_) => "salesforce",
            SinkKind::Webhook(_) => "webhook",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    pub kind: SinkKind,
    /// Items per request (HubSpot at most 100, Salesforce at most 200, webhook 1).
    pub batch_size: usize,
    pub timeout: Duration,
    /// Counted failures (5xx, timeouts) before an item is parked.
    pub max_attempts: i64,
    /// The first retry's delay; doubled per failure up to `retry_max`, with jitter.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// How long a worker holds the items it took; a crashed worker's items come back then.
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct CrmConfig {
    pub cron: String,
    pub sinks: Vec<SinkConfig>,
}

impl Default for CrmConfig {
    fn default() -> Self {
        Self {
            cron: DEFAULT_CRM_CRON.to_string(),
            sinks: Vec::new(),
        }
    }
}

impl CrmConfig {
    pub fn sink(&self, name: &str) -> Option<&SinkConfig> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

fn identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 80
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(super) fn crm(raw: RawCrm, problems: &mut Vec<String>) -> CrmConfig {
    let cron = raw.cron.unwrap_or_else(|| DEFAULT_CRM_CRON.to_string());
    if crate::schedule::Schedule::parse(&cron, chrono_tz::UTC).is_err() {
        problems.push(format!(
            "crm.cron: `{cron}` is not a cron schedule; fix: six fields with seconds first, e.g. \"{DEFAULT_CRM_CRON}\" (every five minutes)"
        ));
    }
    let mut sinks: Vec<SinkConfig> = Vec::new();
    for (i, s) in raw.sinks.into_iter().enumerate() {
        let name = s.name.clone().unwrap_or_default();
        let at = format!(
            "crm.sink[{i}]{}",
            if name.is_empty() {
                String::new()
            } else {
                format!(" ({name})")
            }
        );
        if !identifier(&name) {
            problems.push(format!(
                "{at}.name: missing or not a name; fix: letters, digits, `-` and `_`, e.g. name = \"hubspot\""
            ));
        } else if sinks.iter().any(|o| o.name == name) {
            problems.push(format!(
                "{at}.name: `{name}` is used twice; fix: give each [[crm.sink]] its own name (the outbox is kept per name)"
            ));
        }
        if s.token.is_some() || s.secret.is_some() {
            problems.push(format!(
                "{at}: a literal token or secret in the config file is refused; fix: write it to a file with mode 0600 and set `token_file`/`secret_file`, or set `token_env`/`secret_env`"
            ));
        }
        let kind_name = s.kind.clone().unwrap_or_default();
        let (max_batch, default_batch) = match kind_name.as_str() {
            "hubspot" => (100, 100),
            "salesforce" => (200, 200),
            _ => (1, 1),
        };
        let token = |problems: &mut Vec<String>| {
            let t = super::daemon::secret(
                &format!("{at}.token"),
                s.token_file.as_ref(),
                s.token_env.as_ref(),
                problems,
            );
            if t.is_none() && s.token_file.is_none() && s.token_env.is_none() {
                problems.push(format!(
                    "{at}.token: missing; fix: set `token_file` (a file with mode 0600) or `token_env`"
                ));
            }
            t.unwrap_or_else(|| Secret::new(""))
        };
        let kind = match kind_name.as_str() {
            "hubspot" => {
                let base_url = super::daemon::base_url(
                    &at,
                    s.base_url.as_deref().unwrap_or("https://api.hubapi.com"),
                    "https://api.hubapi.com",
                    problems,
                );
                let id_property = s
                    .id_property
                    .clone()
                    .unwrap_or_else(|| "tideline_id".into());
                if !identifier(&id_property) {
                    problems.push(format!(
                        "{at}.id_property: `{id_property}` is not a HubSpot property name; fix: the internal name of a unique-value property, e.g. \"tideline_id\""
                    ));
                }
                let requests_per_10s = s.requests_per_10s.unwrap_or(100);
                if !(1..=1000).contains(&requests_per_10s) {
                    problems.push(format!(
                        "{at}.requests_per_10s: {requests_per_10s} is out of range; fix: 1 to 1000 (HubSpot private apps: 100, or 190 on Professional and Enterprise)"
                    ));
                }
                SinkKind::Hubspot(HubspotSettings {
                    base_url,
                    token: token(problems),
                    id_property,
                    requests_per_10s,
                })
            }
            "salesforce" => {
                let instance_url = match &s.instance_url {
                    Some(u) => {
                        super::daemon::base_url(&at, u, "https://acme.my.salesforce.com", problems)
                    }
                    None => {
                        problems.push(format!(
                            "{at}.instance_url: missing; fix: your org's URL, e.g. instance_url = \"https://acme.my.salesforce.com\""
                        ));
                        String::new()
                    }
                };
                let api_version = s.api_version.clone().unwrap_or_else(|| "61.0".into());
                let ok = api_version
                    .split_once('.')
                    .is_some_and(|(a, b)| a.parse::<u32>().is_ok_and(|v| v >= 46) && b == "0");
                if !ok {
                    problems.push(format!(
                        "{at}.api_version: `{api_version}` is not a REST API version with sObject Collections upsert; fix: \"46.0\" or later, e.g. \"61.0\""
                    ));
                }
                let object = s.object.clone().unwrap_or_else(|| "Task".into());
                let external_id_field = s
                    .external_id_field
                    .clone()
                    .unwrap_or_else(|| "Tideline_Id__c".into());
                for (key, v, example) in [
                    ("object", &object, "Task"),
                    ("external_id_field", &external_id_field, "Tideline_Id__c"),
                ] {
                    if !identifier(v) || v.contains('-') {
                        problems.push(format!(
                            "{at}.{key}: `{v}` is not a Salesforce API name; fix: e.g. \"{example}\""
                        ));
                    }
                }
                SinkKind::Salesforce(SalesforceSettings {
                    instance_url,
                    api_version,
                    token: token(problems),
                    object,
                    external_id_field,
                })
            }
            "webhook" => {
                let url = match &s.url {
                    Some(u) => super::daemon::url_key(
                        &at,
                        "url",
                        u,
                        "https://crm.example.com/hooks/tideline",
                        problems,
                    ),
                    None => {
                        problems.push(format!(
                            "{at}.url: missing; fix: the receiving endpoint, e.g. url = \"https://crm.example.com/hooks/tideline\""
                        ));
                        String::new()
                    }
                };
                let secret = super::daemon::secret(
                    &format!("{at}.secret"),
                    s.secret_file.as_ref(),
                    s.secret_env.as_ref(),
                    problems,
                );
                if secret.is_none() && s.secret_file.is_none() && s.secret_env.is_none() {
                    problems.push(format!(
                        "{at}.secret: missing; fix: set `secret_file` (mode 0600) holding a signing key such as `whsec_` + base64 of 32 random bytes"
                    ));
                }
                SinkKind::Webhook(WebhookSettings {
                    url,
                    secret: secret.unwrap_or_else(|| Secret::new("")),
                })
            }
            other => {
                problems.push(format!(
                    "{at}.kind: `{other}` is not a CRM sink; fix: kind = \"hubspot\", \"salesforce\" or \"webhook\""
                ));
                continue;
            }
        };
        let batch_size = s.batch_size.unwrap_or(default_batch);
        if !(1..=max_batch).contains(&batch_size) {
            problems.push(format!(
                "{at}.batch_size: {batch_size} is out of range; fix: 1 to {max_batch} for {kind_name}"
            ));
        }
        let timeout_secs = s.timeout_secs.unwrap_or(30);
        if !(1..=600).contains(&timeout_secs) {
            problems.push(format!(
                "{at}.timeout_secs: {timeout_secs} is out of range; fix: 1 to 600 (default 30)"
            ));
        }
        let max_attempts = s.max_attempts.unwrap_or(10);
        if !(1..=100).contains(&max_attempts) {
            problems.push(format!(
                "{at}.max_attempts: {max_attempts} is out of range; fix: 1 to 100 (default 10)"
            ));
        }
        let retry_initial_ms = s.retry_initial_ms.unwrap_or(5_000);
        let retry_max_secs = s.retry_max_secs.unwrap_or(3_600);
        if !(1..=3_600_000).contains(&retry_initial_ms) {
            problems.push(format!(
                "{at}.retry_initial_ms: {retry_initial_ms} is out of range; fix: 1 to 3600000 (default 5000)"
            ));
        }
        if !(1..=86_400).contains(&retry_max_secs) || retry_max_secs * 1000 < retry_initial_ms {
            problems.push(format!(
                "{at}.retry_max_secs: {retry_max_secs} is out of range; fix: at least retry_initial_ms and at most 86400 (default 3600)"
            ));
        }
        let lease_secs = s.lease_secs.unwrap_or(300);
        if lease_secs < timeout_secs.saturating_mul(4) || lease_secs > 86_400 {
            problems.push(format!(
                "{at}.lease_secs: {lease_secs} is out of range; fix: at least four times timeout_secs ({}) and at most 86400 (default 300)",
                timeout_secs.saturating_mul(4)
            ));
        }
        sinks.push(SinkConfig {
            name,
            kind,
            batch_size,
            timeout: Duration::from_secs(timeout_secs),
            max_attempts,
            retry_initial: Duration::from_millis(retry_initial_ms),
            retry_max: Duration::from_secs(retry_max_secs),
            lease: Duration::from_secs(lease_secs),
        });
    }
    CrmConfig { cron, sinks }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Overrides};

    fn problems(toml: &str) -> Vec<String> {
        match Config::from_toml(toml, "t.toml", &Overrides::default()) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            Ok(_) => vec![],
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn every_sink_problem_is_named_with_its_fix() {
        let p = problems(
            r#"
[crm]
cron = "every minute"

[[crm.sink]]
name = "hub"
kind = "hubspot"
token = "pat-na1-secret"
batch_size = 500

[[crm.sink]]
name = "hub"
kind = "salesforce"
token_env = "TIDELINE_TEST_UNSET_VARIABLE"
api_version = "40.0"

[[crm.sink]]
name = "w"
kind = "webhook"
url = "ftp://x"
secret_env = "TIDELINE_TEST_UNSET_VARIABLE"
lease_secs = 10

[[crm.sink]]
name = "z"
kind = "zapier"
"#,
        );
        let all = p.join("\n");
        for want in [
            "crm.cron",
            "crm.sink[0] (hub): a literal token",
            "crm.sink[0] (hub).batch_size: 500 is out of range; fix: 1 to 100",
            "crm.sink[1] (hub).name: `hub` is used twice",
            "crm.sink[1] (hub).instance_url: missing",
            "crm.sink[1] (hub).api_version",
            "crm.sink[1] (hub).token_env",
            "crm.sink[2] (w).url",
            "crm.sink[2] (w).secret_env",
            "crm.sink[2] (w).lease_secs",
            "crm.sink[3] (z).kind: `zapier` is not a CRM sink",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        assert!(!all.contains("pat-na1-secret"), "{all}");
    }

    #[test]
    fn defaults_fit_each_vendor() {
        unsafe { std::env::set_var("TIDELINE_TEST_CRM_TOKEN", "t0k") };
        let c = Config::from_toml(
            r#"
[[crm.sink]]
name = "hub"
kind = "hubspot"
token_env = "TIDELINE_TEST_CRM_TOKEN"

[[crm.sink]]
name = "sf"
kind = "salesforce"
instance_url = "https://acme.my.salesforce.com/"
token_env = "TIDELINE_TEST_CRM_TOKEN"
"#,
            "t.toml",
            &Overrides::default(),
        )
        .unwrap();
        let hub = c.crm.sink("hub").unwrap();
        assert_eq!(hub.batch_size, 100);
        let sf = c.crm.sink("sf").unwrap();
        assert_eq!(sf.batch_size, 200);
        match &sf.kind {
            crate::config::SinkKind::Salesforce(s) => {
                assert_eq!(s.instance_url, "https://acme.my.salesforce.com");
                assert_eq!(s.object, "Task");
                assert_eq!(s.external_id_field, "Tideline_Id__c");
                assert_eq!(s.api_version, "61.0");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.crm.cron, super::DEFAULT_CRM_CRON);
    }
}
