//! Prometheus metrics (`GET /metrics`), through the `metrics` facade.
//!
//! One recorder per process, installed on first use. Labels name only configured
//! networks (anything else is `other`) so a caller cannot grow the label set. The
//! reference of every metric is `docs/operations.md`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by endpoint, `x402_version`, network, scheme and outcome.
pub const REQUESTS: &str = "x402_requests_total";
/// Request latency histogram (seconds), by endpoint, `x402_version` and network.
pub const REQUEST_DURATION: &str = "x402_request_duration_seconds";
/// Settlements currently being executed (gauge).
pub const SETTLEMENTS_IN_FLIGHT: &str = "x402_settlements_in_flight";
/// Settlement outcomes, by `x402_version`, network and result.
pub const SETTLEMENTS: &str = "x402_settlements_total";
/// Settlements that failed on the facilitator's side (RPC, gas, ledger, reverts, receipt
/// timeouts), by `x402_version`, network and reason; payer refusals are not counted.
pub const SETTLEMENT_FAILURES: &str = "x402_settlement_failures_total";
/// Request bodies refused because a CAIP-2 id did not parse.
pub const CAIP2_PARSE_ERRORS: &str = "x402_caip2_parse_errors_total";
/// Broadcasts refused because the local nonce was behind the chain (emitted by chain crates).
pub const NONCE_MISMATCHES: &str = "x402_nonce_mismatches_total";
/// Feature flag states (1 on, 0 off), by flag.
pub const FLAG_STATE: &str = "x402_feature_flag_enabled";
/// Shadow comparisons made, by result (`match`, `mismatch`).
pub const SHADOW_COMPARISONS: &str = "x402_shadow_comparisons_total";
/// Shadow comparisons whose v1 and v2 verdicts differed.
pub const SHADOW_MISMATCHES: &str = "x402_shadow_mismatches_total";
/// Times the v2 settle breaker tripped.
pub const BREAKER_TRIPS: &str = "x402_breaker_trips_total";
/// Connections closed at accept because `MAX_CONNECTIONS` were open.
pub const CONNECTIONS_REFUSED: &str = "x402_connections_refused_total";
/// Facilitator-side v2 settlement failures counted by the breaker.
pub const BREAKER_FAILURES: &str = "x402_breaker_failures_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first call. `None` if
/// another recorder was installed first (metrics are then not served).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(REQUEST_DURATION.to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0,
                    ],
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    let upkeep = handle.clone();
                    std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || loop {
                            std::thread::sleep(Duration::from_secs(5));
                            upkeep.run_upkeep();
                        })
                        .ok()?;
                    Some(handle)
                }
                Err(error) => {
                    tracing::error!(error = %error, "metrics recorder could not be installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
