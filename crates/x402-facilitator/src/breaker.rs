//! The automatic v2 settle breaker, and the first-sighting filter that keeps re-sent
//! answers from being counted twice.
//!
//! The breaker is evidence that this release or its infrastructure is broken, so nothing a
//! payer or a stranger controls may trip it:
//! - only facilitator-side failures count ([`x402_protocol::Reason::is_facilitator_failure`]);
//!   a revert the chain shows the payer caused (their balance or authorization moved
//!   before our transaction ran) is answered with the payer's reason and does not count;
//! - each settlement counts once, however often it is re-sent ([`Sightings`]);
//! - a trip needs `threshold` failures in the window, from at least `min_payers` payers,
//!   and at least `min_failure_rate` of the settlements executed in the window;
//! - after `probe_after`, a tripped breaker half-opens by itself: v2 settle comes back on
//!   probation, where the next counted failure trips it at once and a success closes it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use x402_protocol::Settlement;

/// Defaults follow the seeds' alarm: 5 failures in two minutes.
pub const DEFAULT_THRESHOLD: usize = 5;
/// See [`DEFAULT_THRESHOLD`].
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(120);
/// Failures must come from at least this many payers (one payer cannot trip it).
pub const DEFAULT_MIN_PAYERS: usize = 2;
/// Failures must be at least this share of the settlements executed in the window.
pub const DEFAULT_MIN_FAILURE_RATE: f64 = 0.5;
/// A tripped breaker half-opens after this long (0 in the configuration: never).
pub const DEFAULT_PROBE_AFTER: Duration = Duration::from_secs(300);

/// When the breaker trips and when it probes again.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerPolicy {
    /// Counted failures in the window that trip it; 0 disables the breaker.
    pub threshold: usize,
    /// The sliding window.
    pub window: Duration,
    /// Distinct payers among the counted failures.
    pub min_payers: usize,
    /// Counted failures over counted failures plus successes, 0.0 to 1.0.
    pub min_failure_rate: f64,
    /// How long after a trip v2 settle comes back on probation; `None`: only an operator.
    pub probe_after: Option<Duration>,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            threshold: DEFAULT_THRESHOLD,
            window: DEFAULT_WINDOW,
            min_payers: DEFAULT_MIN_PAYERS,
            min_failure_rate: DEFAULT_MIN_FAILURE_RATE,
            probe_after: Some(DEFAULT_PROBE_AFTER),
        }
    }
}

/// What the window held when the breaker tripped, for the log and `/flags`.
#[derive(Debug, Clone, PartialEq)]
pub struct TripSummary {
    /// Counted failures in the window.
    pub failures: usize,
    /// Distinct payers among them.
    pub payers: usize,
    /// Failures over failures plus successes.
    pub rate: f64,
    /// Whether the breaker was on probation (one failure suffices then).
    pub on_probation: bool,
}

/// One counted settlement; `failed_payer` is `Some` for a failure (the payer, when known).
struct Event {
    at: Instant,
    failed_payer: Option<Option<String>>,
}

/// The settlements in the window, with the failure counts kept as events come and go, so
/// that an observation costs the same however busy the window is.
#[derive(Default)]
struct Window {
    events: VecDeque<Event>,
    failures: usize,
    /// Failures in the window by payer.
    payers: HashMap<String, usize>,
    probation: bool,
}

impl Window {
    fn push(&mut self, event: Event) {
        if let Some(payer) = &event.failed_payer {
            self.failures += 1;
            if let Some(payer) = payer {
                *self.payers.entry(payer.clone()).or_default() += 1;
            }
        }
        self.events.push_back(event);
    }

    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(event) = self
            .events
            .pop_front_if(|e| now.duration_since(e.at) > window)
        {
            let Some(payer) = event.failed_payer else {
                continue;
            };
            self.failures -= 1;
            if let Some(payer) = payer {
                if let Some(n) = self.payers.get_mut(&payer) {
                    *n -= 1;
                    if *n == 0 {
                        self.payers.remove(&payer);
                    }
                }
            }
        }
    }

    fn summary(&self) -> TripSummary {
        TripSummary {
            failures: self.failures,
            payers: self.payers.len(),
            rate: self.failures as f64 / self.events.len().max(1) as f64,
            on_probation: self.probation,
        }
    }
}

/// The v2 settle breaker of one instance.
pub struct Breaker {
    policy: BreakerPolicy,
    window: Mutex<Window>,
}

/// Whether a settlement answer is the facilitator's (or chain's) failure, as opposed to a
/// refused payment or a success.
pub fn is_facilitator_failure(settlement: &Settlement) -> bool {
    !settlement.success
        && settlement
            .reason
            .is_some_and(x402_protocol::Reason::is_facilitator_failure)
}

