//! The HTTP surface: `/verify`, `/settle`, `/supported`, health, metrics and flags.
//!
//! Every body is read once, its version detected, and the answer written in that
//! version's shape. A refused payment is a protocol answer (HTTP 200); only a body
//! that is not a request at all gets a 4xx, with a JSON error naming the field.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use x402_protocol::envelope::{parse_request, EnvelopeError, X402Version};
use x402_protocol::v2::{SupportedKind, SupportedResponse};
use x402_protocol::{convert, networks, HealthCheck, VersionedRequest};
use x402_protocol::{ChainId, Payment, Reason, SchemeHandler, Settlement, Verdict};

mod breaker_watch;
mod errors;

use errors::{body_or_error, client_error, json_content_type, ClientError};

use crate::breaker::{is_facilitator_failure, Breaker, Sightings};
use crate::config::{Config, Secret};
use crate::flags::{FlagRefusal, FlagStore, FlagUpdate, Flags};
use crate::guard::{self, PaymentPolicy};
use crate::payment_ids;
use crate::redact;
use crate::telemetry;

/// Largest request body accepted; larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How often an instance on a shared ledger looks for flag changes made elsewhere.
pub const SHARED_FLAGS_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a counted settlement outcome is remembered, at least (see [`Sightings`]).
const SIGHTING_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Settlement outcomes remembered at most.
const SIGHTING_CAPACITY: usize = 200_000;

/// Settlement handlers by (scheme, network).
pub type HandlerMap = HashMap<(String, ChainId), Arc<dyn SchemeHandler>>;

/// Where the process is in its life: readiness, draining, work in flight.
#[derive(Default)]
pub struct Lifecycle {
    ready: AtomicBool,
    draining: AtomicBool,
    settlements_in_flight: AtomicUsize,
    requests_in_flight: AtomicUsize,
    completed_while_draining: AtomicU64,
    idle: tokio::sync::Notify,
}

impl Lifecycle {
    /// Start-up is done: readiness may pass.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Shutdown began: readiness fails from now on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether a load balancer should send traffic here.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }

    /// Settlements being executed right now.
    pub fn settlements_in_flight(&self) -> usize {
        self.settlements_in_flight.load(Ordering::SeqCst)
    }

    /// Requests being answered right now.
    pub fn requests_in_flight(&self) -> usize {
        self.requests_in_flight.load(Ordering::SeqCst)
    }

    /// Requests answered since shutdown began.
    pub fn completed_while_draining(&self) -> u64 {
        self.completed_while_draining.load(Ordering::SeqCst)
    }

    /// Waits until no request and no settlement is in flight.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.requests_in_flight() == 0 && self.settlements_in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one unit of work in flight for as long as it lives (also on cancellation).
struct InFlight {
    state: Arc<AppState>,
    settlement: bool,
}

impl InFlight {
    fn request(state: &Arc<AppState>) -> Self {
        state
            .lifecycle
            .requests_in_flight
            .fetch_add(1, Ordering::SeqCst);
        InFlight {
            state: state.clone(),
            settlement: false,
        }
    }

