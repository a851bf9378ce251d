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
/// New transactions built because a recorded one could never land (emitted by chain crates).
pub const SETTLEMENT_REPLACEMENTS: &str = "x402_settlement_replacements_total";
/// Always 1, labelled with the running version and commit.
pub const BUILD_INFO: &str = "x402_build_info";

/// What kind of series a metric is.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric with its `# HELP` text: the one list that names them.
const CATALOGUE: &[(&str, Kind, &str)] = &[
    (REQUESTS, Kind::Counter, "Requests answered, by endpoint, x402_version, network, scheme and outcome."),
    (REQUEST_DURATION, Kind::Histogram, "Request latency in seconds, by endpoint, x402_version and network."),
    (SETTLEMENTS_IN_FLIGHT, Kind::Gauge, "Settlements being executed right now."),
    (SETTLEMENTS, Kind::Counter, "Settlement outcomes, by x402_version, network and result."),
    (SETTLEMENT_FAILURES, Kind::Counter, "Settlements that failed on the facilitator's side, each once, by x402_version, network and reason."),
    (CAIP2_PARSE_ERRORS, Kind::Counter, "Request bodies refused because a CAIP-2 id did not parse, by endpoint."),
    (NONCE_MISMATCHES, Kind::Counter, "Times the chain's nonce was found ahead of the ledger's, by network."),
    (SETTLEMENT_REPLACEMENTS, Kind::Counter, "Replacement transactions for recorded ones that could never land, by network."),
    (FLAG_STATE, Kind::Gauge, "Feature flag states (1 on, 0 off), by flag."),
    (SHADOW_COMPARISONS, Kind::Counter, "Shadow v1/v2 verification comparisons, by result."),
    (SHADOW_MISMATCHES, Kind::Counter, "Shadow comparisons whose v1 and v2 verdicts differed."),
    (BREAKER_TRIPS, Kind::Counter, "Times the v2 settle breaker tripped."),
    (BREAKER_FAILURES, Kind::Counter, "Facilitator-side v2 settlement failures the breaker counted."),
    (CONNECTIONS_REFUSED, Kind::Counter, "Connections closed at accept because MAX_CONNECTIONS were open."),
    (BUILD_INFO, Kind::Gauge, "Always 1; the labels name the running version and commit."),
];

/// The running version, as `--version`, `/health` and the build metric say it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the binary was built from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("X402_BUILD_COMMIT");

/// Registers the `# HELP` text of every metric and sets the build metric.
fn describe() {
    for (name, kind, help) in CATALOGUE {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, *help),
        }
    }
    metrics::gauge!(BUILD_INFO, "version" => VERSION, "commit" => COMMIT).set(1.0);
}

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
                    describe();
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
