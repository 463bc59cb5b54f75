//! Configuration: TOML with unknown keys refused, validated into [`Config`] with every
//! problem reported at once, each naming the key and the fix.
//!
//! Every section is optional; an empty file is a valid configuration. The database URL and
//! the data directory can be overridden from the environment or the command line
//! (see [`Overrides`]).

mod crm;
mod daemon;
mod digest;
mod feed;
mod http;
mod indicators;
mod jsonld;
mod secret;
mod social;
mod watch;

pub use crm::{
    CrmConfig, DEFAULT_CRM_CRON, HubspotSettings, SalesforceSettings, SinkConfig, SinkKind,
    WebhookSettings,
};
pub use daemon::{
    ConnectorConfig, ConnectorKind, DEFAULT_CONNECTOR_CRON, DelightedSettings, FreshdeskSettings,
    GoogleSettings, HelpscoutSettings, HttpSettings, IntercomSettings, SchedulerConfig,
    TypeformSettings, ZendeskAuth, ZendeskCsat, ZendeskSettings,
};
pub use digest::{
    DEFAULT_DIGEST_CHECK_CRON, DigestConfig, DigestLanguage, DigestRecipient, DigestSchedule,
    DigestScope, SmtpConfig, SmtpSecurity, is_loopback_host,
};
pub use feed::{FeedSettings, FeedSource};
pub use http::{ApiToken, HttpConfig, Scope};
pub use jsonld::{JsonldPage, JsonldSettings};
pub use secret::{Secret, redact_url};
pub use social::{
    BlueskySettings, MastodonSettings, RedditAuth, RedditSettings, SocialQuery, XSettings,
};
pub use watch::{DEFAULT_WATCH_CRON, WatchConfig};

use crate::model::Location;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// All problems found in one configuration, each on its own line with its fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file `{path}` is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("config file `{path}` has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: String, problems: Vec<String> },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    http: http::RawHttp,
    #[serde(default)]
    import: RawImport,
    #[serde(default)]
    pipeline: RawPipeline,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default, rename = "location")]
    locations: Vec<RawLocation>,
    #[serde(default)]
    scheduler: daemon::RawScheduler,
    #[serde(default, rename = "connector")]
    connectors: Vec<daemon::RawConnector>,
    #[serde(default, rename = "watch")]
    watches: Vec<watch::RawWatch>,
    #[serde(default)]
    indicators: indicators::RawIndicators,
    smtp: Option<digest::RawSmtp>,
    #[serde(default)]
    digest: digest::RawDigest,
    #[serde(default)]
    crm: crm::RawCrm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    blocked: Option<Vec<String>>,
    blocked_local_parts: Option<Vec<String>>,
    max_component_identities: Option<usize>,
    erasure_key_file: Option<PathBuf>,
    max_customers_per_identity: Option<usize>,
    name_window_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    data_dir: Option<PathBuf>,
    database_url: Option<Secret>,
    database_url_file: Option<PathBuf>,
    database_url_env: Option<String>,
    max_connections: Option<u32>,
    busy_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    batch_rows: Option<usize>,
    default_timezone: Option<String>,
    progress: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    languages: Option<Vec<String>>,
    min_detect_chars: Option<usize>,
    sentiment_adapt: Option<bool>,
    sentiment_adapt_cron: Option<String>,
    detect_cron: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    id: String,
    name: Option<String>,
    timezone: Option<String>,
    country: Option<String>,
    language: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// `None` means the embedded SQLite file `tideline.db` in `data_dir`.
    pub database_url: Option<Secret>,
    pub max_connections: u32,
    pub busy_timeout_secs: u64,
}

