//! Social mentions as the vendors' APIs return them, one function per vendor that fills
//! a [`SourceRecord`] from one item. The API connectors and the `*-json` presets share
//! them, so a quarantined mention replays with its preset, and a saved API page can be
//! imported as it is.
//!
//! Every mention is keyed by the vendor's stable id, its author by the platform id that
//! survives renames (`bluesky:<did>`, `mastodon:<actor URI>`, `reddit:t2_<id>`,
//! `x:<author_id>`); a display name is only a name. The `_tideline` object the connectors
//! add to an item names the query that found it and that query's location.

use super::mapping::json_text;
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use serde_json::Value;

fn text_at<'a>(v: &'a Value, path: &[&str]) -> Option<String> {
    let mut cur: &'a Value = v;
    for p in path {
        cur = cur.get(p)?;
    }
    json_text(cur).filter(|s| !s.trim().is_empty())
}

/// The location the connector's query gave the item, if any.
fn provenance(v: &Value, rec: &mut SourceRecord) {
    if let Some(l) = text_at(v, &["_tideline", "location"]) {
        rec.set(Field::Location, "_tideline.location", l);
    }
}

/// A Bluesky `postView` (`app.bsky.feed.searchPosts` → `posts[]`).
pub fn bluesky_post(v: &Value, rec: &mut SourceRecord) {
    rec.set(Field::Kind, "preset", "mention");
    let uri = text_at(v, &["uri"]);
    if let Some(u) = &uri {
        rec.set(Field::ExternalId, "uri", u.clone());
    }
    let created = text_at(v, &["record", "createdAt"]);
    let indexed = text_at(v, &["indexedAt"]);
    // createdAt is set by the posting client and may be wrong or in the future; the
    // earlier of it and the AppView's indexedAt is when the post can have been made.
    let occurred = match (&created, &indexed) {
        (Some(c), Some(i)) => match (
            chrono::DateTime::parse_from_rfc3339(c),
            chrono::DateTime::parse_from_rfc3339(i),
        ) {
            (Ok(cd), Ok(id)) if id < cd => Some(("indexedAt", i.clone())),
            (Ok(_), _) => Some(("record.createdAt", c.clone())),
            (Err(_), _) => Some(("indexedAt", i.clone())),
        },
        (Some(c), None) => Some(("record.createdAt", c.clone())),
        (None, Some(i)) => Some(("indexedAt", i.clone())),
        (None, None) => None,
    };
    if let Some((label, t)) = occurred {
        rec.set(Field::OccurredAt, label, t);
    }
    if let Some(t) = text_at(v, &["record", "text"]) {
        rec.set(Field::Text, "record.text", t);
    }
    if let Some(l) = v
        .pointer("/record/langs/0")
        .and_then(json_text)
        .filter(|l| !l.is_empty())
    {
        rec.set(Field::Language, "record.langs", l);
    }
    let did = text_at(v, &["author", "did"]);
    if let Some(d) = &did {
        rec.platform_ids.push(format!("bluesky:{d}"));
    }
    if let Some(n) =
        text_at(v, &["author", "displayName"]).or_else(|| text_at(v, &["author", "handle"]))
    {
        rec.set(Field::Name, "author.displayName", n);
    }
    // at://<did>/app.bsky.feed.post/<rkey> → the web link (by DID: handles change).
    if let Some(u) = &uri
        && let Some(rest) = u.strip_prefix("at://")
    {
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() == 3 && parts[1] == "app.bsky.feed.post" {
            let owner = did.as_deref().unwrap_or(parts[0]);
            rec.set(
                Field::Url,
                "uri",
                format!("https://bsky.app/profile/{owner}/post/{}", parts[2]),
            );
        }
    }
    provenance(v, rec);
}

