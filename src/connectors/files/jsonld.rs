//! schema.org `Review`s as JSON-LD carries them (`<script type="application/ld+json">`
//! on a business's own pages): finding them in a parsed block, and one function that
//! fills a [`SourceRecord`] from one review. The `jsonld` connector and the `jsonld`
//! preset (quarantine replay, saved records) share it.
//!
//! A block may be one object, an array, a `@graph`, or an entity (`Product`,
//! `LocalBusiness`, `Organization`, ...) whose `review` holds one review or an array;
//! `@type` may be a string or an array, with or without a `schema:` prefix. Every object
//! typed `Review` (or `UserReview`, `CriticReview`, `EmployerReview`) anywhere in the block
//! is a review, in document order. `AggregateRating`s are not interactions: the connector
//! logs them at debug level and each review keeps its entity's `aggregateRating` in its
//! raw payload (`_tideline.aggregateRating`).
//!
//! The stored item is the review object as found, plus `_tideline`: the page, the
//! 1-based script and review index, the page's location and the reviewed entity's
//! `@type`, `@id`, `name` and `aggregateRating`. Unknown fields stay as they are.

use super::freshdesk::ItemProblem;
use super::mapping::json_text;
use super::social::html_to_text;
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const REVIEW_TYPES: [&str; 4] = ["Review", "UserReview", "CriticReview", "EmployerReview"];
/// Deeper nesting than this is not a review page (and would only cost stack).
const MAX_DEPTH: usize = 32;

/// A type name without `schema:` or `https://schema.org/` prefixes.
fn strip(t: &str) -> &str {
    let t = t.rsplit('/').next().unwrap_or(t);
    t.rsplit(':').next().unwrap_or(t)
}

/// The `@type`s of a node.
fn types(v: &Value) -> Vec<&str> {
    match v.get("@type") {
        Some(Value::String(s)) => vec![strip(s)],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(strip).collect(),
        _ => Vec::new(),
    }
}

fn is_review(v: &Value) -> bool {
    types(v).iter().any(|t| REVIEW_TYPES.contains(t))
}

pub fn is_aggregate(v: &Value) -> bool {
    types(v).contains(&"AggregateRating")
}

/// A review found in a block, with the entity it sits in (if typed).
#[derive(Debug)]
pub struct Found<'a> {
    pub review: &'a Value,
    pub entity: Option<&'a Value>,
}

/// The reviews and aggregate ratings of one parsed JSON-LD block, in document order.
pub fn reviews_in(block: &Value) -> (Vec<Found<'_>>, Vec<&Value>) {
    let (mut reviews, mut aggregates) = (Vec::new(), Vec::new());
    walk(block, None, 0, &mut reviews, &mut aggregates);
    (reviews, aggregates)
}

fn walk<'a>(
    v: &'a Value,
    entity: Option<&'a Value>,
    depth: usize,
    reviews: &mut Vec<Found<'a>>,
    aggregates: &mut Vec<&'a Value>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Array(a) => {
            for x in a {
                walk(x, entity, depth + 1, reviews, aggregates);
            }
        }
        Value::Object(o) => {
            if is_review(v) {
                reviews.push(Found { review: v, entity });
                return;
            }
            if is_aggregate(v) {
                aggregates.push(v);
                return;
            }
            let here = if types(v).is_empty() { entity } else { Some(v) };
            for (k, x) in o {
                if k != "@context" {
                    walk(x, here, depth + 1, reviews, aggregates);
                }
            }
        }
        _ => {}
    }
}

/// The review as stored: the object plus `_tideline` provenance.
pub fn with_provenance(
    f: &Found<'_>,
    page: &str,
    script: usize,
    index: usize,
    location: Option<&str>,
) -> Value {
    let mut v = f.review.clone();
    if let Value::Object(o) = &mut v {
        let mut p = Map::new();
        p.insert("page".into(), Value::String(page.to_string()));
        p.insert("script".into(), Value::from(script as u64));
        p.insert("review".into(), Value::from(index as u64));
        if let Some(l) = location {
            p.insert("location".into(), Value::String(l.to_string()));
        }
        if let Some(e) = f.entity {
            let mut item = Map::new();
            for k in ["@type", "@id", "name"] {
                if let Some(x) = e.get(k) {
                    item.insert(k.into(), x.clone());
                }
            }
            p.insert("item".into(), Value::Object(item));
            if let Some(a) = e.get("aggregateRating") {
                p.insert("aggregateRating".into(), a.clone());
            }
        }
        o.insert("_tideline".into(), Value::Object(p));
    }
    v
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(json_text).filter(|s| !s.trim().is_empty())
}

