//! EVM chains for the x402 facilitator: the `exact` scheme with EIP-3009.
//!
//! Built on `alloy`. One [`exact::ExactEvm`] serves one network for both protocol
//! versions through the `SchemeHandler` interface of `x402-protocol`.

#![forbid(unsafe_code)]

pub mod exact;
pub mod rpc;

pub use exact::{EvmSettings, EvmSetupError, ExactEvm, NonceFetchMode};
pub use x402_ledger;

/// The alloy version this crate is built on, for callers that sign test payments.
pub use alloy;
