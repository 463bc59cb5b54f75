//! `tideline detect`: observations as JSONL on stdin, detected changes as JSONL on stdout.
//!
//! In, one observation a line: `{"series": "...", "t": <RFC 3339 string or number>,
//! "value": <number>}`; series may be interleaved, each in time order. Out, one change a
//! line: `{"series", "index", "t", "direction", "before", "after", "confidence", "status"}`
//! where `index` is the 0-based position within its series of the first observation after
//! the change, and `t` is that observation's time in the form the input gave it.
//!
//! Offline mode reads everything, then writes each series' changes (series in order of
//! first appearance). Online mode writes a change the moment it is confirmed, then, at the
//! end, the change each series is still watching. A bad line is named on the error
//! callback (line, field, what was expected) and skipped; the rest is kept.

use crate::pipeline::detect::{self, Change, Kind, Online, Point, Settings};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Offline,
    Online,
}

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DetectSummary {
    pub observations: u64,
    pub rejected: u64,
    pub series: u64,
    pub changes: u64,
}

#[derive(Serialize)]
struct Output<'a> {
    series: &'a str,
    index: usize,
    t: Value,
    direction: &'static str,
    before: f64,
    after: f64,
    confidence: f64,
    status: &'static str,
}

struct Series {
    name: String,
    /// Whether the series gave RFC 3339 times (then `t` is seconds since the epoch).
    rfc3339: bool,
    points: Vec<Point>,
    online: Option<Online>,
    count: usize,
    last_t: Option<f64>,
}

fn parse_time(v: &Value) -> Result<(f64, bool), String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| (f, false))
            .ok_or_else(|| format!("expected a finite number, got {n}")),
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(|d| (d.timestamp_millis() as f64 / 1000.0, true))
            .map_err(|e| {
                format!("expected an RFC 3339 time such as 2026-03-12T09:30:00Z, got {s:?} ({e})")
            }),
        other => Err(format!(
            "expected an RFC 3339 string or a number, got {}",
            short(&other.to_string())
        )),
    }
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

