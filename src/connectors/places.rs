//! Google Places API (New), Place Details: the public rating and review count of a
//! competitor's place, fetched when a report is built. Fetch only: nothing here is stored
//! (the Places terms allow keeping the place id alone, which lives in the configuration).
//!
//! `GET {base}/v1/places/{place_id}` with `X-Goog-Api-Key` and a field mask of
//! `id,displayName,rating,userRatingCount`. Errors come as
//! `{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}`; a 429
//! (`RESOURCE_EXHAUSTED`) is waited out by [`super::http`] like every vendor's.

use super::ConnectorError;
use super::http::{FetchContext, Http};
use crate::config::PlacesSettings;
use serde::Deserialize;

const FIELD_MASK: &str = "id,displayName,rating,userRatingCount";

/// What the report shows of one place.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceFigures {
    pub id: String,
    /// Google's name of the place, when it sent one.
    pub display_name: Option<String>,
    /// The mean rating, 1 to 5 (absent for a place without ratings).
    pub rating: Option<f64>,
    /// How many ratings the mean is of.
    pub rating_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Place {
    id: Option<String>,
    display_name: Option<LocalizedText>,
    rating: Option<f64>,
    user_rating_count: Option<u64>,
}

#[derive(Deserialize)]
struct LocalizedText {
    text: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    status: Option<String>,
}

/// A Places client: the API key, the base URL and the shared retry loop.
pub struct Places {
    http: Http,
    settings: PlacesSettings,
}

impl Places {
    pub fn new(settings: &PlacesSettings) -> Result<Places, ConnectorError> {
        Ok(Places {
            http: Http::new(&settings.http)?,
            settings: settings.clone(),
        })
    }

    /// The figures of one place. `place_id` is checked by the configuration
    /// (letters, digits, `-`, `_`), so it goes into the path as it is.
    pub async fn place(
        &self,
        place_id: &str,
        cx: &FetchContext,
    ) -> Result<PlaceFigures, ConnectorError> {
        let url = format!("{}/v1/places/{place_id}", self.settings.base_url);
        let label = format!("places {place_id}");
        let key = self.settings.api_key.clone();
        let authorize = move |r: reqwest::RequestBuilder| {
            r.header("X-Goog-Api-Key", key.expose())
                .header("X-Goog-FieldMask", FIELD_MASK)
        };
        let resp = self
            .http
            .get(&url, &label, cx, &authorize, &|_| None)
            .await
            .map_err(explain)?;
        let place: Place =
            serde_json::from_str(&resp.body).map_err(|e| ConnectorError::Payload {
                request: label.clone(),
                message: e.to_string(),
            })?;
        if let Some(r) = place.rating
            && !(r.is_finite() && (0.0..=5.0).contains(&r))
        {
            return Err(ConnectorError::Payload {
                request: label,
                message: format!("rating {r} is not between 0 and 5"),
            });
        }
        Ok(PlaceFigures {
            id: place.id.unwrap_or_else(|| place_id.to_string()),
            display_name: place.display_name.and_then(|d| d.text),
            rating: place.rating,
            rating_count: place.user_rating_count,
        })
    }
}

/// An HTTP error whose body is Google's error object says its status and message
/// instead of the raw body.
fn explain(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Http {
            request,
            status,
            message,
        } => {
            let message = match serde_json::from_str::<ErrorBody>(&message) {
                Ok(b) => match (b.error.status, b.error.message) {
                    (Some(s), Some(m)) => format!("{s}: {m}"),
                    (Some(s), None) => s,
                    (None, Some(m)) => m,
                    (None, None) => message,
                },
                Err(_) => message,
            };
            ConnectorError::Http {
                request,
                status,
                message,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_errors_read_as_their_status_and_message() {
        let e = explain(ConnectorError::Http {
            request: "places x".into(),
            status: 404,
            message:
                r#"{"error": {"code": 404, "message": "Place not found.", "status": "NOT_FOUND"}}"#
                    .into(),
        });
        assert_eq!(
            e.to_string(),
            "places x: HTTP 404: NOT_FOUND: Place not found."
        );
        let raw = explain(ConnectorError::Http {
            request: "places x".into(),
            status: 502,
            message: "<html>bad gateway</html>".into(),
        });
        assert!(raw.to_string().contains("<html>bad gateway</html>"));
    }
}
