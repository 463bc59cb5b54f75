//! Outputs read the store and present it: customer timelines and per-location summaries
//! today; reports, the dashboard, digests and CRM sync later. None of them writes.

pub mod changes;
pub mod customer;
pub mod dashboard;
pub mod digest;
pub mod http;
pub mod indicators;
pub mod quarantine;
pub mod report;
pub mod sources;
pub mod summary;
pub mod timeline;

use chrono::{DateTime, Utc};

/// UTC milliseconds as RFC 3339 (`2026-03-04T13:22:10Z`).
/// Rows grouped by their location, for outputs that read every location in one pass and
/// then hand each group its own rows.
pub(crate) fn group_by_location<R>(
    rows: &[R],
    location: fn(&R) -> Option<&str>,
) -> std::collections::HashMap<Option<&str>, Vec<&R>> {
    let mut out: std::collections::HashMap<Option<&str>, Vec<&R>> = Default::default();
    for r in rows {
        out.entry(location(r)).or_default().push(r);
    }
    out
}

pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Shortens text to `max` characters on a character boundary, with an ellipsis, and
/// puts it on one line.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut t: String = flat.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_strips_terminal_escapes_and_newlines() {
        let hostile = "nice\x1b[2J\x1b[31m place\r\nrm -rf /\u{7}";
        let safe = one_line(hostile, 200);
        assert!(!safe.chars().any(char::is_control), "{safe:?}");
        assert_eq!(one_line("żółć gęślą jaźń", 5), "żółć…");
    }
}
