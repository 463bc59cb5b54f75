//! The report as one self-contained HTML page: inline CSS, inline SVG charts, no script,
//! no external asset (a Content-Security-Policy in the page forbids loading any), and a
//! print style so it saves cleanly to PDF.
//!
//! Review text, names, URLs and every other value from data are hostile: each goes through
//! [`esc`] (text and quoted attributes), bidirectional-override characters are dropped so a
//! name cannot reverse the text around it, and a link is made only of an `http(s)` URL.
//! Nothing from data becomes an element or an attribute.

use super::figures::{SentimentGroup, TopicMove, Waiting};
use super::{Competitors, LocationReport, Report};
use crate::pipeline::indicators::{Durations, Mean, Share};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Links a page that embeds a location section may add (the dashboard): interaction id
/// to the page of the customer who wrote it. The report itself has none, as a file
/// cannot link into the daemon. Every href here is built by the caller from ids it
/// checked, and is escaped again when written.
#[derive(Debug, Clone, Default)]
pub struct Links {
    pub customer_of: HashMap<i64, String>,
}

impl Links {
    fn wrap(&self, id: i64, inner: String) -> String {
        match self.customer_of.get(&id) {
            Some(href) => format!("<a href=\"{}\">{inner}</a>", esc(href)),
            None => inner,
        }
    }
}

/// Escapes text for HTML text and double- or single-quoted attribute values, and drops
/// the characters that reorder text (bidi overrides and isolates) and C0 controls.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => {}
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// An `http(s)` URL fit for `href`, or `None` (`javascript:`, `data:`, relative, ...).
pub fn safe_url(u: &str) -> Option<String> {
    let t = u.trim();
    let parsed = reqwest::Url::parse(t).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| esc(parsed.as_str()))
}

pub fn num(v: Option<f64>, digits: usize, unit: &str) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}{unit}"),
        _ => "–".into(),
    }
}

pub fn small(flag: bool) -> &'static str {
    if flag {
        " <span class=\"small\" title=\"fewer answers than the minimum sample\">small sample</span>"
    } else {
        ""
    }
}

struct Row {
    name: &'static str,
    cur: String,
    prev: String,
    n: u64,
    small: bool,
}

fn mean_row(name: &'static str, c: &Mean, p: &Mean, digits: usize) -> Row {
    Row {
        name,
        cur: num(c.value, digits, ""),
        prev: num(p.value, digits, ""),
        n: c.n,
        small: c.small_sample,
    }
}

fn share_row(name: &'static str, c: &Share, p: &Share) -> Row {
    Row {
        name,
        cur: num(c.pct, 0, " %"),
        prev: num(p.pct, 0, " %"),
        n: c.n,
        small: c.small_sample,
    }
}

fn hours_row(name: &'static str, c: &Durations, p: &Durations) -> Row {
    Row {
        name,
        cur: num(c.median_hours, 1, " h"),
        prev: num(p.median_hours, 1, " h"),
        n: c.n,
        small: c.small_sample,
    }
}

