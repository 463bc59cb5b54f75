//! The dashboard's pages as HTML, rendered on the server without IO from what the
//! handlers read. Every value from data goes through the report's [`esc`] (text and quoted
//! attributes, bidi overrides dropped); links are built only from ids this module checks
//! ([`path_segment`]) or from `http(s)` URLs ([`safe_url`]). No page has a script or an
//! inline style: the stylesheet is `/dashboard/static/dashboard.css`, so the pages live
//! under `Content-Security-Policy: default-src 'self'`.

use crate::outputs::report::html::{self as report_html, Links, esc, num, small};
use crate::outputs::report::{LocationReport, Report};
use crate::outputs::sources::SourceReport;
use crate::outputs::timeline::Timeline;
use crate::outputs::{one_line, rfc3339};
use crate::store::{CustomerActivity, QuarantineItem};
use std::fmt::Write as _;

/// The dashboard's stylesheet: the report's, plus navigation and forms.
pub fn stylesheet() -> String {
    format!("{}\n{}", report_html::STYLE, include_str!("dashboard.css"))
}

/// Which part of the navigation is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Portfolio,
    Sources,
    Quarantine,
    /// Another page (a customer's timeline): navigation, nothing current.
    None,
    /// The login page: no navigation.
    Hidden,
}

/// A URL path segment made of an id: unreserved characters kept, everything else
/// percent-encoded, so an id cannot leave its segment.
pub fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The dashboard path of a customer's timeline.
pub fn customer_href(id: &str, qs: &str) -> String {
    format!("/dashboard/customers/{}{qs}", path_segment(id))
}

/// The dashboard path of a location's page.
pub fn location_href(id: &str, qs: &str) -> String {
    format!("/dashboard/locations/{}{qs}", path_segment(id))
}

/// The page around `body`: head, navigation with a logout button, footer.
pub fn layout(title: &str, nav: Nav, body: &str) -> String {
    let mut h = String::with_capacity(body.len() + 2048);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = writeln!(
        h,
        "<title>{} · Tideline</title><link rel=\"stylesheet\" href=\"/dashboard/static/dashboard.css\"></head><body>",
        esc(title)
    );
    if nav != Nav::Hidden {
        h.push_str("<nav class=\"top\"><span class=\"brand\">Tideline</span>");
        for (item, href, label) in [
            (Nav::Portfolio, "/dashboard", "Portfolio"),
            (Nav::Sources, "/dashboard/sources", "Sources"),
            (Nav::Quarantine, "/dashboard/quarantine", "Quarantine"),
        ] {
            let class = if item == nav {
                " class=\"current\""
            } else {
                ""
            };
            let _ = write!(h, "<a href=\"{href}\"{class}>{label}</a>");
        }
        h.push_str("<form method=\"post\" action=\"/dashboard/logout\" class=\"logout\"><button type=\"submit\">Log out</button></form></nav>\n");
    }
    h.push_str("<main>\n");
    h.push_str(body);
    h.push_str("</main></body></html>\n");
    h
}

/// The login form. `failed`: the last attempt was refused (the token is never shown).
pub fn login(failed: bool) -> String {
    let mut b = String::from("<h1>Tideline dashboard</h1>\n");
    if failed {
        b.push_str("<p class=\"error\" id=\"login-error\">That token was not accepted. Use a token from the daemon's [http] tokens.</p>\n");
    }
    b.push_str("<form method=\"post\" action=\"/dashboard/login\" class=\"login\"><label for=\"token\">API token</label> <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required> <button type=\"submit\">Log in</button></form>\n<p class=\"muted\">Any token of the daemon's <code>[http] tokens</code> opens the dashboard for 12 hours.</p>\n");
    layout("Log in", Nav::Hidden, &b)
}

/// The period form and what the figures cover.
fn period_form(b: &mut String, action: &str, from: &str, until: &str, prev: (&str, &str)) {
    let _ = writeln!(
        b,
        "<form method=\"get\" action=\"{}\" class=\"period\"><label>From <input type=\"date\" name=\"from\" value=\"{}\"></label> <label>to <input type=\"date\" name=\"to\" value=\"{}\"></label> <button type=\"submit\">Show</button> <span class=\"muted\">compared with {} to {}</span></form>",
        esc(action),
        esc(from),
        esc(until),
        esc(prev.0),
        esc(prev.1)
    );
}

fn last_day(d: chrono::NaiveDate) -> String {
    d.pred_opt().unwrap_or(d).to_string()
}

