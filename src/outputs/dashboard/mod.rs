//! The dashboard: server-rendered HTML pages under `/dashboard`, served by the daemon's
//! HTTP router beside the JSON API. Portfolio (`/dashboard`), a location
//! (`/dashboard/locations/{id}`), a customer's timeline (`/dashboard/customers/{id}`),
//! sources status (`/dashboard/sources`) and the quarantine (`/dashboard/quarantine`).
//!
//! Login by token (`/dashboard/login`): any API token opens a session ([`session`]); pages
//! without a live session redirect to the login form. The login and logout posts pass only
//! from this server's own origin (CSRF); the cookie is `HttpOnly; SameSite=Strict`.
//! Pages carry `Content-Security-Policy: default-src 'self'; frame-ancestors 'none'` and no
//! script at all; the one asset, the stylesheet, is compiled into the binary.
//!
//! The pages read the store through the same outputs as the CLI and the API (the report,
//! timelines, sources status, the quarantine); nothing here writes.

pub mod pages;
pub mod session;

pub use session::Sessions;

use crate::outputs::http::ApiState;
use crate::outputs::indicators::{IndicatorsError, Scope, parse_date};
use crate::outputs::report::{self, ReportRequest, html::Links};
use crate::pipeline::indicators::PeriodSpec;
use crate::store::{CustomerFilter, InteractionFilter, QuarantineFilter, StoreError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn_with_state, map_response};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// The dashboard's Content-Security-Policy.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
/// Periods shown when the request names none: the last 90 days against the 90 before.
pub const DEFAULT_PERIOD: PeriodSpec = PeriodSpec::LastDays(90);
/// Customers listed on a location page.
const CUSTOMERS_LIMIT: i64 = 50;
/// Quarantined rows listed.
const QUARANTINE_LIMIT: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<IndicatorsError> for DashboardError {
    fn from(e: IndicatorsError) -> Self {
        match e {
            IndicatorsError::Store(s) => DashboardError::Store(s),
            IndicatorsError::UnknownLocation(_) => {
                DashboardError::NotFound("No location has this id.".into())
            }
            IndicatorsError::BadPeriod(_) => DashboardError::BadRequest(
                "That is not a period; use last-<N>d (e.g. last-30d), week, month, quarter or year."
                    .into(),
            ),
        }
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            DashboardError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m.clone()),
            DashboardError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m.clone()),
            DashboardError::Store(e) => {
                tracing::error!(error = %e, "Dashboard page failed on the store.");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Store unavailable",
                    "The store did not answer; the daemon's log has the cause. Try again later."
                        .to_string(),
                )
            }
        };
        (status, Html(pages::error(title, &message))).into_response()
    }
}

type PageResult = Result<Html<String>, DashboardError>;

/// The dashboard's routes, to be merged into the API router.
pub fn router(state: ApiState) -> Router<ApiState> {
    let pages = Router::new()
        .route("/dashboard", get(portfolio))
        .route("/dashboard/locations/{id}", get(location))
        .route("/dashboard/customers/{id}", get(customer))
        .route("/dashboard/sources", get(sources))
        .route("/dashboard/quarantine", get(quarantine))
        .route_layer(from_fn_with_state(state, require_session));
    Router::new()
        // The daemon's address in a browser leads to the dashboard (or its login form).
        .route("/", get(|| async { redirect("/dashboard") }))
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", axum::routing::post(logout))
        .route("/dashboard/static/dashboard.css", get(stylesheet))
        .merge(pages)
        .layer(map_response(page_headers))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

async fn require_session(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    match s.sessions.check(req.headers(), now_ms()) {
        Some(caller) => {
            let mut req = req;
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        None => redirect("/dashboard/login"),
    }
}

async fn page_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // `same-origin`, not `no-referrer`: with no referrer, browsers send `Origin: null` on
    // form posts and the CSRF check could not tell our own forms from others.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        pages::stylesheet(),
    )
        .into_response()
}

