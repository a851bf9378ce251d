//! Every metric the facilitator emits, in one table: its name, kind and `# HELP` text. The
//! service, the engine and the chain crates name metrics only through these constants, so
//! a dashboard, an alert rule and `x402-deploy watch` read what the code writes.

/// Requests answered, by endpoint, `x402_version`, network, scheme and outcome.
pub const REQUESTS: &str = "x402_requests_total";
/// Request latency histogram (seconds), by endpoint, `x402_version` and network.
pub const REQUEST_DURATION: &str = "x402_request_duration_seconds";
/// Settlements currently being executed (gauge).
pub const SETTLEMENTS_IN_FLIGHT: &str = "x402_settlements_in_flight";
/// Settlement outcomes, by `x402_version`, network and result.
pub const SETTLEMENTS: &str = "x402_settlements_total";
/// Settlements that failed on the facilitator's side, by `x402_version`, network and reason.
pub const SETTLEMENT_FAILURES: &str = "x402_settlement_failures_total";
/// Request bodies refused because a CAIP-2 id did not parse.
pub const CAIP2_PARSE_ERRORS: &str = "x402_caip2_parse_errors_total";
/// Times the chain's nonce was found ahead of (or behind) the ledger's.
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
/// New transactions built because a recorded one could never land.
pub const SETTLEMENT_REPLACEMENTS: &str = "x402_settlement_replacements_total";
/// Always 1, labelled with the running version and commit.
pub const BUILD_INFO: &str = "x402_build_info";
/// Counter: `/verify` and `/settle` calls under `API_KEYS=required`, by `key` (the key's id,
/// `none` without a known key) and `result` (`accepted`, `forbidden`, `rate_limited`,
/// `missing`, `unknown`).
pub const API_KEY_REQUESTS: &str = "x402_api_key_requests_total";

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// A level.
    Gauge,
    /// A distribution.
    Histogram,
}

/// Every metric with its kind and `# HELP` text: the one list that names them.
pub const CATALOGUE: &[(&str, Kind, &str)] = &[
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
    (API_KEY_REQUESTS, Kind::Counter, "Calls under API_KEYS=required, by key id (none without a known key) and result."),
    (CONNECTIONS_REFUSED, Kind::Counter, "Connections closed at accept because MAX_CONNECTIONS were open."),
    (BUILD_INFO, Kind::Gauge, "Always 1; the labels name the running version and commit."),
];

#[cfg(test)]
mod tests {
    use super::CATALOGUE;

    #[test]
    fn names_are_unique_prometheus_names_with_help() {
        let mut seen = std::collections::HashSet::new();
        for (name, _, help) in CATALOGUE {
            assert!(seen.insert(*name), "{name} twice");
            assert!(name.starts_with("x402_"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert!(help.ends_with('.'), "{name}: {help}");
        }
    }
}
