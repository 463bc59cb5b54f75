//! Survey exports with several header rows.
//!
//! - **Qualtrics CSV**: three header rows. Row 1 holds the column ids (`ResponseId`,
//!   `RecordedDate`, `Q1`, `Q2_TEXT`), row 2 the question text, row 3 one ImportId JSON per
//!   column, e.g. `{"ImportId":"recordedDate","timeZone":"America/Denver"}`. Dates carry no
//!   offset: they are in the zone row 3 names, so they are read in it here.
//! - **SurveyMonkey CSV** ("all individual responses", expanded): two header rows. Row 1 the
//!   question text, blank over a question's further columns; row 2 the sub-label
//!   (`Response`, `Open-Ended Response`, a choice). Columns are keyed `row 1 / row 2`, with
//!   row 1 carried forward over blanks.
//!
//! The built-in mapping covers the metadata columns and finds the NPS question by its text
//! ("... recommend ...") and the comment by its form (`_TEXT`, `Open-Ended Response`); a
//! user's mapping `[fields]` names other columns (by row-1 id for Qualtrics, by the combined
//! key for SurveyMonkey) and wins.

use super::mapping::{Columns, Mapping};
use crate::pipeline::Field;
use crate::pipeline::normalize::SourceRecord;
use std::collections::BTreeMap;

fn put(fields: &mut BTreeMap<String, Columns>, f: Field, names: &[&str]) {
    fields.insert(
        f.as_str().to_string(),
        Columns::Many(names.iter().map(|s| s.to_string()).collect()),
    );
}

fn mentions_recommend(question: &str) -> bool {
    let q = question.to_lowercase();
    [
        "recommend",
        "empfehlen",
        "recommander",
        "recomendar",
        "raccomand",
        "aanbevelen",
        "polecić",
        "polecil",
    ]
    .iter()
    .any(|w| q.contains(w))
}

/// The zone of a Qualtrics export, from its third header row.
pub fn qualtrics_zone(import_ids: &[String]) -> Option<chrono_tz::Tz> {
    import_ids.iter().find_map(|cell| {
        let v: serde_json::Value = serde_json::from_str(cell).ok()?;
        v.get("timeZone")?.as_str()?.parse().ok()
    })
}

/// The mapping of a Qualtrics export: row-1 ids `header`, row-2 texts `questions`.
pub fn qualtrics_mapping(
    header: &[String],
    questions: &[String],
    user: Option<&Mapping>,
) -> Mapping {
    let mut fields = BTreeMap::new();
    put(
        &mut fields,
        Field::ExternalId,
        &["ResponseId", "ResponseID", "Response ID"],
    );
    put(
        &mut fields,
        Field::OccurredAt,
        &["RecordedDate", "EndDate", "StartDate"],
    );
    put(&mut fields, Field::Email, &["RecipientEmail", "Email"]);
    put(&mut fields, Field::Name, &["RecipientFirstName"]);
    put(&mut fields, Field::Language, &["UserLanguage"]);
    let nps: Vec<&str> = header
        .iter()
        .zip(questions)
        .filter(|(id, q)| {
            !id.ends_with("_NPS_GROUP") && !id.ends_with("_TEXT") && mentions_recommend(q)
        })
        .map(|(id, _)| id.as_str())
        .collect();
    if !nps.is_empty() {
        put(&mut fields, Field::Nps, &nps);
    }
    let text: Vec<&str> = header
        .iter()
        .filter(|id| id.ends_with("_TEXT"))
        .map(String::as_str)
        .collect();
    if !text.is_empty() {
        put(&mut fields, Field::Text, &text);
    }
    let mut platform_ids = BTreeMap::new();
    platform_ids.insert("crm".to_string(), "ExternalReference".to_string());
    Mapping {
        kind: Some("survey_response".into()),
        date_formats: vec![
            "%Y-%m-%d %H:%M:%S".into(),
            "%m/%d/%Y %H:%M".into(),
            "%m/%d/%Y %H:%M:%S".into(),
        ],
        platform_ids,
        fields,
        ..Default::default()
    }
    .with_user(user)
}

/// SurveyMonkey's two header rows as one key per column.
pub fn surveymonkey_header(row1: &[String], row2: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(row1.len().max(row2.len()));
    let mut question = String::new();
    for i in 0..row1.len().max(row2.len()) {
        let top = row1.get(i).map(|s| s.trim()).unwrap_or("");
        if !top.is_empty() {
            question = top.to_string();
        }
        let sub = row2.get(i).map(|s| s.trim()).unwrap_or("");
        out.push(if sub.is_empty() {
            question.clone()
        } else {
            format!("{question} / {sub}")
        });
    }
    out
}

