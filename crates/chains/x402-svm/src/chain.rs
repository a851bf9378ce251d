//! What the settlement engine needs from an SVM chain: sending a recorded transaction and
//! reading its status at the configured commitment.

use serde_json::{json, Value};
use x402_ledger::{Entry, Ledger};
use x402_protocol::{ChainId, Reason, Settlement};
use x402_settlement::{ChainOps, Polling, Sent, Status};

use crate::SvmChain;

/// Where a settlement transaction stands at the node, judged at our commitment level.
#[derive(Debug, PartialEq)]
enum Landing {
    /// The node has no status for it: it never landed (so far).
    Unseen,
    /// Seen, but below our commitment: it may still land, fail, or be dropped with a
    /// fork, so nothing is concluded yet.
    Below,
    /// At our commitment: `Ok` transferred, `Err` failed on chain with that error.
    Final(Result<(), String>),
}

impl Landing {
    /// Classifies one entry of a `getSignatureStatuses` answer (`None` or JSON null when
    /// the node knows nothing of the signature). `commitment` is `processed`,
    /// `confirmed` or `finalized`; an error counts only once it reached that level too.
    fn of(status: Option<&Value>, commitment: &str) -> Landing {
        let Some(status) = status.filter(|s| !s.is_null()) else {
            return Landing::Unseen;
        };
        let level = status
            .get("confirmationStatus")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let reached = match commitment {
            "finalized" => level == "finalized",
            "processed" => true,
            _ => level == "confirmed" || level == "finalized",
        };
        if !reached {
            return Landing::Below;
        }
        match status.get("err").filter(|e| !e.is_null()) {
            Some(error) => Landing::Final(Err(error.to_string())),
            None => Landing::Final(Ok(())),
        }
    }
}

impl Landing {
    /// The engine's view: below the commitment the node holds it.
    fn status(self) -> Status {
        match self {
            Landing::Unseen => Status::Unseen,
            Landing::Below => Status::Held,
            Landing::Final(outcome) => Status::Landed(outcome),
        }
    }
}

impl SvmChain {
    /// Where `signature` stands at the node (see [`Landing`]).
    async fn landing(&self, signature: &str) -> Result<Landing, String> {
        let answer = self
            .rpc
            .call(
                "getSignatureStatuses",
                json!([[signature], {"searchTransactionHistory": true}]),
            )
            .await
            .map_err(|e| e.to_string())?;
        let Ok(result) = answer else {
            return Ok(Landing::Unseen);
        };
        let status = result.get("value").and_then(|v| v.get(0));
        Ok(Landing::of(status, &self.commitment))
    }
}

#[async_trait::async_trait]
impl ChainOps for SvmChain {
    fn network(&self) -> &ChainId {
        &self.chain_id
    }

    fn failed_reason(&self) -> Reason {
        Reason::ExactSvmTransactionFailed
    }

    async fn send(&self, _ledger: &Ledger, entry: &Entry) -> Sent {
        let sent = self
            .rpc
            .call(
                "sendTransaction",
                json!([entry.raw_tx, {"encoding": "base64", "skipPreflight": true, "maxRetries": 0}]),
            )
            .await;
        let node = match sent {
            Err(e) => return Sent::Unknown(format!("send outcome unknown ({e})")),
            Ok(Ok(_)) => return Sent::Accepted,
            Ok(Err(node)) => node,
        };
        let text = node.message.to_ascii_lowercase();
        if text.contains("already been processed") {
            // Landed earlier: its status decides.
            return Sent::Accepted;
        }
        if text.contains("blockhash not found") {
            // The blockhash expired: a transaction the node has never seen never lands
            // now. One the node holds below our commitment is still waited for.
            if let Ok(Landing::Unseen) = self.landing(&entry.tx_hash).await {
                return Sent::Failed(Settlement::failed(
                    Reason::ExactSvmTransactionFailed,
                    "the transaction's blockhash expired before it landed",
                    Some(entry.payer.clone()),
                    entry.tx_hash.clone(),
                ));
            }
            return Sent::Accepted;
        }
        tracing::warn!(network = %self.chain_id, signature = %entry.tx_hash, error = %node.message, "node refused a recorded settlement transaction");
        Sent::Unknown(format!("node refused the send ({})", node.message))
    }

    async fn status(&self, entry: &Entry) -> Result<Status, String> {
        Ok(self.landing(&entry.tx_hash).await?.status())
    }

    async fn failure(&self, entry: &Entry, detail: &str) -> Settlement {
        Settlement::failed(
            Reason::ExactSvmTransactionFailed,
            format!("transaction failed on chain: {detail}"),
            Some(entry.payer.clone()),
            entry.tx_hash.clone(),
        )
    }

    fn polling(&self) -> Polling {
        Polling {
            first: std::time::Duration::from_millis(20),
            longest: std::time::Duration::from_millis(400),
            limit: self.confirm_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Landing;
    use serde_json::json;

    #[test]
    fn a_signature_the_node_does_not_know_is_unseen() {
        assert_eq!(Landing::of(None, "confirmed"), Landing::Unseen);
        assert_eq!(
            Landing::of(Some(&json!(null)), "confirmed"),
            Landing::Unseen
        );
    }

    #[test]
    fn nothing_is_concluded_below_the_commitment_not_even_an_error() {
        let processed_ok = json!({"confirmationStatus": "processed", "err": null});
        let processed_err = json!({"confirmationStatus": "processed", "err": {"InstructionError": [2, {"Custom": 1}]}});
        let confirmed_ok = json!({"confirmationStatus": "confirmed", "err": null});
        assert_eq!(
            Landing::of(Some(&processed_ok), "confirmed"),
            Landing::Below
        );
        assert_eq!(
            Landing::of(Some(&processed_err), "confirmed"),
            Landing::Below
        );
        assert_eq!(
            Landing::of(Some(&confirmed_ok), "finalized"),
            Landing::Below
        );
        assert_eq!(
            Landing::of(Some(&json!({"err": null})), "confirmed"),
            Landing::Below,
            "no level given is no level reached"
        );
    }

    #[test]
    fn at_the_commitment_the_outcome_is_final() {
        let confirmed_ok = json!({"confirmationStatus": "confirmed", "err": null});
        let finalized_err = json!({"confirmationStatus": "finalized", "err": {"InstructionError": [2, {"Custom": 1}]}});
        assert_eq!(
            Landing::of(Some(&confirmed_ok), "confirmed"),
            Landing::Final(Ok(()))
        );
        assert_eq!(
            Landing::of(
                Some(&json!({"confirmationStatus": "processed", "err": null})),
                "processed"
            ),
            Landing::Final(Ok(()))
        );
        match Landing::of(Some(&finalized_err), "confirmed") {
            Landing::Final(Err(error)) => assert!(error.contains("InstructionError"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
