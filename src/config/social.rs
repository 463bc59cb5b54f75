//! The social mention connector kinds (`bluesky`, `mastodon`, `reddit`, `x`).
//!
//! Each watches a list of queries, one `[[connector.query]]` table each:
//!
//! ```toml
//! [[connector]]
//! kind = "bluesky"
//! name = "bsky"
//! location = "berlin-mitte"        # for queries that name none
//! [[connector.query]]
//! q = "\"acme coffee\""
//! [[connector.query]]
//! q = "acme mitte"
//! location = "berlin-mitte"        # mentions this query finds belong to this location
//! ```
//!
//! A table rather than a bare `queries = [...]` array because a query carries its own
//! location (one brand, several stores) and, per vendor, its scope (a Reddit subreddit, a
//! Mastodon hashtag instead of a search). Each query keeps its own cursor, keyed by what
//! it asks, so reordering the list or adding a query does not disturb the others.

use super::Secret;
use super::daemon::{base_url, secret, start_time};
use serde::Deserialize;
use std::path::PathBuf;

/// One `[[connector.query]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuery {
    q: Option<String>,
    hashtag: Option<String>,
    subreddit: Option<String>,
    location: Option<String>,
}

/// One query a social connector runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SocialQuery {
    /// The search text, or (Mastodon, `hashtag = "..."`) the hashtag without its `#`.
    pub q: String,
    /// Mastodon: read the hashtag timeline `q` instead of searching.
    pub hashtag: bool,
    /// Reddit: search only this subreddit (`/r/{subreddit}/search`).
    pub subreddit: Option<String>,
    /// The location of what this query finds (default: the connector's `location`).
    pub location: Option<String>,
}

impl SocialQuery {
    /// What the query asks, as the key of its cursor and the `query` of its records.
    pub fn key(&self) -> String {
        match (&self.subreddit, self.hashtag) {
            (_, true) => format!("#{}", self.q),
            (Some(sr), false) => format!("r/{sr}: {}", self.q),
            (None, false) => self.q.clone(),
        }
    }
}

macro_rules! raw_social {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            pub(super) name: String,
            pub(super) schedule: Option<String>,
            pub(super) timezone: Option<String>,
            pub(super) base_url: Option<String>,
            pub(super) location: Option<String>,
            pub(super) timeout_secs: Option<u64>,
            pub(super) max_retries: Option<u32>,
            pub(super) max_wait_secs: Option<u64>,
            #[serde(default)]
            query: Vec<RawQuery>,
            $($field: $ty,)*
        }
    };
}

raw_social!(RawBluesky {
    identifier: Option<String>,
    app_password_file: Option<PathBuf>,
    app_password_env: Option<String>,
    start_time: Option<String>,
});

raw_social!(RawMastodon {
    access_token_file: Option<PathBuf>,
    access_token_env: Option<String>,
    start_time: Option<String>,
});

raw_social!(RawReddit {
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    user_agent: Option<String>,
    requests_per_minute: Option<u32>,
});

raw_social!(RawX {
    bearer_token_file: Option<PathBuf>,
    bearer_token_env: Option<String>,
    max_posts_per_run: Option<u64>,
});

