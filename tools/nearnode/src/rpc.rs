//! The JSON-RPC methods the facilitator and `near-api-js` call, answered in nearcore's
//! shapes: `status`, `block`, `query` (`view_account`, `view_access_key`, `call_function`),
//! `send_tx`, `broadcast_tx_async`, `tx`, `EXPERIMENTAL_tx_status`, `gas_price`, and
//! near-sandbox's `sandbox_fast_forward`, and the stand-in's own `x402_stand_in_pause_token`
//! (an issuer pausing its token, for tests of a payment that fails on chain).

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use near_crypto::PublicKey;
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::AccountId;
use serde_json::{json, Value};

use crate::chain::{Chain, Permission, GAS_PRICE};

/// A nearcore-shaped JSON-RPC error: `name` (`HANDLER_ERROR`, `REQUEST_VALIDATION_ERROR`),
/// `cause.name` (`UNKNOWN_ACCOUNT`, `INVALID_TRANSACTION`, ...) and `data`.
pub struct RpcError(Value);

fn handler_error(cause: &str, info: Value) -> RpcError {
    RpcError(
        json!({"name": "HANDLER_ERROR", "cause": {"name": cause, "info": info},
        "code": -32000, "message": "Server error", "data": info}),
    )
}

fn bad_request(message: &str) -> RpcError {
    RpcError(json!({"name": "REQUEST_VALIDATION_ERROR",
        "cause": {"name": "PARSE_ERROR", "info": {"error_message": message}},
        "code": -32700, "message": "Parse error", "data": message}))
}

/// Answers one JSON-RPC request body.
pub fn answer(chain: &Arc<Mutex<Chain>>, body: &Value) -> Value {
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let params = body.get("params").cloned().unwrap_or(Value::Null);
    let Ok(mut chain) = chain.lock() else {
        return json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": "poisoned"}});
    };
    match dispatch(&mut chain, method, &params) {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(RpcError(error)) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
    }
}

fn dispatch(chain: &mut Chain, method: &str, params: &Value) -> Result<Value, RpcError> {
    match method {
        "status" => Ok(status(chain)),
        "block" => block(chain, params),
        "query" => query(chain, params),
        "gas_price" => Ok(json!({"gas_price": GAS_PRICE.to_string()})),
        "send_tx" | "broadcast_tx_async" | "broadcast_tx_commit" => send(chain, method, params),
        "tx" | "EXPERIMENTAL_tx_status" => tx_status(chain, params),
        "x402_stand_in_pause_token" => {
            let token = account_param(params)?;
            let paused = params
                .get("paused")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let state = chain.tokens.get_mut(&token).ok_or_else(|| {
                handler_error("NO_CONTRACT_CODE", json!({"contract_account_id": token}))
            })?;
            state.paused = paused;
            Ok(json!({"paused": paused}))
        }
        "sandbox_fast_forward" => {
            let delta = params
                .get("delta_height")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad_request("delta_height"))?;
            for _ in 0..delta.min(100_000) {
                chain.produce_block();
            }
            Ok(json!({}))
        }
        other => Err(RpcError(json!({"name": "REQUEST_VALIDATION_ERROR",
            "cause": {"name": "METHOD_NOT_FOUND", "info": {"method_name": other}},
            "code": -32601, "message": "Method not found", "data": other}))),
    }
}

fn status(chain: &Chain) -> Value {
    let hash = chain.block_hash(chain.height).unwrap_or_default();
    json!({
        "chain_id": chain.chain_id,
        "version": {"version": "x402-nearnode", "build": "stand-in"},
        "protocol_version": 80,
        "sync_info": {
            "latest_block_height": chain.height,
            "latest_block_hash": hash.to_string(),
            "latest_block_time": crate::now_rfc3339(),
            "syncing": false,
        },
    })
}

