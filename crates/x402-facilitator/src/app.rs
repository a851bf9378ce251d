//! The HTTP surface: `/verify`, `/settle`, `/supported`, `/health`.
//!
//! Every body is read once, its version detected, and the answer written in that
//! version's shape. A refused payment is a protocol answer (HTTP 200); only a body
//! that is not a request at all gets a 4xx, with a JSON error naming the field.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use x402_protocol::envelope::{parse_request, EnvelopeError, X402Version};
use x402_protocol::networks;
use x402_protocol::v2::{SupportedKind, SupportedResponse};
use x402_protocol::{ChainId, Payment, Reason, SchemeHandler, Settlement, Verdict};

use crate::config::VersionSupport;

/// Largest request body accepted; larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Handlers keyed by (scheme, network).
pub type HandlerMap = HashMap<(String, ChainId), Arc<dyn SchemeHandler>>;

/// Shared state of the running facilitator.
pub struct AppState {
    versions: VersionSupport,
    handlers: HandlerMap,
    supported: Value,
    request_seq: AtomicU64,
    boot_tag: u32,
}

impl AppState {
    /// Builds the state; `/supported` is computed once here.
    pub fn new(versions: VersionSupport, handlers: HandlerMap) -> Arc<Self> {
        let supported = serde_json::to_value(supported_response(versions, &handlers))
            .unwrap_or_else(|_| json!({"kinds": [], "extensions": [], "signers": {}}));
        let boot_tag = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        Arc::new(AppState {
            versions,
            handlers,
            supported,
            request_seq: AtomicU64::new(0),
            boot_tag,
        })
    }

    fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.boot_tag)
    }

    fn handler_for(&self, payment: &Payment) -> Result<&Arc<dyn SchemeHandler>, Reason> {
        if let Some(h) = self
            .handlers
            .get(&(payment.scheme.clone(), payment.network.clone()))
        {
            return Ok(h);
        }
        let network_served = self.handlers.keys().any(|(_, n)| *n == payment.network);
        Err(if network_served {
            Reason::UnsupportedScheme
        } else {
            Reason::InvalidNetwork
        })
    }
}

fn supported_response(versions: VersionSupport, handlers: &HandlerMap) -> SupportedResponse {
    let mut kinds = Vec::new();
    let mut signers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut keys: Vec<_> = handlers.keys().collect();
    keys.sort();
    for key in keys {
        let handler = &handlers[key];
        let (scheme, network) = key;
        if versions.v1 {
            if let Some(known) = networks::by_chain_id(network) {
                kinds.push(SupportedKind {
                    x402_version: 1,
                    scheme: scheme.clone(),
                    network: known.v1_name.to_owned(),
                    extra: handler.supported_extra(),
                });
            }
        }
        if versions.v2 {
            kinds.push(SupportedKind {
                x402_version: 2,
                scheme: scheme.clone(),
                network: network.to_string(),
                extra: handler.supported_extra(),
            });
        }
        let entry = signers.entry(network.namespace_pattern()).or_default();
        for address in handler.signer_addresses() {
            if !entry.contains(&address) {
                entry.push(address);
            }
        }
    }
    SupportedResponse {
        kinds,
        extensions: Vec::new(),
        signers,
    }
}

/// Builds the router with all routes and the body limit.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .route("/health", get(health))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({"status": "healthy"}))
}

async fn supported(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.supported.clone())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "no such endpoint; see /supported, /verify, /settle, /health"})),
    )
        .into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Verify,
    Settle,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Verify => "verify",
            Endpoint::Settle => "settle",
        }
    }
}

/// What the log line of one request says.
struct RequestLog {
    request_id: String,
    endpoint: Endpoint,
    started: Instant,
    version: Option<X402Version>,
    network: String,
    scheme: String,
}

impl RequestLog {
    fn finish(&self, outcome: &str, reason: Option<Reason>, payer: Option<&str>, tx: Option<&str>) {
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let version = self.version.map(|v| v.label()).unwrap_or("unknown");
        let message = match (self.endpoint, outcome) {
            (Endpoint::Settle, "success") => "Settlement successful",
            (Endpoint::Settle, "pending") => "Settlement pending",
            (Endpoint::Settle, "failed") => "Settlement failed",
            (Endpoint::Settle, _) => "Settlement refused",
            (Endpoint::Verify, "valid") => "Verification succeeded",
            (Endpoint::Verify, _) => "Verification refused",
        };
        tracing::info!(
            request_id = %self.request_id,
            endpoint = self.endpoint.name(),
            x402_version = version,
            network = %self.network,
            scheme = %self.scheme,
            outcome,
            reason = reason.map(|r| r.as_str()).unwrap_or(""),
            payer = payer.unwrap_or(""),
            transaction = tx.unwrap_or(""),
            latency_ms,
            "{message}"
        );
    }
}

fn request_id(headers: &HeaderMap, state: &AppState) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| state.next_request_id())
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A request that is not a request: 4xx with `{"error", "field"}`.
struct ClientError {
    status: StatusCode,
    error: String,
    field: Option<String>,
}

