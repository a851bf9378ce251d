//! One log line and the request metrics per `/verify` or `/settle`, with `x402_version`,
//! network, scheme, outcome, reason, payer and transaction; the request id.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Verify,
    Settle,
}

impl Endpoint {
    pub(super) fn name(self) -> &'static str {
        match self {
            Endpoint::Verify => "verify",
            Endpoint::Settle => "settle",
        }
    }
}

/// How a request ended, as its log line and the `outcome` label say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Verify: the payment is valid.
    Valid,
    /// A protocol refusal of the payment (the payer's fault, or a flag or policy).
    Invalid,
    /// Not a request (4xx), or past a rate limit.
    Rejected,
    /// Settle: settled on chain.
    Success,
    /// Settle: sent, outcome not known yet.
    Pending,
    /// Settle: failed on chain or on the facilitator's side.
    Failed,
}

impl Outcome {
    /// The outcomes each endpoint can end with (settle refusals are `invalid` too).
    fn of(endpoint: Endpoint) -> &'static [Outcome] {
        match endpoint {
            Endpoint::Verify => &[Outcome::Valid, Outcome::Invalid, Outcome::Rejected],
            Endpoint::Settle => &[
                Outcome::Success,
                Outcome::Pending,
                Outcome::Failed,
                Outcome::Invalid,
                Outcome::Rejected,
            ],
        }
    }

    /// The label text.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Rejected => "rejected",
            Outcome::Success => "success",
            Outcome::Pending => "pending",
            Outcome::Failed => "failed",
        }
    }
}

/// Whether a settle line is the one `x402_settlement_failures_total` counted: a log-based
/// metric (CloudWatch metric filters, docs/deployment.md) counts `first` lines to agree with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum FailureSighting {
    /// Not a facilitator-side failure.
    #[default]
    None,
    /// A facilitator-side failure seen for the first time: counted.
    First,
    /// The same failure answered again (a re-sent request): not counted again.
    Repeat,
}

impl FailureSighting {
    /// The sighting of `settlement`, `first` when this request is its first sighting.
    pub(super) fn of(settlement: &Settlement, first: bool) -> FailureSighting {
        match (is_facilitator_failure(settlement), first) {
            (false, _) => FailureSighting::None,
            (true, true) => FailureSighting::First,
            (true, false) => FailureSighting::Repeat,
        }
    }

    /// The `facilitator_failure` log field.
    fn as_str(self) -> &'static str {
        match self {
            FailureSighting::None => "",
            FailureSighting::First => "first",
            FailureSighting::Repeat => "repeat",
        }
    }
}

/// What the log line (and the metrics) of one request say.
#[derive(Clone)]
pub(super) struct RequestLog {
    pub(super) request_id: String,
    pub(super) endpoint: Endpoint,
    pub(super) started: Instant,
    pub(super) version: Option<X402Version>,
    pub(super) network: String,
    /// `network` when configured, `other` otherwise (metric label).
    pub(super) network_metric: String,
    pub(super) scheme: String,
    /// The caller's `User-Agent`: which resource servers still send v1.
    pub(super) user_agent: String,
    /// The request's settlement id, once it read as a payment (answered in a header).
    pub(super) settlement_id: Option<String>,
    /// The `EXTENSION-RESPONSES` value of the answer, when an extension answers.
    pub(super) extension_responses: Option<String>,
    /// Settle: whether this answer is a facilitator-side failure, and its first sighting.
    pub(super) failure: FailureSighting,
}

impl RequestLog {
    /// The `network` metric label: the configured id, or `other` before or without one.
    pub(super) fn metric_network(&self) -> String {
        if self.network_metric.is_empty() {
            "other".to_owned()
        } else {
            self.network_metric.clone()
        }
    }