    fn settlement(state: &Arc<AppState>) -> Self {
        let n = state
            .lifecycle
            .settlements_in_flight
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        metrics::gauge!(telemetry::SETTLEMENTS_IN_FLIGHT).set(n as f64);
        InFlight {
            state: state.clone(),
            settlement: true,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let lifecycle = &self.state.lifecycle;
        if self.settlement {
            let n = lifecycle
                .settlements_in_flight
                .fetch_sub(1, Ordering::SeqCst)
                - 1;
            metrics::gauge!(telemetry::SETTLEMENTS_IN_FLIGHT).set(n as f64);
        } else {
            lifecycle.requests_in_flight.fetch_sub(1, Ordering::SeqCst);
            if lifecycle.draining.load(Ordering::SeqCst) {
                lifecycle
                    .completed_while_draining
                    .fetch_add(1, Ordering::SeqCst);
            }
        }
        lifecycle.idle.notify_waiters();
    }
}

/// Shared state of the running facilitator.
pub struct AppState {
    handlers: HandlerMap,
    flags: FlagStore,
    breaker: Breaker,
    /// Settlement outcomes already counted (breaker and failure metric count each once).
    sightings: Sightings,
    policy: PaymentPolicy,
    supported: RwLock<Value>,
    ledger: Arc<x402_ledger::Ledger>,
    publish_order: Arc<tokio::sync::Mutex<()>>,
    /// Readiness, draining and in-flight work.
    pub lifecycle: Lifecycle,
    admin_token: Option<Secret>,
    admin_on_main_listener: bool,
    request_seq: AtomicU64,
    boot_tag: u32,
    v1_deprecation: crate::deprecation::V1Deprecation,
}

impl AppState {
    /// Builds the state for `config` with its chain handlers.
    pub fn new(
        config: &Config,
        handlers: HandlerMap,
        ledger: Arc<x402_ledger::Ledger>,
    ) -> Arc<Self> {
        let boot_tag = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        let _ = telemetry::handle();
        let state = Arc::new(AppState {
            handlers,
            flags: FlagStore::new(config.flags.clone()),
            breaker: Breaker::new(config.breaker.clone()),
            sightings: Sightings::new(config.breaker.window.max(SIGHTING_TTL), SIGHTING_CAPACITY),
            policy: PaymentPolicy::from_config(config),
            supported: RwLock::new(Value::Null),
            ledger,
            publish_order: Arc::new(tokio::sync::Mutex::new(())),
            lifecycle: Lifecycle::default(),
            admin_token: config.admin_token.clone(),
            admin_on_main_listener: config.admin_addr.is_none(),
            request_seq: AtomicU64::new(0),
            boot_tag,
            v1_deprecation: config.v1_deprecation.clone(),
        });
        state.flags_changed();
        state
    }

    /// The settlement ledger (records, nonces, payment ids).
    pub fn ledger(&self) -> &Arc<x402_ledger::Ledger> {
        &self.ledger
    }

    /// The chain handlers, for the reconciler.
    pub fn handlers(&self) -> impl Iterator<Item = &Arc<dyn SchemeHandler>> {
        self.handlers.values()
    }

    /// The live feature flags.
    pub fn flags(&self) -> &FlagStore {
        &self.flags
    }

    /// Applies a flag update (admin API or SIGHUP) and refreshes what depends on flags;
    /// with a shared (PostgreSQL) ledger the new state is published to the other instances.
    pub fn update_flags(&self, update: &FlagUpdate, source: &str) -> Result<Value, String> {
        let changes = self.flags.apply(update, source)?;
        if changes
            .iter()
            .any(|c| c.flag == "v2_settle_enabled" && c.new == json!(true))
        {
            self.breaker.reset();
        }
        self.flags_changed();
        if !changes.is_empty() {
            self.publish_flags();
        }
        Ok(Value::Array(
            changes
                .iter()
                .map(|c| json!({"flag": c.flag, "old": c.old, "new": c.new}))
                .collect(),
        ))
    }

    /// Writes this instance's flags to the shared ledger (PostgreSQL only); the other
    /// instances pick them up within [`SHARED_FLAGS_POLL`].
    fn publish_flags(&self) {
        if !self.ledger.is_shared() {
            return;
        }
        let document = self.flags.to_shared().to_string();
        let ledger = self.ledger.clone();
        let order = self.publish_order.clone();
        tokio::spawn(async move {
            // One publication at a time, in the order the changes happened here.
            let _turn = order.lock().await;
            match ledger.put_shared_flags(&document).await {
                Ok(version) => {
                    tracing::info!(version, "feature flags published to the other instances")
                }
                Err(e) => {
                    tracing::error!(error = %e, "feature flags not published: ledger unavailable; other instances keep their flags")
                }
            }
        });
    }

    /// Applies the shared flags when another instance changed them since `seen`; returns
    /// the version now applied.
    pub async fn sync_shared_flags(&self, seen: i64) -> i64 {
        match self.ledger.shared_flags().await {
            Ok(Some((version, body))) if version > seen => {
                let applied = serde_json::from_str::<Value>(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|doc| self.flags.apply_shared(&doc));
                match applied {
                    Ok(changes) => {
                        if changes
                            .iter()
                            .any(|c| c.flag == "v2_settle_enabled" && c.new == json!(true))
                        {
                            self.breaker.reset();
                        }
                        self.flags_changed();
                    }
                    Err(e) => tracing::error!(version, error = %e, "shared feature flags ignored"),
                }
                version
            }
            Ok(_) => seen,
            Err(e) => {
                tracing::warn!(error = %e, "shared feature flags not read: ledger unavailable");
                seen
            }
        }
    }

