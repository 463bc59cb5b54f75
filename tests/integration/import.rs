//! File import: the formats people have, quarantine, idempotency and crash safety.

use crate::common::{Backend, TestDb, analyzer, bin, demo_config, samples};
use std::path::{Path, PathBuf};
use tideline::connectors::files::Preset;
use tideline::ingest::{self, ImportOptions, ImportReport};
use tideline::model::{Identity, IdentityKind};

fn opts(path: &Path, preset: Preset) -> ImportOptions {
    ImportOptions {
        path: path.to_path_buf(),
        preset,
        mapping: None,
        source: None,
        location: None,
        timezone: None,
    }
}

async fn import(db: &TestDb, o: &ImportOptions) -> ImportReport {
    let config = demo_config();
    ingest::import_file(db.store.as_ref(), analyzer(&config), &config, o)
        .await
        .unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const REVIEW_MAPPING: &str = r#"
format = "csv"
kind = "review"
date_formats = ["%d.%m.%Y %H:%M"]
[fields]
external_id = "Review ID"
location = "Store"
email = "Email"
phone = "Phone"
stars = "Rating"
text = "Review"
occurred_at = "Date"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf16_semicolons_decimal_commas_multiline_ragged_and_bad_utf8() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = db.dir.path();
    let mapping = write(dir, "m.toml", REVIEW_MAPPING.as_bytes());
    // UTF-16LE with BOM, `;`, CRLF, a multi-line cell, a ragged row, an Excel-mangled phone.
    let text = "Review ID;Store;Email;Phone;Rating;Review;Date\r\n\
                r1;Berlin Mitte;ana@example.com;+49 30 1234567;4,5;\"Sehr gut;\r\naber laut\";04.03.2026 14:22\r\n\
                r2;store_warsaw;piotr@example.com;4.91701E+12;2,0;Zimne jedzenie, nie polecam;05.03.2026 09:00;extra;cells\r\n\
                r3;zagreb-01;;;5;Odlično\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        bytes.extend(u.to_le_bytes());
    }
    let file = write(dir, "reviews16.csv", &bytes);
    let mut o = opts(&file, Preset::GenericCsv);
    o.mapping = Some(mapping.clone());
    let r = import(&db, &o).await;
    assert_eq!((r.read, r.inserted, r.quarantined), (3, 2, 1), "{r:?}");
    assert_eq!(
        r.unreadable_identities, 1,
        "the Excel-mangled phone is counted"
    );
    let q = db.store.quarantine(Some("open")).await.unwrap();
    assert_eq!(
        q[0].entry.error.line,
        Some(5),
        "r3 starts on physical line 5"
    );
    assert_eq!(
        q[0].entry.error.field.as_deref(),
        Some("occurred_at (`Date`)")
    );

    let s = db.store.as_ref();
    let ana = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "ana@example.com"))
        .await
        .unwrap()
        .unwrap();
    let t = s.timeline(&ana).await.unwrap();
    let i = &t[0].interaction;
    assert_eq!(i.stars, Some(4.5));
    assert_eq!(i.text.as_deref(), Some("Sehr gut;\r\naber laut"));
    assert_eq!(i.location_id.as_deref(), Some("berlin-mitte"));
    // 14:22 in Berlin (CET) is 13:22 UTC.
    assert_eq!(i.occurred_at_ms, 1_772_630_520_000);
    assert!(
        i.identities
            .contains(&Identity::new(IdentityKind::Phone, "+49301234567"))
    );
    // The mangled phone gives no identity but stays in the raw record; extra cells too.
    let piotr = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "piotr@example.com"))
        .await
        .unwrap()
        .unwrap();
    let p = &s.timeline(&piotr).await.unwrap()[0].interaction;
    assert!(p.identities.iter().all(|i| i.kind != IdentityKind::Phone));
    assert!(
        p.raw.contains("4.91701E+12") && p.raw.contains("_extra"),
        "{}",
        p.raw
    );
    assert_eq!(p.location_id.as_deref(), Some("warsaw-centrum"));

    // Invalid UTF-8 in one row of a UTF-8 file: that row is quarantined, the rest kept.
    let mut bad = b"\xEF\xBB\xBFReview ID,Store,Email,Phone,Rating,Review,Date\n".to_vec();
    bad.extend_from_slice(b"b1,Berlin Mitte,,,5,ok,01.02.2026 10:00\n");
    bad.extend_from_slice(b"b2,Berlin Mitte,,,5,caf\xE9 latin-1,01.02.2026 10:00\n");
    bad.extend_from_slice(b"b3,Berlin Mitte,,,1,bad,01.02.2026 11:00\n");
    let file = write(dir, "bad.csv", &bad);
    let mut o = opts(&file, Preset::GenericCsv);
    o.mapping = Some(mapping);
    let r = import(&db, &o).await;
    assert_eq!((r.inserted, r.quarantined), (2, 1), "{r:?}");
    let q = db.store.quarantine(Some("open")).await.unwrap();
    let utf = q
        .iter()
        .find(|q| q.entry.error.origin.ends_with("bad.csv"))
        .unwrap();
    assert_eq!(utf.entry.error.line, Some(3));
    assert_eq!(utf.entry.error.field.as_deref(), Some("`Review`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_json_pages_and_account_export_lines() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = db.dir.path();
    let page = serde_json::json!({
        "tickets": [
            {"id": 35436, "url": "https://acme.zendesk.com/api/v2/tickets/35436.json",
             "subject": "Order arrived broken", "description": "Hi, the mug was broken when it arrived.",
             "status": "solved", "requester_id": 20978392,
             "custom_fields": [{"id": 27642, "value": "store_berlin"}],
             "satisfaction_rating": {"id": 1, "score": "bad", "comment": "Took a week"},
             "created_at": "2024-01-02T09:00:00Z", "updated_at": "2024-01-09T16:20:00Z"},
            {"id": 35437, "subject": "no date", "requester_id": 1, "created_at": null}
        ],
        "users": [{"id": 20978392, "name": "Ana P.", "email": "ana@example.com",
                   "phone": "+49 30 1234567", "external_id": "crm-991", "role": "end-user", "locale": "de"}],
        "after_cursor": "abc", "end_of_stream": true
    });
    let file = write(
        dir,
        "page.json",
        serde_json::to_string_pretty(&page).unwrap().as_bytes(),
    );
    let r = import(&db, &opts(&file, Preset::ZendeskJson)).await;
    assert_eq!((r.inserted, r.quarantined), (1, 1), "{r:?}");
    let q = db.store.quarantine(Some("open")).await.unwrap();
    assert!(
        q[0].entry.error.line.unwrap() > 10,
        "line of the second ticket: {:?}",
        q[0].entry.error.line
    );
    let s = db.store.as_ref();
    let cid = s
        .customer_by_identity(&Identity::new(IdentityKind::Platform, "crm:crm-991"))
        .await
        .unwrap()
        .expect("the sideloaded user's external id is an identity");
    let t = s.timeline(&cid).await.unwrap();
    let i = &t[0].interaction;
    assert_eq!(i.location_id.as_deref(), Some("berlin-mitte"));
    assert!(!i.csat.as_ref().unwrap().satisfied);
    // The legacy rating's comment is the customer's own verdict: it joins the scored text.
    assert_eq!(
        i.text.as_deref(),
        Some(
            "Order arrived broken\n\nHi, the mug was broken when it arrived.\n\nSatisfaction comment: Took a week"
        )
    );
    assert!(
        i.identities
            .contains(&Identity::new(IdentityKind::Phone, "+49301234567"))
    );

    // The account data export: one ticket object per line, requester from the email channel.
    let lines = "{\"id\": 1, \"subject\": \"Hello\", \"description\": \"Where is my order?\", \"created_at\": \"2024-02-01T10:00:00Z\", \"via\": {\"channel\": \"email\", \"source\": {\"from\": {\"address\": \"Ana@Example.com\", \"name\": \"Ana\"}}}}\n\
                 {not json}\n\
                 {\"id\": 2, \"subject\": \"Thanks\", \"created_at\": \"2024-02-02T10:00:00Z\"}\n";
    let file = write(dir, "export.json", lines.as_bytes());
    let r = import(&db, &opts(&file, Preset::ZendeskJson)).await;
    assert_eq!((r.read, r.inserted, r.quarantined), (3, 2, 1), "{r:?}");
    let t = s.timeline(&cid).await.unwrap();
    assert_eq!(t.len(), 2, "the export line joins Ana by email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_json_arrays_report_the_line_of_a_bad_element() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = db.dir.path();
    let arr = "[\n  {\"id\": \"1\", \"survey_type\": \"nps\", \"score\": 9, \"created_at\": 1704100000,\n   \"person\": {\"id\": \"p1\", \"email\": \"a@example.com\"}},\n  {\"id\": \"2\", \"survey_type\": \"csat\", \"score\": 7, \"created_at\": 1704100000},\n  {\"id\": \"3\", \"survey_type\": \"ces\", \"score\": 6, \"created_at\": 1704100000, \"comment\": \"easy\"}\n]\n";
    let file = write(dir, "d.json", arr.as_bytes());
    let r = import(&db, &opts(&file, Preset::DelightedJson)).await;
    assert_eq!((r.inserted, r.quarantined), (2, 1), "{r:?}");
    let q = db.store.quarantine(Some("open")).await.unwrap();
    assert_eq!(q[0].entry.error.line, Some(4));
    assert_eq!(q[0].entry.error.field.as_deref(), Some("csat (`score`)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantined_rows_replay_after_the_mapping_is_fixed() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = db.dir.path();
    // Day-first slashed dates are ambiguous: without the right format the row is quarantined.
    let wrong = REVIEW_MAPPING.replace("%d.%m.%Y %H:%M", "%m-%d-%Y");
    let mapping = write(dir, "m.toml", wrong.as_bytes());
    let file = write(
        dir,
        "r.csv",
        b"Review ID,Store,Email,Phone,Rating,Review,Date\nr1,Berlin Mitte,,,5,Super,04.03.2026 14:22\nr2,Berlin Mitte,,,1,Schlecht,25/03/2026 10:00\n",
    );
    let mut o = opts(&file, Preset::GenericCsv);
    o.mapping = Some(mapping);
    let r = import(&db, &o).await;
    assert_eq!((r.inserted, r.quarantined), (1, 1));
    let config = demo_config();
    let fixed = write(
        dir,
        "fixed.toml",
        REVIEW_MAPPING
            .replace("%d.%m.%Y %H:%M", "%d/%m/%Y %H:%M")
            .as_bytes(),
    );
    let rep = ingest::replay_quarantine(
        db.store.as_ref(),
        &analyzer(&config),
        &config,
        &[],
        Some(&fixed),
    )
    .await
    .unwrap();
    assert_eq!((rep.attempted, rep.imported, rep.still_failing), (1, 1, 0));
    assert_eq!(db.store.counts().await.unwrap().interactions, 2);
    assert!(db.store.quarantine(Some("open")).await.unwrap().is_empty());
}

/// Issue #2: 100,000 rows with 1% malformed; exactly the good rows stored, exactly the bad
/// ones quarantined with line and field; a second import inserts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_2_hundred_thousand_rows_with_one_percent_malformed() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let file = db.dir.path().join("big.csv");
    let stats = tideline::synth::zendesk_csv(
        std::io::BufWriter::new(std::fs::File::create(&file).unwrap()),
        100_000,
        100,
        11,
    )
    .unwrap();
    assert_eq!(stats.bad.len(), 1_000);
    let mut o = opts(&file, Preset::ZendeskCsv);
    o.timezone = Some("Europe/Berlin".into());
    let r = import(&db, &o).await;
    assert_eq!(r.read, 100_000);
    assert_eq!(r.inserted, stats.good);
    assert_eq!(r.quarantined, 1_000);
    let q = db.store.quarantine(Some("open")).await.unwrap();
    let mut got: Vec<(u64, String)> = q
        .iter()
        .map(|q| {
            (
                q.entry.error.line.unwrap(),
                q.entry.error.field.clone().unwrap(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(u64, String)> = stats
        .bad
        .iter()
        .map(|(line, field)| {
            let label = match *field {
                "occurred_at" => "occurred_at (`Created at`)",
                "external_id" => "external_id (`Id`)",
                _ => "csat (`Satisfaction Score`)",
            };
            (*line, label.to_string())
        })
        .collect();
    let diff: Vec<_> = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g != w)
        .take(3)
        .collect();
    assert!(
        diff.is_empty() && got.len() == want.len(),
        "first differences: {diff:?}"
    );

    let again = import(&db, &o).await;
    assert_eq!((again.inserted, again.updated), (0, 0));
    assert_eq!(again.unchanged, stats.good);
    assert_eq!(
        db.store.quarantine(Some("open")).await.unwrap().len(),
        1_000
    );
}

/// Issue #2: killing the process during an import and running it again ends in the same
/// state as one clean import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_2_a_killed_import_converges_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    tideline::synth::zendesk_csv(
        std::io::BufWriter::new(std::fs::File::create(&file).unwrap()),
        60_000,
        100,
        5,
    )
    .unwrap();
    let config = samples().join("tideline.toml");
    let run = |db: &Path| {
        let mut c = bin();
        c.arg("--config")
            .arg(&config)
            .arg("--database-url")
            .arg(format!("sqlite://{}", db.display()))
            .args([
                "import",
                "--preset",
                "zendesk-csv",
                "--timezone",
                "Europe/Berlin",
            ])
            .arg(&file);
        c
    };
    let killed_db = dir.path().join("killed.db");
    let mut child = run(&killed_db)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some batches are committed but well before the end.
    let url = tideline::config::Secret::new(format!("sqlite://{}", killed_db.display()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if killed_db.exists()
            && let Ok(s) = tideline::store::connect(&url, &Default::default()).await
            && s.counts().await.map(|c| c.interactions).unwrap_or(0) >= 3_000
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import never got going"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let store = tideline::store::connect(&url, &Default::default())
        .await
        .unwrap();
    let partial = store.counts().await.unwrap().interactions;
    assert!(
        partial < 59_400,
        "killed too late to prove anything: {partial}"
    );
    drop(store);
    assert!(run(&killed_db).output().unwrap().status.success());

    let clean_db = dir.path().join("clean.db");
    assert!(run(&clean_db).output().unwrap().status.success());
    let a = tideline::store::connect(&url, &Default::default())
        .await
        .unwrap();
    let b = tideline::store::connect(
        &tideline::config::Secret::new(format!("sqlite://{}", clean_db.display())),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        a.fingerprint().await.unwrap(),
        b.fingerprint().await.unwrap()
    );
    let qa: Vec<_> = a
        .quarantine(None)
        .await
        .unwrap()
        .into_iter()
        .map(|q| (q.entry.error.line, q.entry.error.raw))
        .collect();
    let qb: Vec<_> = b
        .quarantine(None)
        .await
        .unwrap()
        .into_iter()
        .map(|q| (q.entry.error.line, q.entry.error.raw))
        .collect();
    assert_eq!(qa, qb);
    assert_eq!(a.counts().await.unwrap(), b.counts().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_refines_a_preset_for_localized_zendesk_exports() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = db.dir.path();
    // A German-locale export: `;`, day-first slashed dates and a renamed id column.
    let csv = "Ticket-Nr.;Anfragender E-Mail;Betreff;Beschreibung;Erstellt;Store [list]\r\n\
               77;ana@example.com;Kalt;Das Essen war kalt.;03/04/2026 14:22;store_berlin\r\n";
    let file = write(dir, "de.csv", csv.as_bytes());
    let config = demo_config();
    let err = ingest::import_file(
        db.store.as_ref(),
        analyzer(&config),
        &config,
        &opts(&file, Preset::ZendeskCsv),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("lacks columns for external_id") && err.contains("Ticket-Nr."),
        "the error names what is missing and shows the header: {err}"
    );
    let mapping = write(
        dir,
        "de.toml",
        b"date_formats = [\"%d/%m/%Y %H:%M\"]\n[fields]\nexternal_id = \"Ticket-Nr.\"\nemail = \"Anfragender E-Mail\"\ntitle = \"Betreff\"\ntext = \"Beschreibung\"\noccurred_at = \"Erstellt\"\n",
    );
    let mut o = opts(&file, Preset::ZendeskCsv);
    o.mapping = Some(mapping);
    let r = import(&db, &o).await;
    assert_eq!((r.inserted, r.quarantined), (1, 0), "{r:?}");
    let cid = db
        .store
        .customer_by_identity(&Identity::new(IdentityKind::Email, "ana@example.com"))
        .await
        .unwrap()
        .unwrap();
    let t = db.store.timeline(&cid).await.unwrap();
    assert_eq!(
        t[0].interaction.location_id.as_deref(),
        Some("berlin-mitte")
    );
    // 3 April 2026 14:22 in Berlin (CEST) is 12:22 UTC.
    assert_eq!(t[0].interaction.occurred_at_ms, 1_775_218_920_000);
}
