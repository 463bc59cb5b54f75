//! Fake CRMs on 127.0.0.1 for the CRM sync tests: HubSpot (contacts, notes and tasks by
//! batch upsert, v4 default associations, batch archive, GDPR delete), Salesforce (SOQL
//! contact lookup, sObject Collections create, upsert by external id and delete) and a
//! Standard Webhooks receiver.
//!
//! Each fake checks every request against the vendor's documented shape. A request that
//! does not match is recorded as a *violation* (the request and what was wrong) and answered
//! as the vendor answers a malformed request; tests assert `violations()` is empty. A wrong
//! token is answered 401 and is not a violation (tests use it on purpose).
//!
//! Faults ([`Faults`]) hit only well-formed requests, drawn from a seeded PRNG so a run is
//! repeatable: 429, 500 and the *stall*, which applies the request and then answers only
//! after the client has given up, so the CRM holds what the client thinks failed (what
//! idempotent delivery must survive). A record containing `reject_marker` is refused the way
//! the vendor refuses a validation error; `max_per_window` is the vendor's rolling rate limit.

// Some accessors are there for tests still to come (requests, counts by route).
#![allow(dead_code)]

use crate::fakes;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// What the three fakes share
// ---------------------------------------------------------------------------------------

/// The faults a fake injects into well-formed requests, and its validation and rate limits.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Share of well-formed requests answered 429.
    pub rate_429: f64,
    /// Share answered 500 (Salesforce: 500 or 503).
    pub rate_500: f64,
    /// Share applied and then answered only after `stall` (the client times out first).
    pub rate_timeout: f64,
    pub seed: u64,
    /// How long a stalled request waits before answering; longer than the client's timeout.
    pub stall: Duration,
    /// A record whose text contains this is refused as the vendor refuses invalid values.
    pub reject_marker: Option<String>,
    /// More requests than this in `window` are answered 429 (the vendor's rolling limit).
    pub max_per_window: Option<usize>,
    pub window: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rate_429: 0.0,
            rate_500: 0.0,
            rate_timeout: 0.0,
            seed: 1,
            stall: Duration::from_millis(1500),
            reject_marker: None,
            max_per_window: None,
            window: Duration::from_millis(500),
        }
    }
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// 10 % each of 429, 500 and stalls.
    pub fn chaos(seed: u64) -> Self {
        Self {
            rate_429: 0.1,
            rate_500: 0.1,
            rate_timeout: 0.1,
            seed,
            ..Self::default()
        }
    }

    pub fn reject(mut self, marker: &str) -> Self {
        self.reject_marker = Some(marker.to_string());
        self
    }

    fn rejects(&self, text: &str) -> bool {
        self.reject_marker
            .as_deref()
            .is_some_and(|m| !m.is_empty() && text.contains(m))
    }
}

/// SplitMix64: tiny, fast, and the same sequence for the same seed.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    TooMany,
    Internal,
    Stall,
}

/// How many requests each fault hit, and the answers that were not the fake's choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected {
    pub too_many: usize,
    pub internal: usize,
    pub stalls: usize,
    /// 429s from the rolling window (`max_per_window`), not from chance.
    pub rate_limited: usize,
    pub unauthorized: usize,
    /// Records or batches refused for the reject marker.
    pub rejected: usize,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub body: String,
    pub at: Instant,
}

/// Why a request was answered before its route looked at it.
enum Gate {
    Unauthorized,
    Malformed(String),
    RateLimited,
}

struct Core {
    token: Option<String>,
    faults: Faults,
    rng: SplitMix,
    /// For correlation ids; apart from `rng` so they do not shift the fault sequence.
    serial: u64,
    recent: VecDeque<Instant>,
    log: Vec<Recorded>,
    counts: BTreeMap<String, usize>,
    violations: Vec<String>,
    injected: Injected,
}

impl Core {
    fn new(token: Option<&str>, faults: Faults) -> Self {
        Self {
            token: token.map(str::to_string),
            rng: SplitMix::new(faults.seed),
            faults,
            serial: 0,
            recent: VecDeque::new(),
            log: Vec::new(),
            counts: BTreeMap::new(),
            violations: Vec::new(),
            injected: Injected::default(),
        }
    }

    fn violation(&mut self, route: &str, what: impl std::fmt::Display) {
        self.violations.push(format!("{route}: {what}"));
    }

    /// Records the request; checks User-Agent, Content-Type and the token, then the rolling
    /// window. Header problems are violations (also with a wrong token); the token is not.
    fn admit(
        &mut self,
        route: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Gate> {
        self.log.push(Recorded {
            method: method.to_string(),
            target: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            body: String::from_utf8_lossy(body).into_owned(),
            at: Instant::now(),
        });
        *self.counts.entry(route.to_string()).or_default() += 1;
        let mut bad = Vec::new();
        if !fakes::user_agent_ok(headers) {
            bad.push(format!(
                "User-Agent {:?} does not start with tideline/",
                fakes::header(headers, "user-agent")
            ));
        }
        let has_body = !body.is_empty() || matches!(*method, Method::POST | Method::PATCH);
        if has_body {
            let ct = fakes::header(headers, "content-type").unwrap_or("");
            let essence = ct.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("application/json") {
                bad.push(format!(
                    "Content-Type {ct:?} is not application/json on a body"
                ));
            }
        }
        for b in &bad {
            self.violation(route, b);
        }
        if let Some(token) = &self.token {
            let want = format!("Bearer {token}");
            if fakes::header(headers, "authorization") != Some(want.as_str()) {
                self.injected.unauthorized += 1;
                return Err(Gate::Unauthorized);
            }
        }
        if !bad.is_empty() {
            return Err(Gate::Malformed(bad.join("; ")));
        }
        if let Some(max) = self.faults.max_per_window {
            let now = Instant::now();
            while self
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.faults.window)
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= max {
                self.injected.rate_limited += 1;
                return Err(Gate::RateLimited);
            }
            self.recent.push_back(now);
        }
        Ok(())
    }

    /// The fault for a well-formed request.
    fn roll(&mut self) -> Fault {
        let f = &self.faults;
        let (a, b, c) = (
            f.rate_429,
            f.rate_429 + f.rate_500,
            f.rate_429 + f.rate_500 + f.rate_timeout,
        );
        if c <= 0.0 {
            return Fault::None;
        }
        let u = self.rng.next_f64();
        let fault = if u < a {
            Fault::TooMany
        } else if u < b {
            Fault::Internal
        } else if u < c {
            Fault::Stall
        } else {
            Fault::None
        };
        match fault {
            Fault::TooMany => self.injected.too_many += 1,
            Fault::Internal => self.injected.internal += 1,
            Fault::Stall => self.injected.stalls += 1,
            Fault::None => {}
        }
        fault
    }

    /// A uuid-shaped correlation id.
    fn correlation_id(&mut self) -> String {
        self.serial += 1;
        let mut r = SplitMix::new(self.serial ^ 0x5eed);
        let (a, b) = (r.next_u64(), r.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

/// The accessors every fake has, over its `Core`.
macro_rules! core_accessors {
    ($fake:ty) => {
        impl $fake {
            /// Every request that did not match the vendor's documented shape.
            pub fn violations(&self) -> Vec<String> {
                self.state.lock().unwrap().core.violations.clone()
            }
            /// Requests per route (`METHOD /path`), faulted and refused ones included.
            pub fn counts(&self) -> BTreeMap<String, usize> {
                self.state.lock().unwrap().core.counts.clone()
            }
            pub fn count(&self, route: &str) -> usize {
                self.counts().get(route).copied().unwrap_or(0)
            }
            /// All requests so far.
            pub fn total(&self) -> usize {
                self.hits.load(Ordering::SeqCst)
            }
            /// The request counter itself, for `fakes::kill_mid_sync`-style waits.
            pub fn hits(&self) -> Arc<AtomicUsize> {
                self.hits.clone()
            }
            pub fn requests(&self) -> Vec<Recorded> {
                self.state.lock().unwrap().core.log.clone()
            }
            pub fn injected(&self) -> Injected {
                self.state.lock().unwrap().core.injected.clone()
            }
            /// Changes the faults from now on (e.g. none for a final drain).
            pub fn set_faults(&self, faults: Faults) {
                let mut s = self.state.lock().unwrap();
                s.core.rng = SplitMix::new(faults.seed);
                s.core.faults = faults;
            }
            pub fn set_token(&self, token: Option<&str>) {
                self.state.lock().unwrap().core.token = token.map(str::to_string);
            }
        }
    };
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Looks like an email address: one `@`, a dot in the domain, no spaces, ≤ 254 bytes.
pub fn email_ok(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))
}

fn as_obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is not an object: {v}"))
}

fn only_keys(m: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what} has the unknown key {k:?}")),
        None => Ok(()),
    }
}

fn str_at<'a>(m: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str, String> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("{what}.{key} is not a string: {other}")),
        None => Err(format!("{what}.{key} is missing")),
    }
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// HubSpot
// ---------------------------------------------------------------------------------------

/// A HubSpot contact in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsContact {
    pub id: String,
    /// Lower-cased, as HubSpot stores it.
    pub email: String,
    /// Created by an upsert (not seeded by the test).
    pub created: bool,
}

/// A HubSpot note or task in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsObject {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    /// Associated contact ids.
    pub contacts: BTreeSet<String>,
    /// Upserts that hit it (1: created and never updated).
    pub writes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HsKind {
    Notes,
    Tasks,
}

