//! RSS 2.0, RSS 1.0 (RDF) and Atom (RFC 4287) entries as mentions, shared by the `feed`
//! connector and the `feed-json` preset that replays its quarantined entries.
//!
//! Parsed with `quick-xml` rather than a feed model crate: a document is split into its
//! entries *as written* (byte slices of the response), so each raw record keeps every
//! element and namespace the publisher put there, and the same function reads an entry
//! the first time and again from the quarantine.
//!
//! A record is the JSON object `{"feed": <URL without query>, "format": "rss"|"rdf"|"atom",
//! "xml": "<item>...</item>", "namespaces": {...}, "_tideline": {"location": ...}}`.
//!
//! The dedupe key (the external id) is the Atom `id` / RSS `guid` / RDF `rdf:about`; an
//! id that is not an IRI (`guid isPermaLink="false"` numbers) is scoped by the feed URL.
//! Without one, the entry's link; without that, a digest of its title and date, scoped
//! by the feed URL.

use super::social::html_to_text;
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::QName;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The dialect of a feed document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rss,
    Rdf,
    Atom,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Rdf => "rdf",
            Format::Atom => "atom",
        }
    }

    fn parse(s: &str) -> Option<Format> {
        match s {
            "rss" => Some(Format::Rss),
            "rdf" => Some(Format::Rdf),
            "atom" => Some(Format::Atom),
            _ => None,
        }
    }
}

/// A feed document split into its entries, each the entry's XML as written.
#[derive(Debug)]
pub struct Document<'a> {
    pub format: Format,
    pub entries: Vec<&'a str>,
    /// The root's `xmlns` declarations (prefix, or "" for the default, -> URI).
    pub namespaces: BTreeMap<String, String>,
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

fn prefix(name: &str) -> Option<&str> {
    name.split_once(':').map(|(p, _)| p)
}

/// Whether a body is an HTML page (an error, login or consent page) rather than XML.
fn looks_like_html(body: &str) -> bool {
    let head: String = body
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(200)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<html")
}

/// Splits a response body into its entries. The error says what came back instead of a
/// feed (an HTML page, XML that is not well-formed, another document).
pub fn split(body: &str) -> Result<Document<'_>, String> {
    if looks_like_html(body) {
        return Err(
            "an HTML page came back where an RSS or Atom feed was expected (an error, login or consent page?)"
                .into(),
        );
    }
    let mut reader = Reader::from_str(body);
    let mut format: Option<Format> = None;
    let mut namespaces = BTreeMap::new();
    let mut stack: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| {
            format!(
                "not well-formed XML near byte {}: {e}",
                reader.error_position()
            )
        })?;
        let (start, empty) = match &ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = start.name().0.to_string();
        let Some(fmt) = format else {
            format = Some(match local(&name) {
                "rss" => Format::Rss,
                "RDF" => Format::Rdf,
                "feed" => Format::Atom,
                other => {
                    return Err(format!(
                        "the document is <{}>, not an RSS or Atom feed",
                        other.chars().take(40).collect::<String>()
                    ));
                }
            });
            for a in start.attributes().flatten() {
                let key = a.key.0;
                if key == "xmlns" || key.starts_with("xmlns:") {
                    let p = key.strip_prefix("xmlns").unwrap_or("");
                    namespaces.insert(p.trim_start_matches(':').to_string(), a.value.to_string());
                }
            }
            if !empty {
                stack.push(name);
            }
            continue;
        };
        let parent = stack.last().map(|p| local(p)).unwrap_or("");
        let is_entry = match fmt {
            Format::Rss => local(&name) == "item" && parent == "channel",
            Format::Rdf => local(&name) == "item" && stack.len() == 1,
            Format::Atom => local(&name) == "entry" && stack.len() == 1,
        };
        if is_entry {
            if !empty {
                reader.read_to_end(QName(&name)).map_err(|e| {
                    format!("entry {} is not well-formed XML: {e}", entries.len() + 1)
                })?;
            }
            let end = reader.buffer_position() as usize;
            entries.push(&body[before..end]);
        } else if !empty {
            stack.push(name);
        }
    }
    match format {
        Some(format) => Ok(Document {
            format,
            entries,
            namespaces,
        }),
        None if body.trim().is_empty() => Err("the response is empty".into()),
        None => Err("the response has no XML element".into()),
    }
}

/// One element of an entry: its name as written, attributes, text (its own and its
/// descendants', references resolved) and the byte range of its content in the entry.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    inner: (usize, usize),
    children: Vec<Node>,
}

