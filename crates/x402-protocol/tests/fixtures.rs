//! Golden fixtures produced by the official SDKs (`tests/js/gen-fixtures.mjs`) must parse
//! into our types and serialize back to the same JSON value.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use x402_protocol::envelope::{parse_request, VersionedRequest, X402Version};
use x402_protocol::{convert, v1, v2, Payment};

/// This crate's directory, read when the test runs (a build reused from another checkout
/// through a shared target directory carries that checkout's compile-time path).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", manifest_dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn round_trips<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let original = fixture(name);
    let typed: T =
        serde_json::from_value(original.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = serde_json::to_value(&typed).unwrap();
    assert_eq!(again, original, "{name} did not round-trip");
    typed
}

#[test]
fn v2_fixtures_round_trip() {
    let required: v2::PaymentRequired = round_trips("v2_payment_required.json");
    let payload: v2::PaymentPayload = round_trips("v2_payment_payload.json");
    assert_eq!(payload.accepted, required.accepts[0]);
    assert!(payload
        .extensions
        .unwrap()
        .contains_key("payment-identifier"));
    for name in ["v2_verify_request.json", "v2_settle_request.json"] {
        let request: v2::PaymentRequest = round_trips(name);
        assert_eq!(
            request.payment_requirements.network.as_str(),
            "eip155:84532"
        );
    }
}

#[test]
fn v1_fixtures_round_trip() {
    let required: v1::PaymentRequired = round_trips("v1_payment_required.json");
    assert_eq!(required.accepts[0].output_schema, Some(Value::Null));
    let by_x402: v1::PaymentPayload = round_trips("v1_payment_payload.json");
    let by_core: v1::PaymentPayload = round_trips("v1_payment_payload_core.json");
    assert_eq!(by_x402.network, "base-sepolia");
    assert_eq!(by_core.network, "base-sepolia");
    for name in ["v1_verify_request.json", "v1_settle_request.json"] {
        let request: v1::PaymentRequest = round_trips(name);
        assert_eq!(
            request.payment_requirements.max_amount_required.as_str(),
            "10000"
        );
    }
}

#[test]
fn envelope_detects_fixture_versions_and_normalises() {
    for (name, version, network) in [
        ("v1_verify_request.json", X402Version::V1, "eip155:84532"),
        ("v1_settle_request.json", X402Version::V1, "eip155:84532"),
        ("v2_verify_request.json", X402Version::V2, "eip155:84532"),
        ("v2_settle_request.json", X402Version::V2, "eip155:84532"),
    ] {
        let bytes = serde_json::to_vec(&fixture(name)).unwrap();
        let request = parse_request(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(request.version(), version, "{name}");
        let payment = Payment::from_request(&request).unwrap();
        assert_eq!(payment.network.as_str(), network);
        assert_eq!(
            payment.payload_network.as_ref().map(|n| n.as_str()),
            Some(network)
        );
        assert_eq!(payment.requirements.amount.as_str(), "10000");
    }
}

#[test]
fn v1_fixture_converts_to_v2_and_back() {
    let bytes = serde_json::to_vec(&fixture("v1_verify_request.json")).unwrap();
    let VersionedRequest::V1(v1_request) = parse_request(&bytes).unwrap() else {
        panic!("expected v1");
    };
    let v2_request = convert::request_v1_to_v2(&v1_request).unwrap();
    assert_eq!(v2_request.payment_requirements.amount.as_str(), "10000");
    assert_eq!(
        v2_request.payment_payload.payload,
        v1_request.payment_payload.payload
    );
    let back = convert::request_v2_to_v1(&v2_request).unwrap();
    // outputSchema is v1-only and not carried through v2.
    let mut expected = (*v1_request).clone();
    expected.payment_requirements.output_schema = None;
    assert_eq!(back, expected);
}

#[test]
fn every_reason_code_is_documented() {
    let path = format!("{}/../../docs/reason-codes.md", manifest_dir());
    let docs = std::fs::read_to_string(&path).expect("docs/reason-codes.md exists");
    for reason in x402_protocol::Reason::ALL {
        assert!(
            docs.contains(&format!("`{}`", reason.as_str())),
            "{} is missing from docs/reason-codes.md",
            reason.as_str()
        );
    }
}

/// Found by the `request_body` fuzz target: a number in a payer's payload that the fast
/// float parser read one bit off, so the body written back read as another number.
/// (serde_json's `float_roundtrip` reads every float exactly.)
#[test]
fn a_long_float_in_a_payload_survives_write_then_parse() {
    let mut body = fixture("v1_verify_request.json");
    let number: Value =
        serde_json::from_str("222222222222222222222222222222222222222222220").expect("a number");
    body["paymentPayload"]["payload"]["extra_number"] = number;
    let request = parse_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    let VersionedRequest::V1(v1_request) = &request else {
        panic!("expected v1");
    };
    let written = serde_json::to_vec(v1_request.as_ref()).unwrap();
    assert_eq!(parse_request(&written).unwrap(), request);
}

#[test]
fn a_request_digest_has_the_shape_callers_name_settlements_by() {
    for name in ["v1_settle_request.json", "v2_settle_request.json"] {
        let bytes = serde_json::to_vec(&fixture(name)).unwrap();
        let request = parse_request(&bytes).unwrap();
        let digest = Payment::from_request(&request).unwrap().request_digest();
        assert!(x402_protocol::is_request_digest(&digest), "{digest}");
        // One character off in either part, or an upper-case digit, is no digest.
        let mut changed = digest.clone().into_bytes();
        changed[3] = b'G';
        assert!(!x402_protocol::is_request_digest(
            &String::from_utf8(changed).unwrap()
        ));
        assert!(!x402_protocol::is_request_digest(
            &digest.to_ascii_uppercase()
        ));
        assert!(!x402_protocol::is_request_digest(
            &digest[..digest.len() - 1]
        ));
    }
}
