//! Weak evidence: a full display name seen on two customers, scored as a link suggestion.
//!
//! Pure. A display name never merges anyone; two customers who share a rare full name,
//! at the same place, within a few days of each other, are worth an operator's look. The
//! store finds the candidates (grouped by [`name_key`]) and stores what [`suggest`] returns.

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// How close in time two interactions must be, unless configured (`identity.name_window_days`).
pub const DEFAULT_NAME_WINDOW_DAYS: u64 = 14;

/// A name carried by more customers than this is too common to suggest anything.
pub const MAX_CUSTOMERS_PER_NAME: usize = 6;

/// Suggestions scoring below this are not stored.
pub const MIN_SCORE: f64 = 0.5;

/// The folded full display name: lowercased, accents and punctuation dropped, whitespace
/// collapsed. `None` unless it holds at least two words of two letters or more: a first
/// name, or a first name and an initial, says too little about who wrote.
pub fn name_key(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    let folded = crate::pipeline::sentiment::lexicon::fold(&lower);
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in folded.chars() {
        if ('\u{300}'..='\u{36f}').contains(&c) {
            // a combining accent of a decomposed letter
            continue;
        }
        if c.is_alphanumeric() {
            cur.push(c);
        } else if !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let long = words.iter().filter(|w| w.chars().count() >= 2).count();
    (long >= 2 && words.len() <= 8).then(|| words.join(" "))
}

/// What two interactions of two customers with the same name have in common.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NameEvidence {
    /// How many customers in the store carry this name (both sides included).
    pub customers_with_name: usize,
    /// Time between the two interactions.
    pub gap_ms: i64,
    pub window_ms: i64,
    pub same_location: bool,
    /// Different sources or kinds (a Google review and a ticket): two channels that saw one
    /// person weigh more than one channel seeing two.
    pub different_channel: bool,
}

/// The score in [0, 1] of a display-name link: 0.4 for rarity (1 / (customers with the
/// name - 1)), 0.3 for closeness in time (1 - gap / window), 0.15 for the same location,
/// 0.15 for different channels. `None` when the gap is past the window or fewer than two
/// customers carry the name.
pub fn score(e: &NameEvidence) -> Option<f64> {
    if e.customers_with_name < 2 || e.window_ms <= 0 || e.gap_ms < 0 || e.gap_ms > e.window_ms {
        return None;
    }
    let rarity = 1.0 / (e.customers_with_name - 1) as f64;
    let closeness = 1.0 - e.gap_ms as f64 / e.window_ms as f64;
    let s = 0.4 * rarity
        + 0.3 * closeness
        + if e.same_location { 0.15 } else { 0.0 }
        + if e.different_channel { 0.15 } else { 0.0 };
    Some(s.clamp(0.0, 1.0))
}

/// One interaction that carries a keyed name, as the store reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sighting {
    pub interaction_id: i64,
    pub customer_id: String,
    /// The interaction's first strong identity (`kind:value`): the suggestion's side.
    pub identity: String,
    pub source: String,
    pub external_id: String,
    pub kind: String,
    pub name: String,
    pub location_id: Option<String>,
    pub occurred_at_ms: i64,
}

/// A scored suggestion between two customers and the two interactions behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameSuggestion {
    pub score: f64,
    pub a: Sighting,
    pub b: Sighting,
    pub gap_ms: i64,
    pub customers_with_name: usize,
}

