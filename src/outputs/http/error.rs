//! Errors of the HTTP API: a stable code, a message that says what to do, and nothing of
//! the internals. A store failure is logged with its cause and answered with a generic
//! message, so SQL, file paths and driver text never reach a client.

use crate::config::Scope;
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The errors the daemon's server itself can hit (binding, serving).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The API would be reachable from other machines with nothing protecting it.
    #[error("{0}")]
    Unprotected(String),
    #[error(
        "cannot listen on {addr} for the HTTP API: {source}; fix: pick a free port in [http] bind, or stop the process that holds it"
    )]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP API stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// An answer other than success, with its stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or one that is not configured.
    #[error(
        "a valid bearer token is required; fix: send `Authorization: Bearer <token>` with a token from [[http.token]]"
    )]
    Unauthorized { invalid: bool },
    #[error("this route needs a token with the `{}` scope", .0.as_str())]
    Forbidden(Scope),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(
        "this route does not take that method; GET /openapi.json lists every route with its method"
    )]
    MethodNotAllowed,
    /// A store failure: logged with its cause, answered without it.
    #[error("internal error")]
    Internal(#[from] StoreError),
}

impl ApiError {
    /// A query parameter that is not in the expected form.
    pub fn param(name: &str, problem: impl std::fmt::Display, expected: &str) -> Self {
        ApiError::BadRequest(format!(
            "query parameter `{name}`: {problem}; expected {expected}"
        ))
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<crate::outputs::timeline::TimelineError> for ApiError {
    fn from(e: crate::outputs::timeline::TimelineError) -> Self {
        use crate::outputs::timeline::TimelineError;
        match e {
            TimelineError::NotFound(_) => ApiError::NotFound(
                "no customer is known by that identity; fix: give an email, a phone number in international form (+49...), a platform id (zendesk_user:42) or a customer id (cus_...)".into(),
            ),
            TimelineError::Store(e) => ApiError::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "A request failed in the store; answered 500 without the cause.");
                "the request could not be completed; the daemon's log has the cause".to_string()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({"error": {"code": self.code(), "message": message}});
        let mut response = (self.status(), Json(body)).into_response();
        let challenge = match &self {
            ApiError::Unauthorized { invalid: false } => Some("Bearer realm=\"tideline\""),
            ApiError::Unauthorized { invalid: true } => {
                Some("Bearer realm=\"tideline\", error=\"invalid_token\"")
            }
            ApiError::Forbidden(Scope::Admin) => {
                Some("Bearer realm=\"tideline\", error=\"insufficient_scope\", scope=\"admin\"")
            }
            ApiError::Forbidden(Scope::Read) => {
                Some("Bearer realm=\"tideline\", error=\"insufficient_scope\", scope=\"read\"")
            }
            _ => None,
        };
        if let Some(c) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