impl HsKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "notes" => Some(Self::Notes),
            "tasks" => Some(Self::Tasks),
            _ => None,
        }
    }
    /// HubSpot's object type id and the default association type to contacts.
    fn type_ids(self) -> (&'static str, i64) {
        match self {
            Self::Notes => ("0-46", 202),
            Self::Tasks => ("0-27", 204),
        }
    }
}

enum HsRequest {
    UpsertContacts(Vec<String>),
    Upsert(HsKind, Vec<(String, BTreeMap<String, String>)>),
    Associate(HsKind, Vec<(String, String)>),
    Archive(HsKind, Vec<String>),
    GdprDelete(String),
}

struct HsState {
    core: Core,
    id_property: String,
    next_contact: u64,
    next_object: u64,
    /// Lower-cased email -> contact.
    contacts: BTreeMap<String, HsContact>,
    notes: BTreeMap<String, HsObject>,
    tasks: BTreeMap<String, HsObject>,
    archived: Vec<String>,
    gdpr_deleted: Vec<String>,
}

/// Fake HubSpot; its base URL is the server root.
#[derive(Clone)]
pub struct HubSpot {
    pub url: String,
    state: Arc<Mutex<HsState>>,
    hits: Arc<AtomicUsize>,
}

core_accessors!(HubSpot);

const HS_NOTE_PROPS: &[&str] = &["hs_timestamp", "hs_note_body", "hubspot_owner_id"];
const HS_TASK_PROPS: &[&str] = &[
    "hs_timestamp",
    "hs_task_subject",
    "hs_task_body",
    "hs_task_status",
    "hs_task_priority",
    "hs_task_type",
    "hubspot_owner_id",
];
const HS_CONTACT_PROPS: &[&str] = &["email", "firstname", "lastname", "phone"];
const HS_TASK_STATUS: &[&str] = &[
    "NOT_STARTED",
    "IN_PROGRESS",
    "WAITING",
    "COMPLETED",
    "DEFERRED",
];
const HS_TASK_PRIORITY: &[&str] = &["LOW", "MEDIUM", "HIGH"];

impl HubSpot {
    /// Starts a fake that accepts `token`, with notes and tasks keyed by `tideline_id`.
    pub async fn start(token: &str, faults: Faults) -> Self {
        Self::start_with(token, "tideline_id", faults).await
    }

    pub async fn start_with(token: &str, id_property: &str, faults: Faults) -> Self {
        let fake = HubSpot {
            url: String::new(),
            state: Arc::new(Mutex::new(HsState {
                core: Core::new(Some(token), faults),
                id_property: id_property.to_string(),
                // Ids beyond 32 bits, as HubSpot's are: a client must not squeeze them.
                next_contact: 90_000_000_000,
                next_object: 400_000_000_000,
                contacts: BTreeMap::new(),
                notes: BTreeMap::new(),
                tasks: BTreeMap::new(),
                archived: Vec::new(),
                gdpr_deleted: Vec::new(),
            })),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .fallback(hubspot_handler)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(fake.clone());
        HubSpot {
            url: fakes::serve(app).await,
            ..fake
        }
    }

    /// A contact that exists before Tideline arrives; returns its id.
    pub fn seed_contact(&self, email: &str) -> String {
        let mut s = self.state.lock().unwrap();
        s.next_contact += 1;
        let id = s.next_contact.to_string();
        let email = email.to_lowercase();
        s.contacts.insert(
            email.clone(),
            HsContact {
                id: id.clone(),
                email,
                created: false,
            },
        );
        id
    }

    /// Contacts by lower-cased email.
    pub fn contacts(&self) -> BTreeMap<String, HsContact> {
        self.state.lock().unwrap().contacts.clone()
    }
    /// Notes by their id property.
    pub fn notes(&self) -> BTreeMap<String, HsObject> {
        self.state.lock().unwrap().notes.clone()
    }
    /// Tasks by their id property.
    pub fn tasks(&self) -> BTreeMap<String, HsObject> {
        self.state.lock().unwrap().tasks.clone()
    }
    /// Ids of archived notes and tasks, in order (unknown ids included).
    pub fn archived(&self) -> Vec<String> {
        self.state.lock().unwrap().archived.clone()
    }
    /// Ids of contacts removed by a GDPR delete.
    pub fn gdpr_deleted(&self) -> Vec<String> {
        self.state.lock().unwrap().gdpr_deleted.clone()
    }
}

async fn hubspot_handler(
    State(f): State<HubSpot>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    f.hits.fetch_add(1, Ordering::SeqCst);
    let (response, stall) = f
        .state
        .lock()
        .unwrap()
        .handle(&method, &uri, &headers, &body);
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    response
}

impl HsState {
    fn objects(&mut self, kind: HsKind) -> &mut BTreeMap<String, HsObject> {
        match kind {
            HsKind::Notes => &mut self.notes,
            HsKind::Tasks => &mut self.tasks,
        }
    }

    fn error(&mut self, status: StatusCode, category: &str, message: &str) -> Response {
        let mut body = json!({
            "status": "error",
            "message": message,
            "correlationId": self.core.correlation_id(),
            "category": category,
        });
        if category == "VALIDATION_ERROR" {
            body["errors"] = json!([{"message": message, "code": "INVALID_OPTION"}]);
        }
        answer(status, body)
    }

    fn too_many(&mut self) -> Response {
        let body = json!({
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": self.core.correlation_id(),
            "policyName": "TEN_SECONDLY_ROLLING",
        });
        let mut r = answer(StatusCode::TOO_MANY_REQUESTS, body);
        let h = r.headers_mut();
        let window = self.core.faults.window.as_millis().to_string();
        let max = self.core.faults.max_per_window.unwrap_or(100).to_string();
        h.insert(
            "X-HubSpot-RateLimit-Interval-Milliseconds",
            HeaderValue::from_str(&window).unwrap(),
        );
        h.insert(
            "X-HubSpot-RateLimit-Max",
            HeaderValue::from_str(&max).unwrap(),
        );
        h.insert(
            "X-HubSpot-RateLimit-Remaining",
            HeaderValue::from_static("0"),
        );
        r
    }

