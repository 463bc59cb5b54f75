//! Issue 10: the CRM outbox in the store, on SQLite and on PostgreSQL. What the data
//! writes queue (in their own transaction), how leases, generations, retries and parking
//! behave, and what an erasure turns into.

use crate::common::TestDb;
use crate::on_both_backends;
use tideline::model::{Identity, IdentityKind, Interaction, InteractionKind};
use tideline::pipeline::normalize::content_hash;
use tideline::store::{
    CrmEntity, CrmLink, CrmOutcome, CrmPayload, CrmResult, Erasure, WriteBatch, interaction_key,
};

fn interaction(id: &str, at: i64, email: Option<&str>, text: &str) -> Interaction {
    let mut i = Interaction {
        source: "test".into(),
        external_id: id.into(),
        kind: InteractionKind::Review,
        parent_external_id: None,
        occurred_at_ms: at,
        updated_at_ms: Some(at),
        location_id: Some("berlin-mitte".into()),
        author_name: Some("Ana Lopez".into()),
        identities: email
            .map(|e| vec![Identity::new(IdentityKind::Email, e)])
            .unwrap_or_default(),
        text: Some(text.into()),
        language: Some("en".into()),
        language_confidence: Some(0.9),
        stars: Some(2.0),
        nps: None,
        csat: None,
        ces: None,
        status: None,
        sentiment: None,
        aspects: vec![],
        url: None,
        raw: "{}".into(),
        content_hash: String::new(),
    };
    i.content_hash = content_hash(&i);
    i
}

