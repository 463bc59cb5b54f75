//! One storage story, run on SQLite and on PostgreSQL.

use crate::common::TestDb;
use crate::on_both_backends;
use tideline::connectors::files::Preset;
use tideline::ingest::{self, ImportOptions};
use tideline::model::{Csat, Identity, IdentityKind, Interaction, InteractionKind};
use tideline::pipeline::RowError;
use tideline::pipeline::normalize::content_hash;
use tideline::store::{QuarantineEntry, WriteBatch};

fn interaction(id: &str, at: i64, email: Option<&str>, text: &str) -> Interaction {
    let mut i = Interaction {
        source: "test".into(),
        external_id: id.into(),
        kind: InteractionKind::Ticket,
        parent_external_id: None,
        occurred_at_ms: at,
        updated_at_ms: Some(at),
        location_id: Some("berlin-mitte".into()),
        author_name: Some("Ana".into()),
        identities: email
            .map(|e| vec![Identity::new(IdentityKind::Email, e)])
            .unwrap_or_default(),
        text: Some(text.into()),
        language: Some("en".into()),
        language_confidence: Some(0.9),
        stars: None,
        nps: None,
        csat: None,
        ces: None,
        status: Some("open".into()),
        sentiment: None,
        aspects: vec![],
        url: None,
        raw: "{}".into(),
        content_hash: String::new(),
    };
    i.content_hash = content_hash(&i);
    i
}

fn batch(items: Vec<Interaction>) -> WriteBatch {
    WriteBatch {
        interactions: items,
        ..Default::default()
    }
}

async fn upserts_are_idempotent_and_edits_bump_the_revision(db: TestDb) {
    let s = db.store.as_ref();
    let a = interaction("1", 1_000, Some("a@x.org"), "hello");
    let b = interaction("2", 2_000, Some("b@x.org"), "world");
    let o = s
        .write_batch(batch(vec![a.clone(), b.clone()]))
        .await
        .unwrap();
    assert_eq!((o.inserted, o.updated, o.unchanged), (2, 0, 0));
    let o = s
        .write_batch(batch(vec![a.clone(), b.clone()]))
        .await
        .unwrap();
    assert_eq!((o.inserted, o.updated, o.unchanged), (0, 0, 2));

    let mut edited = interaction("1", 1_000, Some("a@x.org"), "hello, edited");
    edited.updated_at_ms = Some(5_000);
    edited.content_hash = content_hash(&edited);
    let o = s.write_batch(batch(vec![edited])).await.unwrap();
    assert_eq!((o.inserted, o.updated, o.unchanged), (0, 1, 0));
    let cid = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "a@x.org"))
        .await
        .unwrap()
        .unwrap();
    let t = s.timeline(&cid).await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].revision, 2);
    assert_eq!(t[0].interaction.text.as_deref(), Some("hello, edited"));

    // An older copy (earlier updated_at) does not overwrite the newer one.
    let o = s.write_batch(batch(vec![a])).await.unwrap();
    assert_eq!((o.inserted, o.updated, o.unchanged), (0, 0, 1));
    assert_eq!(s.counts().await.unwrap().interactions, 2);
}

async fn the_last_copy_of_a_key_in_a_batch_wins(db: TestDb) {
    let s = db.store.as_ref();
    let first = interaction("1", 1_000, None, "first");
    let mut second = interaction("1", 1_000, None, "second");
    second.updated_at_ms = Some(2_000);
    second.content_hash = content_hash(&second);
    let o = s.write_batch(batch(vec![first, second])).await.unwrap();
    assert_eq!((o.inserted, o.unchanged), (1, 1));
    let fp = s.fingerprint().await.unwrap();
    assert_eq!(fp.len(), 1);
}

