//! What a request must pass before any chain code runs, so that strangers cannot make the
//! facilitator spend gas on worthless settlements: the network's asset policy, its minimum
//! amount, a payee that is not a burn address, v2 `accepted` equal to the requirements,
//! and the optional per-payer / per-`payTo` rate limits.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use x402_protocol::networks::ChainFamily;
use x402_protocol::{ChainId, Payment, Reason, VersionedRequest};

use crate::config::{AssetPolicy, Config, RateLimits};

/// A refusal of the guard: a protocol answer (HTTP 200) with a spec reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRefusal {
    /// The reason code.
    pub reason: Reason,
    /// What is wrong, for the caller.
    pub message: String,
}

struct NetworkPolicy {
    family: ChainFamily,
    assets: AssetPolicy,
    min_amount: u128,
}

/// The payment policy of every configured network.
pub struct PaymentPolicy {
    networks: HashMap<ChainId, NetworkPolicy>,
    rates: RateLimiter,
}

/// Addresses that burn what they receive: a payment to them is settled for no one.
const BURN_ADDRESSES: &[&str] = &[
    "0x0000000000000000000000000000000000000000",
    "11111111111111111111111111111111",
];

fn refuse(reason: Reason, message: String) -> GuardRefusal {
    GuardRefusal { reason, message }
}

impl PaymentPolicy {
    /// The policy the configuration describes.
    pub fn from_config(config: &Config) -> Self {
        let networks = config
            .networks
            .iter()
            .map(|n| {
                let policy = NetworkPolicy {
                    family: n.family,
                    assets: n.assets.clone(),
                    min_amount: n.min_amount.max(1),
                };
                (n.chain_id.clone(), policy)
            })
            .collect();
        PaymentPolicy {
            networks,
            rates: RateLimiter::new(config.rate_limits),
        }
    }

    /// Checks the requirements of a payment on a configured network (an unconfigured one
    /// is refused later, by the handler lookup).
    pub fn check(&self, payment: &Payment) -> Result<(), GuardRefusal> {
        let Some(policy) = self.networks.get(&payment.network) else {
            return Ok(());
        };
        let requirements = &payment.requirements;
        if !policy.assets.allows(policy.family, &requirements.asset) {
            return Err(refuse(
                Reason::InvalidPaymentRequirements,
                format!(
                    "asset {} is not settled on {} (see /supported and the operator's asset list)",
                    requirements.asset, payment.network
                ),
            ));
        }
        let amount = requirements.amount.as_str().trim_start_matches('0');
        // `upto` settling nothing sends nothing (the spec's zero settlement): no minimum.
        let charges_nothing =
            x402_protocol::amount_is_a_maximum(&payment.scheme) && amount.is_empty();
        // More than 39 digits never fits 128 bits and is above any minimum.
        let below = !charges_nothing
            && amount.len() <= 39
            && amount
                .parse::<u128>()
                .map_or(amount.is_empty(), |a| a < policy.min_amount);
        if below {
            return Err(refuse(
                Reason::InvalidPaymentRequirements,
                format!(
                    "amount {} is below the smallest amount settled on {} ({})",
                    requirements.amount.as_str(),
                    payment.network,
                    policy.min_amount
                ),
            ));
        }
        let pay_to = requirements.pay_to.trim();
        if BURN_ADDRESSES
            .iter()
            .any(|b| b.eq_ignore_ascii_case(pay_to))
        {
            return Err(refuse(
                Reason::InvalidPaymentRequirements,
                format!("payTo {pay_to} burns what it receives"),
            ));
        }
        Ok(())
    }

    /// Counts a new settlement against the rate limits; `Err(retry after)` when over.
    pub fn admit_settlement(&self, payer: Option<&str>, pay_to: &str) -> Result<(), Duration> {
        self.rates.admit(payer, pay_to, Instant::now())
    }

    /// Whether any rate limit is on (the ledger is asked whether a settle is new only then).
    pub fn limits_rates(&self) -> bool {
        self.rates.limits.per_payer_per_minute > 0 || self.rates.limits.per_pay_to_per_minute > 0
    }
}

