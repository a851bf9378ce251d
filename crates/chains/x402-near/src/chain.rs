//! What the settlement engine needs from a NEAR chain: sending a recorded relayer
//! transaction, reading its outcome at the configured finality, and replacing one the
//! chain can never take (its nonce or block hash went stale before it was included).

use base64::Engine as _;
use near_primitives::action::delegate::SignedDelegateAction;
use near_primitives::action::Action;
use near_primitives::transaction::SignedTransaction;
use serde_json::{json, Value};
use x402_ledger::{Entry, Ledger, SignedTransaction as Recorded};
use x402_protocol::{ChainId, Reason, Settlement};
use x402_settlement::jsonrpc::CallResult;
use x402_settlement::{ChainOps, Polling, Sent, Status};

use crate::check::{head_of, is_unknown};
use crate::NearChain;

/// The relayer transaction's bytes as recorded: base64 Borsh.
pub(crate) fn encode(signed: &SignedTransaction) -> Recorded {
    Recorded {
        hash: signed.get_hash().to_string(),
        raw: base64::engine::general_purpose::STANDARD
            .encode(borsh::to_vec(signed).unwrap_or_default()),
        prelude: None,
    }
}

/// The delegate action a recorded relayer transaction carries.
fn recorded_delegate(raw: &str) -> Option<SignedDelegateAction> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    let signed: SignedTransaction = borsh::from_slice(&bytes).ok()?;
    match signed.transaction.actions() {
        [Action::Delegate(delegate)] => Some((**delegate).clone()),
        _ => None,
    }
}

/// Whether the outcome says the token moved: no receipt failed, and a receipt executed by
/// the token contract succeeded. The transaction's own status is not enough: a delegate
/// receipt succeeds whatever its inner `ft_transfer` receipt does.
pub fn transfer_outcome(view: &Value, asset: &str) -> Result<(), String> {
    let failed = |status: &Value| status.get("Failure").map(Value::to_string);
    if let Some(failure) = view.get("status").and_then(failed) {
        return Err(format!("transaction failed: {failure}"));
    }
    let receipts = view.get("receipts_outcome").and_then(Value::as_array);
    let mut transferred = false;
    for receipt in receipts.into_iter().flatten() {
        let outcome = receipt.get("outcome").unwrap_or(&Value::Null);
        let status = outcome.get("status").unwrap_or(&Value::Null);
        let executor = outcome.get("executor_id").and_then(Value::as_str);
        if let Some(failure) = failed(status) {
            return Err(format!(
                "receipt on {} failed: {failure}",
                executor.unwrap_or("?")
            ));
        }
        let succeeded =
            status.get("SuccessValue").is_some() || status.get("SuccessReceiptId").is_some();
        if executor == Some(asset) && succeeded {
            transferred = true;
        }
    }
    match transferred {
        true => Ok(()),
        false => Err(format!("no receipt of the token {asset} succeeded")),
    }
}

/// The node's `InvalidTxError` for a refused transaction, when it says one.
fn invalid_tx(data: Option<&Value>) -> Option<&Value> {
    let data = data?;
    data.pointer("/TxExecutionError/InvalidTxError")
        .or_else(|| data.get("InvalidTxError"))
}

fn names(error: &Value, name: &str) -> bool {
    error.as_str() == Some(name) || error.get(name).is_some()
}

/// Whether a transaction at status `level` (nearcore's `final_execution_status`) has the
/// configured `finality`: `final`, or `executed` (its receipts ran, optimistically).
fn reached(finality: &str, level: &str) -> bool {
    match finality {
        "executed" => matches!(level, "EXECUTED_OPTIMISTIC" | "EXECUTED" | "FINAL"),
        _ => level == "FINAL",
    }
}

impl NearChain {
    /// A fresh relayer transaction for an open entry whose transaction the chain refused
    /// for good, unless the delegate action itself can no longer execute.
    async fn replace(&self, ledger: &Ledger, entry: &Entry, why: &str) -> Sent {
        let (Some(delegate), Some(relayer)) = (
            recorded_delegate(&entry.raw_tx),
            self.relayer_named(&entry.signer),
        ) else {
            return Sent::Unknown("the recorded transaction cannot be read back".into());
        };
        let head = match self
            .rpc
            .call("block", json!({"finality": "optimistic"}))
            .await
        {
            Ok(Ok(block)) => head_of(&block),
            _ => None,
        };
        let Some((height, block_hash)) = head else {
            return Sent::Unknown("the node gave no head to rebuild on".into());
        };
        if delegate.delegate_action.max_block_height <= height {
            return Sent::Failed(Settlement::failed(
                Reason::NearDelegateActionExpired,
                "the relayer transaction was refused and the delegate action expired before it could be sent again; nothing moved",
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            ));
        }
        let action = &delegate.delegate_action;
        match self.key_nonce(&action.sender_id, &action.public_key).await {
            Ok(used) if used >= action.nonce => {
                // Executed some other way meanwhile: a replacement would only burn gas.
                return Sent::Failed(Settlement::failed(
                    Reason::NearDelegateActionNonceReused,
                    "the relayer transaction was refused and the delegate action's nonce was used by another transaction meanwhile; this facilitator moved nothing",
                    Some(entry.payer.clone()),
                    entry.tx_hash.clone(),
                ));
            }
            Ok(_) => {}
            Err(e) => return Sent::Unknown(e),
        }
        let floor = match self.relayer_nonce(relayer).await {
            Ok(nonce) => nonce.saturating_add(1),
            Err(e) => return Sent::Unknown(e),
        };
        let sign = |nonce| Ok(encode(&relayer.sign(&delegate, nonce, block_hash)));
        match ledger
            .replace_transaction(entry, Some(floor), 1, sign)
            .await
        {
            Ok(Some((replaced, _))) => {
                x402_settlement::note_replacement(
                    &self.chain_id.to_string(),
                    entry,
                    &replaced,
                    why,
                );
                let _ = self.submit(&replaced.raw_tx).await;
                Sent::Replaced(Box::new(replaced))
            }
            Ok(None) => Sent::Moved,
            Err(e) => Sent::Unknown(format!("the replacement was not recorded ({e})")),
        }
    }

