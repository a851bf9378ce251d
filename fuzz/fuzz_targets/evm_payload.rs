//! The payload of an EVM `exact` or `upto` payment (an EIP-3009 authorization, or a Permit2
//! permit with the `eip2612GasSponsoring` or `erc20ApprovalGasSponsoring` extension beside
//! it, whose signed transaction is decoded), as a stranger can send it:
//! reading it never panics, a Permit2 payload is only ever read from `permit2Authorization`,
//! `upto` never reads an EIP-3009 authorization, and a payload that reads names a payer.
//! Input: the first byte picks the scheme (bit 0) and the extension (bit 1), the rest is the
//! payload's JSON; a second JSON value after a newline is the extension's `info`.
//! Seeds (`fuzz/seeds/evm_payload`): payloads signed by the official client (EIP-3009,
//! Permit2 with an EIP-2612 permit, upto), and a Permit2 payload with a signed
//! `approve(Permit2)` EIP-1559 transaction (viem's `signTransaction`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use x402_evm::{read_payload, PayloadShape};
use x402_protocol::envelope::parse_request_value;
use x402_protocol::Payment;

fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = data.split_first() else {
        return;
    };
    let scheme = if pick % 2 == 0 { "exact" } else { "upto" };
    let (payload, info) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (
            &rest[..at],
            serde_json::from_slice::<Value>(&rest[at + 1..]).ok(),
        ),
        None => (rest, None),
    };
    let Ok(payload) = serde_json::from_slice::<Value>(payload) else {
        return;
    };
    let accepted = json!({
        "scheme": scheme, "network": "eip155:84532", "amount": "10000",
        "asset": "0x2612000000000000000000000000000000002612",
        "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 60,
    });
    let mut payment_payload = json!({"x402Version": 2, "accepted": accepted, "payload": payload});
    if let Some(info) = info {
        let key = match pick & 2 {
            0 => "eip2612GasSponsoring",
            _ => "erc20ApprovalGasSponsoring",
        };
        payment_payload["extensions"] = json!({ key: {"info": info} });
    }
    let body = json!({"x402Version": 2, "paymentPayload": payment_payload, "paymentRequirements": accepted});
    let Ok(request) = parse_request_value(body) else {
        return;
    };
    let Ok(payment) = Payment::from_request(&request) else {
        return;
    };
    let is_permit2 = payment.payload.contains_key("permit2Authorization");
    match read_payload(scheme, &payment) {
        Ok(PayloadShape::Eip3009 { payer }) => {
            assert!(scheme == "exact" && !is_permit2);
            assert!(payer.starts_with("0x") && payer.len() == 42);
        }
        Ok(PayloadShape::Permit2 { payer, .. }) => {
            assert!(is_permit2 || scheme == "upto");
            assert!(payer.starts_with("0x") && payer.len() == 42);
        }
        Err(verdict) => assert!(!verdict.is_valid && verdict.reason.is_some()),
    }
});
