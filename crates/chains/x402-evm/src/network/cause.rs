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

/// How a recorded transfer's authorization is spent on chain.
pub(super) enum Spend {
    /// EIP-3009: the token's `authorizationState(from, nonce)`.
    Eip3009(B256),
    /// Permit2: the nonce's bit in Permit2's `nonceBitmap(owner, nonce >> 8)`.
    Permit2(U256),
}

/// The authorization a recorded transfer carries.
pub(super) struct TransferTerms {
    pub(super) asset: Address,
    pub(super) from: Address,
    pub(super) to: Address,
    pub(super) value: U256,
    pub(super) spend: Spend,
}

impl TransferTerms {
    /// The view call (contract, calldata) whose answer says whether the authorization is
    /// spent.
    pub(super) fn spent_query(&self) -> (Address, Bytes) {
        match self.spend {
            Spend::Eip3009(nonce) => {
                let call = authorizationStateCall {
                    authorizer: self.from,
                    nonce,
                };
                (self.asset, call.abi_encode().into())
            }
            Spend::Permit2(nonce) => (
                permit2::PERMIT2,
                permit2::nonce_word_query(self.from, nonce).0,
            ),
        }
    }

    /// Whether the answer of [`Self::spent_query`] says spent; `None` when it is no word.
    pub(super) fn spent_in(&self, answer: &[u8]) -> Option<bool> {
        let word = U256::abi_decode(answer).ok()?;
        Some(match self.spend {
            Spend::Eip3009(_) => !word.is_zero(),
            Spend::Permit2(nonce) => {
                let bit = permit2::nonce_word_query(self.from, nonce).1;
                !(word & bit).is_zero()
            }
        })
    }

    /// The payer's reasons, in the transfer method's codes, when the authorization was
    /// spent first, the balance fell, or the authorization expired before it could land.
    pub(super) fn payer_reasons(&self) -> (Reason, Reason, Reason) {
        match self.spend {
            Spend::Eip3009(_) => (
                Reason::ExactEvmNonceAlreadyUsed,
                Reason::ExactEvmInsufficientBalance,
                Reason::ExactEvmValidBefore,
            ),
            Spend::Permit2(_) => (
                Reason::Permit2InvalidNonce,
                Reason::Permit2InsufficientBalance,
                Reason::Permit2DeadlineExpired,
            ),
        }
    }
}

/// The authorization a recorded transfer carries, read back from its signed bytes: an
/// EIP-3009 transfer sent to the token, or a Permit2 settlement sent to the proxy.
pub(super) fn transfer_terms(raw_tx: &str) -> Option<TransferTerms> {
    let tx = decode_recorded(raw_tx)?;
    if let Some((asset, from, to, value, nonce)) = permit2::recorded_terms(tx.to, &tx.input) {
        return Some(TransferTerms {
            asset,
            from,
            to,
            value,
            spend: Spend::Permit2(nonce),
        });
    }
    if let Ok(call) = transferWithAuthorization_0Call::abi_decode(&tx.input) {
        return Some(TransferTerms {
            asset: tx.to,
            from: call.from,
            to: call.to,
            value: call.value,
            spend: Spend::Eip3009(call.nonce),
        });
    }
    let call = transferWithAuthorization_1Call::abi_decode(&tx.input).ok()?;
    Some(TransferTerms {
        asset: tx.to,
        from: call.from,
        to: call.to,
        value: call.value,
        spend: Spend::Eip3009(call.nonce),
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
        let balance_call = balanceOfCall {
            account: terms.from,
        }
        .abi_encode();
        let (spent_at, spent_call) = terms.spent_query();
        let calls = [
            (
                "eth_call",
                json!([{"to": terms.asset.to_string(), "data": hex(&balance_call)}, block]),
            ),
            (
                "eth_call",
                json!([{"to": spent_at.to_string(), "data": hex(&spent_call)}, block]),
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
            .and_then(|b| terms.spent_in(&b));
        let (spent_reason, balance_reason, _) = terms.payer_reasons();
        if used == Some(true) {
            return Some((
                spent_reason,
                "the authorization was used by another transaction before ours ran".into(),
            ));
        }
        match balance {
            Some(balance) if balance < terms.value => Some((
                balance_reason,
                format!(
                    "the payer's balance fell to {balance}, below {}, before our transaction ran",
                    terms.value
                ),
            )),
            _ => None,
        }
    }
}
