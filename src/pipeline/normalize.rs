//! From a source record (text fields as a file or an API gave them) to interactions, or a
//! [`RowError`] that names the field and the expected form. Pure: no IO, no clock.

use super::identify::{normalize_email, normalize_phone};
use crate::model::{Ces, Csat, Identity, IdentityKind, Interaction, InteractionKind, Location};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// A logical field of the interaction record, as mappings and presets name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    ExternalId,
    Kind,
    OccurredAt,
    UpdatedAt,
    Location,
    Name,
    Email,
    Phone,
    Title,
    Text,
    Language,
    Stars,
    Nps,
    Csat,
    CsatScale,
    Ces,
    CesScale,
    Status,
    Url,
    ReplyText,
    ReplyAt,
    Parent,
}

impl Field {
    pub const ALL: [Field; 22] = [
        Field::ExternalId,
        Field::Kind,
        Field::OccurredAt,
        Field::UpdatedAt,
        Field::Location,
        Field::Name,
        Field::Email,
        Field::Phone,
        Field::Title,
        Field::Text,
        Field::Language,
        Field::Stars,
        Field::Nps,
        Field::Csat,
        Field::CsatScale,
        Field::Ces,
        Field::CesScale,
        Field::Status,
        Field::Url,
        Field::ReplyText,
        Field::ReplyAt,
        Field::Parent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::ExternalId => "external_id",
            Field::Kind => "kind",
            Field::OccurredAt => "occurred_at",
            Field::UpdatedAt => "updated_at",
            Field::Location => "location",
            Field::Name => "name",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::Title => "title",
            Field::Text => "text",
            Field::Language => "language",
            Field::Stars => "stars",
            Field::Nps => "nps",
            Field::Csat => "csat",
            Field::CsatScale => "csat_scale",
            Field::Ces => "ces",
            Field::CesScale => "ces_scale",
            Field::Status => "status",
            Field::Url => "url",
            Field::ReplyText => "reply_text",
            Field::ReplyAt => "reply_at",
            Field::Parent => "parent",
        }
    }

    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// One record as read from a file or an API page, before normalization.
#[derive(Debug, Clone, Default)]
pub struct SourceRecord {
    /// File path or URL the record came from.
    pub origin: String,
    /// Physical line (1-based) where the record starts, when the source has lines.
    pub line: Option<u64>,
    /// The record as read: a JSON object (CSV rows become `{header: value}`).
    pub raw: String,
    pub fields: BTreeMap<Field, String>,
    /// Where each field came from (column or JSON path), for error messages.
    pub labels: BTreeMap<Field, String>,
    /// Values that may name a location (custom fields, tags); the first known one wins.
    pub location_candidates: Vec<String>,
    /// Namespaced platform ids such as `zendesk_user:42`.
    pub platform_ids: Vec<String>,
}

impl SourceRecord {
    pub fn set(&mut self, field: Field, label: &str, value: impl Into<String>) {
        let v: String = value.into();
        let v = v.trim();
        if !v.is_empty() {
            self.fields.insert(field, v.to_string());
            self.labels.insert(field, label.to_string());
        }
    }

    fn get(&self, f: Field) -> Option<&str> {
        self.fields.get(&f).map(String::as_str)
    }

    fn label(&self, f: Field) -> String {
        match self.labels.get(&f) {
            Some(l) if l != f.as_str() => format!("{} (`{l}`)", f.as_str()),
            _ => f.as_str().to_string(),
        }
    }
}

/// A record that could not be turned into an interaction: where it is, which field, what
/// was expected, and the raw text so it can be fixed and replayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub origin: String,
    pub line: Option<u64>,
    pub field: Option<String>,
    pub expected: String,
    pub message: String,
    pub raw: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field {field}")?;
        }
        write!(f, ": {} (expected {})", self.message, self.expected)
    }
}

