//! Whose fault a failure is. A revert that the chain shows the payer caused (their balance
//! fell, or their authorization was used by another transaction, before ours ran) is the
//! payer's, answered with their reason and not counted against the facilitator; a node
//! error that is not an execution revert is the facilitator's trouble, never the payer's.

use super::*;

/// Whether a node's error answer to `eth_estimateGas` / `eth_call` says the call itself
/// fails (a revert, an invalid opcode, running out of gas), as opposed to the node failing
/// to answer (rate limit, internal error, missing state).
pub(super) fn is_execution_error(error: &NodeError) -> bool {
    let message = error.message.to_ascii_lowercase();
    // 3: geth's execution reverted; -32015: the VM execution error of other clients.
    error.code == 3
        || error.code == -32015
        || [
            "revert",
            "invalid opcode",
            "out of gas",
            "gas required exceeds",
        ]
        .iter()
        .any(|m| message.contains(m))
}

/// The refusal for a node error that is not the payment's fault.
pub(super) fn node_trouble(what: &str, error: &NodeError) -> String {
    format!(
        "the node could not answer {what} (error {}); retry later",
        error.code
    )
}

/// The authorization a recorded transfer carries.
pub(super) struct TransferTerms {
    pub(super) asset: Address,
    pub(super) from: Address,
    pub(super) to: Address,
    pub(super) value: U256,
    pub(super) nonce: B256,
}

/// The authorization a recorded transfer carries, read back from its signed bytes.
pub(super) fn transfer_terms(raw_tx: &str) -> Option<TransferTerms> {
    let tx = decode_recorded(raw_tx)?;
    if let Ok(call) = transferWithAuthorization_0Call::abi_decode(&tx.input) {
        return Some(TransferTerms {
            asset: tx.to,
            from: call.from,
            to: call.to,
            value: call.value,
            nonce: call.nonce,
        });
    }
    let call = transferWithAuthorization_1Call::abi_decode(&tx.input).ok()?;
    Some(TransferTerms {
        asset: tx.to,
        from: call.from,
        to: call.to,
        value: call.value,
        nonce: call.nonce,
    })
}

impl EvmChain {
    /// The payer's reason for the revert of `entry`'s transfer when the state after its
    /// block shows the payer's doing; `None` when it does not (or cannot be read: then the
    /// failure stays the facilitator's).
    pub(super) async fn payer_caused_revert(&self, entry: &Entry) -> Option<(Reason, String)> {
        let terms = transfer_terms(&entry.raw_tx)?;
        let receipt = self
            .rpc
            .call("eth_getTransactionReceipt", json!([entry.tx_hash]))
            .await
            .ok()?
            .ok()?;
        let block = receipt.get("blockNumber")?.as_str()?.to_owned();
        let asset = terms.asset.to_string();
        let balance_call = balanceOfCall {
            account: terms.from,
        }
        .abi_encode();
        let state_call = authorizationStateCall {
            authorizer: terms.from,
            nonce: terms.nonce,
        }
        .abi_encode();
        let calls = [
            (
                "eth_call",
                json!([{"to": asset, "data": hex(&balance_call)}, block]),
            ),
            (
                "eth_call",
                json!([{"to": asset, "data": hex(&state_call)}, block]),
            ),
        ];
        let results = self.rpc.batch(&calls).await.ok()?;
        let balance = results
            .first()
            .and_then(result_bytes)
            .and_then(|b| U256::abi_decode(&b).ok());
        let used = results
            .get(1)
            .and_then(result_bytes)
            .and_then(|b| bool::abi_decode(&b).ok());
        if used == Some(true) {
            return Some((
                Reason::ExactEvmNonceAlreadyUsed,
                "the authorization was used by another transaction before ours ran".into(),
            ));
        }
        match balance {
            Some(balance) if balance < terms.value => Some((
                Reason::ExactEvmInsufficientBalance,
                format!(
                    "the payer's balance fell to {balance}, below {}, before our transaction ran",
                    terms.value
                ),
            )),
            _ => None,
        }
    }
}