/// A number written as JSON number or text (`"4.5"`, `"4,5"`).
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', ".").parse::<f64>().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

/// A rating on `worst..=best` as 1 to 5 stars.
pub fn stars(value: f64, best: f64, worst: f64) -> Option<f64> {
    if best <= worst || value < worst || value > best {
        return None;
    }
    let s = 1.0 + 4.0 * (value - worst) / (best - worst);
    Some((s * 100.0).round() / 100.0)
}

fn problem(field: &str, expected: &str, message: String) -> ItemProblem {
    ItemProblem {
        field: field.to_string(),
        expected: expected.to_string(),
        message,
    }
}

/// The first element of an array, or the value.
fn first(v: &Value) -> &Value {
    match v {
        Value::Array(a) => a.first().unwrap_or(&Value::Null),
        v => v,
    }
}

/// An email in `email` or `identifier` (text, `mailto:`, or a PropertyValue's `value`).
fn email_of(author: &Value) -> Option<String> {
    let candidates = [
        author.get("email"),
        author.get("identifier"),
        author.get("identifier").and_then(|i| first(i).get("value")),
        author.get("identifier").map(first),
    ];
    candidates.into_iter().flatten().find_map(|c| {
        let t = json_text(c)?;
        let t = t.trim();
        let t = t.strip_prefix("mailto:").unwrap_or(t);
        let (local, domain) = t.split_once('@')?;
        (!local.is_empty() && domain.contains('.') && !t.contains(char::is_whitespace))
            .then(|| t.to_string())
    })
}

