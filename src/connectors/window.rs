//! A high-water window over an "updated since" filter, shared by connectors whose vendor
//! pages a time-filtered list (Freshdesk, Help Scout, Delighted, Intercom).
//!
//! Between runs a window is `{"since": <unix s>, "skip": [ids]}`: the highest timestamp
//! stored and the ids already stored at that very second. The next run asks for records
//! at or after `since` and drops those in `skip` that still carry that second, so nothing
//! at the boundary is skipped or stored twice (a vendor that reads the filter as "after"
//! only makes the skip list unused). Within a run the window also carries the next page,
//! the run's own mark so far and the server's clock at the run's first page, so a run
//! stopped mid-way resumes at its page with the same filter.
//!
//! The mark never passes the server's clock at the run's start minus [`SETTLE_SECS`]: a
//! record read on an earlier page may be updated while later pages are read, at a second
//! below the highest one seen; the next run reads that stretch again (unchanged records
//! are upserts that change nothing).
//!
//! Some vendors stop paging after a fixed number of pages (Freshdesk: 300). [`Window::restart`]
//! begins a new filter at the highest second seen so far, with the ids at it skipped, which
//! is only sound when the list is sorted by that timestamp ascending.

use serde::{Deserialize, Serialize};

/// How far behind the server's clock the stored mark stays (see the module comment).
pub const SETTLE_SECS: i64 = 60;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// The filter's lower bound (unix seconds).
    pub since: i64,
    /// Ids stored with their timestamp at `since`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// Within a run: the next page (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// Within a run: the highest timestamp read so far and the ids at that second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub high_ids: Vec<String>,
    /// Within a run: the server's clock (its `Date` header) at the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<i64>,
}

impl Window {
    pub fn new(since: i64) -> Window {
        Window {
            since,
            ..Default::default()
        }
    }

    /// The page to ask for next.
    pub fn page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    /// Notes the server's clock once per run, from a response's `Date` header.
    pub fn note_clock(&mut self, headers: &reqwest::header::HeaderMap) {
        if self.started.is_none() {
            let server_now = headers
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
                .map(|d| d.timestamp())
                .unwrap_or_else(|| chrono::Utc::now().timestamp());
            self.started = Some(server_now);
        }
    }

    /// Whether a record read in this window is new to it (`false`: the run that set the
    /// mark stored it already); moves the run's mark.
    pub fn admit(&mut self, id: &str, updated: Option<i64>) -> bool {
        if updated == Some(self.since) && self.skip.iter().any(|s| s == id) {
            return false;
        }
        if let Some(u) = updated {
            match self.high {
                Some(h) if u < h => {}
                Some(h) if u == h => {
                    if !self.high_ids.iter().any(|s| s == id) {
                        self.high_ids.push(id.to_string());
                    }
                }
                _ => {
                    self.high = Some(u);
                    self.high_ids = vec![id.to_string()];
                }
            }
        }
        true
    }

    /// The ids stored at the run's highest second, joined with the old skip list when the
    /// mark did not move.
    fn ids_at_high(&self, h: i64) -> Vec<String> {
        if h != self.since {
            return self.high_ids.clone();
        }
        let mut skip = self.skip.clone();
        for id in &self.high_ids {
            if !skip.contains(id) {
                skip.push(id.clone());
            }
        }
        skip
    }

    /// The window between runs after this one ends.
    pub fn finished(&self) -> Window {
        let settled = self.started.map_or(i64::MAX, |s| s - SETTLE_SECS);
        let (since, skip) = match self.high {
            Some(h) if h > self.since && h <= settled => (h, self.high_ids.clone()),
            // Updated within the settling time: read that stretch again next time.
            Some(h) if h > self.since && settled > self.since => (settled, Vec::new()),
            Some(h) if h == self.since => (self.since, self.ids_at_high(h)),
            _ => (self.since, self.skip.clone()),
        };
        Window {
            since,
            skip,
            ..Default::default()
        }
    }

    /// A new filter from the highest second seen, for a vendor that pages no further
    /// (page cap). `None` when the mark did not move: every record of the capped pages
    /// shares one second, and a new filter would read the same pages again.
    pub fn restart(&self) -> Option<Window> {
        let h = self.high.filter(|h| *h > self.since)?;
        Some(Window {
            since: h,
            skip: self.ids_at_high(h),
            page: Some(1),
            started: self.started,
            ..Default::default()
        })
    }
}

/// An RFC 3339 timestamp (`2024-01-01T10:00:00Z`, any offset) as unix seconds.
pub fn rfc3339_secs(v: Option<&serde_json::Value>) -> Option<i64> {
    let s = v?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp())
}

/// Unix seconds as the `...Z` form vendors' filters take.
pub fn iso_z(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_skips_the_boundary_ids_and_moves_the_mark() {
        let mut w = Window {
            since: 100,
            skip: vec!["a".into()],
            ..Default::default()
        };
        assert!(!w.admit("a", Some(100)), "stored by the last run");
        assert!(w.admit("a", Some(150)), "updated since");
        assert!(w.admit("b", Some(100)));
        assert!(w.admit("c", Some(150)));
        assert!(w.admit("d", None));
        assert_eq!(
            (w.high, w.high_ids.clone()),
            (Some(150), vec!["a".into(), "c".into()])
        );
        let f = w.finished();
        assert_eq!((f.since, f.skip), (150, vec!["a".into(), "c".into()]));
    }

    #[test]
    fn an_unmoved_mark_keeps_and_extends_its_ids() {
        let mut w = Window {
            since: 100,
            skip: vec!["a".into()],
            ..Default::default()
        };
        w.admit("b", Some(100));
        assert_eq!(w.finished().skip, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(Window::new(5).finished(), Window::new(5));
    }

    #[test]
    fn the_mark_stays_behind_the_servers_clock() {
        let w = Window {
            since: 100,
            high: Some(1_000),
            high_ids: vec!["x".into()],
            started: Some(1_010),
            ..Default::default()
        };
        let f = w.finished();
        assert_eq!(f.since, 1_010 - SETTLE_SECS);
        assert!(f.skip.is_empty());
    }

    #[test]
    fn restart_begins_at_the_highest_second() {
        let w = Window {
            since: 100,
            page: Some(3),
            high: Some(500),
            high_ids: vec!["x".into(), "y".into()],
            started: Some(9_000),
            ..Default::default()
        };
        let r = w.restart().unwrap();
        assert_eq!(
            (r.since, r.skip.clone(), r.page, r.high, r.started),
            (
                500,
                vec!["x".into(), "y".into()],
                Some(1),
                None,
                Some(9_000)
            )
        );
        let stuck = Window {
            high: Some(100),
            ..w.clone()
        };
        assert_eq!(stuck.restart(), None);
    }

    #[test]
    fn timestamps_read_and_written() {
        assert_eq!(
            rfc3339_secs(Some(&serde_json::json!("2024-01-01T00:00:10Z"))),
            Some(1_704_067_210)
        );
        assert_eq!(rfc3339_secs(Some(&serde_json::json!(5))), None);
        assert_eq!(iso_z(1_704_067_210), "2024-01-01T00:00:10Z");
    }
}
