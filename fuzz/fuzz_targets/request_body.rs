//! A `/verify` or `/settle` body, as a resource server sends it: parsing never panics, a
//! parsed request writes back to a body that parses to the same request, conversions
//! between versions give requests that parse again (shadow mode relies on it), every
//! answer the facilitator can build from it serialises, and the arithmetic on the caller's
//! numbers (the validity window from `maxTimeoutSeconds`) neither wraps nor panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use x402_protocol::convert::{request_v1_to_v2, request_v2_to_v1};
use x402_protocol::envelope::{parse_request, VersionedRequest};
use x402_protocol::{Payment, Reason, Settlement, Verdict};

fn written(request: &VersionedRequest) -> Vec<u8> {
    match request {
        VersionedRequest::V1(r) => serde_json::to_vec(r),
        VersionedRequest::V2(r) => serde_json::to_vec(r),
    }
    .expect("a parsed request serialises")
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_request(data) else {
        return;
    };
    let again = parse_request(&written(&request)).expect("a written request parses");
    assert_eq!(again, request, "write then parse changes nothing");

    let converted = match &request {
        VersionedRequest::V1(r) => request_v1_to_v2(r)
            .ok()
            .map(|c| VersionedRequest::V2(Box::new(c))),
        VersionedRequest::V2(r) => request_v2_to_v1(r)
            .ok()
            .map(|c| VersionedRequest::V1(Box::new(c))),
    };
    if let Some(converted) = converted {
        let parsed = parse_request(&written(&converted)).expect("a converted request parses");
        assert_eq!(parsed.version(), converted.version());
    }

    let version = request.version();
    match Payment::from_request(&request) {
        Ok(payment) => {
            let digest = payment.request_digest();
            assert_eq!(digest.len(), 3 + 64 + 1 + 64, "r2:, two SHA-256 in hex");
            assert!(x402_protocol::digest_matches(&digest, &digest));
            let legacy = &digest[digest.len() - 64..];
            assert!(
                x402_protocol::digest_matches(legacy, &digest),
                "old entries match"
            );
            // Caller numbers in arithmetic (built with overflow checks): saturating, never
            // wrapping below the clock.
            let mut clock = [0u8; 8];
            for (slot, byte) in clock.iter_mut().zip(data) {
                *slot = *byte;
            }
            let now = u64::from_le_bytes(clock);
            let until = payment.requirements.latest_valid_until(now, 60);
            assert!(until >= now && until >= payment.requirements.max_timeout_seconds);
            let refused = Verdict::invalid(Reason::InvalidPayload, "fuzz", None);
            let _ = refused.to_json(version);
            let settled = Settlement::settled("payer", "0x00");
            let _ = settled.to_json(version, &payment.network_label);
        }
        Err(refusal) => {
            let failed = Settlement::failed(refusal.reason, refusal.message, None, "");
            let _ = failed.to_json(version, &refusal.network_label);
        }
    }
});