#[derive(Debug, Clone)]
pub struct BlueskySettings {
    /// The PDS that holds the account (`https://bsky.social`); search is proxied through
    /// it to the AppView.
    pub base_url: String,
    /// The account's handle or email.
    pub identifier: String,
    /// An app password (Settings → App passwords), never the account password.
    pub app_password: Secret,
    pub queries: Vec<SocialQuery>,
    /// Unix seconds: the first sync asks for posts since then (default: what search
    /// returns).
    pub start_time: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct MastodonSettings {
    /// The instance, e.g. `https://mastodon.social`. Each instance sees only what it
    /// federates with: watch several with several connectors.
    pub base_url: String,
    /// A user token (`read:statuses`, `read:search`): needed for status search and on
    /// instances that closed their public timelines.
    pub access_token: Option<Secret>,
    pub queries: Vec<SocialQuery>,
    /// Unix seconds: the first sync reads from here (Mastodon ids begin with their
    /// millisecond time); without it the first sync takes the newest page only.
    pub start_time: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum RedditAuth {
    /// Application-only OAuth (`grant_type=client_credentials`).
    Application,
    /// A script app acting as its developer (`grant_type=password`).
    Script { username: String, password: Secret },
}

#[derive(Debug, Clone)]
pub struct RedditSettings {
    /// `https://oauth.reddit.com`.
    pub base_url: String,
    /// `https://www.reddit.com/api/v1/access_token`.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub auth: RedditAuth,
    /// Reddit asks for a unique, descriptive one and throttles generic ones.
    pub user_agent: String,
    /// The free tier allows 100 per OAuth client; requests are spaced to stay under it.
    pub requests_per_minute: u32,
    pub queries: Vec<SocialQuery>,
}

#[derive(Debug, Clone)]
pub struct XSettings {
    /// `https://api.x.com`.
    pub base_url: String,
    /// The app-only bearer token.
    pub bearer_token: Secret,
    pub queries: Vec<SocialQuery>,
    /// Reads are billed per post: a run stops after this many (the next run goes on
    /// from the same place).
    pub max_posts_per_run: Option<u64>,
}

/// Reads the query tables. `allow` names the optional keys this kind understands;
/// `max_len` is the vendor's limit on the query text.
fn queries(
    at: &str,
    raw: Vec<RawQuery>,
    kind: &str,
    location_ids: &[String],
    problems: &mut Vec<String>,
) -> Vec<SocialQuery> {
    if raw.is_empty() {
        problems.push(format!(
            "{at}: no queries; fix: add at least one [[connector.query]] table with q = \"your brand\""
        ));
    }
    let max_len = 512; // Reddit's and X's standard limit; Bluesky and Mastodon take it too
    let mut out: Vec<SocialQuery> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let qat = format!("{at}.query[{i}]");
        if r.subreddit.is_some() && kind != "reddit" {
            problems.push(format!(
                "{qat}.subreddit: only Reddit queries have a subreddit; fix: delete the key"
            ));
        }
        if r.hashtag.is_some() && kind != "mastodon" {
            problems.push(format!(
                "{qat}.hashtag: only Mastodon reads hashtag timelines; fix: use q = \"#tag\" to search for it"
            ));
        }
        let (q, hashtag) = match (r.q, r.hashtag) {
            (Some(q), None) => (q.trim().to_string(), false),
            (None, Some(h)) => (h.trim().trim_start_matches('#').to_string(), true),
            (Some(_), Some(_)) => {
                problems.push(format!(
                    "{qat}: set either q (a search) or hashtag (a timeline), not both; fix: split it into two queries"
                ));
                continue;
            }
            (None, None) => {
                problems.push(format!(
                    "{qat}: no q; fix: q = \"your brand\"{}",
                    if kind == "mastodon" {
                        " or hashtag = \"yourbrand\""
                    } else {
                        ""
                    }
                ));
                continue;
            }
        };
        if q.is_empty() || q.chars().count() > max_len {
            problems.push(format!(
                "{qat}.q: the query is empty or longer than {max_len} characters; fix: a shorter search"
            ));
        }
        if hashtag && !q.chars().all(|c| c.is_alphanumeric() || c == '_') {
            problems.push(format!(
                "{qat}.hashtag: `{q}` is not a hashtag; fix: letters, digits and `_` only, without `#`"
            ));
        }
        let subreddit = r.subreddit.map(|s| {
            let s = s
                .trim()
                .trim_start_matches("/r/")
                .trim_start_matches("r/")
                .to_string();
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                problems.push(format!(
                    "{qat}.subreddit: `{s}` is not a subreddit name; fix: e.g. \"smallbusiness\" (without r/)"
                ));
            }
            s
        });
        if let Some(l) = &r.location
            && !location_ids.contains(l)
        {
            problems.push(format!(
                "{qat}.location: `{l}` is not a configured location; fix: one of the [[location]] ids ({})",
                location_ids.join(", ")
            ));
        }
        let query = SocialQuery {
            q,
            hashtag,
            subreddit,
            location: r.location,
        };
        if out.iter().any(|o| o.key() == query.key()) {
            problems.push(format!(
                "{qat}: the same query is listed twice; fix: delete one (a query has one location)"
            ));
        }
        out.push(query);
    }
    out
}

