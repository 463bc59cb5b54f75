//! Google reviews as the Business Profile keeps them: the v4 `Review` object (`name`,
//! `reviewer.displayName`, `starRating` as `ONE`..`FIVE`, `comment`, `createTime`,
//! `updateTime`, `reviewReply{comment, updateTime}`), read from a Google Takeout export
//! of "Google Business Profile" (the `google-takeout` preset).
//!
//! Takeout has no published schema; the layout is
//! `Takeout/Google Business Profile/account-<n>/location-<n>/reviews*.json`, each file
//! `{"reviews": [...]}` of about 20 reviews, beside an `additionalData.json` that may
//! name the store (`LISTING_NAME`). A location shared between accounts appears under
//! each account: reviews are deduplicated on the `locations/<l>/reviews/<r>` part of
//! their `name`, keeping the greatest `updateTime`. `Maps (your places)/Reviews.json`
//! (reviews the account holder *wrote*, a GeoJSON `FeatureCollection`) is refused with
//! an explanation.
//!
//! Comments on foreign-language reviews may carry Google's translation:
//! `"(Translated by Google) <translation>\n\n(Original)\n<original>"`, or the original
//! first and `"(Translated by Google)"` after it. The original is what is kept and
//! analysed (its language is the reviewer's).

use super::mapping::json_text;
use super::{ImportError, Item};
use crate::pipeline::Field;
use crate::pipeline::normalize::{RowError, SourceRecord};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The original text of a review comment, without Google's translation.
pub fn original_text(comment: &str) -> &str {
    const TRANSLATED: &str = "(Translated by Google)";
    const ORIGINAL: &str = "(Original)";
    if let Some(i) = comment.find(ORIGINAL) {
        let rest = comment[i + ORIGINAL.len()..].trim();
        if !rest.is_empty() {
            return rest;
        }
    }
    if let Some(i) = comment.find(TRANSLATED) {
        let before = comment[..i].trim();
        if !before.is_empty() {
            return before;
        }
    }
    comment.trim()
}

/// `ONE`..`FIVE` as 1-5 (numbers pass through); `STAR_RATING_UNSPECIFIED` is none.
pub fn stars(v: &str) -> Option<&'static str> {
    match v.trim().to_ascii_uppercase().as_str() {
        "ONE" | "1" => Some("1"),
        "TWO" | "2" => Some("2"),
        "THREE" | "3" => Some("3"),
        "FOUR" | "4" => Some("4"),
        "FIVE" | "5" => Some("5"),
        _ => None,
    }
}

/// The stable key of a review: `locations/<l>/reviews/<r>` of its `name` (the account
/// part differs when a location is shared between accounts).
pub fn review_key(name: &str) -> &str {
    name.find("locations/").map_or(name, |i| &name[i..])
}

/// Fills a record from one review. `listing` is the store's name from Takeout's
/// `additionalData.json`, a candidate for the location.
pub fn review_record(v: &Value, listing: Option<&str>, rec: &mut SourceRecord) {
    let s = |k: &str| v.get(k).and_then(json_text);
    rec.set(Field::Kind, "preset", "review");
    if let Some(name) = s("name") {
        rec.set(Field::ExternalId, "name", review_key(&name).to_string());
        // `locations/<l>`: the Business Profile location id may be a configured alias.
        if let Some(l) = review_key(&name).split('/').nth(1) {
            rec.location_candidates.push(l.to_string());
        }
    }
    if let Some(l) = listing.or_else(|| v.get("listing").and_then(Value::as_str)) {
        rec.location_candidates.push(l.to_string());
    }
    if let Some(r) = s("starRating") {
        match stars(&r) {
            Some(n) => rec.set(Field::Stars, "starRating", n),
            // Kept as read, so the normal validation names it.
            None if r != "STAR_RATING_UNSPECIFIED" => rec.set(Field::Stars, "starRating", r),
            None => {}
        }
    }
    if let Some(c) = s("comment") {
        rec.set(Field::Text, "comment", original_text(&c).to_string());
    }
    if let Some(c) = s("createTime") {
        rec.set(Field::OccurredAt, "createTime", c);
    }
    if let Some(u) = s("updateTime") {
        rec.set(Field::UpdatedAt, "updateTime", u);
    }
    if let Some(n) = v.pointer("/reviewer/displayName").and_then(json_text) {
        rec.set(Field::Name, "reviewer.displayName", n);
    }
    if let Some(reply) = v.get("reviewReply") {
        if let Some(c) = reply.get("comment").and_then(json_text) {
            rec.set(Field::ReplyText, "reviewReply.comment", c);
        }
        if let Some(u) = reply.get("updateTime").and_then(json_text) {
            rec.set(Field::ReplyAt, "reviewReply.updateTime", u);
        }
    }
}