/// A Mastodon `Status` (a timeline array item or `/api/v2/search` → `statuses[]`). A
/// boost is read as the status it boosts, keyed by that status's ActivityPub `uri`, so
/// the same post seen boosted, on another instance or by two queries is one mention.
pub fn mastodon_status(v: &Value, rec: &mut SourceRecord) {
    let s = match v.get("reblog") {
        Some(inner @ Value::Object(_)) => inner,
        _ => v,
    };
    rec.set(Field::Kind, "preset", "mention");
    if let Some(id) = text_at(s, &["uri"]).or_else(|| text_at(s, &["url"])) {
        rec.set(Field::ExternalId, "uri", id);
    } else if let Some(id) = text_at(s, &["id"]) {
        rec.set(Field::ExternalId, "id", id);
    }
    if let Some(c) = text_at(s, &["created_at"]) {
        rec.set(Field::OccurredAt, "created_at", c);
    }
    if let Some(e) = text_at(s, &["edited_at"]) {
        rec.set(Field::UpdatedAt, "edited_at", e);
    }
    let body = text_at(s, &["content"]).map(|h| html_to_text(&h));
    let warning = text_at(s, &["spoiler_text"]);
    let text = match (warning, body) {
        (Some(w), Some(b)) if !b.is_empty() => Some(format!("{w}\n\n{b}")),
        (Some(w), _) => Some(w),
        (None, b) => b,
    };
    if let Some(t) = text {
        rec.set(Field::Text, "content", t);
    }
    if let Some(l) = text_at(s, &["language"]) {
        rec.set(Field::Language, "language", l);
    }
    if let Some(u) = text_at(s, &["url"]).or_else(|| text_at(s, &["uri"])) {
        rec.set(Field::Url, "url", u);
    }
    // The actor URI (`account.uri`, Mastodon 4.2+) is the ActivityPub id; older
    // instances give only the profile URL, which is as stable for one instance.
    if let Some(actor) = text_at(s, &["account", "uri"]).or_else(|| text_at(s, &["account", "url"]))
    {
        rec.platform_ids.push(format!("mastodon:{actor}"));
    }
    if let Some(n) =
        text_at(s, &["account", "display_name"]).or_else(|| text_at(s, &["account", "acct"]))
    {
        rec.set(Field::Name, "account.display_name", n);
    }
    provenance(v, rec);
}

/// A Reddit listing child (`{"kind": "t3"|"t1", "data": {...}}`) or its bare `data`. A
/// post (`t3`) is its title and self text, a comment (`t1`) its body. The author is
/// `reddit:t2_<id>` from `author_fullname`; when Reddit omits that (some removed or
/// suspended accounts) but still names the author, `reddit:u/<name>`.
pub fn reddit_thing(v: &Value, rec: &mut SourceRecord) {
    let (kind, d) = match (v.get("kind").and_then(Value::as_str), v.get("data")) {
        (Some(k), Some(d @ Value::Object(_))) => (Some(k.to_string()), d),
        _ => (None, v),
    };
    rec.set(Field::Kind, "preset", "mention");
    let name = text_at(d, &["name"]).or_else(|| {
        let id = text_at(d, &["id"])?;
        let prefix = kind
            .clone()
            .unwrap_or_else(|| if d.get("body").is_some() { "t1" } else { "t3" }.to_string());
        Some(format!("{prefix}_{id}"))
    });
    let is_comment = name.as_deref().is_some_and(|n| n.starts_with("t1_"));
    if let Some(n) = name {
        rec.set(Field::ExternalId, "name", n);
    }
    if let Some(t) = d.get("created_utc").and_then(unix_float) {
        rec.set(Field::OccurredAt, "created_utc", t);
    }
    // `edited` is false or the unix time of the last edit.
    if let Some(t) = d
        .get("edited")
        .filter(|e| e.is_number())
        .and_then(unix_float)
    {
        rec.set(Field::UpdatedAt, "edited", t);
    }
    if is_comment {
        if let Some(b) = text_at(d, &["body"]) {
            rec.set(Field::Text, "body", b);
        }
    } else {
        if let Some(t) = text_at(d, &["title"]) {
            rec.set(Field::Title, "title", t);
        }
        if let Some(b) = text_at(d, &["selftext"]) {
            rec.set(Field::Text, "selftext", b);
        }
    }
    if let Some(p) = text_at(d, &["permalink"]) {
        let url = if p.starts_with("http") {
            p
        } else {
            format!("https://www.reddit.com{p}")
        };
        rec.set(Field::Url, "permalink", url);
    }
    let author = text_at(d, &["author"]).filter(|a| a != "[deleted]" && a != "[removed]");
    match (text_at(d, &["author_fullname"]), &author) {
        (Some(f), _) => rec.platform_ids.push(format!("reddit:{f}")),
        (None, Some(a)) => rec.platform_ids.push(format!("reddit:u/{a}")),
        (None, None) => {}
    }
    if let Some(a) = author {
        rec.set(Field::Name, "author", a);
    }
    provenance(v, rec);
}

