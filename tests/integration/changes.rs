//! Issue 4: change detection over the store, on SQLite and PostgreSQL. A location's drop
//! and a customer's drop are confirmed with their evidence; passes resume where they
//! stopped; late data rebuilds a series without duplicates; silence is not a change.

use crate::common::TestDb;
use crate::on_both_backends;
use tideline::analyze::analyze;
use tideline::model::{
    Identity, IdentityKind, Interaction, InteractionKind, Sentiment, SentimentLabel,
};
use tideline::pipeline::detect::Settings;
use tideline::pipeline::normalize::content_hash;
use tideline::store::{ChangeFilter, Store, WriteBatch};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01

struct Item {
    id: String,
    kind: InteractionKind,
    at: i64,
    email: Option<String>,
    stars: Option<f64>,
    sentiment: f64,
    text: &'static str,
    status: Option<&'static str>,
}

fn interaction(it: &Item) -> Interaction {
    let mut i = Interaction {
        source: if it.kind == InteractionKind::Ticket {
            "zendesk"
        } else {
            "reviews"
        }
        .into(),
        external_id: it.id.clone(),
        kind: it.kind,
        parent_external_id: None,
        occurred_at_ms: it.at,
        updated_at_ms: Some(it.at),
        location_id: Some("berlin-mitte".into()),
        author_name: None,
        identities: it
            .email
            .iter()
            .map(|e| Identity::new(IdentityKind::Email, e))
            .collect(),
        text: Some(it.text.into()),
        language: Some("en".into()),
        language_confidence: Some(1.0),
        stars: it.stars,
        nps: None,
        csat: None,
        ces: None,
        status: it.status.map(str::to_string),
        sentiment: Some(Sentiment {
            score: it.sentiment,
            label: if it.sentiment < -0.2 {
                SentimentLabel::Negative
            } else if it.sentiment > 0.2 {
                SentimentLabel::Positive
            } else {
                SentimentLabel::Neutral
            },
            confidence: 0.9,
            model: "test".into(),
        }),
        aspects: vec![],
        url: None,
        raw: "{}".into(),
        content_hash: String::new(),
    };
    i.content_hash = content_hash(&i);
    i
}

/// A store that drops from about 4.6 to about 1.8 stars on day 60, two reviews a day, and
/// one customer whose escalated ticket precedes their own drop.
fn world() -> Vec<Item> {
    let mut out = Vec::new();
    for d in 0..120i64 {
        for k in 0..2i64 {
            let n = d * 2 + k;
            let good = d < 60;
            let stars = if good {
                [5.0, 5.0, 4.0, 5.0, 4.0][(n % 5) as usize]
            } else {
                [1.0, 2.0, 1.0, 3.0, 2.0][(n % 5) as usize]
            };
            out.push(Item {
                id: format!("r{n}"),
                kind: InteractionKind::Review,
                at: T0 + d * DAY + k * 3_600_000,
                email: None,
                stars: Some(stars),
                sentiment: if good { 0.7 } else { -0.6 },
                text: if good {
                    "Lovely coffee and friendly staff"
                } else {
                    "We waited forty minutes and the soup was cold"
                },
                status: None,
            });
        }
    }
    let c = Some("mara@example.org".to_string());
    for w in 0..6i64 {
        out.push(Item {
            id: format!("c-good{w}"),
            kind: InteractionKind::Review,
            at: T0 + (5 + w * 8) * DAY + 7_200_000,
            email: c.clone(),
            stars: Some(5.0),
            sentiment: 0.8,
            text: "Always a pleasure",
            status: None,
        });
    }
    out.push(Item {
        id: "t-escalated".into(),
        kind: InteractionKind::Ticket,
        at: T0 + 58 * DAY,
        email: c.clone(),
        stars: None,
        sentiment: -0.95,
        text: "Your courier was rude and my order never arrived. I want a refund now.",
        status: Some("escalated"),
    });
    for w in 0..6i64 {
        out.push(Item {
            id: format!("c-bad{w}"),
            kind: InteractionKind::Review,
            at: T0 + (61 + w * 7) * DAY + 7_200_000,
            email: c.clone(),
            stars: Some(1.0),
            sentiment: -0.7,
            text: "Never again, rude courier",
            status: None,
        });
    }
    out
}