impl IntoResponse for ClientError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.error, "field": self.field})),
        )
            .into_response()
    }
}

fn client_error(status: StatusCode, error: String, field: Option<String>) -> ClientError {
    ClientError {
        status,
        error,
        field,
    }
}

/// Reads the body, or answers 413/400 in JSON.
fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ClientError> {
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

async fn verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, headers, body, Endpoint::Verify).await
}

async fn settle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, headers, body, Endpoint::Settle).await
}

/// A refusal in the shape of `version`, before any chain code ran.
fn early_refusal(
    endpoint: Endpoint,
    version: X402Version,
    reason: Reason,
    message: String,
    network_label: &str,
) -> Value {
    match endpoint {
        Endpoint::Verify => Verdict::invalid(reason, message, None).to_json(version),
        Endpoint::Settle => {
            Settlement::failed(reason, message, None, "").to_json(version, network_label)
        }
    }
}

async fn handle(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Response {
    let mut log = RequestLog {
        request_id: request_id(&headers, &state),
        endpoint,
        started: Instant::now(),
        version: None,
        network: String::new(),
        scheme: String::new(),
    };
    let response = match process(&state, body, endpoint, &mut log).await {
        Ok(value) => Json(value).into_response(),
        Err(error) => error.into_response(),
    };
    with_request_id(response, &log.request_id)
}

async fn process(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
    log: &mut RequestLog,
) -> Result<Value, ClientError> {
    let bytes = body_or_error(body).inspect_err(|_| log.finish("rejected", None, None, None))?;
    let request = match parse_request(&bytes) {
        Ok(request) => request,
        Err(EnvelopeError::UnknownVersion(n)) => {
            log.finish("invalid", Some(Reason::InvalidX402Version), None, None);
            return Ok(early_refusal(
                endpoint,
                X402Version::V2,
                Reason::InvalidX402Version,
                format!("x402Version {n} is not supported; this facilitator speaks 1 and 2"),
                "",
            ));
        }
        Err(err) => {
            if err.is_caip2() {
                tracing::error!(
                    request_id = %log.request_id,
                    endpoint = endpoint.name(),
                    x402_version = "2",
                    field = err.field().unwrap_or_default(),
                    error = %err,
                    "CAIP-2 parsing failed"
                );
            }
            log.finish("rejected", None, None, None);
            return Err(client_error(
                StatusCode::BAD_REQUEST,
                err.to_string(),
                err.field(),
            ));
        }
    };
    let version = request.version();
    log.version = Some(version);
    let payment = match Payment::from_request(&request) {
        Ok(payment) => payment,
        Err(refusal) => {
            log.network = refusal.network_label.clone();
            log.finish("invalid", Some(refusal.reason), None, None);
            return Ok(early_refusal(
                endpoint,
                version,
                refusal.reason,
                refusal.message,
                &refusal.network_label,
            ));
        }
    };
    log.network = payment.network.to_string();
    log.scheme = payment.scheme.clone();
    if !state.versions.allows(version) {
        log.finish("invalid", Some(Reason::UnsupportedVersion), None, None);
        return Ok(early_refusal(
            endpoint,
            version,
            Reason::UnsupportedVersion,
            format!(
                "x402 v{} is switched off on this facilitator (X402_VERSION_SUPPORT={})",
                version.number(),
                state.versions
            ),
            &payment.network_label,
        ));
    }
    let handler = match state.handler_for(&payment) {
        Ok(handler) => handler,
        Err(reason) => {
            log.finish("invalid", Some(reason), None, None);
            let message = match reason {
                Reason::UnsupportedScheme => format!(
                    "scheme {:?} is not served on {}",
                    payment.scheme, payment.network
                ),
                _ => format!(
                    "network {} is not served by this facilitator",
                    payment.network
                ),
            };
            return Ok(early_refusal(
                endpoint,
                version,
                reason,
                message,
                &payment.network_label,
            ));
        }
    };
    match endpoint {
        Endpoint::Verify => {
            let verdict = handler.verify(&payment).await;
            let outcome = if verdict.is_valid { "valid" } else { "invalid" };
            log.finish(outcome, verdict.reason, verdict.payer.as_deref(), None);
            Ok(verdict.to_json(version))
        }
        Endpoint::Settle => {
            let settlement = handler.settle(&payment).await;
            let outcome = match (settlement.success, settlement.reason) {
                (true, _) => "success",
                (false, Some(Reason::SettlementPending)) => "pending",
                (false, _) if !settlement.transaction.is_empty() => "failed",
                (false, Some(r)) if r.class() == x402_protocol::ReasonClass::Facilitator => {
                    "failed"
                }
                _ => "invalid",
            };
            log.finish(
                outcome,
                settlement.reason,
                settlement.payer.as_deref(),
                Some(&settlement.transaction),
            );
            Ok(settlement.to_json(version, &payment.network_label))
        }
    }
}
