//! Watch folders: each dropped file imported once (by content), partial and fresh files
//! left for later, a broken file given up after its attempts, per-file results.

use crate::common::{self, TestDb};
use crate::on_both_backends;
use std::time::Duration;
use tideline::config::{Config, Overrides};
use tideline::watch::FileResult;

fn config(db: &TestDb, inbox: &std::path::Path, settle_secs: u64) -> Config {
    let demo = std::fs::read_to_string(common::samples().join("tideline.toml")).unwrap();
    let text = format!(
        "{demo}\n[[watch]]\nname = \"inbox\"\ndir = \"{}\"\npreset = \"zendesk-csv\"\nsettle_secs = {settle_secs}\nmax_attempts = 2\n",
        inbox.display()
    );
    let mut c = Config::from_toml(&text, "test", &Overrides::default()).unwrap();
    c.storage.database_url = Some(db.url.clone());
    c
}

async fn watch_folders_import_each_content_once(db: TestDb) {
    let inbox = db.dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let tickets = std::fs::read(common::samples().join("zendesk_tickets.csv")).unwrap();
    std::fs::write(inbox.join("export-monday.csv"), &tickets).unwrap();
    // The same content under another name, a download in progress, a hidden file.
    std::fs::write(inbox.join("export-copy.csv"), &tickets).unwrap();
    std::fs::write(inbox.join("next.csv.part"), b"Id,Subject\n1,x\n").unwrap();
    std::fs::write(inbox.join(".~lock.export.csv#"), b"lock").unwrap();
    // Not a CSV export at all.
    std::fs::write(inbox.join("broken.csv"), [0xff, 0xfe, 0x00, 0xd8, 0x00]).unwrap();

    let config = config(&db, &inbox, 0);
    let analyzer = common::analyzer(&config);
    let stop = Default::default();
    let w = &config.watches[0];
    let first = tideline::watch::scan(db.store.as_ref(), analyzer.clone(), &config, w, &stop)
        .await
        .unwrap();
    let imported: Vec<&str> = first
        .files
        .iter()
        .filter(|f| matches!(f.result, FileResult::Imported { .. }))
        .map(|f| f.file.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(imported, vec!["export-copy.csv"], "{first:?}");
    assert_eq!(
        first.skipped_known, 1,
        "the same content under another name"
    );
    let stored = db.store.counts().await.unwrap().interactions;
    assert!(stored > 0);
    let broken_failed = first
        .files
        .iter()
        .any(|f| f.file.ends_with("broken.csv") && matches!(f.result, FileResult::Failed { .. }));
    let broken_imported_nothing = first.files.iter().any(|f| {
        f.file.ends_with("broken.csv")
            && matches!(&f.result, FileResult::Imported { report } if report.inserted == 0)
    });
    assert!(broken_failed || broken_imported_nothing, "{first:?}");

    // Second pass: nothing new, nothing twice.
    let second = tideline::watch::scan(db.store.as_ref(), analyzer.clone(), &config, w, &stop)
        .await
        .unwrap();
    assert!(
        second.files.iter().all(|f| f.file.ends_with("broken.csv")),
        "{second:?}"
    );
    assert_eq!(db.store.counts().await.unwrap().interactions, stored);
    // A broken file is tried max_attempts times, then left alone.
    let third = tideline::watch::scan(db.store.as_ref(), analyzer.clone(), &config, w, &stop)
        .await
        .unwrap();
    assert!(third.files.is_empty(), "{third:?}");
    if broken_failed {
        assert_eq!(third.skipped_given_up, 1);
    }

    // A file still being written waits for the settle time.
    let slow = config_with_settle(&db, &inbox);
    std::fs::write(
        inbox.join("fresh.csv"),
        b"Id,Subject,Created at\n9001,Fresh,2026-02-01 10:00:00\n",
    )
    .unwrap();
    let r = tideline::watch::scan(
        db.store.as_ref(),
        analyzer.clone(),
        &slow,
        &slow.watches[0],
        &stop,
    )
    .await
    .unwrap();
    assert_eq!(r.skipped_unsettled, 1, "{r:?}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let r = tideline::watch::scan(db.store.as_ref(), analyzer, &config, w, &stop)
        .await
        .unwrap();
    assert_eq!(r.files.len(), 1, "{r:?}");
    assert_eq!(db.store.counts().await.unwrap().interactions, stored + 1);
}

fn config_with_settle(db: &TestDb, inbox: &std::path::Path) -> Config {
    config(db, inbox, 600)
}

on_both_backends!(watch_folders_import_each_content_once);
