//! Dashboard sessions. Logging in with an API token opens a session: the browser gets a
//! random 256-bit value in an `HttpOnly; SameSite=Strict` cookie, and the server keeps only
//! its SHA-256 digest with the token's name, scope and an expiry. The token itself is never
//! stored, echoed or put in the cookie. Sessions live in memory: a restart logs everyone out.

use crate::outputs::http::Caller;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// The cookie's name.
pub const COOKIE: &str = "tideline_session";
/// How long a session lasts after login.
pub const SESSION_SECS: i64 = 12 * 3600;
/// At most this many sessions are kept; past it, the oldest are dropped first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug)]
struct Session {
    caller: Caller,
    expires_ms: i64,
}

/// Open sessions by the digest of their cookie value.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl Sessions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a session for `caller`; returns the cookie value (64 hex characters).
    pub fn open(&self, caller: Caller, now_ms: i64) -> String {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let value = hex::encode(bytes);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires_ms > now_ms);
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires_ms)
                .map(|(k, _)| *k)
            else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(
            digest(&value),
            Session {
                caller,
                expires_ms: now_ms + SESSION_SECS * 1000,
            },
        );
        value
    }

    /// The caller of a live session named by the request's cookie.
    pub fn check(&self, headers: &HeaderMap, now_ms: i64) -> Option<Caller> {
        let value = cookie(headers)?;
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&digest(&value))
            .filter(|s| s.expires_ms > now_ms)
            .map(|s| s.caller.clone())
    }

    /// Ends the session named by the request's cookie, if any.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(value) = cookie(headers) {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&digest(&value));
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The session cookie's value from the `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that stores a session.
pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECS}")
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The CSRF check of a state-changing form post: the browser's `Origin` must be this
/// server (`Host`). Browsers send `Origin` on every cross-site and same-site POST, so a
/// post from another site, or one with no origin, is refused; the `SameSite=Strict`
/// cookie is the second line.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return false;
    };
    let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scope;
    use axum::http::HeaderValue;

    fn caller() -> Caller {
        Caller {
            name: "r".into(),
            scope: Scope::Read,
        }
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_expires_or_closes() {
        let s = Sessions::new();
        let value = s.open(caller(), 1_000);
        assert_eq!(value.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={value}; c=d")).unwrap(),
        );
        assert_eq!(s.check(&h, 2_000), Some(caller()));
        assert_eq!(s.check(&h, 1_000 + SESSION_SECS * 1000), None);
        let mut other = HeaderMap::new();
        other.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={}", "0".repeat(64))).unwrap(),
        );
        assert_eq!(s.check(&other, 2_000), None);
        s.close(&h);
        assert_eq!(s.check(&h, 2_000), None);
        assert!(s.is_empty());
        assert_ne!(s.open(caller(), 0), s.open(caller(), 0));
    }

    #[test]
    fn only_posts_from_this_origin_pass() {
        let h = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        assert!(same_origin(&h(Some("http://127.0.0.1:8080"))));
        assert!(!same_origin(&h(Some("http://evil.example"))));
        assert!(!same_origin(&h(Some("http://127.0.0.1:8080.evil.example"))));
        assert!(!same_origin(&h(Some("null"))));
        assert!(!same_origin(&h(None)));
    }
}
