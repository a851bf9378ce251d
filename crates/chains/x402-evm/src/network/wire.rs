//! Reading what callers and nodes send: hex, numbers, the payload's authorization, signed
//! transactions read back from the ledger, and the shapes of node refusals.

use super::*;

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A refusal naming the payer.
pub(super) fn refusal(payer: &str, reason: Reason, message: impl Into<String>) -> Verdict {
    Verdict::invalid(reason, message, Some(payer.to_owned()))
}

pub(super) fn parse_u256(value: &Value) -> Option<U256> {
    match value {
        Value::String(s) if !s.is_empty() => {
            if let Some(hex) = s.strip_prefix("0x") {
                U256::from_str_radix(hex, 16).ok()
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                U256::from_str_radix(s, 10).ok()
            } else {
                None
            }
        }
        Value::Number(n) => n.as_u64().map(U256::from),
        _ => None,
    }
}

/// Hex (with or without `0x`) to bytes; `None` for anything else, including non-ASCII
/// text from a payer (slicing such text by byte offsets could split a character).
pub(super) fn parse_hex_bytes(text: &str) -> Option<Vec<u8>> {
    alloy::primitives::hex::decode(text).ok()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    alloy::primitives::hex::encode_prefixed(bytes)
}

pub(super) fn result_bytes(result: &CallResult) -> Option<Vec<u8>> {
    match result {
        Ok(Value::String(s)) => parse_hex_bytes(s),
        _ => None,
    }
}

pub(super) fn result_u64(result: &CallResult) -> Option<u64> {
    result_u128(result).and_then(|n| u64::try_from(n).ok())
}

pub(super) fn result_u128(result: &CallResult) -> Option<u128> {
    match result {
        Ok(v) => parse_u256(v).and_then(|u| u128::try_from(u).ok()),
        Err(_) => None,
    }
}

/// A signer from its hex private key; `None` when it is not one.
pub(super) fn signer_from(key: &str) -> Option<PrivateKeySigner> {
    PrivateKeySigner::from_str(key.trim()).ok()
}

/// Half the order of secp256k1, big-endian: the largest `s` a canonical signature has.
pub(super) const SECP256K1_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// The address that signed `digest` with a 65-byte `(r, s, v)` signature. Uses
/// libsecp256k1: signature recovery dominates a verify's CPU time, and the C library is
/// several times faster than the pure-Rust curve.
pub(super) fn recover_signer(digest: &B256, signature: &[u8]) -> Option<Address> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    if signature.len() != 65 {
        return None;
    }
    let parity = match signature[64] {
        0 | 27 => 0,
        1 | 28 => 1,
        _ => return None,
    };
    // EIP-2: only the lower half of `s`. A high-s signature recovers too, but EIP-3009
    // tokens refuse it on chain, so settling it would only burn the facilitator's gas.
    if signature[32..64] > SECP256K1_HALF_ORDER[..] {
        return None;
    }
    let id = RecoveryId::try_from(parity).ok()?;
    let recoverable = RecoverableSignature::from_compact(&signature[..64], id).ok()?;
    let key = recoverable
        .recover_ecdsa(secp256k1::Message::from_digest(digest.0))
        .ok()?;
    Some(Address::from_raw_public_key(
        &key.serialize_uncompressed()[1..],
    ))
}

/// A readable revert reason from node error data, when it is `Error(string)`.
pub(super) fn revert_reason(error: &NodeError) -> String {
    error
        .data
        .as_deref()
        .and_then(parse_hex_bytes)
        .and_then(|data| error_string(&data))
        .unwrap_or_else(|| error.message.clone())
}

/// `data` of an `eth_call` without `to` that runs `creation_code` with ABI-encoded
/// constructor `args` (a deployless probe: nothing is written to the chain).
pub(super) fn deployless_call(creation_code: &str, args: &[u8]) -> String {
    format!("0x{}{}", creation_code.trim(), &hex(args)[2..])
}

/// The message of `Error(string)` revert data.
pub(super) fn error_string(data: &[u8]) -> Option<String> {
    if data.len() > 4 && data[..4] == [0x08, 0xc3, 0x79, 0xa0] {
        String::abi_decode(&data[4..]).ok()
    } else {
        None
    }
}

/// `Error(string)` revert data as text, else a short hex rendering.
pub(super) fn revert_text(data: &[u8]) -> String {
    if let Some(text) = error_string(data) {
        return text;
    }
    if data.is_empty() {
        "reverted without a reason".to_owned()
    } else {
        format!("reverted with data {}", hex(&data[..data.len().min(68)]))
    }
}

/// The authorization parsed from a payload.
#[derive(Debug, Clone)]
pub(super) struct Authorization {
    pub(super) from: Address,
    pub(super) to: Address,
    pub(super) value: U256,
    pub(super) valid_after: U256,
    pub(super) valid_before: U256,
    pub(super) nonce: B256,
}

