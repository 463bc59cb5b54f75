//! `[smtp]` and `[[digest.recipient]]`: who gets an email digest of which locations, in
//! which language and zone, how often; and the SMTP server that carries it. The SMTP
//! password is read from a file (mode 0600) or the environment, never from this file, and
//! is a [`Secret`]: it never reaches a log line, an error or the database.

use super::Secret;
use chrono::Weekday;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Every five minutes: how often the daemon looks for digests that are due (and retries
/// the ones that failed).
pub const DEFAULT_DIGEST_CHECK_CRON: &str = "0 */5 * * * *";
/// The send hour when a recipient names none (local time).
pub const DEFAULT_DIGEST_HOUR: u32 = 8;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDigest {
    check_cron: Option<String>,
    #[serde(default, rename = "recipient")]
    recipients: Vec<RawRecipient>,
}

/// `scope = "all"` or `scope = ["loc-a", "loc-b"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawScope {
    Word(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    email: Option<String>,
    name: Option<String>,
    scope: Option<RawScope>,
    language: Option<String>,
    time_zone: Option<String>,
    schedule: Option<String>,
    hour: Option<u32>,
    weekday: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    host: Option<String>,
    port: Option<u16>,
    security: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// Accepted only to refuse it with a fix.
    password: Option<Secret>,
    from: Option<String>,
    timeout_secs: Option<u64>,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (refused if the server does not offer it).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only for a server on this machine (loopback).
    None,
}

impl SmtpSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::None => "none",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The From mailbox, e.g. `Tideline <digest@example.com>`.
    pub from: String,
    pub timeout: Duration,
}

/// Which locations a recipient's digest covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestScope {
    All,
    Locations(Vec<String>),
}

/// The language of a digest's own words (data stays as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestLanguage {
    En,
    De,
}

impl DigestLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestLanguage::En => "en",
            DigestLanguage::De => "de",
        }
    }
}

/// When a digest is due, in the recipient's zone: daily for the day before, or weekly (on
/// `weekday`) for the Monday-to-Sunday week before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestSchedule {
    Daily { hour: u32 },
    Weekly { weekday: Weekday, hour: u32 },
}

#[derive(Debug, Clone)]
pub struct DigestRecipient {
    pub email: String,
    pub name: Option<String>,
    pub scope: DigestScope,
    pub language: DigestLanguage,
    pub time_zone: chrono_tz::Tz,
    pub schedule: DigestSchedule,
}

#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// How often the daemon looks for due digests (cron with seconds, UTC).
    pub check_cron: String,
    pub recipients: Vec<DigestRecipient>,
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self {
            check_cron: DEFAULT_DIGEST_CHECK_CRON.to_string(),
            recipients: Vec::new(),
        }
    }
}

impl DigestConfig {
    pub fn recipient(&self, email: &str) -> Option<&DigestRecipient> {
        self.recipients
            .iter()
            .find(|r| r.email.eq_ignore_ascii_case(email))
    }
}

/// Whether a host name is this machine (where an unencrypted connection is acceptable).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn weekday(s: &str) -> Option<Weekday> {
    match s.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Some(Weekday::Mon),
        "tue" | "tuesday" => Some(Weekday::Tue),
        "wed" | "wednesday" => Some(Weekday::Wed),
        "thu" | "thursday" => Some(Weekday::Thu),
        "fri" | "friday" => Some(Weekday::Fri),
        "sat" | "saturday" => Some(Weekday::Sat),
        "sun" | "sunday" => Some(Weekday::Sun),
        _ => None,
    }
}

