//! The answers a paid route gives besides the handler's own: 402 (how to pay, or why a
//! payment was refused), 400 (a payment header that cannot be read), 503/504 (the
//! facilitator's trouble), and the handler's answer with the settlement header.

use axum::body::Body;
use axum::http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::response::Response;
use x402_protocol::headers;
use x402_protocol::{v1, v2};

use crate::paywall::Paywall;

/// The protocol version a client showed by the header it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spoken {
    /// No payment header yet: answer so that both kinds of client understand.
    Unknown,
    /// `X-PAYMENT`.
    V1,
    /// `PAYMENT-SIGNATURE`.
    V2,
}

/// How to pay, with `error` saying why this answer is not the content.
pub(crate) fn payment_required(
    paywall: &Paywall,
    resource: &str,
    status: StatusCode,
    error: &str,
    spoken: Spoken,
) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store");
    // The v1 body for a v1 client, for one that has not said yet, and for a v2 client of a
    // route that takes v1 only (it learns what the route takes).
    let v1 = (paywall.versions.v1 && (spoken != Spoken::V2 || !paywall.versions.v2))
        .then(|| paywall.payment_required_v1(resource, error))
        .filter(|required| !required.accepts.is_empty());
    let v2_header = paywall.versions.v2 && spoken != Spoken::V1;
    let v2 = (v2_header || v1.is_none()).then(|| paywall.payment_required_v2(resource, error));
    if let Some(required) = v2.as_ref().filter(|_| v2_header) {
        if let Some(value) = header_value(headers::encode_payment_required(required)) {
            builder = builder.header(headers::PAYMENT_REQUIRED, value);
        }
    }
    let body = match (&v1, &v2) {
        (Some(v1), _) => serde_json::to_vec(v1),
        (None, Some(v2)) => serde_json::to_vec(v2),
        (None, None) => Ok(Vec::new()),
    };
    finish(builder, body.unwrap_or_default())
}

/// The facilitator cannot be used now: nothing was charged (before the handler) or the
/// outcome is not known (after it); the content is withheld either way.
pub(crate) fn unavailable(message: &str) -> Response {
    let body = serde_json::json!({ "error": message });
    let builder = Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .header(RETRY_AFTER, "5");
    finish(builder, serde_json::to_vec(&body).unwrap_or_default())
}

/// An error of this server's own (a handler answer too large to hold, a charge above the
/// price): nothing was charged.
pub(crate) fn server_error(message: &str) -> Response {
    let body = serde_json::json!({ "error": message });
    let builder = Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store");
    finish(builder, serde_json::to_vec(&body).unwrap_or_default())
}

/// The settlement answer as the client's version carries it.
pub(crate) enum Settled {
    /// `X-PAYMENT-RESPONSE`.
    V1(v1::SettleResponse),
    /// `PAYMENT-RESPONSE`.
    V2(v2::SettleResponse),
}

impl Settled {
    /// The header's name and value.
    pub(crate) fn header(&self) -> Option<(&'static str, HeaderValue)> {
        match self {
            Settled::V1(answer) => header_value(headers::encode_x_payment_response(answer))
                .map(|v| (headers::X_PAYMENT_RESPONSE, v)),
            Settled::V2(answer) => header_value(headers::encode_payment_response(answer))
                .map(|v| (headers::PAYMENT_RESPONSE, v)),
        }
    }
}

/// The handler's answer, paid: its status, headers and body, with the settlement header
/// and `Cache-Control: private` (a shared cache must not hand paid content to others).
pub(crate) fn paid(
    mut parts: axum::http::response::Parts,
    body: Body,
    settled: &Settled,
) -> Response {
    if let Some((name, value)) = settled.header() {
        parts.headers.insert(HeaderName::from_static(name), value);
    }
    let cache = match parts
        .headers
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    {
        Some(existing) if existing.to_ascii_lowercase().contains("private") => existing.to_owned(),
        Some(existing) => format!("private, {existing}"),
        None => "private".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&cache) {
        parts.headers.insert(CACHE_CONTROL, value);
    }
    parts.headers.insert(
        HeaderName::from_static("access-control-expose-headers"),
        HeaderValue::from_static("PAYMENT-RESPONSE, X-PAYMENT-RESPONSE"),
    );
    Response::from_parts(parts, body)
}

/// A settlement that did not succeed: 402 (refused) or 504 (not final in time), with the
/// settlement header (and its transaction, when one was sent) and how to pay again.
pub(crate) fn not_settled(
    paywall: &Paywall,
    resource: &str,
    status: StatusCode,
    reason: &str,
    spoken: Spoken,
    settled: &Settled,
) -> Response {
    let mut response = payment_required(paywall, resource, status, reason, spoken);
    if let Some((name, value)) = settled.header() {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    response
}

fn header_value(encoded: Result<String, headers::HeaderError>) -> Option<HeaderValue> {
    let text = encoded.ok()?;
    HeaderValue::from_str(&text).ok()
}

fn finish(builder: axum::http::response::Builder, body: Vec<u8>) -> Response {
    builder.body(Body::from(body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::empty());
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}
