//! The RSS/Atom feed connector kind (`feed`).
//!
//! One feed is `url = "..."`; several are `[[connector.feed]]` tables, each with its own
//! optional location (the way feed readers and the social kinds' `[[connector.query]]`
//! list sources: one entry per source, with its settings beside it):
//!
//! ```toml
//! [[connector]]
//! kind = "feed"
//! name = "press"
//! location = "berlin-mitte"          # for feeds that name none
//! [[connector.feed]]
//! url = "https://news.example/search.rss?q=acme"
//! [[connector.feed]]
//! url = "https://blog.example/atom.xml"
//! location = "hamburg"
//! ```
//!
//! A URL may carry a token in its query (private feeds): it is kept only in the
//! configuration. Logs, errors and stored records name the feed by its URL without the
//! query and credentials, and the cursor by a digest of the whole URL.

use serde::Deserialize;

/// One `[[connector.feed]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeedSource {
    url: Option<String>,
    location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFeed {
    pub(super) name: String,
    pub(super) schedule: Option<String>,
    pub(super) timezone: Option<String>,
    pub(super) location: Option<String>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) max_retries: Option<u32>,
    pub(super) max_wait_secs: Option<u64>,
    url: Option<String>,
    #[serde(default)]
    feed: Vec<RawFeedSource>,
}

/// One feed a `feed` connector reads.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSource {
    /// The feed's URL as configured (may hold a token: never logged or stored).
    pub url: String,
    /// The location of what this feed brings (default: the connector's `location`).
    pub location: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FeedSettings {
    pub feeds: Vec<FeedSource>,
}

pub(super) fn feed(
    at: &str,
    r: RawFeed,
    location_ids: &[String],
    problems: &mut Vec<String>,
) -> Option<super::ConnectorKind> {
    let mut raw: Vec<(String, RawFeedSource)> = Vec::new();
    match (r.url, r.feed.is_empty()) {
        (Some(u), true) => raw.push((
            at.to_string(),
            RawFeedSource {
                url: Some(u),
                location: None,
            },
        )),
        (Some(_), false) => {
            problems.push(format!(
                "{at}.url: set either url (one feed) or [[connector.feed]] tables, not both; fix: move url into a [[connector.feed]] table"
            ));
            return None;
        }
        (None, true) => {
            problems.push(format!(
                "{at}: no feed; fix: url = \"https://example.com/feed.xml\" or one [[connector.feed]] table per feed"
            ));
            return None;
        }
        (None, false) => raw.extend(
            r.feed
                .into_iter()
                .enumerate()
                .map(|(i, f)| (format!("{at}.feed[{i}]"), f)),
        ),
    }
    let mut feeds: Vec<FeedSource> = Vec::new();
    for (fat, f) in raw {
        let Some(url) = f.url.map(|u| u.trim().to_string()) else {
            problems.push(format!(
                "{fat}: no url; fix: url = \"https://example.com/feed.xml\""
            ));
            continue;
        };
        let parsed = reqwest::Url::parse(&url).ok();
        if !parsed
            .as_ref()
            .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        {
            problems.push(format!(
                "{fat}.url: `{}` is not an http(s) URL; fix: the feed's address, e.g. \"https://example.com/feed.xml\"",
                crate::config::redact_url(&url)
            ));
        }
        if let Some(l) = &f.location
            && !location_ids.contains(l)
        {
            problems.push(format!(
                "{fat}.location: `{l}` is not a configured location; fix: one of the [[location]] ids ({})",
                location_ids.join(", ")
            ));
        }
        if feeds.iter().any(|o| o.url == url) {
            problems.push(format!(
                "{fat}.url: the same feed is listed twice; fix: delete one (a feed has one location)"
            ));
        }
        feeds.push(FeedSource {
            url,
            location: f.location,
        });
    }
    Some(super::ConnectorKind::Feed(FeedSettings { feeds }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, ConnectorKind, Overrides};

    #[test]
    fn feed_settings_and_their_problems() {
        let ok = Config::from_toml(
            r#"
[[location]]
id = "berlin"
[[connector]]
kind = "feed"
name = "one"
url = "https://blog.example/feed/"
[[connector]]
kind = "feed"
name = "many"
location = "berlin"
[[connector.feed]]
url = "https://news.example/search.rss?q=acme&token=t0k"
[[connector.feed]]
url = "https://blog.example/atom.xml"
location = "berlin"
"#,
            "t.toml",
            &Overrides::default(),
        )
        .unwrap();
        let ConnectorKind::Feed(one) = &ok.connectors[0].kind else {
            panic!("not a feed")
        };
        assert_eq!(one.feeds[0].url, "https://blog.example/feed/");
        let ConnectorKind::Feed(many) = &ok.connectors[1].kind else {
            panic!("not a feed")
        };
        assert_eq!(many.feeds.len(), 2);
        assert_eq!(many.feeds[1].location.as_deref(), Some("berlin"));
        assert_eq!(ok.connectors[1].kind.as_str(), "feed");

        let bad = Config::from_toml(
            r#"
[[location]]
id = "berlin"
[[connector]]
kind = "feed"
name = "a"
[[connector]]
kind = "feed"
name = "b"
url = "ftp://x.example/?token=s3cret"
[[connector]]
kind = "feed"
name = "c"
url = "https://x.example/feed"
[[connector.feed]]
url = "https://y.example/feed"
[[connector]]
kind = "feed"
name = "d"
[[connector.feed]]
url = "https://y.example/feed"
location = "paris"
[[connector.feed]]
url = "https://y.example/feed"
[[connector.feed]]
location = "berlin"
"#,
            "t.toml",
            &Overrides::default(),
        );
        let Err(ConfigError::Invalid { problems, .. }) = bad else {
            panic!("accepted: {bad:?}")
        };
        assert!(problems.iter().all(|p| p.contains("fix:")), "{problems:?}");
        let all = problems.join("\n");
        for needle in [
            "connector[0] (a): no feed",
            "connector[1] (b).url: `ftp://x.example/`",
            "connector[2] (c).url: set either url",
            "connector[3] (d).feed[0].location",
            "connector[3] (d).feed[1].url: the same feed",
            "connector[3] (d).feed[2]: no url",
        ] {
            assert!(all.contains(needle), "missing {needle}:\n{all}");
        }
        assert!(!all.contains("s3cret"), "{all}");
        let unknown = Config::from_toml(
            "[[connector]]\nkind = \"feed\"\nname = \"a\"\nurl = \"https://x.example/f\"\nurls = []\n",
            "t.toml",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(unknown.contains("unknown field"), "{unknown}");
    }

    /// The commented feed example of `config/example.toml`, uncommented, is valid.
    #[test]
    fn the_commented_feed_example_parses() {
        let text = include_str!("../../config/example.toml");
        let start = text
            .find("# [[connector]]\n# kind = \"feed\"")
            .expect("the feed example");
        let end = start + text[start..].find("# schedule,").expect("its end");
        let mut toml = String::from("[[location]]\nid = \"berlin-mitte\"\n");
        for line in text[start..end].lines() {
            let line = line.strip_prefix('#').unwrap_or(line);
            toml.push_str(line.strip_prefix(' ').unwrap_or(line));
            toml.push('\n');
        }
        let c = Config::from_toml(&toml, "example.toml", &Overrides::default())
            .unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let ConnectorKind::Feed(f) = &c.connectors[0].kind else {
            panic!("not a feed")
        };
        assert_eq!(f.feeds.len(), 2);
    }
}
