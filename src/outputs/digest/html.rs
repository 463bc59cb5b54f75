//! The digest's HTML part. Mail clients drop `<style>` blocks and block remote content,
//! so every style is an inline `style` attribute, there is no image at all, and the only
//! links are `http(s)` URLs of evidence and waiting reviews (through
//! [`safe_url`]). Every value from data or configuration goes through [`esc`]: nothing
//! from data becomes an element or an attribute.

use super::text::{self, words};
use super::{Digest, LocationDigest};
use crate::outputs::report::html::{esc, safe_url};
use std::fmt::Write as _;

const BODY: &str = "margin:0;padding:16px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.45;color:#1d2330";
const CARD: &str =
    "max-width:680px;margin:0 auto;background:#ffffff;padding:20px;border:1px solid #d5d9e0";
const H1: &str = "font-size:20px;margin:0 0 8px 0";
const H2: &str =
    "font-size:17px;margin:24px 0 8px 0;padding-bottom:4px;border-bottom:2px solid #1d2330";
const H3: &str = "font-size:15px;margin:16px 0 6px 0";
const TABLE: &str = "border-collapse:collapse;width:100%";
const TH: &str = "text-align:left;padding:4px 8px;border-bottom:1px solid #d5d9e0;font-weight:bold";
const TD: &str =
    "text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2;vertical-align:top";
const TDN: &str =
    "text-align:right;padding:4px 8px;border-bottom:1px solid #eceef2;white-space:nowrap";
const MUTED: &str = "color:#68707d";
const SMALL: &str = "color:#8a5a00;font-size:12px";
const UP: &str = "color:#1b7a35";
const DOWN: &str = "color:#b0262d";
const QUOTE: &str =
    "margin:4px 0 4px 12px;padding-left:8px;border-left:3px solid #d5d9e0;color:#333333";

pub fn render(d: &Digest) -> String {
    let w = words(d.language);
    let lang = d.language;
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head>\n<body style=\"{BODY}\"><div style=\"{CARD}\">\n",
        lang.as_str(),
        esc(&text::subject(d))
    );
    let kind = match d.period.cadence {
        super::Cadence::Day => w.daily,
        super::Cadence::Week => w.weekly,
    };
    let _ = writeln!(
        h,
        "<h1 style=\"{H1}\">{}: {}</h1><p style=\"{MUTED}\">{} · {} {}</p>",
        esc(kind),
        esc(&text::scope_label(d)),
        esc(&text::period(lang, &d.period)),
        esc(w.times_in),
        esc(d.time_zone.name())
    );
    let greeting = match &d.recipient_name {
        Some(n) => format!("{} {},", w.hello, n),
        None => format!("{},", w.hello),
    };
    let _ = writeln!(
        h,
        "<p>{}</p><p><strong>{}</strong></p>",
        esc(&greeting),
        esc(&text::summary(d))
    );
    for l in &d.locations {
        location(&mut h, d, l);
    }
    let _ = writeln!(h, "<h2 style=\"{H2}\">{}</h2>", esc(w.problems_title));
    if d.connector_problems.is_empty() {
        let _ = writeln!(h, "<p style=\"{MUTED}\">{}</p>", esc(w.no_problems));
    } else {
        h.push_str("<ul>");
        for p in &d.connector_problems {
            let _ = write!(
                h,
                "<li><strong>{}</strong> ({}): {}</li>",
                esc(&crate::outputs::one_line(&p.source, 80)),
                esc(&p.state),
                esc(&crate::outputs::one_line(&p.problem, 300))
            );
        }
        h.push_str("</ul>\n");
    }
    let _ = writeln!(
        h,
        "<p style=\"{MUTED};font-size:12px;margin-top:24px\">{}</p>\n</div></body></html>",
        esc(w.footer)
    );
    h
}

