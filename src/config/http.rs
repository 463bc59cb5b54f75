//! `[http]`: the daemon's HTTP API. Tokens are read from a file (mode 0600) or the
//! environment, hashed with SHA-256 at load, and only the digest is kept: a token never
//! reaches a log line, an error message or the database.

use super::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_PAGE_SIZE_MAX: u32 = 500;
/// Shorter tokens are refused: a bearer token is a password that is never typed.
pub const MIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    enabled: Option<bool>,
    bind: Option<String>,
    page_size_max: Option<u32>,
    #[serde(default, rename = "token")]
    tokens: Vec<RawToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: Option<String>,
    scope: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    /// Accepted only to refuse it with a fix: a literal token does not belong in a file
    /// that is copied around and checked in.
    token: Option<Secret>,
}

/// What a token may do. `Admin` includes `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// A configured token: its name (for logs), its scope and the SHA-256 of its value.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    pub scope: Scope,
    pub sha256: [u8; 32],
}

impl ApiToken {
    /// A token from its value (tests and tools; the config reads files and variables).
    pub fn new(name: &str, scope: Scope, value: &Secret) -> Self {
        Self {
            name: name.to_string(),
            scope,
            sha256: Sha256::digest(value.expose().as_bytes()).into(),
        }
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Whether `tideline run` serves the API.
    pub enabled: bool,
    pub bind: SocketAddr,
    /// The largest `limit` a request may ask for.
    pub page_size_max: u32,
    pub tokens: Vec<ApiToken>,
}

impl HttpConfig {
    /// `Err` with the fix when the API would be reachable from other machines with no
    /// token configured.
    pub fn unprotected_bind(&self) -> Option<String> {
        (self.enabled && !self.bind.ip().is_loopback() && self.tokens.is_empty()).then(|| {
            format!(
                "http.bind: `{}` is reachable from other machines but no [[http.token]] is configured, \
                 so nobody could use the API and nothing would protect it; fix: add a [[http.token]] \
                 with `token_file` or `token_env`, or bind to 127.0.0.1",
                self.bind
            )
        })
    }
}

pub(super) fn validate(raw: RawHttp, problems: &mut Vec<String>) -> HttpConfig {
    let bind_text = raw.bind.unwrap_or_else(|| DEFAULT_BIND.to_string());
    let bind = bind_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        problems.push(format!(
            "http.bind: `{bind_text}` is not an address and port; fix: write IP:PORT, e.g. \"{DEFAULT_BIND}\" or \"[::1]:8080\""
        ));
        DEFAULT_BIND.parse().expect("the default parses")
    });
    let page_size_max = raw.page_size_max.unwrap_or(DEFAULT_PAGE_SIZE_MAX);
    if !(1..=10_000).contains(&page_size_max) {
        problems.push(format!(
            "http.page_size_max: {page_size_max} is out of range; fix: use 1 to 10000 (default {DEFAULT_PAGE_SIZE_MAX})"
        ));
    }
    let mut tokens: Vec<ApiToken> = Vec::new();
    for (i, t) in raw.tokens.into_iter().enumerate() {
        let key = format!(
            "http.token[{i}]{}",
            t.name
                .as_deref()
                .map(|n| format!(" (`{n}`)"))
                .unwrap_or_default()
        );
        let name = match t.name {
            Some(n)
                if !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                n
            }
            _ => {
                problems.push(format!(
                    "{key}.name: every token needs a name of ASCII letters, digits, `-`, `_` or `.`; fix: e.g. name = \"grafana\""
                ));
                String::new()
            }
        };
        if !name.is_empty() && tokens.iter().any(|o| o.name == name) {
            problems.push(format!(
                "{key}.name: duplicate name; fix: give every token its own name"
            ));
        }
        let scope = match t.scope.as_deref() {
            Some("read") => Scope::Read,
            Some("admin") => Scope::Admin,
            other => {
                problems.push(format!(
                    "{key}.scope: {} is not a scope; fix: use \"read\" (every GET) or \"admin\" (also quarantine changes)",
                    other.map_or("a missing scope".to_string(), |s| format!("`{s}`"))
                ));
                Scope::Read
            }
        };
        if t.token.is_some() {
            problems.push(format!(
                "{key}.token: a literal token in the config file is refused; fix: write it to a file with mode 0600 and set `token_file`, or set `token_env`"
            ));
        }
        let value = match (&t.token_file, &t.token_env) {
            (Some(_), Some(_)) => {
                problems.push(format!(
                    "{key}: set only one of `token_file` and `token_env`; fix: keep the one you use"
                ));
                None
            }
            (Some(path), None) => match Secret::from_file(path) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(format!("{key}.token_file: {e}"));
                    None
                }
            },
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) => Some(Secret::new(v)),
                Err(_) => {
                    problems.push(format!(
                        "{key}.token_env: environment variable `{var}` is not set; fix: export it or remove the token"
                    ));
                    None
                }
            },
            (None, None) if t.token.is_none() => {
                problems.push(format!(
                    "{key}: no token value; fix: set `token_file` (mode 0600) or `token_env`"
                ));
                None
            }
            (None, None) => None,
        };
        if let Some(v) = value {
            let trimmed = Secret::new(v.expose().trim());
            if trimmed.expose().chars().count() < MIN_TOKEN_CHARS {
                problems.push(format!(
                    "{key}: the token is shorter than {MIN_TOKEN_CHARS} characters; fix: generate one with `openssl rand -hex 32`"
                ));
            } else if tokens
                .iter()
                .any(|o| o.sha256 == <[u8; 32]>::from(Sha256::digest(trimmed.expose().as_bytes())))
            {
                problems.push(format!(
                    "{key}: the same token value is configured twice; fix: give every client its own token"
                ));
            } else {
                tokens.push(ApiToken::new(&name, scope, &trimmed));
            }
        }
    }
    let http = HttpConfig {
        enabled: raw.enabled.unwrap_or(true),
        bind,
        page_size_max,
        tokens,
    };
    if let Some(p) = http.unprotected_bind() {
        problems.push(p);
    }
    http
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};
    use std::os::unix::fs::PermissionsExt;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text, "t.toml", &Overrides::default()) {
            Ok(_) => vec![],
            Err(crate::config::ConfigError::Invalid { problems, .. }) => problems,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults_bind_loopback_with_no_tokens() {
        let c = Config::from_toml("", "t", &Overrides::default()).unwrap();
        assert!(c.http.enabled);
        assert_eq!(c.http.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.http.page_size_max, DEFAULT_PAGE_SIZE_MAX);
        assert!(c.http.tokens.is_empty());
    }

    #[test]
    fn tokens_come_from_private_files_and_the_environment_and_are_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("TIDELINE_TEST_HTTP_TOKEN_A", "fedcba9876543210fedc") };
        let text = format!(
            "[http]\nbind = \"0.0.0.0:9000\"\n[[http.token]]\nname = \"grafana\"\nscope = \"read\"\ntoken_file = \"{}\"\n[[http.token]]\nname = \"ops\"\nscope = \"admin\"\ntoken_env = \"TIDELINE_TEST_HTTP_TOKEN_A\"\n",
            f.display()
        );
        let c = Config::from_toml(&text, "t", &Overrides::default()).unwrap();
        assert_eq!(c.http.tokens.len(), 2);
        assert_eq!(c.http.tokens[1].scope, Scope::Admin);
        let expected: [u8; 32] = Sha256::digest(b"0123456789abcdef0123").into();
        assert_eq!(c.http.tokens[0].sha256, expected);
        let shown = format!("{:?}", c.http);
        assert!(!shown.contains("0123456789abcdef") && !shown.contains("sha256"));

        // A readable file is refused with the chmod fix.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = problems(&text);
        assert!(p.iter().any(|p| p.contains("chmod 600")), "{p:?}");
    }

    #[test]
    fn every_token_problem_is_reported_at_once() {
        let p = problems(
            "[http]\nbind = \"nowhere\"\npage_size_max = 0\n[[http.token]]\nname = \"a b\"\nscope = \"root\"\ntoken = \"0123456789abcdef0123\"\n[[http.token]]\nname = \"x\"\nscope = \"read\"\ntoken_env = \"TIDELINE_TEST_UNSET_VARIABLE\"\n",
        );
        let all = p.join("\n");
        for needle in [
            "http.bind",
            "http.page_size_max",
            ".name",
            ".scope",
            "literal token",
            "TIDELINE_TEST_UNSET_VARIABLE",
        ] {
            assert!(all.contains(needle), "missing {needle} in {all}");
        }
        assert!(!all.contains("0123456789abcdef0123"), "{all}");
    }

    #[test]
    fn a_public_bind_needs_a_token() {
        let p = problems("[http]\nbind = \"0.0.0.0:8080\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("[[http.token]]") && p[0].contains("fix:"));
        assert!(problems("[http]\nbind = \"0.0.0.0:8080\"\nenabled = false\n").is_empty());
        assert!(problems("[http]\nbind = \"[::1]:8080\"\n").is_empty());
    }
}
