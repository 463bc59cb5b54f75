//! How an interaction or a change reads in a CRM: a subject line, a plain-text body
//! (Salesforce), an HTML body (HubSpot notes, every data value escaped: review text is
//! hostile) and the JSON a webhook carries.

use crate::outputs::one_line;
use crate::outputs::report::html::{esc, safe_url};
use crate::store::{CrmPerson, StoredChange, StoredInteraction};
use serde_json::{Value, json};

/// HubSpot note bodies hold 65,536 characters, Salesforce descriptions 32,000; the text
/// keeps well inside both.
const MAX_TEXT_CHARS: usize = 30_000;
/// The escaped text's share of a HubSpot note (`hs_note_body`: at most 65,536 characters):
/// escaping turns `<` into four characters and `&` into five, so the raw clip is not enough.
const MAX_HTML_TEXT_CHARS: usize = 60_000;
/// Salesforce's `Task.Description`: at most 32,000 characters.
const MAX_PLAIN_CHARS: usize = 32_000;

/// `text` escaped for HTML with line breaks as `<br>`, at most `max` characters of output
/// (cut between characters, never inside an entity, with `…` when cut).
fn html_text(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in text.chars() {
        let piece = if c == '\n' {
            "<br>".to_string()
        } else {
            esc(c.encode_utf8(&mut [0u8; 4]))
        };
        let len = piece.chars().count();
        if n + len > max.saturating_sub(1) {
            out.push('…');
            break;
        }
        n += len;
        out.push_str(&piece);
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn stars(v: f64) -> String {
    let n = v.round().clamp(0.0, 5.0) as usize;
    format!("{}{}", "★".repeat(n), "☆".repeat(5 - n))
}

fn kind_label(i: &StoredInteraction) -> String {
    let kind = match i.interaction.kind.as_str() {
        "survey_response" => "survey answer",
        "ticket_comment" => "ticket comment",
        k => k,
    };
    format!("{} {kind}", i.interaction.source)
}

/// `google review ★★☆☆☆ at berlin-mitte` (at most 255 characters: Salesforce's Subject).
pub fn interaction_subject(i: &StoredInteraction) -> String {
    let x = &i.interaction;
    let mut s = kind_label(i);
    if let Some(v) = x.stars {
        s.push(' ');
        s.push_str(&stars(v));
    }
    if let Some(n) = x.nps {
        s.push_str(&format!(" NPS {n}"));
    }
    if let Some(c) = &x.csat {
        s.push_str(&format!(" CSAT {}", c.value));
    }
    if let Some(c) = &x.ces {
        s.push_str(&format!(" CES {}", c.value));
    }
    if let Some(l) = &x.location_id {
        s.push_str(&format!(" at {l}"));
    }
    clip(&one_line(&s, 255), 255)
}

/// The facts under the text: sentiment, language, status, link.
fn facts(i: &StoredInteraction) -> Vec<(String, String)> {
    let x = &i.interaction;
    let mut f = Vec::new();
    if let Some(s) = &x.sentiment {
        f.push((
            "Sentiment".to_string(),
            format!("{} ({:+.2})", s.label.as_str(), s.score),
        ));
    }
    if let Some(l) = &x.language {
        f.push(("Language".into(), l.clone()));
    }
    if let Some(s) = &x.status {
        f.push(("Status".into(), s.clone()));
    }
    f.push((
        "Date".into(),
        chrono::DateTime::from_timestamp_millis(x.occurred_at_ms)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default(),
    ));
    f
}

/// Plain text (Salesforce `Description`).
pub fn interaction_text(i: &StoredInteraction) -> String {
    let mut out = interaction_subject(i);
    out.push_str("\n\n");
    if let Some(t) = &i.interaction.text {
        out.push_str(&clip(t, MAX_TEXT_CHARS));
        out.push_str("\n\n");
    }
    for (k, v) in facts(i) {
        out.push_str(&format!("{k}: {}\n", one_line(&v, 200)));
    }
    if let Some(u) = &i.interaction.url {
        out.push_str(&format!("Link: {}\n", one_line(u, 2000)));
    }
    clip(&out, MAX_PLAIN_CHARS)
}

/// HTML (HubSpot `hs_note_body`): every value escaped, only http(s) links.
pub fn interaction_html(i: &StoredInteraction) -> String {
    let mut out = format!("<p><strong>{}</strong></p>", esc(&interaction_subject(i)));
    if let Some(t) = &i.interaction.text {
        out.push_str(&format!("<p>{}</p>", html_text(t, MAX_HTML_TEXT_CHARS)));
    }
    let facts: Vec<String> = facts(i)
        .into_iter()
        .map(|(k, v)| format!("{k}: {}", esc(&one_line(&v, 200))))
        .collect();
    out.push_str(&format!("<p>{}</p>", facts.join(" · ")));
    if let Some(u) = i.interaction.url.as_deref().and_then(safe_url) {
        out.push_str(&format!("<p><a href=\"{u}\">Open the original</a></p>"));
    }
    out
}

/// `Stars went down at berlin-mitte (4.4 → 3.1)`.
pub fn change_subject(c: &StoredChange) -> String {
    let x = &c.change;
    let what = match x.signal.as_str() {
        "stars" => "Star rating",
        "sentiment" => "Sentiment",
        "nps" => "NPS",
        "outcome" => "Ticket outcomes",
        other => other,
    };
    let dir = match x.direction.as_str() {
        "up" => "went up",
        "down" => "went down",
        _ => "changed",
    };
    let whom = if x.entity == "customer" {
        "for this customer".to_string()
    } else {
        match &x.channel {
            Some(ch) => format!("at {} ({ch})", x.entity_id),
            None => format!("at {}", x.entity_id),
        }
    };
    let kind = if x.status == "incident" {
        "Incident: "
    } else {
        ""
    };
    clip(
        &one_line(
            &format!(
                "{kind}{what} {dir} {whom} ({:.2} → {:.2})",
                x.before, x.after
            ),
            255,
        ),
        255,
    )
}

fn change_facts(c: &StoredChange) -> Vec<String> {
    let x = &c.change;
    vec![
        format!(
            "Since {}",
            chrono::DateTime::from_timestamp_millis(x.occurred_at_ms)
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        ),
        format!("confidence {:.0} %", x.confidence * 100.0),
        format!("{} observations before, {} after", x.n_before, x.n_after),
    ]
}

pub fn change_text(c: &StoredChange) -> String {
    format!("{}\n\n{}\n", change_subject(c), change_facts(c).join("\n"))
}

pub fn change_html(c: &StoredChange) -> String {
    format!(
        "<p><strong>{}</strong></p><p>{}</p>",
        esc(&change_subject(c)),
        change_facts(c)
            .iter()
            .map(|f| esc(f))
            .collect::<Vec<_>>()
            .join("<br>")
    )
}

pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn person_json(p: Option<&CrmPerson>) -> Value {
    match p {
        Some(p) => json!({"id": p.customer_id, "email": p.email, "name": p.display_name}),
        None => Value::Null,
    }
}

/// The `data` of a webhook's `interaction.upserted` event.
pub fn interaction_json(key: &str, i: &StoredInteraction, person: Option<&CrmPerson>) -> Value {
    let x = &i.interaction;
    json!({
        "key": key,
        "source": x.source,
        "external_id": x.external_id,
        "kind": x.kind.as_str(),
        "occurred_at": iso_ms(x.occurred_at_ms),
        "location_id": x.location_id,
        "customer": person_json(person),
        "author_name": x.author_name,
        "text": x.text,
        "language": x.language,
        "stars": x.stars,
        "nps": x.nps,
        "csat": x.csat.as_ref().map(|c| json!({"value": c.value, "scale": c.scale, "satisfied": c.satisfied})),
        "ces": x.ces.as_ref().map(|c| json!({"value": c.value, "scale": c.scale})),
        "sentiment": x.sentiment.as_ref().map(|s| json!({"score": s.score, "label": s.label.as_str(), "model": s.model})),
        "status": x.status,
        "url": x.url,
    })
}

/// The `data` of a webhook's `change.detected` event.
pub fn change_json(key: &str, c: &StoredChange, person: Option<&CrmPerson>) -> Value {
    let x = &c.change;
    let evidence: Vec<Value> = x
        .evidence
        .get("interactions")
        .and_then(Value::as_array)
        .map(|a| a.iter().take(10).cloned().collect())
        .unwrap_or_default();
    json!({
        "key": key,
        "series": x.series,
        "entity": x.entity,
        "entity_id": x.entity_id,
        "channel": x.channel,
        "signal": x.signal,
        "direction": x.direction,
        "before": x.before,
        "after": x.after,
        "confidence": x.confidence,
        "status": x.status,
        "occurred_at": iso_ms(x.occurred_at_ms),
        "customer": person_json(person),
        "summary": change_subject(c),
        "evidence": evidence,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaped_text_fits_a_hubspot_note() {
        let t = "<&".repeat(20_000);
        let h = super::html_text(&t, super::MAX_HTML_TEXT_CHARS);
        assert!(h.chars().count() <= super::MAX_HTML_TEXT_CHARS);
        assert!(h.ends_with('…'));
        assert_eq!(super::html_text("a<b\nc", 100), "a&lt;b<br>c");
    }
}
