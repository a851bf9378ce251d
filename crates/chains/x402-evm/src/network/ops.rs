//! What the settlement engine needs from an EVM chain, whatever the scheme: broadcasting
//! recorded bytes (an ERC-6492 deployment first), receipts, the pending pool, who caused a
//! revert, and the nonce upkeep of a start-up recovery.

use super::*;

impl EvmChain {
    /// The answer to a node refusing a recorded transaction: it stays in the ledger and
    /// is sent again; no gas to send it is the facilitator's trouble, said as such.
    pub(super) fn refused_broadcast(&self, entry: &Entry, node: &NodeError) -> Sent {
        tracing::warn!(network = %self.chain_id, tx_hash = %entry.tx_hash, error = %node.message, "node refused a recorded settlement transaction; it stays in the ledger and is sent again");
        if node
            .message
            .to_ascii_lowercase()
            .contains("insufficient funds")
        {
            return Sent::Refused(Settlement::failed(
                Reason::FacilitatorInsufficientGas,
                "the facilitator cannot pay gas on this network right now; the signed transaction is kept and sent again; retry the same request",
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            ));
        }
        Sent::Unknown(format!("node refused the broadcast ({})", node.message))
    }

    /// At start: a ledger nonce ahead of the chain with nothing open for that signer can
    /// never be filled (a reset chain, a ledger of another chain's history); lower it.
    async fn lower_idle_nonces(&self, ledger: &Ledger) {
        for signer in &self.signers {
            let address = signer.signer.address();
            let Ok(pending) = self.pending_nonce(address).await else {
                continue;
            };
            let name = address.to_checksum(None);
            match ledger
                .lower_idle_nonce(&self.chain_id.to_string(), &name, pending)
                .await
            {
                Ok(Some(mismatch)) => self.count_mismatch(
                    &name,
                    mismatch,
                    "nonce mismatch: the ledger was ahead of the chain with nothing in flight; lowered to the chain's pending nonce",
                ),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(network = %self.chain_id, error = %e, "cannot check the ledger's nonces")
                }
            }
        }
    }
}

#[async_trait]
impl ChainOps for EvmChain {
    fn network(&self) -> &ChainId {
        &self.chain_id
    }

    fn failed_reason(&self) -> Reason {
        Reason::ExactEvmTransactionFailed
    }

    async fn send(&self, ledger: &Ledger, entry: &Entry) -> Sent {
        if let Some(prelude) = &entry.prelude_tx {
            match self.broadcast(prelude).await {
                Ok(Ok(())) => {}
                // Mined before (a re-send), or lost to another transaction at its nonce.
                Ok(Err(node)) if nonce_taken(&node) => {
                    if let Some(sent) = self.deploy_again_if_lost(ledger, entry).await {
                        return sent;
                    }
                }
                Ok(Err(node)) => return self.refused_broadcast(entry, &node),
                Err(e) => return Sent::Unknown(format!("broadcast outcome unknown ({e})")),
            }
        }
        match self.broadcast(&entry.raw_tx).await {
            Ok(Ok(())) => Sent::Accepted,
            Ok(Err(node)) if nonce_taken(&node) => self.nonce_taken(ledger, entry, &node).await,
            Ok(Err(node)) => self.refused_broadcast(entry, &node),
            Err(e) => Sent::Unknown(format!("broadcast outcome unknown ({e})")),
        }
    }

    async fn status(&self, entry: &Entry) -> Result<Status, String> {
        Ok(
            match self
                .receipt(&entry.tx_hash)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(receipt) => Status::Landed(receipt::outcome_of(&receipt, entry)),
                None => Status::Unseen,
            },
        )
    }

    async fn held(&self, entry: &Entry) -> bool {
        matches!(
            self.rpc
                .call("eth_getTransactionByHash", json!([entry.tx_hash]))
                .await,
            Ok(Ok(Value::Object(_)))
        )
    }

    /// The payer's doing (funds or authorization moved first) is answered as theirs.
    async fn failure(&self, entry: &Entry, detail: &str) -> Settlement {
        if detail == receipt::TRANSFER_EVENT_MISMATCH {
            let message = "the settlement transaction did not revert but its receipt holds no Transfer of the authorized amount from the payer to the payee by the asset";
            let (reason, payer) = (
                Reason::ExactEvmTransferEventMismatch,
                Some(entry.payer.clone()),
            );
            return Settlement::failed(reason, message.to_owned(), payer, entry.tx_hash.clone());
        }
        let upto = entry.terms.as_ref().is_some_and(|t| t.scheme == "upto");
        let (reason, message) = match self.payer_caused_revert(entry).await {
            Some(cause) => cause,
            None => (
                match upto {
                    true => Reason::UptoTransactionFailed,
                    false => Reason::ExactEvmTransactionFailed,
                },
                "settlement transaction reverted on chain".to_owned(),
            ),
        };
        Settlement::failed(
            reason,
            message,
            Some(entry.payer.clone()),
            entry.tx_hash.clone(),
        )
    }

    /// Milliseconds on a dev chain, a quarter second at most on a real one.
    fn polling(&self) -> Polling {
        Polling {
            first: Duration::from_millis(2),
            longest: Duration::from_millis(250),
            limit: self.receipt_timeout,
        }
    }

    async fn before_recovery(&self, ledger: &Ledger) {
        self.lower_idle_nonces(ledger).await;
    }
}
