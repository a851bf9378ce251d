//! Caller API keys on the HTTP surface: the check `/verify` and `/settle` make (401 without
//! a known key, 403 outside its policy, 429 past its rate), and the admin routes that add,
//! list and revoke keys (`/admin/api-keys`). Keys live in the ledger; see `api_keys.rs`.

use axum::extract::rejection::PathRejection;
use axum::extract::Path;

use super::*;
use crate::api_keys::{self, CallerKey, KeyEntry, KeyHeaderError};

/// How often an instance reads the keys again (a revocation elsewhere reaches it by then).
pub const KEYS_POLL: std::time::Duration = std::time::Duration::from_secs(1);

impl AppState {
    /// Whether `/verify` and `/settle` need a key.
    pub fn keys_required(&self) -> bool {
        self.api_keys.required
    }

    /// Reads the keys again from the ledger (each key's series exported from then on, at
    /// zero until used); logged when it cannot.
    pub async fn refresh_keys(&self) {
        match self.keys.refresh(&self.ledger).await {
            Ok(ids) => {
                for id in ids {
                    for result in ["accepted", "forbidden", "rate_limited"] {
                        metrics::counter!(telemetry::API_KEY_REQUESTS, "key" => id.clone(), "result" => result)
                            .increment(0);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "API keys not refreshed: ledger unavailable; the last known keys stay")
            }
        }
    }

    /// Stores the keys file's keys (revoking file keys no longer in it) and refreshes;
    /// nothing changes when the file does not read. Returns how many keys it holds.
    pub async fn load_keys_file(&self) -> Result<usize, String> {
        let Some(path) = &self.api_keys.file else {
            return Ok(0);
        };
        let keys = api_keys::read_keys_file(path)?;
        let revoked = self
            .ledger
            .replace_file_keys(&keys)
            .await
            .map_err(|e| e.to_string())?;
        self.refresh_keys().await;
        tracing::info!(keys = keys.len(), revoked, "API keys file loaded");
        Ok(keys.len())
    }
}

fn count(key: &CallerKey, result: &'static str) {
    metrics::counter!(telemetry::API_KEY_REQUESTS, "key" => key.id.clone(), "result" => result)
        .increment(1);
}

/// The key a request presents, when keys are required: 401 (with `WWW-Authenticate`) for
/// none or an unknown one, 400 for two different ones.
pub(super) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Arc<CallerKey>>, Box<Response>> {
    if !state.keys_required() {
        return Ok(None);
    }
    let refuse = |reason: &'static str, message: &str| {
        metrics::counter!(telemetry::API_KEY_REQUESTS, "key" => "none", "result" => reason)
            .increment(1);
        let body = Json(json!({"error": message, "field": null}));
        let challenge = [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))];
        Box::new((StatusCode::UNAUTHORIZED, challenge, body).into_response())
    };
    let presented = match api_keys::presented_key(headers) {
        Ok(presented) => presented,
        Err(KeyHeaderError::Repeated) => {
            let message = KeyHeaderError::Repeated.message().into();
            let error = client_error(StatusCode::BAD_REQUEST, message, None);
            return Err(Box::new(error.into_response()));
        }
        Err(unclear) => return Err(refuse("unknown", unclear.message())),
    };
    let Some(presented) = presented else {
        return Err(refuse(
            "missing",
            "an API key is required (Authorization: Bearer <key> or X-API-Key)",
        ));
    };
    match state.keys.find(&presented) {
        Some(key) => Ok(Some(key)),
        None => Err(refuse("unknown", "unknown or revoked API key")),
    }
}