async fn identities_join_and_merge_customers(db: TestDb) {
    let s = db.store.as_ref();
    let mut phone_only = interaction("p", 3_000, None, "by phone");
    phone_only.identities = vec![Identity::new(IdentityKind::Phone, "+49301234567")];
    phone_only.content_hash = content_hash(&phone_only);
    s.write_batch(batch(vec![
        interaction("e", 1_000, Some("ana@x.org"), "by mail"),
        phone_only,
    ]))
    .await
    .unwrap();
    assert_eq!(s.counts().await.unwrap().customers, 2);

    // A survey that carries both joins them.
    let mut both = interaction("s", 2_000, Some("ana@x.org"), "survey");
    both.source = "delighted".into();
    both.identities
        .push(Identity::new(IdentityKind::Phone, "+49301234567"));
    both.identities.sort();
    both.content_hash = content_hash(&both);
    let o = s.write_batch(batch(vec![both])).await.unwrap();
    assert_eq!(o.merged_customers, 1);
    let counts = s.counts().await.unwrap();
    assert_eq!(counts.customers, 1);
    let cid = s
        .customer_by_identity(&Identity::new(IdentityKind::Phone, "+49301234567"))
        .await
        .unwrap()
        .unwrap();
    let t = s.timeline(&cid).await.unwrap();
    let ids: Vec<&str> = t
        .iter()
        .map(|i| i.interaction.external_id.as_str())
        .collect();
    assert_eq!(ids, ["e", "s", "p"], "time order across sources");
    let c = s.customer(&cid).await.unwrap().unwrap();
    assert_eq!(c.identities.len(), 2);
}