/// Ranked locations, which moved, small samples labelled.
pub fn portfolio(r: &Report, qs: &str) -> String {
    let mut b = String::from("<h1>Portfolio</h1>\n");
    if let Some(g) = r.locations.first().map(|l| &l.indicators) {
        period_form(
            &mut b,
            "/dashboard",
            &g.period.from.to_string(),
            &last_day(g.period.until),
            (
                &g.previous_period.from.to_string(),
                &last_day(g.previous_period.until),
            ),
        );
    }
    let _ = writeln!(
        b,
        "<p class=\"muted\">Locations ranked by the composite index (0-100). Figures on fewer than {} answers are labelled small sample; they are never marked as moved.</p>",
        r.min_sample
    );
    b.push_str("<table id=\"portfolio\"><thead><tr><th>#</th><th>Location</th><th>Composite index</th><th>Before</th><th>Stars</th><th>Before</th><th>Reviews</th><th>Before</th><th>Changes</th><th>Moved</th></tr></thead><tbody>\n");
    for p in &r.portfolio {
        let moved = match (p.moved, p.composite, p.composite_previous) {
            (true, Some(a), Some(b)) if a > b => "<span class=\"up\">▲ up</span>",
            (true, Some(a), Some(b)) if a < b => "<span class=\"down\">▼ down</span>",
            (true, ..) => "<span class=\"down\">changed</span>",
            (false, ..) => "<span class=\"muted\">steady</span>",
        };
        let _ = writeln!(
            b,
            "<tr><td class=\"n\">{}</td><td><a class=\"location\" href=\"{}\">{}</a></td><td class=\"n\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            p.rank,
            esc(&location_href(&p.location_id, qs)),
            esc(&p.name),
            num(p.composite, 0, ""),
            small(p.small_sample),
            num(p.composite_previous, 0, ""),
            num(p.stars, 2, ""),
            num(p.stars_previous, 2, ""),
            p.reviews,
            p.reviews_previous,
            p.changes,
            moved
        );
    }
    b.push_str("</tbody></table>\n");
    layout("Portfolio", Nav::Portfolio, &b)
}

/// A location: the report's section (indicators with the period before, charts, changes
/// with evidence linked to the customers, reviews waiting for an answer), then the
/// customers seen there.
pub fn location(
    l: &LocationReport,
    customers: &[CustomerActivity],
    links: &Links,
    qs: &str,
) -> String {
    let g = &l.indicators;
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<p class=\"crumbs\"><a href=\"/dashboard{}\">Portfolio</a> › {}</p>",
        esc(qs),
        esc(&g.name)
    );
    let id = g.location_id.as_deref().unwrap_or("");
    period_form(
        &mut b,
        &location_href(id, ""),
        &g.period.from.to_string(),
        &last_day(g.period.until),
        (
            &g.previous_period.from.to_string(),
            &last_day(g.previous_period.until),
        ),
    );
    report_html::location(&mut b, l, links);
    b.push_str("<section id=\"customers\"><h3>Customers seen here</h3>\n");
    if customers.is_empty() {
        b.push_str("<p class=\"muted\">No customer is known at this location.</p>\n");
    } else {
        b.push_str("<table><thead><tr><th>Customer</th><th>Interactions</th><th>Sources</th></tr></thead><tbody>\n");
        for c in customers {
            let _ = writeln!(
                b,
                "<tr><td><a class=\"customer\" href=\"{}\">{}</a> <span class=\"muted\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&customer_href(&c.customer_id, qs)),
                esc(c.display_name.as_deref().unwrap_or("(no name)")),
                esc(&c.customer_id),
                c.interactions,
                c.sources
            );
        }
        b.push_str("</tbody></table>\n");
    }
    b.push_str("</section>\n");
    layout(&g.name, Nav::Portfolio, &b)
}

fn score(i: &crate::outputs::timeline::InteractionOut) -> String {
    match (i.stars, i.nps, i.csat, i.ces) {
        (Some(s), ..) => format!("{s:.0} ★"),
        (_, Some(n), ..) => format!("NPS {n}"),
        (_, _, Some(c), _) if i.csat_scale.as_deref() == Some("good/bad") => {
            if c >= 1.0 { "CSAT good" } else { "CSAT bad" }.into()
        }
        (_, _, Some(c), _) => format!("CSAT {c}"),
        (.., Some(c)) => format!("CES {c}"),
        _ => String::new(),
    }
}