/// Finds a configured location by id or alias, ignoring case and surrounding space.
#[derive(Debug, Clone, Default)]
pub struct LocationIndex {
    by_key: HashMap<String, Location>,
}

impl LocationIndex {
    pub fn new(locations: &[Location]) -> Self {
        let mut by_key = HashMap::new();
        for l in locations {
            by_key.insert(fold_key(&l.id), l.clone());
            by_key.insert(fold_key(&l.name), l.clone());
            for a in &l.aliases {
                by_key.insert(fold_key(a), l.clone());
            }
        }
        Self { by_key }
    }

    pub fn find(&self, value: &str) -> Option<&Location> {
        self.by_key.get(&fold_key(value))
    }
}

fn fold_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// What the importer knows about the records it hands over.
#[derive(Debug, Clone)]
pub struct NormalizeContext {
    pub source: String,
    pub default_kind: InteractionKind,
    /// `--location`: used when a record names none.
    pub default_location: Option<String>,
    /// `--timezone` or the mapping's zone: wins over the location's zone for local times.
    pub timezone: Option<Tz>,
    /// Zone for local times when neither the above nor the location gives one.
    pub fallback_timezone: Tz,
    /// Extra `strftime` formats tried first, in order.
    pub date_formats: Vec<String>,
    pub csat_scale: String,
    pub ces_scale: String,
    pub locations: LocationIndex,
    /// Identities that join nobody (shared inboxes, the business's own numbers).
    pub guard: std::sync::Arc<crate::pipeline::identify::IdentityGuard>,
}

/// An interaction plus what normalization learned for the later stages.
#[derive(Debug, Clone)]
pub struct Normalized {
    pub interaction: Interaction,
    /// The language the source declares (a field, a locale) or the location's language.
    pub language_hint: Option<String>,
    /// Emails or phones present but unreadable (e.g. `4.91701E+12`): kept in the raw
    /// record, not used as identities.
    pub unreadable_identities: u32,
}