fn location(h: &mut String, d: &Digest, l: &LocationDigest) {
    let w = words(d.language);
    let lang = d.language;
    let _ = writeln!(h, "<h2 style=\"{H2}\">{}</h2>", esc(&l.name));
    let _ = writeln!(h, "<h3 style=\"{H3}\">{}</h3>", esc(w.figures_title));
    let _ = write!(
        h,
        "<table role=\"presentation\" style=\"{TABLE}\"><tr><th style=\"{TH}\">{}</th><th style=\"{TH}\">{}</th><th style=\"{TH}\">{}</th><th style=\"{TH}\">n</th></tr>",
        esc(w.figure),
        esc(w.period_col),
        esc(w.before_col)
    );
    for f in &l.figures {
        let arrow = match text::arrow(f) {
            "▲" => format!(" <span style=\"{UP}\">▲</span>"),
            "▼" => format!(" <span style=\"{DOWN}\">▼</span>"),
            _ => String::new(),
        };
        let small = if f.small_sample {
            format!(" <span style=\"{SMALL}\">{}</span>", esc(w.small_sample))
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<tr><td style=\"{TD}\">{}</td><td style=\"{TDN}\">{}{arrow}{small}</td><td style=\"{TDN}\">{}</td><td style=\"{TDN}\">{}</td></tr>",
            esc(f.key.label(w)),
            esc(&text::figure_value(lang, f, f.current)),
            esc(&text::figure_value(lang, f, f.previous)),
            f.n
        );
    }
    h.push_str("</table>\n");
    let _ = writeln!(h, "<h3 style=\"{H3}\">{}</h3>", esc(w.changes_title));
    if l.changes.is_empty() {
        let _ = writeln!(h, "<p style=\"{MUTED}\">{}</p>", esc(w.no_changes));
    }
    for c in &l.changes {
        let colour = match c.direction.as_str() {
            "up" => UP,
            "down" => DOWN,
            _ => MUTED,
        };
        let _ = write!(
            h,
            "<p style=\"margin:8px 0 2px 0\"><span style=\"{MUTED}\">{}</span> <strong style=\"{colour}\">{}</strong></p>",
            esc(&text::local_time(lang, d.time_zone, c.occurred_at_ms)),
            esc(&text::change_headline(lang, c))
        );
        if let Some(e) = &c.evidence {
            let link = open_link(e.url.as_deref(), w.open);
            let _ = write!(
                h,
                "<div style=\"{QUOTE}\">{}: {}{link}</div>",
                esc(w.evidence),
                esc(&text::evidence_line(d, e))
            );
        }
        h.push('\n');
    }
    let _ = writeln!(
        h,
        "<h3 style=\"{H3}\">{} ({})</h3>",
        esc(w.waiting_title),
        l.waiting_total
    );
    if l.waiting.is_empty() {
        let _ = writeln!(h, "<p style=\"{MUTED}\">{}</p>", esc(w.no_waiting));
        return;
    }
    let _ = write!(h, "<table role=\"presentation\" style=\"{TABLE}\">");
    for r in &l.waiting {
        let link = open_link(r.url.as_deref(), w.open);
        let stars = r
            .stars
            .filter(|s| s.is_finite())
            .map(|s| format!("{}★", s.round() as i64))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td style=\"{TD};white-space:nowrap\">{}</td><td style=\"{TDN}\">{}</td><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}{link}</td></tr>",
            esc(&text::local_time(lang, d.time_zone, r.occurred_at_ms)),
            esc(&stars),
            esc(&crate::outputs::one_line(
                r.author_name.as_deref().unwrap_or(""),
                60
            )),
            esc(&crate::outputs::one_line(
                r.text.as_deref().unwrap_or(""),
                300
            )),
        );
    }
    h.push_str("</table>\n");
    let more = l.waiting_total.saturating_sub(l.waiting.len() as u64);
    if more > 0 {
        let _ = writeln!(h, "<p style=\"{MUTED}\">+{more} {}</p>", esc(w.more));
    }
}

/// A link to where the item lives (an http(s) URL only), or nothing.
fn open_link(url: Option<&str>, label: &str) -> String {
    url.and_then(safe_url)
        .map(|href| {
            format!(
                " <a href=\"{href}\" rel=\"noopener noreferrer nofollow\">{}</a>",
                esc(label)
            )
        })
        .unwrap_or_default()
}