async fn write(db: &TestDb, items: Vec<Interaction>) {
    db.store
        .write_batch(WriteBatch {
            interactions: items,
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn pending(db: &TestDb, sink: &str) -> (i64, i64) {
    let s = db
        .store
        .crm_status()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.sink == sink)
        .unwrap();
    (s.pending, s.parked)
}

fn delivered(item: &tideline::store::CrmItem, remote: &str) -> CrmOutcome {
    let customer = match &item.payload {
        CrmPayload::Interaction { person, .. } => person.as_ref().map(|p| p.customer_id.clone()),
        _ => None,
    };
    let mut links = vec![CrmLink {
        entity: item.entity,
        crm_key: item.crm_key.clone(),
        customer_id: customer.clone(),
        remote_id: Some(remote.to_string()),
        created: true,
    }];
    if let Some(c) = customer {
        links.push(CrmLink {
            entity: CrmEntity::Customer,
            crm_key: c.clone(),
            customer_id: Some(c),
            remote_id: Some(format!("contact-{remote}")),
            created: true,
        });
    }
    CrmOutcome {
        id: item.id,
        generation: item.generation,
        result: CrmResult::Delivered { links },
    }
}

async fn the_outbox_follows_the_data(db: TestDb) {
    // Data stored before the sink existed is its backfill, in one transaction.
    write(
        &db,
        vec![
            interaction("a", 1_000, Some("ana@example.com"), "cold fries"),
            interaction("b", 2_000, Some("bo@example.com"), "great"),
        ],
    )
    .await;
    assert_eq!(
        db.store.crm_register("hub", "hubspot").await.unwrap(),
        Some(2)
    );
    assert_eq!(db.store.crm_register("hub", "hubspot").await.unwrap(), None);
    assert_eq!(pending(&db, "hub").await, (2, 0));

    // New and changed interactions are queued by the write itself; unchanged ones are not.
    write(
        &db,
        vec![
            interaction("a", 1_000, Some("ana@example.com"), "cold fries"),
            interaction("c", 3_000, None, "anonymous"),
        ],
    )
    .await;
    assert_eq!(pending(&db, "hub").await, (3, 0));

    // A lease hands each item to one worker; the data is read as it is now.
    let first = db.store.crm_lease("hub", 2, Some(60_000)).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = db.store.crm_lease("hub", 10, Some(60_000)).await.unwrap();
    assert_eq!(rest.len(), 1, "leased items are not handed out twice");
    assert!(
        db.store
            .crm_lease("hub", 10, Some(60_000))
            .await
            .unwrap()
            .is_empty()
    );
    let a = &first[0];
    assert_eq!(a.crm_key, interaction_key("test", "a"));
    match &a.payload {
        CrmPayload::Interaction {
            interaction,
            person,
        } => {
            assert_eq!(interaction.interaction.text.as_deref(), Some("cold fries"));
            let p = person.as_ref().unwrap();
            assert_eq!(p.email.as_deref(), Some("ana@example.com"));
            assert_eq!(p.contact_id, None);
        }
        other => panic!("{other:?}"),
    }

    // `a` changes while its delivery is on the way: the delivery does not remove the
    // newer version, which goes again.
    write(
        &db,
        vec![interaction(
            "a",
            1_000,
            Some("ana@example.com"),
            "cold fries, edited",
        )],
    )
    .await;
    db.store
        .crm_finish("hub", &[delivered(a, "n1"), delivered(&first[1], "n2")], 5)
        .await
        .unwrap();
    assert_eq!(pending(&db, "hub").await, (2, 0), "a (newer) and c remain");
    let again = db.store.crm_lease("hub", 10, Some(60_000)).await.unwrap();
    assert_eq!(again.len(), 1, "c is still leased; a is back");
    assert_eq!(again[0].crm_key, a.crm_key);
    match &again[0].payload {
        CrmPayload::Interaction {
            interaction,
            person,
        } => {
            assert_eq!(
                interaction.interaction.text.as_deref(),
                Some("cold fries, edited")
            );
            assert_eq!(
                person.as_ref().unwrap().contact_id.as_deref(),
                Some("contact-n1"),
                "the contact found by the first delivery is remembered"
            );
        }
        other => panic!("{other:?}"),
    }

    // Failures back off and count; after max_attempts the item is parked, visible, and
    // can be queued again.
    let retry = |item: &tideline::store::CrmItem| CrmOutcome {
        id: item.id,
        generation: item.generation,
        result: CrmResult::Retry {
            error: "HubSpot answered HTTP 500".into(),
            at_ms: 0,
            counts: true,
            uncertain: true,
        },
    };
    db.store
        .crm_finish("hub", &[retry(&again[0])], 2)
        .await
        .unwrap();
    let third = db.store.crm_lease("hub", 10, Some(60_000)).await.unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].attempts, 1);
    assert!(
        third[0].uncertain,
        "the next delivery knows the CRM may have it"
    );
    db.store
        .crm_finish("hub", &[retry(&third[0])], 2)
        .await
        .unwrap();
    assert_eq!(pending(&db, "hub").await, (1, 1));
    let parked = db.store.crm_parked(Some("hub"), 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].last_error.as_deref().unwrap().contains("500"));
    assert_eq!(db.store.crm_retry(Some("hub"), &[]).await.unwrap(), 1);
    assert_eq!(pending(&db, "hub").await, (2, 0));

    // A refused item is parked at once.
    let fourth = db.store.crm_lease("hub", 10, Some(60_000)).await.unwrap();
    assert_eq!(fourth.len(), 1);
    db.store
        .crm_finish(
            "hub",
            &[CrmOutcome {
                id: fourth[0].id,
                generation: fourth[0].generation,
                result: CrmResult::Park {
                    error: "VALIDATION_ERROR".into(),
                },
            }],
            10,
        )
        .await
        .unwrap();
    assert_eq!(pending(&db, "hub").await, (1, 1));
    // A new version of a parked record leaves the parking lot.
    write(
        &db,
        vec![interaction(
            "a",
            1_000,
            Some("ana@example.com"),
            "cold fries, fixed",
        )],
    )
    .await;
    assert_eq!(pending(&db, "hub").await, (2, 0));

    // A dry run reads without leasing.
    let peek = db.store.crm_lease("hub", 10, None).await.unwrap();
    assert_eq!(peek.len(), 1, "c is still leased by the first worker");
    assert_eq!(db.store.crm_lease("hub", 10, None).await.unwrap().len(), 1);
}

