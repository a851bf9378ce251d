//! Shadow mode (`shadow_v2_enabled`): a v1 `/verify` is also checked by the v2 path, through
//! the one v1 → v2 mapping, concurrently with the v1 answer; a difference is logged and
//! counted, never answered.

use super::*;

/// The v2 path's verdict on a v1 request, computed concurrently with the v1 answer.
pub(super) type ShadowTask = tokio::task::JoinHandle<Result<(Verdict, Value), String>>;

/// The v1 request through the one v1 → v2 mapping, verified by the v2 path.
pub(super) fn start_shadow(
    state: &Arc<AppState>,
    request: &VersionedRequest,
) -> Option<ShadowTask> {
    let VersionedRequest::V1(v1_request) = request else {
        return None;
    };
    let converted = convert::request_v1_to_v2(v1_request);
    let state = state.clone();
    Some(tokio::spawn(async move {
        let v2_request = converted.map_err(|e| format!("v1 request does not convert: {e}"))?;
        let request = VersionedRequest::V2(Box::new(v2_request));
        let payment = Payment::from_request(&request).map_err(|r| r.message)?;
        let scheme = state
            .scheme_for(&payment)
            .map_err(|r| format!("no v2 scheme: {}", r.as_str()))?
            .clone();
        let verdict = scheme.verify(&payment).await;
        let answer = verdict.to_json(X402Version::V2);
        Ok((verdict, answer))
    }))
}

pub(super) async fn compare_shadow(
    shadow: ShadowTask,
    v1: Verdict,
    v1_answer: Value,
    request_id: String,
) {
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