async fn write(s: &dyn Store, items: &[Item]) {
    s.write_batch(WriteBatch {
        interactions: items.iter().map(interaction).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn a_drop_is_confirmed_once_with_its_evidence(db: TestDb) {
    let s = db.store.as_ref();
    let mut items = world();
    items.sort_by_key(|i| i.at);
    // Two syncs, as a daemon would see them.
    let (first, second) = items.split_at(150);
    write(s, first).await;
    let r1 = analyze(s, &Settings::default(), T0 + 200 * DAY)
        .await
        .unwrap();
    write(s, second).await;
    let r2 = analyze(s, &Settings::default(), T0 + 200 * DAY)
        .await
        .unwrap();
    assert_eq!(r1.interactions + r2.interactions, items.len() as u64);
    assert_eq!(r2.rebuilt, 0, "time-ordered syncs need no rebuild");

    let changes = s
        .changes(&ChangeFilter {
            entity: Some(("location".into(), "berlin-mitte".into())),
            ..Default::default()
        })
        .await
        .unwrap();
    let stars: Vec<_> = changes
        .iter()
        .filter(|c| {
            c.change.series == "location:berlin-mitte:stars" && c.change.status == "confirmed"
        })
        .collect();
    assert_eq!(stars.len(), 1, "{changes:#?}");
    let c = &stars[0].change;
    assert_eq!(c.direction, "down");
    // 120 store reviews and the customer's 6 before day 60.
    assert!((c.index - 126).abs() <= 2, "index {}", c.index);
    assert!(
        (c.before - 4.6).abs() < 0.15 && (c.after - 1.8).abs() < 0.15,
        "{c:?}"
    );
    assert!(c.confidence >= 0.9);
    // The escalated ticket two days before comes first (a likely cause), then the
    // one-star reviews that carry the step.
    let ev = c.evidence["interactions"].as_array().unwrap();
    assert_eq!(ev[0]["external_id"], "t-escalated", "{ev:#?}");
    assert!(ev[1..4].iter().all(|i| i["stars"] == 1.0), "{ev:#?}");
    let terms: Vec<&str> = c.evidence["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["term"].as_str().unwrap())
        .collect();
    assert!(
        terms.contains(&"cold") && terms.contains(&"minutes"),
        "{terms:?}"
    );

    // The customer's drop: the escalated ticket right before it is the first evidence.
    let mara = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "mara@example.org"))
        .await
        .unwrap()
        .unwrap();
    let theirs = s
        .changes(&ChangeFilter {
            entity: Some(("customer".into(), mara)),
            ..Default::default()
        })
        .await
        .unwrap();
    let drop = theirs
        .iter()
        .find(|c| c.change.status == "confirmed" && c.change.signal == "sentiment")
        .unwrap_or_else(|| panic!("{theirs:#?}"));
    assert_eq!(drop.change.direction, "down");
    assert_eq!(
        drop.change.evidence["interactions"][0]["external_id"], "t-escalated",
        "{:#}",
        drop.change.evidence
    );

    // The timeline carries the customer's change points with their evidence.
    let t = tideline::outputs::timeline::load(s, "mara@example.org", &[])
        .await
        .unwrap();
    let json = serde_json::to_value(&t).unwrap();
    let confirmed: Vec<&serde_json::Value> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "confirmed")
        .collect();
    assert!(!confirmed.is_empty(), "{json:#}");
    let first = confirmed[0]["evidence"][0].as_i64().unwrap();
    let ticket = t
        .interactions
        .iter()
        .find(|i| i.external_id == "t-escalated")
        .unwrap();
    assert_eq!(first, ticket.id);

    // A second daemon that read the same page writes nothing: the mark has moved.
    let mark = s.analysis_progress().await.unwrap();
    let stale = tideline::store::AnalysisWrite {
        from_id: 0,
        last_id: mark,
        ..Default::default()
    };
    assert!(!s.save_analysis(stale).await.unwrap());
    assert_eq!(s.analysis_progress().await.unwrap(), mark);

    // Nothing new: a pass reads nothing and stores nothing twice.
    let before = s.changes(&ChangeFilter::default()).await.unwrap().len();
    let r3 = analyze(s, &Settings::default(), T0 + 201 * DAY)
        .await
        .unwrap();
    assert_eq!(r3.interactions, 0);
    assert_eq!(
        s.changes(&ChangeFilter::default()).await.unwrap().len(),
        before
    );
}

async fn late_data_rebuilds_a_series_without_duplicates(db: TestDb) {
    let s = db.store.as_ref();
    let items = world();
    write(s, &items).await;
    analyze(s, &Settings::default(), T0).await.unwrap();
    let confirmed = |cs: &[tideline::store::StoredChange]| {
        cs.iter()
            .filter(|c| c.change.status == "confirmed")
            .map(|c| (c.change.series.clone(), c.change.index))
            .collect::<Vec<_>>()
    };
    let before = confirmed(&s.changes(&ChangeFilter::default()).await.unwrap());
    // A review from day 10 arrives late (a backfill): its series start over.
    write(
        s,
        &[Item {
            id: "late".into(),
            kind: InteractionKind::Review,
            at: T0 + 10 * DAY + 1,
            email: None,
            stars: Some(5.0),
            sentiment: 0.7,
            text: "Lovely coffee",
            status: None,
        }],
    )
    .await;
    let r = analyze(s, &Settings::default(), T0).await.unwrap();
    assert!(r.rebuilt >= 1);
    let after = confirmed(&s.changes(&ChangeFilter::default()).await.unwrap());
    let mut dedup = after.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), after.len());
    // The store's drop is still there once, one position later.
    let drop: Vec<_> = after
        .iter()
        .filter(|(series, _)| series == "location:berlin-mitte:stars")
        .collect();
    assert_eq!(drop.len(), 1, "{after:?} (was {before:?})");
}