/// Normalizes one record into its interaction and, for reviews with an owner reply, the
/// reply as a second interaction.
pub fn normalize(
    rec: &SourceRecord,
    cx: &NormalizeContext,
) -> Result<Vec<Normalized>, Box<RowError>> {
    let err = |field: Option<Field>, expected: &str, message: String| {
        Box::new(RowError {
            origin: rec.origin.clone(),
            line: rec.line,
            field: field.map(|f| rec.label(f)),
            expected: expected.to_string(),
            message,
            raw: rec.raw.clone(),
        })
    };

    let external_id = rec.get(Field::ExternalId).ok_or_else(|| {
        err(
            Some(Field::ExternalId),
            "a non-empty id unique in the source",
            "the id is missing".into(),
        )
    })?;
    let kind = match rec.get(Field::Kind) {
        Some(k) => InteractionKind::parse(&k.to_lowercase()).ok_or_else(|| {
            err(
                Some(Field::Kind),
                "review, reply, mention, ticket, ticket_comment or survey_response",
                format!("unknown kind `{k}`"),
            )
        })?,
        None => cx.default_kind,
    };

    // Location: explicit field, then candidates, then the default.
    let location: Option<Location> = rec
        .get(Field::Location)
        .map(|v| {
            cx.locations.find(v).cloned().unwrap_or_else(|| Location {
                id: v.to_string(),
                name: v.to_string(),
                timezone: cx.fallback_timezone.name().to_string(),
                country: None,
                language: None,
                aliases: vec![],
            })
        })
        .or_else(|| {
            rec.location_candidates
                .iter()
                .find_map(|c| cx.locations.find(c).cloned())
        })
        .or_else(|| {
            cx.default_location.as_deref().map(|d| {
                cx.locations.find(d).cloned().unwrap_or_else(|| Location {
                    id: d.to_string(),
                    name: d.to_string(),
                    timezone: cx.fallback_timezone.name().to_string(),
                    country: None,
                    language: None,
                    aliases: vec![],
                })
            })
        });
    let tz: Tz = cx
        .timezone
        .or_else(|| location.as_ref().and_then(|l| l.timezone.parse().ok()))
        .unwrap_or(cx.fallback_timezone);

    let occurred_raw = rec.get(Field::OccurredAt).ok_or_else(|| {
        err(
            Some(Field::OccurredAt),
            "a date and time",
            "the date is missing".into(),
        )
    })?;
    let occurred_at_ms = parse_instant(occurred_raw, tz, &cx.date_formats).ok_or_else(|| {
        err(
            Some(Field::OccurredAt),
            &date_expectation(&cx.date_formats),
            format!("`{occurred_raw}` is not a date"),
        )
    })?;
    let updated_at_ms = match rec.get(Field::UpdatedAt) {
        Some(v) => Some(parse_instant(v, tz, &cx.date_formats).ok_or_else(|| {
            err(
                Some(Field::UpdatedAt),
                &date_expectation(&cx.date_formats),
                format!("`{v}` is not a date"),
            )
        })?),
        None => None,
    };

    let stars = match rec.get(Field::Stars) {
        Some(v) => {
            let n = parse_number(v)
                .filter(|n| (1.0..=5.0).contains(n))
                .ok_or_else(|| {
                    err(
                        Some(Field::Stars),
                        "a rating from 1 to 5",
                        format!("`{v}` is not a rating"),
                    )
                })?;
            Some(n)
        }
        None => None,
    };
    let nps = match rec.get(Field::Nps) {
        Some(v) => {
            let n = parse_number(v)
                .filter(|n| n.fract() == 0.0 && (0.0..=10.0).contains(n))
                .ok_or_else(|| {
                    err(
                        Some(Field::Nps),
                        "a whole number from 0 to 10",
                        format!("`{v}` is not an NPS answer"),
                    )
                })?;
            Some(n as i64)
        }
        None => None,
    };
    let csat_scale = rec.get(Field::CsatScale).unwrap_or(&cx.csat_scale);
    let csat = match rec.get(Field::Csat) {
        Some(v) => parse_csat(v, csat_scale).map_err(|expected| {
            err(
                Some(Field::Csat),
                &expected,
                format!("`{v}` is not an answer on the `{csat_scale}` scale"),
            )
        })?,
        None => None,
    };
    let ces_scale = rec.get(Field::CesScale).unwrap_or(&cx.ces_scale);
    let ces = match rec.get(Field::Ces) {
        Some(v) => Some(parse_ces(v, ces_scale).map_err(|expected| {
            err(
                Some(Field::Ces),
                &expected,
                format!("`{v}` is not an answer on the `{ces_scale}` scale"),
            )
        })?),
        None => None,
    };

    let country = location.as_ref().and_then(|l| l.country.as_deref());
    let mut identities = Vec::new();
    let mut unreadable_identities = 0;
    if let Some(raw) = rec.get(Field::Email) {
        match normalize_email(raw) {
            Some(e) => identities.push(Identity::new(IdentityKind::Email, e)),
            None => unreadable_identities += 1,
        }
    }
    if let Some(raw) = rec.get(Field::Phone) {
        match normalize_phone(raw, country) {
            Some(p) => identities.push(Identity::new(IdentityKind::Phone, p)),
            None => unreadable_identities += 1,
        }
    }
    for p in &rec.platform_ids {
        identities.push(Identity::new(IdentityKind::Platform, p.clone()));
    }
    let author_name = rec.get(Field::Name).map(str::to_string);
    if let Some(n) = &author_name {
        identities.push(Identity::new(IdentityKind::Name, n.clone()));
    }
    // A blocked identity stays in the raw record but joins nobody.
    identities.retain(|i| !cx.guard.blocks(i));
    // A record its customer wrote, signed with a display name only (a Google review),
    // gets a customer of its own through its anchor; names never join it to anyone.
    if author_name.is_some()
        && kind.written_by_customer()
        && !identities.iter().any(|i| i.kind.is_personal())
    {
        identities.push(Identity::item(&cx.source, external_id));
    }
    identities.sort();
    identities.dedup();

    let text = match (rec.get(Field::Title), rec.get(Field::Text)) {
        (Some(t), Some(b)) if !b.starts_with(t) => Some(format!("{t}\n\n{b}")),
        (_, Some(b)) => Some(b.to_string()),
        (Some(t), None) => Some(t.to_string()),
        (None, None) => None,
    };
    let language_hint = rec
        .get(Field::Language)
        .map(language_code)
        .or_else(|| location.as_ref().and_then(|l| l.language.clone()));

    let mut main = Interaction {
        source: cx.source.clone(),
        external_id: external_id.to_string(),
        kind,
        parent_external_id: rec.get(Field::Parent).map(str::to_string),
        occurred_at_ms,
        updated_at_ms,
        location_id: location.as_ref().map(|l| l.id.clone()),
        author_name,
        identities,
        text,
        language: None,
        language_confidence: None,
        stars,
        nps,
        csat,
        ces,
        status: rec.get(Field::Status).map(str::to_string),
        sentiment: None,
        aspects: Vec::new(),
        url: rec.get(Field::Url).map(str::to_string),
        raw: rec.raw.clone(),
        content_hash: String::new(),
    };
    main.content_hash = content_hash(&main);
    let mut out = vec![Normalized {
        interaction: main,
        language_hint: language_hint.clone(),
        unreadable_identities,
    }];

    if let Some(reply) = rec.get(Field::ReplyText) {
        let reply_at = match rec.get(Field::ReplyAt) {
            Some(v) => parse_instant(v, tz, &cx.date_formats).ok_or_else(|| {
                err(
                    Some(Field::ReplyAt),
                    &date_expectation(&cx.date_formats),
                    format!("`{v}` is not a date"),
                )
            })?,
            None => updated_at_ms.unwrap_or(occurred_at_ms),
        };
        let mut r = Interaction {
            source: cx.source.clone(),
            external_id: format!("{external_id}#reply"),
            kind: InteractionKind::Reply,
            parent_external_id: Some(external_id.to_string()),
            occurred_at_ms: reply_at,
            updated_at_ms: None,
            location_id: location.as_ref().map(|l| l.id.clone()),
            author_name: None,
            identities: vec![],
            text: Some(reply.to_string()),
            language: None,
            language_confidence: None,
            stars: None,
            nps: None,
            csat: None,
            ces: None,
            status: None,
            sentiment: None,
            aspects: Vec::new(),
            url: None,
            raw: rec.raw.clone(),
            content_hash: String::new(),
        };
        r.content_hash = content_hash(&r);
        out.push(Normalized {
            interaction: r,
            language_hint,
            unreadable_identities: 0,
        });
    }
    Ok(out)
}