async fn login_form(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if s.sessions.check(&headers, now_ms()).is_some() {
        return redirect("/dashboard");
    }
    Html(pages::login(false)).into_response()
}

/// The token from a form body (`token=...`, URL-encoded).
fn form_token(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let url = reqwest::Url::parse(&format!("http://form.invalid/?{body}")).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
}

async fn login(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    if !session::same_origin(&headers) {
        return forbidden_origin();
    }
    let caller = form_token(&body).and_then(|t| s.tokens.verify(&t));
    match caller {
        Some(caller) => {
            tracing::info!(token = %caller.name, "Dashboard login.");
            let value = s.sessions.open(caller, now_ms());
            let mut r = redirect("/dashboard");
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&value)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        None => {
            tracing::warn!("Dashboard login refused: the token matches none configured.");
            (StatusCode::UNAUTHORIZED, Html(pages::login(true))).into_response()
        }
    }
}

fn forbidden_origin() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(pages::error(
            "Refused",
            "This form was not posted from this dashboard (its Origin header is missing or another site's).",
        )),
    )
        .into_response()
}

async fn logout(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if !session::same_origin(&headers) {
        return forbidden_origin();
    }
    s.sessions.close(&headers);
    let mut r = redirect("/dashboard/login");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The query's pairs (the dashboard's pages take few, all optional).
