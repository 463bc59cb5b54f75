//! File import: reads an export file as a stream of [`SourceRecord`]s and per-row
//! rejects. It only reads; the runner stores what it yields.
//!
//! Handles what real exports contain: UTF-8 BOM, UTF-16 with BOM, `;` delimiters with
//! decimal commas, multi-line quoted cells, CRLF, ragged rows (mapped by header), invalid
//! UTF-8 in a row (that row is rejected), JSON arrays (streamed), JSON Lines and
//! single-document pages.

pub mod decode;
pub(crate) mod delighted;
pub mod feed;
pub mod freshdesk;
pub mod google;
pub mod helpscout;
pub(crate) mod intercom;
pub mod jsonld;
pub mod mapping;
pub(crate) mod social;
mod surveys;
pub mod typeform;
pub(crate) mod zendesk;

use crate::model::InteractionKind;
use crate::pipeline::normalize::{RowError, SourceRecord};
use mapping::{Mapping, ResolvedColumns, apply_json};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::cell::Cell;
use std::io::{BufRead, Read};
use std::ops::ControlFlow;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}`: {message}")]
    Format { path: String, message: String },
    #[error(
        "preset `{0}` needs a mapping; fix: pass --mapping FILE (see `tideline import --help`)"
    )]
    MappingRequired(&'static str),
    #[error(transparent)]
    Mapping(#[from] mapping::MappingError),
}

/// The import presets: how a file is read and which fields it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    GenericCsv,
    GenericJson,
    ZendeskCsv,
    ZendeskJson,
    DelightedJson,
    QualtricsCsv,
    SurveyMonkeyCsv,
    GoogleTakeout,
    FreshdeskCsv,
    FreshdeskJson,
    HelpscoutCsv,
    HelpscoutJson,
    IntercomCsv,
    IntercomJson,
    TypeformJson,
    BlueskyJson,
    MastodonJson,
    RedditJson,
    XJson,
    FeedJson,
    Jsonld,
}

impl Preset {
    pub const ALL: [Preset; 21] = [
        Preset::GenericCsv,
        Preset::GenericJson,
        Preset::ZendeskCsv,
        Preset::ZendeskJson,
        Preset::DelightedJson,
        Preset::QualtricsCsv,
        Preset::SurveyMonkeyCsv,
        Preset::GoogleTakeout,
        Preset::FreshdeskCsv,
        Preset::FreshdeskJson,
        Preset::HelpscoutCsv,
        Preset::HelpscoutJson,
        Preset::IntercomCsv,
        Preset::IntercomJson,
        Preset::TypeformJson,
        Preset::BlueskyJson,
        Preset::MastodonJson,
        Preset::RedditJson,
        Preset::XJson,
        Preset::FeedJson,
        Preset::Jsonld,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::GenericCsv => "generic-csv",
            Preset::GenericJson => "generic-json",
            Preset::ZendeskCsv => "zendesk-csv",
            Preset::ZendeskJson => "zendesk-json",
            Preset::DelightedJson => "delighted-json",
            Preset::QualtricsCsv => "qualtrics-csv",
            Preset::SurveyMonkeyCsv => "surveymonkey-csv",
            Preset::GoogleTakeout => "google-takeout",
            Preset::FreshdeskCsv => "freshdesk-csv",
            Preset::FreshdeskJson => "freshdesk-json",
            Preset::HelpscoutCsv => "helpscout-csv",
            Preset::HelpscoutJson => "helpscout-json",
            Preset::IntercomCsv => "intercom-csv",
            Preset::IntercomJson => "intercom-json",
            Preset::TypeformJson => "typeform-json",
            Preset::BlueskyJson => "bluesky-json",
            Preset::MastodonJson => "mastodon-json",
            Preset::RedditJson => "reddit-json",
            Preset::XJson => "x-json",
            Preset::FeedJson => "feed-json",
            Preset::Jsonld => "jsonld",
        }
    }

    pub fn parse(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The source name used when `--source` is not given.
    pub fn default_source(self) -> &'static str {
        match self {
            Preset::GenericCsv | Preset::GenericJson => "import",
            Preset::ZendeskCsv | Preset::ZendeskJson => "zendesk",
            Preset::DelightedJson => "delighted",
            Preset::QualtricsCsv => "qualtrics",
            Preset::SurveyMonkeyCsv => "surveymonkey",
            Preset::GoogleTakeout => "google",
            Preset::FreshdeskCsv | Preset::FreshdeskJson => "freshdesk",
            Preset::HelpscoutCsv | Preset::HelpscoutJson => "helpscout",
            Preset::IntercomCsv | Preset::IntercomJson => "intercom",
            Preset::TypeformJson => "typeform",
            Preset::BlueskyJson => "bluesky",
            Preset::MastodonJson => "mastodon",
            Preset::RedditJson => "reddit",
            Preset::XJson => "x",
            Preset::FeedJson => "feed",
            Preset::Jsonld => "jsonld",
        }
    }

    pub fn default_kind(self, mapping: Option<&Mapping>) -> InteractionKind {
        match self {
            Preset::ZendeskCsv
            | Preset::ZendeskJson
            | Preset::FreshdeskCsv
            | Preset::FreshdeskJson
            | Preset::HelpscoutCsv
            | Preset::HelpscoutJson
            | Preset::IntercomCsv
            | Preset::IntercomJson => InteractionKind::Ticket,
            Preset::DelightedJson
            | Preset::QualtricsCsv
            | Preset::SurveyMonkeyCsv
            | Preset::TypeformJson => InteractionKind::SurveyResponse,
            Preset::GoogleTakeout | Preset::Jsonld => InteractionKind::Review,
            Preset::BlueskyJson
            | Preset::MastodonJson
            | Preset::RedditJson
            | Preset::XJson
            | Preset::FeedJson => InteractionKind::Mention,
            Preset::GenericCsv | Preset::GenericJson => mapping
                .and_then(|m| m.kind.as_deref())
                .and_then(InteractionKind::parse)
                .unwrap_or(InteractionKind::Review),
        }
    }

    fn is_csv(self) -> bool {
        matches!(
            self,
            Preset::GenericCsv
                | Preset::ZendeskCsv
                | Preset::QualtricsCsv
                | Preset::SurveyMonkeyCsv
                | Preset::FreshdeskCsv
                | Preset::HelpscoutCsv
                | Preset::IntercomCsv
        )
    }
}

/// One thing read from a file.
#[derive(Debug)]
pub enum Item {
    Record(SourceRecord),
    Reject(RowError),
}

/// Reads `path` with `preset`, calling `sink` for every record or reject in file order.
/// The sink returns `ControlFlow::Break` to stop early. Errors are file-level (cannot
/// open, no header, unusable mapping); row-level problems arrive as `Item::Reject`.
pub fn read_file(
    path: &Path,
    preset: Preset,
    mapping: Option<&Mapping>,
    bytes_read: Option<Arc<AtomicU64>>,
    sink: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> Result<(), ImportError> {
    if preset == Preset::GoogleTakeout {
        // A folder of files, read whole (a few thousand reviews at most).
        return google::read_takeout(path, sink);
    }
    let origin = path.display().to_string();
    let io = |source| ImportError::Io {
        path: origin.clone(),
        source,
    };
    let reader = decode::open_utf8(path, bytes_read).map_err(io)?;
    if matches!(preset, Preset::GenericCsv | Preset::GenericJson) {
        let Some(m) = mapping else {
            return Err(ImportError::MappingRequired(preset.name()));
        };
        let missing = m.missing_core_fields();
        if !missing.is_empty() {
            return Err(ImportError::Format {
                path: origin.clone(),
                message: format!("the mapping is incomplete: {}", missing.join("; ")),
            });
        }
    }
    if preset.is_csv() {
        read_csv(reader, &origin, preset, mapping, sink)
    } else {
        read_json(reader, &origin, preset, mapping, sink)
    }
}

fn read_csv(
    reader: impl BufRead,
    origin: &str,
    preset: Preset,
    mapping: Option<&Mapping>,
    sink: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> Result<(), ImportError> {
    let fmt_err = |message: String| ImportError::Format {
        path: origin.to_string(),
        message,
    };
    let (head, reader) = decode::peek_first_line(reader).map_err(|source| ImportError::Io {
        path: origin.to_string(),
        source,
    })?;
    let delimiter = mapping
        .and_then(Mapping::delimiter_byte)
        .unwrap_or_else(|| decode::sniff_delimiter(&head));
    let (reader, newlines) = decode::NewlineIndex::new(reader);
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let mut header: Vec<String> = csv
        .byte_headers()
        .map_err(|e| fmt_err(format!("cannot read the header line: {e}")))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(fmt_err("the file is empty or has no header line".into()));
    }
    // Survey exports carry more header rows below the first.
    let mut more_header = |n: usize| -> Result<Vec<Vec<String>>, ImportError> {
        let mut rows = Vec::new();
        let mut r = csv::StringRecord::new();
        for i in 0..n {
            if !csv
                .read_record(&mut r)
                .map_err(|e| fmt_err(format!("cannot read header row {}: {e}", i + 2)))?
            {
                return Err(fmt_err(format!(
                    "the export has {} header rows; this file ends after {}; fix: export again with the preset's default options",
                    n + 1,
                    i + 1
                )));
            }
            rows.push(r.iter().map(|s| s.trim().to_string()).collect());
        }
        Ok(rows)
    };
    let mut zone = None;
    let built_in;
    let mapping = match preset {
        Preset::ZendeskCsv => {
            built_in = zendesk::csv_mapping_with(&header, mapping);
            &built_in
        }
        Preset::QualtricsCsv => {
            let rows = more_header(2)?;
            zone = surveys::qualtrics_zone(&rows[1]);
            built_in = surveys::qualtrics_mapping(&header, &rows[0], mapping);
            &built_in
        }
        Preset::SurveyMonkeyCsv => {
            let rows = more_header(1)?;
            header = surveys::surveymonkey_header(&header, &rows[0]);
            built_in = surveys::surveymonkey_mapping(&header, mapping);
            &built_in
        }
        Preset::FreshdeskCsv => {
            built_in = freshdesk::csv_mapping_with(&header, mapping);
            &built_in
        }
        Preset::HelpscoutCsv => {
            built_in = helpscout::csv_mapping_with(&header, mapping);
            &built_in
        }
        Preset::IntercomCsv => {
            built_in = intercom::csv_mapping_with(&header, mapping);
            &built_in
        }
        _ => mapping.ok_or(ImportError::MappingRequired(preset.name()))?,
    };
    let survey = matches!(preset, Preset::QualtricsCsv | Preset::SurveyMonkeyCsv);
    let columns = ResolvedColumns::new(mapping, &header).map_err(fmt_err)?;
    let mut record = csv::ByteRecord::new();
    loop {
        let line_before = csv.position().line();
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // The csv parser only fails on IO; report it against the row.
                let reject = RowError {
                    origin: origin.to_string(),
                    line: Some(line_before),
                    field: None,
                    expected: "a CSV row".into(),
                    message: e.to_string(),
                    raw: String::new(),
                };
                if sink(Item::Reject(reject)).is_break() {
                    return Ok(());
                }
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(fmt_err(format!("read failed at line {line_before}: {e}")));
                }
                continue;
            }
        }
        let line = match record.position() {
            Some(p) => newlines.borrow_mut().line_at(p.byte()),
            None => line_before,
        };
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // a blank row from a spreadsheet: nothing to lose
        }
        let mut item = csv_row(&header, &record, origin, line, &columns);
        if survey && let Item::Record(rec) = &mut item {
            surveys::finish_record(rec, zone, &mapping.date_formats);
        }
        if preset == Preset::HelpscoutCsv
            && let Item::Record(rec) = &mut item
        {
            helpscout::finish_csv_record(rec);
        }
        if preset == Preset::IntercomCsv
            && let Item::Record(rec) = &mut item
        {
            intercom::finish_csv_record(rec);
        }
        if sink(item).is_break() {
            return Ok(());
        }
    }
    Ok(())
}

fn csv_row(
    header: &[String],
    record: &csv::ByteRecord,
    origin: &str,
    line: u64,
    columns: &ResolvedColumns,
) -> Item {
    let mut values = Vec::with_capacity(record.len());
    let mut bad_column = None;
    for (i, f) in record.iter().enumerate() {
        match std::str::from_utf8(f) {
            Ok(s) => values.push(s.to_string()),
            Err(_) => {
                bad_column.get_or_insert(i);
                values.push(String::from_utf8_lossy(f).into_owned());
            }
        }
    }
    let raw = raw_row(header, &values);
    if let Some(i) = bad_column {
        return Item::Reject(RowError {
            origin: origin.to_string(),
            line: Some(line),
            field: Some(format!(
                "`{}`",
                header.get(i).map(String::as_str).unwrap_or("?")
            )),
            expected: "UTF-8 text (re-export the file as UTF-8 or UTF-16)".into(),
            message: "the cell is not valid UTF-8".into(),
            raw,
        });
    }
    let mut rec = SourceRecord {
        origin: origin.to_string(),
        line: Some(line),
        raw,
        ..Default::default()
    };
    columns.apply(&values, &mut rec);
    Item::Record(rec)
}

/// A CSV row as a JSON object keyed by header, in header order; extra cells of a ragged
/// row are kept under `_extra`.
fn raw_row(header: &[String], values: &[String]) -> String {
    let mut out: Vec<u8> =
        Vec::with_capacity(values.iter().map(|v| v.len() + 8).sum::<usize>() + 256);
    let put = |out: &mut Vec<u8>, s: &str| serde_json::to_writer(out, s).expect("a string");
    out.push(b'{');
    for (i, (h, v)) in header.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put(&mut out, h);
        out.push(b':');
        put(&mut out, v);
    }
    if values.len() > header.len() {
        if !header.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"_extra\":");
        serde_json::to_writer(&mut out, &values[header.len()..]).expect("strings");
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON is UTF-8")
}

fn read_json(
    mut reader: impl BufRead + Send,
    origin: &str,
    preset: Preset,
    mapping: Option<&Mapping>,
    sink: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> Result<(), ImportError> {
    let io = |source| ImportError::Io {
        path: origin.to_string(),
        source,
    };
    // Skip leading white space to see what the document is.
    let first = loop {
        let buf = reader.fill_buf().map_err(io)?;
        if buf.is_empty() {
            return Ok(()); // an empty file holds no records
        }
        let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if ws < buf.len() {
            break buf[ws];
        }
        let n = buf.len();
        reader.consume(n);
    };
    let records_path = mapping.and_then(|m| m.records_path.clone());
    if first == b'[' && records_path.is_none() {
        return stream_array(reader, origin, preset, mapping, sink);
    }
    // JSON Lines when the first line is a whole value; otherwise one document.
    let mut first_line = String::new();
    reader.read_line(&mut first_line).map_err(io)?;
    let mut line_no = 1u64;
    if serde_json::from_str::<&RawValue>(first_line.trim()).is_ok() && records_path.is_none() {
        let mut line = first_line;
        loop {
            let text = line.trim();
            if !text.is_empty() {
                let flow = json_value(text, origin, line_no, preset, mapping, sink);
                if flow.is_break() {
                    return Ok(());
                }
            }
            line.clear();
            if reader.read_line(&mut line).map_err(io)? == 0 {
                break;
            }
            line_no += 1;
        }
        return Ok(());
    }
    let mut doc = first_line;
    reader.read_to_string(&mut doc).map_err(io)?;
    json_document(&doc, origin, preset, mapping, records_path.as_deref(), sink)
}

/// One JSON value from a line: a record, or (Zendesk) a page of them.
fn json_value(
    text: &str,
    origin: &str,
    line: u64,
    preset: Preset,
    mapping: Option<&Mapping>,
    sink: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> ControlFlow<()> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if preset == Preset::ZendeskJson && zendesk::is_page(&v) => {
            let side = zendesk::Sideloads::of(&v);
            for t in v["tickets"].as_array().into_iter().flatten() {
                sink(Item::Record(page_ticket(t, &side, origin, Some(line))))?;
            }
            ControlFlow::Continue(())
        }
        // A saved page of the Intercom search or Typeform responses on one line.
        Ok(v)
            if (preset == Preset::IntercomJson && intercom::is_page(&v))
                || (preset == Preset::TypeformJson && typeform::is_page(&v)) =>
        {
            let key = if preset == Preset::IntercomJson {
                "conversations"
            } else {
                "items"
            };
            for item in v[key].as_array().into_iter().flatten() {
                let raw = item.to_string();
                sink(record_from_value(
                    item,
                    &raw,
                    origin,
                    Some(line),
                    preset,
                    mapping,
                ))?;
            }
            ControlFlow::Continue(())
        }
        Ok(v) => match social::page_items(preset, &v) {
            Some(items) => {
                for item in items {
                    let raw = item.to_string();
                    sink(record_from_value(
                        &item,
                        &raw,
                        origin,
                        Some(line),
                        preset,
                        mapping,
                    ))?;
                }
                ControlFlow::Continue(())
            }
            None => sink(record_from_value(
                &v,
                text,
                origin,
                Some(line),
                preset,
                mapping,
            )),
        },
        Err(e) => sink(Item::Reject(RowError {
            origin: origin.to_string(),
            line: Some(line),
            field: None,
            expected: "one JSON value per line".into(),
            message: format!("invalid JSON: {e}"),
            raw: text.to_string(),
        })),
    }
}

/// A ticket of an export page. Its raw text keeps what the page sideloaded for it, as
/// `{"ticket": ..., "requester": ..., "metric_set": ...}`, so a replay and the indicators
/// (reply and resolution times) read the same record.
pub(crate) fn page_ticket(
    t: &Value,
    side: &zendesk::Sideloads,
    origin: &str,
    line: Option<u64>,
) -> SourceRecord {
    let requester = t
        .get("requester_id")
        .and_then(Value::as_i64)
        .and_then(|id| side.users.get(&id));
    let metric_set = t
        .get("id")
        .and_then(Value::as_i64)
        .and_then(|id| side.metric_sets.get(&id));
    let raw = if requester.is_none() && metric_set.is_none() {
        t.to_string()
    } else {
        let mut w = serde_json::Map::new();
        w.insert("ticket".into(), t.clone());
        if let Some(u) = requester {
            w.insert("requester".into(), u.clone());
        }
        if let Some(m) = metric_set {
            w.insert("metric_set".into(), m.clone());
        }
        Value::Object(w).to_string()
    };
    let mut rec = SourceRecord {
        origin: origin.to_string(),
        line,
        raw,
        ..Default::default()
    };
    zendesk::ticket_record(t, requester, &mut rec);
    rec
}

fn json_document(
    doc: &str,
    origin: &str,
    preset: Preset,
    mapping: Option<&Mapping>,
    records_path: Option<&str>,
    sink: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> Result<(), ImportError> {
    let fmt_err = |message: String| ImportError::Format {
        path: origin.to_string(),
        message,
    };
    let line_of = |raw: &RawValue| -> u64 {
        let offset = raw.get().as_ptr() as usize - doc.as_ptr() as usize;
        doc[..offset].bytes().filter(|b| *b == b'\n').count() as u64 + 1
    };
    let root: &RawValue = serde_json::from_str(doc).map_err(|e| {
        fmt_err(format!(
            "not valid JSON: {e}; fix: export again, or use JSON Lines so a bad line is quarantined alone"
        ))
    })?;
    // A saved page holds its records under a key; a single record does not.
    let has_key = |k: &str| {
        serde_json::from_str::<std::collections::HashMap<&str, &RawValue>>(root.get())
            .is_ok_and(|o| o.contains_key(k))
    };
    let key = match (preset, records_path) {
        (_, Some(p)) => Some(p.to_string()),
        (Preset::ZendeskJson, None) => Some("tickets".to_string()),
        (Preset::IntercomJson, None) if has_key("conversations") => {
            Some("conversations".to_string())
        }
        (Preset::TypeformJson, None) if has_key("items") => Some("items".to_string()),
        _ => None,
    };
    let Some(key) = key else {
        let v: Value = serde_json::from_str(root.get()).expect("already parsed");
        // A saved API page of a social connector: its items, numbered from 1.
        if let Some(items) = social::page_items(preset, &v) {
            for (i, item) in items.iter().enumerate() {
                let raw = item.to_string();
                let flow = sink(record_from_value(
                    item,
                    &raw,
                    origin,
                    Some(i as u64 + 1),
                    preset,
                    mapping,
                ));
                if flow.is_break() {
                    break;
                }
            }
            return Ok(());
        }
        // A single record.
        let _ = sink(record_from_value(
            &v,
            root.get(),
            origin,
            Some(line_of(root)),
            preset,
            mapping,
        ));
        return Ok(());
    };
    // Walk the dotted path with borrowed values to keep line numbers.
    let mut cur = root;
    for part in key.split('.') {
        let obj: std::collections::HashMap<&str, &RawValue> = serde_json::from_str(cur.get())
            .map_err(|_| fmt_err(format!("expected an object holding `{key}`")))?;
        cur = obj.get(part).copied().ok_or_else(|| {
            fmt_err(format!(
                "has no `{key}` array; fix: set records_path in the mapping"
            ))
        })?;
    }
    let items: Vec<&RawValue> =
        serde_json::from_str(cur.get()).map_err(|_| fmt_err(format!("`{key}` is not an array")))?;
    let side = if preset == Preset::ZendeskJson {
        zendesk::Sideloads::of(&serde_json::from_str(doc).unwrap_or(Value::Null))
    } else {
        Default::default()
    };
    for raw in items {
        let v: Value = serde_json::from_str(raw.get()).expect("already parsed");
        let item = if preset == Preset::ZendeskJson {
            Item::Record(page_ticket(&v, &side, origin, Some(line_of(raw))))
        } else {
            record_from_value(&v, raw.get(), origin, Some(line_of(raw)), preset, mapping)
        };
        if sink(item).is_break() {
            break;
        }
    }
    Ok(())
}

/// Streams the elements of a top-level JSON array without holding the file in memory.
fn stream_array(
    reader: impl Read,
    origin: &str,
    preset: Preset,
    mapping: Option<&Mapping>,
    sink: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> Result<(), ImportError> {
    struct Elements<'a> {
        newlines: Rc<Cell<u64>>,
        origin: &'a str,
        preset: Preset,
        mapping: Option<&'a Mapping>,
        sink: &'a mut dyn FnMut(Item) -> ControlFlow<()>,
    }
    impl<'de> Visitor<'de> for Elements<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
                let inside = raw.get().bytes().filter(|b| *b == b'\n').count() as u64;
                let line = self.newlines.get().saturating_sub(inside) + 1;
                let item = match serde_json::from_str::<Value>(raw.get()) {
                    Ok(v) => record_from_value(
                        &v,
                        raw.get(),
                        self.origin,
                        Some(line),
                        self.preset,
                        self.mapping,
                    ),
                    Err(e) => Item::Reject(RowError {
                        origin: self.origin.to_string(),
                        line: Some(line),
                        field: None,
                        expected: "a JSON object".into(),
                        message: e.to_string(),
                        raw: raw.get().to_string(),
                    }),
                };
                if (self.sink)(item).is_break() {
                    break;
                }
            }
            Ok(())
        }
    }
    struct Seed<'a>(Elements<'a>);
    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self.0)
        }
    }
    let counter = decode::LineCounter::new(reader);
    let newlines = counter.count();
    let mut de = serde_json::Deserializer::from_reader(counter);
    Seed(Elements {
        newlines,
        origin,
        preset,
        mapping,
        sink,
    })
    .deserialize(&mut de)
    .map_err(|e| ImportError::Format {
        path: origin.to_string(),
        message: format!(
            "the JSON array breaks at line {}, column {}: {e}; the records before it were read",
            e.line(),
            e.column()
        ),
    })
}

/// Turns one JSON record into a source record with the preset's rules.
fn record_from_value(
    v: &Value,
    raw: &str,
    origin: &str,
    line: Option<u64>,
    preset: Preset,
    mapping: Option<&Mapping>,
) -> Item {
    let mut rec = SourceRecord {
        origin: origin.to_string(),
        line,
        raw: raw.to_string(),
        ..Default::default()
    };
    if !v.is_object() {
        return Item::Reject(RowError {
            origin: origin.to_string(),
            line,
            field: None,
            expected: "a JSON object".into(),
            message: "the record is not an object".into(),
            raw: raw.to_string(),
        });
    }
    match preset {
        Preset::ZendeskJson => zendesk::item_record(v, &mut rec),
        Preset::DelightedJson => delighted::response_record(v, &mut rec),
        Preset::GoogleTakeout => google::review_record(v, None, &mut rec),
        Preset::FreshdeskJson => {
            if let Err(p) = freshdesk::api_record(v, &mut rec) {
                return Item::Reject(RowError {
                    origin: origin.to_string(),
                    line,
                    field: Some(p.field),
                    expected: p.expected,
                    message: p.message,
                    raw: raw.to_string(),
                });
            }
        }
        Preset::HelpscoutJson => helpscout::api_record(v, &mut rec),
        Preset::IntercomJson => intercom::conversation_record(v, &[], &mut rec),
        Preset::TypeformJson => typeform::response_record(
            v,
            &typeform::Answers::from_mapping(mapping),
            mapping.is_some(),
            &mut rec,
        ),
        Preset::BlueskyJson => social::bluesky_post(v, &mut rec),
        Preset::MastodonJson => social::mastodon_status(v, &mut rec),
        Preset::RedditJson => social::reddit_thing(v, &mut rec),
        Preset::XJson => social::x_post(v, &mut rec),
        Preset::FeedJson => {
            if let Err(p) = feed::entry_record(v, &mut rec) {
                return Item::Reject(RowError {
                    origin: origin.to_string(),
                    line,
                    field: Some(p.field),
                    expected: p.expected,
                    message: p.message,
                    raw: raw.to_string(),
                });
            }
        }
        Preset::Jsonld => {
            if let Err(p) = jsonld::review_record(v, &mut rec) {
                return Item::Reject(RowError {
                    origin: origin.to_string(),
                    line,
                    field: Some(p.field),
                    expected: p.expected,
                    message: p.message,
                    raw: raw.to_string(),
                });
            }
        }
        Preset::GenericJson
        | Preset::GenericCsv
        | Preset::ZendeskCsv
        | Preset::QualtricsCsv
        | Preset::SurveyMonkeyCsv
        | Preset::FreshdeskCsv
        | Preset::HelpscoutCsv
        | Preset::IntercomCsv => match mapping {
            Some(m) => apply_json(m, v, &mut rec),
            None if preset == Preset::ZendeskCsv => {
                let header: Vec<String> = v
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                apply_json(&zendesk::csv_mapping_with(&header, None), v, &mut rec)
            }
            None => {}
        },
    }
    Item::Record(rec)
}

/// Rebuilds the source record of a quarantined item from its raw text, for replay.
/// CSV rows were kept as `{header: value}` objects, so the same mapping applies.
pub fn record_from_raw(
    raw: &str,
    origin: &str,
    line: Option<u64>,
    preset: Preset,
    mapping: Option<&Mapping>,
) -> Item {
    match serde_json::from_str::<Value>(raw) {
        Ok(v) if preset.is_csv() => {
            let obj = v.as_object().cloned().unwrap_or_default();
            let header: Vec<String> = obj.keys().cloned().collect();
            let values: Vec<String> = obj
                .values()
                .map(|v| mapping::json_text(v).unwrap_or_default())
                .collect();
            let built_in;
            let m = match (preset, mapping) {
                (Preset::ZendeskCsv, _) => {
                    built_in = zendesk::csv_mapping_with(&header, mapping);
                    &built_in
                }
                // The question texts and the zone of the header rows are not in a kept
                // row: a replayed Qualtrics row takes them from the user's mapping.
                (Preset::QualtricsCsv, _) => {
                    built_in = surveys::qualtrics_mapping(&header, &[], mapping);
                    &built_in
                }
                (Preset::SurveyMonkeyCsv, _) => {
                    built_in = surveys::surveymonkey_mapping(&header, mapping);
                    &built_in
                }
                (Preset::FreshdeskCsv, _) => {
                    built_in = freshdesk::csv_mapping_with(&header, mapping);
                    &built_in
                }
                (Preset::HelpscoutCsv, _) => {
                    built_in = helpscout::csv_mapping_with(&header, mapping);
                    &built_in
                }
                (Preset::IntercomCsv, _) => {
                    built_in = intercom::csv_mapping_with(&header, mapping);
                    &built_in
                }
                (_, Some(m)) => m,
                (_, None) => return record_from_value(&v, raw, origin, line, preset, mapping),
            };
            match ResolvedColumns::new(m, &header) {
                Ok(cols) => {
                    let mut rec = SourceRecord {
                        origin: origin.to_string(),
                        line,
                        raw: raw.to_string(),
                        ..Default::default()
                    };
                    cols.apply(&values, &mut rec);
                    if matches!(preset, Preset::QualtricsCsv | Preset::SurveyMonkeyCsv) {
                        surveys::finish_record(&mut rec, None, &m.date_formats);
                    }
                    if preset == Preset::HelpscoutCsv {
                        helpscout::finish_csv_record(&mut rec);
                    }
                    if preset == Preset::IntercomCsv {
                        intercom::finish_csv_record(&mut rec);
                    }
                    Item::Record(rec)
                }
                Err(message) => Item::Reject(RowError {
                    origin: origin.to_string(),
                    line,
                    field: None,
                    expected: "a row the mapping can read".into(),
                    message,
                    raw: raw.to_string(),
                }),
            }
        }
        Ok(v) => record_from_value(&v, raw, origin, line, preset, mapping),
        Err(e) => Item::Reject(RowError {
            origin: origin.to_string(),
            line,
            field: None,
            expected: "valid JSON".into(),
            message: format!("invalid JSON: {e}"),
            raw: raw.to_string(),
        }),
    }
}