    /// Recomputes `/supported` and the flag gauges.
    fn flags_changed(&self) {
        let flags = self.flags.snapshot();
        let supported = serde_json::to_value(supported_response(&flags, &self.handlers))
            .unwrap_or_else(|_| json!({"kinds": [], "extensions": [], "signers": {}}));
        match self.supported.write() {
            Ok(mut guard) => *guard = supported,
            Err(poisoned) => *poisoned.into_inner() = supported,
        }
        let gauges = [
            ("x402_v1", flags.x402_version_support.v1),
            ("x402_v2", flags.x402_version_support.v2),
            ("v2_enabled", flags.v2_enabled),
            ("v2_verify_enabled", flags.v2_verify_enabled),
            ("v2_settle_enabled", flags.v2_settle_enabled),
            ("shadow_v2_enabled", flags.shadow_v2_enabled),
        ];
        for (flag, on) in gauges {
            metrics::gauge!(telemetry::FLAG_STATE, "flag" => flag).set(if on { 1.0 } else { 0.0 });
        }
    }

    fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.boot_tag)
    }

    /// The metric label of a network: its id when configured, `other` otherwise.
    fn network_label(&self, network: &ChainId) -> String {
        if self.handlers.keys().any(|(_, n)| n == network) {
            network.to_string()
        } else {
            "other".to_owned()
        }
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

fn supported_response(flags: &Flags, handlers: &HandlerMap) -> SupportedResponse {
    let mut kinds = Vec::new();
    let mut signers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut keys: Vec<_> = handlers.keys().collect();
    keys.sort();
    for key in keys {
        let handler = &handlers[key];
        let (scheme, network) = key;
        if flags.x402_version_support.v1 {
            if let Some(known) = networks::by_chain_id(network) {
                kinds.push(SupportedKind {
                    x402_version: 1,
                    scheme: scheme.clone(),
                    network: known.v1_name.to_owned(),
                    extra: handler.supported_extra(),
                });
            }
        }
        if flags.v2_serves(network) {
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
    let extensions = if flags.x402_version_support.v2 && flags.v2_enabled {
        vec![payment_ids::EXTENSION.to_owned()]
    } else {
        Vec::new()
    };
    SupportedResponse {
        kinds,
        extensions,
        signers,
    }
}

/// Builds the router with all routes and the body limit.
pub fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .route("/health", get(health))
        .route("/health/ready", get(health_ready))
        .route("/health/deep", get(health_deep))
        .route("/health/v2", get(health_v2))
        .route("/metrics", get(metrics_text))
        .route("/flags", get(flags));
    if state.admin_on_main_listener && state.admin_token.is_some() {
        router = router.route("/admin/flags", put(admin_flags));
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The admin API alone, for a separate listener (`ADMIN_ADDR`); empty without a token.
pub fn admin_router(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    if state.admin_token.is_some() {
        router = router.route("/admin/flags", put(admin_flags));
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "version": telemetry::VERSION,
        "build": telemetry::COMMIT,
    }))
}

async fn health_ready(State(state): State<Arc<AppState>>) -> Response {
    let lifecycle = &state.lifecycle;
    if lifecycle.is_ready() {
        return Json(json!({"status": "ready"})).into_response();
    }
    let status = if lifecycle.draining.load(Ordering::SeqCst) {
        "draining"
    } else {
        "starting"
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": status})),
    )
        .into_response()
}

/// Checks that need no network: the CAIP-2 parser and both versions' serialization.
fn self_tests(v1: bool, v2: bool) -> Vec<HealthCheck> {
    let caip2_ok = "eip155:84532".parse::<ChainId>().is_ok()
        && "eip155:084532".parse::<ChainId>().is_err()
        && networks::resolve_network("base-sepolia").map(|c| c.to_string())
            == Ok("eip155:84532".to_owned());
    let mut checks = vec![HealthCheck::new(
        "self_test_caip2",
        caip2_ok,
        true,
        "parse, reject and v1-name resolution",
    )];
    let verdict = Verdict::invalid(Reason::InvalidPayload, "self test", None);
    let settled = Settlement::settled("0x0000000000000000000000000000000000000001", "0x01");
    if v1 {
        let ok = verdict.to_json(X402Version::V1)["isValid"] == json!(false)
            && settled.to_json(X402Version::V1, "base-sepolia")["network"] == json!("base-sepolia");
        checks.push(HealthCheck::new(
            "self_test_serialization_v1",
            ok,
            true,
            "v1 verify and settle answers",
        ));
    }
    if v2 {
        let ok = verdict.to_json(X402Version::V2)["invalidReason"] == json!("invalid_payload")
            && settled.to_json(X402Version::V2, "eip155:84532")["network"] == json!("eip155:84532");
        checks.push(HealthCheck::new(
            "self_test_serialization_v2",
            ok,
            true,
            "v2 verify and settle answers",
        ));
    }
    checks
}

/// Runs every handler's own checks concurrently, one per network.
async fn network_checks(state: &AppState, only: impl Fn(&ChainId) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut keys: Vec<_> = state.handlers.keys().collect();
    keys.sort();
    for key in keys {
        let network = &key.1;
        if seen.contains(network) || !only(network) {
            continue;
        }
        seen.push(network.clone());
        let handler = state.handlers[key].clone();
        let network = network.clone();
        tasks.spawn(async move { (network, handler.health().await) });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((network, checks)) = joined else {
            out.push(json!({"name": "network_check", "ok": false, "critical": true, "detail": "check task failed"}));
            continue;
        };
        for check in checks {
            out.push(json!({
                "name": check.name,
                "network": network.to_string(),
                "ok": check.ok,
                "critical": check.critical,
                "detail": check.detail,
            }));
        }
    }
    out
}

fn health_answer(checks: Vec<Value>, extra: serde_json::Map<String, Value>) -> Response {
    let healthy = checks
        .iter()
        .all(|c| c["ok"] == json!(true) || c["critical"] != json!(true));
    let mut body = serde_json::Map::new();
    body.insert(
        "status".into(),
        json!(if healthy { "healthy" } else { "unhealthy" }),
    );
    body.extend(extra);
    body.insert("checks".into(), Value::Array(checks));
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Value::Object(body))).into_response()
}

async fn health_deep(State(state): State<Arc<AppState>>) -> Response {
    let flags = state.flags.snapshot();
    let mut checks: Vec<Value> = self_tests(true, true)
        .into_iter()
        .map(|c| json!(c))
        .collect();
    checks.push(json!(HealthCheck::new(
        "flags_loaded",
        true,
        true,
        format!(
            "x402_version_support={}, v2_enabled={}, v2_settle_enabled={}",
            flags.x402_version_support, flags.v2_enabled, flags.v2_settle_enabled
        ),
    )));
    let ledger_check = match state.ledger.ping().await {
        Ok(()) => HealthCheck::new(
            "ledger",
            true,
            true,
            format!("{} reachable", state.ledger.backend().as_str()),
        ),
        Err(e) => HealthCheck::new("ledger", false, true, e.to_string()),
    };
    checks.push(json!(ledger_check));
    checks.extend(network_checks(&state, |_| true).await);
    let mut extra = serde_json::Map::new();
    extra.insert(
        "settlements_in_flight".into(),
        json!(state.lifecycle.settlements_in_flight()),
    );
    extra.insert(
        "draining".into(),
        json!(state.lifecycle.draining.load(Ordering::SeqCst)),
    );
    health_answer(checks, extra)
}

async fn health_v2(State(state): State<Arc<AppState>>) -> Response {
    let flags = state.flags.snapshot();
    let v2_on = flags.x402_version_support.v2 && flags.v2_enabled;
    let mut checks: Vec<Value> = self_tests(false, true)
        .into_iter()
        .map(|c| json!(c))
        .collect();
    let mut why = format!(
        "x402_version_support={}, v2_enabled={}, v2_verify_enabled={}, v2_settle_enabled={}",
        flags.x402_version_support,
        flags.v2_enabled,
        flags.v2_verify_enabled,
        flags.v2_settle_enabled
    );
    if let Some(trip) = state.flags.trip_of("v2_settle_enabled") {
        why.push_str(&format!("; v2 settle tripped by breaker: {}", trip.reason));
    }
    let all_on = v2_on && flags.v2_verify_enabled && flags.v2_settle_enabled;
    checks.push(json!(HealthCheck::new("v2_enabled", all_on, true, why)));
    if v2_on {
        checks.extend(network_checks(&state, |n| flags.v2_serves(n)).await);
    }
    health_answer(checks, serde_json::Map::new())
}

async fn metrics_text() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        telemetry::render(),
    )
        .into_response()
}