/// The key's policy and rate for this payment: 403 with the protocol refusal (its reason,
/// network and payer) outside the policy, 429 with `Retry-After` past the rate.
pub(super) async fn admit(
    state: &AppState,
    key: &CallerKey,
    payment: &Payment,
    endpoint: Endpoint,
) -> Result<(), Box<Response>> {
    if let Err((reason, message)) = key.admits(payment) {
        count(key, "forbidden");
        let mut answer = match endpoint {
            Endpoint::Verify => {
                Verdict::invalid(reason, message.clone(), None).to_json(payment.version)
            }
            Endpoint::Settle => Settlement::failed(reason, message.clone(), None, "")
                .to_json(payment.version, &payment.network_label),
        };
        answer["error"] = json!(message);
        return Err(Box::new(
            (StatusCode::FORBIDDEN, Json(answer)).into_response(),
        ));
    }
    let limit = key.policy.rate_limit_per_minute;
    if limit > 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let window = now - now % 60;
        let used = match state.ledger.count_key_use(&key.id, window as i64).await {
            Ok(used) => used,
            Err(e) => {
                // The limit protects this service; the ledger refusing settlements already
                // fails them closed, and a verify is safe to answer.
                tracing::warn!(key_id = %key.id, error = %e, "API key use not counted: ledger unavailable");
                0
            }
        };
        if used > u64::from(limit) {
            count(key, "rate_limited");
            let error = ClientError {
                status: StatusCode::TOO_MANY_REQUESTS,
                error: format!("API key {} is past its {limit} requests a minute", key.id),
                field: None,
                retry_after: Some((window + 60 - now).max(1)),
            };
            return Err(Box::new(error.into_response()));
        }
    }
    count(key, "accepted");
    Ok(())
}

/// `POST /admin/api-keys`: a new key for `id` with its policy; the key is answered once
/// and only its hash is kept.
pub(super) async fn create_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(refusal) = admin::admin_refusal(&state, &headers) {
        return refusal;
    }
    let bytes = match body_or_error(body) {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let bad =
        |message: String| client_error(StatusCode::BAD_REQUEST, message, None).into_response();
    let new = serde_json::from_slice(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|body| KeyEntry::read(body, false));
    let new = match new {
        Ok(new) => new,
        Err(e) => return bad(format!("not a key request: {e}")),
    };
    let key = match api_keys::new_key() {
        Ok(key) => key,
        Err(e) => return ledger_down("API key change failed", "write", e),
    };
    let stored = x402_ledger::StoredKey {
        id: new.id.clone(),
        key_hash: api_keys::hash_key(&key),
        policy: serde_json::to_string(&new.policy).unwrap_or_default(),
        source: "admin".into(),
        updated_at: 0,
    };
    if let Err(e) = state.ledger.put_api_key(&stored).await {
        return ledger_down("API key change failed", "write", e);
    }
    state.refresh_keys().await;
    tracing::info!(key_id = %new.id, "API key created");
    let answer = json!({"id": new.id, "key": key, "policy": new.policy});
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// `GET /admin/api-keys`: ids, policies and sources (never a key or its hash).
pub(super) async fn list_keys(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = admin::admin_refusal(&state, &headers) {
        return refusal;
    }
    match state.ledger.api_keys().await {
        Ok(keys) => {
            let keys: Vec<Value> = keys
                .iter()
                .map(|k| {
                    let policy = serde_json::from_str::<Value>(&k.policy).unwrap_or(Value::Null);
                    json!({"id": k.id, "source": k.source, "policy": policy})
                })
                .collect();
            Json(json!({"keys": keys})).into_response()
        }
        Err(e) => ledger_down("API key listing failed", "read", e),
    }
}

/// `DELETE /admin/api-keys/{id}`: revokes a key here at once and on every instance that
/// shares the ledger within [`KEYS_POLL`].
pub(super) async fn revoke_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    if let Some(refusal) = admin::admin_refusal(&state, &headers) {
        return refusal;
    }
    let Some(id) = path
        .ok()
        .map(|Path(id)| id)
        .filter(|id| api_keys::valid_id(id))
    else {
        let error = client_error(
            StatusCode::BAD_REQUEST,
            "not a key id".into(),
            Some("id".into()),
        );
        return error.into_response();
    };
    match state.ledger.delete_api_key(&id).await {
        Ok(true) => {
            state.refresh_keys().await;
            tracing::info!(key_id = %id, "API key revoked");
            Json(json!({"revoked": id})).into_response()
        }
        Ok(false) => {
            client_error(StatusCode::NOT_FOUND, "no key has this id".into(), None).into_response()
        }
        Err(e) => ledger_down("API key change failed", "write", e),
    }
}