pub const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1d2330;max-width:1100px;margin:2em auto;padding:0 1em}\
h1{font-size:1.6em}h2{border-bottom:2px solid #1d2330;margin-top:2.2em}h3{margin-top:1.6em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #d5d9e0;padding:.25em .7em;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.small{color:#8a5a00;font-size:.8em}\
.up{color:#1b7a35}.down{color:#b0262d}.muted{color:#68707d}blockquote{margin:.3em 0 .3em 1em;color:#333}\
section.location{break-before:page}@media print{body{margin:0;max-width:none}a{color:inherit}}";

/// The whole report as an HTML document.
pub fn render(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<title>Tideline reputation report</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n<h1>Reputation report</h1>\n");
    let _ = writeln!(
        h,
        "<p class=\"muted\">Generated {}. Figures on fewer than {} answers are marked small sample and never count as a move.</p>",
        esc(&r.generated_at),
        r.min_sample
    );
    portfolio(&mut h, r);
    for l in &r.locations {
        location(&mut h, l, &Links::default());
    }
    h.push_str("</body></html>\n");
    h
}

fn portfolio(h: &mut String, r: &Report) {
    h.push_str("<section id=\"portfolio\"><h2>Portfolio</h2>\n<table><thead><tr><th>#</th><th>Location</th><th>Composite index</th><th>Before</th><th>Stars</th><th>Reviews</th><th>Changes</th><th>Moved</th></tr></thead><tbody>\n");
    for p in &r.portfolio {
        let arrow = match (p.composite, p.composite_previous) {
            (Some(a), Some(b)) if p.moved && a > b => " <span class=\"up\">▲</span>",
            (Some(a), Some(b)) if p.moved && a < b => " <span class=\"down\">▼</span>",
            _ => "",
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"n\">{}</td><td><a href=\"#loc-{}\">{}</a></td><td class=\"n\">{}{}{}</td><td class=\"n\">{}</td><td class=\"n\">{} ({})</td><td class=\"n\">{} ({})</td><td class=\"n\">{}</td><td>{}</td></tr>",
            p.rank,
            anchor(&p.location_id),
            esc(&p.name),
            num(p.composite, 0, ""),
            small(p.small_sample),
            arrow,
            num(p.composite_previous, 0, ""),
            num(p.stars, 2, ""),
            num(p.stars_previous, 2, ""),
            p.reviews,
            p.reviews_previous,
            p.changes,
            if p.moved { "yes" } else { "no" }
        );
    }
    h.push_str("</tbody></table></section>\n");
}

/// An id fragment made only of `[a-z0-9-]` (location ids are configuration, still).
pub fn anchor(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// One location's section: indicators against the period before, charts, sentiment,
/// topics, changes with their evidence, and the reviews waiting for an answer.
pub fn location(h: &mut String, l: &LocationReport, links: &Links) {
    let g = &l.indicators;
    let _ = writeln!(
        h,
        "<section class=\"location\" id=\"loc-{}\"><h2>{}</h2>\n<p class=\"muted\">{} to {} (before: {} to {}), time zone {}</p>",
        anchor(g.location_id.as_deref().unwrap_or("all")),
        esc(&g.name),
        g.period.from,
        g.period.until.pred_opt().unwrap_or(g.period.until),
        g.previous_period.from,
        g.previous_period
            .until
            .pred_opt()
            .unwrap_or(g.previous_period.until),
        esc(&g.timezone)
    );
    let (c, p) = (&g.current, &g.previous);
    let rows = [
        Row {
            name: "Composite index (0-100)",
            cur: num(c.composite.value, 0, ""),
            prev: num(p.composite.value, 0, ""),
            n: c.interactions,
            small: c.composite.value.is_none(),
        },
        mean_row("Stars", &c.stars.mean, &p.stars.mean, 2),
        Row {
            name: "Reviews",
            cur: l.reviews.current.reviews.to_string(),
            prev: l.reviews.previous.reviews.to_string(),
            n: l.reviews.current.reviews,
            small: false,
        },
        share_row(
            "Reviews answered",
            &l.reviews.current.responded,
            &l.reviews.previous.responded,
        ),
        hours_row(
            "Median time to answer a review",
            &l.reviews.current.response_time,
            &l.reviews.previous.response_time,
        ),
        Row {
            name: "NPS",
            cur: num(c.nps.value, 0, ""),
            prev: num(p.nps.value, 0, ""),
            n: c.nps.n,
            small: c.nps.small_sample,
        },
        share_row(
            "CSAT satisfied",
            &c.csat.satisfied_pct,
            &p.csat.satisfied_pct,
        ),
        share_row(
            "CES agreeing it was easy",
            &c.ces.agree_pct,
            &p.ces.agree_pct,
        ),
        hours_row(
            "Median first reply (tickets)",
            &c.support.first_reply,
            &p.support.first_reply,
        ),
        hours_row(
            "Median resolution (tickets)",
            &c.support.resolution,
            &p.support.resolution,
        ),
    ];
    h.push_str("<h3>Indicators</h3><table><thead><tr><th>Indicator</th><th>This period</th><th>Before</th><th>n</th></tr></thead><tbody>\n");
    for r in rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            r.name,
            r.cur,
            small(r.small),
            r.prev,
            r.n
        );
    }
    h.push_str("</tbody></table>\n");
    if let Some(c) = &l.competitors {
        competitors(h, c);
    }
    h.push_str("<h3>Star ratings</h3>\n");
    stars_chart(h, &c.stars.distribution);
    if !g.buckets.is_empty() {
        h.push_str("<h3>Reviews and stars per week</h3>\n");
        weekly_chart(h, l);
    }
    sentiment_table(h, "Sentiment by language", &l.sentiment_by_language);
    sentiment_table(h, "Sentiment by channel", &l.sentiment_by_channel);
    topics(
        h,
        "Topics rising in negative feedback",
        &l.topics_rising_negative,
    );
    topics(
        h,
        "Topics rising in positive feedback",
        &l.topics_rising_positive,
    );
    changes(h, l, links);
    waiting(h, l, links);
    h.push_str("</section>\n");
}

/// Own rating and review count against each competitor's, as fetched; a competitor that
/// could not be fetched shows as unavailable with the reason.
fn competitors(h: &mut String, c: &Competitors) {
    h.push_str("<h3 id=\"competitors\">Competitors</h3>\n<table class=\"competitors\"><thead><tr><th>Place</th><th>Rating</th><th>Reviews</th><th>Fetched at</th></tr></thead><tbody>\n");
    let _ = writeln!(
        h,
        "<tr><td>This location (this period, own data)</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td></td></tr>",
        num(c.own_rating, 2, ""),
        c.own_reviews
    );
    for p in &c.places {
        match &p.unavailable {
            None => {
                let _ = writeln!(
                    h,
                    "<tr><td>{} (Google, all time)</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                    esc(&p.name),
                    num(p.rating, 1, ""),
                    p.reviews
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "–".into()),
                    esc(p.fetched_at.as_deref().unwrap_or(""))
                );
            }
            Some(reason) => {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td colspan=\"3\" class=\"muted\">unavailable: {}</td></tr>",
                    esc(&p.name),
                    esc(reason)
                );
            }
        }
    }
    h.push_str("</tbody></table>\n<p class=\"muted\">Competitor figures are Google's, fetched when this report was built and not stored.</p>\n");
}

