//! One payment, one request at a time (in this process).
//!
//! Between verify and the end of its settlement a payment is valid on chain, so the same
//! header sent twice at once would pass verify twice, and a facilitator that answers a
//! repeated settle with its first outcome (as it must, to be safe to retry) would answer
//! both "settled": two contents for one payment. So a payment is claimed before verify and
//! released when its request is answered; a second request carrying it meanwhile is
//! refused. After a settlement the chain itself refuses the payment (its nonce or
//! signature is used), so nothing needs remembering longer. Instances do not share claims:
//! see docs/resource-server.md.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Mutex, OnceLock};

use x402_protocol::headers::PaymentHeader;

struct Claims {
    held: Mutex<HashSet<u64>>,
    hasher: RandomState,
}

fn claims() -> &'static Claims {
    static CLAIMS: OnceLock<Claims> = OnceLock::new();
    CLAIMS.get_or_init(|| Claims {
        held: Mutex::new(HashSet::new()),
        hasher: RandomState::new(),
    })
}

/// A held claim; dropping it releases the payment.
pub(crate) struct Claim(u64);

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = claims().held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.0);
    }
}

/// Claims the payment, or `None` when another request holds it. The key is what was
/// signed (the scheme's payload, with scheme and network), not the header's text, so a
/// re-encoded copy of the same payment is the same payment.
pub(crate) fn claim(payment: &PaymentHeader) -> Option<Claim> {
    let claims = claims();
    let mut hasher = claims.hasher.build_hasher();
    match payment {
        PaymentHeader::V1(p) => {
            // By CAIP-2 id: one authorization sent once as v1 and once as v2 is one payment.
            let network = x402_protocol::networks::by_v1_name(&p.network)
                .map_or(p.network.as_str(), |known| known.caip2);
            (&p.scheme, network).hash(&mut hasher);
            serde_json::Value::Object(p.payload.clone())
                .to_string()
                .hash(&mut hasher);
        }
        PaymentHeader::V2(p) => {
            (&p.accepted.scheme, p.accepted.network.as_str()).hash(&mut hasher);
            serde_json::Value::Object(p.payload.clone())
                .to_string()
                .hash(&mut hasher);
        }
    }
    let key = hasher.finish();
    let inserted = {
        let mut held = claims.held.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(key)
    };
    // Built only when claimed: a `Claim` dropped here would release the other holder's.
    if inserted {
        Some(Claim(key))
    } else {
        None
    }
}
