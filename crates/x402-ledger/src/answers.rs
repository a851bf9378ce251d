//! The answers every chain gives from a ledger entry: the recorded final answer, a pending
//! answer naming the recorded transaction, the fail-closed refusal, and writing an outcome
//! down (where another request or instance may have written it first).

use x402_protocol::{Reason, Settlement};

use crate::{Entry, EntryState, Ledger};

/// The answer recorded for a finished entry; `failed_reason` covers a record this build
/// cannot read back.
pub fn recorded_answer(entry: &Entry, failed_reason: Reason) -> Settlement {
    entry
        .outcome
        .as_deref()
        .and_then(Settlement::from_record)
        .unwrap_or_else(|| {
            if entry.state == EntryState::Confirmed {
                Settlement::settled(entry.payer.clone(), entry.tx_hash.clone())
            } else {
                Settlement::failed(
                    failed_reason,
                    "settlement failed",
                    Some(entry.payer.clone()),
                    entry.tx_hash.clone(),
                )
            }
        })
}

/// `settlement_pending` for an entry whose transaction is recorded but not final yet.
pub fn pending_answer(entry: &Entry, why: impl std::fmt::Display) -> Settlement {
    Settlement::failed(
        Reason::SettlementPending,
        format!("{why}; the signed transaction is kept and sent again; retry the same request for the outcome"),
        Some(entry.payer.clone()),
        entry.tx_hash.clone(),
    )
}

/// The refusal when the ledger cannot be used: nothing was signed or sent.
pub fn ledger_refusal(
    network: &str,
    error: impl std::fmt::Display,
    payer: Option<String>,
) -> Settlement {
    tracing::error!(network = %network, error = %error, "settlement ledger unavailable: refusing to settle, nothing sent");
    Settlement::failed(
        Reason::LedgerUnavailable,
        "the facilitator cannot record settlements right now; nothing was sent; retry later",
        payer,
        "",
    )
}

impl Ledger {
    /// Records `settlement` as the final answer of the entry's current transaction and
    /// returns the answer to give: the recorded one when another request or instance
    /// finished the entry first. A store failure still returns `settlement` (the chain has
    /// the truth; the reconciler writes it down once the store is back).
    pub async fn settle_entry(
        &self,
        entry: &Entry,
        state: EntryState,
        settlement: Settlement,
        failed_reason: Reason,
    ) -> Settlement {
        match self.finish(entry, state, &settlement.to_record()).await {
            Ok(true) => settlement,
            Ok(false) => match self.entry(&entry.network, &entry.payment_key).await {
                Ok(Some(current)) if current.state != EntryState::Submitted => {
                    recorded_answer(&current, failed_reason)
                }
                _ => settlement,
            },
            Err(e) => {
                tracing::warn!(network = %entry.network, tx_hash = %entry.tx_hash, error = %e, "could not record a settlement outcome");
                settlement
            }
        }
    }
}