impl StorageConfig {
    /// The URL to connect to: the configured one, or the SQLite file in the data directory.
    pub fn effective_url(&self) -> Secret {
        match &self.database_url {
            Some(url) => url.clone(),
            None => Secret::new(format!(
                "sqlite://{}",
                self.data_dir.join("tideline.db").display()
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human on a terminal, JSON otherwise.
    Auto,
    Human,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct ImportConfig {
    pub batch_rows: usize,
    pub default_timezone: chrono_tz::Tz,
    pub progress: Progress,
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// ISO 639-1 codes the language detector may answer.
    pub languages: Vec<String>,
    /// Texts shorter than this (in characters) take the declared language instead of a guess.
    pub min_detect_chars: usize,
    /// Whether the daemon adapts the sentiment model to the deployment's rated texts.
    pub sentiment_adapt: bool,
    /// When it does (cron with seconds, UTC).
    pub sentiment_adapt_cron: String,
    /// When the daemon feeds new interactions to the change detectors (cron with seconds,
    /// UTC); a pass reads only what arrived since the last one.
    pub detect_cron: String,
}

/// Every five minutes.
pub const DEFAULT_DETECT_CRON: &str = "0 */5 * * * *";

/// Nightly at 03:30 UTC.
pub const DEFAULT_ADAPT_CRON: &str = "0 30 3 * * *";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub storage: StorageConfig,
    pub log: LogConfig,
    /// The HTTP API `tideline run` serves.
    pub http: HttpConfig,
    pub import: ImportConfig,
    pub pipeline: PipelineConfig,
    pub identity: IdentityConfig,
    pub locations: Vec<Location>,
    pub scheduler: SchedulerConfig,
    pub connectors: Vec<ConnectorConfig>,
    pub watches: Vec<WatchConfig>,
    /// `[indicators]`: small-sample rule, composite weights, CSAT thresholds.
    pub indicators: crate::pipeline::indicators::IndicatorSettings,
    /// `[smtp]`: the server that carries email digests.
    pub smtp: Option<SmtpConfig>,
    /// `[digest]` and `[[digest.recipient]]`: who gets which digest when.
    pub digest: DigestConfig,
    /// `[crm]` and `[[crm.sink]]`: the CRMs that receive the timelines.
    pub crm: CrmConfig,
}

/// Identities that must never join people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityConfig {
    pub guard: crate::pipeline::identify::IdentityGuard,
    /// The key of the erasure tombstones' hashes (`None`: `erasure.key` in the data
    /// directory, created on first use). Daemons sharing one database need the same file.
    pub erasure_key_file: Option<PathBuf>,
    /// A link that would make one customer of more identities than this becomes a link
    /// suggestion instead of a merge.
    pub max_component_identities: usize,
    /// An identity that would join more than this many otherwise separate customers is
    /// blocked automatically (recorded; `tideline customers blocked`).
    pub max_customers_per_identity: usize,
    /// Two customers with the same full display name are suggested for a link when they
    /// spoke within this many days of each other.
    pub name_window_days: u64,
}

/// Values from the environment and the command line that win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub database_url: Option<Secret>,
    pub data_dir: Option<PathBuf>,
}

/// The languages the detector knows, by ISO 639-1 code.
pub const SUPPORTED_LANGUAGES: &[&str] = &[
    "en", "de", "tr", "pl", "hu", "hr", "fr", "es", "it", "nl", "pt", "ro",
];

impl Default for Config {
    fn default() -> Self {
        validate(RawConfig::default(), &Overrides::default()).expect("the defaults are valid")
    }
}

impl Config {
    /// The locations' countries: default regions for phone numbers written without one.
    pub fn phone_countries(&self) -> Vec<String> {
        self.locations
            .iter()
            .filter_map(|l| l.country.clone())
            .collect()
    }

    /// Parses and validates TOML text. `origin` names the file in messages.
    pub fn from_toml(text: &str, origin: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: explain_toml_error(&e),
        })?;
        validate(raw, overrides).map_err(|problems| ConfigError::Invalid {
            path: origin.to_string(),
            problems,
        })
    }

    /// Loads a file, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::from_toml(&text, &path.display().to_string(), overrides)
            }
            None => {
                validate(RawConfig::default(), overrides).map_err(|problems| ConfigError::Invalid {
                    path: "<defaults>".into(),
                    problems,
                })
            }
        }
    }

    pub fn location(&self, id: &str) -> Option<&Location> {
        self.locations.iter().find(|l| l.id == id)
    }
}

fn explain_toml_error(e: &toml::de::Error) -> String {
    let msg = e.to_string();
    if msg.contains("unknown field") {
        format!(
            "{msg}\n  fix: remove the key or correct its spelling; config/example.toml lists every key"
        )
    } else {
        msg
    }
}