impl Node {
    fn from_start(e: &BytesStart<'_>) -> Node {
        Node {
            name: e.name().0.to_string(),
            attrs: e
                .attributes()
                .flatten()
                .map(|a| {
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.into_owned())
                        .unwrap_or_else(|_| a.value.to_string());
                    (a.key.0.to_string(), v)
                })
                .collect(),
            ..Default::default()
        }
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name || local(k) == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| local(&c.name) == name)
    }

    fn trimmed(&self) -> Option<String> {
        let t = self.text.trim();
        (!t.is_empty()).then(|| t.to_string())
    }
}

/// A reference (`&amp;`, `&#233;`) as text; an HTML entity XML does not define stays as
/// written, for the HTML reader to resolve.
fn reference(r: &BytesRef<'_>) -> String {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return c.to_string();
    }
    match &**r {
        "amp" => "&".into(),
        "lt" => "<".into(),
        "gt" => ">".into(),
        "quot" => "\"".into(),
        "apos" => "'".into(),
        other => format!("&{other};"),
    }
}

fn tree(xml: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let ev = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        let after = reader.buffer_position() as usize;
        let text = match ev {
            Event::Start(e) => {
                let mut n = Node::from_start(&e);
                n.inner = (after, after);
                stack.push(n);
                continue;
            }
            Event::Empty(e) => {
                let n = Node::from_start(&e);
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
                continue;
            }
            Event::End(_) => {
                let Some(mut n) = stack.pop() else {
                    continue;
                };
                n.inner.1 = before;
                match stack.last_mut() {
                    Some(p) => {
                        p.text.push_str(&n.text);
                        p.children.push(n);
                    }
                    None => root = Some(n),
                }
                continue;
            }
            Event::Text(t) => t.xml10_content().into_owned(),
            Event::CData(t) => t.xml10_content().into_owned(),
            Event::GeneralRef(r) => reference(&r),
            Event::Eof => break,
            _ => continue,
        };
        if let Some(n) = stack.last_mut() {
            n.text.push_str(&text);
        }
    }
    root.ok_or_else(|| "no element".to_string())
}

/// Why an entry cannot become a mention: the field and its expected form.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub field: String,
    pub expected: String,
    pub message: String,
}

/// What an entry says, before it becomes a record.
#[derive(Debug, Default, PartialEq)]
pub struct Entry {
    pub id: Option<String>,
    pub link: Option<String>,
    pub title: Option<String>,
    /// (element name, value as written): `pubDate`, `published`, `dc:date`.
    pub published: Option<(String, String)>,
    /// `updated` (Atom).
    pub updated: Option<(String, String)>,
    pub text: Option<String>,
    pub author: Option<String>,
    /// Atom `author/uri`: a stable identity.
    pub author_uri: Option<String>,
}

/// The text of Atom's `title`, `summary` or `content` by its `type` (`text`, `html`,
/// `xhtml`), or RSS's HTML `description` / `content:encoded`.
fn content_text(n: &Node, xml: &str, html_default: bool) -> Option<String> {
    let kind = n
        .attr("type")
        .unwrap_or(if html_default { "html" } else { "text" });
    let t = match kind {
        "xhtml" => html_to_text(xml.get(n.inner.0..n.inner.1).unwrap_or("")),
        "html" | "text/html" => html_to_text(&n.text),
        _ if kind.contains("xml") || kind.starts_with("text/plain") || kind == "text" => {
            n.text.trim().to_string()
        }
        _ => return None, // another media type (base64 content): not text
    };
    (!t.is_empty()).then_some(t)
}

