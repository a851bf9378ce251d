//! The automatic v2 settle breaker.
//!
//! Counts facilitator-side settlement failures of v2 (reverts, receipt timeouts, RPC and
//! gas trouble; never a payer's bad payment) in a sliding window. When the count reaches
//! the threshold, v2 settle switches itself off; only an operator turns it back on.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use x402_protocol::{Reason, Settlement};

/// Defaults follow the seeds' alarm: 5 failures in two minutes.
pub const DEFAULT_THRESHOLD: usize = 5;
/// See [`DEFAULT_THRESHOLD`].
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(120);

/// A sliding-window failure counter.
pub struct Breaker {
    threshold: usize,
    window: Duration,
    failures: Mutex<VecDeque<Instant>>,
}

/// Whether a settlement answer is the facilitator's (or chain's) failure, as opposed to a
/// refused payment or a success.
pub fn is_facilitator_failure(settlement: &Settlement) -> bool {
    if settlement.success {
        return false;
    }
    matches!(
        settlement.reason,
        Some(
            Reason::ExactEvmTransactionFailed
                | Reason::InvalidTransactionState
                | Reason::SettlementPending
                | Reason::RpcUnavailable
                | Reason::FacilitatorInsufficientGas
                | Reason::UnexpectedSettleError
                | Reason::LedgerUnavailable
        )
    )
}

impl Breaker {
    /// `threshold` failures within `window` trip the breaker; 0 disables it.
    pub fn new(threshold: usize, window: Duration) -> Self {
        Breaker {
            threshold,
            window,
            failures: Mutex::new(VecDeque::new()),
        }
    }

    /// Records one failure now; returns the count in the window when it reaches the
    /// threshold (the caller trips), `None` otherwise.
    pub fn record_failure(&self) -> Option<usize> {
        self.record_failure_at(Instant::now())
    }

    fn record_failure_at(&self, now: Instant) -> Option<usize> {
        if self.threshold == 0 {
            return None;
        }
        let mut failures = match self.failures.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        failures.push_back(now);
        while failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            failures.pop_front();
        }
        (failures.len() >= self.threshold).then_some(failures.len())
    }

    /// Forgets past failures (an operator re-enabled v2 settle).
    pub fn reset(&self) {
        match self.failures.lock() {
            Ok(mut guard) => guard.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    /// The window, for messages.
    pub fn window(&self) -> Duration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_at_threshold_within_window() {
        let breaker = Breaker::new(3, Duration::from_secs(60));
        assert_eq!(breaker.record_failure(), None);
        assert_eq!(breaker.record_failure(), None);
        assert_eq!(breaker.record_failure(), Some(3));
        breaker.reset();
        assert_eq!(breaker.record_failure(), None);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let breaker = Breaker::new(2, Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(breaker.record_failure_at(start), None);
        assert_eq!(
            breaker.record_failure_at(start + Duration::from_secs(61)),
            None
        );
        assert_eq!(
            breaker.record_failure_at(start + Duration::from_secs(62)),
            Some(2)
        );
    }

    #[test]
    fn payer_refusals_are_not_failures() {
        let refused = Settlement::failed(Reason::ExactEvmSignature, "bad", None, "");
        assert!(!is_facilitator_failure(&refused));
        let reverted = Settlement::failed(Reason::ExactEvmTransactionFailed, "revert", None, "0x1");
        assert!(is_facilitator_failure(&reverted));
        let no_gas = Settlement::failed(Reason::FacilitatorInsufficientGas, "gas", None, "");
        assert!(is_facilitator_failure(&no_gas));
        let flag = Settlement::failed(Reason::FeatureDisabled, "off", None, "");
        assert!(!is_facilitator_failure(&flag));
    }
}