pub(super) fn smtp(raw: Option<RawSmtp>, problems: &mut Vec<String>) -> Option<SmtpConfig> {
    let raw = raw?;
    let host = match raw.host {
        Some(h) if !h.trim().is_empty() && !h.chars().any(|c| c.is_whitespace() || c == '/') => {
            h.trim().to_string()
        }
        _ => {
            problems.push(
                "smtp.host: missing or not a host name; fix: e.g. host = \"smtp.example.com\""
                    .into(),
            );
            String::new()
        }
    };
    let security = match raw.security.as_deref().unwrap_or("starttls") {
        "starttls" => SmtpSecurity::StartTls,
        "tls" => SmtpSecurity::Tls,
        "none" => SmtpSecurity::None,
        other => {
            problems.push(format!(
                "smtp.security: `{other}` is not a choice; fix: use \"starttls\" (port 587), \"tls\" (port 465) or \"none\" (a server on this machine only)"
            ));
            SmtpSecurity::StartTls
        }
    };
    if security == SmtpSecurity::None && !host.is_empty() && !is_loopback_host(&host) {
        problems.push(format!(
            "smtp.security: \"none\" would send digests and the password in clear text to `{host}`; fix: use \"starttls\" or \"tls\", or a relay on 127.0.0.1"
        ));
    }
    let port = raw.port.unwrap_or(match security {
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Tls => 465,
        SmtpSecurity::None => 25,
    });
    if port == 0 {
        problems.push(
            "smtp.port: 0 is not a port; fix: use 587 (starttls), 465 (tls) or your server's port"
                .into(),
        );
    }
    if raw.password.is_some() {
        problems.push(
            "smtp.password: a literal password in the config file is refused; fix: write it to a file with mode 0600 and set `password_file`, or set `password_env`"
                .into(),
        );
    }
    let password = super::daemon::secret(
        "smtp.password",
        raw.password_file.as_ref(),
        raw.password_env.as_ref(),
        problems,
    );
    let username = raw.username.filter(|u| !u.is_empty());
    let has_password_source = raw.password_file.is_some() || raw.password_env.is_some();
    if username.is_some() && !has_password_source {
        problems.push(
            "smtp.username: set without a password; fix: add `password_file` (mode 0600) or `password_env`, or remove `username` for a server without login"
                .into(),
        );
    }
    if username.is_none() && has_password_source {
        problems.push(
            "smtp.password: set without a username; fix: add `username` or remove the password"
                .into(),
        );
    }
    let from = raw.from.unwrap_or_default();
    if from.parse::<lettre::message::Mailbox>().is_err() {
        problems.push(format!(
            "smtp.from: `{}` is not a mailbox; fix: e.g. from = \"Tideline <digest@example.com>\"",
            crate::outputs::one_line(&from, 80)
        ));
    }
    let timeout_secs = raw.timeout_secs.unwrap_or(30);
    if !(1..=600).contains(&timeout_secs) {
        problems.push(format!(
            "smtp.timeout_secs: {timeout_secs} is out of range; fix: use 1 to 600 (default 30)"
        ));
    }
    Some(SmtpConfig {
        host,
        port,
        security,
        username,
        password,
        from,
        timeout: Duration::from_secs(timeout_secs),
    })
}