/// The height a request's `finality` or `block_id` names.
fn height_of(chain: &Chain, params: &Value) -> Result<u64, RpcError> {
    if let Some(id) = params.get("block_id") {
        if let Some(height) = id.as_u64() {
            return Ok(height);
        }
        let text = id.as_str().unwrap_or_default();
        let wanted = CryptoHash::from_str(text).map_err(|_| bad_request("block_id"))?;
        return (1..=chain.height)
            .find(|h| chain.block_hash(*h) == Some(wanted))
            .ok_or_else(|| handler_error("UNKNOWN_BLOCK", json!({})));
    }
    match params.get("finality").and_then(Value::as_str) {
        Some("optimistic") | None => Ok(chain.height),
        Some(_) => Ok(chain.final_height()),
    }
}

fn block(chain: &Chain, params: &Value) -> Result<Value, RpcError> {
    let height = height_of(chain, params)?;
    let hash = chain
        .block_hash(height)
        .ok_or_else(|| handler_error("UNKNOWN_BLOCK", json!({})))?;
    let prev = chain
        .block_hash(height.saturating_sub(1))
        .unwrap_or_default();
    Ok(json!({
        "author": "stand-in.near",
        "header": {
            "height": height,
            "hash": hash.to_string(),
            "prev_hash": prev.to_string(),
            "timestamp": 0,
            "timestamp_nanosec": "0",
            "gas_price": GAS_PRICE.to_string(),
            "chunk_mask": [true],
        },
        "chunks": [],
    }))
}

fn account_param(params: &Value) -> Result<AccountId, RpcError> {
    params
        .get("account_id")
        .and_then(Value::as_str)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| bad_request("account_id"))
}

fn query(chain: &Chain, params: &Value) -> Result<Value, RpcError> {
    let height = height_of(chain, params)?;
    let hash = chain.block_hash(height).unwrap_or_default().to_string();
    let at = |mut v: Value| {
        v["block_height"] = json!(height);
        v["block_hash"] = json!(hash);
        v
    };
    let account_id = account_param(params)?;
    let unknown_account = || {
        handler_error(
            "UNKNOWN_ACCOUNT",
            json!({"requested_account_id": account_id, "block_height": height}),
        )
    };
    match params.get("request_type").and_then(Value::as_str) {
        Some("view_account") => {
            let account = chain
                .accounts
                .get(&account_id)
                .ok_or_else(unknown_account)?;
            let code_hash = match chain.tokens.contains_key(&account_id) {
                true => near_primitives::hash::hash(account_id.as_bytes()).to_string(),
                false => CryptoHash::default().to_string(),
            };
            Ok(at(
                json!({"amount": account.amount.to_string(), "locked": "0",
                "code_hash": code_hash, "storage_usage": 182, "storage_paid_at": 0}),
            ))
        }
        Some("view_access_key") => {
            let account = chain
                .accounts
                .get(&account_id)
                .ok_or_else(unknown_account)?;
            let key = params
                .get("public_key")
                .and_then(Value::as_str)
                .and_then(|k| PublicKey::from_str(k).ok())
                .ok_or_else(|| bad_request("public_key"))?;
            let access = account.keys.get(&key).ok_or_else(|| {
                handler_error(
                    "UNKNOWN_ACCESS_KEY",
                    json!({"public_key": key.to_string(), "block_height": height}),
                )
            })?;
            let permission = match &access.permission {
                Permission::FullAccess => json!("FullAccess"),
                Permission::FunctionCall {
                    receiver_id,
                    method_names,
                } => json!({"FunctionCall": {"allowance": null, "receiver_id": receiver_id,
                    "method_names": method_names}}),
            };
            Ok(at(json!({"nonce": access.nonce, "permission": permission})))
        }
        Some("call_function") => {
            let method = params
                .get("method_name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let args = params
                .get("args_base64")
                .and_then(Value::as_str)
                .map(|a| base64::engine::general_purpose::STANDARD.decode(a))
                .transpose()
                .map_err(|_| bad_request("args_base64"))?
                .unwrap_or_default();
            let Some(token) = chain.tokens.get(&account_id) else {
                if !chain.accounts.contains_key(&account_id) {
                    return Err(unknown_account());
                }
                return Err(handler_error(
                    "NO_CONTRACT_CODE",
                    json!({"contract_account_id": account_id}),
                ));
            };
            let value = token.view(method, &args).map_err(|panic| {
                handler_error(
                    "CONTRACT_EXECUTION_ERROR",
                    json!({"vm_error": format!("Smart contract panicked: {panic}")}),
                )
            })?;
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            Ok(at(json!({"result": bytes, "logs": []})))
        }
        _ => Err(bad_request("request_type")),
    }
}

fn send(chain: &mut Chain, method: &str, params: &Value) -> Result<Value, RpcError> {
    let encoded = params
        .get("signed_tx_base64")
        .or_else(|| params.get(0))
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("signed_tx_base64"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| bad_request("signed_tx_base64 is not base64"))?;
    let signed: SignedTransaction =
        borsh::from_slice(&bytes).map_err(|_| bad_request("not a Borsh SignedTransaction"))?;
    let tx_hash = chain.submit(signed).map_err(|invalid| {
        handler_error(
            "INVALID_TRANSACTION",
            json!({"TxExecutionError": {"InvalidTxError": invalid.0}}),
        )
    })?;
    match method {
        "broadcast_tx_async" => Ok(json!(tx_hash.to_string())),
        _ => Ok(transaction_view(chain, &tx_hash)),
    }
}

fn tx_status(chain: &Chain, params: &Value) -> Result<Value, RpcError> {
    let text = params
        .get("tx_hash")
        .or_else(|| params.get(0))
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("tx_hash"))?;
    let tx_hash = CryptoHash::from_str(text).map_err(|_| bad_request("tx_hash"))?;
    if !chain.txs.contains_key(&tx_hash) {
        return Err(handler_error(
            "UNKNOWN_TRANSACTION",
            json!({"requested_transaction_hash": text}),
        ));
    }
    Ok(transaction_view(chain, &tx_hash))
}