fn required_secret(
    at: &str,
    key: &str,
    file: Option<&PathBuf>,
    env: Option<&String>,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    let s = secret(&format!("{at}.{key}"), file, env, problems);
    if file.is_none() && env.is_none() {
        problems.push(format!(
            "{at}: no {key}; fix: {key}_file (a file of mode 600 holding {what}) or {key}_env"
        ));
    }
    s
}

pub(super) fn bluesky(
    at: &str,
    r: RawBluesky,
    location_ids: &[String],
    problems: &mut Vec<String>,
) -> Option<super::ConnectorKind> {
    let base_url = base_url(
        at,
        r.base_url.as_deref().unwrap_or("https://bsky.social"),
        "https://bsky.social",
        problems,
    );
    let identifier = r.identifier.unwrap_or_default().trim().to_string();
    if identifier.is_empty() {
        problems.push(format!(
            "{at}.identifier: missing; fix: the account's handle, e.g. identifier = \"acme.bsky.social\""
        ));
    }
    let app_password = required_secret(
        at,
        "app_password",
        r.app_password_file.as_ref(),
        r.app_password_env.as_ref(),
        "an app password",
        problems,
    );
    let start_time = r
        .start_time
        .as_deref()
        .map(|s| start_time(at, Some(s), problems));
    let queries = queries(at, r.query, "bluesky", location_ids, problems);
    Some(super::ConnectorKind::Bluesky(BlueskySettings {
        base_url,
        identifier,
        app_password: app_password?,
        queries,
        start_time,
    }))
}

pub(super) fn mastodon(
    at: &str,
    r: RawMastodon,
    location_ids: &[String],
    problems: &mut Vec<String>,
) -> Option<super::ConnectorKind> {
    let Some(instance) = r.base_url.as_deref() else {
        problems.push(format!(
            "{at}.base_url: missing; fix: the instance to read, e.g. base_url = \"https://mastodon.social\""
        ));
        return None;
    };
    let base_url = base_url(at, instance, "https://mastodon.social", problems);
    let access_token = secret(
        &format!("{at}.access_token"),
        r.access_token_file.as_ref(),
        r.access_token_env.as_ref(),
        problems,
    );
    let has_token = r.access_token_file.is_some() || r.access_token_env.is_some();
    let start_time = r
        .start_time
        .as_deref()
        .map(|s| start_time(at, Some(s), problems));
    let queries = queries(at, r.query, "mastodon", location_ids, problems);
    if !has_token && queries.iter().any(|q| !q.hashtag) {
        problems.push(format!(
            "{at}: status search (q = ...) needs a user token; fix: access_token_file (a token with read:search) or use hashtag = \"...\" queries"
        ));
    }
    Some(super::ConnectorKind::Mastodon(MastodonSettings {
        base_url,
        access_token,
        queries,
        start_time,
    }))
}

