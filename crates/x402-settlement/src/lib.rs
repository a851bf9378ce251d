//! The one settlement engine of the facilitator, shared by every chain.
//!
//! A chain crate implements [`ChainOps`] once per chain (send, status, optionally a pool
//! lookup and its own replacement of a transaction that can never land) and
//! [`SchemeOps`] once per scheme (the payment's key, check-sign-and-record); [`Engine`]
//! runs the state machine on the ledger: resume what is known,
//! record before anything is sent, confirm, write the outcome down, reconcile what a crash
//! or an outage left open. The answers every chain gives from a ledger entry
//! ([`answers`]), the record format of final answers ([`record`]), RPC endpoint failover
//! ([`failover`]), the JSON-RPC client of the chains whose nodes speak plain JSON-RPC
//! ([`jsonrpc`]) and the metric catalogue ([`metric`]) live here too, so a chain crate
//! cannot give them another shape.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod answers;
mod engine;
pub mod failover;
pub mod jsonrpc;
pub mod metric;
mod ops;
pub mod record;
mod scheme;
mod single_flight;

pub use engine::{note_replacement, poll, Engine};
pub use ops::{ChainOps, Draft, NotRecorded, Polling, Recording, SchemeOps, Sent, Status};
pub use scheme::{EngineScheme, OnEngine};

/// Which of `count` signers settles the payment `payment_key`: spread over them by the
/// payment's identity, so one payment always goes to the same signer (its retries and
/// replacements stay on one account's nonce or sequence).
pub fn signer_index(payment_key: &str, count: usize) -> usize {
    let spread = payment_key.bytes().fold(0usize, |a, b| {
        a.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    spread % count.max(1)
}
