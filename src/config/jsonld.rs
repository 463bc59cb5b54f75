//! The `jsonld` connector kind: schema.org reviews read from pages the business owns.
//!
//! ```toml
//! [[connector]]
//! kind = "jsonld"
//! name = "site"
//! user_agent = "Tideline"                        # the product token robots.txt is matched by
//! contact_url = "https://acme.example/crawler"   # sent in the User-Agent
//! [[connector.page]]
//! url = "https://acme.example/reviews"
//! location = "berlin-mitte"
//! ```
//!
//! There is no `enabled` switch: configuring the connector is the opt-in, and it reads only
//! the pages listed. Pages on Google, X or Reddit hosts are refused: their terms forbid
//! scraping (use the `google`, `x` and `reddit` API connectors).

use super::redact_url as secret_free_url;
use serde::Deserialize;

/// One `[[connector.page]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPage {
    url: String,
    location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJsonld {
    pub(super) name: String,
    pub(super) schedule: Option<String>,
    pub(super) timezone: Option<String>,
    pub(super) location: Option<String>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) max_retries: Option<u32>,
    pub(super) max_wait_secs: Option<u64>,
    user_agent: Option<String>,
    contact_url: Option<String>,
    #[serde(default)]
    page: Vec<RawPage>,
}

/// One page to read.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonldPage {
    /// An http(s) URL without fragment.
    pub url: String,
    /// The location of the reviews on this page (default: the connector's `location`).
    pub location: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JsonldSettings {
    /// The product token robots.txt groups are matched against (default `Tideline`).
    pub product_token: String,
    /// The whole User-Agent header: `<token>/<version> (+<contact_url>)`.
    pub user_agent: String,
    pub pages: Vec<JsonldPage>,
}