async fn flags(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.flags.to_json())
}

/// Constant-time bearer check; `false` when the header is missing or wrong.
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    let Some(token) = &state.admin_token else {
        return false;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    presented.as_bytes().ct_eq(token.expose().as_bytes()).into()
}

async fn admin_flags(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        tracing::warn!("admin API call refused: more than one Authorization header");
        return client_error(
            StatusCode::BAD_REQUEST,
            "send exactly one Authorization header".into(),
            None,
        )
        .into_response();
    }
    if !authorized(&state, &headers) {
        tracing::warn!("admin API call refused: missing or wrong bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            Json(json!({"error": "missing or wrong bearer token"})),
        )
            .into_response();
    }
    let bytes = match body_or_error(body) {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let update: FlagUpdate = match serde_json::from_slice(&bytes) {
        Ok(update) => update,
        Err(e) => {
            return client_error(
                StatusCode::BAD_REQUEST,
                format!("not a flag update: {e}"),
                None,
            )
            .into_response()
        }
    };
    match state.update_flags(&update, "admin") {
        Ok(changes) => {
            Json(json!({"changed": changes, "flags": state.flags.to_json()})).into_response()
        }
        Err(message) => client_error(StatusCode::BAD_REQUEST, message, None).into_response(),
    }
}

async fn supported(State(state): State<Arc<AppState>>) -> Json<Value> {
    let value = match state.supported.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    Json(value)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "no such endpoint; see /supported, /verify, /settle, /health"})),
    )
        .into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What the log line (and the metrics) of one request say.