/// The best-scoring pair of interactions for each pair of customers who share a name key.
///
/// `sightings` are the interactions of one name key; `customers_with_name` how many
/// customers in the store carry it; only pairs with at least one interaction above
/// `new_after` (what the pass has not seen) and customers not in `excluded` (pairs an
/// operator dismissed or unlinked, sorted) are considered.
pub fn suggest(
    sightings: &[Sighting],
    customers_with_name: usize,
    window_ms: i64,
    new_after: i64,
    excluded: &HashSet<(String, String)>,
) -> Vec<NameSuggestion> {
    // In time order, so that each interaction meets only those inside its window.
    let mut sorted: Vec<&Sighting> = sightings.iter().collect();
    sorted.sort_by_key(|s| (s.occurred_at_ms, s.interaction_id));
    let mut best: BTreeMap<(&str, &str), NameSuggestion> = BTreeMap::new();
    for (k, &x) in sorted.iter().enumerate() {
        for &y in &sorted[k + 1..] {
            if y.occurred_at_ms - x.occurred_at_ms > window_ms {
                break;
            }
            if x.customer_id == y.customer_id
                || (x.interaction_id <= new_after && y.interaction_id <= new_after)
            {
                continue;
            }
            let (a, b) = if x.customer_id < y.customer_id {
                (x, y)
            } else {
                (y, x)
            };
            if excluded.contains(&(a.customer_id.clone(), b.customer_id.clone())) {
                continue;
            }
            let gap_ms = (a.occurred_at_ms - b.occurred_at_ms).abs();
            let evidence = NameEvidence {
                customers_with_name,
                gap_ms,
                window_ms,
                same_location: a.location_id.is_some() && a.location_id == b.location_id,
                different_channel: a.source != b.source || a.kind != b.kind,
            };
            let Some(s) = score(&evidence) else { continue };
            if s < MIN_SCORE {
                continue;
            }
            let key = (a.customer_id.as_str(), b.customer_id.as_str());
            if best.get(&key).is_none_or(|o| s > o.score) {
                best.insert(
                    key,
                    NameSuggestion {
                        score: s,
                        a: a.clone(),
                        b: b.clone(),
                        gap_ms,
                        customers_with_name,
                    },
                );
            }
        }
    }
    best.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn ev(n: usize, gap_days: i64, same_location: bool, different_channel: bool) -> NameEvidence {
        NameEvidence {
            customers_with_name: n,
            gap_ms: gap_days * DAY,
            window_ms: 14 * DAY,
            same_location,
            different_channel,
        }
    }

    #[test]
    fn name_keys_fold_case_accents_and_spacing_but_need_a_full_name() {
        assert_eq!(
            name_key("  Zeynep   YILMAZ ").as_deref(),
            Some("zeynep yilmaz")
        );
        assert_eq!(name_key("Zeynep Yılmaz"), name_key("zeynep yilmaz"));
        assert_eq!(name_key("Anna Müller"), name_key("ANNA MULLER"));
        // a decomposed ü (u + combining diaeresis)
        assert_eq!(name_key("Anna Mu\u{308}ller"), name_key("Anna Müller"));
        assert_eq!(name_key("Müller, Anna").as_deref(), Some("muller anna"));
        assert_eq!(name_key("Anna"), None);
        assert_eq!(name_key("Anna M."), None);
        assert_eq!(name_key("   "), None);
    }

    #[test]
    fn rarer_closer_same_place_and_cross_channel_score_higher() {
        let base = score(&ev(2, 1, true, true)).unwrap();
        assert!((0.0..=1.0).contains(&base));
        assert!(base > 0.9, "{base}");
        assert!(score(&ev(4, 1, true, true)).unwrap() < base);
        assert!(score(&ev(2, 10, true, true)).unwrap() < base);
        assert!(score(&ev(2, 1, false, true)).unwrap() < base);
        assert!(score(&ev(2, 1, true, false)).unwrap() < base);
        // past the window, or a name on one customer only: nothing
        assert_eq!(score(&ev(2, 15, true, true)), None);
        assert_eq!(score(&ev(1, 0, true, true)), None);
        // every factor at its best is 1, at its worst (inside the window) still in range
        assert_eq!(score(&ev(2, 0, true, true)), Some(1.0));
        let worst = score(&ev(1000, 14, false, false)).unwrap();
        assert!((0.0..0.01).contains(&worst), "{worst}");
    }

    fn sighting(id: i64, customer: &str, source: &str, day: i64, loc: &str) -> Sighting {
        Sighting {
            interaction_id: id,
            customer_id: customer.into(),
            identity: format!("email:{customer}@x.org"),
            source: source.into(),
            external_id: format!("e{id}"),
            kind: "ticket".into(),
            name: "Anna Müller".into(),
            location_id: Some(loc.into()),
            occurred_at_ms: day * DAY,
        }
    }

    #[test]
    fn one_suggestion_per_customer_pair_with_its_best_evidence() {
        let s = vec![
            sighting(1, "cus_a", "zendesk", 0, "berlin"),
            sighting(2, "cus_a", "zendesk", 9, "berlin"),
            sighting(3, "cus_b", "google", 10, "berlin"),
            sighting(4, "cus_c", "zendesk", 40, "berlin"),
        ];
        let out = suggest(&s, 3, 14 * DAY, 0, &HashSet::new());
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].a.interaction_id, 2);
        assert_eq!(out[0].b.interaction_id, 3);
        assert_eq!(out[0].gap_ms, DAY);
        // nothing new since the last pass, or the pair dismissed: nothing
        assert!(suggest(&s, 3, 14 * DAY, 4, &HashSet::new()).is_empty());
        let dismissed = HashSet::from([("cus_a".to_string(), "cus_b".to_string())]);
        assert!(suggest(&s, 3, 14 * DAY, 0, &dismissed).is_empty());
    }
}
