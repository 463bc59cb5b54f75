//! The HTTP API (axum): JSON reads of customers, timelines, interactions, changes,
//! indicators, sources and the quarantine under `/api/v1/`, plus `/healthz`, `/readyz`,
//! Prometheus `/metrics` and the OpenAPI document at `/openapi.json`.
//!
//! Every route is one entry of [`ROUTES`]: its method, path, scope, parameters and
//! response schema, and the handler. The router and the OpenAPI document are both built
//! from that list, so a route cannot be served without being documented, and a route's
//! query parameters are exactly the documented ones (anything else is a 400).
//!
//! The dashboard's HTML pages (`crate::outputs::dashboard`) are merged into the same
//! router under `/dashboard`, outside [`ROUTES`]: they log in by token into a session
//! cookie instead of a bearer header.
//!
//! It reads the store only; the one write is an admin's dismissal or reopening of a
//! quarantined row, through the store method `tideline quarantine dismiss` uses.

mod auth;
mod customers;
mod error;
mod lists;
pub mod openapi;
mod ops;
mod params;

pub use auth::{Caller, Tokens};
pub use error::{ApiError, HttpError};

use crate::config::{Config, HttpConfig, Scope};
use crate::metrics::Metrics;
use crate::store::Store;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use params::Params;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What every handler reads.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<Tokens>,
    /// `/readyz` answers 200 only while this is set (and the store answers). [`serve`]
    /// clears it when shutdown begins, so a load balancer stops sending requests.
    pub ready: Arc<AtomicBool>,
    /// The largest `limit` a request may ask for.
    pub page_size_max: u32,
    /// Default regions for phone numbers written without one (customer lookup).
    pub phone_countries: Arc<Vec<String>>,
    /// The configuration the daemon runs with (connector kinds and schedules, for sources
    /// status).
    pub config: Arc<Config>,
    /// Dashboard sessions opened by logging in with a token.
    pub sessions: Arc<crate::outputs::dashboard::Sessions>,
}

impl ApiState {
    /// The state for a configuration; ready from the start (the store is connected and
    /// migrated by the time there is one).
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, config: &Config) -> Self {
        Self {
            store,
            metrics,
            tokens: Arc::new(Tokens::new(config.http.tokens.clone())),
            ready: Arc::new(AtomicBool::new(true)),
            page_size_max: config.http.page_size_max,
            phone_countries: Arc::new(config.phone_countries()),
            config: Arc::new(config.clone()),
            sessions: Arc::new(crate::outputs::dashboard::Sessions::new()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
}

/// The form of a parameter's value, for the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Integer,
    Number,
    String,
    /// RFC 3339 or a date.
    Time,
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub location: ParamIn,
    pub kind: ParamType,
    pub required: bool,
    pub description: &'static str,
}

/// One route: everything the router and the OpenAPI document need.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// In the form axum and OpenAPI share (`/api/v1/customers/{id}`).
    pub path: &'static str,
    /// `None`: public (health checks only).
    pub scope: Option<Scope>,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub params: &'static [Param],
    /// The name of the success response's schema in `components.schemas`.
    pub response: &'static str,
    /// `application/json` or, for `/metrics`, the Prometheus text format.
    pub content_type: &'static str,
    pub handler: fn() -> MethodRouter<ApiState>,
}

pub const JSON: &str = "application/json";
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

const fn query(name: &'static str, kind: ParamType, description: &'static str) -> Param {
    Param {
        name,
        location: ParamIn::Query,
        kind,
        required: false,
        description,
    }
}

const fn path_id(description: &'static str, kind: ParamType) -> Param {
    Param {
        name: "id",
        location: ParamIn::Path,
        kind,
        required: true,
        description,
    }
}