impl Breaker {
    /// A breaker with `policy`.
    pub fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            window: Mutex::new(Window::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one settlement seen for the first time (see [`Sightings`]); payer refusals
    /// are ignored. Returns the summary when this observation trips the breaker.
    pub fn observe(&self, settlement: &Settlement) -> Option<TripSummary> {
        self.observe_at(settlement, Instant::now())
    }

    fn observe_at(&self, settlement: &Settlement, now: Instant) -> Option<TripSummary> {
        if self.policy.threshold == 0 {
            return None;
        }
        let failure = is_facilitator_failure(settlement);
        if !failure && !settlement.success {
            return None;
        }
        let mut window = self.lock();
        window.push(Event {
            at: now,
            failed_payer: failure.then(|| settlement.payer.clone()),
        });
        window.expire(now, self.policy.window);
        if !failure {
            // A success on probation closes the breaker again.
            window.probation = false;
            return None;
        }
        let summary = window.summary();
        let trips = summary.on_probation
            || (summary.failures >= self.policy.threshold
                && summary.payers >= self.policy.min_payers
                && summary.rate >= self.policy.min_failure_rate);
        if trips {
            window.probation = false;
        }
        trips.then_some(summary)
    }

    /// Forgets past settlements (an operator re-enabled v2 settle).
    pub fn reset(&self) {
        *self.lock() = Window::default();
    }

    /// Half-open: the window starts empty and the next counted failure trips at once.
    pub fn enter_probation(&self) {
        *self.lock() = Window {
            probation: true,
            ..Window::default()
        };
    }

    /// The policy, for messages and the probe.
    pub fn policy(&self) -> &BreakerPolicy {
        &self.policy
    }
}

/// Remembers which settlement outcomes were already counted, so that a re-sent request
/// (answered from the ledger, or pending again) counts once toward the breaker and the
/// failure metric. Bounded in time and size; when full, the oldest sighting is forgotten.
/// Keys are kept as 64-bit keyed hashes (about 40 bytes a sighting): a collision can only
/// leave one outcome uncounted.
pub struct Sightings {
    ttl: Duration,
    capacity: usize,
    hasher: std::collections::hash_map::RandomState,
    seen: Mutex<SeenKeys>,
}

/// Key hashes with the time first seen, and the same in the order seen (for expiry).
type SeenKeys = (HashMap<u64, Instant>, VecDeque<(Instant, u64)>);

impl Sightings {
    /// Sightings kept for `ttl`, at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Sightings {
            ttl,
            capacity: capacity.max(1),
            hasher: std::collections::hash_map::RandomState::new(),
            seen: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// The key of one settlement outcome: its transaction when there is one (one broadcast
    /// is one event, whichever request re-sends it), else the request's digest (computed
    /// only then).
    pub fn key(settlement: &Settlement, digest: impl FnOnce() -> String) -> String {
        let outcome = if settlement.success {
            "ok"
        } else {
            settlement.reason.map(|r| r.as_str()).unwrap_or("failed")
        };
        if settlement.transaction.is_empty() {
            format!("{outcome}/digest/{}", digest())
        } else {
            format!("{outcome}/tx/{}", settlement.transaction)
        }
    }

    /// True the first time `key` is seen within the time to live.
    pub fn first(&self, key: &str) -> bool {
        self.first_at(key, Instant::now())
    }

