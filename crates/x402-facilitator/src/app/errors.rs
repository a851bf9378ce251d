//! Answers to requests that are not requests: 4xx in JSON with the field at fault, 413
//! over the body limit, 415 for a body that is not JSON, 429 with `Retry-After`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::MAX_BODY_BYTES;

/// A request that is not a request: 4xx with `{"error", "field"}`.
#[derive(Debug)]
pub(super) struct ClientError {
    pub(super) status: StatusCode,
    pub(super) error: String,
    pub(super) field: Option<String>,
    /// Seconds for `Retry-After` (429).
    pub(super) retry_after: Option<u64>,
}

impl IntoResponse for ClientError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.error, "field": self.field})),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub(super) fn client_error(
    status: StatusCode,
    error: String,
    field: Option<String>,
) -> ClientError {
    ClientError {
        status,
        error,
        field,
        retry_after: None,
    }
}

/// `/verify` and `/settle` read JSON only: a body sent as anything else (a form, plain
/// text, no type at all) is refused with 415 instead of being guessed at.
pub(super) fn json_content_type(headers: &HeaderMap) -> Result<(), ClientError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(()),
        other => Err(client_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/json (got {})",
                other.map_or("none".to_owned(), |t| format!("{t:?}"))
            ),
            None,
        )),
    }
}

/// Reads the body, or answers 413/400 in JSON.
pub(super) fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ClientError> {
    match body {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(client_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            None,
        )),
        Err(rejection) => Err(client_error(
            StatusCode::BAD_REQUEST,
            format!("cannot read request body: {rejection}"),
            None,
        )),
    }
}

/// The store behind a read or write is down: 503 with `Retry-After`, and a warning naming
/// `context` (what failed). Never the caller's fault, never a 500.
pub(super) fn ledger_down(context: &str, verb: &str, error: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %error, "{context}: ledger unavailable");
    ClientError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        error: format!("the facilitator cannot {verb} its ledger right now; retry later"),
        field: None,
        retry_after: Some(1),
    }
    .into_response()
}
