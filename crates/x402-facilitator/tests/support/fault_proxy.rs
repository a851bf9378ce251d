//! A JSON-RPC relay in front of a real node (anvil) that fails on command: the failing
//! node a facilitator meets in production (connection reset, a node that never answers,
//! HTTP 5xx, JSON-RPC errors, one method failing), switchable at the moment
//! a settlement is broadcast. Everything it does not fail is the real node's answer.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the relay answers a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Forward to the node.
    None,
    /// Close the connection with a TCP reset.
    Reset,
    /// Keep the connection open and never answer.
    Hang,
    /// `HTTP 500` with a plain-text body.
    Http500,
    /// A JSON-RPC error (`-32603 internal error`) for every call.
    RpcError,
    /// Forward, but answer every call of this method (in a batch or alone) with this node
    /// error (a rate-limited `eth_estimateGas`, a node without `eth_simulateV1`, a NEAR
    /// node that cannot read a transaction's status).
    MethodError(&'static str, i64, String),
    /// Answer every request that calls this method with a node error, without forwarding
    /// it (a node that refuses a send it never took); other requests are forwarded.
    Withhold(&'static str),
    /// Forward, but answer every Solana `simulateTransaction` with success: a node whose
    /// simulation disagrees with execution (a provider lagging behind the cluster).
    SimulationPasses,
    /// Forward, but answer every Solana `getSignatureStatuses` with nothing seen yet: a
    /// node behind the cluster, or a transaction that takes longer than the wait.
    SignaturesUnseen,
}

#[derive(Debug)]
struct Modes {
    now: Fault,
    /// Applied from the first `eth_sendRawTransaction` on (which is still forwarded).
    after_broadcast: Option<Fault>,
    requests: u64,
}

/// The relay; its `url` is `http://127.0.0.1:PORT`.
pub struct FaultProxy {
    /// Where the relay listens.
    pub url: String,
    modes: Arc<Mutex<Modes>>,
}

impl FaultProxy {
    /// Relays to the node at `upstream` (an `http://` URL).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let modes = Arc::new(Mutex::new(Modes {
            now: Fault::None,
            after_broadcast: None,
            requests: 0,
        }));
        let http = reqwest::Client::new();
        let upstream = upstream.to_owned();
        let shared = modes.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(relay(
                    stream,
                    http.clone(),
                    upstream.clone(),
                    shared.clone(),
                ));
            }
        });
        FaultProxy { url, modes }
    }

    /// Every request from now on meets `fault`.
    pub fn set(&self, fault: Fault) {
        let mut modes = self.modes.lock().unwrap();
        modes.now = fault;
        modes.after_broadcast = None;
    }

    /// Forward until a transaction is broadcast, then meet `fault`.
    pub fn after_broadcast(&self, fault: Fault) {
        let mut modes = self.modes.lock().unwrap();
        modes.now = Fault::None;
        modes.after_broadcast = Some(fault);
    }

    /// Requests relayed or failed so far.
    pub fn requests(&self) -> u64 {
        self.modes.lock().unwrap().requests
    }
}

/// One request head and body (Content-Length framing, as JSON-RPC clients send).
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(buffer[head_end..head_end + length].to_vec())
}

async fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
}

fn calls_of(body: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(calls)) => calls,
        Ok(call) => vec![call],
        Err(_) => Vec::new(),
    }
}

fn rpc_errors(body: &[u8], code: i64, message: &str) -> Vec<u8> {
    let answers: Vec<Value> = calls_of(body)
        .iter()
        .map(|c| json!({"jsonrpc": "2.0", "id": c["id"], "error": {"code": code, "message": message}}))
        .collect();
    let batch = serde_json::from_slice::<Value>(body).is_ok_and(|v| v.is_array());
    if batch {
        serde_json::to_vec(&answers).unwrap()
    } else {
        serde_json::to_vec(&answers.first().cloned().unwrap_or(Value::Null)).unwrap()
    }
}