pub(super) fn reddit(
    at: &str,
    r: RawReddit,
    location_ids: &[String],
    problems: &mut Vec<String>,
) -> Option<super::ConnectorKind> {
    let base_url = base_url(
        at,
        r.base_url.as_deref().unwrap_or("https://oauth.reddit.com"),
        "https://oauth.reddit.com",
        problems,
    );
    let token_url = r
        .token_url
        .as_deref()
        .unwrap_or("https://www.reddit.com/api/v1/access_token")
        .to_string();
    if !(token_url.starts_with("https://") || token_url.starts_with("http://")) {
        problems.push(format!(
            "{at}.token_url: `{}` is not an http(s) URL; fix: \"https://www.reddit.com/api/v1/access_token\"",
            crate::config::redact_url(&token_url)
        ));
    }
    let client_id = r.client_id.unwrap_or_default().trim().to_string();
    if client_id.is_empty() {
        problems.push(format!(
            "{at}.client_id: missing; fix: the id under the app's name at reddit.com/prefs/apps"
        ));
    }
    let client_secret = required_secret(
        at,
        "client_secret",
        r.client_secret_file.as_ref(),
        r.client_secret_env.as_ref(),
        "the app's secret",
        problems,
    );
    let password = secret(
        &format!("{at}.password"),
        r.password_file.as_ref(),
        r.password_env.as_ref(),
        problems,
    );
    let username = r
        .username
        .map(|u| u.trim().trim_start_matches("/u/").to_string());
    let auth = match (
        &username,
        password,
        r.password_file.is_some() || r.password_env.is_some(),
    ) {
        (Some(u), Some(p), _) => Some(RedditAuth::Script {
            username: u.clone(),
            password: p,
        }),
        (None, _, true) => {
            problems.push(format!(
                "{at}.username: a script app's password needs its user name; fix: username = \"your_reddit_user\""
            ));
            None
        }
        (_, _, true) => None, // the password's own problem is already reported
        (_, _, false) => Some(RedditAuth::Application),
    };
    let user_agent = match (r.user_agent, &username) {
        (Some(ua), _) if !ua.trim().is_empty() => ua.trim().to_string(),
        (_, Some(u)) => format!("tideline/{} (by /u/{u})", env!("CARGO_PKG_VERSION")),
        _ => {
            problems.push(format!(
                "{at}: Reddit needs a User-Agent that names its developer; fix: username = \"your_reddit_user\" (gives \"tideline/{} (by /u/your_reddit_user)\") or user_agent = \"...\"",
                env!("CARGO_PKG_VERSION")
            ));
            String::new()
        }
    };
    let rpm = r.requests_per_minute.unwrap_or(100);
    if !(1..=6000).contains(&rpm) {
        problems.push(format!(
            "{at}.requests_per_minute: {rpm} is out of range; fix: 100 (Reddit's free tier per OAuth client) or less"
        ));
    }
    let queries = queries(at, r.query, "reddit", location_ids, problems);
    Some(super::ConnectorKind::Reddit(RedditSettings {
        base_url,
        token_url,
        client_id,
        client_secret: client_secret?,
        auth: auth?,
        user_agent,
        requests_per_minute: rpm.clamp(1, 6000),
        queries,
    }))
}