fn date_expectation(formats: &[String]) -> String {
    let mut s = String::from(
        "a date such as 2026-03-04T14:22:10Z, 2026-03-04 14:22:10, 04.03.2026 14:22 or unix seconds",
    );
    if formats.is_empty() {
        s.push_str("; for other forms set date_formats in a mapping (--mapping)");
    } else {
        s.push_str(", or one of the formats ");
        s.push_str(&formats.join(", "));
    }
    s
}

/// The first two letters of a locale (`pt-BR` -> `pt`), lowercased.
fn language_code(s: &str) -> String {
    s.trim()
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_lowercase()
}

/// Hashes the normalized source content (not derived values such as sentiment, and not
/// the raw text, whose incidental fields change without the content changing).
pub fn content_hash(i: &Interaction) -> String {
    #[derive(Serialize)]
    struct Canon<'a> {
        kind: &'a str,
        parent: &'a Option<String>,
        occurred: i64,
        updated: Option<i64>,
        location: &'a Option<String>,
        author: &'a Option<String>,
        identities: &'a [Identity],
        text: &'a Option<String>,
        stars: Option<f64>,
        nps: Option<i64>,
        csat: &'a Option<Csat>,
        ces: &'a Option<Ces>,
        status: &'a Option<String>,
        url: &'a Option<String>,
    }
    let canon = Canon {
        kind: i.kind.as_str(),
        parent: &i.parent_external_id,
        occurred: i.occurred_at_ms,
        updated: i.updated_at_ms,
        location: &i.location_id,
        author: &i.author_name,
        identities: &i.identities,
        text: &i.text,
        stars: i.stars,
        nps: i.nps,
        csat: &i.csat,
        ces: &i.ces,
        status: &i.status,
        url: &i.url,
    };
    let bytes = serde_json::to_vec(&canon).expect("plain data serializes");
    hex::encode(&Sha256::digest(&bytes)[..16])
}