/// The authorization and signature of a payload, or the refusal naming what is malformed.
pub(super) fn parse_authorization(payment: &Payment) -> Result<(Authorization, Vec<u8>), Verdict> {
    let auth = payment
        .payload
        .get("authorization")
        .and_then(Value::as_object);
    let from_text = auth.and_then(|a| a.get("from")).and_then(Value::as_str);
    let payer = from_text.map(str::to_owned);
    let bad = |what: &str| {
        Verdict::invalid(
            Reason::InvalidPayload,
            format!("payload.{what} is missing or malformed"),
            payer.clone(),
        )
    };
    let auth = auth.ok_or_else(|| bad("authorization"))?;
    let address = |key: &str| {
        auth.get(key)
            .and_then(Value::as_str)
            .and_then(|s| Address::from_str(s).ok())
            .ok_or_else(|| bad(&format!("authorization.{key}")))
    };
    let number = |key: &str| {
        auth.get(key)
            .and_then(parse_u256)
            .ok_or_else(|| bad(&format!("authorization.{key}")))
    };
    let nonce = auth
        .get("nonce")
        .and_then(Value::as_str)
        .and_then(|s| B256::from_str(s).ok())
        .ok_or_else(|| bad("authorization.nonce"))?;
    let authorization = Authorization {
        from: address("from")?,
        to: address("to")?,
        value: number("value")?,
        valid_after: number("validAfter")?,
        valid_before: number("validBefore")?,
        nonce,
    };
    let signature = payload_signature(payment, payer.clone())?;
    Ok((authorization, signature))
}

/// A signature's ERC-6492 wrapping: `Ok(None)` for a plain signature, `Ok(Some((factory,
/// factory calldata, inner signature)))` for a wrapped one, `Err` when the suffix is there but
/// the wrapping does not decode (refused `invalid_exact_evm_failed_to_parse_signature`).
pub(super) fn erc6492_parts(
    signature: &[u8],
) -> Result<Option<(Address, Bytes, Vec<u8>)>, Verdict> {
    let Some(wrapped) = signature
        .len()
        .checked_sub(32)
        .filter(|&at| at > 0 && signature[at..] == ERC6492_SUFFIX)
        .map(|at| &signature[..at])
    else {
        return Ok(None);
    };
    let (factory, calldata, inner) = <(Address, Bytes, Bytes)>::abi_decode_params(wrapped)
        .map_err(|_| {
            Verdict::invalid(
                Reason::ExactEvmFailedToParseSignature,
                "the signature ends as ERC-6492 but its wrapping does not decode",
                None,
            )
        })?;
    Ok(Some((factory, calldata, inner.to_vec())))
}

/// The payload's `signature` as bytes, or the refusal naming it (every EVM payload has one).
pub(super) fn payload_signature(
    payment: &Payment,
    payer: Option<String>,
) -> Result<Vec<u8>, Verdict> {
    payment
        .payload
        .get("signature")
        .and_then(Value::as_str)
        .and_then(parse_hex_bytes)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Verdict::invalid(
                Reason::InvalidPayload,
                "payload.signature is missing or malformed",
                payer,
            )
        })
}

/// Whether a node refusal says it already has these exact bytes (geth: "already known",
/// anvil: "transaction already imported", others: "known transaction").
pub(super) fn already_known(node: &NodeError) -> bool {
    let text = node.message.to_ascii_lowercase();
    text.contains("already known")
        || text.contains("already imported")
        || text.contains("known transaction")
        || text.contains("alreadyknown")
}

/// Whether a node refusal means the transaction's account nonce is already used.
pub(super) fn nonce_taken(node: &NodeError) -> bool {
    let text = node.message.to_ascii_lowercase();
    text.contains("nonce too low")
        || text.contains("replacement transaction underpriced")
        || text.contains("nonce has already been used")
}

/// What a recorded signed transaction does, read back from its bytes (the ledger keeps
/// bytes, so re-signing and nonce checks work from what was really signed).
pub(super) struct RecordedTx {
    pub(super) to: Address,
    pub(super) input: Bytes,
    pub(super) gas_limit: u64,
    pub(super) nonce: u64,
    pub(super) hash: B256,
}

impl RecordedTx {
    /// `(to, input, gas limit)`, as `sign_transaction` takes a call.
    pub(super) fn call(&self) -> (Address, &Bytes, u64) {
        (self.to, &self.input, self.gas_limit)
    }
}

pub(super) fn decode_recorded(raw_hex: &str) -> Option<RecordedTx> {
    use alloy::consensus::Transaction as _;
    use alloy::eips::eip2718::Decodable2718;
    let bytes = parse_hex_bytes(raw_hex)?;
    let envelope = TxEnvelope::decode_2718(&mut bytes.as_slice()).ok()?;
    Some(RecordedTx {
        to: envelope.to()?,
        input: envelope.input().clone(),
        gas_limit: envelope.gas_limit(),
        nonce: envelope.nonce(),
        hash: *envelope.tx_hash(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::SignerSync;

    #[test]
    fn libsecp256k1_recovery_agrees_with_alloy() {
        let signer = PrivateKeySigner::random();
        for i in 0..32u8 {
            let digest = alloy::primitives::keccak256([i]);
            let signature = signer.sign_hash_sync(&digest).unwrap();
            let bytes = signature.as_bytes();
            assert_eq!(recover_signer(&digest, &bytes), Some(signer.address()));
            // v as 0/1 is accepted too; anything else is not a signature.
            let mut raw = bytes;
            raw[64] -= 27;
            assert_eq!(recover_signer(&digest, &raw), Some(signer.address()));
            raw[64] = 29;
            assert_eq!(recover_signer(&digest, &raw), None);
            // Another digest recovers someone else.
            let other = alloy::primitives::keccak256([i, i]);
            assert_ne!(recover_signer(&other, &bytes), Some(signer.address()));
        }
        assert_eq!(recover_signer(&B256::ZERO, &[0u8; 64]), None);
    }

    #[test]
    fn hex_parsing_refuses_non_ascii_without_panicking() {
        assert_eq!(parse_hex_bytes("0x0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(parse_hex_bytes("0aff"), Some(vec![0x0a, 0xff]));
        for bad in ["0xaé1", "aé1", "0x0", "0xzz", "é", "0x\u{1F600}00"] {
            assert_eq!(parse_hex_bytes(bad), None, "{bad}");
        }
    }
}