/// v2: the payment payload's `accepted` must be the requirements the resource server
/// sends (the official clients copy them verbatim); scheme and network mismatches are left
/// to the chain code, which answers them with the scheme's own reasons. `upto` is the one
/// scheme whose amount differs on purpose (the maximum in `accepted`, at settle the amount to
/// charge in the requirements): its scheme compares the amount with what the payer signed.
pub fn accepted_matches(request: &VersionedRequest) -> Result<(), GuardRefusal> {
    let VersionedRequest::V2(request) = request else {
        return Ok(());
    };
    let accepted = &request.payment_payload.accepted;
    let required = &request.payment_requirements;
    let amount_may_differ = x402_protocol::amount_is_a_maximum(&required.scheme);
    let mismatch = if accepted.amount != required.amount && !amount_may_differ {
        Some("amount")
    } else if accepted.asset != required.asset {
        Some("asset")
    } else if accepted.pay_to != required.pay_to {
        Some("payTo")
    } else if accepted.max_timeout_seconds != required.max_timeout_seconds {
        Some("maxTimeoutSeconds")
    } else if accepted.extra != required.extra {
        Some("extra")
    } else {
        None
    };
    match mismatch {
        Some(field) => Err(refuse(
            Reason::InvalidPaymentRequirements,
            format!("paymentPayload.accepted.{field} differs from paymentRequirements.{field}"),
        )),
        None => Ok(()),
    }
}

/// Sliding one-minute counters per payer and per payee: what they hold is bounded by the
/// last minute of settle requests (idle keys are dropped once more than [`MAX_TRACKED`]).
struct RateLimiter {
    limits: RateLimits,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Keys tracked at most; past it, keys with nothing in the window are dropped first.
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn admit(&self, payer: Option<&str>, pay_to: &str, now: Instant) -> Result<(), Duration> {
        let mut checks = Vec::new();
        if self.limits.per_payer_per_minute > 0 {
            if let Some(payer) = payer {
                let key = format!("payer/{}", payer.to_ascii_lowercase());
                checks.push((key, self.limits.per_payer_per_minute));
            }
        }
        if self.limits.per_pay_to_per_minute > 0 {
            let key = format!("payto/{}", pay_to.to_ascii_lowercase());
            checks.push((key, self.limits.per_pay_to_per_minute));
        }
        if checks.is_empty() {
            return Ok(());
        }
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() > MAX_TRACKED {
            seen.retain(|_, times| times.back().is_some_and(|t| now - *t < RATE_WINDOW));
        }
        for (key, limit) in &checks {
            let times = seen.entry(key.clone()).or_default();
            while times.front().is_some_and(|t| now - *t >= RATE_WINDOW) {
                times.pop_front();
            }
            if times.len() >= *limit as usize {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(RATE_WINDOW
                    .saturating_sub(now - oldest)
                    .max(Duration::from_secs(1)));
            }
        }
        for (key, _) in checks {
            seen.entry(key).or_default().push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_count_per_payer_and_per_payee_and_recover() {
        let limiter = RateLimiter::new(RateLimits {
            per_payer_per_minute: 2,
            per_pay_to_per_minute: 3,
        });
        let start = Instant::now();
        assert!(limiter.admit(Some("0xA"), "0xP", start).is_ok());
        assert!(limiter.admit(Some("0xa"), "0xP", start).is_ok());
        let wait = limiter.admit(Some("0xA"), "0xP", start).unwrap_err();
        assert_eq!(wait, RATE_WINDOW);
        assert!(
            limiter.admit(Some("0xB"), "0xP", start).is_ok(),
            "3rd for 0xP"
        );
        assert!(
            limiter.admit(Some("0xC"), "0xP", start).is_err(),
            "4th for 0xP"
        );
        assert!(limiter.admit(Some("0xC"), "0xQ", start).is_ok());
        let later = start + RATE_WINDOW;
        assert!(limiter.admit(Some("0xA"), "0xP", later).is_ok());
        let off = RateLimiter::new(RateLimits::default());
        for _ in 0..100 {
            assert!(off.admit(Some("0xA"), "0xP", start).is_ok());
        }
    }
}