/// Parses a number written with a decimal point or a decimal comma (`4,5`), with
/// surrounding space. Thousands separators are not expected in scores.
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let n = t.parse::<f64>().ok().or_else(|| {
        if t.matches(',').count() == 1 && !t.contains('.') {
            t.replace(',', ".").parse::<f64>().ok()
        } else {
            None
        }
    })?;
    n.is_finite().then_some(n)
}

fn parse_csat(v: &str, scale: &str) -> Result<Option<Csat>, String> {
    let lower = v.trim().to_lowercase();
    match lower.as_str() {
        // Zendesk legacy CSAT: only `good` and `bad` are answers.
        "offered" | "unoffered" | "not offered" => return Ok(None),
        "good" | "good, i'm satisfied" | "satisfied" => {
            return Ok(Some(Csat {
                value: 1.0,
                scale: "good/bad".into(),
                satisfied: true,
            }));
        }
        "bad" | "bad, i'm unsatisfied" | "unsatisfied" => {
            return Ok(Some(Csat {
                value: 0.0,
                scale: "good/bad".into(),
                satisfied: false,
            }));
        }
        _ => {}
    }
    let (lo, hi) = parse_scale(scale)
        .ok_or_else(|| format!("a CSAT scale like `1-5`; `{scale}` is not one (set csat_scale)"))?;
    let n = parse_number(v)
        .filter(|n| n.fract() == 0.0 && *n >= lo && *n <= hi)
        .ok_or_else(|| format!("a whole number from {lo} to {hi}, `good` or `bad`"))?;
    // The top two answers of a five-or-more-point scale count as satisfied, the top one
    // of shorter scales.
    let threshold = if hi - lo >= 4.0 { hi - 1.0 } else { hi };
    Ok(Some(Csat {
        value: n,
        scale: scale.to_string(),
        satisfied: n >= threshold,
    }))
}

fn parse_ces(v: &str, scale: &str) -> Result<Ces, String> {
    let reversed = scale.ends_with("-reversed");
    let base = scale.trim_end_matches("-reversed");
    let (lo, hi) = parse_scale(base)
        .ok_or_else(|| format!("a CES scale like `1-7`; `{scale}` is not one (set ces_scale)"))?;
    let n = parse_number(v)
        .filter(|n| n.fract() == 0.0 && *n >= lo && *n <= hi)
        .ok_or_else(|| format!("a whole number from {lo} to {hi}"))?;
    let agrees = if reversed {
        n <= lo + 1.0
    } else {
        n >= hi - 2.0
    };
    Ok(Ces {
        value: n,
        scale: scale.to_string(),
        agrees,
    })
}

fn parse_scale(s: &str) -> Option<(f64, f64)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
    (a < b).then_some((a, b))
}

