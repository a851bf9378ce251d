//! JSON-RPC access with batching, failover and round-trip counting.
//!
//! A verification asks the node several questions (balance, authorization state,
//! simulation); they go out as one JSON-RPC batch so that a verify costs one HTTP
//! round trip. Endpoints are tried in order of health: those that failed recently go last
//! (for a cool-down), the rest in configured order; a timeout or transport failure moves
//! to the next. Node answers that are errors (a revert, "nonce too low") are results,
//! not failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy::rpc::client::RpcClient;
use alloy::transports::{RpcError, TransportErrorKind};
use serde_json::value::RawValue;
use serde_json::Value;
pub use x402_settlement::failover::RpcUnavailable;
use x402_settlement::failover::{EndpointHealth, COOL_DOWN};

/// A node's error answer to one call (revert data, pool rejection, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeError {
    /// JSON-RPC error code.
    pub code: i64,
    /// Message as the node wrote it.
    pub message: String,
    /// Optional error data (revert bytes for `eth_call`).
    pub data: Option<String>,
}

/// The result of one call in a batch.
pub type CallResult = Result<Value, NodeError>;

/// One RPC endpoint; the URL is a secret and never printed.
struct Endpoint {
    client: RpcClient,
    label: String,
}

/// A set of endpoints for one chain.
pub struct Rpc {
    endpoints: Vec<Endpoint>,
    round_trips: AtomicU64,
    failovers: AtomicU64,
    health: EndpointHealth,
}

impl Rpc {
    /// Connects (lazily) to the given URLs, in preference order; each call gives up on an
    /// endpoint after `timeout`.
    pub fn new(urls: &[String], timeout: Duration) -> Result<Rpc, String> {
        use alloy::transports::http::reqwest;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(|_| "cannot build the HTTP client".to_owned())?;
        let mut endpoints = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let parsed = url
                .parse()
                .map_err(|e| format!("RPC URL #{} is not a valid URL: {e}", i + 1))?;
            endpoints.push(Endpoint {
                client: RpcClient::new_http_with_client(http.clone(), parsed),
                label: format!("rpc#{}", i + 1),
            });
        }
        if endpoints.is_empty() {
            return Err("no RPC URL".into());
        }
        Ok(Rpc {
            health: EndpointHealth::new(endpoints.len(), COOL_DOWN),
            endpoints,
            round_trips: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
        })
    }

    /// Times a call moved on from a failing endpoint to the next one.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// HTTP round trips made so far (a batch counts once).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Sends all calls in one batch; each call gets its own result.
    pub async fn batch(
        &self,
        calls: &[(&'static str, Value)],
    ) -> Result<Vec<CallResult>, RpcUnavailable> {
        let mut last_error = String::from("no endpoint tried");
        let order = self.health.order();
        for (tried, &index) in order.iter().enumerate() {
            let endpoint = &self.endpoints[index];
            match self.batch_on(endpoint, calls).await {
                Ok(results) => {
                    if self.health.succeeded(index) {
                        tracing::info!(endpoint = %endpoint.label, "RPC endpoint answers again");
                    }
                    return Ok(results);
                }
                Err(error) => {
                    if self.health.failed(index) {
                        tracing::warn!(endpoint = %endpoint.label, error = %error, "RPC endpoint failed; it goes last for a while");
                    }
                    if tried + 1 < order.len() {
                        self.failovers.fetch_add(1, Ordering::Relaxed);
                    }
                    last_error = format!("{}: {error}", endpoint.label);
                }
            }
        }
        Err(RpcUnavailable(last_error))
    }

    async fn batch_on(
        &self,
        endpoint: &Endpoint,
        calls: &[(&'static str, Value)],
    ) -> Result<Vec<CallResult>, String> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut batch = endpoint.client.new_batch();
        let mut waiters = Vec::with_capacity(calls.len());
        for (method, params) in calls {
            let waiter = batch
                .add_call::<Value, Box<RawValue>>(*method, params)
                .map_err(|_| format!("cannot encode {method}"))?;
            waiters.push(waiter);
        }
        // Never the client's own text: it quotes the endpoint URL (an API key).
        batch.send().await.map_err(|e| transport_message(&e))?;
        let mut results = Vec::with_capacity(waiters.len());
        for waiter in waiters {
            match waiter.await {
                Ok(raw) => {
                    let value = serde_json::from_str(raw.get())
                        .map_err(|_| "undecodable answer".to_owned())?;
                    results.push(Ok(value));
                }
                Err(RpcError::ErrorResp(payload)) => results.push(Err(NodeError {
                    code: payload.code,
                    message: payload.message.to_string(),
                    data: payload
                        .data
                        .as_ref()
                        .map(|d| d.get().trim_matches('"').to_owned()),
                })),
                Err(RpcError::NullResp) => results.push(Ok(Value::Null)),
                Err(other) => return Err(transport_message(&other)),
            }
        }
        Ok(results)
    }

    /// One call (one round trip).
    pub async fn call(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<CallResult, RpcUnavailable> {
        let mut results = self.batch(&[(method, params)]).await?;
        Ok(results.pop().unwrap_or_else(|| {
            Err(NodeError {
                code: -1,
                message: "empty batch answer".into(),
                data: None,
            })
        }))
    }
}

fn transport_message(error: &RpcError<TransportErrorKind>) -> String {
    // Transport errors can carry the URL (and so an API key); keep only the kind.
    match error {
        RpcError::Transport(kind) => match kind {
            TransportErrorKind::HttpError(http) => format!("HTTP status {}", http.status),
            TransportErrorKind::BackendGone => "backend gone".into(),
            TransportErrorKind::Custom(inner) if inner.to_string().contains("timed out") => {
                "timed out".into()
            }
            _ => "transport error".into(),
        },
        RpcError::DeserError { .. } => "undecodable answer".into(),
        _ => "RPC failure".into(),
    }
}
