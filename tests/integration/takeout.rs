//! The `google-takeout` preset over a Business Profile export folder: reviews of two
//! accounts sharing a location read once (the newest edit wins), Google's translation
//! wrapper dropped for the original text, owner replies as replies, the store named by
//! `additionalData.json`, bad reviews quarantined with file, index and field, and the
//! Maps "reviews I wrote" file refused with an explanation.

use crate::common::{self, TestDb};
use crate::on_both_backends;
use tideline::config::{Config, Overrides};
use tideline::connectors::files::Preset;
use tideline::ingest::{self, ImportOptions};
use tideline::model::InteractionKind;

fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/google-takeout")
        .join(rel)
}

fn config(db: &TestDb) -> Config {
    let text = format!(
        r#"
[storage]
database_url = "{}"
[pipeline]
sentiment_adapt = false
[[location]]
id = "burger-mitte"
timezone = "Europe/Berlin"
country = "DE"
aliases = ["Burger Haus Mitte"]
[[location]]
id = "burger-kreuzberg"
timezone = "Europe/Berlin"
country = "DE"
aliases = ["9001"]
"#,
        db.url.expose()
    );
    Config::from_toml(&text, "test", &Overrides::default()).unwrap()
}

fn options(path: std::path::PathBuf) -> ImportOptions {
    ImportOptions {
        path,
        preset: Preset::GoogleTakeout,
        mapping: None,
        source: None,
        location: None,
        timezone: None,
    }
}

async fn takeout_folder_is_read_once_with_originals_and_replies(db: TestDb) {
    let config = config(&db);
    let o = options(fixture("Takeout/Google Business Profile"));
    let r = ingest::import_file(db.store.as_ref(), common::analyzer(&config), &config, &o)
        .await
        .unwrap();
    // 8 reviews read in 4 files; 2 are older copies of a shared location; 1 has no name,
    // 1 an unknown star value: 4 reviews stored, plus 1 owner reply.
    assert_eq!((r.inserted, r.quarantined), (5, 2), "{r:?}");

    let all = db.store.interactions_after(0, 100).await.unwrap();
    let get = |id: &str| {
        all.iter()
            .map(|s| &s.interaction)
            .find(|i| i.external_id == id)
            .unwrap_or_else(|| panic!("{id} stored: {all:?}"))
    };
    let ana = get("locations/7001/reviews/AbF1");
    assert_eq!(ana.source, "google");
    assert_eq!(ana.kind, InteractionKind::Review);
    assert_eq!(ana.stars, Some(2.0));
    assert_eq!(
        ana.text.as_deref(),
        Some("Haben 40 Minuten auf kalte Pommes gewartet.")
    );
    assert_eq!(ana.language.as_deref(), Some("de"));
    assert_eq!(ana.location_id.as_deref(), Some("burger-mitte"));
    let reply = get("locations/7001/reviews/AbF1#reply");
    assert_eq!(reply.kind, InteractionKind::Reply);
    assert_eq!(reply.text.as_deref(), Some("Das tut uns leid, Ana."));
    // The shared review: the newer edit from the second account wins.
    let tom = get("locations/7001/reviews/AbF2");
    assert_eq!(tom.stars, Some(3.0));
    assert_eq!(
        tom.text.as_deref(),
        Some("Edited: the second visit was slower.")
    );
    let jan = get("locations/7001/reviews/AbF4");
    assert_eq!(
        jan.text.as_deref(),
        Some("Lekker gegeten, vriendelijke bediening.")
    );
    assert_eq!(jan.language.as_deref(), Some("nl"));
    let lea = get("locations/9001/reviews/Zz1");
    assert_eq!(lea.location_id.as_deref(), Some("burger-kreuzberg"));

    let q = db.store.quarantine(None).await.unwrap();
    assert_eq!(q.len(), 2);
    let no_name = q
        .iter()
        .find(|i| i.entry.error.field.as_deref() == Some("name"))
        .expect("the review without a name");
    assert!(
        no_name
            .entry
            .error
            .origin
            .ends_with("location-7/reviews.json")
    );
    assert_eq!(no_name.entry.error.line, Some(3));
    let bad_stars = q
        .iter()
        .find(|i| {
            i.entry
                .error
                .field
                .as_deref()
                .is_some_and(|f| f.contains("stars"))
        })
        .expect("the unknown star value");
    assert!(bad_stars.entry.error.raw.contains("STAR_RATING_BOGUS"));
    assert!(q.iter().all(|i| i.entry.preset == "google-takeout"));

    // The same folder again: one import per content, nothing new.
    let again = ingest::import_file(db.store.as_ref(), common::analyzer(&config), &config, &o)
        .await
        .unwrap();
    assert_eq!(again.inserted, 0, "{again:?}");
}

async fn takeout_refuses_the_maps_reviews_file(db: TestDb) {
    let config = config(&db);
    let o = options(fixture("maps/Maps (your places)/Reviews.json"));
    let err = ingest::import_file(db.store.as_ref(), common::analyzer(&config), &config, &o)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("reviews this account wrote"), "{err}");
    assert!(err.contains("Google Business Profile"), "{err}");
}

on_both_backends!(
    takeout_folder_is_read_once_with_originals_and_replies,
    takeout_refuses_the_maps_reviews_file
);
