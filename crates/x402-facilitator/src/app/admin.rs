//! The operator's surface: `/metrics`, `/flags` and the authenticated `PUT /admin/flags`.

use super::*;

pub(super) async fn metrics_text() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        telemetry::render(),
    )
        .into_response()
}

pub(super) async fn flags(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.flags.to_json())
}

/// Constant-time bearer check; `false` when the header is missing or wrong.
pub(super) fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
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

/// Why an admin call is refused before its body is read: 400 for more than one
/// `Authorization` header, 401 (with a challenge) for a missing or wrong token.
pub(super) fn admin_refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        tracing::warn!("admin API call refused: more than one Authorization header");
        let message = "send exactly one Authorization header".into();
        return Some(client_error(StatusCode::BAD_REQUEST, message, None).into_response());
    }
    if !authorized(state, headers) {
        tracing::warn!("admin API call refused: missing or wrong bearer token");
        let challenge = [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))];
        let body = Json(json!({"error": "missing or wrong bearer token"}));
        return Some((StatusCode::UNAUTHORIZED, challenge, body).into_response());
    }
    None
}

pub(super) async fn admin_flags(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
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
