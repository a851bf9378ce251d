//! What the tests pay on, shared by the chain crates' own tests, the service's tests and
//! the `dev` demo: a local EVM chain (anvil) with our EIP-3009 test token ([`anvil`]) and
//! authorizations signed as the official clients sign them ([`eip3009`]). Not published:
//! production code uses it only for the demo chain.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anvil;
pub mod eip3009;
