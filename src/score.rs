//! `tideline score`: JSONL in, JSONL out, one line per text and in the same order.
//!
//! In: `{"id": ..., "text": "...", "lang": "de"}` (`lang` optional, ISO 639-1). Out:
//! `{"id", "lang", "lang_confidence", "sentiment", "label", "confidence", "aspects"}`.
//! A line that is not such an object gets `{"id": null, "line": N, "error": "..."}` in its
//! place, so the output still lines up with the input, and the run ends with status 1.

use crate::model::SentimentLabel;
use crate::pipeline::Analyzer;
use crate::pipeline::sentiment::AspectScore;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{BufRead, Write};

#[derive(Deserialize)]
struct Input<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    text: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

#[derive(Serialize)]
struct Output<'a> {
    id: &'a RawValue,
    lang: Option<&'a str>,
    /// 1 when the input named the language; the detector's confidence when it decided;
    /// 0 when the text was too short to judge and the hint (or nothing) was used.
    lang_confidence: f64,
    sentiment: f64,
    label: &'static str,
    confidence: f64,
    aspects: &'a [AspectScore],
}

#[derive(Serialize)]
struct Failure<'a> {
    id: Option<&'a RawValue>,
    line: u64,
    error: String,
}

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScoreSummary {
    pub scored: u64,
    pub failed: u64,
}

fn null() -> &'static RawValue {
    static NULL: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    NULL.get_or_init(|| RawValue::from_string("null".into()).expect("valid JSON"))
}

/// The non-blank lines of a JSONL stream, trimmed, with their 1-based line numbers
/// (blank lines count, so numbers match what an editor shows). Invalid UTF-8 is replaced,
/// not fatal: the line then fails to parse and is reported like any other bad line.
pub(crate) fn jsonl_lines(
    input: impl BufRead,
) -> impl Iterator<Item = std::io::Result<(u64, String)>> {
    input
        .split(b'\n')
        .enumerate()
        .filter_map(|(n, line)| match line {
            Err(e) => Some(Err(e)),
            Ok(raw) => {
                let text = String::from_utf8_lossy(&raw);
                let text = text.trim();
                (!text.is_empty()).then(|| Ok((n as u64 + 1, text.to_string())))
            }
        })
}

/// Scores every line of `input` to `output`. `lang_hint` is the language to assume for
/// texts too short to detect.
pub fn score_lines(
    analyzer: &Analyzer,
    lang_hint: Option<&str>,
    input: impl BufRead,
    mut output: impl Write,
    mut on_error: impl FnMut(u64, &str),
) -> std::io::Result<ScoreSummary> {
    let mut summary = ScoreSummary::default();
    for line in jsonl_lines(input) {
        let (line_no, text) = line?;
        let text = text.as_str();
        let parsed: Result<Input, String> = serde_json::from_str::<Input>(text)
            .map_err(|e| format!("expected a JSON object with a `text` string: {e}"));
        let parsed = parsed.and_then(|i| match i.text {
            Some(_) => Ok(i),
            None => Err("expected a `text` field holding a string".to_string()),
        });
        let input = match parsed {
            Ok(i) => i,
            Err(error) => {
                summary.failed += 1;
                on_error(line_no, &error);
                let id = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                    .ok()
                    .and_then(|m| m.get("id").map(|v| v.to_string()));
                let id = id.and_then(|s| RawValue::from_string(s).ok());
                serde_json::to_writer(
                    &mut output,
                    &Failure {
                        id: id.as_deref(),
                        line: line_no,
                        error,
                    },
                )?;
                output.write_all(b"\n")?;
                continue;
            }
        };
        let body = input.text.as_deref().unwrap_or("");
        let given = input
            .lang
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_lowercase);
        let (lang, lang_confidence) = match given {
            Some(l) => (Some(l), 1.0),
            None => {
                let d = analyzer.detector.detect(body, lang_hint);
                let c = d.confidence.unwrap_or(0.0);
                (d.language, c)
            }
        };
        let scored = analyzer.scorer.analyse(body, lang.as_deref());
        let (sentiment, label, confidence, aspects) = match &scored {
            Some(t) => (
                t.sentiment.score,
                t.sentiment.label,
                t.sentiment.confidence,
                t.aspects.as_slice(),
            ),
            None => (0.0, SentimentLabel::Neutral, 0.0, &[][..]),
        };
        serde_json::to_writer(
            &mut output,
            &Output {
                id: input.id.unwrap_or(null()),
                lang: lang.as_deref(),
                lang_confidence,
                sentiment,
                label: label.as_str(),
                confidence,
                aspects,
            },
        )?;
        output.write_all(b"\n")?;
        summary.scored += 1;
    }
    output.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_ids_and_names_bad_lines() {
        let analyzer = Analyzer::new(&["en".into(), "de".into()], 12);
        let input = concat!(
            "{\"id\": \"a\", \"text\": \"The waiter was rude and the delivery was late.\"}\n",
            "not json\n",
            "\n",
            "{\"id\": 7, \"text\": \"Super Service, sehr freundlich!\", \"lang\": \"de\"}\n",
            "{\"id\": \"c\"}\n",
        );
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let s = score_lines(&analyzer, None, input.as_bytes(), &mut out, |n, e| {
            errors.push((n, e.to_string()))
        })
        .unwrap();
        assert_eq!(
            s,
            ScoreSummary {
                scored: 2,
                failed: 2
            }
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["id"], "a");
        assert_eq!(lines[0]["lang"], "en");
        assert_eq!(lines[0]["label"], "negative");
        assert!(lines[0]["aspects"].as_array().unwrap().len() >= 2);
        assert_eq!(lines[1]["line"], 2);
        assert!(lines[1]["id"].is_null());
        assert_eq!(lines[2]["id"], 7);
        assert_eq!(lines[2]["lang"], "de");
        assert_eq!(lines[2]["lang_confidence"], 1.0);
        assert_eq!(lines[2]["label"], "positive");
        assert_eq!(lines[3]["id"], "c");
        assert!(lines[3]["error"].as_str().unwrap().contains("text"));
        assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 5]);
    }
}