    fn first_at(&self, key: &str, now: Instant) -> bool {
        use std::hash::BuildHasher;
        let key = self.hasher.hash_one(key);
        let mut guard = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (map, order) = &mut *guard;
        while let Some((at, old)) = order.front() {
            let expired = now.duration_since(*at) > self.ttl;
            if !expired && order.len() < self.capacity {
                break;
            }
            if map.get(old) == Some(at) {
                map.remove(old);
            }
            order.pop_front();
        }
        if map.contains_key(&key) {
            return false;
        }
        map.insert(key, now);
        order.push_back((now, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x402_protocol::Reason;

    fn policy(threshold: usize, min_payers: usize, rate: f64) -> BreakerPolicy {
        BreakerPolicy {
            threshold,
            window: Duration::from_secs(60),
            min_payers,
            min_failure_rate: rate,
            probe_after: None,
        }
    }

    fn gas_failure(payer: &str) -> Settlement {
        Settlement::failed(
            Reason::FacilitatorInsufficientGas,
            "gas",
            Some(payer.into()),
            "",
        )
    }

    #[test]
    fn trips_at_threshold_from_enough_payers() {
        let breaker = Breaker::new(policy(3, 2, 0.5));
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(breaker.observe_at(&gas_failure("0xa"), start), None);
        }
        let tripped = breaker.observe_at(&gas_failure("0xb"), start).unwrap();
        assert_eq!((tripped.failures, tripped.payers), (6, 2));
        breaker.reset();
        assert_eq!(breaker.observe_at(&gas_failure("0xc"), start), None);
    }

    #[test]
    fn a_low_failure_rate_does_not_trip() {
        let breaker = Breaker::new(policy(2, 1, 0.5));
        let start = Instant::now();
        for _ in 0..5 {
            breaker.observe_at(&Settlement::settled("0xa", "0x1"), start);
        }
        assert_eq!(breaker.observe_at(&gas_failure("0xa"), start), None);
        assert_eq!(breaker.observe_at(&gas_failure("0xb"), start), None, "2/7");
        for _ in 0..3 {
            breaker.observe_at(&gas_failure("0xc"), start);
        }
        assert!(breaker.observe_at(&gas_failure("0xd"), start).is_some());
    }

    #[test]
    fn old_events_leave_the_window() {
        let breaker = Breaker::new(policy(2, 1, 0.0));
        let start = Instant::now();
        assert_eq!(breaker.observe_at(&gas_failure("0xa"), start), None);
        let later = start + Duration::from_secs(61);
        assert_eq!(breaker.observe_at(&gas_failure("0xa"), later), None);
        assert!(breaker
            .observe_at(&gas_failure("0xa"), later + Duration::from_secs(1))
            .is_some());
    }

    #[test]
    fn payers_leave_the_window_with_their_failures() {
        let breaker = Breaker::new(policy(1, 2, 0.0));
        let start = Instant::now();
        assert_eq!(breaker.observe_at(&gas_failure("0xa"), start), None);
        let later = start + Duration::from_secs(61);
        assert_eq!(
            breaker.observe_at(&gas_failure("0xb"), later),
            None,
            "0xa expired"
        );
        let tripped = breaker.observe_at(&gas_failure("0xa"), later).unwrap();
        assert_eq!((tripped.failures, tripped.payers), (2, 2));
    }

    #[test]
    fn payer_refusals_are_not_failures_and_on_chain_failures_of_every_chain_are() {
        let refused = Settlement::failed(Reason::ExactEvmSignature, "bad", None, "");
        assert!(!is_facilitator_failure(&refused));
        let payer_moved = Settlement::failed(Reason::ExactEvmInsufficientBalance, "", None, "0x1");
        assert!(!is_facilitator_failure(&payer_moved));
        for reason in [
            Reason::ExactEvmTransactionFailed,
            Reason::ExactSvmTransactionFailed,
            Reason::FacilitatorInsufficientGas,
        ] {
            assert!(is_facilitator_failure(&Settlement::failed(
                reason, "", None, "0x1"
            )));
        }
        let flag = Settlement::failed(Reason::FeatureDisabled, "off", None, "");
        assert!(!is_facilitator_failure(&flag));
        let breaker = Breaker::new(policy(1, 1, 0.0));
        assert_eq!(breaker.observe(&refused), None);
        assert_eq!(breaker.observe(&payer_moved), None);
    }

    #[test]
    fn probation_trips_on_the_first_failure_and_a_success_closes_it() {
        let breaker = Breaker::new(policy(5, 2, 0.5));
        breaker.enter_probation();
        assert!(breaker.observe(&gas_failure("0xa")).unwrap().on_probation);
        breaker.enter_probation();
        assert_eq!(breaker.observe(&Settlement::settled("0xa", "0x1")), None);
        assert_eq!(breaker.observe(&gas_failure("0xa")), None, "closed again");
    }

    #[test]
    fn sightings_count_each_outcome_once_within_the_time_to_live() {
        let sightings = Sightings::new(Duration::from_secs(10), 3);
        let reverted = Settlement::failed(Reason::ExactEvmTransactionFailed, "", None, "0xab");
        let key = Sightings::key(&reverted, || "d1".into());
        assert_eq!(
            key,
            Sightings::key(&reverted, || unreachable!("a transaction is the key"))
        );
        let start = Instant::now();
        assert!(sightings.first_at(&key, start));
        assert!(!sightings.first_at(&key, start));
        let no_tx = Settlement::failed(Reason::RpcUnavailable, "", None, "");
        assert_ne!(
            Sightings::key(&no_tx, || "d1".into()),
            Sightings::key(&no_tx, || "d2".into())
        );
        assert!(sightings.first_at(&key, start + Duration::from_secs(11)));
        for i in 0..5 {
            assert!(sightings.first_at(&format!("k{i}"), start + Duration::from_secs(12)));
        }
        let guard = sightings.seen.lock().unwrap();
        assert!(guard.0.len() <= 3 && guard.1.len() <= 3);
    }
}