async fn quarantine_rows_are_kept_once_and_can_be_resolved(db: TestDb) {
    let s = db.store.as_ref();
    let entry = QuarantineEntry {
        source: "zendesk".into(),
        preset: "zendesk-csv".into(),
        options: serde_json::json!({}),
        error: RowError {
            origin: "/x/tickets.csv".into(),
            line: Some(7),
            field: Some("occurred_at (`Created at`)".into()),
            expected: "a date".into(),
            message: "`31/02` is not a date".into(),
            raw: "{\"Id\":\"1\"}".into(),
        },
    };
    for _ in 0..2 {
        s.write_batch(WriteBatch {
            rejects: vec![entry.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let q = s.quarantine(Some("open")).await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].entry.error.line, Some(7));
    s.write_batch(WriteBatch {
        resolved_quarantine: vec![q[0].id],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(s.quarantine(Some("open")).await.unwrap().is_empty());
    assert_eq!(s.quarantine(Some("replayed")).await.unwrap().len(), 1);
}

async fn location_figures_carry_their_sample_sizes(db: TestDb) {
    let s = db.store.as_ref();
    let mut items = Vec::new();
    for (k, nps) in [10, 9, 8, 3].into_iter().enumerate() {
        let mut i = interaction(&format!("n{k}"), 1_000 + k as i64, None, "x");
        i.kind = InteractionKind::SurveyResponse;
        i.nps = Some(nps);
        i.content_hash = content_hash(&i);
        items.push(i);
    }
    let mut c = interaction("c", 9_000, None, "y");
    c.csat = Some(Csat {
        value: 5.0,
        scale: "1-5".into(),
        satisfied: true,
    });
    c.content_hash = content_hash(&c);
    items.push(c);
    s.write_batch(batch(items)).await.unwrap();
    let rows = s.location_summaries().await.unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.nps_n, r.promoters, r.detractors), (4, 2, 1));
    assert_eq!((r.csat_n, r.csat_satisfied), (1, 1));
    assert_eq!(r.interactions, 5);
}

async fn a_file_import_is_idempotent(db: TestDb) {
    let config = crate::common::demo_config();
    let analyzer = crate::common::analyzer(&config);
    let opts = ImportOptions {
        path: crate::common::samples().join("delighted_responses.json"),
        preset: Preset::DelightedJson,
        mapping: None,
        source: None,
        location: None,
        timezone: None,
    };
    let first = ingest::import_file(db.store.as_ref(), analyzer.clone(), &config, &opts)
        .await
        .unwrap();
    assert!(first.inserted > 50, "{first:?}");
    assert_eq!(first.quarantined, 1, "the sample holds one NPS of 14");
    let second = ingest::import_file(db.store.as_ref(), analyzer, &config, &opts)
        .await
        .unwrap();
    assert_eq!(second.inserted, 0);
    assert_eq!(second.updated, 0);
    assert_eq!(second.unchanged, first.inserted);
    assert_eq!(db.store.quarantine(Some("open")).await.unwrap().len(), 1);
}

async fn a_shared_phone_becomes_a_suggestion_not_a_merge(db: TestDb) {
    let s = db.store.as_ref();
    let person = |id: &str, email: &str, name: &str| {
        let mut i = interaction(id, 1_000, Some(email), "hello");
        i.author_name = Some(name.into());
        i.identities
            .push(Identity::new(IdentityKind::Phone, "+4930111222"));
        i.identities.push(Identity::new(IdentityKind::Name, name));
        i.identities.sort();
        i.content_hash = content_hash(&i);
        i
    };
    s.write_batch(batch(vec![person("1", "anna@x.org", "Anna Kovač")]))
        .await
        .unwrap();
    // Her partner, same landline, own email: not the same person.
    let o = s
        .write_batch(batch(vec![person("2", "ben@x.org", "Ben Kovač")]))
        .await
        .unwrap();
    assert_eq!(o.merged_customers, 0);
    assert_eq!(o.link_suggestions, 1);
    // Anna again with her work address: same first name, so the phone joins them.
    s.write_batch(batch(vec![person("3", "anna@work.example", "anna k.")]))
        .await
        .unwrap();
    let find = |e: &str| {
        let e = e.to_string();
        async move {
            s.customer_by_identity(&Identity::new(IdentityKind::Email, e))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let anna = find("anna@x.org").await;
    assert_eq!(find("anna@work.example").await, anna);
    assert_ne!(find("ben@x.org").await, anna);
    let sug = s.link_suggestions().await.unwrap();
    assert_eq!(sug.len(), 1, "{sug:?}");
    assert_eq!(sug[0].shared.value, "+4930111222");
    assert_eq!(sug[0].shared_customer.as_deref(), Some(anna.as_str()));
    assert_eq!(sug[0].other.value, "ben@x.org");
}

async fn a_merge_past_the_size_cap_becomes_a_suggestion(db: TestDb) {
    let s = db.store.as_ref();
    // Three people, five identities each.
    let mut first = Vec::new();
    for p in 0..3 {
        let mut i = interaction(&format!("p{p}"), 1_000, Some(&format!("p{p}@x.org")), "hi");
        for k in 0..4 {
            i.identities.push(Identity::new(
                IdentityKind::Platform,
                format!("crm:{p}-{k}"),
            ));
        }
        i.identities.sort();
        i.content_hash = content_hash(&i);
        first.push(i);
    }
    s.write_batch(WriteBatch {
        interactions: first,
        max_component: 12,
        ..Default::default()
    })
    .await
    .unwrap();
    // One record that names all three: joining them would make fifteen identities.
    let mut bridge = interaction("bridge", 2_000, Some("p0@x.org"), "hi");
    bridge
        .identities
        .push(Identity::new(IdentityKind::Email, "p1@x.org"));
    bridge
        .identities
        .push(Identity::new(IdentityKind::Email, "p2@x.org"));
    bridge.identities.sort();
    bridge.content_hash = content_hash(&bridge);
    let o = s
        .write_batch(WriteBatch {
            interactions: vec![bridge],
            max_component: 12,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(o.merged_customers <= 1, "{o:?}");
    assert!(o.link_suggestions >= 1, "{o:?}");
    let suggestions = s.link_suggestions().await.unwrap();
    assert!(
        suggestions.iter().any(|x| x.reason.starts_with("size cap")),
        "{suggestions:?}"
    );
    assert!(s.counts().await.unwrap().customers >= 2);
}

async fn merges_keep_their_evidence_and_links_survive_resyncs(db: TestDb) {
    let s = db.store.as_ref();
    let phone = Identity::new(IdentityKind::Phone, "+4930777888");
    let mut by_phone = interaction("call", 1_000, None, "called about my order");
    by_phone.identities.push(phone.clone());
    by_phone.content_hash = content_hash(&by_phone);
    s.write_batch(batch(vec![
        interaction("mail", 1_000, Some("ines@x.org"), "hi"),
        by_phone,
    ]))
    .await
    .unwrap();
    let mut bridge = interaction("bridge", 2_000, Some("ines@x.org"), "it's me again");
    bridge.identities.push(phone.clone());
    bridge.identities.sort();
    bridge.content_hash = content_hash(&bridge);
    let o = s.write_batch(batch(vec![bridge])).await.unwrap();
    assert_eq!(o.merged_customers, 1);
    let ines = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "ines@x.org"))
        .await
        .unwrap()
        .unwrap();
    let merges = s.merges_of(&ines).await.unwrap();
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert_eq!(merges[0].kind, "auto");
    assert_eq!(merges[0].external_id.as_deref(), Some("bridge"));
    assert!(merges[0].identity.is_some());

    // An operator links two people the data never joined; a re-sync keeps them joined.
    let c = interaction("c", 3_000, Some("carla@x.org"), "hello");
    let d = interaction("d", 3_000, Some("carla.work@y.org"), "hello again");
    s.write_batch(batch(vec![c.clone(), d.clone()]))
        .await
        .unwrap();
    let (ic, id) = (
        Identity::new(IdentityKind::Email, "carla@x.org"),
        Identity::new(IdentityKind::Email, "carla.work@y.org"),
    );
    let (from, into) = s.link(&ic, &id).await.unwrap().unwrap();
    assert_ne!(from, into);
    s.write_batch(batch(vec![c, d])).await.unwrap();
    let a = s.customer_by_identity(&ic).await.unwrap();
    let b = s.customer_by_identity(&id).await.unwrap();
    assert_eq!(a, b);
    let m = s.merges_of(&into).await.unwrap();
    assert!(m.iter().any(|x| x.kind == "manual"), "{m:?}");
    assert!(
        s.link(&ic, &Identity::new(IdentityKind::Email, "nobody@x.org"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn unlink_splits_along_the_evidence_and_stays_split(db: TestDb) {
    let s = db.store.as_ref();
    // Two people on one landline, no names to tell them apart: the data merges them.
    let phone = Identity::new(IdentityKind::Phone, "+4930999111");
    let person = |id: &str, email: &str| {
        let mut i = interaction(id, 1_000, Some(email), "hello");
        i.identities.push(phone.clone());
        i.identities.sort();
        i.content_hash = content_hash(&i);
        i
    };
    let records = vec![
        person("1", "tom@x.org"),
        person("2", "ute@x.org"),
        interaction("3", 2_000, Some("ute@x.org"), "only ute"),
    ];
    s.write_batch(batch(records.clone())).await.unwrap();
    let (tom, ute) = (
        Identity::new(IdentityKind::Email, "tom@x.org"),
        Identity::new(IdentityKind::Email, "ute@x.org"),
    );
    let joined = s.customer_by_identity(&tom).await.unwrap();
    assert_eq!(joined, s.customer_by_identity(&ute).await.unwrap());

    let ids = s
        .unlink(&tom, &ute)
        .await
        .unwrap()
        .expect("one customer before");
    assert_eq!(ids.len(), 2, "{ids:?}");
    let (ct, cu) = (
        s.customer_by_identity(&tom).await.unwrap().unwrap(),
        s.customer_by_identity(&ute).await.unwrap().unwrap(),
    );
    assert_ne!(ct, cu);
    // Each keeps their own interactions.
    let ute_items = s.timeline(&cu).await.unwrap();
    assert!(ute_items.iter().any(|i| i.interaction.external_id == "3"));
    assert!(
        s.timeline(&ct)
            .await
            .unwrap()
            .iter()
            .all(|i| i.interaction.external_id != "3")
    );
    // A re-sync of the same records does not join them again; it leaves a suggestion.
    s.write_batch(batch(records)).await.unwrap();
    assert_ne!(
        s.customer_by_identity(&tom).await.unwrap(),
        s.customer_by_identity(&ute).await.unwrap()
    );
    assert!(
        s.link_suggestions()
            .await
            .unwrap()
            .iter()
            .any(|x| x.reason.starts_with("kept apart"))
    );
    // Unlinking people who are not one customer does nothing.
    assert!(s.unlink(&tom, &ute).await.unwrap().is_none());
}

/// A NUL in a cell (PostgreSQL refuses it in text) does not fail the batch on either
/// backend: the record is kept with U+FFFD in its place, in the interaction and in a
/// quarantined row alike.
async fn a_nul_byte_is_kept_visible_and_fails_nothing(db: TestDb) {
    let s = db.store.as_ref();
    let mut a = interaction("nul\0id", 1_000, Some("a@x.org"), "bad\0byte");
    a.raw = "{\"text\":\"bad\0byte\"}".into();
    let b = interaction("2", 2_000, None, "fine");
    let reject = QuarantineEntry {
        source: "test".into(),
        preset: "generic-csv".into(),
        options: serde_json::Value::Null,
        error: RowError {
            origin: "f.csv".into(),
            line: Some(3),
            field: Some("date".into()),
            expected: "a date".into(),
            message: "not a date".into(),
            raw: "x,\0,y".into(),
        },
    };
    let o = s
        .write_batch(WriteBatch {
            interactions: vec![a, b],
            rejects: vec![reject],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((o.inserted, o.quarantined), (2, 1));
    let stored = s.interactions_after(0, 10).await.unwrap();
    let a = &stored[0].interaction;
    assert_eq!(a.external_id, "nul\u{FFFD}id");
    assert_eq!(a.text.as_deref(), Some("bad\u{FFFD}byte"));
    assert!(!a.raw.contains('\0'));
    let q = s.quarantine(None).await.unwrap();
    assert_eq!(q[0].entry.error.raw, "x,\u{FFFD},y");
}

/// Issue 5: an interaction of `email`'s customer, signed `name`.
#[allow(clippy::too_many_arguments)]
fn signed(
    id: &str,
    day: i64,
    email: &str,
    name: &str,
    location: &str,
    source: &str,
    kind: InteractionKind,
) -> Interaction {
    let mut i = interaction(id, day * 86_400_000, Some(email), "hello");
    i.author_name = Some(name.into());
    i.location_id = Some(location.into());
    i.source = source.into();
    i.kind = kind;
    i.content_hash = content_hash(&i);
    i
}

async fn a_shared_full_name_is_a_scored_suggestion_never_a_merge(db: TestDb) {
    let s = db.store.as_ref();
    let window = 14 * 86_400_000;
    let email = |e: &str| Identity::new(IdentityKind::Email, e);
    s.write_batch(batch(vec![
        // One Anna: a ticket and, two days later, a survey from another address.
        signed(
            "t1",
            10,
            "anna.mueller@x.org",
            "Anna Müller",
            "berlin-mitte",
            "zendesk",
            InteractionKind::Ticket,
        ),
        signed(
            "s1",
            12,
            "anna@work.example",
            "  ANNA   MULLER ",
            "berlin-mitte",
            "typeform",
            InteractionKind::SurveyResponse,
        ),
        // The same name in another city, the next day: a lower score.
        signed(
            "h1",
            11,
            "anna@hamburg.example",
            "anna müller",
            "hamburg",
            "zendesk",
            InteractionKind::Ticket,
        ),
        // ... and in Berlin months later: nothing.
        signed(
            "l1",
            70,
            "anna.late@x.org",
            "Anna Müller",
            "berlin-mitte",
            "zendesk",
            InteractionKind::Ticket,
        ),
        // A first name alone and another name: nothing.
        signed(
            "f1",
            10,
            "anna2@x.org",
            "Anna",
            "berlin-mitte",
            "typeform",
            InteractionKind::SurveyResponse,
        ),
        signed(
            "b1",
            10,
            "ben@x.org",
            "Ben Weber",
            "berlin-mitte",
            "typeform",
            InteractionKind::SurveyResponse,
        ),
    ]))
    .await
    .unwrap();
    let customers = s.counts().await.unwrap().customers;
    assert_eq!(customers, 6);
    let fingerprint = s.fingerprint().await.unwrap();
    let o = s.suggest_by_name(window).await.unwrap();
    assert_eq!(o.read, 6, "{o:?}");
    assert_eq!(o.suggestions, 2, "{o:?}");
    // Never a merge: every interaction keeps its customer.
    assert_eq!(s.fingerprint().await.unwrap(), fingerprint);
    let sug: Vec<_> = s
        .link_suggestions()
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.reason == "display_name")
        .collect();
    assert_eq!(sug.len(), 2, "{sug:#?}");
    let keys = |x: &tideline::store::LinkSuggestion| {
        let mut k = [x.shared.value.clone(), x.other.value.clone()];
        k.sort();
        k
    };
    // Highest score first: the Berlin pair across two channels, then Hamburg.
    assert_eq!(keys(&sug[0]), ["anna.mueller@x.org", "anna@work.example"]);
    assert_eq!(keys(&sug[1]), ["anna@hamburg.example", "anna@work.example"]);
    let (top, low) = (sug[0].score.unwrap(), sug[1].score.unwrap());
    assert!(top > low && top <= 1.0 && low >= 0.5, "{top} {low}");
    let e = sug[0].evidence.as_ref().unwrap();
    assert_eq!(e["gap_ms"], 2 * 86_400_000_i64);
    assert_eq!(e["customers_with_name"], 4);
    let sides = [
        e["a"]["external_id"].as_str(),
        e["b"]["external_id"].as_str(),
    ];
    assert!(
        sides.contains(&Some("t1")) && sides.contains(&Some("s1")),
        "{e}"
    );
    assert_eq!(e["a"]["location_id"], "berlin-mitte");
    assert_ne!(sug[0].shared_customer, sug[0].other_customer);
    // A second pass with nothing new suggests nothing new.
    assert_eq!(s.suggest_by_name(window).await.unwrap().suggestions, 0);

    // The operator rejects the Berlin pair: a new sighting does not bring it back.
    let n = s
        .dismiss_suggestion(&email("anna.mueller@x.org"), &email("anna@work.example"))
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    s.write_batch(batch(vec![signed(
        "t2",
        13,
        "anna.mueller@x.org",
        "Anna Müller",
        "berlin-mitte",
        "google",
        InteractionKind::Review,
    )]))
    .await
    .unwrap();
    s.suggest_by_name(window).await.unwrap();
    let a = s
        .customer_by_identity(&email("anna.mueller@x.org"))
        .await
        .unwrap();
    let b = s
        .customer_by_identity(&email("anna@work.example"))
        .await
        .unwrap();
    let open = s.link_suggestions().await.unwrap();
    assert!(
        !open.iter().any(|x| {
            let pair = [x.shared_customer.clone(), x.other_customer.clone()];
            pair.contains(&a) && pair.contains(&b)
        }),
        "{open:#?}"
    );
    // Accepting the other one with `link` merges them and closes it.
    let h = open.iter().find(|x| x.reason == "display_name").unwrap();
    let (from, into) = s.link(&h.shared, &h.other).await.unwrap().unwrap();
    assert_ne!(from, into);
    assert!(
        !s.link_suggestions()
            .await
            .unwrap()
            .iter()
            .any(|x| x.shared == h.shared && x.other == h.other)
    );
}

/// A Google review signed with a display name only has a customer of its own (its
/// anchor, as normalization gives it): a name suggestion points at it, `link` joins it
/// to the person, and the link survives the review being read again, edited or not.
async fn a_review_with_only_a_name_is_suggested_linked_and_stays_linked(db: TestDb) {
    let s = db.store.as_ref();
    let window = 14 * 86_400_000;
    let review = |text: &str, updated_day: i64| {
        let mut i = interaction("g1", 12 * 86_400_000, None, text);
        i.source = "google".into();
        i.kind = InteractionKind::Review;
        i.author_name = Some("Jolanta Wiśniewska".into());
        i.stars = Some(2.0);
        i.updated_at_ms = Some(updated_day * 86_400_000);
        i.identities = vec![Identity::item("google", "g1")];
        i.content_hash = content_hash(&i);
        i
    };
    let ticket = signed(
        "t1",
        10,
        "jolanta@x.org",
        "Jolanta Wisniewska",
        "berlin-mitte",
        "zendesk",
        InteractionKind::Ticket,
    );
    s.write_batch(batch(vec![ticket, review("cold food", 12)]))
        .await
        .unwrap();
    let anchor = Identity::item("google", "g1");
    let person = Identity::new(IdentityKind::Email, "jolanta@x.org");
    let own = s.customer_by_identity(&anchor).await.unwrap().unwrap();
    let theirs = s.customer_by_identity(&person).await.unwrap().unwrap();
    assert_ne!(own, theirs, "a name never joins by itself");
    assert_eq!(s.suggest_by_name(window).await.unwrap().suggestions, 1);
    let sug = s.link_suggestions().await.unwrap();
    let sug: Vec<_> = sug.iter().filter(|x| x.reason == "display_name").collect();
    assert_eq!(sug.len(), 1, "{sug:#?}");
    let sides = [sug[0].shared.clone(), sug[0].other.clone()];
    assert!(
        sides.contains(&anchor) && sides.contains(&person),
        "{sides:?}"
    );
    s.link(&sug[0].shared, &sug[0].other)
        .await
        .unwrap()
        .unwrap();
    let joined = s.customer_by_identity(&person).await.unwrap().unwrap();
    assert_eq!(
        s.customer_by_identity(&anchor).await.unwrap(),
        Some(joined.clone())
    );
    assert_eq!(s.timeline(&joined).await.unwrap().len(), 2);
    // Read again unchanged, then edited by its author: it stays on the person.
    s.write_batch(batch(vec![review("cold food", 12)]))
        .await
        .unwrap();
    let o = s
        .write_batch(batch(vec![review("cold food, and nobody answered", 15)]))
        .await
        .unwrap();
    assert_eq!(o.updated, 1, "{o:?}");
    let timeline = s.timeline(&joined).await.unwrap();
    assert_eq!(timeline.len(), 2, "{timeline:#?}");
    assert!(
        timeline
            .iter()
            .any(|i| i.interaction.text.as_deref() == Some("cold food, and nobody answered"))
    );
    // Unlinking splits it off again.
    s.unlink(&person, &anchor).await.unwrap().unwrap();
    assert_ne!(
        s.customer_by_identity(&anchor).await.unwrap(),
        s.customer_by_identity(&person).await.unwrap()
    );
}

/// A shared address that reaches people one batch at a time is counted over the
/// customer's history: the sixth person stays apart and the address is blocked.
async fn an_identity_shared_across_batches_is_blocked_past_the_cap(db: TestDb) {
    let s = db.store.as_ref();
    let desk = Identity::new(IdentityKind::Email, "frontdesk@shop.example");
    for k in 0..8 {
        let mut i = interaction(
            &format!("x{k}"),
            1_000 + k,
            Some(&format!("p{k}@x.org")),
            "hi",
        );
        i.author_name = None;
        i.identities.push(desk.clone());
        i.identities.sort();
        i.content_hash = content_hash(&i);
        s.write_batch(batch(vec![i])).await.unwrap();
    }
    let owner = |k: usize| {
        let e = Identity::new(IdentityKind::Email, format!("p{k}@x.org"));
        async move { s.customer_by_identity(&e).await.unwrap().unwrap() }
    };
    let first = owner(0).await;
    for k in 1..5 {
        assert_eq!(owner(k).await, first, "five may share it (the cap is 5)");
    }
    for k in 5..8 {
        assert_ne!(owner(k).await, first, "person {k} stays apart");
    }
    assert_ne!(owner(5).await, owner(6).await);
    let blocked = s.blocked_identities().await.unwrap();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].identity, "email:frontdesk@shop.example");
    assert_eq!(blocked[0].customers, 6, "{blocked:?}");
    assert!(blocked[0].reason.contains("max_customers_per_identity = 5"));
}

async fn an_identity_on_eight_customers_is_blocked_and_they_stay_apart(db: TestDb) {
    let s = db.store.as_ref();
    let noreply = Identity::new(IdentityKind::Email, "noreply@shop.example");
    let with_shop = |id: &str, email: &str| {
        let mut i = interaction(id, 1_000, Some(email), "order question");
        i.identities.push(noreply.clone());
        i.identities.sort();
        i.content_hash = content_hash(&i);
        i
    };
    let records: Vec<Interaction> = (0..8)
        .map(|k| with_shop(&format!("n{k}"), &format!("p{k}@x.org")))
        .collect();
    let o = s.write_batch(batch(records)).await.unwrap();
    assert_eq!(o.blocked_identities, 1, "{o:?}");
    assert_eq!(o.merged_customers, 0, "{o:?}");
    let mut owners = Vec::new();
    for k in 0..8 {
        let e = Identity::new(IdentityKind::Email, format!("p{k}@x.org"));
        owners.push(s.customer_by_identity(&e).await.unwrap().unwrap());
    }
    owners.sort();
    owners.dedup();
    assert_eq!(owners.len(), 8, "the eight stay apart");
    assert_eq!(s.customer_by_identity(&noreply).await.unwrap(), None);
    let blocked = s.blocked_identities().await.unwrap();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].identity, "email:noreply@shop.example");
    assert_eq!((blocked[0].customers, blocked[0].records), (8, 8));
    assert_eq!(blocked[0].status, "blocked");
    assert!(blocked[0].reason.contains("max_customers_per_identity = 5"));
    // Later batches do not join through it either, one record at a time.
    s.write_batch(batch(vec![with_shop("n8", "q@x.org")]))
        .await
        .unwrap();
    s.write_batch(batch(vec![with_shop("n9", "p0@x.org")]))
        .await
        .unwrap();
    let q = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "q@x.org"))
        .await
        .unwrap();
    let p0 = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "p0@x.org"))
        .await
        .unwrap();
    assert!(q.is_some() && q != p0);
    assert_eq!(s.customer_by_identity(&noreply).await.unwrap(), None);
    // Five are not more than five: a shared number on five customers stays usable.
    let desk = Identity::new(IdentityKind::Phone, "+4930555000");
    let five: Vec<Interaction> = (0..5)
        .map(|k| {
            let mut i = interaction(&format!("d{k}"), 1_000, Some(&format!("d{k}@x.org")), "hi");
            i.identities.push(desk.clone());
            i.content_hash = content_hash(&i);
            i
        })
        .collect();
    assert_eq!(
        s.write_batch(batch(five)).await.unwrap().blocked_identities,
        0
    );
    // The operator unblocks it.
    assert!(
        s.unblock_identity("email:noreply@shop.example")
            .await
            .unwrap()
    );
    assert!(
        !s.unblock_identity("email:noreply@shop.example")
            .await
            .unwrap()
    );
    assert_eq!(s.blocked_identities().await.unwrap()[0].status, "unblocked");
}

on_both_backends!(
    a_nul_byte_is_kept_visible_and_fails_nothing,
    unlink_splits_along_the_evidence_and_stays_split,
    merges_keep_their_evidence_and_links_survive_resyncs,
    a_merge_past_the_size_cap_becomes_a_suggestion,
    a_shared_phone_becomes_a_suggestion_not_a_merge,
    upserts_are_idempotent_and_edits_bump_the_revision,
    the_last_copy_of_a_key_in_a_batch_wins,
    identities_join_and_merge_customers,
    quarantine_rows_are_kept_once_and_can_be_resolved,
    location_figures_carry_their_sample_sizes,
    a_file_import_is_idempotent,
    a_shared_full_name_is_a_scored_suggestion_never_a_merge,
    an_identity_on_eight_customers_is_blocked_and_they_stay_apart,
    a_review_with_only_a_name_is_suggested_linked_and_stays_linked,
    an_identity_shared_across_batches_is_blocked_past_the_cap,
);
