//! The answers every chain gives from a ledger entry: the recorded final answer, a pending
//! answer naming the recorded transaction, the fail-closed refusals (ledger or node
//! unavailable), and writing an outcome down (where another request or instance may have
//! written it first).

use x402_ledger::{Entry, EntryState, Ledger};
use x402_protocol::{ChainId, Reason, Settlement, Verdict};

use crate::jsonrpc::{CallResult, NodeError};
use crate::record::{from_record, to_record};

/// The answer recorded for a finished entry; `failed_reason` covers a record this build
/// cannot read back.
pub fn recorded_answer(entry: &Entry, failed_reason: Reason) -> Settlement {
    entry
        .outcome
        .as_deref()
        .and_then(from_record)
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

/// The refusal when no RPC endpoint of `network` answered: the facilitator's trouble,
/// never the payer's (logged by kind; the error text names endpoints by position only).
pub fn rpc_refusal(
    network: &ChainId,
    error: impl std::fmt::Display,
    payer: Option<String>,
) -> Verdict {
    tracing::warn!(network = %network, error = %error, "RPC unavailable");
    Verdict::invalid(
        Reason::RpcUnavailable,
        format!("the facilitator cannot reach {network} right now; retry later"),
        payer,
    )
}

/// The refusal when the node answered a read every payment needs with an error, or with
/// something unreadable: the facilitator's trouble, logged, never the payer's.
pub fn node_refusal(network: &ChainId, what: &str, node: &NodeError, payer: &str) -> Verdict {
    tracing::warn!(network = %network, code = node.code, cause = ?node.cause, "{what} failed at the node");
    Verdict::invalid(
        Reason::RpcUnavailable,
        format!("the node could not answer {what}; retry later"),
        Some(payer.to_owned()),
    )
}

/// The result of a read every payment needs; any error, the endpoints' or the node's, is
/// the facilitator's trouble ([`rpc_refusal`], [`node_refusal`]).
pub fn node_answer(
    answer: CallResult,
    network: &ChainId,
    what: &str,
    payer: &str,
) -> Result<serde_json::Value, Verdict> {
    answer
        .map_err(|e| rpc_refusal(network, e, Some(payer.to_owned())))?
        .map_err(|e| node_refusal(network, what, &e, payer))
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

/// Records `settlement` as the final answer of the entry's current transaction and
/// returns the answer to give: the recorded one when another request or instance finished
/// the entry first. A store failure still returns `settlement` (the chain has the truth;
/// the reconciler writes it down once the store is back).
pub async fn settle_entry(
    ledger: &Ledger,
    entry: &Entry,
    state: EntryState,
    settlement: Settlement,
    failed_reason: Reason,
) -> Settlement {
    match ledger.finish(entry, state, &to_record(&settlement)).await {
        Ok(true) => settlement,
        Ok(false) => match ledger.entry(&entry.network, &entry.payment_key).await {
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

/// The checks every v2-only `exact` scheme makes before it reads the payload: x402 v2, the
/// scheme `exact` on both sides, the payload for `network`, and a `maxTimeoutSeconds` above
/// 0. `family` names the chain in the refusal (`"NEAR"`, `"Stellar"`).
pub fn v2_exact_basics(
    payment: &x402_protocol::Payment,
    network: &ChainId,
    family: &str,
) -> Result<(), Verdict> {
    let refuse = |reason, message: String| Err(Verdict::invalid(reason, message, None));
    if payment.version != x402_protocol::X402Version::V2 {
        return refuse(
            Reason::InvalidX402Version,
            format!("{family} exact is x402 v2 only"),
        );
    }
    if payment.scheme != "exact" || payment.payload_scheme != "exact" {
        return refuse(Reason::InvalidScheme, "scheme is not exact".into());
    }
    if payment.payload_network.as_ref() != Some(network) {
        return refuse(
            Reason::InvalidNetwork,
            format!("payload is for another network than {network}"),
        );
    }
    if payment.requirements.max_timeout_seconds == 0 {
        return refuse(
            Reason::InvalidPaymentRequirements,
            "maxTimeoutSeconds must be above 0".into(),
        );
    }
    Ok(())
}