const LIMIT: Param = query(
    "limit",
    ParamType::Integer,
    "Items per page: 1 to [http] page_size_max (default 500); 50 when absent.",
);
const CURSOR: Param = query(
    "cursor",
    ParamType::String,
    "The `next_cursor` of the previous page, unchanged. Absent: the first page.",
);
const FROM: Param = query(
    "from",
    ParamType::Time,
    "Only what happened at or after this instant: RFC 3339, or a date (UTC midnight).",
);
const TO: Param = query(
    "to",
    ParamType::Time,
    "Only what happened before this instant: RFC 3339 (exclusive), or a date (that whole day included, UTC).",
);
const SOURCE: Param = query(
    "source",
    ParamType::String,
    "A source name, e.g. `zendesk`.",
);
const LOCATION: Param = query("location", ParamType::String, "A location id.");
const CUSTOMER_ID: Param = path_id("A customer id (`cus_...`).", ParamType::String);
const QUARANTINE_ID: Param = path_id("A quarantined row's id.", ParamType::Integer);

pub const INTERACTION_KINDS: &[&str] = &[
    "review",
    "reply",
    "mention",
    "ticket",
    "ticket_comment",
    "survey_response",
];
pub const SENTIMENT_LABELS: &[&str] = &["negative", "neutral", "positive"];
pub const SIGNALS: &[&str] = &["stars", "sentiment", "nps", "outcome"];
pub const CHANGE_STATUSES: &[&str] = &["watch", "confirmed", "incident"];
pub const QUARANTINE_STATUSES: &[&str] = &["open", "replayed", "dismissed"];

