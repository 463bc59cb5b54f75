//! Learning from the deployment's own rated texts, on both backends.

use crate::common::TestDb;
use crate::on_both_backends;
use tideline::learn;
use tideline::model::{Identity, IdentityKind, Interaction, InteractionKind, SentimentLabel};
use tideline::pipeline::normalize::content_hash;
use tideline::pipeline::sentiment::MODEL_VERSION;
use tideline::store::WriteBatch;

/// A review with stars, scored the way an import scores it.
fn review(i: usize, text: &str, stars: f64) -> Interaction {
    let mut r = Interaction {
        source: "reviews".into(),
        external_id: format!("r{i}"),
        kind: InteractionKind::Review,
        parent_external_id: None,
        occurred_at_ms: 1_700_000_000_000 + i as i64 * 60_000,
        updated_at_ms: None,
        location_id: Some("berlin-mitte".into()),
        author_name: Some(format!("Reviewer {i}")),
        identities: vec![Identity::new(
            IdentityKind::Email,
            format!("r{i}@example.org"),
        )],
        text: Some(text.to_string()),
        language: Some("en".into()),
        language_confidence: Some(0.9),
        stars: Some(stars),
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
    let scorer = tideline::pipeline::sentiment::SentimentScorer::new();
    if let Some(t) = scorer.analyse(text, Some("en")) {
        r.sentiment = Some(t.sentiment);
        r.aspects = t.aspects;
    }
    r.content_hash = content_hash(&r);
    r
}

async fn adapting_learns_house_words_and_rescores(db: TestDb) {
    let s = db.store.as_ref();
    let config = crate::common::demo_config();
    // Too little data: the run is recorded, nothing is adopted.
    let few: Vec<Interaction> = (0..10)
        .map(|i| review(i, "zorbly again, order lost", 1.0))
        .collect();
    s.write_batch(WriteBatch {
        interactions: few,
        ..Default::default()
    })
    .await
    .unwrap();
    let o = learn::train(s, &config.pipeline, 1_000).await.unwrap();
    assert!(!o.report.adopted, "{o:?}");
    assert!(s.adopted_sentiment_model().await.unwrap().is_none());

    // This shop's customers say "zorbly" when an order went missing: a word no lexicon has.
    let mut items = Vec::new();
    for i in 10..310 {
        let (text, stars) = match i % 3 {
            0 => (format!("zorbly again, table {i}"), 1.0),
            1 => (format!("picked up at the counter, table {i}"), 3.0),
            _ => (format!("splendid evening at table {i}"), 5.0),
        };
        items.push(review(i, &text, stars));
    }
    s.write_batch(WriteBatch {
        interactions: items,
        ..Default::default()
    })
    .await
    .unwrap();
    let rated = s.rated_texts(1_000).await.unwrap();
    assert_eq!(rated.len(), 310);
    let o = learn::train(s, &config.pipeline, 2_000).await.unwrap();
    assert!(o.report.adopted, "{o:?}");
    assert!(o.report.held_out > 30 && o.report.trained_on > 200, "{o:?}");
    assert!(o.report.adapted_macro_f1 >= o.report.base_macro_f1, "{o:?}");
    assert!(o.version.starts_with(&format!("{MODEL_VERSION}+site.")));
    assert_eq!(o.rescored, 310, "every stored text is scored again");

    let runs = s.sentiment_models(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].weights.is_empty(), "listings leave the weights out");
    assert_eq!(runs[0].version, o.version);
    let adopted = learn::adopted_model(s).await.unwrap().unwrap();
    assert_eq!(adopted.version, o.version);

    // Stored scores now come from the adapted model, and it knows the house word.
    let analyzer = learn::analyzer_for(s, &config.pipeline).await.unwrap();
    let r = analyzer
        .scorer
        .score("zorbly, table 999", Some("en"))
        .unwrap();
    assert_eq!(r.label, SentimentLabel::Negative);
    assert_eq!(r.model, o.version);
    assert!(
        s.texts_to_rescore(&o.version, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let customer = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "r12@example.org"))
        .await
        .unwrap()
        .unwrap();
    let timeline = s.timeline(&customer).await.unwrap();
    let stored = timeline[0].interaction.sentiment.as_ref().unwrap();
    assert_eq!(stored.model, o.version);
    assert_eq!(stored.label, SentimentLabel::Negative);
    // Re-scoring leaves the content and its revision alone.
    assert_eq!(timeline[0].revision, 1);
}

async fn aspects_are_stored_with_the_interaction(db: TestDb) {
    let s = db.store.as_ref();
    let r = review(
        1,
        "The food was delicious but the waiter was rude and we waited an hour.",
        2.0,
    );
    assert!(r.aspects.len() >= 3, "{:?}", r.aspects);
    s.write_batch(WriteBatch {
        interactions: vec![r.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    let customer = s
        .customer_by_identity(&Identity::new(IdentityKind::Email, "r1@example.org"))
        .await
        .unwrap()
        .unwrap();
    let timeline = s.timeline(&customer).await.unwrap();
    assert_eq!(timeline[0].interaction.aspects, r.aspects);
}

on_both_backends!(
    adapting_learns_house_words_and_rescores,
    aspects_are_stored_with_the_interaction,
);