/// Parses a timestamp into UTC milliseconds. Accepts RFC 3339 (any offset, 0-9 fraction
/// digits), RFC 2822, unix seconds or milliseconds, and local forms (`2026-03-04 14:22:10`,
/// `2026-03-04`, the given formats) which are read in `tz`. A local time that falls into a
/// DST gap moves forward by the gap; an ambiguous one takes the earlier instant.
pub fn parse_instant(s: &str, tz: Tz, formats: &[String]) -> Option<i64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    for f in formats {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Some(dt.timestamp_millis());
        }
        if let Ok(ndt) = NaiveDateTime::parse_from_str(t, f) {
            return local_to_utc(ndt, tz);
        }
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return local_to_utc(d.and_hms_opt(0, 0, 0)?, tz);
        }
    }
    // The most common forms first, without trying every format.
    let b = t.as_bytes();
    if b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && b[13] == b':' {
        if b.len() == 19 && b[10] == b' ' {
            if let Ok(ndt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S") {
                return local_to_utc(ndt, tz);
            }
        } else if b[10] == b'T'
            && let Ok(dt) = DateTime::parse_from_rfc3339(t)
        {
            return Some(dt.timestamp_millis());
        }
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t.parse().ok()?;
        return match t.len() {
            9 | 10 => Some(n * 1000),
            12 | 13 => Some(n),
            _ => None,
        };
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(t) {
        return Some(dt.timestamp_millis());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Some(dt.timestamp_millis());
        }
    }
    // `2026-03-04 14:22:10 UTC`
    if let Some(rest) = t.strip_suffix(" UTC").or_else(|| t.strip_suffix(" GMT")) {
        return parse_instant(rest, chrono_tz::UTC, &[]);
    }
    // Local forms whose day and month order cannot be mistaken: ISO, `2026/03/04`, and the
    // dotted European `04.03.2026`. Slashed day-first or month-first dates (`03/04/2026`)
    // are ambiguous and need `date_formats` in a mapping.
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
        "%d.%m.%Y, %H:%M",
    ] {
        if let Ok(ndt) = NaiveDateTime::parse_from_str(t, f) {
            return local_to_utc(ndt, tz);
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return local_to_utc(d.and_hms_opt(0, 0, 0)?, tz);
        }
    }
    None
}

