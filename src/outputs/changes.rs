//! `tideline changes`: stored change points and incidents with their evidence.

use super::{one_line, rfc3339};
use crate::store::StoredChange;

fn units(signal: &str, v: f64) -> String {
    match signal {
        "stars" => format!("{v:.2}★"),
        "nps" => format!("NPS {v:+.0}"),
        "outcome" => format!("{:.0}% resolved", v * 100.0),
        _ => format!("{v:+.2}"),
    }
}

/// A terminal listing: one line per change, then what moved it. Data-born text is reduced
/// to one line without control characters.
pub fn render_table(changes: &[StoredChange]) -> String {
    let mut out = String::new();
    if changes.is_empty() {
        out.push_str("No changes detected (run `tideline analyze` after importing).\n");
        return out;
    }
    for c in changes {
        let ch = &c.change;
        let date = rfc3339(ch.occurred_at_ms);
        out.push_str(&format!(
            "{}  {:<9} {:<6} {}  {} -> {}  confidence {:.2}  (n {} | {})\n",
            &date[..date.len().min(10)],
            ch.status,
            ch.direction,
            one_line(&ch.series, 60),
            units(&ch.signal, ch.before),
            units(&ch.signal, ch.after),
            ch.confidence,
            ch.n_before,
            ch.n_after,
        ));
        let items = ch.evidence["interactions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let moved: Vec<String> = items
            .iter()
            .take(3)
            .map(|i| {
                let mut s = format!(
                    "{} {}:{}",
                    i["kind"].as_str().unwrap_or("interaction"),
                    i["source"].as_str().unwrap_or("?"),
                    i["external_id"].as_str().unwrap_or("?")
                );
                if let Some(st) = i["stars"].as_f64() {
                    s.push_str(&format!(" {st:.0}★"));
                }
                if let Some(se) = i["sentiment"].as_f64() {
                    s.push_str(&format!(" {se:+.2}"));
                }
                if let Some(st) = i["status"].as_str() {
                    s.push_str(&format!(" {st}"));
                }
                one_line(&s, 80)
            })
            .collect();
        if !moved.is_empty() {
            out.push_str(&format!("    moved by: {}\n", moved.join(" · ")));
        }
        let terms: Vec<String> = ch.evidence["terms"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .take(5)
            .map(|t| {
                let term = one_line(t["term"].as_str().unwrap_or(""), 30);
                match t["language"].as_str() {
                    Some(l) => format!("\"{term}\" ({})", one_line(l, 5)),
                    None => term.replace('_', " "),
                }
            })
            .collect();
        if !terms.is_empty() {
            out.push_str(&format!("    rising: {}\n", terms.join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ChangeRecord;

    #[test]
    fn hostile_evidence_stays_on_one_line() {
        let c = StoredChange {
            id: 1,
            change: ChangeRecord {
                series: "location:evil\x1b[2J:stars".into(),
                entity: "location".into(),
                entity_id: "evil".into(),
                channel: None,
                signal: "stars".into(),
                index: 40,
                occurred_at_ms: 1_773_300_000_000,
                direction: "down".into(),
                before: 4.4,
                after: 3.1,
                confidence: 0.97,
                status: "confirmed".into(),
                n_before: 40,
                n_after: 30,
                evidence: serde_json::json!({
                    "interactions": [{"kind": "review", "source": "g\r\nx", "external_id": "1", "stars": 1.0}],
                    "terms": [{"term": "wait_time", "kind": "aspect"}, {"term": "kalt\x07", "language": "de"}]
                }),
                detected_at_ms: 0,
            },
        };
        let t = render_table(&[c]);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert_eq!(t.lines().count(), 3);
        assert!(t.contains("4.40★ -> 3.10★") && t.contains("wait time"));
    }
}