async fn silence_and_single_extremes_are_not_changes(db: TestDb) {
    let s = db.store.as_ref();
    let mut items = Vec::new();
    // Steady 4-5 stars, a 90-day gap (a connector that returned nothing), steady again,
    // with one furious one-star review in the middle.
    for d in (0..60i64).chain(150..210) {
        let n = d as usize;
        items.push(Item {
            id: format!("q{d}"),
            kind: InteractionKind::Review,
            at: T0 + d * DAY,
            email: None,
            stars: Some([5.0, 4.0, 5.0, 5.0, 4.0][n % 5]),
            sentiment: 0.6,
            text: "Good",
            status: None,
        });
    }
    items.push(Item {
        id: "furious".into(),
        kind: InteractionKind::Review,
        at: T0 + 170 * DAY + 5,
        email: None,
        stars: Some(1.0),
        sentiment: -1.0,
        text: "Worst place ever, disgusting",
        status: None,
    });
    write(s, &items).await;
    analyze(s, &Settings::default(), T0).await.unwrap();
    let changes = s.changes(&ChangeFilter::default()).await.unwrap();
    assert!(
        changes.iter().all(|c| c.change.status != "confirmed"),
        "{changes:#?}"
    );
}

/// Issue 5's "merges and splits update derived figures": the customers a merge or a split
/// touches start over from their own history at the next pass (the absorbed one's series
/// and changes go), and nothing else is re-read.
async fn merges_and_splits_rebuild_only_those_customers(db: TestDb) {
    let s = db.store.as_ref();
    let phone = Identity::new(IdentityKind::Phone, "+4930111222");
    let mara = Identity::new(IdentityKind::Email, "mara@example.org");
    let with = |it: Item, ids: &[&Identity]| {
        let mut i = interaction(&it);
        i.identities = ids.iter().map(|x| (*x).clone()).collect();
        i.identities.sort();
        i.content_hash = content_hash(&i);
        i
    };
    let review = |id: String, day: i64, stars: f64| Item {
        id,
        kind: InteractionKind::Review,
        at: T0 + day * DAY,
        email: None,
        stars: Some(stars),
        sentiment: if stars > 3.0 { 0.8 } else { -0.7 },
        text: if stars > 3.0 {
            "Lovely"
        } else {
            "Cold and rude"
        },
        status: None,
    };
    // Mara's good months under her email, her bad ones under her phone: two customers.
    let mut first: Vec<Interaction> = (0..6)
        .map(|w| with(review(format!("m-good{w}"), 5 + w * 8, 5.0), &[&mara]))
        .collect();
    first.extend((0..6).map(|w| with(review(format!("m-bad{w}"), 61 + w * 7, 1.0), &[&phone])));
    s.write_batch(WriteBatch {
        interactions: first,
        ..Default::default()
    })
    .await
    .unwrap();
    let settings = Settings::default();
    analyze(s, &settings, T0 + 200 * DAY).await.unwrap();
    let by_mail = s.customer_by_identity(&mara).await.unwrap().unwrap();
    let by_phone = s.customer_by_identity(&phone).await.unwrap().unwrap();
    assert_ne!(by_mail, by_phone);
    let observations = |c: &str| {
        let name = format!("customer:{c}:stars");
        async move {
            s.series_states(std::slice::from_ref(&name))
                .await
                .unwrap()
                .first()
                .map(|x| x.observations)
        }
    };
    let location_before = s
        .series_states(&["location:berlin-mitte:stars".to_string()])
        .await
        .unwrap();
    assert_eq!(observations(&by_mail).await, Some(6));
    assert_eq!(observations(&by_phone).await, Some(6));
    let customer_changes = |c: String| async move {
        s.changes(&ChangeFilter {
            entity: Some(("customer".into(), c)),
            ..Default::default()
        })
        .await
        .unwrap()
    };

    // A ticket that carries both joins them; the next pass rebuilds that one customer.
    let bridge = with(
        Item {
            id: "t-both".into(),
            kind: InteractionKind::Ticket,
            at: T0 + 100 * DAY,
            email: None,
            stars: None,
            sentiment: -0.2,
            text: "Where is my refund",
            status: Some("open"),
        },
        &[&mara, &phone],
    );
    let o = s
        .write_batch(WriteBatch {
            interactions: vec![bridge],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(o.merged_customers, 1, "{o:?}");
    let joined = s.customer_by_identity(&mara).await.unwrap().unwrap();
    let gone = if joined == by_mail {
        &by_phone
    } else {
        &by_mail
    };
    let r = analyze(s, &settings, T0 + 200 * DAY).await.unwrap();
    // Its stars and sentiment series (the ticket has no final outcome); no location's.
    assert_eq!(r.rebuilt, 2, "{r:?}");
    assert_eq!(observations(&joined).await, Some(12));
    assert_eq!(
        observations(gone).await,
        None,
        "the absorbed customer's series go"
    );
    assert!(customer_changes(gone.clone()).await.is_empty());
    // Read as one person, her one-star reviews now stand against her five-star months:
    // incidents that neither half had on its own.
    let incidents: Vec<_> = customer_changes(joined.clone())
        .await
        .into_iter()
        .filter(|c| c.change.signal == "stars" && c.change.status == "incident")
        .collect();
    assert!(!incidents.is_empty());
    assert!(
        incidents.iter().all(|c| c.change.direction == "down"
            && c.change.evidence["interactions"][0]["external_id"]
                .as_str()
                .is_some_and(|x| x.starts_with("m-bad"))),
        "{incidents:#?}"
    );
    assert_eq!(
        s.series_states(&["location:berlin-mitte:stars".to_string()])
            .await
            .unwrap(),
        location_before,
        "a merge does not touch a location's series"
    );
    // A pass with nothing new rebuilds nothing.
    assert_eq!(
        analyze(s, &settings, T0 + 200 * DAY).await.unwrap().rebuilt,
        0
    );

    // The operator splits them again: each side is rebuilt from its own history.
    let parts = s.unlink(&mara, &phone).await.unwrap().unwrap();
    assert_eq!(parts.len(), 2, "{parts:?}");
    let r = analyze(s, &settings, T0 + 200 * DAY).await.unwrap();
    assert!(r.rebuilt >= 3, "{r:?}");
    let (a, b) = (
        s.customer_by_identity(&mara).await.unwrap().unwrap(),
        s.customer_by_identity(&phone).await.unwrap().unwrap(),
    );
    assert_ne!(a, b);
    // Each half is uniform again: the merged history's incidents are gone.
    assert!(customer_changes(a.clone()).await.is_empty());
    assert!(customer_changes(b.clone()).await.is_empty());
    let mut counts = vec![observations(&a).await, observations(&b).await];
    counts.sort();
    assert_eq!(counts, [Some(6), Some(6)]);
}

on_both_backends!(
    a_drop_is_confirmed_once_with_its_evidence,
    late_data_rebuilds_a_series_without_duplicates,
    silence_and_single_extremes_are_not_changes,
    merges_and_splits_rebuild_only_those_customers,
);