pub(super) fn digest(
    raw: RawDigest,
    location_ids: &[String],
    smtp_configured: bool,
    problems: &mut Vec<String>,
) -> DigestConfig {
    let check_cron = raw
        .check_cron
        .unwrap_or_else(|| DEFAULT_DIGEST_CHECK_CRON.to_string());
    if crate::schedule::Schedule::parse(&check_cron, chrono_tz::UTC).is_err() {
        problems.push(format!(
            "digest.check_cron: `{check_cron}` is not a cron schedule; fix: six fields with seconds first, e.g. \"{DEFAULT_DIGEST_CHECK_CRON}\" (every five minutes)"
        ));
    }
    let mut recipients: Vec<DigestRecipient> = Vec::new();
    for (i, r) in raw.recipients.into_iter().enumerate() {
        let key = format!(
            "digest.recipient[{i}]{}",
            r.email
                .as_deref()
                .map(|e| format!(" (`{}`)", crate::outputs::one_line(e, 80)))
                .unwrap_or_default()
        );
        let email = r.email.unwrap_or_default();
        if email.parse::<lettre::Address>().is_err() {
            problems.push(format!(
                "{key}.email: missing or not an email address; fix: e.g. email = \"anna@example.com\""
            ));
        } else if recipients
            .iter()
            .any(|o| o.email.eq_ignore_ascii_case(&email))
        {
            problems.push(format!(
                "{key}.email: listed twice; fix: one [[digest.recipient]] per address (its scope may name several locations)"
            ));
        }
        if let Some(n) = &r.name
            && n.chars().any(char::is_control)
        {
            problems.push(format!(
                "{key}.name: contains a control character; fix: write the name on one line"
            ));
        }
        let scope = match r.scope {
            None => {
                problems.push(format!(
                    "{key}.scope: missing; fix: scope = \"all\" or a list of location ids, e.g. [\"berlin-mitte\"]"
                ));
                DigestScope::All
            }
            Some(RawScope::Word(w)) if w == "all" => DigestScope::All,
            Some(RawScope::Word(w)) => {
                problems.push(format!(
                    "{key}.scope: `{w}` is neither \"all\" nor a list; fix: scope = \"all\" or scope = [\"{w}\"]"
                ));
                DigestScope::All
            }
            Some(RawScope::List(ids)) => {
                if ids.is_empty() {
                    problems.push(format!(
                        "{key}.scope: the list is empty; fix: name at least one location id, or use \"all\""
                    ));
                }
                for id in &ids {
                    if !location_ids.contains(id) {
                        problems.push(format!(
                            "{key}.scope: `{id}` is not a configured location; fix: use an id of a [[location]] ({})",
                            if location_ids.is_empty() {
                                "none is configured".to_string()
                            } else {
                                location_ids.join(", ")
                            }
                        ));
                    }
                }
                DigestScope::Locations(ids)
            }
        };
        let language = match r.language.as_deref().unwrap_or("en") {
            "en" => DigestLanguage::En,
            "de" => DigestLanguage::De,
            other => {
                problems.push(format!(
                    "{key}.language: `{other}` has no digest text; fix: use \"en\" or \"de\""
                ));
                DigestLanguage::En
            }
        };
        let time_zone = super::parse_tz(
            r.time_zone.as_deref().unwrap_or("UTC"),
            &format!("{key}.time_zone"),
            problems,
        );
        let hour = r.hour.unwrap_or(DEFAULT_DIGEST_HOUR);
        if hour > 23 {
            problems.push(format!(
                "{key}.hour: {hour} is not an hour; fix: use 0 to 23 (local time, default {DEFAULT_DIGEST_HOUR})"
            ));
        }
        let schedule = match r.schedule.as_deref().unwrap_or("weekly") {
            "daily" => {
                if r.weekday.is_some() {
                    problems.push(format!(
                        "{key}.weekday: a daily digest has no weekday; fix: remove it or use schedule = \"weekly\""
                    ));
                }
                DigestSchedule::Daily { hour }
            }
            "weekly" => {
                let day = r.weekday.as_deref().unwrap_or("mon");
                let weekday = weekday(day).unwrap_or_else(|| {
                    problems.push(format!(
                        "{key}.weekday: `{day}` is not a weekday; fix: use mon, tue, wed, thu, fri, sat or sun"
                    ));
                    Weekday::Mon
                });
                DigestSchedule::Weekly { weekday, hour }
            }
            other => {
                problems.push(format!(
                    "{key}.schedule: `{other}` is not a schedule; fix: use \"daily\" (the day before) or \"weekly\" (the week before, on `weekday`)"
                ));
                DigestSchedule::Daily { hour }
            }
        };
        recipients.push(DigestRecipient {
            email,
            name: r.name,
            scope,
            language,
            time_zone,
            schedule,
        });
    }
    if !recipients.is_empty() && !smtp_configured {
        problems.push(
            "digest.recipient: digests are configured but no [smtp] server carries them; fix: add an [smtp] section (host, security, from)"
                .into(),
        );
    }
    DigestConfig {
        check_cron,
        recipients,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Overrides};

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text, "t.toml", &Overrides::default()) {
            Ok(_) => vec![],
            Err(ConfigError::Invalid { problems, .. }) => problems,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_valid_digest_configuration() {
        let c = Config::from_toml(
            "[[location]]\nid = \"a\"\n[smtp]\nhost = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\nfrom = \"Tideline <d@example.com>\"\n[[digest.recipient]]\nemail = \"anna@example.com\"\nscope = [\"a\"]\nlanguage = \"de\"\ntime_zone = \"Europe/Berlin\"\nschedule = \"daily\"\nhour = 7\n[[digest.recipient]]\nemail = \"bob@example.com\"\nscope = \"all\"\n",
            "t",
            &Overrides::default(),
        )
        .unwrap();
        let smtp = c.smtp.unwrap();
        assert_eq!(
            (smtp.port, smtp.security),
            (2525, super::SmtpSecurity::None)
        );
        assert_eq!(c.digest.recipients.len(), 2);
        assert_eq!(
            c.digest.recipients[0].schedule,
            super::DigestSchedule::Daily { hour: 7 }
        );
        assert_eq!(
            c.digest.recipients[1].schedule,
            super::DigestSchedule::Weekly {
                weekday: chrono::Weekday::Mon,
                hour: 8
            }
        );
    }

    #[test]
    fn every_digest_problem_is_reported_at_once_with_a_fix() {
        let p = problems(
            "[[location]]\nid = \"a\"\n[smtp]\nhost = \"mail.example.com\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"hunter2hunter2\"\nfrom = \"not an address\"\ntimeout_secs = 0\n[[digest.recipient]]\nemail = \"x\"\nscope = [\"b\"]\nlanguage = \"fr\"\ntime_zone = \"Mars/Base\"\nschedule = \"hourly\"\nhour = 25\n[[digest.recipient]]\nemail = \"a@example.com\"\nscope = \"everything\"\nschedule = \"weekly\"\nweekday = \"someday\"\n[[digest.recipient]]\nemail = \"A@example.com\"\nscope = \"all\"\n",
        );
        let all = p.join("\n");
        for needle in [
            "smtp.security: \"none\"",
            "smtp.password: a literal password",
            "smtp.username: set without a password",
            "smtp.from",
            "smtp.timeout_secs",
            "digest.recipient[0] (`x`).email",
            "`b` is not a configured location",
            "language: `fr`",
            "Mars/Base",
            "schedule: `hourly`",
            "hour: 25",
            "scope: `everything`",
            "weekday: `someday`",
            "listed twice",
        ] {
            assert!(all.contains(needle), "missing {needle} in {all}");
        }
        assert!(p.iter().all(|p| p.contains("fix:")), "{all}");
        assert!(!all.contains("hunter2"), "{all}");
    }

    #[test]
    fn recipients_need_an_smtp_server() {
        let p = problems("[[digest.recipient]]\nemail = \"a@example.com\"\nscope = \"all\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("[smtp]"));
    }
}