/// Every route the API serves. The router and `/openapi.json` are built from this list.
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/healthz",
        scope: None,
        operation_id: "healthz",
        summary: "Liveness: 200 whenever the process serves requests. No token needed.",
        tag: "operations",
        params: &[],
        response: "Health",
        content_type: JSON,
        handler: || get(ops::healthz),
    },
    Route {
        method: Method::Get,
        path: "/readyz",
        scope: None,
        operation_id: "readyz",
        summary: "Readiness: 200 when the store answers and the daemon is not shutting down, 503 otherwise. No token needed.",
        tag: "operations",
        params: &[],
        response: "Health",
        content_type: JSON,
        handler: || get(ops::readyz),
    },
    Route {
        method: Method::Get,
        path: "/metrics",
        scope: Some(Scope::Read),
        operation_id: "metrics",
        summary: "Prometheus metrics (text format 0.0.4): connectors, jobs, throughput, queue depths, HTTP responses.",
        tag: "operations",
        params: &[],
        response: "PrometheusText",
        content_type: PROMETHEUS,
        handler: || get(ops::metrics),
    },
    Route {
        method: Method::Get,
        path: "/openapi.json",
        scope: Some(Scope::Read),
        operation_id: "openapi",
        summary: "This document.",
        tag: "operations",
        params: &[],
        response: "OpenApiDocument",
        content_type: JSON,
        handler: || get(ops::openapi),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/customers",
        scope: Some(Scope::Read),
        operation_id: "listCustomers",
        summary: "Customers by id (paged), or the most active ones first (order=activity, one page).",
        tag: "customers",
        params: &[
            LIMIT,
            CURSOR,
            query(
                "order",
                ParamType::Enum(&["id", "activity"]),
                "`id` (default, paged with `cursor`) or `activity`: most sources and interactions first, one page of `limit`, without filters.",
            ),
            query(
                "source",
                ParamType::String,
                "Only customers with an interaction from this source (order=id).",
            ),
            query(
                "location",
                ParamType::String,
                "Only customers with an interaction at this location (order=id).",
            ),
        ],
        response: "CustomerPage",
        content_type: JSON,
        handler: || get(customers::list),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/customers/lookup",
        scope: Some(Scope::Read),
        operation_id: "lookupCustomer",
        summary: "Find a customer by any identity (email, phone, platform id) or id, as `tideline timeline` does.",
        tag: "customers",
        params: &[Param {
            name: "identity",
            location: ParamIn::Query,
            kind: ParamType::String,
            required: true,
            description: "An email, a phone number (+49...), a platform id (`zendesk_user:42`) or a customer id.",
        }],
        response: "Customer",
        content_type: JSON,
        handler: || get(customers::lookup),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/customers/{id}",
        scope: Some(Scope::Read),
        operation_id: "getCustomer",
        summary: "One customer: identities, sources, contact span, changes, open link suggestions and merges. A merged id answers the customer it was merged into.",
        tag: "customers",
        params: &[CUSTOMER_ID],
        response: "Customer",
        content_type: JSON,
        handler: || get(customers::get),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/customers/{id}/timeline",
        scope: Some(Scope::Read),
        operation_id: "getTimeline",
        summary: "A customer's interactions across sources in time order, with their change points and incidents (the JSON of `tideline timeline`).",
        tag: "customers",
        params: &[CUSTOMER_ID],
        response: "Timeline",
        content_type: JSON,
        handler: || get(customers::timeline),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/interactions",
        scope: Some(Scope::Read),
        operation_id: "listInteractions",
        summary: "Interactions by id, filtered.",
        tag: "interactions",
        params: &[
            LIMIT,
            CURSOR,
            SOURCE,
            LOCATION,
            query("language", ParamType::String, "ISO 639-1 code, e.g. `de`."),
            query(
                "kind",
                ParamType::Enum(INTERACTION_KINDS),
                "The kind of interaction.",
            ),
            query("customer", ParamType::String, "A customer id."),
            query(
                "sentiment",
                ParamType::Enum(SENTIMENT_LABELS),
                "The sentiment label.",
            ),
            query(
                "sentiment_min",
                ParamType::Number,
                "Lowest sentiment score, -1 to 1 (inclusive).",
            ),
            query(
                "sentiment_max",
                ParamType::Number,
                "Highest sentiment score, -1 to 1 (inclusive).",
            ),
            FROM,
            TO,
        ],
        response: "InteractionPage",
        content_type: JSON,
        handler: || get(lists::interactions),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/changes",
        scope: Some(Scope::Read),
        operation_id: "listChanges",
        summary: "Change points and incidents with their evidence, newest stored first.",
        tag: "changes",
        params: &[
            LIMIT,
            CURSOR,
            query(
                "location",
                ParamType::String,
                "Changes of this location's series (all channels).",
            ),
            query(
                "customer",
                ParamType::String,
                "Changes of this customer's series.",
            ),
            query("signal", ParamType::Enum(SIGNALS), "The series' signal."),
            query(
                "status",
                ParamType::Enum(CHANGE_STATUSES),
                "The change's status.",
            ),
            FROM,
            TO,
        ],
        response: "ChangePage",
        content_type: JSON,
        handler: || get(lists::changes),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/changes/{id}",
        scope: Some(Scope::Read),
        operation_id: "getChange",
        summary: "One change point or incident with its evidence.",
        tag: "changes",
        params: &[path_id("A change's id.", ParamType::Integer)],
        response: "Change",
        content_type: JSON,
        handler: || get(lists::change),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/metrics/locations",
        scope: Some(Scope::Read),
        operation_id: "locationMetrics",
        summary: "Per-location indicators (stars, NPS, CSAT, CES, sentiment, reply rate), each with its sample size.",
        tag: "indicators",
        params: &[],
        response: "LocationList",
        content_type: JSON,
        handler: || get(lists::locations),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/sources",
        scope: Some(Scope::Read),
        operation_id: "listSources",
        summary: "Every source: interactions stored, runs, failed runs, the last run, the last success, the cursor's last move, open quarantine.",
        tag: "operations",
        params: &[],
        response: "SourceList",
        content_type: JSON,
        handler: || get(lists::sources),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/crm",
        scope: Some(Scope::Read),
        operation_id: "listCrmSinks",
        summary: "Each CRM sink's outbox: pending, due and parked items, records held, delivered and skipped counts, the last run and the error it stopped on; with the oldest parked items and why the CRM refused them.",
        tag: "operations",
        params: &[],
        response: "CrmSinkList",
        content_type: JSON,
        handler: || get(lists::crm),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/quarantine",
        scope: Some(Scope::Read),
        operation_id: "listQuarantine",
        summary: "Rows that could not be imported, with the place, the field, the expected form and the raw text.",
        tag: "quarantine",
        params: &[
            LIMIT,
            CURSOR,
            query(
                "status",
                ParamType::Enum(QUARANTINE_STATUSES),
                "Only rows with this status (default: all).",
            ),
            SOURCE,
        ],
        response: "QuarantinePage",
        content_type: JSON,
        handler: || get(lists::quarantine),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/quarantine/{id}/dismiss",
        scope: Some(Scope::Admin),
        operation_id: "dismissQuarantined",
        summary: "Dismiss a quarantined row (it stays stored, marked dismissed). Admin scope.",
        tag: "quarantine",
        params: &[QUARANTINE_ID],
        response: "QuarantineStatus",
        content_type: JSON,
        handler: || post(lists::dismiss),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/quarantine/{id}/reopen",
        scope: Some(Scope::Admin),
        operation_id: "reopenQuarantined",
        summary: "Reopen a dismissed quarantined row. Admin scope.",
        tag: "quarantine",
        params: &[QUARANTINE_ID],
        response: "QuarantineStatus",
        content_type: JSON,
        handler: || post(lists::reopen),
    },
];

