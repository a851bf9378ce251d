//! x402 protocol types for a facilitator that serves v1 and v2 at once.
//!
//! Pure data and rules, no I/O: wire types of both versions ([`v1`], [`v2`]), CAIP-2
//! ids ([`caip2`]), the network registry ([`networks`]), version detection
//! ([`envelope`]), version conversion ([`convert`]), the HTTP transport's headers
//! ([`headers`]), reason codes ([`reason`]) and the
//! interface chain crates implement ([`scheme`], [`payment`]). Settling, storing and
//! reaching nodes belong to `x402-settlement`, `x402-ledger` and the chain crates.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amount;
#[cfg(feature = "bazaar")]
pub mod bazaar;
pub mod caip2;
pub mod convert;
pub mod envelope;
pub mod headers;
pub mod networks;
pub mod payment;
pub mod reason;
pub mod schema;
pub mod scheme;
mod serde_util;
pub mod v1;
pub mod v2;

pub use amount::TokenAmount;
pub use caip2::{Caip2Error, ChainId};
pub use envelope::{parse_request, EnvelopeError, VersionedRequest, X402Version};
pub use networks::{ChainFamily, KnownNetwork};
pub use payment::{
    amount_is_a_maximum, digest_matches, is_request_digest, Payment, Refusal, Requirements,
    Settlement, Verdict,
};
pub use reason::{Reason, ReasonClass};
pub use scheme::{Chain, HealthCheck, ReconcileReport, Scheme, SectionError};