#[derive(Clone)]
struct RequestLog {
    request_id: String,
    endpoint: Endpoint,
    started: Instant,
    version: Option<X402Version>,
    network: String,
    /// `network` when configured, `other` otherwise (metric label).
    network_metric: String,
    scheme: String,
    /// The caller's `User-Agent`: which resource servers still send v1.
    user_agent: String,
}

impl RequestLog {
    /// The `network` metric label: the configured id, or `other` before or without one.
    fn metric_network(&self) -> String {
        if self.network_metric.is_empty() {
            "other".to_owned()
        } else {
            self.network_metric.clone()
        }
    }

    /// Counts a settlement that failed on our side (both versions): what a deployment's
    /// rollback watch and the alert rules read, since the breaker sees v2 only.
    fn count_facilitator_failure(&self, settlement: &Settlement) {
        if !is_facilitator_failure(settlement) {
            return;
        }
        let network = self.metric_network();
        metrics::counter!(
            telemetry::SETTLEMENT_FAILURES,
            "x402_version" => self.version.map(|v| v.label()).unwrap_or("unknown"),
            "network" => network,
            "reason" => settlement.reason.map(Reason::as_str).unwrap_or("unknown"),
        )
        .increment(1);
    }

    fn finish(&self, outcome: &str, reason: Option<Reason>, payer: Option<&str>, tx: Option<&str>) {
        let elapsed = self.started.elapsed();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
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
            user_agent = %self.user_agent,
            latency_ms,
            "{message}"
        );
        let network = self.metric_network();
        let scheme = if self.scheme == "exact" {
            "exact"
        } else {
            "other"
        };
        metrics::counter!(
            telemetry::REQUESTS,
            "endpoint" => self.endpoint.name(),
            "x402_version" => version,
            "network" => network.clone(),
            "scheme" => scheme,
            "outcome" => outcome.to_owned(),
        )
        .increment(1);
        metrics::histogram!(
            telemetry::REQUEST_DURATION,
            "endpoint" => self.endpoint.name(),
            "x402_version" => version,
            "network" => network.clone(),
        )
        .record(elapsed.as_secs_f64());
        if self.endpoint == Endpoint::Settle && self.version.is_some() {
            metrics::counter!(
                telemetry::SETTLEMENTS,
                "x402_version" => version,
                "network" => network,
                "result" => outcome.to_owned(),
            )
            .increment(1);
        }
    }
}

