//! The JSON-RPC surface: the stellar-rpc methods the official x402 clients and the
//! facilitator call, answered in stellar-rpc's shapes.

use serde_json::{json, Value};
use soroban_env_host::xdr::{
    DiagnosticEvent, ExtensionPoint, HostFunction, LedgerKey, Limits, ReadXdr,
    SorobanTransactionMeta, SorobanTransactionMetaExt, TransactionEnvelope, TransactionMeta,
    TransactionMetaV3,
};

use crate::host::{self, PROTOCOL_VERSION};
use crate::ledger::{account_id, muxed_key, Ledger, Status};
use crate::submit::{self, Verdict};

/// The oldest ledger this node reports (it keeps every ledger).
const OLDEST_LEDGER: u32 = 1;

fn ok(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Answers one JSON-RPC request.
pub fn answer(ledger: &mut Ledger, body: &Value) -> Value {
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let params = body.get("params").cloned().unwrap_or(Value::Null);
    let Some(method) = body.get("method").and_then(Value::as_str) else {
        return error(&id, -32600, "invalid request: no method");
    };
    let result = match method {
        "getHealth" => Ok(json!({"status": "healthy", "latestLedger": ledger.sequence,
            "oldestLedger": OLDEST_LEDGER, "ledgerRetentionWindow": 17_280})),
        "getNetwork" => Ok(json!({"passphrase": ledger.passphrase,
            "protocolVersion": PROTOCOL_VERSION})),
        "getLatestLedger" => Ok(json!({"id": hex(&ledger_hash(ledger)),
            "protocolVersion": PROTOCOL_VERSION, "sequence": ledger.sequence,
            "closeTime": ledger.close_time.to_string()})),
        "getVersionInfo" => Ok(json!({"version": env!("CARGO_PKG_VERSION"),
            "commitHash": "", "buildTimestamp": "", "captiveCoreVersion": "x402-stellarnode",
            "protocolVersion": PROTOCOL_VERSION})),
        "getFeeStats" => Ok(fee_stats(ledger)),
        "getLedgerEntries" => ledger_entries(ledger, &params),
        "simulateTransaction" => simulate(ledger, &params),
        "sendTransaction" => send(ledger, &params),
        "getTransaction" => transaction(ledger, &params),
        _ => return error(&id, -32601, "method not found"),
    };
    match result {
        Ok(value) => ok(&id, value),
        Err(message) => error(&id, -32602, &message),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ledger_hash(ledger: &Ledger) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(ledger.network_id);
    hasher.update(ledger.sequence.to_be_bytes());
    hasher.update(ledger.close_time.to_be_bytes());
    hasher.finalize().into()
}

fn string_param<'a>(params: &'a Value, name: &str) -> Result<&'a str, String> {
    params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing parameter {name:?}"))
}

fn fee_stats(ledger: &Ledger) -> Value {
    let fees = json!({"max": "100", "min": "100", "mode": "100", "p10": "100", "p20": "100",
        "p30": "100", "p40": "100", "p50": "100", "p60": "100", "p70": "100", "p80": "100",
        "p90": "100", "p95": "100", "p99": "100", "transactionCount": "0", "ledgerCount": 1});
    json!({"sorobanInclusionFee": fees, "inclusionFee": fees, "latestLedger": ledger.sequence})
}

fn ledger_entries(ledger: &Ledger, params: &Value) -> Result<Value, String> {
    let keys = params
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("missing parameter \"keys\"")?;
    if keys.len() > 200 {
        return Err("key count (200) exceeded".into());
    }
    let mut entries = Vec::new();
    for key in keys {
        let text = key
            .as_str()
            .ok_or("keys are base64 LedgerKey XDR strings")?;
        let key = LedgerKey::from_xdr_base64(text, Limits::none())
            .map_err(|e| format!("cannot unmarshal key value {text}: {e}"))?;
        if let Some((entry, ttl)) = host::live(&ledger.entries, &key, ledger.sequence) {
            let mut row = json!({"key": text, "xdr": Ledger::base64(&entry.data),
                "lastModifiedLedgerSeq": entry.last_modified_ledger_seq});
            if let Some(until) = ttl {
                row["liveUntilLedgerSeq"] = json!(until);
            }
            entries.push(row);
        }
    }
    Ok(json!({"entries": entries, "latestLedger": ledger.sequence}))
}

fn envelope_param(params: &Value) -> Result<TransactionEnvelope, String> {
    let text = string_param(params, "transaction")?;
    TransactionEnvelope::from_xdr_base64(text, Limits::len(1 << 20))
        .map_err(|e| format!("could not unmarshal transaction: {e}"))
}