    fn handle(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Response, Option<Duration>) {
        let route = format!("{method} {}", uri.path());
        match self.core.admit(&route, method, uri, headers, body) {
            Ok(()) => {}
            Err(Gate::Unauthorized) => {
                let r = self.error(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found.",
                );
                return (r, None);
            }
            Err(Gate::Malformed(m)) => {
                return (
                    self.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &m),
                    None,
                );
            }
            Err(Gate::RateLimited) => return (self.too_many(), None),
        }
        let request = match self.parse(method, uri.path(), body) {
            Ok(r) => r,
            Err((status, m)) => {
                self.core.violation(&route, &m);
                let category = if status == StatusCode::NOT_FOUND {
                    "OBJECT_NOT_FOUND"
                } else {
                    "VALIDATION_ERROR"
                };
                return (self.error(status, category, &m), None);
            }
        };
        let stall = match self.core.roll() {
            Fault::TooMany => return (self.too_many(), None),
            Fault::Internal => {
                let r = self.error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "internal error",
                );
                return (r, None);
            }
            Fault::Stall => Some(self.core.faults.stall),
            Fault::None => None,
        };
        (self.apply(request), stall)
    }

    fn parse(
        &self,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Result<HsRequest, (StatusCode, String)> {
        let bad = |m: String| (StatusCode::BAD_REQUEST, m);
        let not_found = || {
            (
                StatusCode::NOT_FOUND,
                format!("no such route {method} {path}"),
            )
        };
        if *method != Method::POST {
            return Err(not_found());
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["crm", "v3", "objects", "contacts", "batch", "upsert"] => {
                let inputs = hs_inputs(body, 100).map_err(bad)?;
                let mut emails = Vec::new();
                for (i, input) in inputs.iter().enumerate() {
                    emails.push(hs_contact_input(input, i).map_err(bad)?);
                }
                let distinct: HashSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
                if distinct.len() != emails.len() {
                    return Err(bad("Duplicate IDs found in batch input".into()));
                }
                Ok(HsRequest::UpsertContacts(emails))
            }
            ["crm", "v3", "objects", kind, "batch", "upsert"] => {
                let kind = HsKind::parse(kind).ok_or_else(not_found)?;
                let inputs = hs_inputs(body, 100).map_err(bad)?;
                let mut out = Vec::new();
                for (i, input) in inputs.iter().enumerate() {
                    out.push(hs_object_input(kind, input, i, &self.id_property).map_err(bad)?);
                }
                let distinct: HashSet<&String> = out.iter().map(|(k, _)| k).collect();
                if distinct.len() != out.len() {
                    return Err(bad("Duplicate IDs found in batch input".into()));
                }
                Ok(HsRequest::Upsert(kind, out))
            }
            [
                "crm",
                "v4",
                "associations",
                kind,
                "contacts",
                "batch",
                "associate",
                "default",
            ] => {
                let kind = HsKind::parse(kind).ok_or_else(not_found)?;
                let inputs = hs_inputs(body, 2000).map_err(bad)?;
                let mut pairs = Vec::new();
                for (i, input) in inputs.iter().enumerate() {
                    let what = format!("inputs[{i}]");
                    only_keys(input, &["from", "to"], &what).map_err(bad)?;
                    let mut ids = Vec::new();
                    for side in ["from", "to"] {
                        let w = format!("{what}.{side}");
                        let o = as_obj(input.get(side).unwrap_or(&Value::Null), &w).map_err(bad)?;
                        only_keys(o, &["id"], &w).map_err(bad)?;
                        let id = str_at(o, "id", &w).map_err(bad)?;
                        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(bad(format!("{w}.id {id:?} is not a HubSpot object id")));
                        }
                        ids.push(id.to_string());
                    }
                    pairs.push((ids[0].clone(), ids[1].clone()));
                }
                Ok(HsRequest::Associate(kind, pairs))
            }
            ["crm", "v3", "objects", kind, "batch", "archive"] => {
                let kind = HsKind::parse(kind).ok_or_else(not_found)?;
                let inputs = hs_inputs(body, 100).map_err(bad)?;
                let mut ids = Vec::new();
                for (i, input) in inputs.iter().enumerate() {
                    let what = format!("inputs[{i}]");
                    only_keys(input, &["id"], &what).map_err(bad)?;
                    ids.push(str_at(input, "id", &what).map_err(bad)?.to_string());
                }
                Ok(HsRequest::Archive(kind, ids))
            }
            ["crm", "v3", "objects", "contacts", "gdpr-delete"] => {
                let v = parse_json(body).map_err(bad)?;
                let o = as_obj(&v, "body").map_err(bad)?;
                only_keys(o, &["objectId", "idProperty"], "body").map_err(bad)?;
                let id = str_at(o, "objectId", "body").map_err(bad)?;
                match o.get("idProperty") {
                    None => {
                        if !id.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
                            return Err(bad(format!("body.objectId {id:?} is not a contact id")));
                        }
                    }
                    Some(Value::String(p)) if p == "email" => {}
                    Some(other) => {
                        return Err(bad(format!("body.idProperty {other} is not email")));
                    }
                }
                Ok(HsRequest::GdprDelete(id.to_string()))
            }
            _ => Err(not_found()),
        }
    }

    fn apply(&mut self, request: HsRequest) -> Response {
        let started = now_iso();
        match request {
            HsRequest::UpsertContacts(emails) => {
                let mut results = Vec::new();
                for email in emails {
                    let key = email.to_lowercase();
                    let new = !self.contacts.contains_key(&key);
                    if new {
                        self.next_contact += 1;
                        let id = self.next_contact.to_string();
                        self.contacts.insert(
                            key.clone(),
                            HsContact {
                                id,
                                email: key.clone(),
                                created: true,
                            },
                        );
                    }
                    let c = &self.contacts[&key];
                    results.push(json!({
                        "id": c.id,
                        "properties": {"email": c.email, "hs_object_id": c.id,
                            "createdate": started, "lastmodifieddate": started},
                        "createdAt": started, "updatedAt": started,
                        "archived": false, "new": new,
                    }));
                }
                answer(StatusCode::OK, hs_complete(results, &started))
            }
            HsRequest::Upsert(kind, inputs) => {
                let marker_hit = inputs.iter().any(|(_, props)| {
                    ["hs_note_body", "hs_task_body", "hs_task_subject"]
                        .iter()
                        .any(|p| props.get(*p).is_some_and(|t| self.core.faults.rejects(t)))
                });
                if marker_hit {
                    self.core.injected.rejected += 1;
                    let what = if kind == HsKind::Notes {
                        "hs_note_body"
                    } else {
                        "hs_task_body"
                    };
                    return self.error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        &format!("Property values were not valid: [{{\"isValid\":false,\"message\":\"rejected by a validation rule\",\"error\":\"INVALID_OPTION\",\"name\":\"{what}\"}}]"),
                    );
                }
                let id_property = self.id_property.clone();
                let mut results = Vec::new();
                for (key, props) in inputs {
                    let new = !self.objects(kind).contains_key(&key);
                    if new {
                        self.next_object += 1;
                        let id = self.next_object.to_string();
                        self.objects(kind).insert(
                            key.clone(),
                            HsObject {
                                id,
                                properties: BTreeMap::new(),
                                contacts: BTreeSet::new(),
                                writes: 0,
                            },
                        );
                    }
                    let o = self.objects(kind).get_mut(&key).unwrap();
                    o.writes += 1;
                    o.properties.extend(props);
                    o.properties.insert(id_property.clone(), key.clone());
                    let mut properties: Map<String, Value> = o
                        .properties
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    properties.insert("hs_object_id".into(), json!(o.id));
                    properties.insert("hs_lastmodifieddate".into(), json!(started));
                    results.push(json!({
                        "id": o.id, "properties": properties,
                        "createdAt": started, "updatedAt": started,
                        "archived": false, "new": new,
                    }));
                }
                answer(StatusCode::OK, hs_complete(results, &started))
            }
            HsRequest::Associate(kind, pairs) => {
                let contact_ids: HashSet<String> =
                    self.contacts.values().map(|c| c.id.clone()).collect();
                let map = match kind {
                    HsKind::Notes => &self.notes,
                    HsKind::Tasks => &self.tasks,
                };
                let by_id: HashMap<String, String> =
                    map.iter().map(|(k, o)| (o.id.clone(), k.clone())).collect();
                for (from, to) in &pairs {
                    if !by_id.contains_key(from) || !contact_ids.contains(to) {
                        let what = if by_id.contains_key(from) { to } else { from };
                        return self.error(
                            StatusCode::BAD_REQUEST,
                            "VALIDATION_ERROR",
                            &format!("No object found with id {what}"),
                        );
                    }
                }
                let (type_id, association) = kind.type_ids();
                let mut results = Vec::new();
                for (from, to) in pairs {
                    let key = by_id[&from].clone();
                    self.objects(kind)
                        .get_mut(&key)
                        .unwrap()
                        .contacts
                        .insert(to.clone());
                    results.push(json!({
                        "fromObjectTypeId": type_id, "fromObjectId": from.parse::<i64>().unwrap(),
                        "toObjectTypeId": "0-1", "toObjectId": to.parse::<i64>().unwrap(),
                        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": association, "label": null}],
                    }));
                }
                answer(StatusCode::OK, hs_complete(results, &started))
            }
            HsRequest::Archive(kind, ids) => {
                self.objects(kind).retain(|_, o| !ids.contains(&o.id));
                self.archived.extend(ids);
                StatusCode::NO_CONTENT.into_response()
            }
            HsRequest::GdprDelete(id) => {
                let found = self
                    .contacts
                    .iter()
                    .find(|(email, c)| c.id == id || **email == id.to_lowercase())
                    .map(|(email, c)| (email.clone(), c.id.clone()));
                match found {
                    Some((email, cid)) => {
                        self.contacts.remove(&email);
                        for o in self.notes.values_mut().chain(self.tasks.values_mut()) {
                            o.contacts.remove(&cid);
                        }
                        self.gdpr_deleted.push(cid);
                        StatusCode::NO_CONTENT.into_response()
                    }
                    None => self.error(
                        StatusCode::NOT_FOUND,
                        "OBJECT_NOT_FOUND",
                        "Object not found",
                    ),
                }
            }
        }
    }
}

/// A batch answer. HubSpot does not promise the inputs' order in `results`; the fake
/// answers in reverse, so a client that pairs by position fails the tests.
fn hs_complete(mut results: Vec<Value>, started: &str) -> Value {
    results.reverse();
    json!({"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": now_iso()})
}

/// `{"inputs": [...]}` with 1..=max objects.
fn hs_inputs(body: &[u8], max: usize) -> Result<Vec<Map<String, Value>>, String> {
    let v = parse_json(body)?;
    let o = as_obj(&v, "body")?;
    only_keys(o, &["inputs"], "body")?;
    let inputs = o
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or("body.inputs is missing or not an array")?;
    if inputs.is_empty() || inputs.len() > max {
        return Err(format!(
            "body.inputs has {} entries; 1 to {max} allowed",
            inputs.len()
        ));
    }
    inputs
        .iter()
        .enumerate()
        .map(|(i, v)| as_obj(v, &format!("inputs[{i}]")).cloned())
        .collect()
}

/// `properties`: an object of string values.
fn hs_properties(
    input: &Map<String, Value>,
    what: &str,
) -> Result<BTreeMap<String, String>, String> {
    let props = as_obj(
        input.get("properties").unwrap_or(&Value::Null),
        &format!("{what}.properties"),
    )?;
    props
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!("{what}.properties.{k} is not a string: {other}")),
        })
        .collect()
}

fn hs_contact_input(input: &Map<String, Value>, i: usize) -> Result<String, String> {
    let what = format!("inputs[{i}]");
    only_keys(
        input,
        &["idProperty", "id", "properties", "objectWriteTraceId"],
        &what,
    )?;
    let id_property = str_at(input, "idProperty", &what)?;
    if id_property != "email" {
        return Err(format!(
            "{what}.idProperty is {id_property:?}, not \"email\""
        ));
    }
    let id = str_at(input, "id", &what)?;
    let props = hs_properties(input, &what)?;
    if let Some(k) = props
        .keys()
        .find(|k| !HS_CONTACT_PROPS.contains(&k.as_str()))
    {
        return Err(format!(
            "{what}.properties.{k}: Property \"{k}\" does not exist"
        ));
    }
    if props.get("email").map(String::as_str) != Some(id) {
        return Err(format!(
            "{what}.id {id:?} differs from properties.email {:?}",
            props.get("email")
        ));
    }
    if !email_ok(id) {
        return Err(format!("{what}.id {id:?} is not an email address"));
    }
    Ok(id.to_string())
}