/// The caller's `User-Agent`, printable ASCII only and at most 200 characters.
fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .take(200)
                .collect()
        })
        .unwrap_or_default()
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
    payer: Option<&str>,
) -> Value {
    let payer = payer.map(str::to_owned);
    match endpoint {
        Endpoint::Verify => Verdict::invalid(reason, message, payer).to_json(version),
        Endpoint::Settle => {
            Settlement::failed(reason, message, payer, "").to_json(version, network_label)
        }
    }
}

/// Logs a refusal given before any chain code ran and answers it in the request's shape.
fn refuse_early(
    log: &RequestLog,
    (endpoint, version): (Endpoint, X402Version),
    reason: Reason,
    message: String,
    network_label: &str,
    payer: Option<&str>,
) -> Value {
    log.finish("invalid", Some(reason), payer, None);
    early_refusal(endpoint, version, reason, message, network_label, payer)
}

async fn handle(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Response {
    let _in_flight = InFlight::request(&state);
    let mut log = RequestLog {
        request_id: request_id(&headers, &state),
        endpoint,
        started: Instant::now(),
        version: None,
        network: String::new(),
        network_metric: String::new(),
        scheme: String::new(),
        user_agent: user_agent(&headers),
    };
    let processed = match json_content_type(&headers) {
        Ok(()) => process(&state, body, endpoint, &mut log).await,
        Err(refused) => {
            log.finish("rejected", None, None, None);
            Err(refused)
        }
    };
    let mut response = match processed {
        // Answer texts can quote a node or a library: nothing secret leaves in them.
        Ok(value) => Json(redact::scrub_value(value)).into_response(),
        Err(error) => error.into_response(),
    };
    if log.version == Some(X402Version::V1) {
        for (name, value) in state.v1_deprecation.headers() {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    with_request_id(response, &log.request_id)
}

fn settle_outcome(settlement: &Settlement) -> &'static str {
    match (settlement.success, settlement.reason) {
        (true, _) => "success",
        (false, Some(Reason::SettlementPending)) => "pending",
        (false, _) if !settlement.transaction.is_empty() => "failed",
        (false, Some(r)) if r.class() == x402_protocol::ReasonClass::Facilitator => "failed",
        _ => "invalid",
    }
}

/// Flags, then the payment policy (`accepted` as required, assets, amounts, payee): the
/// refusal a new payment gets. Flags and policies gate new settlements only: a payment the
/// ledger knows gets its recorded outcome (a breaker trip must not hide payments made).
async fn gate(
    state: &AppState,
    flags: &Flags,
    request: &VersionedRequest,
    payment: &Payment,
    (endpoint, version): (Endpoint, X402Version),
    log: &RequestLog,
) -> Option<Value> {
    let (reason, message) = flags
        .admit(version, endpoint == Endpoint::Settle, &payment.network)
        .map_err(|refusal| match refusal {
            FlagRefusal::VersionOff(m) => (Reason::UnsupportedVersion, m),
            FlagRefusal::V2Off(m) => (Reason::FeatureDisabled, m),
        })
        .and_then(|()| {
            guard::accepted_matches(request)
                .and_then(|()| state.policy.check(payment))
                .map_err(|r| (r.reason, r.message))
        })
        .err()?;
    let served = state.handler_for(payment).ok();
    if let Some(handler) = served {
        if handler.is_recorded(payment).await {
            return None;
        }
    }
    // Who the payload says pays; read only for a refusal, off the hot path.
    let payer = served.and_then(|h| h.claimed_payer(payment));
    Some(refuse_early(
        log,
        (endpoint, version),
        reason,
        message,
        &payment.network_label,
        payer.as_deref(),
    ))
}

/// The per-payer and per-`payTo` limits, for a settlement the ledger does not know yet
/// (asked only when a limit is on); 429 with `Retry-After` past them.
async fn within_rate_limits(
    state: &AppState,
    handler: &Arc<dyn SchemeHandler>,
    payment: &Payment,
    log: &RequestLog,
) -> Result<(), ClientError> {
    if !state.policy.limits_rates() || handler.is_recorded(payment).await {
        return Ok(());
    }
    let payer = handler.claimed_payer(payment);
    let Err(wait) = state
        .policy
        .admit_settlement(payer.as_deref(), &payment.requirements.pay_to)
    else {
        return Ok(());
    };
    log.finish("rejected", None, payer.as_deref(), None);
    Err(ClientError {
        status: StatusCode::TOO_MANY_REQUESTS,
        error: format!(
            "too many settlements for this payer or payTo; retry after {}s",
            wait.as_secs()
        ),
        field: None,
        retry_after: Some(wait.as_secs().max(1)),
    })
}

async fn process(
    state: &Arc<AppState>,
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
                None,
            ));
        }
        Err(err) => {
            if err.is_caip2() {
                metrics::counter!(telemetry::CAIP2_PARSE_ERRORS, "endpoint" => endpoint.name())
                    .increment(1);
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
                None,
            ));
        }
    };
    log.network = payment.network.to_string();
    log.network_metric = state.network_label(&payment.network);
    log.scheme = payment.scheme.clone();
    let flags = state.flags.snapshot();
    if let Some(refused) = gate(state, &flags, &request, &payment, (endpoint, version), log).await {
        return Ok(refused);
    }
    let handler = match state.handler_for(&payment) {
        Ok(handler) => handler.clone(),
        Err(reason) => {
            let message = match reason {
                Reason::UnsupportedScheme => format!(
                    "scheme {:?} is not served on {}",
                    payment.scheme, payment.network
                ),
                _ => match networks::by_retired_caip2(payment.network.as_str()) {
                    // The seeds' guessed spelling: say which id the network really has.
                    Some(known) => format!(
                        "{} is not a network id; {} is {} (CAIP-2 from its genesis hash)",
                        payment.network, known.v1_name, known.caip2
                    ),
                    None => format!(
                        "network {} is not served by this facilitator",
                        payment.network
                    ),
                },
            };
            return Ok(refuse_early(
                log,
                (endpoint, version),
                reason,
                message,
                &payment.network_label,
                None,
            ));
        }
    };
    // The v2 payment-identifier extension: an id already bound to another payment is refused.
    let identified = payment_ids::payment_id(&payment)
        .filter(|_| version == X402Version::V2)
        .map(|id| (id, payment.request_digest()));
    if let Some((id, digest)) = &identified {
        let bound = match endpoint {
            Endpoint::Verify => state.ledger.payment_id(id).await,
            Endpoint::Settle => state.ledger.bind_payment_id(id, digest).await.map(Some),
        };
        let refused = match bound {
            Ok(bound) => bound.is_some_and(|b| !x402_protocol::digest_matches(&b, digest)),
            Err(e) if endpoint == Endpoint::Verify => {
                // Verify moves nothing: answer it, without the id check.
                tracing::warn!(request_id = %log.request_id, error = %e, "payment id not checked: ledger unavailable");
                false
            }
            Err(e) => {
                tracing::error!(request_id = %log.request_id, error = %e, "settlement refused: ledger unavailable");
                let payer = handler.claimed_payer(&payment);
                log.finish(
                    "failed",
                    Some(Reason::LedgerUnavailable),
                    payer.as_deref(),
                    None,
                );
                return Ok(early_refusal(
                    endpoint,
                    version,
                    Reason::LedgerUnavailable,
                    "the facilitator cannot record settlements right now; nothing was sent; retry later".into(),
                    &payment.network_label,
                    payer.as_deref(),
                ));
            }
        };
        if refused {
            let payer = handler.claimed_payer(&payment);
            log.finish(
                "invalid",
                Some(Reason::PaymentIdentifierConflict),
                payer.as_deref(),
                None,
            );
            return Ok(early_refusal(
                endpoint,
                version,
                Reason::PaymentIdentifierConflict,
                format!("payment id {id:?} was already used for a different payment"),
                &payment.network_label,
                payer.as_deref(),
            ));
        }
    }
    if endpoint == Endpoint::Settle {
        within_rate_limits(state, &handler, &payment, log).await?;
    }
    match endpoint {
        Endpoint::Verify => {
            // Shadow mode: the v2 path checks the same payment concurrently.
            let shadow = (version == X402Version::V1 && flags.shadow_v2_enabled)
                .then(|| start_shadow(state, &request))
                .flatten();
            let verdict = handler.verify(&payment).await;
            let outcome = if verdict.is_valid { "valid" } else { "invalid" };
            log.finish(outcome, verdict.reason, verdict.payer.as_deref(), None);
            let answer = verdict.to_json(version);
            if let Some(shadow) = shadow {
                let request_id = log.request_id.clone();
                let v1_answer = answer.clone();
                tokio::spawn(compare_shadow(shadow, verdict, v1_answer, request_id));
            }
            Ok(answer)
        }
        Endpoint::Settle => {
            // The settlement runs in its own task: a client that hangs up does not cancel
            // a broadcast half way, and shutdown waits for it.
            let guard = InFlight::settlement(state);
            let task_state = state.clone();
            let task_log = log.clone();
            let task = tokio::spawn(async move {
                let settlement = handler.settle(&payment).await;
                let sighting = Sightings::key(&settlement, || payment.request_digest());
                if let Some((id, digest)) = &identified {
                    // Nothing broadcast: the id is free for another attempt.
                    if settlement.transaction.is_empty() {
                        if let Err(e) = task_state.ledger.release_payment_id(id, digest).await {
                            tracing::warn!(error = %e, "payment id not released: ledger unavailable");
                        }
                    }
                }
                // A re-sent request (answered from the ledger, or pending again) counts once.
                if task_state.sightings.first(&sighting) {
                    task_log.count_facilitator_failure(&settlement);
                    if version == X402Version::V2 {
                        task_state.watch_v2_settlement(&settlement, &payment.network);
                    }
                }
                task_log.finish(
                    settle_outcome(&settlement),
                    settlement.reason,
                    settlement.payer.as_deref(),
                    Some(&settlement.transaction),
                );
                drop(guard);
                settlement.to_json(version, &payment.network_label)
            });
            match task.await {
                Ok(answer) => Ok(answer),
                Err(e) => {
                    tracing::error!(request_id = %log.request_id, error = %e, "settlement task failed");
                    let failed = Settlement::failed(
                        Reason::UnexpectedSettleError,
                        "settlement task failed; retry the same request for its outcome",
                        None,
                        "",
                    );
                    log.finish("failed", failed.reason, None, None);
                    Ok(failed.to_json(version, &log.network))
                }
            }
        }
    }
}

