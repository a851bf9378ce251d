//! JSON-RPC 2.0 over HTTP with failover, for the chains whose nodes speak plain JSON-RPC
//! (Solana, NEAR): endpoints in order of health (one that failed goes last for a while), a
//! timeout per call; a node's error answer is a result, a transport failure moves to the
//! next endpoint. URLs are secrets: errors name endpoints `rpc#<n>`.

use std::time::Duration;

use crate::failover::{EndpointHealth, RpcUnavailable, COOL_DOWN};
use serde_json::{json, Value};

/// A node's error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeError {
    /// JSON-RPC error code.
    pub code: i64,
    /// The node's message.
    pub message: String,
    /// Error data (simulation logs and the like).
    pub data: Option<Value>,
    /// `cause.name` of a nearcore error (`UNKNOWN_ACCOUNT`, `INVALID_TRANSACTION`, ...).
    pub cause: Option<String>,
}

/// One call's outcome: the node's answer (its result or its error), or no endpoint
/// answered.
pub type CallResult = Result<Result<Value, NodeError>, RpcUnavailable>;

impl NodeError {
    /// An answer that is not what the method returns, though the node gave no error: read
    /// as the node's trouble.
    pub fn unreadable() -> NodeError {
        NodeError {
            code: 0,
            message: "unreadable answer".into(),
            data: None,
            cause: None,
        }
    }
}

/// The endpoints of one network; URLs are secrets.
pub struct JsonRpc {
    urls: Vec<String>,
    http: reqwest::Client,
    health: EndpointHealth,
}

impl JsonRpc {
    /// Endpoints in preference order.
    pub fn new(urls: &[String], timeout: Duration) -> Result<JsonRpc, String> {
        if urls.is_empty() {
            return Err("no RPC URL".into());
        }
        for (i, url) in urls.iter().enumerate() {
            reqwest::Url::parse(url)
                .map_err(|e| format!("RPC URL #{} is not a URL: {e}", i + 1))?;
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|_| "cannot build the HTTP client".to_owned())?;
        Ok(JsonRpc {
            health: EndpointHealth::new(urls.len(), COOL_DOWN),
            urls: urls.to_vec(),
            http,
        })
    }

    /// One call; `Ok(Err)` is the node's error answer.
    pub async fn call(&self, method: &str, params: Value) -> CallResult {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut last = String::from("no endpoint tried");
        for i in self.health.order() {
            let url = &self.urls[i];
            let label = format!("rpc#{}", i + 1);
            let answer = match self.http.post(url).json(&body).send().await {
                Ok(response) => response.json::<Value>().await,
                Err(e) => {
                    let kind = if e.is_timeout() {
                        "timed out"
                    } else {
                        "transport error"
                    };
                    last = format!("{label}: {kind}");
                    if self.health.failed(i) {
                        tracing::warn!(endpoint = %label, method, "RPC endpoint failed; it goes last for a while");
                    }
                    continue;
                }
            };
            let Ok(answer) = answer else {
                last = format!("{label}: undecodable answer");
                self.health.failed(i);
                continue;
            };
            if self.health.succeeded(i) {
                tracing::info!(endpoint = %label, "RPC endpoint answers again");
            }
            if let Some(error) = answer.get("error") {
                return Ok(Err(NodeError {
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    data: error.get("data").cloned(),
                    cause: error
                        .pointer("/cause/name")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                }));
            }
            return Ok(Ok(answer.get("result").cloned().unwrap_or(Value::Null)));
        }
        Err(RpcUnavailable(last))
    }
}