/// nearcore's `RpcTransactionResponse`: the status reached and, once executed, the
/// outcome. Executed in block h, final once the final head reached h.
fn transaction_view(chain: &Chain, tx_hash: &CryptoHash) -> Value {
    let Some(record) = chain.txs.get(tx_hash) else {
        return json!({"final_execution_status": "NONE"});
    };
    let (Some(executed), Some(outcome)) = (record.executed_at, &record.outcome) else {
        return json!({"final_execution_status": "INCLUDED",
            "transaction": {"hash": tx_hash.to_string()}});
    };
    let level = match chain.final_height() >= executed {
        true => "FINAL",
        false => "EXECUTED_OPTIMISTIC",
    };
    let mut view = outcome.clone();
    view["final_execution_status"] = json!(level);
    view
}

/// How far a status level is along (nearcore's `TxExecutionStatus` order; the stand-in
/// reaches `INCLUDED`, `EXECUTED_OPTIMISTIC` and `FINAL`).
fn level(name: &str) -> u8 {
    match name {
        "INCLUDED" => 1,
        "EXECUTED_OPTIMISTIC" => 2,
        "INCLUDED_FINAL" | "EXECUTED" | "FINAL" => 3,
        _ => 0,
    }
}

/// The level an answer reached.
pub fn reached(answer: &Value) -> u8 {
    answer
        .pointer("/result/final_execution_status")
        .and_then(Value::as_str)
        .map_or(0, level)
}

/// For a request that waits (`send_tx`, `broadcast_tx_commit`, `tx` with a `wait_until`
/// above what its first answer reached): the level wanted and the transaction's hash.
pub fn wait_for(body: &Value, first: &Value) -> Option<(u8, String)> {
    let method = body.get("method").and_then(Value::as_str)?;
    let default = match method {
        "send_tx" | "tx" | "EXPERIMENTAL_tx_status" | "broadcast_tx_commit" => {
            "EXECUTED_OPTIMISTIC"
        }
        _ => return None,
    };
    let wanted = body
        .pointer("/params/wait_until")
        .and_then(Value::as_str)
        .unwrap_or(default);
    let hash = first
        .pointer("/result/transaction/hash")
        .and_then(Value::as_str)?
        .to_owned();
    (level(wanted) > reached(first)).then_some((level(wanted), hash))
}

/// nearcore's answer when the wanted level was not reached in time.
pub fn timeout(id: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"name": "HANDLER_ERROR",
        "cause": {"name": "TIMEOUT_ERROR", "info": {}}, "code": -32000,
        "message": "Server error", "data": "Timeout"}})
}
