//! `/api/v1/customers...`: the list, one customer, a timeline, and a lookup by identity.
//! The shapes are those of `tideline customers show` and `tideline timeline --format json`.

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::params::{Page, Params};
use crate::outputs::customer::{self, CustomerView};
use crate::outputs::timeline::{self, Timeline, TimelineError};
use crate::store::{CustomerActivity, CustomerFilter};
use axum::Json;
use axum::extract::{Path, State};

fn no_customer() -> ApiError {
    ApiError::NotFound(
        "no customer has this id; fix: use an id from GET /api/v1/customers, or find one with GET /api/v1/customers/lookup?identity=..."
            .into(),
    )
}

pub async fn list(State(s): State<ApiState>, p: Params) -> ApiResult<Json<Page<CustomerActivity>>> {
    let limit = p.limit(s.page_size_max)?;
    let order = p.one_of("order", &["id", "activity"])?;
    let source = p.text("source")?;
    let location = p.text("location")?;
    if order.as_deref() == Some("activity") {
        if p.has("cursor") || source.is_some() || location.is_some() {
            return Err(ApiError::BadRequest(
                "query parameter `order`: `activity` returns one page of the most active customers and takes no `cursor`, `source` or `location`; expected order=id to page or filter".into(),
            ));
        }
        let items = s.store.busiest_customers(limit).await?;
        return Ok(Json(Page {
            items,
            next_cursor: None,
        }));
    }
    let rows = s
        .store
        .customers_page(&CustomerFilter {
            after: p.cursor('c')?,
            limit: limit + 1,
            source,
            location,
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, 'c', |c| {
        c.customer_id.clone()
    })))
}

pub async fn get(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerView>> {
    if !id.starts_with("cus_") {
        return Err(no_customer());
    }
    match customer::show(s.store.as_ref(), &id, &s.phone_countries).await {
        Ok(v) => Ok(Json(v)),
        Err(TimelineError::NotFound(_)) => Err(no_customer()),
        Err(e) => Err(e.into()),
    }
}

pub async fn timeline(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Timeline>> {
    if !id.starts_with("cus_") {
        return Err(no_customer());
    }
    timeline::for_customer(s.store.as_ref(), &id)
        .await?
        .map(Json)
        .ok_or_else(no_customer)
}

pub async fn lookup(State(s): State<ApiState>, p: Params) -> ApiResult<Json<CustomerView>> {
    let identity = p.text("identity")?.ok_or_else(|| {
        ApiError::param(
            "identity",
            "is missing",
            "an email, a phone number (+49...), a platform id (zendesk_user:42) or a customer id (cus_...)",
        )
    })?;
    Ok(Json(
        customer::show(s.store.as_ref(), &identity, &s.phone_countries).await?,
    ))
}
