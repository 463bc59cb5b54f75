//! Issue 5: erasure. After `erase`, no text column of any table holds the person's emails,
//! phones or texts (both backends), and importing the same files again adds nothing of
//! them.

use crate::common::TestDb;
use crate::on_both_backends;
use sqlx::Row;
use tideline::analyze::analyze;
use tideline::ingest::{self, ImportOptions};
use tideline::pipeline::detect::Settings;

async fn import_all(db: &TestDb, config: &tideline::config::Config) -> u64 {
    let analyzer = crate::common::analyzer(config);
    let samples = crate::common::samples();
    let mut erased = 0;
    for (file, preset, mapping, source) in tideline::demo::IMPORTS {
        let opts = ImportOptions {
            path: samples.join(file),
            preset: *preset,
            mapping: mapping.map(|m| samples.join(m)),
            source: Some(source.to_string()),
            location: None,
            timezone: None,
        };
        let r = ingest::import_file(db.store.as_ref(), analyzer.clone(), config, &opts)
            .await
            .unwrap();
        erased += r.erased;
    }
    erased
}

/// Rows in any text column of any table containing `needle` (case-insensitive).
async fn scan(db: &TestDb, needle: &str) -> Vec<String> {
    let pattern = format!("%{}%", needle.to_lowercase());
    let mut hits = Vec::new();
    if db.url.expose().starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(db.url.expose()).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for t in tables {
            let cols = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{t}')"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            for c in cols {
                let c: String = c.try_get("name").unwrap();
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM \"{t}\" WHERE LOWER(CAST(\"{c}\" AS TEXT)) LIKE $1"
                )))
                .bind(&pattern)
                .fetch_one(&pool)
                .await
                .unwrap();
                if n > 0 {
                    hits.push(format!("{t}.{c}: {n}"));
                }
            }
        }
    } else {
        let pool = sqlx::PgPool::connect(db.url.expose()).await.unwrap();
        let cols = sqlx::query(
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for r in cols {
            let (t, c): (String, String) = (r.try_get("t").unwrap(), r.try_get("c").unwrap());
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM \"{t}\" WHERE LOWER(\"{c}\"::text) LIKE $1"
            )))
            .bind(&pattern)
            .fetch_one(&pool)
            .await
            .unwrap();
            if n > 0 {
                hits.push(format!("{t}.{c}: {n}"));
            }
        }
    }
    hits
}

async fn erasure_leaves_nothing_and_reimports_nothing(db: TestDb) {
    let mut config = crate::common::demo_config();
    config.storage.data_dir = db.dir.path().to_path_buf();
    db.store.put_locations(&config.locations).await.unwrap();
    import_all(&db, &config).await;
    analyze(db.store.as_ref(), &Settings::default(), 0)
        .await
        .unwrap();
    let s = db.store.as_ref();

    // The person seen in the most sources, and everything that identifies them.
    let busiest = s.busiest_customers(1).await.unwrap();
    let cid = busiest[0].customer_id.clone();
    // An operator linked one of their reviews that was signed with a display name only:
    // it is erased with them, and its anchor keeps it out of the re-import.
    let reviews = s
        .interactions_page(&tideline::store::InteractionFilter {
            limit: 1000,
            kind: Some("review".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let named_only = reviews
        .iter()
        .find(|i| {
            i.customer_id.as_deref() != Some(cid.as_str())
                && i.interaction
                    .text
                    .as_ref()
                    .is_some_and(|t| t.chars().count() >= 25)
                && i.interaction
                    .identities
                    .iter()
                    .any(|x| x.kind == tideline::model::IdentityKind::Item)
        })
        .expect("the demo has reviews signed with a name only");
    let anchor = named_only
        .interaction
        .identities
        .iter()
        .find(|x| x.kind == tideline::model::IdentityKind::Item)
        .unwrap()
        .clone();
    let own = s.customer(&cid).await.unwrap().unwrap();
    let (_, into) = s.link(&anchor, &own.identities[0]).await.unwrap().unwrap();
    let cid = into;
    let customer = s.customer(&cid).await.unwrap().unwrap();
    assert!(customer.identities.contains(&anchor));
    let timeline = s.timeline(&cid).await.unwrap();
    assert!(timeline.len() >= 3 && customer.identities.len() >= 2);
    let mut needles: Vec<String> = customer
        .identities
        .iter()
        .filter(|i| i.kind.is_strong())
        .map(|i| i.value.clone())
        .collect();
    for i in &timeline {
        if let Some(t) = &i.interaction.text
            && t.chars().count() >= 25
        {
            // A distinctive stretch of each text.
            needles.push(t.chars().take(40).collect());
        }
    }
    for n in &needles {
        assert!(
            !scan(&db, n).await.is_empty(),
            "before: {n} should be stored"
        );
    }
    let before = s.counts().await.unwrap();

    let email = customer
        .identities
        .iter()
        .find(|i| i.kind == tideline::model::IdentityKind::Email)
        .map(|i| i.value.clone())
        .unwrap();
    let (erased, outcome) = tideline::erasure::erase(s, &config, &email).await.unwrap();
    assert_eq!(erased, cid);
    // Their interactions, and the owner's replies to their reviews.
    assert!(
        outcome.interactions as usize >= timeline.len(),
        "{outcome:?}"
    );
    for n in &needles {
        let hits = scan(&db, n).await;
        assert!(hits.is_empty(), "after erasure {n:?} is still in {hits:?}");
    }
    assert!(
        scan(&db, &cid).await.is_empty(),
        "the customer id is gone too"
    );
    assert!(s.customer(&cid).await.unwrap().is_none());
    assert!(s.tombstones().await.unwrap().len() >= 2);

    // The same files again: nothing of them comes back, everyone else is unchanged.
    let dropped = import_all(&db, &config).await;
    assert!(dropped >= outcome.interactions, "{dropped}");
    for n in &needles {
        assert!(
            scan(&db, n).await.is_empty(),
            "re-import brought back {n:?}"
        );
    }
    let after = s.counts().await.unwrap();
    assert_eq!(
        after.interactions,
        before.interactions - outcome.interactions as i64
    );
    assert_eq!(after.customers, before.customers - 1);
    // Change detection starts over without them.
    let r = analyze(s, &Settings::default(), 0).await.unwrap();
    assert_eq!(r.interactions as i64, after.interactions);
}

on_both_backends!(erasure_leaves_nothing_and_reimports_nothing);