    /// The relayer key's nonce on chain.
    pub(crate) async fn relayer_nonce(&self, relayer: &crate::Relayer) -> Result<u64, String> {
        self.key_nonce(&relayer.account, &relayer.public_key).await
    }

    /// An access key's nonce at the optimistic head.
    async fn key_nonce(
        &self,
        account: &near_primitives::types::AccountId,
        key: &near_crypto::PublicKey,
    ) -> Result<u64, String> {
        let answer = self
            .rpc
            .call(
                "query",
                json!({"request_type": "view_access_key", "finality": "optimistic",
                    "account_id": account, "public_key": key.to_string()}),
            )
            .await
            .map_err(|e| e.to_string())?;
        match answer {
            Ok(found) => found
                .get("nonce")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("the access key {account}/{key} has no nonce")),
            Err(node) if is_unknown(&node) => {
                Err(format!("the key {account}/{key} is not on chain"))
            }
            Err(node) => Err(format!(
                "view_access_key failed at the node ({})",
                node.code
            )),
        }
    }

    async fn submit(&self, raw: &str) -> CallResult {
        self.rpc
            .call(
                "send_tx",
                json!({"signed_tx_base64": raw, "wait_until": "NONE"}),
            )
            .await
    }
}

#[async_trait::async_trait]
impl ChainOps for NearChain {
    fn network(&self) -> &ChainId {
        &self.chain_id
    }

    fn failed_reason(&self) -> Reason {
        Reason::ExactNearTransactionFailed
    }

    async fn send(&self, ledger: &Ledger, entry: &Entry) -> Sent {
        let node = match self.submit(&entry.raw_tx).await {
            Err(e) => return Sent::Unknown(format!("send outcome unknown ({e})")),
            Ok(Ok(_)) => return Sent::Accepted,
            Ok(Err(node)) => node,
        };
        let Some(error) = invalid_tx(node.data.as_ref()) else {
            tracing::warn!(network = %self.chain_id, tx_hash = %entry.tx_hash, code = node.code, cause = ?node.cause, "node refused a recorded settlement transaction");
            return Sent::Unknown(format!("node refused the send ({})", node.message));
        };
        if names(error, "NotEnoughBalance") || names(error, "LackBalanceForState") {
            return Sent::Refused(Settlement::failed(
                Reason::FacilitatorInsufficientGas,
                "the relayer cannot pay for the transaction; it is kept and sent again once funded",
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            ));
        }
        let stale = names(error, "InvalidNonce") || names(error, "Expired");
        if stale && matches!(self.status(entry).await, Ok(Status::Unseen)) {
            return self
                .replace(
                    ledger,
                    entry,
                    "relayer transaction refused as stale (nonce or block hash); replaced",
                )
                .await;
        }
        tracing::warn!(network = %self.chain_id, tx_hash = %entry.tx_hash, error = %error, "node refused a recorded settlement transaction");
        Sent::Unknown(format!("node refused the send ({error})"))
    }

    async fn status(&self, entry: &Entry) -> Result<Status, String> {
        let account = entry.signer.split('/').next().unwrap_or_default();
        let answer = self
            .rpc
            .call(
                "tx",
                json!({"tx_hash": entry.tx_hash, "sender_account_id": account, "wait_until": "NONE"}),
            )
            .await
            .map_err(|e| e.to_string())?;
        let view = match answer {
            Ok(view) => view,
            Err(node) if node.cause.as_deref() == Some("UNKNOWN_TRANSACTION") => {
                return Ok(Status::Unseen)
            }
            Err(node) => return Err(format!("tx status failed at the node ({})", node.code)),
        };
        let level = view
            .get("final_execution_status")
            .and_then(Value::as_str)
            .unwrap_or("NONE");
        if !reached(&self.options.finality, level) {
            return Ok(Status::Held);
        }
        let asset = recorded_delegate(&entry.raw_tx)
            .map(|d| d.delegate_action.receiver_id.to_string())
            .unwrap_or_default();
        Ok(Status::Landed(transfer_outcome(&view, &asset)))
    }

    async fn failure(&self, entry: &Entry, detail: &str) -> Settlement {
        Settlement::failed(
            Reason::ExactNearTransactionFailed,
            format!("failed on chain, the token did not move: {detail}"),
            Some(entry.payer.clone()),
            entry.tx_hash.clone(),
        )
    }

    fn polling(&self) -> Polling {
        Polling {
            first: std::time::Duration::from_millis(50),
            longest: std::time::Duration::from_millis(500),
            limit: self.confirm_timeout,
        }
    }
}

#[cfg(test)]
mod tests;
