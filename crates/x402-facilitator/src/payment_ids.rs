//! The v2 `payment-identifier` extension: a client-chosen idempotency key.
//!
//! An id is bound to the first payment that reaches a broadcast under it; the same id
//! with a different payment is a conflict (`payment_identifier_conflict`), the same id with
//! the same payment is a retry and goes through to the scheme's own idempotency. The
//! binding lives in memory, bounded, per instance (the settlement ledger will keep it).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use x402_protocol::Payment;

/// The extension's key in `paymentPayload.extensions`.
pub const EXTENSION: &str = "payment-identifier";
/// Most ids remembered; the oldest are forgotten first.
pub const CAPACITY: usize = 100_000;

/// The payment id of a v2 payment, when it carries a well-formed one
/// (16 to 128 characters of `A-Z a-z 0-9 _ -`, as the extension's schema says).
pub fn payment_id(payment: &Payment) -> Option<String> {
    let id = payment
        .extensions
        .as_ref()?
        .get(EXTENSION)?
        .get("info")?
        .get("id")?
        .as_str()?;
    let well_formed = (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    well_formed.then(|| id.to_owned())
}

/// Ids bound to payments.
#[derive(Default)]
pub struct PaymentIds {
    inner: Mutex<(HashMap<String, u64>, VecDeque<String>)>,
}

impl PaymentIds {
    /// Whether `id` is bound to another payment than `digest`.
    pub fn conflicts(&self, id: &str, digest: u64) -> bool {
        let guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.0.get(id).is_some_and(|bound| *bound != digest)
    }

    /// Binds `id` to `digest` unless it is bound to another payment (then `false`).
    pub fn reserve(&self, id: &str, digest: u64) -> bool {
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (map, order) = &mut *guard;
        match map.get(id) {
            Some(bound) => *bound == digest,
            None => {
                map.insert(id.to_owned(), digest);
                order.push_back(id.to_owned());
                while order.len() > CAPACITY {
                    if let Some(oldest) = order.pop_front() {
                        map.remove(&oldest);
                    }
                }
                true
            }
        }
    }

    /// Unbinds `id` from `digest` (nothing was broadcast: the id is free again).
    pub fn release(&self, id: &str, digest: u64) {
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (map, order) = &mut *guard;
        if map.get(id) == Some(&digest) {
            map.remove(id);
            order.retain(|k| k != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_payment_owns_the_id_until_released() {
        let ids = PaymentIds::default();
        assert!(ids.reserve("pay_0123456789abcdef", 1));
        assert!(ids.reserve("pay_0123456789abcdef", 1), "a retry");
        assert!(!ids.reserve("pay_0123456789abcdef", 2), "another payment");
        assert!(ids.conflicts("pay_0123456789abcdef", 2));
        ids.release("pay_0123456789abcdef", 2);
        assert!(
            ids.conflicts("pay_0123456789abcdef", 2),
            "only the owner releases"
        );
        ids.release("pay_0123456789abcdef", 1);
        assert!(ids.reserve("pay_0123456789abcdef", 2));
    }
}