fn stars_chart(h: &mut String, dist: &[u64; 5]) {
    let max = dist.iter().copied().max().unwrap_or(0).max(1) as f64;
    let _ = write!(
        h,
        "<svg role=\"img\" aria-label=\"star distribution\" width=\"360\" height=\"120\" viewBox=\"0 0 360 120\">"
    );
    for (i, n) in dist.iter().enumerate().rev() {
        let y = (4 - i) * 22 + 4;
        let w = (*n as f64 / max * 260.0).round();
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{} ★</text><rect x=\"40\" y=\"{}\" width=\"{w}\" height=\"16\" fill=\"#3b6fb6\"></rect><text x=\"{}\" y=\"{}\" font-size=\"12\">{n}</text>",
            y + 13,
            i + 1,
            y,
            46.0 + w,
            y + 13
        );
    }
    h.push_str("</svg>\n");
}

fn weekly_chart(h: &mut String, l: &LocationReport) {
    let weeks = &l.indicators.buckets;
    let max = weeks
        .iter()
        .map(|b| b.indicators.stars.mean.n)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let width = 60 * weeks.len() + 40;
    let _ = write!(
        h,
        "<svg role=\"img\" aria-label=\"reviews and mean stars per week\" width=\"{width}\" height=\"170\" viewBox=\"0 0 {width} 170\">"
    );
    let mut line = String::new();
    for (i, b) in weeks.iter().enumerate() {
        let x = 40 + i * 60;
        let n = b.indicators.stars.mean.n;
        let bar = (n as f64 / max * 100.0).round();
        let _ = write!(
            h,
            "<rect x=\"{x}\" y=\"{}\" width=\"36\" height=\"{bar}\" fill=\"#c9d6ea\"></rect><text x=\"{x}\" y=\"150\" font-size=\"10\">{}</text><text x=\"{x}\" y=\"{}\" font-size=\"10\">{n}</text>",
            120.0 - bar,
            esc(&b.key),
            116.0 - bar
        );
        if let Some(m) = b.indicators.stars.mean.value {
            let y = 120.0 - (m - 1.0) / 4.0 * 100.0;
            let _ = write!(line, "{},{y:.1} ", x + 18);
            let _ = write!(
                h,
                "<circle cx=\"{}\" cy=\"{y:.1}\" r=\"3\" fill=\"#1d2330\"></circle>",
                x + 18
            );
        }
    }
    if !line.is_empty() {
        let _ = write!(
            h,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#1d2330\" stroke-width=\"1.5\"></polyline>",
            line.trim_end()
        );
    }
    h.push_str("</svg>\n<p class=\"muted\">Bars: rated reviews; line: mean stars (1 at the bottom, 5 at the top).</p>\n");
}

fn sentiment_table(h: &mut String, title: &str, groups: &[SentimentGroup]) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h3>{title}</h3><table><thead><tr><th></th><th>Mean sentiment</th><th>Before</th><th>Negative</th><th>n</th></tr></thead><tbody>"
    );
    for g in groups {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&g.key),
            num(g.current.mean.value, 2, ""),
            small(g.current.mean.small_sample),
            num(g.previous.mean.value, 2, ""),
            num(g.current.negative.pct, 0, " %"),
            g.current.mean.n
        );
    }
    h.push_str("</tbody></table>\n");
}

fn topics(h: &mut String, title: &str, topics: &[TopicMove]) {
    let _ = write!(h, "<h3>{title}</h3>");
    if topics.is_empty() {
        h.push_str("<p class=\"muted\">None in either period.</p>\n");
        return;
    }
    h.push_str("<table><thead><tr><th>Topic</th><th>Mentions</th><th>Before</th><th>Share of texts</th></tr></thead><tbody>\n");
    for t in topics {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.0} % (before {:.0} %)</td></tr>",
            esc(&t.topic.replace('_', " ")),
            t.current,
            t.previous,
            t.current_pct,
            t.previous_pct
        );
    }
    h.push_str("</tbody></table>\n");
}