pub(super) fn jsonld(
    at: &str,
    r: RawJsonld,
    location_ids: &[String],
    problems: &mut Vec<String>,
) -> Option<super::ConnectorKind> {
    let token = r.user_agent.unwrap_or_else(|| "Tideline".to_string());
    if token.is_empty()
        || !token
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-')
    {
        problems.push(format!(
            "{at}.user_agent: `{token}` is not a product token; fix: letters, `_` and `-` only (RFC 9309), e.g. \"Tideline\""
        ));
    }
    let contact = match &r.contact_url {
        Some(c) => {
            let c = c.trim();
            if !(c.starts_with("https://") || c.starts_with("http://") || c.starts_with("mailto:"))
                || c.chars()
                    .any(|ch| ch.is_whitespace() || ch.is_control() || ch == ')')
            {
                problems.push(format!(
                    "{at}.contact_url: `{}` is not a URL; fix: a page or mailto: address where site owners can reach you, e.g. \"https://acme.example/crawler\"",
                    secret_free_url(c)
                ));
            }
            format!("+{c}")
        }
        None => "self-hosted customer feedback daemon".to_string(),
    };
    let user_agent = format!("{token}/{} ({contact})", env!("CARGO_PKG_VERSION"));
    if r.page.is_empty() {
        problems.push(format!(
            "{at}.page: no page; fix: one [[connector.page]] table per page, e.g. url = \"https://acme.example/reviews\""
        ));
    }
    let mut pages: Vec<JsonldPage> = Vec::new();
    for (i, p) in r.page.into_iter().enumerate() {
        let key = format!("{at}.page[{i}]");
        let shown = secret_free_url(&p.url);
        match reqwest::Url::parse(p.url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                let host = u.host_str().unwrap_or_default();
                if let Some(vendor) = crate::connectors::jsonld::forbidden_host(host) {
                    problems.push(format!(
                        "{key}.url: `{shown}` is on a host of {vendor}, whose terms forbid scraping; fix: use the `{}` connector (its API) instead, or list pages of your own site",
                        vendor.to_ascii_lowercase()
                    ));
                }
                if u.fragment().is_some() {
                    problems.push(format!(
                        "{key}.url: `{shown}` has a fragment (#...); fix: the page's URL without it"
                    ));
                }
                if !u.username().is_empty() || u.password().is_some() {
                    problems.push(format!(
                        "{key}.url: the URL carries credentials; fix: list a public page of your site"
                    ));
                }
                let url = u.to_string();
                if pages.iter().any(|q| q.url == url) {
                    problems.push(format!(
                        "{key}.url: `{shown}` is listed twice; fix: delete one"
                    ));
                }
                if let Some(l) = &p.location
                    && !location_ids.contains(l)
                {
                    problems.push(format!(
                        "{key}.location: `{l}` is not a configured location; fix: one of the [[location]] ids ({})",
                        location_ids.join(", ")
                    ));
                }
                pages.push(JsonldPage {
                    url,
                    location: p.location,
                });
            }
            _ => problems.push(format!(
                "{key}.url: `{shown}` is not an http(s) URL; fix: e.g. \"https://acme.example/reviews\""
            )),
        }
    }
    Some(super::ConnectorKind::Jsonld(JsonldSettings {
        product_token: token,
        user_agent,
        pages,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Overrides};

    #[test]
    fn jsonld_problems_are_named_with_their_fix() {
        let text = r#"
[[location]]
id = "berlin-mitte"
[[connector]]
kind = "jsonld"
name = "site"
user_agent = "Tideline/1.0"
contact_url = "call me"
[[connector.page]]
url = "https://www.google.com/maps/place/acme"
[[connector.page]]
url = "https://x.com/acme/status/1"
[[connector.page]]
url = "https://old.reddit.com/r/berlin"
[[connector.page]]
url = "ftp://acme.example/reviews"
[[connector.page]]
url = "https://acme.example/reviews#top"
location = "paris"
[[connector]]
kind = "jsonld"
name = "empty"
"#;
        let Err(ConfigError::Invalid { problems, .. }) =
            Config::from_toml(text, "t.toml", &Overrides::default())
        else {
            panic!("invalid config accepted");
        };
        let all = problems.join("\n");
        for needle in [
            "connector[0] (site).user_agent: `Tideline/1.0` is not a product token",
            "connector[0] (site).contact_url",
            "connector[0] (site).page[0].url: `https://www.google.com/maps/place/acme` is on a host of Google",
            "connector[0] (site).page[1].url: `https://x.com/acme/status/1` is on a host of X",
            "connector[0] (site).page[2].url: `https://old.reddit.com/r/berlin` is on a host of Reddit",
            "connector[0] (site).page[3].url: `ftp://acme.example/reviews` is not an http(s) URL",
            "connector[0] (site).page[4].url: `https://acme.example/reviews#top` has a fragment",
            "connector[0] (site).page[4].location: `paris`",
            "connector[1] (empty).page: no page",
        ] {
            assert!(all.contains(needle), "missing {needle}:\n{all}");
        }
        assert!(problems.iter().all(|p| p.contains("fix:")), "{all}");
        assert_eq!(problems.len(), 9, "{all}");
    }

    #[test]
    fn jsonld_defaults_and_unknown_keys() {
        let ok = "[[connector]]\nkind = \"jsonld\"\nname = \"site\"\n[[connector.page]]\nurl = \"https://acme.example/reviews\"\n";
        let c = Config::from_toml(ok, "t.toml", &Overrides::default()).unwrap();
        let crate::config::ConnectorKind::Jsonld(j) = &c.connectors[0].kind else {
            panic!("not jsonld");
        };
        assert_eq!(j.product_token, "Tideline");
        assert!(j.user_agent.starts_with("Tideline/"), "{}", j.user_agent);
        assert_eq!(j.pages[0].url, "https://acme.example/reviews");
        assert_eq!(j.pages[0].location, None);
        for bad in [
            format!("{ok}enabled = true\n"),
            ok.replace("url = ", "href = "),
        ] {
            let err = Config::from_toml(&bad, "t.toml", &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("unknown field"), "{err}");
        }
    }

    /// The commented example in config/example.toml, uncommented, is valid.
    #[test]
    fn the_commented_jsonld_example_parses() {
        let text = include_str!("../../config/example.toml");
        let start = text
            .find("# [[connector]]\n# kind = \"jsonld\"")
            .expect("the jsonld example");
        let end = start + text[start..].find("\n\n").expect("the end of the example");
        let mut toml =
            String::from("[[location]]\nid = \"berlin-mitte\"\n[[location]]\nid = \"hamburg\"\n");
        for line in text[start..end].lines() {
            let line = line.strip_prefix('#').unwrap_or(line);
            let line = line.strip_prefix(' ').unwrap_or(line);
            toml.push_str(line);
            toml.push('\n');
        }
        let c = Config::from_toml(&toml, "example.toml", &Overrides::default())
            .unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let crate::config::ConnectorKind::Jsonld(j) = &c.connectors[0].kind else {
            panic!("not jsonld");
        };
        assert_eq!(j.pages.len(), 2);
        assert!(j.user_agent.contains("(+https://"), "{}", j.user_agent);
    }
}
