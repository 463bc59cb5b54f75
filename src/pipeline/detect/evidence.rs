//! Evidence for a change: which interactions moved it, and which topics and words rose or
//! fell across it. Pure: the caller hands in the interactions around the change.

use super::{Change, Direction, Kind};
use serde::Serialize;

/// One interaction near a change, as the ranking needs it.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    /// Seconds, on the series' clock.
    pub t: f64,
    /// The value in the changed series, when this interaction is one of its observations.
    pub value: Option<f64>,
    /// Text sentiment in [-1, 1], when the interaction has text.
    pub sentiment: Option<f64>,
    /// 0 for ordinary items; 1 for an escalated, reopened or unresolved ticket, or a
    /// complaint the source flags as severe.
    pub severity: f64,
    pub language: Option<&'a str>,
    pub text: Option<&'a str>,
    /// Aspect names the text mentions, with their sentiment where clear.
    pub aspects: Vec<(&'a str, Option<f64>)>,
}

/// How much one interaction moved a change, for ranking (higher first), on one scale for
/// both sorts of evidence:
/// - an observation of the changed series counts by the share of the step it carries:
///   its distance from the old level, over the step times the observations on its side,
///   so the observations after a change together weigh about 1;
/// - any other interaction (a ticket, a post, a survey comment in another channel) counts
///   by how negative (for a drop) or positive (for a rise) its text is (up to 0.25) and,
///   for drops, how severe it is (0.7 more for an escalated or reopened ticket): one very
///   negative escalated ticket outweighs any one review, a merely unhappy comment does
///   not outweigh the reviews that carry the step.
///
/// Both decay with the distance in time from the change (`window_secs` is the e-folding
/// time); what happened before a change can have caused it, so earlier items are not
/// discounted against later ones.
pub fn influence(change: &Change, kind: Kind, item: &Item, window_secs: f64) -> f64 {
    let sign = match change.direction {
        Direction::Down => 1.0,
        Direction::Up => -1.0,
        // A change without a direction: any departure from the old level moves it.
        Direction::Change => 0.0,
    };
    let raw = if let Some(v) = item.value {
        let v = match kind {
            // An NPS answer sits on 0-10; the levels are scores on -100..100.
            Kind::Nps => (v - 5.0) * 20.0,
            _ => v,
        };
        let step = (change.after - change.before).abs().max(match kind {
            Kind::Stars => 0.2,
            Kind::Nps => 10.0,
            Kind::Sentiment | Kind::Outcome => 0.1,
            Kind::Real => 1e-9,
        });
        let side = if item.t < change.t {
            change.n_before
        } else {
            change.n_after
        }
        .max(1) as f64;
        let d = v - change.before;
        let toward = if sign == 0.0 { d.abs() } else { -sign * d };
        toward / (step * side.min(20.0))
    } else {
        let tone = item.sentiment.unwrap_or(0.0);
        let lean = if sign == 0.0 {
            tone.abs()
        } else {
            -sign * tone
        };
        let severity = if sign >= 0.0 { item.severity } else { 0.0 };
        (0.25 * lean.max(0.0) + 0.7 * severity).min(1.0)
    };
    let proximity = (-(item.t - change.t).abs() / window_secs.max(1.0)).exp();
    raw.max(0.0) * proximity
}

/// Indexes of `items` ranked by [`influence`], the strongest first, ties by time; items
/// that did not push in the change's direction are left out.
pub fn rank(change: &Change, kind: Kind, items: &[Item], window_secs: f64) -> Vec<(usize, f64)> {
    let mut scored: Vec<(usize, f64)> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (i, influence(change, kind, it, window_secs)))
        .filter(|(_, w)| *w > 1e-6)
        .collect();
    scored.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(items[a.0].t.total_cmp(&items[b.0].t))
            .then(a.0.cmp(&b.0))
    });
    scored
}

/// A topic or word whose share of the feedback moved across a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermShift {
    /// An aspect name (`wait_time`) or a word.
    pub term: String,
    /// `aspect` or `word`.
    pub kind: &'static str,
    /// The language of the word; aspects span languages.
    pub language: Option<String>,
    /// Share of the texts on each side that mention it (among those that turned the
    /// change's way: negative texts for a drop, positive for a rise).
    pub share_before: f64,
    pub share_after: f64,
}

fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Topics (aspects) and words whose share rose most across the change among texts that
/// lean the change's way, at most `limit`. Words are counted per language; a word must
/// appear in at least two texts after the change.
pub fn term_shifts(change: &Change, items: &[Item], limit: usize) -> Vec<TermShift> {
    let leans = |it: &Item| match change.direction {
        Direction::Down => it.sentiment.is_some_and(|s| s < -0.1) || it.severity > 0.0,
        Direction::Up => it.sentiment.is_some_and(|s| s > 0.1),
        Direction::Change => it.sentiment.is_some_and(|s| s.abs() > 0.1),
    };
    let (before, after): (Vec<&Item>, Vec<&Item>) = items
        .iter()
        .filter(|it| it.text.is_some())
        .partition(|it| it.t < change.t);
    let (nb, na) = (before.len().max(1) as f64, after.len().max(1) as f64);
    let mut counts: std::collections::BTreeMap<(bool, String, Option<String>), (u32, u32)> =
        Default::default();
    for (side, list) in [(0, &before), (1, &after)] {
        for it in list.iter().filter(|it| leans(it)) {
            let mut seen: Vec<&str> = it.aspects.iter().map(|a| a.0).collect();
            seen.sort_unstable();
            seen.dedup();
            for a in seen {
                let e = counts.entry((true, a.to_string(), None)).or_default();
                if side == 0 { e.0 += 1 } else { e.1 += 1 }
            }
            let lang = it.language.unwrap_or("und");
            for w in words(it.text.unwrap_or("")) {
                if super::super::language::is_stopword(lang, &w) {
                    continue;
                }
                let e = counts
                    .entry((false, w, Some(lang.to_string())))
                    .or_default();
                if side == 0 { e.0 += 1 } else { e.1 += 1 }
            }
        }
    }
    let mut shifts: Vec<(f64, TermShift)> = counts
        .into_iter()
        .filter(|(_, (_, a))| *a >= 2)
        .map(|((is_aspect, term, language), (b, a))| {
            let (sb, sa) = (f64::from(b) / nb, f64::from(a) / na);
            // Aspects first at equal rise: they read better than single words.
            let rank = sa - sb + if is_aspect { 0.05 } else { 0.0 };
            (
                rank,
                TermShift {
                    term,
                    kind: if is_aspect { "aspect" } else { "word" },
                    language,
                    share_before: sb,
                    share_after: sa,
                },
            )
        })
        .filter(|(r, _)| *r > 0.05)
        .collect();
    shifts.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.term.cmp(&b.1.term)));
    shifts.into_iter().take(limit).map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn drop_at(t: f64) -> Change {
        Change {
            index: 5,
            t,
            direction: Direction::Down,
            before: 4.5,
            after: 2.5,
            confidence: 0.9,
            status: Status::Confirmed,
            n_before: 5,
            n_after: 5,
        }
    }

    fn item(t: f64, value: Option<f64>, sentiment: f64, severity: f64) -> Item<'static> {
        Item {
            t,
            value,
            sentiment: Some(sentiment),
            severity,
            language: Some("en"),
            text: Some("x"),
            aspects: vec![],
        }
    }

    #[test]
    fn an_escalated_bad_ticket_just_before_a_drop_ranks_first() {
        let day = 86_400.0;
        let c = drop_at(100.0 * day);
        let items = vec![
            item(90.0 * day, Some(5.0), 0.6, 0.0),
            item(99.0 * day, None, -0.9, 1.0),
            item(101.0 * day, Some(2.0), -0.5, 0.0),
            item(103.0 * day, Some(1.0), -0.6, 0.0),
            item(104.0 * day, Some(5.0), 0.8, 0.0),
        ];
        let ranked = rank(&c, Kind::Stars, &items, 7.0 * day);
        assert_eq!(ranked[0].0, 1, "{ranked:?}");
        assert!(ranked.iter().all(|(i, _)| *i != 0 && *i != 4));
    }

    #[test]
    fn rising_topics_are_named() {
        let c = drop_at(10.0);
        let mut items = Vec::new();
        for t in 0..10 {
            items.push(Item {
                aspects: vec![("staff", Some(0.5))],
                ..item(t as f64, Some(5.0), 0.5, 0.0)
            });
        }
        for t in 10..20 {
            items.push(Item {
                text: Some("the burger was cold and soggy"),
                aspects: vec![("wait_time", Some(-0.7))],
                ..item(t as f64, Some(2.0), -0.6, 0.0)
            });
        }
        let shifts = term_shifts(&c, &items, 5);
        assert_eq!(shifts[0].term, "wait_time");
        assert!(shifts.iter().any(|s| s.term == "soggy"));
    }
}