fn query(uri: &Uri) -> Vec<(String, String)> {
    let q = uri.query().unwrap_or("");
    reqwest::Url::parse(&format!("http://q.invalid/?{q}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// The period a page shows (`from` and `to` dates, or `period=last-30d`...), and the query
/// string that keeps it on the page's links (made only of checked dates and names).
fn period(uri: &Uri) -> Result<(PeriodSpec, String), DashboardError> {
    let q = query(uri);
    let get = |k: &str| {
        q.iter()
            .find(|(n, v)| n == k && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
    };
    match (get("from"), get("to"), get("period")) {
        (Some(a), Some(b), _) => {
            let bad = || {
                DashboardError::BadRequest(
                    "`from` and `to` must be dates (YYYY-MM-DD), `to` not before `from`.".into(),
                )
            };
            let (a, b) = (
                parse_date(&a).ok_or_else(bad)?,
                parse_date(&b).ok_or_else(bad)?,
            );
            if b < a {
                return Err(bad());
            }
            Ok((PeriodSpec::Dates(a, b), format!("?from={a}&to={b}")))
        }
        (None, None, Some(p)) => {
            let spec = PeriodSpec::parse(&p).ok_or(IndicatorsError::BadPeriod(p.clone()))?;
            Ok((spec, format!("?period={}", pages::path_segment(&p))))
        }
        (None, None, None) => Ok((DEFAULT_PERIOD, String::new())),
        _ => Err(DashboardError::BadRequest(
            "Give both `from` and `to`, or neither.".into(),
        )),
    }
}

async fn build(
    s: &ApiState,
    scope: Scope,
    period: PeriodSpec,
) -> Result<report::Report, DashboardError> {
    Ok(report::build(
        s.store.as_ref(),
        &s.config,
        &ReportRequest {
            scope,
            period,
            waiting_limit: report::WAITING_LIMIT,
        },
        now_ms(),
    )
    .await?)
}

async fn portfolio(State(s): State<ApiState>, uri: Uri) -> PageResult {
    let (period, qs) = period(&uri)?;
    let r = build(&s, Scope::AllLocations, period).await?;
    Ok(Html(pages::portfolio(&r, &qs)))
}

/// Whether an id is one a customer can have (`cus_` and hex), before it goes into a link.
fn customer_id_ok(id: &str) -> bool {
    id.starts_with("cus_")
        && id.len() <= 80
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn location(State(s): State<ApiState>, Path(id): Path<String>, uri: Uri) -> PageResult {
    if !s.config.locations.iter().any(|l| l.id == id) {
        return Err(DashboardError::NotFound("No location has this id.".into()));
    }
    let (period, qs) = period(&uri)?;
    let r = build(&s, Scope::Location(id.clone()), period).await?;
    let l = r
        .locations
        .first()
        .ok_or_else(|| DashboardError::NotFound("No location has this id.".into()))?;
    // Who wrote each piece of evidence and each waiting review, for links to timelines.
    let mut ids: Vec<i64> = l.waiting.iter().map(|w| w.id).collect();
    for c in &l.changes {
        if let Some(items) = c.change.evidence["interactions"].as_array() {
            ids.extend(items.iter().take(5).filter_map(|i| i["id"].as_i64()));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let mut links = Links::default();
    for i in ids {
        let found = s
            .store
            .interactions_page(&InteractionFilter {
                after_id: i - 1,
                limit: 1,
                ..Default::default()
            })
            .await?;
        if let Some(c) = found
            .into_iter()
            .find(|x| x.id == i)
            .and_then(|x| x.customer_id)
            .filter(|c| customer_id_ok(c))
        {
            links.customer_of.insert(i, pages::customer_href(&c, &qs));
        }
    }
    let customers = s
        .store
        .customers_page(&CustomerFilter {
            after: None,
            limit: CUSTOMERS_LIMIT,
            source: None,
            location: Some(id),
        })
        .await?;
    let customers: Vec<_> = customers
        .into_iter()
        .filter(|c| customer_id_ok(&c.customer_id))
        .collect();
    Ok(Html(pages::location(l, &customers, &links, &qs)))
}

async fn customer(State(s): State<ApiState>, Path(id): Path<String>, uri: Uri) -> PageResult {
    let none = || DashboardError::NotFound("No customer has this id.".into());
    if !customer_id_ok(&id) {
        return Err(none());
    }
    let (_, qs) = period(&uri)?;
    let t = crate::outputs::timeline::for_customer(s.store.as_ref(), &id)
        .await?
        .ok_or_else(none)?;
    let name = s
        .store
        .customer(&t.customer_id)
        .await?
        .and_then(|c| c.display_name);
    Ok(Html(pages::timeline(&t, name.as_deref(), &qs)))
}

async fn sources(State(s): State<ApiState>) -> PageResult {
    let list = crate::outputs::sources::report(s.store.as_ref(), &s.config, now_ms()).await?;
    Ok(Html(pages::sources(&list)))
}

async fn quarantine(State(s): State<ApiState>, uri: Uri) -> PageResult {
    let q = query(&uri);
    let status = q
        .iter()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v.as_str())
        .unwrap_or("open");
    let status = ["open", "dismissed", "replayed"]
        .into_iter()
        .find(|s| *s == status)
        .ok_or_else(|| {
            DashboardError::BadRequest("`status` is open, dismissed or replayed.".into())
        })?;
    let mut items = s
        .store
        .quarantine_page(&QuarantineFilter {
            after_id: 0,
            limit: QUARANTINE_LIMIT + 1,
            status: Some(status.to_string()),
            source: None,
        })
        .await?;
    let more = items.len() as i64 > QUARANTINE_LIMIT;
    items.truncate(QUARANTINE_LIMIT as usize);
    Ok(Html(pages::quarantine(&items, status, more)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_tokens_and_periods() {
        assert_eq!(
            form_token(b"token=abc%2B%20d&x=1").as_deref(),
            Some("abc+ d")
        );
        assert_eq!(form_token(b"x=1"), None);
        let uri: Uri = "/dashboard?from=2026-01-01&to=2026-01-31".parse().unwrap();
        let (p, qs) = period(&uri).unwrap();
        assert!(matches!(p, PeriodSpec::Dates(..)));
        assert_eq!(qs, "?from=2026-01-01&to=2026-01-31");
        let bad: Uri = "/dashboard?from=2026-01-31&to=2026-01-01".parse().unwrap();
        assert!(period(&bad).is_err());
        let bad: Uri = "/dashboard?from=%3Cscript%3E&to=x".parse().unwrap();
        assert!(period(&bad).is_err());
        assert!(customer_id_ok("cus_0a1b"));
        assert!(!customer_id_ok("cus_\"><x"));
    }
}