/// Unix seconds (Reddit sends floats such as `1717171717.0`) as RFC 3339.
fn unix_float(v: &Value) -> Option<String> {
    let secs = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !secs.is_finite() {
        return None;
    }
    let ms = (secs * 1000.0).round() as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// An X post: `{"tweet": {...}, "author": {...}}` as the connector keeps it (the
/// response's `includes.users` entry joined to it), or a bare post object.
pub fn x_post(v: &Value, rec: &mut SourceRecord) {
    let (t, author) = match v.get("tweet") {
        Some(t @ Value::Object(_)) => (t, v.get("author")),
        _ => (v, None),
    };
    rec.set(Field::Kind, "preset", "mention");
    let id = text_at(t, &["id"]);
    if let Some(i) = &id {
        rec.set(Field::ExternalId, "id", i.clone());
    }
    if let Some(c) = text_at(t, &["created_at"]) {
        rec.set(Field::OccurredAt, "created_at", c);
    }
    if let Some(x) = text_at(t, &["text"]) {
        rec.set(Field::Text, "text", x);
    }
    // `und`: X could not tell; `zxx`, `qme` and friends: no linguistic content.
    if let Some(l) = text_at(t, &["lang"]).filter(|l| l.len() == 2) {
        rec.set(Field::Language, "lang", l);
    }
    if let Some(a) = text_at(t, &["author_id"]) {
        rec.platform_ids.push(format!("x:{a}"));
    }
    let username = author.and_then(|a| text_at(a, &["username"]));
    if let Some(n) = author
        .and_then(|a| text_at(a, &["name"]))
        .or_else(|| username.clone())
    {
        rec.set(Field::Name, "author.name", n);
    }
    if let Some(i) = &id {
        let url = match &username {
            Some(u) => format!("https://x.com/{u}/status/{i}"),
            None => format!("https://x.com/i/web/status/{i}"),
        };
        rec.set(Field::Url, "id", url);
    }
    provenance(v, rec);
}

/// The posts of an X search response, each joined to its author from
/// `includes.users` as `{"tweet": ..., "author": ...}` (the bare post when the author is
/// not included).
pub fn x_page_items(page: &Value) -> Vec<Value> {
    let users: Vec<&Value> = page
        .pointer("/includes/users")
        .and_then(Value::as_array)
        .map(|u| u.iter().collect())
        .unwrap_or_default();
    page.get("data")
        .and_then(Value::as_array)
        .map(|data| {
            data.iter()
                .map(|t| {
                    let author = t
                        .get("author_id")
                        .and_then(|a| users.iter().find(|u| u.get("id") == Some(a)).copied());
                    match author {
                        Some(u) if t.is_object() => {
                            serde_json::json!({"tweet": t, "author": u})
                        }
                        _ => t.clone(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The items of a saved API page, for the presets: `None` when `v` is one item.
pub fn page_items(preset: super::Preset, v: &Value) -> Option<Vec<Value>> {
    use super::Preset;
    let array = |key: &str| v.get(key).and_then(Value::as_array).cloned();
    match preset {
        Preset::BlueskyJson => array("posts"),
        Preset::MastodonJson => array("statuses"),
        Preset::RedditJson => (v.get("kind").and_then(Value::as_str) == Some("Listing"))
            .then(|| {
                v.pointer("/data/children")
                    .and_then(Value::as_array)
                    .cloned()
            })
            .flatten(),
        Preset::XJson => (v.get("data").is_some_and(Value::is_array) || v.get("meta").is_some())
            .then(|| x_page_items(v)),
        _ => None,
    }
}

/// Mastodon's sanitised status HTML (`p`, `br`, `a`, `span`) as plain text: paragraphs
/// become blank lines, `<br>` a line break, links their text (the full URL: Mastodon
/// hides parts of it in `invisible` spans), and no markup survives. Feeds share it: script
/// and style bodies are dropped.
pub fn html_to_text(html: &str) -> String {
    let doc = scraper::Html::parse_fragment(html);
    let mut out = String::new();
    for node in doc.tree.root().descendants() {
        match node.value() {
            // Script and style bodies (feeds carry arbitrary HTML) are not text.
            scraper::Node::Text(t)
                if !node.ancestors().any(|a| {
                    a.value()
                        .as_element()
                        .is_some_and(|e| matches!(e.name(), "script" | "style"))
                }) =>
            {
                out.push_str(t)
            }
            scraper::Node::Element(e) => match e.name() {
                "br" => out.push('\n'),
                "p" | "div" | "blockquote" | "li" | "pre" if !out.trim().is_empty() => {
                    while out.ends_with(' ') {
                        out.pop();
                    }
                    if !out.ends_with("\n\n") {
                        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mastodon_html_becomes_text_with_its_line_breaks() {
        let html = r#"<p>Cold coffee at <a href="https://m.example/tags/acme" class="mention hashtag" rel="tag">#<span>acme</span></a> again<br>never again &amp; &lt;b&gt;</p><p>See <a href="https://example.com/a/long/path"><span class="invisible">https://</span><span class="ellipsis">example.com/a/lo</span><span class="invisible">ng/path</span></a></p>"#;
        assert_eq!(
            html_to_text(html),
            "Cold coffee at #acme again\nnever again & <b>\n\nSee https://example.com/a/long/path"
        );
        assert_eq!(html_to_text("plain"), "plain");
        assert_eq!(html_to_text(""), "");
    }

    #[test]
    fn reddit_authors_prefer_the_fullname() {
        let mut rec = SourceRecord::default();
        reddit_thing(
            &json!({"kind": "t3", "data": {"id": "a1", "title": "Acme", "author": "ana", "author_fullname": "t2_x", "created_utc": 1717171717.5}}),
            &mut rec,
        );
        assert_eq!(rec.platform_ids, ["reddit:t2_x"]);
        assert_eq!(rec.fields[&Field::ExternalId], "t3_a1");
        assert_eq!(rec.fields[&Field::OccurredAt], "2024-05-31T16:08:37.500Z");
        let mut rec = SourceRecord::default();
        reddit_thing(
            &json!({"kind": "t1", "data": {"name": "t1_c", "body": "meh", "author": "bob", "created_utc": 1}}),
            &mut rec,
        );
        assert_eq!(rec.platform_ids, ["reddit:u/bob"]);
        assert_eq!(rec.fields[&Field::Text], "meh");
        let mut rec = SourceRecord::default();
        reddit_thing(&json!({"name": "t3_d", "author": "[deleted]"}), &mut rec);
        assert!(rec.platform_ids.is_empty() && !rec.fields.contains_key(&Field::Name));
    }

    #[test]
    fn bluesky_posts_link_by_did_and_distrust_future_dates() {
        let mut rec = SourceRecord::default();
        bluesky_post(
            &json!({"uri": "at://did:plc:abc/app.bsky.feed.post/3k", "author": {"did": "did:plc:abc", "handle": "ana.bsky.social"},
                    "record": {"text": "hi", "createdAt": "2030-01-01T00:00:00Z", "langs": ["en"]}, "indexedAt": "2025-02-01T09:00:01.234Z"}),
            &mut rec,
        );
        assert_eq!(rec.fields[&Field::OccurredAt], "2025-02-01T09:00:01.234Z");
        assert_eq!(
            rec.fields[&Field::Url],
            "https://bsky.app/profile/did:plc:abc/post/3k"
        );
        assert_eq!(rec.fields[&Field::Name], "ana.bsky.social");
    }
}