/// Reads one entry as written (`<item>` or `<entry>`).
pub fn read_entry(xml: &str, format: Format) -> Result<Entry, String> {
    let root = tree(xml)?;
    let atom = format == Format::Atom;
    let mut e = Entry::default();
    let (mut encoded, mut content, mut description, mut summary) = (None, None, None, None);
    for c in &root.children {
        let l = local(&c.name);
        let prefixed = prefix(&c.name).filter(|p| *p != "atom");
        match (l, prefixed) {
            ("title", None) if e.title.is_none() => {
                e.title = content_text(c, xml, false).map(|t| one_line(&t));
            }
            ("link", None) => {
                let alternate = c.attr("rel").is_none_or(|r| r == "alternate");
                match c.attr("href") {
                    Some(h) if alternate && e.link.is_none() => e.link = Some(h.trim().into()),
                    Some(_) => {}
                    None if e.link.is_none() => e.link = c.trimmed(),
                    None => {}
                }
            }
            ("guid" | "id", None) if e.id.is_none() => e.id = c.trimmed(),
            ("pubDate" | "published" | "issued", None) if e.published.is_none() => {
                e.published = c.trimmed().map(|v| (c.name.clone(), v));
            }
            ("date", Some(_)) if e.published.is_none() => {
                e.published = c.trimmed().map(|v| (c.name.clone(), v));
            }
            ("updated" | "modified", None) if e.updated.is_none() => {
                e.updated = c.trimmed().map(|v| (c.name.clone(), v));
            }
            ("encoded", Some(_)) if encoded.is_none() => encoded = content_text(c, xml, true),
            ("content", None) if content.is_none() && c.attr("src").is_none() => {
                content = content_text(c, xml, !atom);
            }
            ("description", None) if description.is_none() => {
                description = content_text(c, xml, true);
            }
            ("summary", None) if summary.is_none() => summary = content_text(c, xml, !atom),
            ("author", None) if e.author.is_none() => {
                if c.children.is_empty() {
                    // RSS: `ana@example.com (Ana Example)` or a bare address or name.
                    e.author = c.trimmed().map(|a| match (a.find('('), a.rfind(')')) {
                        (Some(i), Some(j)) if j > i + 1 => a[i + 1..j].trim().to_string(),
                        _ => a,
                    });
                } else {
                    e.author = c
                        .child("name")
                        .and_then(Node::trimmed)
                        .or_else(|| c.child("email").and_then(Node::trimmed));
                    e.author_uri = c.child("uri").and_then(Node::trimmed);
                }
            }
            ("creator", Some(_)) if e.author.is_none() => e.author = c.trimmed(),
            _ => {}
        }
    }
    if e.id.is_none() && format == Format::Rdf {
        e.id = root.attr("about").map(str::to_string);
    }
    e.text = encoded.or(content).or(description).or(summary);
    Ok(e)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `scheme:rest`: an IRI (`https://...`, `tag:...`, `urn:uuid:...`) that names the entry
/// on its own.
fn is_iri(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// A short hex digest (first 16 bytes of SHA-256).
pub fn digest(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

/// The dedupe key of an entry and what it came from: the id (scoped by `feed` unless it
/// is an IRI), else the link, else a digest of title and date (scoped by `feed`).
pub fn dedupe_key(feed: &str, e: &Entry) -> Option<(&'static str, String)> {
    fn nonempty(s: &Option<String>) -> Option<&str> {
        s.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    if let Some(id) = nonempty(&e.id) {
        let key = if is_iri(id) {
            id.to_string()
        } else {
            format!("{feed}#{id}")
        };
        return Some(("id", key));
    }
    if let Some(link) = nonempty(&e.link) {
        return Some(("link", link.to_string()));
    }
    let title = nonempty(&e.title)?;
    let date = e
        .published
        .as_ref()
        .or(e.updated.as_ref())
        .map(|(_, d)| d.as_str())
        .unwrap_or("");
    Some((
        "title+date",
        format!("{feed}#sha256:{}", digest(&format!("{title}\n{date}"))),
    ))
}

/// RFC 5322 §4.3 zones; any other alphabetic zone counts as UTC (`-0000`).
fn zone_offset(z: &str) -> Option<i32> {
    let z = z.trim();
    let hours = match z.to_ascii_uppercase().as_str() {
        "" | "UT" | "UTC" | "GMT" | "Z" => 0,
        "EST" => -5,
        "EDT" => -4,
        "CST" => -6,
        "CDT" => -5,
        "MST" => -7,
        "MDT" => -6,
        "PST" => -8,
        "PDT" => -7,
        "CET" | "BST" => 1,
        "CEST" | "EET" => 2,
        "EEST" => 3,
        _ => {
            let (sign, digits) = match z.as_bytes().first() {
                Some(b'+') => (1, &z[1..]),
                Some(b'-') => (-1, &z[1..]),
                _ if z.chars().all(|c| c.is_ascii_alphabetic()) => return Some(0),
                _ => return None,
            };
            let digits: String = digits.chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let h: i32 = digits[..2].parse().ok()?;
            let m: i32 = digits[2..].parse().ok()?;
            return Some(sign * (h * 3600 + m * 60));
        }
    };
    Some(hours * 3600)
}

/// RFC 822 as feeds write it: a wrong or missing weekday, one-digit days and hours,
/// full month names, two-digit years, zone names or no zone.
fn rfc822_lenient(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = match s.split_once(',') {
        Some((day, rest)) if day.trim().chars().all(|c| c.is_ascii_alphabetic()) => rest,
        _ => s,
    };
    let mut tokens: Vec<&str> = s.split_whitespace().collect();
    if tokens
        .first()
        .is_some_and(|t| t.chars().all(|c| c.is_ascii_alphabetic()) && t.len() >= 3)
        && tokens.len() >= 5
    {
        tokens.remove(0); // a weekday without its comma
    }
    if tokens.len() < 4 {
        return None;
    }
    let day: u32 = tokens[0].trim_end_matches('.').parse().ok()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let m = tokens[1].to_ascii_lowercase();
    let month = MONTHS.iter().position(|x| m.starts_with(x))? as u32 + 1;
    let year: i32 = match tokens[2].parse::<i32>().ok()? {
        y if tokens[2].len() == 2 && y < 50 => 2000 + y,
        y if tokens[2].len() == 2 => 1900 + y,
        y => y,
    };
    let mut hms = tokens[3].split(':');
    let h: u32 = hms.next()?.parse().ok()?;
    let mi: u32 = hms.next()?.parse().ok()?;
    let sec: u32 = match hms.next() {
        Some(x) => x.split('.').next()?.parse().ok()?,
        None => 0,
    };
    let offset = zone_offset(&tokens[4..].join(""))?;
    let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(h, mi, sec)?;
    FixedOffset::east_opt(offset)?
        .from_local_datetime(&naive)
        .single()
}

/// A feed date: RFC 3339 (Atom), RFC 822 (RSS) strictly then leniently, ISO forms
/// without a zone (UTC) and bare dates.
pub fn parse_date(raw: &str) -> Option<DateTime<FixedOffset>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t);
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    let utc = FixedOffset::east_opt(0).expect("zero offset");
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return utc.from_local_datetime(&t).single();
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return utc.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).single();
    }
    rfc822_lenient(s)
}

