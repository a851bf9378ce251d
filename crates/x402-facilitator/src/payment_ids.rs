//! The v2 `payment-identifier` extension: a client-chosen idempotency key.
//!
//! An id is bound to the first payment that reaches a broadcast under it; the same id
//! with a different payment is a conflict (`payment_identifier_conflict`), the same id with
//! the same payment is a retry and goes through to the scheme's own idempotency. The
//! bindings live in the settlement ledger, so they hold across restarts and, on
//! PostgreSQL, across instances (`Ledger::bind_payment_id`; its tests cover the rules).

use x402_protocol::Payment;

/// The extension's key in `paymentPayload.extensions`.
pub const EXTENSION: &str = "payment-identifier";

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
    well_formed(id).then(|| id.to_owned())
}

/// Whether `id` is a payment id as the extension's schema allows it.
pub fn well_formed(id: &str) -> bool {
    (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