fn hs_object_input(
    kind: HsKind,
    input: &Map<String, Value>,
    i: usize,
    id_property: &str,
) -> Result<(String, BTreeMap<String, String>), String> {
    let what = format!("inputs[{i}]");
    only_keys(
        input,
        &["idProperty", "id", "properties", "objectWriteTraceId"],
        &what,
    )?;
    let idp = str_at(input, "idProperty", &what)?;
    if idp != id_property {
        return Err(format!(
            "{what}.idProperty is {idp:?}, not the unique property {id_property:?}"
        ));
    }
    let id = str_at(input, "id", &what)?;
    if id.is_empty() {
        return Err(format!("{what}.id is empty"));
    }
    let props = hs_properties(input, &what)?;
    if props.get(id_property).map(String::as_str) != Some(id) {
        return Err(format!(
            "{what}.properties.{id_property} {:?} differs from id {id:?}",
            props.get(id_property)
        ));
    }
    let allowed = match kind {
        HsKind::Notes => HS_NOTE_PROPS,
        HsKind::Tasks => HS_TASK_PROPS,
    };
    if let Some(k) = props
        .keys()
        .find(|k| k.as_str() != id_property && !allowed.contains(&k.as_str()))
    {
        return Err(format!(
            "{what}.properties.{k}: Property \"{k}\" does not exist"
        ));
    }
    let ts = props
        .get("hs_timestamp")
        .ok_or_else(|| format!("{what}.properties.hs_timestamp is missing"))?;
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) if t.offset().local_minus_utc() == 0 => {}
        Ok(_) => {
            return Err(format!(
                "{what}.properties.hs_timestamp {ts:?} is not in UTC"
            ));
        }
        Err(e) => {
            return Err(format!(
                "{what}.properties.hs_timestamp {ts:?} is not RFC 3339: {e}"
            ));
        }
    }
    match kind {
        HsKind::Notes => {
            let body = props
                .get("hs_note_body")
                .ok_or_else(|| format!("{what}.properties.hs_note_body is missing"))?;
            let n = body.chars().count();
            if n > 65_536 {
                return Err(format!(
                    "{what}.properties.hs_note_body has {n} characters; at most 65,536"
                ));
            }
        }
        HsKind::Tasks => {
            match props.get("hs_task_subject") {
                Some(s) if !s.trim().is_empty() => {}
                _ => {
                    return Err(format!(
                        "{what}.properties.hs_task_subject is missing or empty"
                    ));
                }
            }
            if let Some(b) = props.get("hs_task_body") {
                let n = b.chars().count();
                if n > 65_536 {
                    return Err(format!(
                        "{what}.properties.hs_task_body has {n} characters; at most 65,536"
                    ));
                }
            }
            if let Some(s) = props.get("hs_task_status")
                && !HS_TASK_STATUS.contains(&s.as_str())
            {
                return Err(format!(
                    "{what}.properties.hs_task_status {s:?} is not one of {HS_TASK_STATUS:?}"
                ));
            }
            if let Some(p) = props.get("hs_task_priority")
                && !HS_TASK_PRIORITY.contains(&p.as_str())
            {
                return Err(format!(
                    "{what}.properties.hs_task_priority {p:?} is not one of {HS_TASK_PRIORITY:?}"
                ));
            }
        }
    }
    Ok((id.to_string(), props))
}

// ---------------------------------------------------------------------------------------
// Salesforce
// ---------------------------------------------------------------------------------------

pub const SF_VERSION: &str = "v61.0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfContact {
    pub id: String,
    pub email: String,
    pub last_name: String,
    /// Created through the API (not seeded by the test).
    pub created: bool,
}

/// A record upserted by external id.
#[derive(Debug, Clone, PartialEq)]
pub struct SfRecord {
    pub sobject: String,
    pub external_field: String,
    pub key: String,
    pub id: String,
    pub fields: Map<String, Value>,
    /// Upserts that hit it (1: created and never updated).
    pub writes: usize,
}

enum SfRequest {
    Query(Vec<String>),
    Create(Vec<Map<String, Value>>),
    Upsert {
        sobject: String,
        field: String,
        records: Vec<Map<String, Value>>,
    },
    Delete(Vec<String>),
}

struct SfState {
    core: Core,
    counters: HashMap<&'static str, u64>,
    contacts: Vec<SfContact>,
    /// (sobject, external field, key) -> record.
    records: BTreeMap<(String, String, String), SfRecord>,
    deleted: Vec<String>,
}

/// Fake Salesforce; its instance URL is the server root.
#[derive(Clone)]
pub struct Salesforce {
    pub url: String,
    state: Arc<Mutex<SfState>>,
    hits: Arc<AtomicUsize>,
}

core_accessors!(Salesforce);

const SF_TASK_FIELDS: &[&str] = &[
    "Subject",
    "Description",
    "ActivityDate",
    "Status",
    "Priority",
    "WhoId",
    "WhatId",
    "TaskSubtype",
    "Type",
    "OwnerId",
];
const SF_CONTACT_FIELDS: &[&str] = &[
    "LastName",
    "FirstName",
    "Email",
    "Phone",
    "MobilePhone",
    "LeadSource",
];

impl Salesforce {
    pub async fn start(token: &str, faults: Faults) -> Self {
        let fake = Salesforce {
            url: String::new(),
            state: Arc::new(Mutex::new(SfState {
                core: Core::new(Some(token), faults),
                counters: HashMap::new(),
                contacts: Vec::new(),
                records: BTreeMap::new(),
                deleted: Vec::new(),
            })),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .fallback(salesforce_handler)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(fake.clone());
        Salesforce {
            url: fakes::serve(app).await,
            ..fake
        }
    }

    /// A contact that exists before Tideline arrives; returns its id.
    pub fn seed_contact(&self, email: &str, last_name: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let id = s.new_id("Contact");
        s.contacts.push(SfContact {
            id: id.clone(),
            email: email.to_string(),
            last_name: last_name.to_string(),
            created: false,
        });
        id
    }

    /// Every live contact, in creation order (a duplicate email shows up twice).
    pub fn contacts(&self) -> Vec<SfContact> {
        self.state.lock().unwrap().contacts.clone()
    }
    /// Live records by external id.
    pub fn records(&self) -> BTreeMap<String, SfRecord> {
        self.state
            .lock()
            .unwrap()
            .records
            .values()
            .map(|r| (r.key.clone(), r.clone()))
            .collect()
    }
    /// Ids deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.state.lock().unwrap().deleted.clone()
    }
}

async fn salesforce_handler(
    State(f): State<Salesforce>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    f.hits.fetch_add(1, Ordering::SeqCst);
    let (response, stall) = f
        .state
        .lock()
        .unwrap()
        .handle(&method, &uri, &headers, &body);
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    response
}

fn sf_error(status: StatusCode, code: &str, message: &str) -> Response {
    answer(status, json!([{"message": message, "errorCode": code}]))
}