fn local_to_utc(ndt: NaiveDateTime, tz: Tz) -> Option<i64> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&ndt) {
        LocalResult::Single(dt) => Some(dt.timestamp_millis()),
        LocalResult::Ambiguous(a, _) => Some(a.timestamp_millis()),
        LocalResult::None => {
            // In a DST gap: the same wall time an hour later exists.
            let later = ndt + chrono::Duration::hours(1);
            tz.from_local_datetime(&later)
                .earliest()
                .map(|dt| dt.timestamp_millis())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> NormalizeContext {
        NormalizeContext {
            source: "s".into(),
            default_kind: InteractionKind::Ticket,
            default_location: None,
            timezone: None,
            fallback_timezone: chrono_tz::UTC,
            date_formats: vec![],
            csat_scale: "1-5".into(),
            ces_scale: "1-7".into(),
            locations: LocationIndex::new(&[Location {
                id: "berlin".into(),
                name: "Berlin".into(),
                timezone: "Europe/Berlin".into(),
                country: Some("DE".into()),
                language: Some("de".into()),
                aliases: vec!["store_berlin".into()],
            }]),
            guard: std::sync::Arc::new(
                crate::pipeline::identify::IdentityGuard::new(
                    &["+49 30 7654321".into()],
                    &["info".into(), "noreply".into()],
                )
                .0,
            ),
        }
    }

    fn rec(pairs: &[(Field, &str)]) -> SourceRecord {
        let mut r = SourceRecord {
            origin: "f.csv".into(),
            line: Some(7),
            raw: "{}".into(),
            ..Default::default()
        };
        for (f, v) in pairs {
            r.set(*f, f.as_str(), *v);
        }
        r
    }

    #[test]
    fn dates_in_many_forms() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let utc = chrono_tz::UTC;
        let z = parse_instant("2026-03-04T13:22:10Z", utc, &[]).unwrap();
        assert_eq!(parse_instant("2026-03-04 14:22:10", berlin, &[]), Some(z));
        assert_eq!(
            parse_instant("2026-03-04T14:22:10+01:00", utc, &[]),
            Some(z)
        );
        assert_eq!(
            parse_instant("2026-03-04T13:22:10.000000Z", utc, &[]),
            Some(z)
        );
        assert_eq!(parse_instant("1772630530", utc, &[]), Some(z));
        assert_eq!(
            parse_instant("04.03.2026 14:22", berlin, &["%d.%m.%Y %H:%M".into()]),
            Some(z - 10_000)
        );
        assert_eq!(parse_instant("31/02/2026 25:61", berlin, &[]), None);
        assert_eq!(parse_instant("04.03.2026 14:22:10", berlin, &[]), Some(z));
        assert_eq!(parse_instant("2026/03/04 14:22:10", berlin, &[]), Some(z));
        assert_eq!(
            parse_instant("03/04/2026 14:22", berlin, &[]),
            None,
            "ambiguous"
        );
        assert_eq!(
            parse_instant("03/04/2026 14:22", berlin, &["%m/%d/%Y %H:%M".into()]),
            Some(z - 10_000)
        );
        // 02:30 does not exist in Berlin on 2026-03-29; it becomes 03:30 CEST = 01:30Z.
        assert_eq!(
            parse_instant("2026-03-29 02:30:00", berlin, &[]),
            parse_instant("2026-03-29T01:30:00Z", utc, &[])
        );
    }

    #[test]
    fn decimal_commas_and_scales() {
        assert_eq!(parse_number("4,0"), Some(4.0));
        assert_eq!(parse_number(" 3.5 "), Some(3.5));
        assert_eq!(parse_number("1,234.5"), None);
        assert!(parse_csat("4", "1-5").unwrap().unwrap().satisfied);
        assert!(!parse_csat("3", "1-5").unwrap().unwrap().satisfied);
        assert!(parse_csat("good", "1-5").unwrap().unwrap().satisfied);
        assert_eq!(parse_csat("offered", "1-5").unwrap(), None);
        assert!(parse_ces("5", "1-7").unwrap().agrees);
        assert!(parse_ces("2", "1-5-reversed").unwrap().agrees);
        assert!(parse_ces("9", "1-7").is_err());
    }

    #[test]
    fn errors_name_the_field_and_the_expected_form() {
        let r = rec(&[(Field::ExternalId, "1"), (Field::OccurredAt, "yesterday")]);
        let e = normalize(&r, &cx()).unwrap_err();
        assert_eq!(e.line, Some(7));
        assert_eq!(e.field.as_deref(), Some("occurred_at"));
        assert!(e.expected.contains("date"));
        let r = rec(&[
            (Field::ExternalId, "1"),
            (Field::OccurredAt, "2026-01-01"),
            (Field::Stars, "sehr gut"),
        ]);
        assert_eq!(
            normalize(&r, &cx()).unwrap_err().field.as_deref(),
            Some("stars")
        );
    }

    #[test]
    fn locations_resolve_by_alias_and_give_zone_and_phone_region() {
        let r = rec(&[
            (Field::ExternalId, "1"),
            (Field::OccurredAt, "2026-01-01 10:00:00"),
            (Field::Location, " Store_Berlin "),
            (Field::Phone, "030 1234567"),
            (Field::ReplyText, "Danke!"),
            (Field::ReplyAt, "2026-01-02 10:00:00"),
        ]);
        let out = normalize(&r, &cx()).unwrap();
        let i = &out[0].interaction;
        assert_eq!(i.location_id.as_deref(), Some("berlin"));
        assert_eq!(i.occurred_at_ms, 1_767_258_000_000);
        assert!(
            i.identities
                .contains(&Identity::new(IdentityKind::Phone, "+49301234567"))
        );
        assert_eq!(out[0].language_hint.as_deref(), Some("de"));
        assert_eq!(out[1].interaction.kind, InteractionKind::Reply);
        assert_eq!(out[1].interaction.external_id, "1#reply");
    }

    #[test]
    fn a_record_signed_with_a_name_only_gets_its_own_anchor() {
        let review = rec(&[
            (Field::ExternalId, "r1"),
            (Field::Kind, "review"),
            (Field::OccurredAt, "2026-01-01 10:00:00"),
            (Field::Name, "Anna Müller"),
            (Field::ReplyText, "Thanks, Anna"),
        ]);
        let out = normalize(&review, &cx()).unwrap();
        let ids = &out[0].interaction.identities;
        assert!(ids.contains(&Identity::item("s", "r1")), "{ids:?}");
        assert!(ids.iter().all(|i| !i.kind.is_personal()));
        // The owner's reply is not the customer's: no anchor, no customer.
        assert!(out[1].interaction.identities.is_empty(), "{:?}", out[1]);
        // A blocked inbox beside the name: the anchor, still never a person's identity.
        let blocked = rec(&[
            (Field::ExternalId, "r2"),
            (Field::OccurredAt, "2026-01-01 10:00:00"),
            (Field::Email, "info@shop.example"),
            (Field::Name, "Anna Müller"),
        ]);
        let ids = normalize(&blocked, &cx()).unwrap()[0]
            .interaction
            .identities
            .clone();
        assert_eq!(
            ids.iter().filter(|i| i.kind.is_strong()).count(),
            1,
            "{ids:?}"
        );
        assert_eq!(Identity::item("s", "r2").key(), "item:s:r2");
        // With an email there is no anchor; without a name there is none either.
        let ticket = rec(&[
            (Field::ExternalId, "t1"),
            (Field::OccurredAt, "2026-01-01 10:00:00"),
            (Field::Email, "anna@x.org"),
            (Field::Name, "Anna Müller"),
        ]);
        let ids = normalize(&ticket, &cx()).unwrap()[0]
            .interaction
            .identities
            .clone();
        assert!(ids.iter().all(|i| i.kind != IdentityKind::Item), "{ids:?}");
        let anonymous = rec(&[
            (Field::ExternalId, "a1"),
            (Field::OccurredAt, "2026-01-01 10:00:00"),
            (Field::Text, "meh"),
        ]);
        assert!(
            normalize(&anonymous, &cx()).unwrap()[0]
                .interaction
                .identities
                .is_empty()
        );
    }

    #[test]
    fn blocked_identities_stay_in_raw_and_join_nobody() {
        let r = rec(&[
            (Field::ExternalId, "1"),
            (Field::OccurredAt, "2026-01-01 10:00:00"),
            (Field::Location, "berlin"),
            (Field::Email, "Info@Shop.example"),
            (Field::Phone, "030 7654321"),
        ]);
        let out = normalize(&r, &cx()).unwrap();
        let i = &out[0].interaction;
        assert!(
            i.identities.iter().all(|id| !id.kind.is_strong()),
            "{:?}",
            i.identities
        );
        let r = rec(&[
            (Field::ExternalId, "2"),
            (Field::OccurredAt, "2026-01-01 10:00:00"),
            (Field::Email, "ana@shop.example"),
        ]);
        assert_eq!(
            normalize(&r, &cx()).unwrap()[0]
                .interaction
                .identities
                .len(),
            1
        );
    }

    #[test]
    fn the_hash_follows_content_not_raw() {
        let mut a = rec(&[(Field::ExternalId, "1"), (Field::OccurredAt, "2026-01-01")]);
        let h1 = normalize(&a, &cx()).unwrap()[0]
            .interaction
            .content_hash
            .clone();
        a.raw = "{\"generated_timestamp\": 5}".into();
        let h2 = normalize(&a, &cx()).unwrap()[0]
            .interaction
            .content_hash
            .clone();
        assert_eq!(h1, h2);
        a.set(Field::Text, "text", "edited");
        let h3 = normalize(&a, &cx()).unwrap()[0]
            .interaction
            .content_hash
            .clone();
        assert_ne!(h1, h3);
    }
}