/// Fills `rec` from one review as the connector stores it. A review without a date, or
/// with neither a body nor a rating, or with a rating off its own scale, is a problem
/// naming the field.
pub fn review_record(v: &Value, rec: &mut SourceRecord) -> Result<(), ItemProblem> {
    rec.set(Field::Kind, "preset", "review");
    let page = text(v.pointer("/_tideline/page"));
    if let Some(l) = text(v.pointer("/_tideline/location")) {
        rec.set(Field::Location, "_tideline.location", l);
    }
    let date = text(v.get("datePublished")).ok_or_else(|| {
        problem(
            "datePublished",
            "an ISO 8601 date or date and time",
            "the review has no datePublished".into(),
        )
    })?;
    rec.set(Field::OccurredAt, "datePublished", date.clone());
    if let Some(m) = text(v.get("dateModified")) {
        rec.set(Field::UpdatedAt, "dateModified", m);
    }
    let body = text(v.get("reviewBody"))
        .map(|b| ("reviewBody", b))
        .or_else(|| text(v.get("description")).map(|b| ("description", b)))
        .map(|(k, b)| (k, html_to_text(&b)))
        .filter(|(_, b)| !b.is_empty());
    if let Some((k, b)) = &body {
        rec.set(Field::Text, k, b.clone());
    }
    let rating = match v.get("reviewRating") {
        None | Some(Value::Null) => None,
        Some(r @ (Value::Number(_) | Value::String(_))) => Some((r, None, None)),
        Some(r) => {
            let r = first(r);
            let value = r.get("ratingValue").ok_or_else(|| {
                problem(
                    "reviewRating.ratingValue",
                    "a number on the rating's scale",
                    "the reviewRating has no ratingValue".into(),
                )
            })?;
            Some((value, r.get("bestRating"), r.get("worstRating")))
        }
    };
    if let Some((value, best, worst)) = rating {
        let scale = |x: Option<&Value>, key: &str, default: f64| -> Result<f64, ItemProblem> {
            match x {
                None | Some(Value::Null) => Ok(default),
                Some(x) => number(x).ok_or_else(|| {
                    problem(
                        &format!("reviewRating.{key}"),
                        "a number",
                        format!(
                            "`{}` is not a number",
                            x.to_string().chars().take(80).collect::<String>()
                        ),
                    )
                }),
            }
        };
        let best = scale(best, "bestRating", 5.0)?;
        let worst = scale(worst, "worstRating", 1.0)?;
        let shown = value.to_string().chars().take(80).collect::<String>();
        let s = number(value)
            .and_then(|n| stars(n, best, worst))
            .ok_or_else(|| {
                problem(
                    "reviewRating.ratingValue",
                    &format!("a number from {worst} (worstRating) to {best} (bestRating)"),
                    format!("`{shown}` is not a rating on that scale"),
                )
            })?;
        rec.set(Field::Stars, "reviewRating.ratingValue", s.to_string());
    } else if body.is_none() {
        return Err(problem(
            "reviewBody",
            "a reviewBody (or description), a reviewRating, or both",
            "the review has neither text nor a rating".into(),
        ));
    }
    let author = v.get("author").map(first);
    let name = author.and_then(|a| match a {
        Value::String(s) => Some(s.clone()),
        a => text(a.get("name")),
    });
    if let Some(n) = name.as_deref().map(html_to_text).filter(|n| !n.is_empty()) {
        rec.set(Field::Name, "author.name", n);
    }
    if let Some(e) = author.and_then(email_of) {
        rec.set(Field::Email, "author.email", e);
    }
    if let Some(l) = text(v.get("inLanguage")) {
        rec.set(Field::Language, "inLanguage", l);
    }
    let resolve = |s: String| -> String {
        match page.as_deref().and_then(|p| reqwest::Url::parse(p).ok()) {
            Some(base) => base.join(&s).map(|u| u.to_string()).unwrap_or(s),
            None => s,
        }
    };
    let url = text(v.get("url")).map(resolve);
    let id = text(v.get("@id"))
        .map(|s| ("@id", resolve(s)))
        .or_else(|| url.clone().map(|u| ("url", u)));
    match id {
        Some((k, id)) => rec.set(Field::ExternalId, k, id),
        None => {
            // No identifier of its own: what makes it this review on this page.
            let mut h = Sha256::new();
            for part in [
                page.as_deref().unwrap_or(""),
                name.as_deref().unwrap_or(""),
                date.as_str(),
                body.as_ref().map(|(_, b)| b.as_str()).unwrap_or(""),
            ] {
                h.update(part.as_bytes());
                h.update([0u8]);
            }
            let digest = hex::encode(h.finalize());
            rec.set(
                Field::ExternalId,
                "hash",
                format!("jsonld:{}", &digest[..32]),
            );
        }
    }
    if let Some(u) = url.or(page) {
        rec.set(Field::Url, "url", u);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: &Value) -> Result<SourceRecord, ItemProblem> {
        let mut rec = SourceRecord::default();
        review_record(v, &mut rec).map(|()| rec)
    }

    #[test]
    fn reviews_are_found_in_every_shape() {
        let block = json!({"@context": "https://schema.org", "@graph": [
            {"@type": ["Product", "Thing"], "name": "Beans", "aggregateRating": {"@type": "AggregateRating", "ratingValue": 4.2, "reviewCount": 7},
             "review": [{"@type": "Review", "reviewBody": "a"}, {"@type": "schema:Review", "reviewBody": "b"}]},
            {"@type": "LocalBusiness", "review": {"@type": "UserReview", "reviewBody": "c"}},
            {"@type": "https://schema.org/Review", "reviewBody": "d"},
            {"@type": "AggregateRating", "ratingValue": 3}
        ]});
        let (found, aggregates) = reviews_in(&block);
        let bodies: Vec<&str> = found
            .iter()
            .map(|f| f.review["reviewBody"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["a", "b", "c", "d"]);
        assert_eq!(found[0].entity.unwrap()["name"], "Beans");
        assert_eq!(found[2].entity.unwrap()["@type"], "LocalBusiness");
        assert!(found[3].entity.is_none());
        assert_eq!(aggregates.len(), 2);
        let kept = with_provenance(&found[1], "https://a.example/p", 2, 2, Some("berlin"));
        assert_eq!(kept["_tideline"]["aggregateRating"]["reviewCount"], 7);
        assert_eq!(kept["_tideline"]["item"]["name"], "Beans");
        assert_eq!(kept["_tideline"]["script"], 2);
        // An array block, and nesting beyond reason is cut off, not a crash.
        let arr = json!([{"@type": "Review"}, [{"@type": "Review"}]]);
        assert_eq!(reviews_in(&arr).0.len(), 2);
        let mut deep = json!({"@type": "Review"});
        for _ in 0..100 {
            deep = json!({"x": deep});
        }
        assert!(reviews_in(&deep).0.is_empty());
    }

    /// A quarantined review replays with the `jsonld` preset into the same record.
    #[test]
    fn the_preset_replays_a_kept_review() {
        use super::super::{Item, Preset, record_from_raw};
        let raw = json!({"@type": "Review", "@id": "https://a.example/#r9", "datePublished": "2025-05-01",
            "reviewBody": "Fine", "reviewRating": {"ratingValue": 3}, "x-extra": [1, 2],
            "_tideline": {"page": "https://a.example/", "script": 1, "review": 1, "location": "hamburg"}})
        .to_string();
        let Item::Record(r) = record_from_raw(&raw, "q", Some(1), Preset::Jsonld, None) else {
            panic!("not a record");
        };
        assert_eq!(r.fields[&Field::ExternalId], "https://a.example/#r9");
        assert_eq!(r.fields[&Field::Stars], "3");
        assert_eq!(r.fields[&Field::Location], "hamburg");
        assert_eq!(r.raw, raw);
        let bad = json!({"@type": "Review", "reviewBody": "x"}).to_string();
        let Item::Reject(e) = record_from_raw(&bad, "q", Some(1), Preset::Jsonld, None) else {
            panic!("not a reject");
        };
        assert_eq!(e.field.as_deref(), Some("datePublished"));
        assert_eq!(Preset::parse("jsonld"), Some(Preset::Jsonld));
    }

    #[test]
    fn ratings_are_normalized_to_stars() {
        assert_eq!(stars(5.0, 5.0, 1.0), Some(5.0));
        assert_eq!(stars(1.0, 5.0, 1.0), Some(1.0));
        assert_eq!(stars(8.0, 10.0, 0.0), Some(4.2));
        assert_eq!(stars(100.0, 100.0, 0.0), Some(5.0));
        assert_eq!(stars(0.0, 10.0, 0.0), Some(1.0));
        assert_eq!(stars(6.0, 5.0, 1.0), None);
        assert_eq!(stars(3.0, 1.0, 5.0), None);
        let r = record(&json!({"@type": "Review", "datePublished": "2025-01-02",
            "reviewRating": {"ratingValue": "4,5", "bestRating": "10", "worstRating": 0}}))
        .unwrap();
        assert_eq!(r.fields[&Field::Stars], "2.8");
        let r =
            record(&json!({"@type": "Review", "datePublished": "2025-01-02", "reviewRating": 4}))
                .unwrap();
        assert_eq!(r.fields[&Field::Stars], "4");
        let e = record(&json!({"@type": "Review", "datePublished": "2025-01-02",
            "reviewRating": {"ratingValue": 7}}))
        .unwrap_err();
        assert_eq!(e.field, "reviewRating.ratingValue");
        let e = record(&json!({"@type": "Review", "datePublished": "2025-01-02",
            "reviewRating": {"ratingValue": 3, "bestRating": "ten"}}))
        .unwrap_err();
        assert_eq!(e.field, "reviewRating.bestRating");
    }

    #[test]
    fn fields_ids_authors_and_rejects() {
        let v = json!({"@type": "Review", "@id": "#r1", "datePublished": "2025-03-01T10:00:00+01:00",
            "reviewBody": "Tasty &amp; warm <b>coffee</b> &#8211; caf&eacute;",
            "author": {"@type": "Person", "name": "Jos&eacute; P.", "identifier": "mailto:jose@example.com"},
            "inLanguage": "en", "_tideline": {"page": "https://acme.example/reviews?x=1", "location": "berlin"}});
        let r = record(&v).unwrap();
        assert_eq!(
            r.fields[&Field::ExternalId],
            "https://acme.example/reviews?x=1#r1"
        );
        assert_eq!(r.fields[&Field::Text], "Tasty & warm coffee \u{2013} café");
        assert_eq!(r.fields[&Field::Name], "José P.");
        assert_eq!(r.fields[&Field::Email], "jose@example.com");
        assert_eq!(r.fields[&Field::Location], "berlin");
        assert_eq!(r.fields[&Field::Url], "https://acme.example/reviews?x=1");
        assert!(!r.fields.contains_key(&Field::Stars));
        // A name only: no email; no id: a stable hash.
        let v = json!({"@type": "Review", "datePublished": "2025-03-01", "description": "ok",
            "author": "Ann", "_tideline": {"page": "https://acme.example/p"}});
        let a = record(&v).unwrap();
        let b = record(&v).unwrap();
        assert_eq!(a.fields[&Field::ExternalId], b.fields[&Field::ExternalId]);
        assert!(a.fields[&Field::ExternalId].starts_with("jsonld:"));
        assert!(!a.fields.contains_key(&Field::Email));
        assert_eq!(a.fields[&Field::Name], "Ann");
        let mut other = v.clone();
        other["description"] = json!("ok!");
        assert_ne!(
            record(&other).unwrap().fields[&Field::ExternalId],
            a.fields[&Field::ExternalId]
        );
        // An author whose identifier is not an email joins nobody.
        let v = json!({"@type": "Review", "datePublished": "2025-03-01", "reviewBody": "x",
            "author": [{"name": "B", "identifier": "user-42"}]});
        assert!(!record(&v).unwrap().fields.contains_key(&Field::Email));
        // Rejects name the field.
        let e = record(&json!({"@type": "Review", "reviewBody": "x"})).unwrap_err();
        assert_eq!(e.field, "datePublished");
        let e =
            record(&json!({"@type": "Review", "datePublished": "2025-03-01", "reviewBody": " "}))
                .unwrap_err();
        assert_eq!(e.field, "reviewBody");
    }
}