/// The node's answers (one, or a batch's) to the calls of `method`.
fn answers_to<'a>(calls: &[Value], method: &str, value: &'a mut Value) -> Vec<&'a mut Value> {
    let asked: Vec<&Value> = calls
        .iter()
        .filter(|c| c["method"] == method)
        .map(|c| &c["id"])
        .collect();
    let answers: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        single => vec![single],
    };
    answers
        .into_iter()
        .filter(|answer| asked.contains(&&answer["id"]))
        .collect()
}

/// Rewrites the node's answers to `simulateTransaction` calls into successes.
fn pass_simulations(calls: &[Value], value: &mut Value) {
    for answer in answers_to(calls, "simulateTransaction", value) {
        let context = answer["result"]["context"].clone();
        *answer = json!({"jsonrpc": "2.0", "id": answer["id"].clone(), "result": {
            "context": context,
            "value": {"err": null, "logs": [], "accounts": null, "unitsConsumed": 1}
        }});
    }
}

/// Every `getSignatureStatuses` answer says nothing is seen (`null` per signature).
fn hide_signatures(calls: &[Value], value: &mut Value) {
    for answer in answers_to(calls, "getSignatureStatuses", value) {
        if let Some(statuses) = answer["result"]["value"].as_array_mut() {
            statuses.iter_mut().for_each(|s| *s = Value::Null);
        }
    }
}

async fn relay(
    mut stream: TcpStream,
    http: reqwest::Client,
    upstream: String,
    modes: Arc<Mutex<Modes>>,
) {
    while let Some(body) = read_request(&mut stream).await {
        let calls = calls_of(&body);
        let broadcast = calls
            .iter()
            .any(|c| c["method"] == "eth_sendRawTransaction");
        let fault = {
            let mut modes = modes.lock().unwrap();
            modes.requests += 1;
            let fault = modes.now.clone();
            if broadcast {
                if let Some(next) = modes.after_broadcast.take() {
                    modes.now = next;
                }
            }
            fault
        };
        let ok = match fault {
            Fault::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            Fault::Hang => {
                // Held open until the client gives up and closes it.
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Fault::Http500 => {
                respond(
                    &mut stream,
                    "500 Internal Server Error",
                    "text/plain",
                    b"upstream failure",
                )
                .await
            }
            Fault::RpcError => {
                let answer = rpc_errors(&body, -32603, "internal error");
                respond(&mut stream, "200 OK", "application/json", &answer).await
            }
            Fault::Withhold(method) if calls.iter().any(|c| c["method"] == method) => {
                let answer = rpc_errors(&body, -32000, "Server error");
                respond(&mut stream, "200 OK", "application/json", &answer).await
            }
            Fault::None
            | Fault::Withhold(_)
            | Fault::MethodError(..)
            | Fault::SimulationPasses
            | Fault::SignaturesUnseen => {
                let Ok(answer) = http
                    .post(&upstream)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(mut value) = answer.json::<Value>().await else {
                    return;
                };
                if let Fault::MethodError(method, code, message) = &fault {
                    let error = |id: &Value| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
                    match &mut value {
                        Value::Array(items) => {
                            for call in calls.iter().filter(|c| c["method"] == *method) {
                                for item in items.iter_mut().filter(|i| i["id"] == call["id"]) {
                                    *item = error(&call["id"]);
                                }
                            }
                        }
                        // One call, not a batch (Solana, NEAR).
                        single => {
                            if let Some(call) = calls.iter().find(|c| c["method"] == *method) {
                                *single = error(&call["id"]);
                            }
                        }
                    }
                }
                if fault == Fault::SimulationPasses {
                    pass_simulations(&calls, &mut value);
                }
                if fault == Fault::SignaturesUnseen {
                    hide_signatures(&calls, &mut value);
                }
                let bytes = serde_json::to_vec(&value).unwrap();
                respond(&mut stream, "200 OK", "application/json", &bytes).await
            }
        };
        if !ok {
            return;
        }
    }
}