fn validate(raw: RawConfig, overrides: &Overrides) -> Result<Config, Vec<String>> {
    let mut problems = Vec::new();

    // storage
    let s = raw.storage;
    let data_dir = overrides
        .data_dir
        .clone()
        .or(s.data_dir)
        .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"));
    let sources = [
        s.database_url.is_some(),
        s.database_url_file.is_some(),
        s.database_url_env.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if sources > 1 {
        problems.push(
            "storage: set only one of `database_url`, `database_url_file`, `database_url_env`; \
             fix: keep the one you use and delete the others"
                .to_string(),
        );
    }
    let mut database_url = s.database_url;
    if let Some(path) = &s.database_url_file {
        match Secret::from_file(path) {
            Ok(secret) => database_url = Some(secret),
            Err(e) => problems.push(format!("storage.database_url_file: {e}")),
        }
    }
    if let Some(var) = &s.database_url_env {
        match std::env::var(var) {
            Ok(v) => database_url = Some(Secret::new(v)),
            Err(_) => problems.push(format!(
                "storage.database_url_env: environment variable `{var}` is not set; \
                 fix: export it or remove the key"
            )),
        }
    }
    if let Some(url) = &overrides.database_url {
        database_url = Some(url.clone());
    }
    if let Some(url) = &database_url {
        let u = url.expose();
        if !(u.starts_with("sqlite:")
            || u.starts_with("postgres://")
            || u.starts_with("postgresql://"))
        {
            problems.push(format!(
                "storage.database_url: `{}` is not a supported URL; fix: use `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`",
                redact_url(u)
            ));
        }
    }
    let max_connections = s.max_connections.unwrap_or(8);
    if max_connections == 0 || max_connections > 256 {
        problems.push(format!(
            "storage.max_connections: {max_connections} is out of range; fix: use 1 to 256 (default 8)"
        ));
    }
    let busy_timeout_secs = s.busy_timeout_secs.unwrap_or(5);
    if busy_timeout_secs > 3600 {
        problems.push(format!(
            "storage.busy_timeout_secs: {busy_timeout_secs} is out of range; fix: use 0 to 3600 (default 5)"
        ));
    }

    // log
    let format = match raw.log.format.as_deref().unwrap_or("auto") {
        "auto" => LogFormat::Auto,
        "human" => LogFormat::Human,
        "json" => LogFormat::Json,
        other => {
            problems.push(format!(
                "log.format: `{other}` is not a format; fix: use `auto`, `human` or `json`"
            ));
            LogFormat::Auto
        }
    };
    let level = raw.log.level.unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        problems.push(format!(
            "log.level: `{level}` is not a level or filter; fix: use `error`, `warn`, `info`, `debug`, `trace` or a filter like `tideline=debug`"
        ));
    }

    let http = http::validate(raw.http, &mut problems);

    // import
    let batch_rows = raw.import.batch_rows.unwrap_or(20_000);
    if !(1..=100_000).contains(&batch_rows) {
        problems.push(format!(
            "import.batch_rows: {batch_rows} is out of range; fix: use 1 to 100000 (default 20000)"
        ));
    }
    let default_timezone = parse_tz(
        raw.import.default_timezone.as_deref().unwrap_or("UTC"),
        "import.default_timezone",
        &mut problems,
    );
    let progress = match raw.import.progress.as_deref().unwrap_or("auto") {
        "auto" => Progress::Auto,
        "always" => Progress::Always,
        "never" => Progress::Never,
        other => {
            problems.push(format!(
                "import.progress: `{other}` is not a choice; fix: use `auto`, `always` or `never`"
            ));
            Progress::Auto
        }
    };

    // pipeline
    let languages = raw
        .pipeline
        .languages
        .unwrap_or_else(|| SUPPORTED_LANGUAGES.iter().map(|s| s.to_string()).collect());
    if languages.is_empty() {
        problems.push(
            "pipeline.languages: the list is empty; fix: name at least one language, e.g. [\"en\"]"
                .into(),
        );
    }
    for lang in &languages {
        if !SUPPORTED_LANGUAGES.contains(&lang.as_str()) {
            problems.push(format!(
                "pipeline.languages: `{lang}` is not supported; fix: use ISO 639-1 codes from {}",
                SUPPORTED_LANGUAGES.join(", ")
            ));
        }
    }
    let min_detect_chars = raw.pipeline.min_detect_chars.unwrap_or(12);
    let sentiment_adapt = raw.pipeline.sentiment_adapt.unwrap_or(true);
    let sentiment_adapt_cron = raw
        .pipeline
        .sentiment_adapt_cron
        .unwrap_or_else(|| DEFAULT_ADAPT_CRON.to_string());
    if tokio_cron_scheduler::Job::new_async(
        sentiment_adapt_cron.as_str(),
        |_, _| Box::pin(async {}),
    )
    .is_err()
    {
        problems.push(format!(
            "pipeline.sentiment_adapt_cron: `{sentiment_adapt_cron}` is not a cron schedule; fix: use six fields with seconds, e.g. \"{DEFAULT_ADAPT_CRON}\" (daily at 03:30 UTC)"
        ));
    }
    let detect_cron = raw
        .pipeline
        .detect_cron
        .unwrap_or_else(|| DEFAULT_DETECT_CRON.to_string());
    if tokio_cron_scheduler::Job::new_async(detect_cron.as_str(), |_, _| Box::pin(async {}))
        .is_err()
    {
        problems.push(format!(
            "pipeline.detect_cron: `{detect_cron}` is not a cron schedule; fix: use six fields with seconds, e.g. \"{DEFAULT_DETECT_CRON}\" (every five minutes)"
        ));
    }

    // identity
    let max_component_identities = raw
        .identity
        .max_component_identities
        .unwrap_or(crate::pipeline::identify::DEFAULT_MAX_COMPONENT);
    if !(2..=10_000).contains(&max_component_identities) {
        problems.push(format!(
            "identity.max_component_identities: {max_component_identities} is out of range; fix: use 2 to 10000 (default {})",
            crate::pipeline::identify::DEFAULT_MAX_COMPONENT
        ));
    }
    let max_customers_per_identity = raw
        .identity
        .max_customers_per_identity
        .unwrap_or(crate::pipeline::identify::DEFAULT_MAX_CUSTOMERS_PER_IDENTITY);
    if !(2..=10_000).contains(&max_customers_per_identity) {
        problems.push(format!(
            "identity.max_customers_per_identity: {max_customers_per_identity} is out of range; fix: use 2 to 10000 (default {}); a value shared by more people than this is blocked",
            crate::pipeline::identify::DEFAULT_MAX_CUSTOMERS_PER_IDENTITY
        ));
    }
    let name_window_days = raw
        .identity
        .name_window_days
        .unwrap_or(crate::pipeline::weak::DEFAULT_NAME_WINDOW_DAYS);
    if !(1..=366).contains(&name_window_days) {
        problems.push(format!(
            "identity.name_window_days: {name_window_days} is out of range; fix: use 1 to 366 (default {})",
            crate::pipeline::weak::DEFAULT_NAME_WINDOW_DAYS
        ));
    }
    let local_parts: Vec<String> = raw.identity.blocked_local_parts.unwrap_or_else(|| {
        crate::pipeline::identify::DEFAULT_BLOCKED_LOCAL_PARTS
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let (guard, unreadable) = crate::pipeline::identify::IdentityGuard::new(
        &raw.identity.blocked.unwrap_or_default(),
        &local_parts,
    );
    for v in unreadable {
        problems.push(format!(
            "identity.blocked: `{v}` is not an email, a phone or a platform id; fix: write an email, a phone in international form (+4930123456) or `platform:<id>`"
        ));
    }

    // locations
    let mut seen = HashSet::new();
    let mut seen_alias = HashSet::new();
    let mut locations = Vec::new();
    for (i, l) in raw.locations.into_iter().enumerate() {
        let key = format!("location[{i}] (`{}`)", l.id);
        if l.id.trim().is_empty()
            || !l
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push(format!(
                "{key}.id: must be non-empty ASCII letters, digits, `-` or `_`; fix: e.g. `berlin-mitte`"
            ));
        }
        if !seen.insert(l.id.clone()) {
            problems.push(format!(
                "{key}.id: duplicate id; fix: give every location its own id"
            ));
        }
        let tz = l.timezone.unwrap_or_else(|| "UTC".into());
        parse_tz(&tz, &format!("{key}.timezone"), &mut problems);
        if let Some(c) = &l.country
            && (c.len() != 2 || !c.chars().all(|c| c.is_ascii_alphabetic()))
        {
            problems.push(format!(
                "{key}.country: `{c}` is not an ISO 3166-1 alpha-2 code; fix: e.g. `DE`"
            ));
        }
        if let Some(lang) = &l.language
            && !SUPPORTED_LANGUAGES.contains(&lang.as_str())
        {
            problems.push(format!(
                "{key}.language: `{lang}` is not supported; fix: use one of {}",
                SUPPORTED_LANGUAGES.join(", ")
            ));
        }
        for alias in &l.aliases {
            if !seen_alias.insert(alias.to_lowercase()) {
                problems.push(format!(
                    "{key}.aliases: `{alias}` names two locations; fix: keep it on one"
                ));
            }
        }
        locations.push(Location {
            name: l.name.unwrap_or_else(|| l.id.clone()),
            id: l.id,
            timezone: tz,
            country: l.country.map(|c| c.to_uppercase()),
            language: l.language,
            aliases: l.aliases,
        });
    }

    let scheduler = daemon::scheduler(raw.scheduler, &mut problems);
    let location_ids: Vec<String> = locations.iter().map(|l| l.id.clone()).collect();
    let connectors = daemon::connectors(raw.connectors, &location_ids, &mut problems);
    let watches = watch::watches(
        raw.watches,
        &location_ids,
        scheduler.timezone,
        &mut problems,
    );
    let indicators = indicators::validate(raw.indicators, &mut problems);
    let smtp = digest::smtp(raw.smtp, &mut problems);
    let digest = digest::digest(raw.digest, &location_ids, smtp.is_some(), &mut problems);
    let crm = crm::crm(raw.crm, &mut problems);

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Config {
        scheduler,
        connectors,
        watches,
        indicators,
        smtp,
        digest,
        crm,
        storage: StorageConfig {
            data_dir,
            database_url,
            max_connections,
            busy_timeout_secs,
        },
        log: LogConfig { format, level },
        http,
        import: ImportConfig {
            batch_rows,
            default_timezone,
            progress,
        },
        pipeline: PipelineConfig {
            languages,
            min_detect_chars,
            sentiment_adapt,
            sentiment_adapt_cron,
            detect_cron,
        },
        identity: IdentityConfig {
            guard,
            erasure_key_file: raw.identity.erasure_key_file,
            max_component_identities,
            max_customers_per_identity,
            name_window_days,
        },
        locations,
    })
}

