//! `/api/v1/interactions`, `/changes`, `/metrics/locations`, `/sources`, `/quarantine`.

use super::error::{ApiError, ApiResult};
use super::params::{Page, Params};
use super::{
    ApiState, CHANGE_STATUSES, INTERACTION_KINDS, QUARANTINE_STATUSES, SENTIMENT_LABELS, SIGNALS,
};
use crate::outputs::rfc3339;
use crate::outputs::sources::{self, SourceReport};
use crate::outputs::summary::{self, LocationFigures};
use crate::outputs::timeline::InteractionOut;
use crate::store::{
    ChangePageFilter, InteractionFilter, QuarantineFilter, QuarantineItem, StoredChange,
    StoredInteraction,
};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

/// An interaction in a list: the timeline's fields plus whose it is.
#[derive(Debug, Serialize)]
pub struct InteractionItem {
    #[serde(flatten)]
    pub interaction: InteractionOut,
    pub customer_id: Option<String>,
    pub sentiment_label: Option<&'static str>,
    pub revision: i64,
}

impl From<StoredInteraction> for InteractionItem {
    fn from(s: StoredInteraction) -> Self {
        InteractionItem {
            customer_id: s.customer_id.clone(),
            sentiment_label: s.interaction.sentiment.as_ref().map(|x| x.label.as_str()),
            revision: s.revision,
            interaction: InteractionOut::from(s),
        }
    }
}

/// A stored change with its instants also in RFC 3339.
#[derive(Debug, Serialize)]
pub struct ChangeItem {
    #[serde(flatten)]
    pub change: StoredChange,
    pub occurred_at: String,
    pub detected_at: String,
}

impl From<StoredChange> for ChangeItem {
    fn from(c: StoredChange) -> Self {
        ChangeItem {
            occurred_at: rfc3339(c.change.occurred_at_ms),
            detected_at: rfc3339(c.change.detected_at_ms),
            change: c,
        }
    }
}

/// A list that is not paged (few items).
#[derive(Debug, Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
}

pub async fn interactions(
    State(s): State<ApiState>,
    p: Params,
) -> ApiResult<Json<Page<InteractionItem>>> {
    let limit = p.limit(s.page_size_max)?;
    let (from_ms, to_ms) = p.period()?;
    let sentiment_min = p.number("sentiment_min", -1.0, 1.0)?;
    let sentiment_max = p.number("sentiment_max", -1.0, 1.0)?;
    if let (Some(lo), Some(hi)) = (sentiment_min, sentiment_max)
        && lo > hi
    {
        return Err(ApiError::param(
            "sentiment_max",
            "is below `sentiment_min`",
            "a number at least `sentiment_min`",
        ));
    }
    let filter = InteractionFilter {
        after_id: p.id_cursor('i')?.unwrap_or(0),
        limit: limit + 1,
        source: p.text("source")?,
        location: p.text("location")?,
        language: p.text("language")?,
        kind: p.one_of("kind", INTERACTION_KINDS)?,
        customer: p.text("customer")?,
        sentiment_label: p.one_of("sentiment", SENTIMENT_LABELS)?,
        sentiment_min,
        sentiment_max,
        from_ms,
        to_ms,
    };
    let rows = s.store.interactions_page(&filter).await?;
    Ok(Json(
        Page::from_rows(rows, limit, 'i', |r| r.id.to_string()).map(InteractionItem::from),
    ))
}

pub async fn changes(State(s): State<ApiState>, p: Params) -> ApiResult<Json<Page<ChangeItem>>> {
    let limit = p.limit(s.page_size_max)?;
    let (from_ms, to_ms) = p.period()?;
    let filter = ChangePageFilter {
        before_id: p.id_cursor('g')?,
        limit: limit + 1,
        location: p.text("location")?,
        customer: p.text("customer")?,
        signal: p.one_of("signal", SIGNALS)?,
        status: p.one_of("status", CHANGE_STATUSES)?,
        from_ms,
        to_ms,
    };
    let rows = s.store.changes_page(&filter).await?;
    Ok(Json(
        Page::from_rows(rows, limit, 'g', |c| c.id.to_string()).map(ChangeItem::from),
    ))
}

fn id_of(raw: &str, what: &str) -> ApiResult<i64> {
    raw.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "path parameter `id`: `{}` is not {what} id; expected a positive integer",
            crate::outputs::one_line(raw, 40)
        ))
    })
}

pub async fn change(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ChangeItem>> {
    let id = id_of(&id, "a change")?;
    s.store
        .change(id)
        .await?
        .map(|c| Json(ChangeItem::from(c)))
        .ok_or_else(|| {
            ApiError::NotFound(
                "no change has this id (an erasure, a split or a rebuilt series removes changes); fix: list them with GET /api/v1/changes".into(),
            )
        })
}

pub async fn locations(State(s): State<ApiState>) -> ApiResult<Json<List<LocationFigures>>> {
    let rows = s.store.location_summaries().await?;
    let locations = s.store.locations().await?;
    Ok(Json(List {
        items: summary::figures(&rows, &locations),
    }))
}

pub async fn sources(State(s): State<ApiState>) -> ApiResult<Json<List<SourceReport>>> {
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(List {
        items: sources::report(s.store.as_ref(), &s.config, now).await?,
    }))
}

/// A CRM sink's outbox with its first parked items.
#[derive(Debug, Serialize)]
pub struct CrmSinkReport {
    #[serde(flatten)]
    pub status: crate::store::CrmSinkStatus,
    pub parked_items: Vec<crate::store::CrmParked>,
}

pub async fn crm(State(s): State<ApiState>) -> ApiResult<Json<List<CrmSinkReport>>> {
    let mut items = Vec::new();
    for status in s.store.crm_status().await? {
        let parked_items = if status.parked > 0 {
            s.store.crm_parked(Some(&status.sink), 20).await?
        } else {
            Vec::new()
        };
        items.push(CrmSinkReport {
            status,
            parked_items,
        });
    }
    Ok(Json(List { items }))
}

pub async fn quarantine(
    State(s): State<ApiState>,
    p: Params,
) -> ApiResult<Json<Page<QuarantineItem>>> {
    let limit = p.limit(s.page_size_max)?;
    let filter = QuarantineFilter {
        after_id: p.id_cursor('q')?.unwrap_or(0),
        limit: limit + 1,
        status: p.one_of("status", QUARANTINE_STATUSES)?,
        source: p.text("source")?,
    };
    let rows = s.store.quarantine_page(&filter).await?;
    Ok(Json(Page::from_rows(rows, limit, 'q', |q| {
        q.id.to_string()
    })))
}

#[derive(Debug, Serialize)]
pub struct QuarantineStatus {
    pub id: i64,
    pub status: &'static str,
}

async fn set_status(
    s: &ApiState,
    raw: &str,
    status: &'static str,
) -> ApiResult<Json<QuarantineStatus>> {
    let id = id_of(raw, "a quarantined row's")?;
    if s.store.set_quarantine_status(&[id], status).await? == 0 {
        return Err(ApiError::NotFound(
            "no quarantined row has this id; fix: list them with GET /api/v1/quarantine".into(),
        ));
    }
    tracing::info!(
        id,
        status,
        "Quarantined row status set through the HTTP API."
    );
    Ok(Json(QuarantineStatus { id, status }))
}

pub async fn dismiss(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<QuarantineStatus>> {
    set_status(&s, &id, "dismissed").await
}

pub async fn reopen(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<QuarantineStatus>> {
    set_status(&s, &id, "open").await
}