/// Sentiment of the customer's texts in time order, as an inline SVG line.
fn sentiment_chart(b: &mut String, t: &Timeline) {
    let points: Vec<f64> = t.interactions.iter().filter_map(|i| i.sentiment).collect();
    if points.len() < 2 {
        return;
    }
    let step = (600.0 / (points.len() - 1) as f64).min(60.0);
    let width = step * (points.len() - 1) as f64 + 40.0;
    let _ = write!(
        b,
        "<svg role=\"img\" aria-label=\"sentiment over time\" width=\"{width:.0}\" height=\"120\" viewBox=\"0 0 {width:.0} 120\"><line x1=\"20\" y1=\"60\" x2=\"{:.0}\" y2=\"60\" stroke=\"#d5d9e0\"></line>",
        width - 20.0
    );
    let mut line = String::new();
    for (k, s) in points.iter().enumerate() {
        let x = 20.0 + step * k as f64;
        let y = 60.0 - s.clamp(-1.0, 1.0) * 50.0;
        let _ = write!(line, "{x:.1},{y:.1} ");
        let fill = if *s < -0.2 {
            "#b0262d"
        } else if *s > 0.2 {
            "#1b7a35"
        } else {
            "#68707d"
        };
        let _ = write!(
            b,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{fill}\"></circle>"
        );
    }
    let _ = write!(
        b,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#1d2330\" stroke-width=\"1\"></polyline></svg>\n<p class=\"muted\">Sentiment of each scored text, oldest on the left (-1 at the bottom, +1 at the top).</p>\n",
        line.trim_end()
    );
}

/// A customer's identities, interactions with sentiment and scores, and change points.
pub fn timeline(t: &Timeline, display_name: Option<&str>, qs: &str) -> String {
    let mut b = String::new();
    b.push_str("<p class=\"crumbs\"><a href=\"/dashboard\">Portfolio</a> › customer</p>\n");
    let _ = writeln!(
        b,
        "<h1>{} <span class=\"muted\">{}</span></h1>",
        esc(display_name.unwrap_or("Customer")),
        esc(&t.customer_id)
    );
    b.push_str("<section id=\"identities\"><h3>Identities</h3><table><thead><tr><th>Kind</th><th>Value</th></tr></thead><tbody>\n");
    for i in &t.identities {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&i.kind),
            esc(&i.value)
        );
    }
    b.push_str("</tbody></table></section>\n");
    b.push_str("<section id=\"changes\"><h3>When satisfaction changed</h3>\n");
    if t.stored_changes.is_empty() {
        b.push_str("<p class=\"muted\">No change point or incident for this customer.</p>\n");
    } else {
        b.push_str("<table><thead><tr><th>When (UTC)</th><th>Signal</th><th>Change</th><th>Status</th><th>Confidence</th><th>Evidence</th></tr></thead><tbody>\n");
        for c in &t.changes {
            let class = match c.direction.as_str() {
                "up" => "up",
                "down" => "down",
                _ => "muted",
            };
            let evidence: Vec<String> = c
                .evidence
                .iter()
                .map(|id| format!("<a href=\"#i-{id}\">#{id}</a>"))
                .collect();
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{} → {} ({})</td><td>{}</td><td class=\"n\">{:.0} %</td><td>{}</td></tr>",
                esc(&c.occurred_at),
                esc(&c.signal),
                num(Some(c.before), 2, ""),
                num(Some(c.after), 2, ""),
                esc(&c.direction),
                esc(&c.status),
                c.confidence * 100.0,
                evidence.join(" ")
            );
        }
        b.push_str("</tbody></table>\n");
    }
    b.push_str("</section>\n<section id=\"interactions\"><h3>Interactions</h3>\n");
    sentiment_chart(&mut b, t);
    b.push_str("<table><thead><tr><th>When (UTC)</th><th>Source</th><th>Kind</th><th>Location</th><th>Language</th><th>Score</th><th>Sentiment</th><th>Text</th></tr></thead><tbody>\n");
    for i in &t.interactions {
        let location = match i.location.as_deref() {
            Some(l) => format!("<a href=\"{}\">{}</a>", esc(&location_href(l, qs)), esc(l)),
            None => "–".into(),
        };
        let sentiment = match i.sentiment {
            Some(s) if s < -0.2 => format!("<span class=\"down\">{s:+.2}</span>"),
            Some(s) if s > 0.2 => format!("<span class=\"up\">{s:+.2}</span>"),
            Some(s) => format!("{s:+.2}"),
            None => "–".into(),
        };
        let _ = writeln!(
            b,
            "<tr id=\"i-{}\"><td class=\"when\">{}</td><td>{}</td><td>{}</td><td>{location}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{sentiment}</td><td>{}</td></tr>",
            i.id,
            esc(i.occurred_at.replace('T', " ").trim_end_matches('Z')),
            esc(&i.source),
            esc(&i.kind),
            esc(i.language.as_deref().unwrap_or("–")),
            esc(&score(i)),
            esc(&one_line(i.text.as_deref().unwrap_or(""), 600))
        );
    }
    b.push_str("</tbody></table></section>\n");
    layout("Customer timeline", Nav::None, &b)
}