    /// Counts a settlement that failed on our side (both versions): what a deployment's
    /// rollback watch and the alert rules read, since the breaker sees v2 only.
    pub(super) fn count_facilitator_failure(&self, settlement: &Settlement) {
        if self.failure != FailureSighting::First {
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

    pub(super) fn finish(
        &self,
        outcome: Outcome,
        reason: Option<Reason>,
        payer: Option<&str>,
        tx: Option<&str>,
    ) {
        let elapsed = self.started.elapsed();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let version = self.version.map(|v| v.label()).unwrap_or("unknown");
        let message = match (self.endpoint, outcome) {
            (Endpoint::Settle, Outcome::Success) => "Settlement successful",
            (Endpoint::Settle, Outcome::Pending) => "Settlement pending",
            (Endpoint::Settle, Outcome::Failed) => "Settlement failed",
            (Endpoint::Settle, _) => "Settlement refused",
            (Endpoint::Verify, Outcome::Valid) => "Verification succeeded",
            (Endpoint::Verify, _) => "Verification refused",
        };
        let outcome = outcome.as_str();
        tracing::info!(
            request_id = %self.request_id,
            endpoint = self.endpoint.name(),
            x402_version = version,
            network = %self.network,
            served_network = %self.metric_network(),
            scheme = %self.scheme,
            outcome,
            reason = reason.map(|r| r.as_str()).unwrap_or(""),
            payer = payer.unwrap_or(""),
            transaction = tx.unwrap_or(""),
            facilitator_failure = self.failure.as_str(),
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
            "outcome" => outcome,
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
                "result" => outcome,
            )
            .increment(1);
        }
    }
}

/// The caller's `User-Agent`, printable ASCII only and at most 200 characters.
pub(super) fn user_agent(headers: &HeaderMap) -> String {
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

pub(super) fn request_id(headers: &HeaderMap, state: &AppState) -> String {
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

pub(super) fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Creates (at zero, or leaves as it is when it exists) every series an alert or dashboard reads for the served `networks`
/// (CAIP-2 labels) in both versions, so that a fresh instance answers "0" instead of "no
/// data". The label values are the ones [`RequestLog::finish`] and
/// [`RequestLog::count_facilitator_failure`] write.
pub(super) fn zero_series(networks: &[String]) {
    for endpoint in [Endpoint::Verify, Endpoint::Settle] {
        metrics::counter!(telemetry::CAIP2_PARSE_ERRORS, "endpoint" => endpoint.name())
            .increment(0);
    }
    for network in networks {
        for version in [X402Version::V1, X402Version::V2] {
            zero_network(network, version.label());
        }
        metrics::counter!(telemetry::SETTLEMENT_REPLACEMENTS, "network" => network.clone())
            .increment(0);
        if network.starts_with("eip155:") {
            metrics::counter!(telemetry::NONCE_MISMATCHES, "network" => network.clone())
                .increment(0);
        }
    }
    metrics::gauge!(telemetry::SETTLEMENTS_IN_FLIGHT).increment(0.0);
    for result in ["missing", "unknown"] {
        metrics::counter!(telemetry::API_KEY_REQUESTS, "key" => "none", "result" => result)
            .increment(0);
    }
    for result in ["match", "mismatch"] {
        metrics::counter!(telemetry::SHADOW_COMPARISONS, "result" => result).increment(0);
    }
    for name in [
        telemetry::SHADOW_MISMATCHES,
        telemetry::BREAKER_TRIPS,
        telemetry::BREAKER_FAILURES,
        telemetry::CONNECTIONS_REFUSED,
    ] {
        metrics::counter!(name).increment(0);
    }
}

fn zero_network(network: &str, version: &'static str) {
    for endpoint in [Endpoint::Verify, Endpoint::Settle] {
        for outcome in Outcome::of(endpoint) {
            metrics::counter!(
                telemetry::REQUESTS,
                "endpoint" => endpoint.name(),
                "x402_version" => version,
                "network" => network.to_owned(),
                "scheme" => "exact",
                "outcome" => outcome.as_str(),
            )
            .increment(0);
        }
        // Registered without an observation: exported with zero counts.
        let _ = metrics::histogram!(
            telemetry::REQUEST_DURATION,
            "endpoint" => endpoint.name(),
            "x402_version" => version,
            "network" => network.to_owned(),
        );
    }
    for outcome in Outcome::of(Endpoint::Settle) {
        metrics::counter!(
            telemetry::SETTLEMENTS,
            "x402_version" => version,
            "network" => network.to_owned(),
            "result" => outcome.as_str(),
        )
        .increment(0);
    }
    for reason in Reason::ALL.iter().filter(|r| r.is_facilitator_failure()) {
        metrics::counter!(
            telemetry::SETTLEMENT_FAILURES,
            "x402_version" => version,
            "network" => network.to_owned(),
            "reason" => reason.as_str(),
        )
        .increment(0);
    }
}