/// The date an entry is filed under: published (`pubDate`, `dc:date`), else updated.
/// Returns (element, date) or the problem naming the element.
fn entry_date(e: &Entry, format: Format) -> Result<(String, DateTime<FixedOffset>), Problem> {
    let candidates = [&e.published, &e.updated];
    for (name, raw) in candidates.iter().copied().flatten() {
        if let Some(t) = parse_date(raw) {
            return Ok((name.clone(), t));
        }
    }
    let expected = match format {
        Format::Atom => "an RFC 3339 date, e.g. 2025-06-03T09:05:00Z",
        _ => "an RFC 822 date, e.g. Tue, 03 Jun 2025 09:05:00 GMT",
    };
    Err(match candidates.iter().copied().flatten().next() {
        Some((name, raw)) => Problem {
            field: name.clone(),
            expected: expected.into(),
            message: format!(
                "`{}` is not a date",
                raw.chars().take(80).collect::<String>()
            ),
        },
        None => Problem {
            field: match format {
                Format::Rss => "pubDate",
                Format::Rdf => "dc:date",
                Format::Atom => "updated",
            }
            .into(),
            expected: expected.into(),
            message: "the entry has no date".into(),
        },
    })
}

/// Fills `rec` from a record as the connector keeps it (see the module doc). The
/// `feed-json` preset calls it too, so a quarantined entry replays the same way.
pub fn entry_record(v: &Value, rec: &mut SourceRecord) -> Result<(), Problem> {
    let problem = |field: &str, expected: &str, message: String| Problem {
        field: field.into(),
        expected: expected.into(),
        message,
    };
    let xml = v.get("xml").and_then(Value::as_str).ok_or_else(|| {
        problem(
            "xml",
            "the entry's XML as a string",
            "the record has no `xml`".into(),
        )
    })?;
    let format = v
        .get("format")
        .and_then(Value::as_str)
        .and_then(Format::parse)
        .unwrap_or(Format::Rss);
    let feed = v.get("feed").and_then(Value::as_str).unwrap_or("");
    let e = read_entry(xml, format).map_err(|m| {
        problem(
            "xml",
            "an <item> or <entry> element",
            m.chars().take(200).collect(),
        )
    })?;
    let Some((key_from, key)) = dedupe_key(feed, &e) else {
        let field = if format == Format::Atom { "id" } else { "guid" };
        return Err(problem(
            field,
            "an id, guid, link or title",
            "the entry has neither an id nor a link nor a title".into(),
        ));
    };
    let (date_from, date) = entry_date(&e, format)?;
    rec.set(Field::Kind, "preset", "mention");
    rec.set(Field::ExternalId, key_from, key);
    rec.set(
        Field::OccurredAt,
        &date_from,
        date.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    );
    if let Some((name, raw)) = &e.updated
        && let Some(u) = parse_date(raw)
        && u > date
    {
        rec.set(
            Field::UpdatedAt,
            name,
            u.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
    }
    if let Some(t) = &e.title {
        rec.set(Field::Title, "title", t.clone());
    }
    if let Some(t) = &e.text {
        rec.set(Field::Text, "content", t.clone());
    }
    if let Some(l) = &e.link {
        rec.set(Field::Url, "link", l.clone());
    }
    if let Some(a) = &e.author {
        rec.set(Field::Name, "author", a.clone());
    }
    if let Some(u) = &e.author_uri {
        rec.platform_ids.push(format!("feed:{u}"));
    }
    if let Some(l) = v
        .pointer("/_tideline/location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
    {
        rec.set(Field::Location, "_tideline.location", l);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> String {
        parse_date(s)
            .unwrap_or_else(|| panic!("{s} not read"))
            .to_rfc3339()
    }

    #[test]
    fn dates_strict_and_as_feeds_write_them() {
        assert_eq!(
            at("Sat, 07 Sep 2002 00:00:01 GMT"),
            "2002-09-07T00:00:01+00:00"
        );
        assert_eq!(
            at("2025-06-03T09:05:00.5+02:00"),
            "2025-06-03T09:05:00.500+02:00"
        );
        // The wrong weekday (3 June 2025 is a Tuesday), one-digit hour, zone name.
        assert_eq!(
            at("Mon, 3 Jun 2025 9:05:00 EST"),
            "2025-06-03T09:05:00-05:00"
        );
        assert_eq!(
            at("Tue, 03 June 2025 09:05 +0200"),
            "2025-06-03T09:05:00+02:00"
        );
        assert_eq!(at("03 Jun 25 09:05:00 PDT"), "2025-06-03T09:05:00-07:00");
        assert_eq!(at("Tue 03 Jun 2025 09:05:00"), "2025-06-03T09:05:00+00:00");
        assert_eq!(
            at("Tue, 03 Jun 2025 09:05:00 XYZ"),
            "2025-06-03T09:05:00+00:00"
        );
        assert_eq!(at("2025-06-03 09:05:00"), "2025-06-03T09:05:00+00:00");
        assert_eq!(at("2025-06-03"), "2025-06-03T00:00:00+00:00");
        for bad in [
            "",
            "yesterday",
            "Tue, 32 Jun 2025 09:05:00 GMT",
            "31/12/2025",
            "Tue, 03 Foo 2025 09:05:00 GMT",
            "Tue, 03 Jun 2025 25:05:00 GMT",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn dedupe_keys_prefer_ids_then_links_then_title_and_date() {
        let feed = "https://blog.example/feed";
        let mut e = Entry {
            id: Some("tag:blog.example,2025:1".into()),
            link: Some("https://blog.example/1".into()),
            title: Some("One".into()),
            published: Some(("pubDate".into(), "Tue, 03 Jun 2025 09:05:00 GMT".into())),
            ..Default::default()
        };
        assert_eq!(
            dedupe_key(feed, &e),
            Some(("id", "tag:blog.example,2025:1".into()))
        );
        e.id = Some("1234".into()); // isPermaLink="false": only unique within its feed
        assert_eq!(dedupe_key(feed, &e), Some(("id", format!("{feed}#1234"))));
        e.id = Some("  ".into());
        assert_eq!(
            dedupe_key(feed, &e),
            Some(("link", "https://blog.example/1".into()))
        );
        e.link = None;
        let (from, k) = dedupe_key(feed, &e).unwrap();
        assert_eq!(from, "title+date");
        assert!(
            k.starts_with(&format!("{feed}#sha256:")) && k.len() == feed.len() + 8 + 32,
            "{k}"
        );
        // The same title on another day is another entry; the same title and date is not.
        let mut later = Entry {
            published: Some(("pubDate".into(), "Wed, 04 Jun 2025 09:05:00 GMT".into())),
            ..e
        };
        assert_ne!(dedupe_key(feed, &later).unwrap().1, k);
        later.published = Some(("pubDate".into(), "Tue, 03 Jun 2025 09:05:00 GMT".into()));
        assert_eq!(dedupe_key(feed, &later).unwrap().1, k);
        later.title = None;
        assert_eq!(dedupe_key(feed, &later), None);
        assert!(
            is_iri("urn:uuid:1225c695")
                && is_iri("https://x.example/")
                && !is_iri("1234")
                && !is_iri("a b:c")
        );
    }

    #[test]
    fn documents_split_into_entries_as_written() {
        let rss = r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:x="urn:x"><channel><title>T</title><item><title>A &amp; B</title><x:score n="1">7</x:score></item><item/></channel></rss>"#;
        let d = split(rss).unwrap();
        assert_eq!(d.format, Format::Rss);
        assert_eq!(
            d.entries,
            [
                r#"<item><title>A &amp; B</title><x:score n="1">7</x:score></item>"#,
                "<item/>"
            ]
        );
        assert_eq!(d.namespaces["x"], "urn:x");
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>urn:a</id><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hi <b>there</b></p></div></content></entry></feed>"#;
        let d = split(atom).unwrap();
        assert_eq!(d.format, Format::Atom);
        let e = read_entry(d.entries[0], d.format).unwrap();
        assert_eq!(e.text.as_deref(), Some("Hi there"));
        let rdf = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><items/></channel><item rdf:about="https://r.example/1"><title>R</title></item></rdf:RDF>"#;
        let d = split(rdf).unwrap();
        assert_eq!((d.format, d.entries.len()), (Format::Rdf, 1));
        assert_eq!(
            read_entry(d.entries[0], d.format).unwrap().id.as_deref(),
            Some("https://r.example/1")
        );
        assert!(
            split("<!DOCTYPE html><html><body>502</body></html>")
                .unwrap_err()
                .contains("HTML page")
        );
        assert!(
            split("<rss><channel><item></channel></rss>")
                .unwrap_err()
                .contains("well-formed")
        );
        assert!(
            split("<svg/>")
                .unwrap_err()
                .contains("not an RSS or Atom feed")
        );
        assert!(split("").is_err());
    }

    #[test]
    fn entries_become_mentions() {
        let xml = r#"<item><title>Cold   coffee</title><link>https://n.example/1</link><guid isPermaLink="false">77</guid><pubDate>Tue, 03 Jun 2025 09:05:00 GMT</pubDate><author>ana@example.com (Ana)</author><description>&lt;p&gt;So &lt;b&gt;bad&lt;/b&gt;&amp;nbsp;today&lt;/p&gt;</description><content:encoded><![CDATA[<p>Really <i>bad</i> &amp; cold</p>]]></content:encoded></item>"#;
        let v = json!({"feed": "https://n.example/rss", "format": "rss", "xml": xml, "_tideline": {"location": "hamburg"}});
        let mut rec = SourceRecord::default();
        entry_record(&v, &mut rec).unwrap();
        assert_eq!(rec.fields[&Field::ExternalId], "https://n.example/rss#77");
        assert_eq!(rec.fields[&Field::OccurredAt], "2025-06-03T09:05:00Z");
        assert_eq!(rec.fields[&Field::Title], "Cold coffee");
        assert_eq!(rec.fields[&Field::Text], "Really bad & cold");
        assert_eq!(rec.fields[&Field::Name], "Ana");
        assert_eq!(rec.fields[&Field::Location], "hamburg");
        let desc = read_entry(
            &xml.replace("<content:encoded>", "<x>")
                .replace("</content:encoded>", "</x>"),
            Format::Rss,
        )
        .unwrap();
        assert_eq!(desc.text.as_deref(), Some("So bad\u{a0}today"));
        let v = json!({"feed": "f", "format": "rss", "xml": "<item><title>t</title><pubDate>soon</pubDate></item>"});
        let p = entry_record(&v, &mut SourceRecord::default()).unwrap_err();
        assert_eq!(
            (p.field.as_str(), p.message.as_str()),
            ("pubDate", "`soon` is not a date")
        );
        let v = json!({"feed": "f", "format": "atom", "xml": "<entry><updated>2025-06-03T09:05:00Z</updated></entry>"});
        assert_eq!(
            entry_record(&v, &mut SourceRecord::default())
                .unwrap_err()
                .field,
            "id"
        );
    }
}