async fn an_erasure_becomes_deletes(db: TestDb) {
    db.store.crm_register("hub", "hubspot").await.unwrap();
    write(
        &db,
        vec![
            interaction("a", 1_000, Some("ana@example.com"), "first"),
            interaction("b", 2_000, Some("ana@example.com"), "second"),
            interaction("z", 3_000, Some("zoe@example.com"), "other person"),
        ],
    )
    .await;
    // a is delivered; b is still queued when the erasure comes.
    let items = db.store.crm_lease("hub", 1, Some(60_000)).await.unwrap();
    assert_eq!(items[0].crm_key, interaction_key("test", "a"));
    db.store
        .crm_finish("hub", &[delivered(&items[0], "notes/1")], 5)
        .await
        .unwrap();
    let customer = db
        .store
        .customer_by_identity(&Identity::new(IdentityKind::Email, "ana@example.com"))
        .await
        .unwrap()
        .unwrap();
    db.store
        .erase(&Erasure {
            customer_id: customer.clone(),
            tombstones: vec![],
            subject: "s".into(),
            quarantine_needles: vec![],
        })
        .await
        .unwrap();
    let queue = db.store.crm_lease("hub", 10, Some(60_000)).await.unwrap();
    let mut what: Vec<(String, String, Option<String>)> = queue
        .iter()
        .map(|i| {
            let kind = match &i.payload {
                CrmPayload::Delete => "delete".to_string(),
                CrmPayload::Interaction { interaction, .. } => {
                    format!("upsert {}", interaction.interaction.external_id)
                }
                other => format!("{other:?}"),
            };
            (kind, i.entity.as_str().to_string(), i.remote_id.clone())
        })
        .collect();
    what.sort();
    assert_eq!(
        what,
        vec![
            (
                "delete".to_string(),
                "customer".to_string(),
                Some("contact-notes/1".to_string())
            ),
            (
                "delete".to_string(),
                "interaction".to_string(),
                Some("notes/1".to_string())
            ),
            ("upsert z".to_string(), "interaction".to_string(), None),
        ],
        "b's queued upsert went with the data; a and the contact are taken back"
    );
    // A delivered delete forgets the link.
    let outcomes: Vec<CrmOutcome> = queue
        .iter()
        .filter(|i| matches!(i.payload, CrmPayload::Delete))
        .map(|i| CrmOutcome {
            id: i.id,
            generation: i.generation,
            result: CrmResult::Delivered {
                links: vec![CrmLink {
                    entity: i.entity,
                    crm_key: i.crm_key.clone(),
                    customer_id: None,
                    remote_id: None,
                    created: true,
                }],
            },
        })
        .collect();
    db.store.crm_finish("hub", &outcomes, 5).await.unwrap();
    let s = db.store.crm_status().await.unwrap();
    assert_eq!(s[0].links, 0);
    assert_eq!(s[0].pending, 1, "z is still leased");
}

async fn a_customer_who_gains_an_email_goes_again(db: TestDb) {
    db.store.crm_register("hub", "hubspot").await.unwrap();
    let phone = |id: &str, at: i64, email: Option<&str>| {
        let mut i = interaction(id, at, email, "call me back");
        i.identities
            .push(Identity::new(IdentityKind::Phone, "+4915112345678"));
        i.content_hash = content_hash(&i);
        i
    };
    write(&db, vec![phone("p1", 1_000, None)]).await;
    // HubSpot could not take it (no email): skipped.
    let items = db.store.crm_lease("hub", 10, Some(60_000)).await.unwrap();
    assert_eq!(items.len(), 1);
    db.store
        .crm_finish(
            "hub",
            &[CrmOutcome {
                id: items[0].id,
                generation: items[0].generation,
                result: CrmResult::Skipped {
                    reason: "no email".into(),
                },
            }],
            5,
        )
        .await
        .unwrap();
    assert_eq!(pending(&db, "hub").await, (0, 0));
    // The same person writes again, now with an email: both records go.
    write(&db, vec![phone("p2", 2_000, Some("pia@example.com"))]).await;
    let items = db.store.crm_lease("hub", 10, Some(60_000)).await.unwrap();
    let mut keys: Vec<String> = items.iter().map(|i| i.crm_key.clone()).collect();
    keys.sort();
    let mut want = vec![interaction_key("test", "p1"), interaction_key("test", "p2")];
    want.sort();
    assert_eq!(keys, want);
    for i in &items {
        match &i.payload {
            CrmPayload::Interaction { person, .. } => assert_eq!(
                person.as_ref().unwrap().email.as_deref(),
                Some("pia@example.com")
            ),
            other => panic!("{other:?}"),
        }
    }
}

on_both_backends!(
    the_outbox_follows_the_data,
    an_erasure_becomes_deletes,
    a_customer_who_gains_an_email_goes_again
);