fn parse_tz(name: &str, key: &str, problems: &mut Vec<String>) -> chrono_tz::Tz {
    name.parse().unwrap_or_else(|_| {
        problems.push(format!(
            "{key}: `{name}` is not an IANA time zone; fix: use a name like `Europe/Berlin` or `UTC`"
        ));
        chrono_tz::UTC
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_valid() {
        let c = Config::from_toml("", "t.toml", &Overrides::default()).unwrap();
        assert_eq!(c.import.batch_rows, 20_000);
        assert!(c.storage.database_url.is_none());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let text = r#"
            [log]
            format = "xml"
            [import]
            default_timezone = "Mars/Olympus"
            batch_rows = 0
            [[location]]
            id = "a"
            timezone = "Europe/Nowhere"
            [[location]]
            id = "a"
        "#;
        let err = Config::from_toml(text, "t.toml", &Overrides::default()).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(problems.len(), 5, "{problems:#?}");
        let msg = err.to_string();
        for needle in [
            "log.format",
            "import.default_timezone",
            "import.batch_rows",
            "location[0] (`a`).timezone",
            "duplicate id",
            "fix:",
        ] {
            assert!(msg.contains(needle), "missing {needle} in {msg}");
        }
    }

    #[test]
    fn identity_caps_are_validated_with_a_fix() {
        let c = Config::from_toml("[identity]\n", "t.toml", &Overrides::default()).unwrap();
        assert_eq!(c.identity.max_customers_per_identity, 5);
        assert_eq!(c.identity.name_window_days, 14);
        let err = Config::from_toml(
            "[identity]\nmax_customers_per_identity = 1\nname_window_days = 0\n",
            "t.toml",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("identity.max_customers_per_identity: 1 is out of range; fix:"),
            "{err}"
        );
        assert!(err.contains("identity.name_window_days: 0"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_with_a_fix() {
        let err = Config::from_toml(
            "[storage]\ndatabase_ulr = \"x\"\n",
            "t.toml",
            &Overrides::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("database_ulr"), "{msg}");
        assert!(msg.contains("fix:"), "{msg}");
    }

    #[test]
    fn overrides_win_and_urls_are_not_leaked() {
        let o = Overrides {
            database_url: Some(Secret::new("mysql://u:pw@h/db")),
            data_dir: Some("/tmp/x".into()),
        };
        let err = Config::from_toml("", "t.toml", &o).unwrap_err().to_string();
        assert!(!err.contains("pw"), "{err}");
        assert!(err.contains("storage.database_url"));
    }
}
