//! Query parameters, read one by one so that a bad value is answered with a 400 naming the
//! parameter and the expected form; opaque page cursors; the page envelope.

use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate};
use serde::Serialize;

pub const DEFAULT_LIMIT: i64 = 50;

/// The query string of a request as (name, value) pairs, percent-decoded.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Params::parse(parts.uri.query().unwrap_or(""))
    }
}

/// Whether a date given without a time means the start of that day or (for `to`) the whole
/// day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayBound {
    Start,
    End,
}

impl Params {
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = decode(k)?;
            let v = decode(v)?;
            if pairs.iter().any(|(o, _)| *o == k) {
                return Err(ApiError::BadRequest(format!(
                    "query parameter `{k}` is given more than once; expected it once"
                )));
            }
            pairs.push((k, v));
        }
        Ok(Params(pairs))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty text value of at most 500 characters.
    pub fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some("") => Err(ApiError::param(
                name,
                "is empty",
                "a value, or leave it out",
            )),
            Some(v) if v.chars().count() > 500 => Err(ApiError::param(
                name,
                "is too long",
                "at most 500 characters",
            )),
            Some(v) => Ok(Some(v.to_string())),
        }
    }

    /// One of a fixed set of values.
    pub fn one_of(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
            Some(v) => Err(ApiError::param(
                name,
                format!("`{}` is not allowed", crate::outputs::one_line(v, 40)),
                &format!("one of {}", allowed.join(", ")),
            )),
        }
    }

    /// The page size: `limit` between 1 and `max`, 50 when absent (or `max` if smaller).
    pub fn limit(&self, max: u32) -> Result<i64, ApiError> {
        let max = i64::from(max);
        match self.raw("limit") {
            None => Ok(DEFAULT_LIMIT.min(max)),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::param(
                    "limit",
                    format!("`{}` is out of range", crate::outputs::one_line(v, 40)),
                    &format!("an integer from 1 to {max}"),
                )),
            },
        }
    }

    /// A number in `[lo, hi]`.
    pub fn number(&self, name: &str, lo: f64, hi: f64) -> Result<Option<f64>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x >= lo && x <= hi => Ok(Some(x)),
                _ => Err(ApiError::param(
                    name,
                    format!(
                        "`{}` is not a number in range",
                        crate::outputs::one_line(v, 40)
                    ),
                    &format!("a number from {lo} to {hi}"),
                )),
            },
        }
    }

    /// An instant as UTC milliseconds: RFC 3339 (`2026-03-01T09:00:00Z`), or a date
    /// (`2026-03-01`, UTC) meaning the start of that day, or for [`DayBound::End`] the
    /// end of it (the next day's start, exclusive).
    pub fn time(&self, name: &str, bound: DayBound) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(Some(t.timestamp_millis()));
        }
        if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            let day = match bound {
                DayBound::Start => d,
                DayBound::End => d.succ_opt().unwrap_or(d),
            };
            let t = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
            return Ok(Some(t.timestamp_millis()));
        }
        Err(ApiError::param(
            name,
            format!("`{}` is not a date", crate::outputs::one_line(v, 40)),
            "RFC 3339 (2026-03-01T09:00:00Z) or a date (2026-03-01, UTC)",
        ))
    }

    /// `from` and `to` (`to` exclusive; a date as `to` includes that whole day).
    pub fn period(&self) -> Result<(Option<i64>, Option<i64>), ApiError> {
        let from = self.time("from", DayBound::Start)?;
        let to = self.time("to", DayBound::End)?;
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(ApiError::param(
                "to",
                "is not after `from`",
                "a later instant than `from`",
            ));
        }
        Ok((from, to))
    }

    /// The cursor of a route (`kind` tells routes apart, so a cursor cannot be replayed
    /// on another list).
    pub fn cursor(&self, kind: char) -> Result<Option<String>, ApiError> {
        let Some(v) = self.raw("cursor") else {
            return Ok(None);
        };
        let bad = || {
            ApiError::param(
                "cursor",
                "is not a cursor of this list",
                "the `next_cursor` of the previous page, unchanged",
            )
        };
        let bytes = hex::decode(v).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let rest = text
            .strip_prefix(kind)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        Ok(Some(rest.to_string()))
    }

    /// A cursor holding an id.
    pub fn id_cursor(&self, kind: char) -> Result<Option<i64>, ApiError> {
        match self.cursor(kind)? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::param(
                    "cursor",
                    "is not a cursor of this list",
                    "the `next_cursor` of the previous page, unchanged",
                )
            }),
        }
    }
}

fn decode(s: &str) -> Result<String, ApiError> {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hexpair = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hexpair {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => {
                    return Err(ApiError::BadRequest(
                        "the query string has a bad percent escape; expected %XX with two hex digits"
                            .into(),
                    ));
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        ApiError::BadRequest("the query string is not UTF-8 once decoded; expected UTF-8".into())
    })
}

/// Makes the opaque cursor for a list and the last value of its page.
pub fn make_cursor(kind: char, last: &str) -> String {
    hex::encode(format!("{kind}:{last}"))
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from `limit + 1` fetched rows: the extra row only says that more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, kind: char, key: impl Fn(&T) -> String) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let next_cursor = if more {
            rows.last().map(|r| make_cursor(kind, &key(r)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_name_themselves_in_errors() {
        let p = Params::parse("limit=0&from=yesterday&sentiment=sad&source=a%20b").unwrap();
        assert_eq!(p.text("source").unwrap().as_deref(), Some("a b"));
        for (r, name) in [
            (p.limit(500).map(|_| ()), "`limit`"),
            (p.time("from", DayBound::Start).map(|_| ()), "`from`"),
            (
                p.one_of("sentiment", &["negative"]).map(|_| ()),
                "`sentiment`",
            ),
        ] {
            let e = r.unwrap_err();
            assert_eq!(e.code(), "bad_request");
            assert!(e.to_string().contains(name), "{e}");
            assert!(e.to_string().contains("expected"), "{e}");
        }
        assert!(Params::parse("a=1&a=2").is_err());
        assert!(Params::parse("a=%zz").is_err());
    }

    #[test]
    fn dates_and_periods() {
        let p = Params::parse("from=2026-03-01&to=2026-03-01").unwrap();
        let (f, t) = p.period().unwrap();
        assert_eq!(t.unwrap() - f.unwrap(), 86_400_000);
        let p = Params::parse("from=2026-03-02T00:00:00%2B01:00").unwrap();
        assert_eq!(
            p.time("from", DayBound::Start).unwrap(),
            Some(1_772_406_000_000)
        );
        assert!(
            Params::parse("from=2026-03-02&to=2026-03-01")
                .unwrap()
                .period()
                .is_err()
        );
    }

    #[test]
    fn cursors_round_trip_and_belong_to_one_list() {
        let c = make_cursor('i', "42");
        let p = Params::parse(&format!("cursor={c}")).unwrap();
        assert_eq!(p.id_cursor('i').unwrap(), Some(42));
        assert!(p.id_cursor('q').is_err());
        assert!(Params::parse("cursor=zz").unwrap().id_cursor('i').is_err());
        let page = Page::from_rows(vec![1, 2, 3], 2, 'i', |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor, Some(make_cursor('i', "2")));
        assert!(
            Page::from_rows(vec![1, 2], 2, 'i', |n: &i32| n.to_string())
                .next_cursor
                .is_none()
        );
    }
}