/// The router over [`ROUTES`], with token checks, response counting and security
/// headers.
pub fn router(state: ApiState) -> Router {
    let mut r = Router::new();
    for route in ROUTES {
        r = r.route(
            route.path,
            (route.handler)().route_layer(from_fn_with_state((state.clone(), route), guard)),
        );
    }
    // The dashboard's HTML pages: outside ROUTES (not JSON, not in the OpenAPI document),
    // with their own session check and security headers.
    r = r.merge(crate::outputs::dashboard::router(state.clone()));
    r.fallback(|| async {
        ApiError::NotFound("no such route; GET /openapi.json lists every route".into())
    })
    .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
    .layer(from_fn_with_state(state.metrics.clone(), count))
    .layer(map_response(security_headers))
    .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes; then `/readyz` turns 503 and
/// requests in flight finish before this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let ready = state.ready.clone();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tokens = state.tokens.len(), "Serving the HTTP API.");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.store(false, Ordering::SeqCst);
            tracing::info!("HTTP API draining requests in flight.");
        })
        .await
        .map_err(HttpError::Serve)
}

/// Refuses a configuration that would serve the API beyond this machine with no token.
pub fn check_bind(config: &HttpConfig) -> Result<(), HttpError> {
    match config.unprotected_bind() {
        Some(problem) => Err(HttpError::Unprotected(problem)),
        None => Ok(()),
    }
}

/// [`check_bind`], then listens on the configured address.
pub async fn bind(config: &HttpConfig) -> Result<tokio::net::TcpListener, HttpError> {
    check_bind(config)?;
    tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| HttpError::Bind {
            addr: config.bind,
            source,
        })
}

/// Per route: the token and its scope, then the query parameters against the documented
/// ones.
async fn guard(
    State((state, route)): State<(ApiState, &'static Route)>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(scope) = route.scope else {
        return next.run(req).await;
    };
    match state.tokens.authorize(req.headers(), scope) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
        }
        Err(e) => return e.into_response(),
    }
    let params = match Params::parse(req.uri().query().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let known: Vec<&str> = route
        .params
        .iter()
        .filter(|p| p.location == ParamIn::Query)
        .map(|p| p.name)
        .collect();
    if let Some(unknown) = params.names().find(|n| !known.contains(n)) {
        let expected = if known.is_empty() {
            "no query parameters on this route".to_string()
        } else {
            format!("one of {}", known.join(", "))
        };
        return ApiError::BadRequest(format!(
            "unknown query parameter `{}`; expected {expected}",
            crate::outputs::one_line(unknown, 40)
        ))
        .into_response();
    }
    next.run(req).await
}

/// Counts every response by route template (never the raw path, so ids do not become
/// label values) and status.
async fn count(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let route = route.as_deref().unwrap_or("unmatched");
    let status = response.status().as_u16();
    metrics.http_request(route, status);
    tracing::debug!(
        route,
        status,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "HTTP request."
    );
    response
}

/// The API's security headers. A response that set its own policy (the dashboard's pages)
/// keeps it.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    response
}
