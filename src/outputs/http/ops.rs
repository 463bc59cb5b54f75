//! `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

use super::error::{ApiError, ApiResult};
use super::{ApiState, PROMETHEUS};
use crate::metrics::QueueDepths;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long `/readyz` waits for the store before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(s): State<ApiState>) -> ApiResult<Json<Value>> {
    if !s.ready.load(Ordering::SeqCst) {
        return Err(ApiError::Unavailable(
            "not ready: the daemon is starting or shutting down".into(),
        ));
    }
    match tokio::time::timeout(READY_TIMEOUT, s.store.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Readiness check: the store did not answer.");
            Err(ApiError::Unavailable(
                "not ready: the store does not answer".into(),
            ))
        }
        Err(_) => Err(ApiError::Unavailable(
            "not ready: the store did not answer in time".into(),
        )),
    }
}

pub async fn metrics(State(s): State<ApiState>) -> ApiResult<Response> {
    let queues = QueueDepths::read(s.store.as_ref()).await.map_err(|e| {
        tracing::warn!(error = %e, "Metrics: the queue depths could not be read.");
        ApiError::Unavailable("the store does not answer; queue depths are unknown".into())
    })?;
    let mut r = s.metrics.render(&queues).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS));
    Ok(r)
}

pub async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}
