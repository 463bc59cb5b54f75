//! The digest's own words in English and German (a message table, no i18n crate), number,
//! date and time formats per language, the subject line and the plain-text part.
//!
//! Data-born text (review texts, names, connector errors) goes through
//! [`crate::outputs::one_line`], which drops control characters; the subject additionally
//! loses bidi controls and is capped at [`SUBJECT_MAX_CHARS`].

use super::{ChangeLine, Digest, Figure, Period};
use crate::config::DigestLanguage;
use chrono::{Datelike, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;
use std::fmt::Write as _;

/// The longest subject line, in characters (RFC 5322 recommends lines under 78; an
/// encoded subject folds, but a long one is cut in mail clients anyway).
pub const SUBJECT_MAX_CHARS: usize = 120;

/// Which figure a [`Figure`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureKey {
    Reviews,
    Stars,
    Nps,
    Csat,
    ResponseRate,
    Sentiment,
    Composite,
}

/// The message table of one language.
pub struct Words {
    pub digest: &'static str,
    pub daily: &'static str,
    pub weekly: &'static str,
    pub hello: &'static str,
    pub all_locations: &'static str,
    pub locations: &'static str,
    pub summary: &'static str,
    pub changes: &'static str,
    pub waiting: &'static str,
    pub problems: &'static str,
    pub figures_title: &'static str,
    pub figure: &'static str,
    pub period_col: &'static str,
    pub before_col: &'static str,
    pub answers: &'static str,
    pub small_sample: &'static str,
    pub changes_title: &'static str,
    pub no_changes: &'static str,
    pub waiting_title: &'static str,
    pub no_waiting: &'static str,
    pub more: &'static str,
    pub problems_title: &'static str,
    pub no_problems: &'static str,
    pub evidence: &'static str,
    pub open: &'static str,
    pub up: &'static str,
    pub down: &'static str,
    pub moved: &'static str,
    pub channel: &'static str,
    pub times_in: &'static str,
    pub footer: &'static str,
    pub reviews: &'static str,
    pub stars: &'static str,
    pub nps: &'static str,
    pub csat: &'static str,
    pub response_rate: &'static str,
    pub sentiment: &'static str,
    pub composite: &'static str,
    pub weekdays: [&'static str; 7],
}

pub const EN: Words = Words {
    digest: "Tideline digest",
    daily: "Daily digest",
    weekly: "Weekly digest",
    hello: "Hello",
    all_locations: "all locations",
    locations: "locations",
    summary: "In short",
    changes: "changes",
    waiting: "negative reviews waiting for an answer",
    problems: "connector problems",
    figures_title: "Indicators",
    figure: "Figure",
    period_col: "This period",
    before_col: "Before",
    answers: "answers",
    small_sample: "small sample",
    changes_title: "What changed",
    no_changes: "No change detected.",
    waiting_title: "Negative reviews waiting for an answer",
    no_waiting: "Every negative review has an answer.",
    more: "more",
    problems_title: "Connector problems",
    no_problems: "Every connector is fine.",
    evidence: "Evidence",
    open: "open",
    up: "up",
    down: "down",
    moved: "moved",
    channel: "channel",
    times_in: "Times are in",
    footer: "Sent by Tideline. Figures on fewer answers than the minimum sample are marked and never count as a change.",
    reviews: "Reviews",
    stars: "Stars (mean)",
    nps: "NPS",
    csat: "CSAT (% satisfied)",
    response_rate: "Reviews answered",
    sentiment: "Sentiment (-1 to 1)",
    composite: "Satisfaction index",
    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
};

pub const DE: Words = Words {
    digest: "Tideline-Übersicht",
    daily: "Tägliche Übersicht",
    weekly: "Wöchentliche Übersicht",
    hello: "Hallo",
    all_locations: "alle Standorte",
    locations: "Standorte",
    summary: "Kurz gesagt",
    changes: "Veränderungen",
    waiting: "negative Bewertungen ohne Antwort",
    problems: "Probleme mit Datenquellen",
    figures_title: "Kennzahlen",
    figure: "Kennzahl",
    period_col: "Zeitraum",
    before_col: "Davor",
    answers: "Antworten",
    small_sample: "kleine Stichprobe",
    changes_title: "Was sich verändert hat",
    no_changes: "Keine Veränderung erkannt.",
    waiting_title: "Negative Bewertungen ohne Antwort",
    no_waiting: "Jede negative Bewertung ist beantwortet.",
    more: "weitere",
    problems_title: "Probleme mit Datenquellen",
    no_problems: "Alle Datenquellen arbeiten.",
    evidence: "Beleg",
    open: "öffnen",
    up: "gestiegen",
    down: "gesunken",
    moved: "verändert",
    channel: "Kanal",
    times_in: "Zeiten in",
    footer: "Gesendet von Tideline. Werte aus weniger Antworten als der Mindeststichprobe sind markiert und gelten nie als Veränderung.",
    reviews: "Bewertungen",
    stars: "Sterne (Mittel)",
    nps: "NPS",
    csat: "CSAT (% zufrieden)",
    response_rate: "Beantwortete Bewertungen",
    sentiment: "Stimmung (-1 bis 1)",
    composite: "Zufriedenheitsindex",
    weekdays: ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"],
};

pub fn words(lang: DigestLanguage) -> &'static Words {
    match lang {
        DigestLanguage::En => &EN,
        DigestLanguage::De => &DE,
    }
}