/// The v2 path's verdict on a v1 request, computed concurrently with the v1 answer.
type ShadowTask = tokio::task::JoinHandle<Result<(Verdict, Value), String>>;

fn start_shadow(state: &Arc<AppState>, request: &VersionedRequest) -> Option<ShadowTask> {
    let VersionedRequest::V1(v1_request) = request else {
        return None;
    };
    let converted = convert::request_v1_to_v2(v1_request);
    let state = state.clone();
    Some(tokio::spawn(async move {
        let v2_request = converted.map_err(|e| format!("v1 request does not convert: {e}"))?;
        let request = VersionedRequest::V2(Box::new(v2_request));
        let payment = Payment::from_request(&request).map_err(|r| r.message)?;
        let handler = state
            .handler_for(&payment)
            .map_err(|r| format!("no v2 handler: {}", r.as_str()))?
            .clone();
        let verdict = handler.verify(&payment).await;
        let answer = verdict.to_json(X402Version::V2);
        Ok((verdict, answer))
    }))
}

async fn compare_shadow(shadow: ShadowTask, v1: Verdict, v1_answer: Value, request_id: String) {
    let (matched, v2_answer) = match shadow.await {
        Ok(Ok((v2, v2_answer))) => (
            v1.is_valid == v2.is_valid && v1.reason == v2.reason,
            v2_answer,
        ),
        Ok(Err(message)) => (false, json!({"error": message})),
        Err(e) => (false, json!({"error": format!("shadow task failed: {e}")})),
    };
    let result = if matched { "match" } else { "mismatch" };
    metrics::counter!(telemetry::SHADOW_COMPARISONS, "result" => result).increment(1);
    if !matched {
        metrics::counter!(telemetry::SHADOW_MISMATCHES).increment(1);
        tracing::error!(
            request_id = %request_id,
            v1_result = %v1_answer,
            v2_result = %v2_answer,
            "Shadow v2 verification mismatch"
        );
    }
}