/// The review files of a Takeout folder (or the one file given), in path order.
fn review_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("reviews") && n.ends_with(".json"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The store name of a location folder (`additionalData.json`, `LISTING_NAME`).
fn listing_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("additionalData.json")).ok()?;
    let v: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).ok()?;
    fn find(v: &Value) -> Option<String> {
        match v {
            Value::Object(o) => {
                if o.get("name").and_then(Value::as_str) == Some("LISTING_NAME")
                    && let Some(s) = o.get("value").and_then(json_text)
                {
                    return Some(s);
                }
                if let Some(s) = o.get("LISTING_NAME").and_then(json_text) {
                    return Some(s);
                }
                o.values().find_map(find)
            }
            Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    find(&v)
}

/// The files a Takeout import reads, for its content hash and size.
pub fn input_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    review_files(path)
}

/// Reads a Takeout export (a folder or one `reviews*.json`), calling `sink` for every
/// review (deduplicated) or reject.
pub fn read_takeout(
    path: &Path,
    sink: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> Result<(), ImportError> {
    let shown = path.display().to_string();
    let io = |p: &Path, source| ImportError::Io {
        path: p.display().to_string(),
        source,
    };
    let files = review_files(path).map_err(|e| io(path, e))?;
    if files.is_empty() {
        return Err(ImportError::Format {
            path: shown,
            message: "no reviews*.json in this folder; fix: point at the Takeout folder `Takeout/Google Business Profile` or one of its reviews.json files".into(),
        });
    }
    // key -> (updateTime, record), so a review shared between accounts is read once.
    let mut newest: BTreeMap<String, (String, SourceRecord)> = BTreeMap::new();
    let mut rejects = Vec::new();
    for file in &files {
        let origin = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| io(file, e))?;
        let v: Value = match serde_json::from_str(text.trim_start_matches('\u{feff}')) {
            Ok(v) => v,
            Err(e) => {
                rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(e.line() as u64),
                    field: None,
                    expected: "a Takeout reviews file (JSON `{\"reviews\": [...]}`)".into(),
                    message: format!("not JSON: {e}"),
                    raw: text.chars().take(2000).collect(),
                });
                continue;
            }
        };
        if v.get("type").and_then(Value::as_str) == Some("FeatureCollection") {
            return Err(ImportError::Format {
                path: origin,
                message: "this is `Maps (your places)/Reviews.json`: reviews this account wrote about other places, not reviews your business received; fix: import `Takeout/Google Business Profile` instead".into(),
            });
        }
        let Some(reviews) = v.get("reviews").and_then(Value::as_array) else {
            rejects.push(RowError {
                origin,
                line: None,
                field: Some("reviews".into()),
                expected: "a `reviews` array".into(),
                message: "the file has no `reviews` array".into(),
                raw: text.chars().take(2000).collect(),
            });
            continue;
        };
        let listing = file.parent().and_then(listing_name);
        for (i, r) in reviews.iter().enumerate() {
            let index = i as u64 + 1;
            let Some(name) = r.get("name").and_then(Value::as_str) else {
                rejects.push(RowError {
                    origin: origin.clone(),
                    line: Some(index),
                    field: Some("name".into()),
                    expected: "a review with its `name` (accounts/…/locations/…/reviews/…)".into(),
                    message: "the review has no name".into(),
                    raw: r.to_string(),
                });
                continue;
            };
            let mut raw = r.clone();
            if let (Some(l), Value::Object(o)) = (&listing, &mut raw) {
                o.insert("listing".into(), Value::from(l.as_str()));
            }
            let mut rec = SourceRecord {
                origin: origin.clone(),
                line: Some(index),
                raw: raw.to_string(),
                ..Default::default()
            };
            review_record(r, listing.as_deref(), &mut rec);
            let updated = r
                .get("updateTime")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let key = review_key(name).to_string();
            match newest.get(&key) {
                Some((u, _)) if *u >= updated => {}
                _ => {
                    newest.insert(key, (updated, rec));
                }
            }
        }
    }
    for e in rejects {
        if sink(Item::Reject(e)).is_break() {
            return Ok(());
        }
    }
    for (_, (_, rec)) in newest {
        if sink(Item::Record(rec)).is_break() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_is_kept_from_either_translation_form() {
        assert_eq!(
            original_text("(Translated by Google) Great food\n\n(Original)\nSuper Essen"),
            "Super Essen"
        );
        assert_eq!(
            original_text("Super Essen\n\n(Translated by Google)\nGreat food"),
            "Super Essen"
        );
        assert_eq!(original_text("  plain  "), "plain");
    }

    #[test]
    fn star_enums_and_keys() {
        assert_eq!(stars("FOUR"), Some("4"));
        assert_eq!(stars("STAR_RATING_UNSPECIFIED"), None);
        assert_eq!(
            review_key("accounts/1/locations/22/reviews/AbC"),
            "locations/22/reviews/AbC"
        );
    }
}