/// Every source's health: state, what it fetched, runs, the last error.
pub fn sources(list: &[SourceReport]) -> String {
    let mut b = String::from(
        "<h1>Sources</h1>\n<table id=\"sources\"><thead><tr><th>Source</th><th>Kind</th><th>Health</th><th>Interactions</th><th>Fetched 24 h</th><th>24 h before</th><th>Runs</th><th>Failed</th><th>Last success (UTC)</th><th>Open quarantine</th></tr></thead><tbody>\n",
    );
    for s in list {
        let state = s.health.state.as_str();
        let class = if s.health.state.is_problem() {
            "down"
        } else {
            "up"
        };
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&s.status.source),
            esc(&s.kind),
            esc(state),
            s.status.interactions,
            s.health.fetched_24h,
            s.health.fetched_prev_24h,
            s.status.runs,
            s.status.failed_runs,
            s.status
                .last_success_ms
                .map(|ms| esc(&rfc3339(ms)))
                .unwrap_or_else(|| "never".into()),
            s.status.quarantine_open
        );
        for p in &s.health.problems {
            let _ = writeln!(
                b,
                "<tr class=\"problem\"><td></td><td colspan=\"9\">{}</td></tr>",
                esc(&one_line(p, 400))
            );
        }
    }
    b.push_str("</tbody></table>\n");
    if list.is_empty() {
        b.push_str(
            "<p class=\"muted\">No connector is configured and nothing was imported yet.</p>\n",
        );
    }
    layout("Sources", Nav::Sources, &b)
}

/// Quarantined rows: where, which field, what was expected, the raw text.
pub fn quarantine(items: &[QuarantineItem], status: &str, more: bool) -> String {
    let mut b = String::from("<h1>Quarantine</h1>\n<p>");
    for s in ["open", "dismissed", "replayed"] {
        if s == status {
            let _ = write!(b, "<strong>{s}</strong> ");
        } else {
            let _ = write!(b, "<a href=\"/dashboard/quarantine?status={s}\">{s}</a> ");
        }
    }
    b.push_str("</p>\n<p class=\"muted\">Rows that could not be imported. Fix the mapping or the file and import again, or replay them with <code>tideline quarantine replay</code>.</p>\n");
    if items.is_empty() {
        b.push_str("<p class=\"muted\">Nothing here.</p>\n");
    } else {
        b.push_str("<table id=\"quarantine\"><thead><tr><th>#</th><th>Source</th><th>Where</th><th>Field</th><th>Problem</th><th>Expected</th><th>Raw</th></tr></thead><tbody>\n");
        for q in items {
            let e = &q.entry.error;
            let _ = writeln!(
                b,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                q.id,
                esc(&q.entry.source),
                esc(&one_line(&e.origin, 120)),
                e.line.map(|l| format!(":{l}")).unwrap_or_default(),
                esc(e.field.as_deref().unwrap_or("–")),
                esc(&one_line(&e.message, 300)),
                esc(&one_line(&e.expected, 200)),
                esc(&one_line(&e.raw, 300))
            );
        }
        b.push_str("</tbody></table>\n");
        if more {
            b.push_str("<p class=\"muted\">Only the first rows are shown; <code>tideline quarantine list</code> or <code>GET /api/v1/quarantine</code> has them all.</p>\n");
        }
    }
    layout("Quarantine", Nav::Quarantine, &b)
}

/// An error page; `message` is ours, never an internal error's text.
pub fn error(title: &str, message: &str) -> String {
    layout(
        title,
        Nav::Portfolio,
        &format!("<h1>{}</h1><p>{}</p>\n", esc(title), esc(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_in_their_path_segment() {
        assert_eq!(path_segment("berlin-mitte"), "berlin-mitte");
        assert_eq!(path_segment("../x?y=\"<"), "..%2Fx%3Fy%3D%22%3C");
        assert_eq!(
            customer_href("cus_ab", "?from=1"),
            "/dashboard/customers/cus_ab?from=1"
        );
    }
}
