//! Transactions of one EVM network: reading receipts and nonces, planning gas, signing,
//! and broadcasting.

use super::*;

impl EvmChain {
    /// One receipt lookup: the receipt once mined (read it with [`receipt::outcome_of`]).
    pub(super) async fn receipt(&self, tx_hash: &str) -> Result<Option<Value>, RpcUnavailable> {
        let answer = self
            .rpc
            .call("eth_getTransactionReceipt", json!([tx_hash]))
            .await?;
        Ok(match answer {
            Ok(receipt @ Value::Object(_)) => Some(receipt),
            _ => None,
        })
    }

    /// Waits at most `limit` for a receipt, at the engine's polling pace.
    pub(super) async fn wait_receipt_within(
        &self,
        tx_hash: &str,
        limit: Duration,
    ) -> Result<Option<Value>, RpcUnavailable> {
        x402_settlement::poll(self.polling(), Some(limit), || self.receipt(tx_hash)).await
    }

    /// The signer's pending nonce as the node sees it.
    pub(super) async fn pending_nonce(&self, address: Address) -> Result<u64, RpcUnavailable> {
        let answer = self
            .rpc
            .call(
                "eth_getTransactionCount",
                json!([address.to_string(), "pending"]),
            )
            .await?;
        answer
            .ok()
            .as_ref()
            .and_then(parse_u256)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| RpcUnavailable("eth_getTransactionCount gave no number".into()))
    }

    /// Gas limit (estimate + 20 %, capped) and fee cap of a settlement transaction; the
    /// gas-affordability check and the signed transaction must agree on both.
    pub(super) fn gas_plan(&self, data: &SettleData) -> (u64, u128) {
        let max_fee = fee_cap(data.gas_price, data.priority_fee);
        (self.gas_limit(data.gas_estimate), max_fee)
    }

    /// Estimate + 20 %, capped at the settlement maximum.
    pub(super) fn gas_limit(&self, estimate: u64) -> u64 {
        (estimate.saturating_mul(12) / 10).min(self.max_gas)
    }

    /// Estimate + 20 %, capped at the deployment maximum.
    pub(super) fn deploy_gas_limit(&self, estimate: u64) -> u64 {
        (estimate.saturating_mul(12) / 10).min(self.max_deploy_gas)
    }

    /// Signs a call from `signer` at `nonce` with a fee plan `(max fee, priority fee)`.
    pub(super) fn sign_transaction(
        &self,
        signer: &FacilitatorSigner,
        fees: (u128, u128),
        call: (Address, &Bytes, u64),
        nonce: u64,
    ) -> Result<(B256, Bytes), String> {
        self.sign_value_transaction(signer, fees, call, U256::ZERO, nonce)
    }

    /// [`Self::sign_transaction`] sending `value` native units with the call.
    pub(super) fn sign_value_transaction(
        &self,
        signer: &FacilitatorSigner,
        fees: (u128, u128),
        call: (Address, &Bytes, u64),
        value: U256,
        nonce: u64,
    ) -> Result<(B256, Bytes), String> {
        let (to, input, gas_limit) = call;
        let (max_fee, priority_fee) = fees;
        let mut tx = TxEip1559 {
            chain_id: self.numeric_chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority_fee.min(max_fee),
            to: TxKind::Call(to),
            value,
            access_list: Default::default(),
            input: input.clone(),
        };
        let signature = signer
            .signer
            .sign_transaction_sync(&mut tx)
            .map_err(|e| e.to_string())?;
        let envelope: TxEnvelope = tx.into_signed(signature).into();
        let hash = *envelope.tx_hash();
        Ok((hash, envelope.encoded_2718().into()))
    }

    /// Sends signed bytes; "already known" counts as sent (same bytes, same hash).
    pub(super) async fn broadcast(
        &self,
        raw_hex: &str,
    ) -> Result<Result<(), NodeError>, RpcUnavailable> {
        let answer = self
            .rpc
            .call("eth_sendRawTransaction", json!([raw_hex]))
            .await?;
        Ok(match answer {
            Ok(_) => Ok(()),
            Err(e) if already_known(&e) => Ok(()),
            Err(e) => Err(e),
        })
    }

    pub(super) fn signer_named(&self, address: &str) -> Option<&FacilitatorSigner> {
        self.signer_at(Address::from_str(address).ok()?)
    }

    /// This network's signer with `address`, if it is one.
    pub(super) fn signer_at(&self, address: Address) -> Option<&FacilitatorSigner> {
        self.signers.iter().find(|s| s.signer.address() == address)
    }

    /// Counts and logs a nonce mismatch found when the chain's pending nonce was ahead.
    pub(super) fn report_mismatch(&self, signer: &str, mismatch: NonceMismatch) {
        self.count_mismatch(signer, mismatch, "nonce mismatch: the chain's pending nonce is ahead of the ledger's; continuing from the chain's");
    }

    /// Counts a nonce mismatch (`x402_nonce_mismatches_total`) and logs it with `what`.
    pub(super) fn count_mismatch(&self, signer: &str, mismatch: NonceMismatch, what: &str) {
        metrics::counter!(metric::NONCE_MISMATCHES, "network" => self.chain_id.to_string())
            .increment(1);
        tracing::warn!(
            network = %self.chain_id,
            signer = %signer,
            local_nonce = mismatch.ledger,
            chain_nonce = mismatch.chain,
            "{what}"
        );
    }
}

/// The fee cap of a transaction we sign: twice the gas price, or price plus tip when the
/// tip is larger (room for the base fee to rise while it waits).
pub(super) fn fee_cap(gas_price: u128, priority_fee: u128) -> u128 {
    gas_price
        .saturating_mul(2)
        .max(gas_price.saturating_add(priority_fee))
}
