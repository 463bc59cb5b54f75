//! Survey export presets with several header rows: Qualtrics (three, the zone in the third)
//! and SurveyMonkey (two, here as UTF-16 with multi-line comments).

use crate::common::{self, TestDb};
use crate::on_both_backends;
use tideline::connectors::files::Preset;
use tideline::ingest::{self, ImportOptions};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/surveys")
        .join(name)
}

async fn import(db: &TestDb, name: &str, preset: Preset) -> ingest::ImportReport {
    let config = common::demo_config();
    let o = ImportOptions {
        path: fixture(name),
        preset,
        mapping: None,
        source: None,
        location: Some("berlin-mitte".into()),
        timezone: None,
    };
    ingest::import_file(db.store.as_ref(), common::analyzer(&config), &config, &o)
        .await
        .unwrap()
}

async fn survey_presets_read_their_header_rows(db: TestDb) {
    let q = import(&db, "qualtrics.csv", Preset::QualtricsCsv).await;
    // Four responses: one NPS of 11 is out of the 0-10 scale and quarantined.
    assert_eq!((q.read, q.inserted, q.quarantined), (4, 3, 1), "{q:?}");
    let s = import(&db, "surveymonkey_utf16.csv", Preset::SurveyMonkeyCsv).await;
    assert_eq!((s.read, s.inserted, s.quarantined), (2, 2, 0), "{s:?}");

    let all = db.store.interactions_after(0, 100).await.unwrap();
    let by_id = |id: &str| {
        all.iter()
            .map(|s| &s.interaction)
            .find(|i| i.external_id == id)
            .unwrap_or_else(|| panic!("{id} stored"))
    };
    let jane = by_id("R_1aAbCdEfGh01");
    assert_eq!(jane.source, "qualtrics");
    assert_eq!(jane.nps, Some(10));
    assert!(jane.text.as_deref().unwrap().contains("still warm"));
    // 2026-03-07 10:02:11 in Denver (UTC-7) is 17:02:11 UTC.
    assert_eq!(
        jane.occurred_at_ms,
        chrono::DateTime::parse_from_rfc3339("2026-03-07T17:02:11Z")
            .unwrap()
            .timestamp_millis()
    );
    // 2026-03-08 01:31:05 in Denver is still winter time (DST starts at 02:00 that day).
    assert_eq!(
        by_id("R_1aAbCdEfGh02").occurred_at_ms,
        chrono::DateTime::parse_from_rfc3339("2026-03-08T08:31:05Z")
            .unwrap()
            .timestamp_millis()
    );
    assert_eq!(by_id("R_1aAbCdEfGh04").nps, Some(8));

    let anna = by_id("114001");
    assert_eq!(anna.source, "surveymonkey");
    assert_eq!(anna.nps, Some(9), "`9 - Äußerst wahrscheinlich` is 9");
    assert_eq!(anna.text.as_deref(), Some("Alles super, gerne wieder!"));
    let second = by_id("114002");
    assert_eq!(second.nps, Some(2));
    assert!(second.text.as_deref().unwrap().contains("\nNie wieder."));
    // The demo's Berlin location: 10:17:30 AM local is 09:17:30 UTC.
    assert_eq!(
        anna.occurred_at_ms,
        chrono::DateTime::parse_from_rfc3339("2026-03-15T09:17:30Z")
            .unwrap()
            .timestamp_millis()
    );

    let q = db.store.quarantine(None).await.unwrap();
    assert_eq!(q.len(), 1);
    let bad = &q[0].entry.error;
    assert_eq!(bad.line, Some(7), "the physical line of the row: {bad:?}");
    assert_eq!(bad.field.as_deref(), Some("nps (`Q1`)"), "{bad:?}");
}

on_both_backends!(survey_presets_read_their_header_rows);
