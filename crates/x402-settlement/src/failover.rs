//! The order in which a chain's RPC endpoints are tried: healthy ones in configured order,
//! then those that failed recently (soonest back first). Shared by every chain crate so
//! that failover behaves the same on every network. Pure bookkeeping: no I/O.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// No endpoint of a network answered: the facilitator's trouble, never the payer's. The
/// text names endpoints by position (`rpc#2`), never by URL.
#[derive(Debug, Clone, thiserror::Error)]
#[error("RPC unavailable: {0}")]
pub struct RpcUnavailable(pub String);

/// How long an endpoint that failed goes to the back of the order.
pub const COOL_DOWN: Duration = Duration::from_secs(5);

/// Health of a fixed list of endpoints.
pub struct EndpointHealth {
    /// One more than the milliseconds since `epoch` until which each endpoint counts as
    /// failing; 0: never failed or answered since.
    failing_until: Vec<AtomicU64>,
    epoch: Instant,
    cool_down: Duration,
}

impl EndpointHealth {
    /// `count` endpoints, all healthy.
    pub fn new(count: usize, cool_down: Duration) -> Self {
        EndpointHealth {
            failing_until: (0..count).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            cool_down,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether a stored value means "still cooling down" at `now`.
    fn cooling(stored: u64, now: u64) -> bool {
        stored != 0 && stored - 1 > now
    }

    /// Indexes in the order to try them.
    pub fn order(&self) -> Vec<usize> {
        let now = self.now_ms();
        let mut order: Vec<usize> = (0..self.failing_until.len()).collect();
        order.sort_by_key(|&i| {
            let stored = self.failing_until[i].load(Ordering::Relaxed);
            if Self::cooling(stored, now) {
                stored
            } else {
                0
            }
        });
        order
    }

    /// Records a failure; `true` when the endpoint was healthy until now (log it once).
    pub fn failed(&self, index: usize) -> bool {
        let now = self.now_ms();
        let stored = now + self.cool_down.as_millis() as u64 + 1;
        self.failing_until
            .get(index)
            .is_some_and(|slot| !Self::cooling(slot.swap(stored, Ordering::Relaxed), now))
    }

    /// Records a success; `true` when the endpoint had been failing (log the recovery).
    pub fn succeeded(&self, index: usize) -> bool {
        self.failing_until
            .get(index)
            .is_some_and(|slot| slot.swap(0, Ordering::Relaxed) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_endpoint_goes_last_until_it_answers_again() {
        let health = EndpointHealth::new(3, Duration::from_secs(60));
        assert_eq!(health.order(), vec![0, 1, 2]);
        assert!(health.failed(0), "first failure is news");
        assert!(!health.failed(0), "a repeated failure is not");
        assert_eq!(health.order(), vec![1, 2, 0]);
        assert!(health.failed(1));
        assert_eq!(
            health.order(),
            vec![2, 0, 1],
            "the one failing longest comes back first"
        );
        assert!(health.succeeded(0));
        assert!(!health.succeeded(0));
        assert_eq!(health.order(), vec![0, 2, 1]);
        assert!(!health.failed(7), "an unknown index is ignored");
    }

    #[test]
    fn the_cool_down_ends_by_itself() {
        let health = EndpointHealth::new(2, Duration::ZERO);
        health.failed(0);
        assert_eq!(health.order(), vec![0, 1]);
    }
}
