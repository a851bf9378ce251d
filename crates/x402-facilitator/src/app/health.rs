//! Health answers: liveness (`/health`), readiness (`/health/ready`, what a load balancer
//! asks), the deep check of every network and the ledger (`/health/deep`), and v2 alone
//! (`/health/v2`). No answer carries a secret.

use super::*;

pub(super) async fn health() -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "version": telemetry::VERSION,
        "build": telemetry::COMMIT,
    }))
}

pub(super) async fn health_ready(State(state): State<Arc<AppState>>) -> Response {
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
pub(super) fn self_tests(v1: bool, v2: bool) -> Vec<HealthCheck> {
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

/// Runs every network's own checks concurrently.
pub(super) async fn network_checks(
    state: &AppState,
    only: impl Fn(&ChainId) -> bool,
) -> Vec<Value> {
    let mut tasks = tokio::task::JoinSet::new();
    for chain in state.served.chains() {
        if !only(chain.network()) {
            continue;
        }
        let chain = chain.clone();
        tasks.spawn(async move { (chain.network().clone(), chain.health().await) });
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

pub(super) fn health_answer(checks: Vec<Value>, extra: serde_json::Map<String, Value>) -> Response {
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

pub(super) async fn health_deep(State(state): State<Arc<AppState>>) -> Response {
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

pub(super) async fn health_v2(State(state): State<Arc<AppState>>) -> Response {
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
