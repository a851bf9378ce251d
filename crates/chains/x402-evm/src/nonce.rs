//! Per-signer transaction nonces, allocated without holding a lock across the network.
//!
//! The first use (and any use after a reset) reads the chain's pending nonce; later
//! allocations are a local increment, so many settlements from one key can be in
//! flight at once.

use std::sync::atomic::{AtomicU64, Ordering};

use alloy::primitives::Address;
use serde_json::json;
use tokio::sync::Mutex;

use crate::rpc::{Rpc, RpcUnavailable};

const UNSET: u64 = u64::MAX;

/// Hands out nonces for one signer.
pub struct NonceManager {
    next: AtomicU64,
    sync: Mutex<()>,
}

impl Default for NonceManager {
    fn default() -> Self {
        NonceManager {
            next: AtomicU64::new(UNSET),
            sync: Mutex::new(()),
        }
    }
}

impl NonceManager {
    /// The next nonce to use.
    pub async fn next(&self, rpc: &Rpc, address: Address) -> Result<u64, RpcUnavailable> {
        loop {
            let current = self.next.load(Ordering::Acquire);
            if current != UNSET {
                if self
                    .next
                    .compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Ok(current);
                }
                continue;
            }
            // Only one task reads the chain; the others wait for its answer.
            let _guard = self.sync.lock().await;
            if self.next.load(Ordering::Acquire) != UNSET {
                continue;
            }
            let answer = rpc
                .call(
                    "eth_getTransactionCount",
                    json!([address.to_string(), "pending"]),
                )
                .await?;
            let fresh = answer
                .ok()
                .and_then(|v| {
                    v.as_str()
                        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                })
                .ok_or_else(|| RpcUnavailable("eth_getTransactionCount gave no number".into()))?;
            self.next.store(fresh, Ordering::Release);
        }
    }

    /// Forgets the local nonce; the next allocation re-reads the chain.
    pub fn reset(&self) {
        self.next.store(UNSET, Ordering::Release);
    }
}