fn simulate(ledger: &mut Ledger, params: &Value) -> Result<Value, String> {
    let envelope = envelope_param(params)?;
    let TransactionEnvelope::Tx(v1) = &envelope else {
        return Err("only v1 transaction envelopes can be simulated".into());
    };
    let Some(op) = Ledger::invoke_op(&v1.tx) else {
        return Err("transaction must contain exactly one InvokeHostFunction operation".into());
    };
    let source = v1.tx.operations[0].source_account.as_ref().map_or_else(
        || account_id(muxed_key(&v1.tx.source_account)),
        |m| account_id(muxed_key(m)),
    );
    let mut auth: Vec<_> = op.auth.to_vec();
    if params.get("authMode").and_then(Value::as_str) == Some("record") {
        auth.clear();
    }
    let info = ledger.next_info();
    let seed = ledger.next_seed();
    let host_fn: HostFunction = op.host_function.clone();
    let simulated = host::simulate(&ledger.entries, &info, host_fn, auth, &source, seed)?;
    let latest = ledger.sequence;
    let (return_value, data) = match (simulated.result, simulated.data) {
        (Ok(value), Some(data)) => (value, data),
        (Err(message), _) => {
            return Ok(json!({"error": message, "events": [], "latestLedger": latest}))
        }
        (Ok(_), None) => {
            return Ok(json!({"error": "the simulation gave no resources", "latestLedger": latest}))
        }
    };
    let events: Vec<String> = simulated
        .events
        .into_iter()
        .map(|event| {
            Ledger::base64(&DiagnosticEvent {
                in_successful_contract_call: true,
                event,
            })
        })
        .collect();
    let auth: Vec<String> = simulated.auth.iter().map(Ledger::base64).collect();
    Ok(json!({
        "transactionData": Ledger::base64(&data),
        "minResourceFee": data.resource_fee.to_string(),
        "events": events,
        "results": [{"auth": auth, "xdr": Ledger::base64(&return_value)}],
        "cost": {"cpuInsns": simulated.instructions.to_string(),
                 "memBytes": simulated.memory.to_string()},
        "latestLedger": latest,
    }))
}

fn send(ledger: &mut Ledger, params: &Value) -> Result<Value, String> {
    let envelope = envelope_param(params)?;
    let verdict = submit::send(ledger, envelope)?;
    let (status, hash, code) = match verdict {
        Verdict::Pending(hash) => ("PENDING", hash, None),
        Verdict::Duplicate(hash) => ("DUPLICATE", hash, None),
        Verdict::TryAgainLater(hash) => ("TRY_AGAIN_LATER", hash, None),
        Verdict::Error(hash, code) => ("ERROR", hash, Some(code)),
    };
    let mut answer = json!({"status": status, "hash": hex(&hash), "latestLedger": ledger.sequence,
        "latestLedgerCloseTime": ledger.close_time.to_string()});
    if let Some(code) = code {
        answer["errorResultXdr"] = json!(Ledger::base64(&submit::refusal(code)));
    }
    Ok(answer)
}

fn transaction(ledger: &Ledger, params: &Value) -> Result<Value, String> {
    let text = string_param(params, "hash")?;
    let mut hash = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return Err(format!("unexpected hash length ({})", text.len()));
    }
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    let mut answer = json!({"txHash": text, "latestLedger": ledger.sequence,
        "latestLedgerCloseTime": ledger.close_time.to_string(), "oldestLedger": OLDEST_LEDGER,
        "oldestLedgerCloseTime": "0"});
    let Some(applied) = ledger.applied.get(&hash) else {
        answer["status"] = json!("NOT_FOUND");
        return Ok(answer);
    };
    let meta = TransactionMeta::V3(TransactionMetaV3 {
        ext: ExtensionPoint::V0,
        tx_changes_before: Default::default(),
        operations: Default::default(),
        tx_changes_after: Default::default(),
        soroban_meta: Some(SorobanTransactionMeta {
            ext: SorobanTransactionMetaExt::V0,
            events: applied.events.clone().try_into().unwrap_or_default(),
            return_value: applied.return_value.clone(),
            diagnostic_events: Default::default(),
        }),
    });
    let status = match applied.status {
        Status::Success => "SUCCESS",
        Status::Failed => "FAILED",
    };
    answer["status"] = json!(status);
    answer["ledger"] = json!(applied.ledger);
    answer["createdAt"] = json!(applied.created_at.to_string());
    answer["applicationOrder"] = json!(applied.application_order);
    answer["feeBump"] = json!(false);
    answer["envelopeXdr"] = json!(Ledger::base64(&applied.envelope));
    answer["resultXdr"] = json!(Ledger::base64(&submit::result_of(applied)));
    answer["resultMetaXdr"] = json!(Ledger::base64(&meta));
    Ok(answer)
}