fn time_value(t: f64, rfc3339: bool) -> Value {
    if rfc3339 {
        let ms = (t * 1000.0).round() as i64;
        match DateTime::<Utc>::from_timestamp_millis(ms) {
            Some(d) => Value::String(d.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => Value::from(t),
        }
    } else if t.fract() == 0.0 && t.abs() < 9e15 {
        Value::from(t as i64)
    } else {
        Value::from(t)
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn write_change(out: &mut impl Write, series: &Series, c: &Change) -> std::io::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &Output {
            series: &series.name,
            index: c.index,
            t: time_value(c.t, series.rfc3339),
            direction: c.direction.as_str(),
            before: round(c.before, 4),
            after: round(c.after, 4),
            confidence: round(c.confidence, 4),
            status: c.status.as_str(),
        },
    )?;
    out.write_all(b"\n")
}

/// Online settings for a series: RFC 3339 times use the configured time scale in
/// seconds; bare numbers have no known unit, so the hazard follows their own spacing.
fn online_settings(base: &Settings, rfc3339: bool) -> Settings {
    let mut s = base.clone();
    if !rfc3339 {
        s.tau_secs = 0.0;
    }
    s
}

/// Reads observations from `input` and writes changes to `output`.
pub fn detect_lines(
    kind: Kind,
    mode: Mode,
    settings: &Settings,
    input: impl BufRead,
    mut output: impl Write,
    mut on_error: impl FnMut(u64, &str),
) -> std::io::Result<DetectSummary> {
    let mut summary = DetectSummary::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut all: Vec<Series> = Vec::new();
    for line in crate::score::jsonl_lines(input) {
        let (line_no, text) = line?;
        let text = text.as_str();
        let parsed = (|| -> Result<(String, f64, bool, f64), String> {
            let v: Value = serde_json::from_str(text).map_err(|e| {
                format!("expected a JSON object {{\"series\", \"t\", \"value\"}}: {e}")
            })?;
            let obj = v
                .as_object()
                .ok_or("expected a JSON object {\"series\", \"t\", \"value\"}")?;
            let series = match obj.get("series") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(other) => {
                    return Err(format!(
                        "field `series`: expected a string, got {}",
                        short(&other.to_string())
                    ));
                }
                None => return Err("field `series` is missing".into()),
            };
            let (t, rfc) = parse_time(obj.get("t").ok_or("field `t` is missing")?)
                .map_err(|e| format!("field `t`: {e}"))?;
            let value = obj
                .get("value")
                .ok_or("field `value` is missing")?
                .as_f64()
                .ok_or_else(|| format!("field `value`: expected {}", "a number"))?;
            kind.check(value).map_err(|expected| {
                format!(
                    "field `value`: expected {expected} for --kind {}, got {value}",
                    kind.as_str()
                )
            })?;
            Ok((series, t, rfc, value))
        })();
        let (name, t, rfc, value) = match parsed {
            Ok(p) => p,
            Err(e) => {
                summary.rejected += 1;
                on_error(line_no, &e);
                continue;
            }
        };
        let i = *index.entry(name.clone()).or_insert_with(|| {
            all.push(Series {
                name,
                rfc3339: rfc,
                points: Vec::new(),
                online: None,
                count: 0,
                last_t: None,
            });
            all.len() - 1
        });
        let s = &mut all[i];
        if let Some(prev) = s.last_t
            && t < prev
        {
            summary.rejected += 1;
            on_error(
                line_no,
                &format!(
                    "field `t`: series {:?} must be in time order; this observation is earlier than the one before it",
                    short(&s.name)
                ),
            );
            continue;
        }
        s.last_t = Some(t);
        s.count += 1;
        summary.observations += 1;
        let point = Point { t, value };
        match mode {
            Mode::Offline => s.points.push(point),
            Mode::Online => {
                let det = s
                    .online
                    .get_or_insert_with(|| Online::new(kind, &online_settings(settings, rfc)));
                if let Some(c) = det.push(point) {
                    write_change(&mut output, s, &c)?;
                    output.flush()?;
                    summary.changes += 1;
                }
            }
        }
    }
    summary.series = all.len() as u64;
    for s in &all {
        let changes: Vec<Change> = match mode {
            Mode::Offline => detect::offline(kind, &s.points, settings),
            Mode::Online => s
                .online
                .as_ref()
                .and_then(Online::watching)
                .into_iter()
                .collect(),
        };
        for c in &changes {
            write_change(&mut output, s, c)?;
            summary.changes += 1;
        }
    }
    output.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: Kind, mode: Mode, input: &str) -> (Vec<Value>, Vec<(u64, String)>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        detect_lines(
            kind,
            mode,
            &Settings::default(),
            input.as_bytes(),
            &mut out,
            |n, e| errors.push((n, e.to_string())),
        )
        .unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, errors)
    }

    #[test]
    fn finds_a_step_in_interleaved_series_and_names_bad_lines() {
        let mut input = String::new();
        for i in 0..120 {
            let a = if i < 60 { 0.0 } else { 5.0 } + ((i * 7) % 5) as f64 * 0.1;
            input.push_str(&format!(
                "{{\"series\": \"a\", \"t\": {i}, \"value\": {a}}}\n"
            ));
            input.push_str(&format!(
                "{{\"series\": \"b\", \"t\": \"2026-01-01T00:00:00Z\", \"value\": {}}}\n",
                (i % 3) as f64
            ));
            if i == 10 {
                input.push_str("{\"series\": \"a\", \"t\": \"yesterday\", \"value\": 1}\n");
                input.push_str("{\"series\": \"a\", \"t\": 3, \"value\": 1}\n");
            }
        }
        let (lines, errors) = run(Kind::Real, Mode::Offline, &input);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["series"], "a");
        assert_eq!(lines[0]["index"], 60);
        assert_eq!(lines[0]["t"], 60);
        assert_eq!(lines[0]["direction"], "up");
        assert_eq!(errors.len(), 2);
        assert!(errors[0].1.contains("field `t`") && errors[0].1.contains("RFC 3339"));
        assert!(errors[1].1.contains("time order"));
    }

    #[test]
    fn online_mode_reports_times_in_the_input_form() {
        let mut input = String::new();
        for day in 0..120 {
            let stars = if day < 60 {
                5 - (day % 4 == 0) as i32
            } else {
                1 + (day % 4 == 0) as i32
            };
            let t = chrono::DateTime::from_timestamp(1_767_225_600 + day * 86_400, 0)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Secs, true);
            input.push_str(&format!(
                "{{\"series\": \"store\", \"t\": \"{t}\", \"value\": {stars}}}\n"
            ));
        }
        input.push_str("{\"series\": \"store\", \"t\": \"2026-12-01T00:00:00Z\", \"value\": 9}\n");
        let (lines, errors) = run(Kind::Stars, Mode::Online, &input);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["direction"], "down");
        assert_eq!(lines[0]["status"], "confirmed");
        assert!((58..=62).contains(&lines[0]["index"].as_u64().unwrap()));
        assert!(lines[0]["t"].as_str().unwrap().starts_with("2026-03-0"));
        assert!(errors[0].1.contains("star rating from 1 to 5"));
    }
}