fn sf_id_ok(id: &str) -> bool {
    (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The emails of `SELECT Id, Email FROM Contact WHERE Email IN ('a@x.com', 'b@y.com')`,
/// unescaping SOQL's escapes (`\\`, `\'`, `\"`, `\n`, `\r`, `\t`, `\b`, `\f`).
pub fn parse_soql(q: &str) -> Result<Vec<String>, String> {
    const HEAD: &str = "SELECT Id, Email FROM Contact WHERE Email IN (";
    let rest = q
        .strip_prefix(HEAD)
        .ok_or_else(|| format!("query does not start with {HEAD:?}: {q:?}"))?;
    let mut chars = rest.chars().peekable();
    let mut out = Vec::new();
    loop {
        if chars.next() != Some('\'') {
            return Err(format!("expected a quoted value in {q:?}"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("unterminated string in {q:?}")),
                Some('\'') => break,
                Some('\\') => match chars.next() {
                    Some(c @ ('\\' | '\'' | '"')) => value.push(c),
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some('b') => value.push('\u{8}'),
                    Some('f') => value.push('\u{c}'),
                    other => return Err(format!("bad escape \\{other:?} in {q:?}")),
                },
                Some(c) => value.push(c),
            }
        }
        out.push(value);
        match (chars.next(), chars.peek()) {
            (Some(','), Some(' ')) => {
                chars.next();
            }
            (Some(')'), None) => break,
            _ => return Err(format!("expected \", \" or a final \")\" in {q:?}")),
        }
    }
    Ok(out)
}

impl SfState {
    fn new_id(&mut self, sobject: &str) -> String {
        let prefix = match sobject {
            "Contact" => "003",
            "Task" => "00T",
            _ => "a00",
        };
        let n = self.counters.entry(prefix).or_insert(0);
        *n += 1;
        format!("{prefix}{:015}", *n)
    }

    fn handle(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Response, Option<Duration>) {
        let route = format!("{method} {}", uri.path());
        match self.core.admit(&route, method, uri, headers, body) {
            Ok(()) => {}
            Err(Gate::Unauthorized) => {
                let r = sf_error(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_SESSION_ID",
                    "Session expired or invalid",
                );
                return (r, None);
            }
            Err(Gate::Malformed(m)) => {
                return (
                    sf_error(StatusCode::BAD_REQUEST, "INVALID_HEADER_TYPE", &m),
                    None,
                );
            }
            Err(Gate::RateLimited) => return (sf_too_many(), None),
        }
        let request = match self.parse(method, uri, body) {
            Ok(r) => r,
            Err((status, code, m)) => {
                self.core.violation(&route, &m);
                return (sf_error(status, code, &m), None);
            }
        };
        let stall = match self.core.roll() {
            Fault::TooMany => return (sf_too_many(), None),
            Fault::Internal => {
                // Salesforce answers both; which one is part of the draw.
                let r = if self.core.rng.next_u64() & 1 == 0 {
                    sf_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "UNKNOWN_EXCEPTION",
                        "An unexpected error occurred.",
                    )
                } else {
                    sf_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "SERVER_UNAVAILABLE",
                        "Server unavailable",
                    )
                };
                return (r, None);
            }
            Fault::Stall => Some(self.core.faults.stall),
            Fault::None => None,
        };
        (self.apply(&route, request), stall)
    }

    fn parse(
        &self,
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<SfRequest, (StatusCode, &'static str, String)> {
        let path = uri.path();
        let malformed = |m: String| (StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", m);
        let invalid = |m: String| (StatusCode::BAD_REQUEST, "INVALID_FIELD", m);
        let not_found = || {
            (
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("The requested resource does not exist: {method} {path}"),
            )
        };
        if uri.to_string().len() > 16_384 {
            return Err((
                StatusCode::URI_TOO_LONG,
                "URI_TOO_LONG",
                format!("URI of {} bytes", uri.to_string().len()),
            ));
        }
        let Some(rest) = path.strip_prefix(&format!("/services/data/{SF_VERSION}/")) else {
            return Err(not_found());
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (method.clone(), parts.as_slice()) {
            (Method::GET, ["query"]) => {
                let q = query_map(uri);
                let soql = q.get("q").ok_or_else(|| {
                    (
                        StatusCode::BAD_REQUEST,
                        "MALFORMED_QUERY",
                        "q is missing".to_string(),
                    )
                })?;
                let emails = parse_soql(soql)
                    .map_err(|m| (StatusCode::BAD_REQUEST, "MALFORMED_QUERY", m))?;
                Ok(SfRequest::Query(emails))
            }
            (Method::POST, ["composite", "sobjects"]) => {
                let records = sf_collection(body).map_err(malformed)?;
                for (i, r) in records.iter().enumerate() {
                    let what = format!("records[{i}]");
                    sf_attributes(r, "Contact", &what).map_err(invalid)?;
                    if let Some(k) = r
                        .keys()
                        .find(|k| *k != "attributes" && !SF_CONTACT_FIELDS.contains(&k.as_str()))
                    {
                        return Err(invalid(format!(
                            "{what}: No such column '{k}' on sobject of type Contact"
                        )));
                    }
                    let last = str_at(r, "LastName", &what).map_err(invalid)?;
                    if last.trim().is_empty() || last.chars().count() > 80 {
                        return Err(invalid(format!(
                            "{what}.LastName {last:?} is empty or longer than 80"
                        )));
                    }
                    let email = str_at(r, "Email", &what).map_err(invalid)?;
                    if !email_ok(email) {
                        return Err(invalid(format!(
                            "{what}.Email {email:?} is not an email address"
                        )));
                    }
                }
                Ok(SfRequest::Create(records))
            }
            (Method::PATCH, ["composite", "sobjects", sobject, field]) => {
                let records = sf_collection(body).map_err(malformed)?;
                if !field.ends_with("__c") {
                    return Err(invalid(format!(
                        "{field} is not a custom External ID field"
                    )));
                }
                let mut keys = HashSet::new();
                for (i, r) in records.iter().enumerate() {
                    let what = format!("records[{i}]");
                    sf_attributes(r, sobject, &what).map_err(invalid)?;
                    let key = str_at(r, field, &what).map_err(invalid)?;
                    if key.is_empty() {
                        return Err(invalid(format!("{what}.{field} is empty")));
                    }
                    if !keys.insert(key.to_string()) {
                        return Err(invalid(format!(
                            "{what}: the external id {key:?} occurs twice in one call"
                        )));
                    }
                    if *sobject == "Task" {
                        sf_task(r, field, &what).map_err(invalid)?;
                    } else if let Some(k) = r.keys().find(|k| {
                        *k != "attributes"
                            && !(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                                && (k.ends_with("__c") || *k == "Name"))
                    }) {
                        return Err(invalid(format!(
                            "{what}: No such column '{k}' on sobject of type {sobject}"
                        )));
                    }
                }
                Ok(SfRequest::Upsert {
                    sobject: sobject.to_string(),
                    field: field.to_string(),
                    records,
                })
            }
            (Method::DELETE, ["composite", "sobjects"]) => {
                let q = query_map(uri);
                if let Some(k) = q.keys().find(|k| *k != "ids" && *k != "allOrNone") {
                    return Err(invalid(format!("unknown parameter {k}")));
                }
                if let Some(a) = q.get("allOrNone")
                    && a != "true"
                    && a != "false"
                {
                    return Err(invalid(format!("allOrNone {a:?} is not a boolean")));
                }
                let ids: Vec<String> = q
                    .get("ids")
                    .map(|s| s.split(',').map(str::to_string).collect())
                    .unwrap_or_default();
                if ids.is_empty() || ids.len() > 200 {
                    return Err(invalid(format!("{} ids; 1 to 200 allowed", ids.len())));
                }
                if let Some(bad) = ids.iter().find(|id| !sf_id_ok(id)) {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "MALFORMED_ID",
                        format!("malformed id {bad:?}"),
                    ));
                }
                Ok(SfRequest::Delete(ids))
            }
            _ => Err(not_found()),
        }
    }

    fn contact_live(&self, id: &str) -> bool {
        self.contacts.iter().any(|c| c.id == id)
    }

    fn apply(&mut self, route: &str, request: SfRequest) -> Response {
        match request {
            SfRequest::Query(emails) => {
                let wanted: HashSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
                let records: Vec<Value> = self
                    .contacts
                    .iter()
                    .filter(|c| wanted.contains(&c.email.to_lowercase()))
                    .map(|c| {
                        json!({
                            "attributes": {"type": "Contact", "url": format!("/services/data/{SF_VERSION}/sobjects/Contact/{}", c.id)},
                            "Id": c.id, "Email": c.email,
                        })
                    })
                    .collect();
                answer(
                    StatusCode::OK,
                    json!({"totalSize": records.len(), "done": true, "records": records}),
                )
            }
            SfRequest::Create(records) => {
                let mut results = Vec::new();
                for r in records {
                    let id = self.new_id("Contact");
                    self.contacts.push(SfContact {
                        id: id.clone(),
                        email: r["Email"].as_str().unwrap().to_string(),
                        last_name: r["LastName"].as_str().unwrap().to_string(),
                        created: true,
                    });
                    results.push(json!({"id": id, "success": true, "errors": []}));
                }
                answer(StatusCode::OK, Value::Array(results))
            }
            SfRequest::Upsert {
                sobject,
                field,
                records,
            } => {
                let mut results = Vec::new();
                for mut r in records {
                    let key = r[&field].as_str().unwrap().to_string();
                    let rejected = r
                        .get("Description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| self.core.faults.rejects(d));
                    if rejected {
                        self.core.injected.rejected += 1;
                        results.push(json!({"success": false, "errors": [{
                            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                            "message": "Rejected by a validation rule", "fields": ["Description"]}]}));
                        continue;
                    }
                    if let Some(who) = r.get("WhoId").and_then(Value::as_str)
                        && !self.contact_live(who)
                    {
                        let m = format!("record {key:?}: WhoId {who} is not an existing Contact");
                        self.core.violation(route, &m);
                        results.push(json!({"success": false, "errors": [{
                            "statusCode": "INVALID_CROSS_REFERENCE_KEY",
                            "message": "invalid cross reference id", "fields": ["WhoId"]}]}));
                        continue;
                    }
                    r.remove("attributes");
                    let slot = (sobject.clone(), field.clone(), key.clone());
                    let created = !self.records.contains_key(&slot);
                    if created {
                        let id = self.new_id(&sobject);
                        self.records.insert(
                            slot.clone(),
                            SfRecord {
                                sobject: sobject.clone(),
                                external_field: field.clone(),
                                key: key.clone(),
                                id,
                                fields: Map::new(),
                                writes: 0,
                            },
                        );
                    }
                    let rec = self.records.get_mut(&slot).unwrap();
                    rec.writes += 1;
                    rec.fields.extend(r);
                    results.push(
                        json!({"id": rec.id, "success": true, "errors": [], "created": created}),
                    );
                }
                answer(StatusCode::OK, Value::Array(results))
            }
            SfRequest::Delete(ids) => {
                let mut results = Vec::new();
                for id in ids {
                    let before = self.contacts.len() + self.records.len();
                    self.contacts.retain(|c| c.id != id);
                    self.records.retain(|_, r| r.id != id);
                    if self.contacts.len() + self.records.len() < before {
                        self.deleted.push(id.clone());
                        results.push(json!({"id": id, "success": true, "errors": []}));
                    } else {
                        results.push(json!({"success": false, "errors": [{
                            "statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}));
                    }
                }
                answer(StatusCode::OK, Value::Array(results))
            }
        }
    }
}

fn sf_too_many() -> Response {
    let mut r = sf_error(
        StatusCode::TOO_MANY_REQUESTS,
        "REQUEST_LIMIT_EXCEEDED",
        "Too many requests",
    );
    r.headers_mut()
        .insert("Retry-After", HeaderValue::from_static("1"));
    r
}

/// `{"allOrNone": false, "records": [...]}` with 1..=200 records, none with an `Id`.
fn sf_collection(body: &[u8]) -> Result<Vec<Map<String, Value>>, String> {
    let v = parse_json(body)?;
    let o = as_obj(&v, "body")?;
    only_keys(o, &["allOrNone", "records"], "body")?;
    match o.get("allOrNone") {
        None | Some(Value::Bool(false)) => {}
        Some(other) => return Err(format!("body.allOrNone is {other}; the sink sends false")),
    }
    let records = o
        .get("records")
        .and_then(Value::as_array)
        .ok_or("body.records is missing or not an array")?;
    if records.is_empty() || records.len() > 200 {
        return Err(format!(
            "body.records has {} entries; 1 to 200 allowed",
            records.len()
        ));
    }
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let m = as_obj(r, &format!("records[{i}]"))?;
        if m.contains_key("Id") || m.contains_key("id") {
            return Err(format!("records[{i}] carries an Id"));
        }
        out.push(m.clone());
    }
    Ok(out)
}

fn sf_attributes(r: &Map<String, Value>, sobject: &str, what: &str) -> Result<(), String> {
    let a = as_obj(
        r.get("attributes").unwrap_or(&Value::Null),
        &format!("{what}.attributes"),
    )?;
    let t = str_at(a, "type", &format!("{what}.attributes"))?;
    if t != sobject {
        return Err(format!("{what}.attributes.type is {t:?}, not {sobject:?}"));
    }
    Ok(())
}

fn sf_task(r: &Map<String, Value>, field: &str, what: &str) -> Result<(), String> {
    for (k, v) in r {
        if k == "attributes" || k == field {
            continue;
        }
        if !SF_TASK_FIELDS.contains(&k.as_str()) {
            return Err(format!(
                "{what}: No such column '{k}' on sobject of type Task"
            ));
        }
        if !(v.is_string() || v.is_null()) {
            return Err(format!("{what}.{k} is not a string: {v}"));
        }
    }
    let subject = str_at(r, "Subject", what)?;
    if subject.trim().is_empty() || subject.chars().count() > 255 {
        return Err(format!("{what}.Subject is empty or longer than 255"));
    }
    let text = |k: &str| r.get(k).and_then(Value::as_str);
    if let Some(d) = text("Description") {
        let n = d.chars().count();
        if n > 32_000 {
            return Err(format!(
                "{what}.Description has {n} characters; at most 32,000"
            ));
        }
    }
    if let Some(d) = text("ActivityDate")
        && (d.len() != 10 || chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err())
    {
        return Err(format!("{what}.ActivityDate {d:?} is not YYYY-MM-DD"));
    }
    if let Some(s) = text("Status")
        && s != "Completed"
        && s != "Not Started"
    {
        return Err(format!(
            "{what}.Status {s:?} is not Completed or Not Started"
        ));
    }
    if let Some(p) = text("Priority")
        && p != "Normal"
        && p != "High"
    {
        return Err(format!("{what}.Priority {p:?} is not Normal or High"));
    }
    if let Some(w) = text("WhoId")
        && !(sf_id_ok(w) && w.starts_with("003"))
    {
        return Err(format!("{what}.WhoId {w:?} is not a Contact id"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Webhook receiver
// ---------------------------------------------------------------------------------------

/// HMAC-SHA256 (RFC 2104) over `sha2`: the key padded (or first hashed) to the 64-byte
/// block, inner hash with 0x36, outer with 0x5c.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

pub const WEBHOOK_TYPES: &[&str] = &[
    "interaction.upserted",
    "change.detected",
    "interaction.deleted",
    "change.deleted",
    "customer.erased",
];

/// One delivered event (the first copy of its `webhook-id`).
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    pub id: String,
    pub kind: String,
    pub body: Value,
}

struct WhState {
    core: Core,
    key: Vec<u8>,
    seen: HashSet<String>,
    events: Vec<WebhookEvent>,
    duplicates: usize,
}

/// Fake webhook receiver at `{url}/hook`.
#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    state: Arc<Mutex<WhState>>,
    hits: Arc<AtomicUsize>,
}

core_accessors!(Webhook);

impl Webhook {
    /// `secret` as configured (`whsec_` + base64); `token`: a bearer token to demand, if any.
    pub async fn start(secret: &str, token: Option<&str>, faults: Faults) -> Self {
        let key = match secret.strip_prefix("whsec_") {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .expect("whsec_ secret is base64"),
            None => secret.as_bytes().to_vec(),
        };
        let fake = Webhook {
            url: String::new(),
            state: Arc::new(Mutex::new(WhState {
                core: Core::new(token, faults),
                key,
                seen: HashSet::new(),
                events: Vec::new(),
                duplicates: 0,
            })),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .fallback(webhook_handler)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(fake.clone());
        Webhook {
            url: format!("{}/hook", fakes::serve(app).await),
            ..fake
        }
    }

    /// The events in arrival order, one per `webhook-id`.
    pub fn events(&self) -> Vec<WebhookEvent> {
        self.state.lock().unwrap().events.clone()
    }
    /// Copies of an already seen `webhook-id` (at-least-once delivery).
    pub fn duplicates(&self) -> usize {
        self.state.lock().unwrap().duplicates
    }
}

async fn webhook_handler(
    State(f): State<Webhook>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    f.hits.fetch_add(1, Ordering::SeqCst);
    let (response, stall) = f
        .state
        .lock()
        .unwrap()
        .handle(&method, &uri, &headers, &body);
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    response
}

fn wh_error(status: StatusCode, message: &str) -> Response {
    answer(status, json!({"error": message}))
}

impl WhState {
    fn handle(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Response, Option<Duration>) {
        let route = format!("{method} {}", uri.path());
        match self.core.admit(&route, method, uri, headers, body) {
            Ok(()) => {}
            Err(Gate::Unauthorized) => {
                return (wh_error(StatusCode::UNAUTHORIZED, "unauthorized"), None);
            }
            Err(Gate::Malformed(m)) => return (wh_error(StatusCode::BAD_REQUEST, &m), None),
            Err(Gate::RateLimited) => return (wh_too_many(), None),
        }
        if *method != Method::POST || uri.path() != "/hook" {
            self.core.violation(&route, "no such route");
            return (wh_error(StatusCode::NOT_FOUND, "not found"), None);
        }
        let (id, event) = match self.check(headers, body) {
            Ok(x) => x,
            Err((status, m)) => {
                self.core.violation(&route, &m);
                return (wh_error(status, &m), None);
            }
        };
        let stall = match self.core.roll() {
            Fault::TooMany => return (wh_too_many(), None),
            Fault::Internal => {
                return (
                    wh_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                    None,
                );
            }
            Fault::Stall => Some(self.core.faults.stall),
            Fault::None => None,
        };
        if self.core.faults.rejects(&String::from_utf8_lossy(body)) {
            self.core.injected.rejected += 1;
            return (
                wh_error(StatusCode::UNPROCESSABLE_ENTITY, "rejected by the receiver"),
                stall,
            );
        }
        if self.seen.insert(id.clone()) {
            self.events.push(WebhookEvent {
                id,
                kind: event["type"].as_str().unwrap().to_string(),
                body: event,
            });
        } else {
            self.duplicates += 1;
        }
        (StatusCode::NO_CONTENT.into_response(), stall)
    }

    /// The id and payload of a correctly signed, well-formed event.
    fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(String, Value), (StatusCode, String)> {
        let bad = |m: String| (StatusCode::BAD_REQUEST, m);
        let id = fakes::header(headers, "webhook-id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("webhook-id is missing".into()))?;
        let ts = fakes::header(headers, "webhook-timestamp")
            .ok_or_else(|| bad("webhook-timestamp is missing".into()))?;
        let seconds: i64 = ts
            .parse()
            .map_err(|_| bad(format!("webhook-timestamp {ts:?} is not unix seconds")))?;
        let now = chrono::Utc::now().timestamp();
        if (now - seconds).abs() > 300 {
            return Err(bad(format!(
                "webhook-timestamp {seconds} is {}s from now",
                now - seconds
            )));
        }
        let signatures = fakes::header(headers, "webhook-signature")
            .ok_or_else(|| bad("webhook-signature is missing".into()))?;
        let mut signed = Vec::with_capacity(body.len() + 64);
        signed.extend_from_slice(format!("{id}.{seconds}.").as_bytes());
        signed.extend_from_slice(body);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&self.key, &signed));
        let ok = signatures
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()));
        if !ok {
            return Err((
                StatusCode::UNAUTHORIZED,
                format!("no valid v1 signature in {signatures:?}"),
            ));
        }
        let v = parse_json(body).map_err(bad)?;
        let o = as_obj(&v, "body").map_err(bad)?;
        only_keys(o, &["type", "timestamp", "data"], "body").map_err(bad)?;
        let kind = str_at(o, "type", "body").map_err(bad)?;
        if !WEBHOOK_TYPES.contains(&kind) {
            return Err(bad(format!(
                "body.type {kind:?} is not one of {WEBHOOK_TYPES:?}"
            )));
        }
        let at = str_at(o, "timestamp", "body").map_err(bad)?;
        chrono::DateTime::parse_from_rfc3339(at)
            .map_err(|e| bad(format!("body.timestamp {at:?} is not RFC 3339: {e}")))?;
        as_obj(o.get("data").unwrap_or(&Value::Null), "body.data").map_err(bad)?;
        Ok((id.to_string(), v))
    }
}

fn wh_too_many() -> Response {
    let mut r = wh_error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
    r.headers_mut()
        .insert("Retry-After", HeaderValue::from_static("1"));
    r
}

// ---------------------------------------------------------------------------------------
// The fakes' own tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode as S;

    const TOKEN: &str = "pat-na1-s3cret";

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .user_agent("tideline/test")
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap()
    }

    async fn post(url: &str, body: Value) -> (S, Value) {
        let r = client()
            .post(url)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn sf_query(base: &str, q: &str) -> reqwest::Url {
        reqwest::Url::parse_with_params(&format!("{base}/query"), [("q", q)]).unwrap()
    }

    fn note(key: &str, body: &str) -> Value {
        json!({"idProperty": "tideline_id", "id": key, "properties": {
            "tideline_id": key, "hs_timestamp": "2026-11-01T10:00:00.000Z", "hs_note_body": body}})
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_prng_repeats_for_a_seed_and_spreads_faults() {
        let mut a = SplitMix::new(7);
        let mut b = SplitMix::new(7);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        let mut core = Core::new(None, Faults::chaos(3));
        let mut n = [0usize; 4];
        for _ in 0..10_000 {
            n[core.roll() as usize] += 1;
        }
        // None, TooMany, Internal, Stall: about 70/10/10/10 %.
        assert!((6_700..7_300).contains(&n[0]), "{n:?}");
        assert!(n[1..].iter().all(|&k| (800..1_200).contains(&k)), "{n:?}");
    }

    #[test]
    fn soql_in_lists_parse_with_escapes() {
        assert_eq!(
            parse_soql(
                r"SELECT Id, Email FROM Contact WHERE Email IN ('a@x.com', 'o\'hara\\x@y.com')"
            )
            .unwrap(),
            vec!["a@x.com".to_string(), r"o'hara\x@y.com".to_string()]
        );
        assert!(parse_soql("SELECT Id FROM Contact").is_err());
        assert!(parse_soql("SELECT Id, Email FROM Contact WHERE Email IN ('a@x.com',)").is_err());
        assert!(
            parse_soql("SELECT Id, Email FROM Contact WHERE Email IN ('a@x.com') LIMIT 1").is_err()
        );
        assert!(parse_soql("SELECT Id, Email FROM Contact WHERE Email IN ('it's@x.com')").is_err());
    }

    #[tokio::test]
    async fn hubspot_upserts_associates_archives_and_flags_bad_shapes() {
        let hs = HubSpot::start(TOKEN, Faults::none().reject("REJECT-ME")).await;
        let (s, v) = post(
            &format!("{}/crm/v3/objects/contacts/batch/upsert", hs.url),
            json!({"inputs": [{"idProperty": "email", "id": "a@x.com", "properties": {"email": "a@x.com"}}]}),
        )
        .await;
        assert_eq!(s, S::OK, "{v}");
        assert_eq!(v["results"][0]["new"], json!(true));
        let contact = v["results"][0]["id"].as_str().unwrap().to_string();
        // Upper case finds the same contact.
        let (_, v) = post(
            &format!("{}/crm/v3/objects/contacts/batch/upsert", hs.url),
            json!({"inputs": [{"idProperty": "email", "id": "A@X.com", "properties": {"email": "A@X.com"}}]}),
        )
        .await;
        assert_eq!(
            (v["results"][0]["id"].as_str(), &v["results"][0]["new"]),
            (Some(contact.as_str()), &json!(false))
        );
        assert_eq!(hs.contacts().len(), 1);

        let url = format!("{}/crm/v3/objects/notes/batch/upsert", hs.url);
        let (s, v) = post(
            &url,
            json!({"inputs": [note("k1", "<p>hello</p>"), note("k2", "two")]}),
        )
        .await;
        assert_eq!(s, S::OK, "{v}");
        // Results in reverse: HubSpot does not promise the inputs' order.
        assert_eq!(v["results"][1]["properties"]["tideline_id"], "k1");
        let n1 = v["results"][1]["id"].as_str().unwrap().to_string();
        let (_, v) = post(&url, json!({"inputs": [note("k1", "<p>hello again</p>")]})).await;
        assert_eq!(
            (v["results"][0]["id"].as_str(), &v["results"][0]["new"]),
            (Some(n1.as_str()), &json!(false))
        );
        assert_eq!(hs.notes().len(), 2);
        assert_eq!(hs.notes()["k1"].writes, 2);

        // The reject marker refuses the whole batch; nothing applied; not a violation.
        let (s, v) = post(
            &url,
            json!({"inputs": [note("k3", "fine"), note("k4", "REJECT-ME")]}),
        )
        .await;
        assert_eq!(
            (s, v["category"].as_str()),
            (S::BAD_REQUEST, Some("VALIDATION_ERROR"))
        );
        assert!(!hs.notes().contains_key("k3"));

        let assoc = format!(
            "{}/crm/v4/associations/notes/contacts/batch/associate/default",
            hs.url
        );
        let (s, v) = post(
            &assoc,
            json!({"inputs": [{"from": {"id": n1}, "to": {"id": contact}}]}),
        )
        .await;
        assert_eq!(s, S::OK, "{v}");
        assert_eq!(v["results"][0]["associationTypes"][0]["typeId"], 202);
        assert!(hs.notes()["k1"].contacts.contains(&contact));
        let (s, _) = post(
            &assoc,
            json!({"inputs": [{"from": {"id": "1"}, "to": {"id": contact}}]}),
        )
        .await;
        assert_eq!(s, S::BAD_REQUEST); // unknown note: a vendor error, not a violation
        assert!(hs.violations().is_empty(), "{:?}", hs.violations());

        let (s, _) = post(
            &format!("{}/crm/v3/objects/notes/batch/archive", hs.url),
            json!({"inputs": [{"id": n1}, {"id": "5"}]}),
        )
        .await;
        assert_eq!(s, S::NO_CONTENT);
        assert!(!hs.notes().contains_key("k1"));
        let gdpr = format!("{}/crm/v3/objects/contacts/gdpr-delete", hs.url);
        assert_eq!(
            post(&gdpr, json!({"objectId": contact})).await.0,
            S::NO_CONTENT
        );
        assert_eq!(
            post(&gdpr, json!({"objectId": contact})).await.0,
            S::NOT_FOUND
        );
        assert_eq!(hs.gdpr_deleted(), vec![contact.clone()]);
        assert!(hs.violations().is_empty(), "{:?}", hs.violations());

        // Shapes that HubSpot refuses: each one a violation.
        let bad = [
            json!({"inputs": [{"idProperty": "hs_object_id", "id": "k9", "properties": {"tideline_id": "k9", "hs_timestamp": "2026-11-01T10:00:00Z", "hs_note_body": "x"}}]}),
            json!({"inputs": [{"idProperty": "tideline_id", "id": "k9", "properties": {"tideline_id": "k8", "hs_timestamp": "2026-11-01T10:00:00Z", "hs_note_body": "x"}}]}),
            json!({"inputs": [{"idProperty": "tideline_id", "id": "k9", "properties": {"tideline_id": "k9", "hs_note_body": "x"}}]}),
            json!({"inputs": [{"idProperty": "tideline_id", "id": "k9", "properties": {"tideline_id": "k9", "hs_timestamp": 1700000000000u64, "hs_note_body": "x"}}]}),
            json!({"inputs": [{"idProperty": "tideline_id", "id": "k9", "properties": {"tideline_id": "k9", "hs_timestamp": "2026-11-01T10:00:00+01:00", "hs_note_body": "x"}}]}),
            json!({"inputs": [note("k9", &"x".repeat(65_537))]}),
            json!({"inputs": [note("k9", "a"), note("k9", "b")]}),
            json!({"inputs": []}),
            json!({"inputs": (0..101).map(|i| note(&format!("n{i}"), "x")).collect::<Vec<_>>()}),
        ];
        for (i, b) in bad.iter().enumerate() {
            let (s, _) = post(&url, b.clone()).await;
            assert_eq!(s, S::BAD_REQUEST, "bad body {i}");
            assert_eq!(
                hs.violations().len(),
                i + 1,
                "bad body {i}: {:?}",
                hs.violations()
            );
        }
        let tasks = format!("{}/crm/v3/objects/tasks/batch/upsert", hs.url);
        let task = |status: &str| {
            json!({"inputs": [{"idProperty": "tideline_id", "id": "t1", "properties": {
            "tideline_id": "t1", "hs_timestamp": "2026-11-01T10:00:00.000Z", "hs_task_subject": "Look",
            "hs_task_status": status, "hs_task_priority": "HIGH"}}]})
        };
        assert_eq!(post(&tasks, task("NOT_STARTED")).await.0, S::OK);
        assert_eq!(post(&tasks, task("OPEN")).await.0, S::BAD_REQUEST);
        assert_eq!(hs.tasks()["t1"].properties["hs_task_priority"], "HIGH");
        assert_eq!(hs.violations().len(), bad.len() + 1);

        // Wrong token: 401, not a violation; no user agent: a violation.
        let r = client()
            .post(&url)
            .bearer_auth("nope")
            .json(&json!({"inputs": [note("z", "z")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), S::UNAUTHORIZED);
        assert_eq!(
            r.json::<Value>().await.unwrap()["category"],
            "INVALID_AUTHENTICATION"
        );
        assert_eq!(hs.violations().len(), bad.len() + 1);
        let r = reqwest::Client::new()
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&json!({"inputs": [note("z", "z")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), S::BAD_REQUEST);
        assert_eq!(hs.violations().len(), bad.len() + 2);
        assert_eq!(hs.injected().unauthorized, 1);
        assert!(hs.count("POST /crm/v3/objects/notes/batch/upsert") > 10);
    }

    #[tokio::test]
    async fn hubspot_rate_window_and_stall() {
        let hs = HubSpot::start(
            TOKEN,
            Faults {
                max_per_window: Some(2),
                window: Duration::from_millis(300),
                ..Faults::none()
            },
        )
        .await;
        let url = format!("{}/crm/v3/objects/notes/batch/upsert", hs.url);
        let mut statuses = vec![];
        for i in 0..3 {
            let r = client()
                .post(&url)
                .bearer_auth(TOKEN)
                .json(&json!({"inputs": [note(&format!("k{i}"), "x")]}))
                .send()
                .await
                .unwrap();
            statuses.push(r.status());
            if r.status() == S::TOO_MANY_REQUESTS {
                assert_eq!(
                    r.headers()["x-hubspot-ratelimit-interval-milliseconds"],
                    "300"
                );
                assert_eq!(
                    r.json::<Value>().await.unwrap()["policyName"],
                    "TEN_SECONDLY_ROLLING"
                );
            }
        }
        assert_eq!(statuses, vec![S::OK, S::OK, S::TOO_MANY_REQUESTS]);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            post(&url, json!({"inputs": [note("k2", "x")]})).await.0,
            S::OK
        );

        // Every request stalls: applied, but the client times out.
        hs.set_faults(Faults {
            rate_timeout: 1.0,
            ..Faults::none()
        });
        let r = client()
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&json!({"inputs": [note("late", "x")]}))
            .send()
            .await;
        assert!(r.unwrap_err().is_timeout());
        assert!(hs.notes().contains_key("late"));
        assert_eq!(hs.injected().stalls, 1);
        assert!(hs.violations().is_empty(), "{:?}", hs.violations());
    }

    #[tokio::test]
    async fn salesforce_queries_creates_upserts_and_deletes() {
        let sf = Salesforce::start(TOKEN, Faults::none().reject("REJECT-ME")).await;
        let seeded = sf.seed_contact("Old@Example.org", "Old");
        let base = format!("{}/services/data/v61.0", sf.url);
        let q = r"SELECT Id, Email FROM Contact WHERE Email IN ('old@example.org', 'o\'n@x.com')";
        let r = client()
            .get(sf_query(&base, q))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), S::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["totalSize"].as_u64(), v["records"][0]["Id"].as_str()),
            (Some(1), Some(seeded.as_str()))
        );

        let (s, v) = post(
            &format!("{base}/composite/sobjects"),
            json!({"allOrNone": false, "records": [{"attributes": {"type": "Contact"}, "LastName": "O'N", "Email": "o'n@x.com"}]}),
        )
        .await;
        assert_eq!(s, S::OK, "{v}");
        let who = v[0]["id"].as_str().unwrap().to_string();
        assert!(who.starts_with("003") && who.len() == 18, "{who}");

        let upsert = format!("{base}/composite/sobjects/Task/Tideline_Key__c");
        let task = |key: &str, desc: &str| {
            json!({"attributes": {"type": "Task"}, "Tideline_Key__c": key,
            "Subject": "Review", "Description": desc, "ActivityDate": "2026-11-01", "Status": "Completed",
            "Priority": "Normal", "WhoId": who})
        };
        let send = |records: Vec<Value>| {
            let url = upsert.clone();
            async move {
                let r = client()
                    .patch(url)
                    .bearer_auth(TOKEN)
                    .json(&json!({"allOrNone": false, "records": records}))
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.json::<Value>().await.unwrap())
            }
        };
        let (s, v) = send(vec![
            task("k1", "one"),
            task("k2", "REJECT-ME"),
            task("k3", "three"),
        ])
        .await;
        assert_eq!(s, S::OK, "{v}");
        assert_eq!(v[0]["created"], json!(true));
        assert_eq!(
            v[1]["errors"][0]["statusCode"],
            "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        );
        assert_eq!(v[2]["success"], json!(true));
        let (_, v2) = send(vec![task("k1", "one, edited")]).await;
        assert_eq!(
            (&v2[0]["id"], &v2[0]["created"]),
            (&v[0]["id"], &json!(false))
        );
        let records = sf.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records["k1"].fields["Description"], "one, edited");
        assert!(records["k1"].id.starts_with("00T"));
        assert!(sf.violations().is_empty(), "{:?}", sf.violations());

        // Bad shapes.
        let mut t = task("k4", "x");
        t["Status"] = json!("Done");
        assert_eq!(send(vec![t]).await.0, S::BAD_REQUEST);
        let mut t = task("k4", "x");
        t["ActivityDate"] = json!("2026-11-01T10:00:00Z");
        assert_eq!(send(vec![t]).await.0, S::BAD_REQUEST);
        assert_eq!(
            send(vec![task("k5", "x"), task("k5", "y")]).await.0,
            S::BAD_REQUEST
        );
        let mut t = task("k4", "x");
        t["attributes"]["type"] = json!("Contact");
        assert_eq!(send(vec![t]).await.0, S::BAD_REQUEST);
        let r = client()
            .get(sf_query(&base, "SELECT Id FROM Contact"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), S::BAD_REQUEST);
        assert_eq!(
            r.json::<Value>().await.unwrap()[0]["errorCode"],
            "MALFORMED_QUERY"
        );
        assert_eq!(sf.violations().len(), 5, "{:?}", sf.violations());

        let id1 = records["k1"].id.clone();
        let r = client()
            .delete(format!(
                "{base}/composite/sobjects?ids={id1},{id1}&allOrNone=false"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (&v[0]["success"], &v[1]["errors"][0]["statusCode"]),
            (&json!(true), &json!("ENTITY_IS_DELETED"))
        );
        assert_eq!(sf.deleted(), vec![id1]);
        assert!(!sf.records().contains_key("k1"));

        let r = client()
            .get(sf_query(&base, q))
            .bearer_auth("expired")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), S::UNAUTHORIZED);
        assert_eq!(
            r.json::<Value>().await.unwrap()[0]["errorCode"],
            "INVALID_SESSION_ID"
        );
        assert_eq!(sf.violations().len(), 5);
    }

    #[tokio::test]
    async fn salesforce_faults_are_repeatable() {
        async fn statuses(seed: u64) -> Vec<u16> {
            let sf = Salesforce::start(
                TOKEN,
                Faults {
                    rate_429: 0.3,
                    rate_500: 0.3,
                    seed,
                    ..Faults::none()
                },
            )
            .await;
            let q = "SELECT Id, Email FROM Contact WHERE Email IN ('a@b.co')";
            let mut out = vec![];
            for _ in 0..30 {
                let r = client()
                    .get(sf_query(&format!("{}/services/data/v61.0", sf.url), q))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .unwrap();
                if r.status() == S::TOO_MANY_REQUESTS {
                    assert_eq!(r.headers()["retry-after"], "1");
                }
                out.push(r.status().as_u16());
            }
            assert!(sf.violations().is_empty());
            out
        }
        let a = statuses(11).await;
        assert_eq!(a, statuses(11).await);
        assert!(
            a.contains(&200) && a.contains(&429) && (a.contains(&500) || a.contains(&503)),
            "{a:?}"
        );
    }

    #[tokio::test]
    async fn webhook_checks_signatures_and_dedupes() {
        let key = b"0123456789abcdef0123456789abcdef";
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let wh = Webhook::start(&secret, None, Faults::none().reject("REJECT-ME")).await;
        let send = |id: &str, body: String, sig_key: &[u8], ts: i64| {
            let signed = format!("{id}.{ts}.{body}");
            let sig = base64::engine::general_purpose::STANDARD
                .encode(hmac_sha256(sig_key, signed.as_bytes()));
            client()
                .post(&wh.url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", format!("v1,bogus v1,{sig}"))
                .body(body)
                .send()
        };
        let now = chrono::Utc::now().timestamp();
        let event = |t: &str, text: &str| {
            json!({"type": t, "timestamp": "2026-11-01T10:00:00Z", "data": {"text": text}})
                .to_string()
        };
        assert_eq!(
            send("msg_1", event("interaction.upserted", "a"), key, now)
                .await
                .unwrap()
                .status(),
            S::NO_CONTENT
        );
        assert_eq!(
            send("msg_1", event("interaction.upserted", "a"), key, now)
                .await
                .unwrap()
                .status(),
            S::NO_CONTENT
        );
        assert_eq!(
            send("msg_2", event("customer.erased", "b"), key, now)
                .await
                .unwrap()
                .status(),
            S::NO_CONTENT
        );
        assert_eq!(
            send(
                "msg_3",
                event("interaction.upserted", "REJECT-ME"),
                key,
                now
            )
            .await
            .unwrap()
            .status(),
            S::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            wh.events()
                .iter()
                .map(|e| e.kind.as_str())
                .collect::<Vec<_>>(),
            ["interaction.upserted", "customer.erased"]
        );
        assert_eq!(wh.duplicates(), 1);
        assert!(wh.violations().is_empty(), "{:?}", wh.violations());

        assert_eq!(
            send(
                "msg_4",
                event("interaction.upserted", "a"),
                b"wrong key",
                now
            )
            .await
            .unwrap()
            .status(),
            S::UNAUTHORIZED
        );
        assert_eq!(
            send("msg_5", event("interaction.upserted", "a"), key, now - 600)
                .await
                .unwrap()
                .status(),
            S::BAD_REQUEST
        );
        assert_eq!(
            send("msg_6", event("ticket.created", "a"), key, now)
                .await
                .unwrap()
                .status(),
            S::BAD_REQUEST
        );
        assert_eq!(wh.violations().len(), 3, "{:?}", wh.violations());
        assert_eq!(wh.events().len(), 2);
    }
}