fn changes(h: &mut String, l: &LocationReport, links: &Links) {
    h.push_str("<h3>When satisfaction changed</h3>\n");
    if l.changes.is_empty() {
        h.push_str("<p class=\"muted\">No change detected in this period.</p>\n");
        return;
    }
    for c in &l.changes {
        let c = &c.change;
        let class = match c.direction.as_str() {
            "up" => "up",
            "down" => "down",
            _ => "muted",
        };
        let _ = writeln!(
            h,
            "<div class=\"change\"><p><strong class=\"{class}\">{} {}</strong> on {}: {} → {} ({} before, {} after), confidence {:.0} %, {}{}</p>",
            esc(&c.signal),
            esc(&c.direction),
            esc(&crate::outputs::rfc3339(c.occurred_at_ms)),
            num(Some(c.before), 2, ""),
            num(Some(c.after), 2, ""),
            c.n_before,
            c.n_after,
            c.confidence * 100.0,
            esc(&c.status),
            c.channel
                .as_deref()
                .map(|ch| format!(", channel {}", esc(ch)))
                .unwrap_or_default()
        );
        if let Some(items) = c.evidence.get("interactions").and_then(|v| v.as_array()) {
            h.push_str("<ul>");
            for item in items.iter().take(5) {
                let text = |k: &str| item.get(k).and_then(|v| v.as_str()).unwrap_or("");
                let label = format!("{} {}", esc(text("source")), esc(text("external_id")));
                let id = item.get("id").and_then(|v| v.as_i64()).unwrap_or(-1);
                let _ = write!(h, "<li>{}", links.wrap(id, label));
                let excerpt = text("text");
                if !excerpt.is_empty() {
                    let _ = write!(
                        h,
                        "<blockquote>{}</blockquote>",
                        esc(&crate::outputs::one_line(excerpt, 300))
                    );
                }
                h.push_str("</li>");
            }
            h.push_str("</ul>");
        }
        if let Some(terms) = c.evidence.get("terms").and_then(|v| v.as_array()) {
            let words: Vec<String> = terms
                .iter()
                .take(10)
                .map(|t| {
                    esc(t
                        .get("term")
                        .and_then(|v| v.as_str())
                        .or_else(|| t.as_str())
                        .unwrap_or(""))
                })
                .filter(|w| !w.is_empty())
                .collect();
            if !words.is_empty() {
                let _ = write!(h, "<p class=\"muted\">Terms: {}</p>", words.join(", "));
            }
        }
        h.push_str("</div>\n");
    }
}

fn waiting(h: &mut String, l: &LocationReport, links: &Links) {
    let _ = writeln!(
        h,
        "<h3>Reviews waiting for an answer ({})</h3>",
        l.waiting_total
    );
    if l.waiting.is_empty() {
        h.push_str("<p class=\"muted\">Every review has an answer.</p>\n");
        return;
    }
    h.push_str("<table><thead><tr><th>Date</th><th>Stars</th><th>Author</th><th>Review</th></tr></thead><tbody>\n");
    for w in &l.waiting {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}{}</td><td>{}</td><td>{}</td></tr>",
            esc(&crate::outputs::rfc3339(w.occurred_at_ms)),
            num(w.stars, 0, ""),
            if w.negative {
                " <span class=\"down\">negative</span>"
            } else {
                ""
            },
            links.wrap(w.id, esc(w.author_name.as_deref().unwrap_or(""))),
            review_cell(w)
        );
    }
    h.push_str("</tbody></table>\n");
}

fn review_cell(w: &Waiting) -> String {
    let text = esc(&crate::outputs::one_line(
        w.text.as_deref().unwrap_or(""),
        400,
    ));
    match w.url.as_deref().and_then(safe_url) {
        Some(href) => {
            format!("{text} <a href=\"{href}\" rel=\"noopener noreferrer nofollow\">open</a>")
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_refuses_what_could_become_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(esc("abc\u{202E}def\u{2066}"), "abcdef");
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url(" JaVaScRiPt:alert(1)"), None);
        assert_eq!(safe_url("data:text/html;base64,PHNjcmlwdD4="), None);
        assert_eq!(safe_url("/relative"), None);
        assert_eq!(
            safe_url("https://example.test/a?b=\"><x>").as_deref(),
            Some("https://example.test/a?b=%22%3E%3Cx%3E")
        );
        assert_eq!(anchor("Berlin \"Mitte\""), "berlin--mitte-");
    }
}
