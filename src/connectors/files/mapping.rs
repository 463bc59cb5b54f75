//! The column mapping of a generic export: which column or JSON path holds which field.
//!
//! ```toml
//! format = "csv"                  # csv | json | jsonl; default: from the file extension
//! kind = "review"                 # default kind of the records
//! delimiter = "auto"              # auto | "," | ";" | "\t" | "|"
//! timezone = "Europe/Berlin"      # for local times without an offset
//! date_formats = ["%d.%m.%Y %H:%M"]
//! records_path = "data"           # json: the array of records under this key
//! csat_scale = "1-5"
//! ces_scale = "1-7"
//! [fields]
//! external_id = "Review ID"       # a column, a JSON path (`person.email`), or a list of
//! text = ["Title", "Body"]        # candidates: the first one present is used
//! ```

use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read mapping `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mapping `{path}` is not valid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Many(Vec<String>),
}

impl Columns {
    pub fn names(&self) -> Vec<&str> {
        match self {
            Columns::One(s) => vec![s.as_str()],
            Columns::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub format: Option<String>,
    pub kind: Option<String>,
    pub delimiter: Option<String>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub date_formats: Vec<String>,
    pub records_path: Option<String>,
    pub csat_scale: Option<String>,
    pub ces_scale: Option<String>,
    /// Columns whose values may name a location (custom fields, tags).
    #[serde(default)]
    pub location_candidates: Vec<String>,
    /// Columns holding platform ids, as `namespace = "column"`.
    #[serde(default)]
    pub platform_ids: BTreeMap<String, String>,
    #[serde(default)]
    pub fields: BTreeMap<String, Columns>,
}

impl Mapping {
    /// A built-in preset mapping with what a user's mapping adds: its date formats (tried
    /// first), zone, delimiter and scales, and its `[fields]`, which win over the preset's
    /// columns (e.g. for a renamed or localized header).
    pub fn with_user(mut self, user: Option<&Mapping>) -> Mapping {
        let Some(u) = user else { return self };
        let mut formats = u.date_formats.clone();
        formats.extend(std::mem::take(&mut self.date_formats));
        self.date_formats = formats;
        if u.timezone.is_some() {
            self.timezone = u.timezone.clone();
        }
        if u.delimiter.is_some() {
            self.delimiter = u.delimiter.clone();
        }
        if u.csat_scale.is_some() {
            self.csat_scale = u.csat_scale.clone();
        }
        if u.ces_scale.is_some() {
            self.ces_scale = u.ces_scale.clone();
        }
        self.location_candidates
            .extend(u.location_candidates.iter().cloned());
        self.platform_ids.extend(u.platform_ids.clone());
        self.fields.extend(u.fields.clone());
        self
    }

    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, MappingError> {
        let m: Mapping = toml::from_str(text).map_err(|e| MappingError::Invalid {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        let mut problems = Vec::new();
        for key in m.fields.keys() {
            if Field::parse(key).is_none() {
                problems.push(format!(
                    "[fields] `{key}` is not a field; fix: use one of {}",
                    Field::ALL.map(|f| f.as_str()).join(", ")
                ));
            }
        }
        if let Some(tz) = &m.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            problems.push(format!(
                "timezone: `{tz}` is not an IANA time zone; fix: e.g. `Europe/Berlin`"
            ));
        }
        if let Some(k) = &m.kind
            && crate::model::InteractionKind::parse(k).is_none()
        {
            problems.push(format!("kind: `{k}` is not a kind; fix: use review, reply, mention, ticket, ticket_comment or survey_response"));
        }
        if let Some(f) = &m.format
            && !matches!(f.as_str(), "csv" | "json" | "jsonl")
        {
            problems.push(format!(
                "format: `{f}` is not a format; fix: use csv, json or jsonl"
            ));
        }
        if let Some(d) = &m.delimiter
            && !matches!(d.as_str(), "auto" | "," | ";" | "\t" | "|")
        {
            problems.push(format!(
                "delimiter: `{d}` is not supported; fix: use auto, \",\", \";\", \"\\t\" or \"|\""
            ));
        }
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(MappingError::Invalid {
                path: origin.to_string(),
                message: problems.join("; "),
            })
        }
    }

    /// What a mapping must name to read records on its own (the generic presets); a
    /// mapping that only refines a preset (date formats, zone) needs none of it.
    pub fn missing_core_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.fields.contains_key("external_id") {
            out.push("[fields] `external_id` is required; fix: name the column that holds the record's id".into());
        }
        if !self.fields.contains_key("occurred_at") {
            out.push(
                "[fields] `occurred_at` is required; fix: name the column that holds the date"
                    .into(),
            );
        }
        out
    }

    pub fn delimiter_byte(&self) -> Option<u8> {
        match self.delimiter.as_deref() {
            None | Some("auto") => None,
            Some(d) => d.bytes().next(),
        }
    }

    pub fn fields(&self) -> Vec<(Field, &Columns)> {
        self.fields
            .iter()
            .filter_map(|(k, v)| Field::parse(k).map(|f| (f, v)))
            .collect()
    }
}

/// A mapping resolved against one CSV header: field -> candidate column indexes.
#[derive(Debug, Clone)]
pub struct ResolvedColumns {
    fields: Vec<(Field, Vec<(usize, String)>)>,
    candidates: Vec<usize>,
    platform: Vec<(String, usize)>,
}

fn find_column(header: &[String], name: &str) -> Option<usize> {
    header.iter().position(|h| h.trim() == name).or_else(|| {
        let n = name.trim().to_lowercase();
        header.iter().position(|h| h.trim().to_lowercase() == n)
    })
}

impl ResolvedColumns {
    /// Resolves the mapping against `header`; errors name the columns that are missing.
    pub fn new(mapping: &Mapping, header: &[String]) -> Result<Self, String> {
        let mut fields = Vec::new();
        let mut missing = Vec::new();
        for (field, cols) in mapping.fields() {
            let found: Vec<(usize, String)> = cols
                .names()
                .iter()
                .filter_map(|n| find_column(header, n).map(|i| (i, header[i].clone())))
                .collect();
            if found.is_empty() && matches!(field, Field::ExternalId | Field::OccurredAt) {
                missing.push(format!(
                    "{} (looked for {})",
                    field.as_str(),
                    cols.names()
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            fields.push((field, found));
        }
        if !missing.is_empty() {
            return Err(format!(
                "the header lacks columns for {}; the header is: {}",
                missing.join("; "),
                header.join(" | ")
            ));
        }
        let candidates = mapping
            .location_candidates
            .iter()
            .filter_map(|n| find_column(header, n))
            .collect();
        let platform = mapping
            .platform_ids
            .iter()
            .filter_map(|(ns, col)| find_column(header, col).map(|i| (ns.clone(), i)))
            .collect();
        Ok(Self {
            fields,
            candidates,
            platform,
        })
    }

    /// Fills `rec` from one row's values.
    pub fn apply(&self, values: &[String], rec: &mut SourceRecord) {
        for (field, cols) in &self.fields {
            // Name the column even when it is empty, so a missing value's error says where.
            if let Some((_, label)) = cols.first() {
                rec.labels.insert(*field, label.clone());
            }
            for (i, label) in cols {
                if let Some(v) = values.get(*i)
                    && !v.trim().is_empty()
                {
                    rec.set(*field, label, v.as_str());
                    break;
                }
            }
        }
        for i in &self.candidates {
            if let Some(v) = values.get(*i) {
                // Tags columns hold several values.
                rec.location_candidates.extend(
                    v.split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                );
                rec.location_candidates.push(v.trim().to_string());
            }
        }
        for (ns, i) in &self.platform {
            if let Some(v) = values.get(*i)
                && !v.trim().is_empty()
            {
                rec.platform_ids.push(format!("{ns}:{}", v.trim()));
            }
        }
    }
}

/// Looks up a dotted path (`person.email`, `tags.0`) in a JSON value; scalars become text.
pub fn json_path<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = match cur {
            serde_json::Value::Object(m) => m.get(part)?,
            serde_json::Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The text of a scalar JSON value; `None` for null, objects and arrays.
pub fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Fills `rec` from a JSON object with the mapping's paths.
pub fn apply_json(mapping: &Mapping, v: &serde_json::Value, rec: &mut SourceRecord) {
    for (field, cols) in mapping.fields() {
        for path in cols.names() {
            if let Some(text) = json_path(v, path).and_then(json_text)
                && !text.trim().is_empty()
            {
                rec.set(field, path, text);
                break;
            }
        }
    }
    for path in &mapping.location_candidates {
        match json_path(v, path) {
            Some(serde_json::Value::Array(a)) => rec
                .location_candidates
                .extend(a.iter().filter_map(json_text)),
            Some(other) => rec.location_candidates.extend(json_text(other)),
            None => {}
        }
    }
    for (ns, path) in &mapping.platform_ids {
        if let Some(t) = json_path(v, path).and_then(json_text) {
            rec.platform_ids.push(format!("{ns}:{t}"));
        }
    }
}
