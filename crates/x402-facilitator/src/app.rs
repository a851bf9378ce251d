//! The HTTP surface: `/verify` and `/settle` ([`pipeline`]), `/supported` ([`supported`]),
//! health ([`health`]), metrics and flags ([`admin`]), one log line per request
//! ([`request_log`]); the shared state and the routers are here.
//!
//! Every body is read once, its version detected, and the answer written in that
//! version's shape. A refused payment is a protocol answer (HTTP 200); only a body
//! that is not a request at all gets a 4xx, with a JSON error naming the field.

use std::collections::BTreeMap;
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
use x402_protocol::{ChainId, Payment, Reason, Scheme, Settlement, Verdict};

use crate::served::Served;

mod admin;
mod breaker_watch;
mod caller_keys;
mod discovery;
mod errors;
mod health;
mod openapi;
mod pipeline;
mod request_log;
mod settlements;
mod shadow;
mod supported;

use admin::{admin_flags, flags, metrics_text};
pub use caller_keys::KEYS_POLL;
use caller_keys::{create_key, list_keys, revoke_key};
use discovery::discovery_resources;
use errors::{body_or_error, client_error, json_content_type, ledger_down, ClientError};
use health::{health, health_deep, health_ready, health_v2};
use openapi::openapi;
use pipeline::{settle, verify};
use request_log::{
    request_id, user_agent, with_request_id, Endpoint, FailureSighting, Outcome, RequestLog,
};
use settlements::settlement;
pub use settlements::SETTLEMENT_ID_HEADER;
use supported::{supported, supported_response};

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
    served: Served,
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
    /// `PUT /admin/flags` is on the main listener: a token, and no `ADMIN_ADDR`.
    admin_on_main_listener: bool,
    request_seq: AtomicU64,
    boot_tag: u32,
    v1_deprecation: crate::deprecation::V1Deprecation,
    /// `GET /openapi.json`, built once (it depends on whether the admin API is served here).
    openapi: Value,
    /// The caller keys known now (refreshed from the ledger).
    keys: crate::api_keys::KeyRing,
    /// `API_KEYS=required` and the keys file.
    api_keys: crate::config::ApiKeySettings,
}

impl AppState {
    /// Builds the state for `config` with the chains and schemes it serves.
    pub fn new(config: &Config, served: Served, ledger: Arc<x402_ledger::Ledger>) -> Arc<Self> {
        let boot_tag = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        let _ = telemetry::handle();
        let admin_here = config.admin_addr.is_none() && config.admin_token.is_some();
        let state = Arc::new(AppState {
            served,
            flags: FlagStore::new(config.flags.clone()),
            breaker: Breaker::new(config.breaker.clone()),
            sightings: Sightings::new(config.breaker.window.max(SIGHTING_TTL), SIGHTING_CAPACITY),
            policy: PaymentPolicy::from_config(config),
            supported: RwLock::new(Value::Null),
            ledger,
            publish_order: Arc::new(tokio::sync::Mutex::new(())),
            lifecycle: Lifecycle::default(),
            admin_token: config.admin_token.clone(),
            admin_on_main_listener: admin_here,
            request_seq: AtomicU64::new(0),
            boot_tag,
            v1_deprecation: config.v1_deprecation.clone(),
            openapi: openapi::document(admin_here, config.api_keys.required),
            keys: crate::api_keys::KeyRing::default(),
            api_keys: config.api_keys.clone(),
        });
        state.flags_changed();
        let networks: Vec<String> = state
            .served
            .chains()
            .map(|c| c.network().to_string())
            .collect();
        request_log::zero_series(&networks);
        state
    }

    /// The settlement ledger (records, nonces, payment ids).
    pub fn ledger(&self) -> &Arc<x402_ledger::Ledger> {
        &self.ledger
    }

    /// The chains and schemes served (the reconciler walks the chains).
    pub fn served(&self) -> &Served {
        &self.served
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
        let supported = serde_json::to_value(supported_response(&flags, &self.served))
            .unwrap_or_else(|_| json!({"kinds": [], "extensions": [], "signers": {}}));
        match self.supported.write() {
            Ok(mut guard) => *guard = supported,
            Err(poisoned) => *poisoned.into_inner() = supported,
        }
        let versions = [
            ("x402_v1", flags.x402_version_support.v1),
            ("x402_v2", flags.x402_version_support.v2),
        ];
        for (flag, on) in versions.into_iter().chain(flags.switches()) {
            metrics::gauge!(telemetry::FLAG_STATE, "flag" => flag).set(if on { 1.0 } else { 0.0 });
        }
    }

    fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.boot_tag)
    }

    /// The metric label of a network: its id when configured, `other` otherwise.
    fn network_label(&self, network: &ChainId) -> String {
        if self.served.serves(network) {
            network.to_string()
        } else {
            "other".to_owned()
        }
    }

    fn scheme_for(&self, payment: &Payment) -> Result<&Arc<dyn Scheme>, Reason> {
        self.served.scheme_for(&payment.scheme, &payment.network)
    }
}

/// Builds the router with all routes and the body limit.
pub fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .route("/settlements/{id}", get(settlement))
        .route("/discovery/resources", get(discovery_resources))
        .route("/health", get(health))
        .route("/health/ready", get(health_ready))
        .route("/health/deep", get(health_deep))
        .route("/health/v2", get(health_v2))
        .route("/metrics", get(metrics_text))
        .route("/flags", get(flags))
        .route("/openapi.json", get(openapi));
    if state.admin_on_main_listener {
        router = with_admin_routes(router);
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The admin routes: flags and caller keys.
fn with_admin_routes(router: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    router
        .route("/admin/flags", put(admin_flags))
        .route("/admin/api-keys", get(list_keys).post(create_key))
        .route("/admin/api-keys/{id}", axum::routing::delete(revoke_key))
}

/// The admin API alone, for a separate listener (`ADMIN_ADDR`); empty without a token.
pub fn admin_router(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    if state.admin_token.is_some() {
        router = with_admin_routes(router);
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "no such endpoint; see /supported, /verify, /settle, /settlements/{id}, /health"})),
    )
        .into_response()
}