impl FigureKey {
    pub fn label(self, w: &Words) -> &'static str {
        match self {
            FigureKey::Reviews => w.reviews,
            FigureKey::Stars => w.stars,
            FigureKey::Nps => w.nps,
            FigureKey::Csat => w.csat,
            FigureKey::ResponseRate => w.response_rate,
            FigureKey::Sentiment => w.sentiment,
            FigureKey::Composite => w.composite,
        }
    }

    fn digits(self) -> usize {
        match self {
            FigureKey::Reviews | FigureKey::Nps | FigureKey::Csat | FigureKey::ResponseRate => 0,
            FigureKey::Composite | FigureKey::Stars => 1,
            FigureKey::Sentiment => 2,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            FigureKey::Csat | FigureKey::ResponseRate => " %",
            _ => "",
        }
    }
}

/// A number in the language's notation (German: decimal comma); `–` for none.
pub fn num(lang: DigestLanguage, v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.digits$}");
            match lang {
                DigestLanguage::En => s,
                DigestLanguage::De => s.replace('.', ","),
            }
        }
        _ => "–".into(),
    }
}

pub fn figure_value(lang: DigestLanguage, f: &Figure, v: Option<f64>) -> String {
    match v {
        Some(_) => format!("{}{}", num(lang, v, f.key.digits()), f.key.unit()),
        None => "–".into(),
    }
}

/// ▲ / ▼ / = between the period and the one before (nothing when either is missing).
pub fn arrow(f: &Figure) -> &'static str {
    match (f.current, f.previous) {
        (Some(a), Some(b)) if a > b + 1e-9 => "▲",
        (Some(a), Some(b)) if a < b - 1e-9 => "▼",
        (Some(_), Some(_)) => "=",
        _ => "",
    }
}

/// A local date: `Mon 2026-03-30` or `Mo 30.03.2026`.
pub fn date(lang: DigestLanguage, d: chrono::NaiveDate) -> String {
    let wd = words(lang).weekdays[d.weekday().num_days_from_monday() as usize];
    match lang {
        DigestLanguage::En => format!("{wd} {}", d.format("%Y-%m-%d")),
        DigestLanguage::De => format!("{wd} {}", d.format("%d.%m.%Y")),
    }
}

/// A local time in the recipient's zone with its abbreviation: `2026-03-30 14:05 CEST`.
pub fn local_time(lang: DigestLanguage, tz: Tz, ms: i64) -> String {
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => match lang {
            DigestLanguage::En => t.format("%Y-%m-%d %H:%M %Z").to_string(),
            DigestLanguage::De => t.format("%d.%m.%Y %H:%M %Z").to_string(),
        },
        None => "–".into(),
    }
}