/// The mapping of a SurveyMonkey export, for its combined header.
pub fn surveymonkey_mapping(header: &[String], user: Option<&Mapping>) -> Mapping {
    let mut fields = BTreeMap::new();
    put(&mut fields, Field::ExternalId, &["Respondent ID"]);
    put(&mut fields, Field::OccurredAt, &["End Date", "Start Date"]);
    put(&mut fields, Field::Email, &["Email Address"]);
    put(&mut fields, Field::Name, &["First Name"]);
    let nps: Vec<&str> = header
        .iter()
        .filter(|h| mentions_recommend(h) && !h.ends_with("/ Open-Ended Response"))
        .map(String::as_str)
        .collect();
    if !nps.is_empty() {
        put(&mut fields, Field::Nps, &nps);
    }
    let text: Vec<&str> = header
        .iter()
        .filter(|h| h.ends_with("/ Open-Ended Response"))
        .map(String::as_str)
        .collect();
    if !text.is_empty() {
        put(&mut fields, Field::Text, &text);
    }
    let mut platform_ids = BTreeMap::new();
    platform_ids.insert("crm".to_string(), "Custom Data 1".to_string());
    Mapping {
        kind: Some("survey_response".into()),
        date_formats: vec![
            "%m/%d/%Y %I:%M:%S %p".into(),
            "%m/%d/%Y %H:%M:%S".into(),
            "%m/%d/%Y %H:%M".into(),
        ],
        platform_ids,
        fields,
        ..Default::default()
    }
    .with_user(user)
}

/// What the survey presets fix in a read record: local times of a Qualtrics export read in
/// its declared zone, and NPS choices written as "10 - Extremely likely".
pub fn finish_record(rec: &mut SourceRecord, zone: Option<chrono_tz::Tz>, date_formats: &[String]) {
    if let Some(v) = rec.fields.get(&Field::Nps).cloned() {
        let lead: String = v.trim().chars().take_while(char::is_ascii_digit).collect();
        if !lead.is_empty() && lead.len() < v.trim().len() {
            rec.fields.insert(Field::Nps, lead);
        }
    }
    for f in [Field::OccurredAt, Field::UpdatedAt] {
        let Some(v) = rec.fields.get(&f) else {
            continue;
        };
        let Some(local) = date_formats
            .iter()
            .find_map(|fmt| chrono::NaiveDateTime::parse_from_str(v.trim(), fmt).ok())
        else {
            continue;
        };
        match zone {
            Some(tz) => {
                use chrono::TimeZone;
                // An ambiguous local time (the hour DST repeats) takes the earlier
                // instant; a skipped one is left for the normalizer to report.
                if let Some(t) = tz.from_local_datetime(&local).earliest() {
                    rec.fields.insert(f, t.to_rfc3339());
                }
            }
            // No zone in the export: an ISO local time, read in the import's zone.
            None => {
                rec.fields
                    .insert(f, local.format("%Y-%m-%dT%H:%M:%S").to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn surveymonkey_headers_carry_the_question_forward() {
        let h = surveymonkey_header(
            &s(&[
                "Respondent ID",
                "How likely are you to recommend us?",
                "What could we do better?",
                "",
                "",
            ]),
            &s(&["", "Response", "Open-Ended Response", "Price", "Service"]),
        );
        assert_eq!(
            h,
            s(&[
                "Respondent ID",
                "How likely are you to recommend us? / Response",
                "What could we do better? / Open-Ended Response",
                "What could we do better? / Price",
                "What could we do better? / Service",
            ])
        );
        let m = surveymonkey_mapping(&h, None);
        assert_eq!(
            m.fields["nps"].names(),
            vec!["How likely are you to recommend us? / Response"]
        );
        assert_eq!(
            m.fields["text"].names(),
            vec!["What could we do better? / Open-Ended Response"]
        );
    }

    #[test]
    fn qualtrics_zone_and_local_times() {
        let zone = qualtrics_zone(&s(&[
            r#"{"ImportId":"startDate","timeZone":"America/Denver"}"#,
            r#"{"ImportId":"QID1"}"#,
        ]))
        .unwrap();
        let mut rec = SourceRecord::default();
        rec.fields
            .insert(Field::OccurredAt, "2026-03-08 01:30:00".into());
        rec.fields.insert(Field::Nps, "9 - Very likely".into());
        finish_record(&mut rec, Some(zone), &s(&["%Y-%m-%d %H:%M:%S"]));
        // Denver is UTC-7 in winter.
        assert_eq!(rec.fields[&Field::OccurredAt], "2026-03-08T01:30:00-07:00");
        assert_eq!(rec.fields[&Field::Nps], "9");
    }
}
