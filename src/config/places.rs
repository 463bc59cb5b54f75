//! `[places]` and each location's `[[location.competitor]]`: the competitor places a
//! report compares a location with, and how their public figures are fetched (Google
//! Places API (New), Place Details) when a report is built.
//!
//! Only the place id and a display name live here: the Places terms allow keeping the
//! place id, not the rating or the review count, which the report fetches each time and
//! never stores.

use super::daemon::{base_url, http_settings, secret};
use super::{HttpSettings, Secret};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;

pub const DEFAULT_PLACES_BASE_URL: &str = "https://places.googleapis.com";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlaces {
    api_key_file: Option<PathBuf>,
    api_key_env: Option<String>,
    base_url: Option<String>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_wait_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompetitor {
    place_id: String,
    name: String,
}

/// How competitor figures are fetched.
#[derive(Debug, Clone)]
pub struct PlacesSettings {
    pub api_key: Secret,
    /// Without a trailing slash; `https://places.googleapis.com` unless set (tests point
    /// it at a fake server).
    pub base_url: String,
    pub http: HttpSettings,
}

/// A competitor of one location: its Google place id and the name the report shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Competitor {
    pub place_id: String,
    pub name: String,
}

pub(super) fn places(raw: Option<RawPlaces>, problems: &mut Vec<String>) -> Option<PlacesSettings> {
    let raw = raw?;
    let at = "places";
    let base_url = base_url(
        at,
        raw.base_url.as_deref().unwrap_or(DEFAULT_PLACES_BASE_URL),
        DEFAULT_PLACES_BASE_URL,
        problems,
    );
    // Reports are built while someone waits: shorter defaults than a sync's.
    let http = http_settings(
        at,
        Some(raw.timeout_secs.unwrap_or(10)),
        Some(raw.max_retries.unwrap_or(2)),
        Some(raw.max_wait_secs.unwrap_or(30)),
        problems,
    );
    let key = secret(
        "places.api_key",
        raw.api_key_file.as_ref(),
        raw.api_key_env.as_ref(),
        problems,
    );
    if raw.api_key_file.is_none() && raw.api_key_env.is_none() {
        problems.push(
            "places: no API key; fix: api_key_file (a file of mode 600 holding a Places API key) or api_key_env"
                .into(),
        );
    }
    Some(PlacesSettings {
        api_key: key?,
        base_url,
        http,
    })
}

/// A place id as Google writes them (letters, digits, `-` and `_`), so it can go into a
/// URL path as it is.
fn is_place_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(super) fn competitors(
    key: &str,
    raw: Vec<RawCompetitor>,
    problems: &mut Vec<String>,
) -> Vec<Competitor> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        let at = format!("{key}.competitor[{i}]");
        let place_id = c.place_id.trim().to_string();
        if !is_place_id(&place_id) {
            problems.push(format!(
                "{at}.place_id: `{place_id}` is not a Google place id; fix: the id from Google's Place ID finder, e.g. \"ChIJN1t_tDeuEmsRUsoyG83frY4\""
            ));
            continue;
        }
        if !seen.insert(place_id.clone()) {
            problems.push(format!(
                "{at}.place_id: `{place_id}` is listed twice; fix: keep one"
            ));
            continue;
        }
        let name = c.name.trim().to_string();
        if name.is_empty() {
            problems.push(format!(
                "{at}.name: empty; fix: the name the report shows, e.g. \"Café Nord\""
            ));
        }
        out.push(Competitor { place_id, name });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    /// The example's competitor and its commented `[places]` block, uncommented, are valid.
    #[test]
    fn example_competitors_and_places_parse() {
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("TIDELINE_TEST_PLACES_KEY", "places-key") };
        let example = include_str!("../../config/example.toml");
        let start = example.find("# [places]").expect("places example");
        let block: String = example[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches("# "))
            .filter(|l| !l.starts_with("api_key_file"))
            .collect::<Vec<_>>()
            .join("\n");
        let text = format!(
            "[[location]]\nid = \"a\"\n[[location.competitor]]\nplace_id = \"ChIJN1t_tDeuEmsRUsoyG83frY4\"\nname = \"Café Nord\"\n{block}\napi_key_env = \"TIDELINE_TEST_PLACES_KEY\"\n"
        );
        let c = Config::from_toml(&text, "t.toml", &Overrides::default())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let p = c.places.expect("[places]");
        assert_eq!(p.base_url, "https://places.googleapis.com");
        assert_eq!((p.http.max_retries, p.http.timeout.as_secs()), (2, 10));
        assert!(!format!("{p:?}").contains("places-key"));
        assert_eq!(c.competitors["a"][0].name, "Café Nord");
        let example_config = Config::from_toml(example, "example.toml", &Overrides::default());
        if let Ok(c) = example_config {
            assert_eq!(c.competitors["berlin-mitte"].len(), 1);
            assert!(c.places.is_none());
        }
    }

    #[test]
    fn bad_competitors_are_reported_with_their_fix() {
        let text = "[[location]]\nid = \"a\"\n\
            [[location.competitor]]\nplace_id = \"../admin\"\nname = \"X\"\n\
            [[location.competitor]]\nplace_id = \"ok1\"\nname = \"\"\n\
            [[location.competitor]]\nplace_id = \"ok1\"\nname = \"Y\"\n\
            [places]\nbase_url = \"ftp://x\"\n";
        let e = Config::from_toml(text, "t.toml", &Overrides::default())
            .unwrap_err()
            .to_string();
        for needle in [
            "location[0] (`a`).competitor[0].place_id",
            "competitor[1].name: empty",
            "competitor[2].place_id: `ok1` is listed twice",
            "places.base_url",
            "places: no API key",
        ] {
            assert!(e.contains(needle), "missing {needle}:\n{e}");
        }
    }
}