pub fn period(lang: DigestLanguage, p: &Period) -> String {
    if p.start == p.end {
        date(lang, p.start)
    } else {
        format!("{} – {}", date(lang, p.start), date(lang, p.end))
    }
}

/// The locations the digest covers, as the subject and the greeting name them.
pub fn scope_label(d: &Digest) -> String {
    let w = words(d.language);
    if d.all_locations {
        return w.all_locations.to_string();
    }
    match d.locations.as_slice() {
        [one] => one.name.clone(),
        many => format!("{} {}", many.len(), w.locations),
    }
}

/// A subject line: no CR, LF or other control character, no bidi control, single spaces,
/// at most [`SUBJECT_MAX_CHARS`] characters.
pub fn sanitize_subject(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| match c {
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => ' ',
            '\u{2028}' | '\u{2029}' | '\u{FEFF}' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= SUBJECT_MAX_CHARS {
        flat
    } else {
        let mut t: String = flat.chars().take(SUBJECT_MAX_CHARS - 1).collect();
        t.push('…');
        t
    }
}

pub fn subject(d: &Digest) -> String {
    let w = words(d.language);
    // The counts first: a long location name is what the cap cuts.
    sanitize_subject(&format!(
        "{} {}: {} {}, {} {} – {}",
        w.digest,
        period(d.language, &d.period),
        d.change_count(),
        w.changes,
        d.waiting_count(),
        w.waiting,
        scope_label(d),
    ))
}

/// The executive summary sentence.
pub fn summary(d: &Digest) -> String {
    let w = words(d.language);
    format!(
        "{}: {} {}, {} {}, {} {}.",
        w.summary,
        d.change_count(),
        w.changes,
        d.waiting_count(),
        w.waiting,
        d.connector_problems.len(),
        w.problems
    )
}

/// `stars down: 4.50 → 2.10 (12 before, 8 after), confirmed, channel google`.
pub fn change_headline(lang: DigestLanguage, c: &ChangeLine) -> String {
    let w = words(lang);
    let dir = match c.direction.as_str() {
        "up" => w.up,
        "down" => w.down,
        _ => w.moved,
    };
    let mut s = format!(
        "{} {dir}: {} → {} ({}/{}), {}",
        crate::outputs::one_line(&c.signal, 40),
        num(lang, Some(c.before), 2),
        num(lang, Some(c.after), 2),
        c.n_before,
        c.n_after,
        crate::outputs::one_line(&c.status, 20),
    );
    if let Some(ch) = &c.channel {
        let _ = write!(s, ", {} {}", w.channel, crate::outputs::one_line(ch, 60));
    }
    s
}

fn stars(v: Option<f64>) -> String {
    match v {
        Some(s) if s.is_finite() => format!("{}★", s.round() as i64),
        _ => String::new(),
    }
}

/// The evidence line without its link: `★1 2026-03-29 14:05 CEST "text…"` (or the item's
/// source and id when its text is not at hand).
pub fn evidence_line(d: &Digest, e: &super::Evidence) -> String {
    let mut parts = Vec::new();
    let s = stars(e.stars);
    if !s.is_empty() {
        parts.push(s);
    }
    if let Some(ms) = e.occurred_at_ms {
        parts.push(local_time(d.language, d.time_zone, ms));
    }
    match &e.text {
        Some(t) if !t.trim().is_empty() => {
            parts.push(format!("“{}”", crate::outputs::one_line(t, 160)))
        }
        _ => parts.push(crate::outputs::one_line(
            &format!("{} {}", e.source, e.external_id),
            120,
        )),
    }
    parts.join(" ")
}

/// The plain-text part.
pub fn render(d: &Digest) -> String {
    let w = words(d.language);
    let lang = d.language;
    let mut t = String::new();
    let kind = match d.period.cadence {
        super::Cadence::Day => w.daily,
        super::Cadence::Week => w.weekly,
    };
    let _ = writeln!(
        t,
        "{kind}: {} – {}",
        crate::outputs::one_line(&scope_label(d), 200),
        period(lang, &d.period)
    );
    let _ = writeln!(t);
    match &d.recipient_name {
        Some(n) => {
            let _ = writeln!(t, "{} {},", w.hello, crate::outputs::one_line(n, 100));
        }
        None => {
            let _ = writeln!(t, "{},", w.hello);
        }
    }
    let _ = writeln!(t, "{}", summary(d));
    let _ = writeln!(t, "{} {}.", w.times_in, d.time_zone.name());
    for l in &d.locations {
        let _ = writeln!(t);
        let name = crate::outputs::one_line(&l.name, 200);
        let _ = writeln!(t, "== {name} ==");
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "{} ({} | {})",
            w.figures_title, w.period_col, w.before_col
        );
        for f in &l.figures {
            let _ = writeln!(
                t,
                "  {}: {} {} | {} (n={}){}",
                f.key.label(w),
                figure_value(lang, f, f.current),
                arrow(f),
                figure_value(lang, f, f.previous),
                f.n,
                if f.small_sample {
                    format!(", {}", w.small_sample)
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "{}", w.changes_title);
        if l.changes.is_empty() {
            let _ = writeln!(t, "  {}", w.no_changes);
        }
        for c in &l.changes {
            let _ = writeln!(
                t,
                "  - {} {}",
                local_time(lang, d.time_zone, c.occurred_at_ms),
                change_headline(lang, c)
            );
            if let Some(e) = &c.evidence {
                let _ = writeln!(t, "    {}: {}", w.evidence, evidence_line(d, e));
                if let Some(u) = e.url.as_deref().and_then(text_url) {
                    let _ = writeln!(t, "    {u}");
                }
            }
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "{} ({})", w.waiting_title, l.waiting_total);
        if l.waiting.is_empty() {
            let _ = writeln!(t, "  {}", w.no_waiting);
        }
        for r in &l.waiting {
            let _ = writeln!(
                t,
                "  - {} {} {}: “{}”",
                local_time(lang, d.time_zone, r.occurred_at_ms),
                stars(r.stars),
                crate::outputs::one_line(r.author_name.as_deref().unwrap_or(""), 60),
                crate::outputs::one_line(r.text.as_deref().unwrap_or(""), 200)
            );
            if let Some(u) = r.url.as_deref().and_then(text_url) {
                let _ = writeln!(t, "    {u}");
            }
        }
        let more = l.waiting_total.saturating_sub(l.waiting.len() as u64);
        if more > 0 {
            let _ = writeln!(t, "  (+{more} {})", w.more);
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "{}", w.problems_title);
    if d.connector_problems.is_empty() {
        let _ = writeln!(t, "  {}", w.no_problems);
    }
    for p in &d.connector_problems {
        let _ = writeln!(
            t,
            "  - {} ({}): {}",
            crate::outputs::one_line(&p.source, 80),
            p.state,
            crate::outputs::one_line(&p.problem, 300)
        );
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "-- ");
    let _ = writeln!(t, "{}", w.footer);
    t
}

/// An `http(s)` URL as one line of plain text, or nothing.
fn text_url(u: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(u.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_lose_line_breaks_controls_and_length() {
        let s = sanitize_subject("Berlin\r\nBcc: evil@example.com\u{202E}\u{7}\tx");
        assert_eq!(s, "Berlin Bcc: evil@example.com x");
        let long = sanitize_subject(&"a".repeat(500));
        assert_eq!(long.chars().count(), SUBJECT_MAX_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn numbers_follow_the_language() {
        assert_eq!(num(DigestLanguage::De, Some(4.26), 1), "4,3");
        assert_eq!(num(DigestLanguage::En, Some(4.25), 2), "4.25");
        assert_eq!(num(DigestLanguage::En, None, 2), "–");
        let d = chrono::NaiveDate::from_ymd_opt(2026, 3, 30).unwrap();
        assert_eq!(date(DigestLanguage::De, d), "Mo 30.03.2026");
        assert_eq!(date(DigestLanguage::En, d), "Mon 2026-03-30");
    }
}