pub(super) fn x(
    at: &str,
    r: RawX,
    location_ids: &[String],
    problems: &mut Vec<String>,
) -> Option<super::ConnectorKind> {
    let base_url = base_url(
        at,
        r.base_url.as_deref().unwrap_or("https://api.x.com"),
        "https://api.x.com",
        problems,
    );
    let bearer_token = required_secret(
        at,
        "bearer_token",
        r.bearer_token_file.as_ref(),
        r.bearer_token_env.as_ref(),
        "the app's bearer token",
        problems,
    );
    if r.max_posts_per_run == Some(0) {
        problems.push(format!(
            "{at}.max_posts_per_run: 0 reads nothing; fix: a positive number, or delete the key for no cap"
        ));
    }
    let queries = queries(at, r.query, "x", location_ids, problems);
    Some(super::ConnectorKind::X(XSettings {
        base_url,
        bearer_token: bearer_token?,
        queries,
        max_posts_per_run: r.max_posts_per_run,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, ConnectorKind, Overrides};

    fn problems(text: &str) -> String {
        match Config::from_toml(text, "t.toml", &Overrides::default()) {
            Err(ConfigError::Invalid { problems, .. }) => {
                assert!(problems.iter().all(|p| p.contains("fix:")), "{problems:?}");
                problems.join("\n")
            }
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn social_problems_are_named_with_their_fix() {
        let all = problems(
            r#"
[[location]]
id = "berlin"
[[connector]]
kind = "bluesky"
name = "bsky"
[[connector.query]]
q = "acme"
location = "paris"
[[connector.query]]
q = "acme"
subreddit = "x"
[[connector.query]]
q = "acme"
[[connector]]
kind = "mastodon"
name = "masto"
[[connector]]
kind = "mastodon"
name = "masto2"
base_url = "https://m.example"
[[connector.query]]
q = "acme coffee"
[[connector.query]]
hashtag = "acme coffee"
[[connector]]
kind = "reddit"
name = "rd"
client_secret_env = "TIDELINE_TEST_SURELY_UNSET"
requests_per_minute = 0
[[connector]]
kind = "x"
name = "x"
max_posts_per_run = 0
"#,
        );
        for needle in [
            "connector[0] (bsky).identifier",
            "connector[0] (bsky): no app_password",
            "connector[0] (bsky).query[0].location",
            "connector[0] (bsky).query[1].subreddit",
            "connector[0] (bsky).query[2]: the same query",
            "connector[1] (masto).base_url",
            "connector[2] (masto2): status search",
            "connector[2] (masto2).query[1].hashtag",
            "connector[3] (rd).client_id",
            "connector[3] (rd).client_secret_env",
            "connector[3] (rd): Reddit needs a User-Agent",
            "connector[3] (rd).requests_per_minute",
            "connector[3] (rd): no queries",
            "connector[4] (x): no bearer_token",
            "connector[4] (x).max_posts_per_run",
        ] {
            assert!(all.contains(needle), "missing {needle}:\n{all}");
        }
    }

    /// The commented social examples of `config/example.toml`, uncommented, are valid.
    #[test]
    fn the_commented_social_examples_parse() {
        let text = include_str!("../../config/example.toml");
        let start = text
            .find("# [[connector]]\n# kind = \"bluesky\"")
            .expect("the bluesky example");
        let end = start
            + text[start..]
                .find("# schedule, timezone, location")
                .expect("the end of the examples");
        let mut toml = String::from("[[location]]\nid = \"berlin-mitte\"\n");
        for line in text[start..end].lines() {
            let line = line.strip_prefix('#').unwrap_or(line);
            let line = line.strip_prefix(' ').unwrap_or(line);
            let line = match line.split_once("_file = ") {
                Some((key, _)) => format!("{key}_env = \"TIDELINE_TEST_EXAMPLE_SECRET\""),
                None => line.to_string(),
            };
            toml.push_str(&line);
            toml.push('\n');
        }
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("TIDELINE_TEST_EXAMPLE_SECRET", "x") };
        let c = Config::from_toml(&toml, "example.toml", &Overrides::default())
            .unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let kinds: Vec<&str> = c.connectors.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["bluesky", "mastodon", "reddit", "x"]);
    }

    #[test]
    fn social_defaults() {
        // SAFETY: variables only this test reads.
        unsafe { std::env::set_var("TIDELINE_TEST_SOCIAL_SECRET", "s3cret") };
        let text = r##"
[[connector]]
kind = "reddit"
name = "rd"
client_id = "abc"
client_secret_env = "TIDELINE_TEST_SOCIAL_SECRET"
username = "acme_dev"
[[connector.query]]
q = "acme"
subreddit = "r/smallbusiness"
[[connector]]
kind = "x"
name = "x"
bearer_token_env = "TIDELINE_TEST_SOCIAL_SECRET"
[[connector.query]]
q = "acme -is:retweet"
[[connector]]
kind = "mastodon"
name = "m"
base_url = "https://m.example/"
[[connector.query]]
hashtag = "#acme"
"##;
        let c = Config::from_toml(text, "t.toml", &Overrides::default()).unwrap();
        let ConnectorKind::Reddit(r) = &c.connectors[0].kind else {
            panic!("not reddit")
        };
        assert_eq!(r.base_url, "https://oauth.reddit.com");
        assert_eq!(r.requests_per_minute, 100);
        assert!(
            r.user_agent.starts_with("tideline/") && r.user_agent.ends_with("(by /u/acme_dev)")
        );
        assert!(matches!(r.auth, crate::config::RedditAuth::Application));
        assert_eq!(r.queries[0].subreddit.as_deref(), Some("smallbusiness"));
        assert!(!format!("{r:?}").contains("s3cret"));
        let ConnectorKind::X(x) = &c.connectors[1].kind else {
            panic!("not x")
        };
        assert_eq!(x.base_url, "https://api.x.com");
        let ConnectorKind::Mastodon(m) = &c.connectors[2].kind else {
            panic!("not mastodon")
        };
        assert_eq!(m.base_url, "https://m.example");
        assert_eq!(
            (m.queries[0].q.as_str(), m.queries[0].hashtag),
            ("acme", true)
        );
        assert_eq!(m.queries[0].key(), "#acme");
        let bad = format!("{text}\nsubredit = \"x\"\n");
        assert!(
            Config::from_toml(&bad, "t.toml", &Overrides::default())
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
    }
}
