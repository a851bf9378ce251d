//! EVM chains for the x402 facilitator: one [`EvmNetwork`] per network and the schemes on
//! it: `exact` (EIP-3009 or Permit2) and `upto` (Permit2).
//!
//! Built on `alloy`. An [`EvmNetwork`] is the `Chain` of `x402-protocol` (health, signers,
//! reconciliation); [`EvmNetwork::scheme`] gives the `Scheme`s served on it, for both
//! protocol versions.

#![forbid(unsafe_code)]

pub mod config;
mod network;
pub mod rpc;

pub use config::{EvmOptions, EvmSection};
pub use network::{
    read_payload, EvmAddress, EvmNetwork, EvmSettings, EvmSetupError, NonceFetchMode, PayloadShape,
    SCHEMES,
};
