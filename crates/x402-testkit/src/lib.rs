//! What the tests pay on, shared by the chain crates' own tests, the service's tests and
//! the `dev` demo: a local EVM chain (anvil) with our EIP-3009 test token ([`anvil`]),
//! authorizations signed as the official clients sign them ([`eip3009`]), Permit2 and the x402
//! proxy stand-ins ([`permit2`]), and with the
//! `svm` feature the local Solana node and payment transactions (`surfnode`). Not published:
//! production code uses it only for the demo chain.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anvil;
pub mod eip3009;
pub mod permit2;
#[cfg(feature = "svm")]
pub mod surfnode;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
