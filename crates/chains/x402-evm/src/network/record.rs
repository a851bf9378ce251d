//! Checking, signing and recording an EVM settlement (any scheme, any transfer method) at a
//! ledger-allocated nonce.

use super::*;

/// Gas limits and fee cap of one settlement, agreed by the affordability check and the
/// signed transactions.
struct GasPlan {
    gas_limit: u64,
    deploy_limit: u64,
    fees: (u128, u128),
}

impl EvmChain {
    /// Refuses a settlement the caps forbid or the signer cannot pay for.
    fn plan_gas(
        &self,
        data: &SettleData,
        payer: &str,
        signer: Address,
    ) -> Result<GasPlan, Settlement> {
        let deploy_estimate = data.deployment.as_ref().map_or(0, |d| d.gas_estimate);
        if data.gas_estimate > self.max_gas || deploy_estimate > self.max_deploy_gas {
            return Err(Settlement::failed(
                Reason::ExactEvmSimulationFailed,
                format!(
                    "settlement needs {} gas (cap {}) and wallet deployment {deploy_estimate} (cap {})",
                    data.gas_estimate, self.max_gas, self.max_deploy_gas
                ),
                Some(payer.to_owned()),
                "",
            ));
        }
        let (gas_limit, max_fee) = self.gas_plan(data);
        let deploy_limit = data
            .deployment
            .as_ref()
            .map_or(0, |d| self.deploy_gas_limit(d.gas_estimate));
        let cost = U256::from(gas_limit.saturating_add(deploy_limit)) * U256::from(max_fee);
        if data.signer_balance < cost {
            tracing::error!(network = %self.chain_id, signer = %signer, "facilitator signer cannot pay gas");
            return Err(Settlement::failed(
                Reason::FacilitatorInsufficientGas,
                "the facilitator cannot pay gas on this network right now; retry later",
                Some(payer.to_owned()),
                "",
            ));
        }
        Ok(GasPlan {
            gas_limit,
            deploy_limit,
            fees: (max_fee, data.priority_fee),
        })
    }

    /// Checks with `signer` as the sender, then allocates a nonce, signs and records in one
    /// ledger step; the signer counts the settlement as in flight meanwhile.
    pub(crate) async fn check_and_record_as(
        &self,
        ledger: &Ledger,
        request: (&Payment, EvmPayload),
        draft: &Draft,
        signer: &FacilitatorSigner,
    ) -> Result<Claim, NotRecorded> {
        signer.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.record_as(ledger, request, draft, signer).await;
        signer.in_flight.fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// The check before recording; a Permit2 payment that pays only after its relayed
    /// ERC-20 approval gets the approval sent and landed first, then is checked again.
    async fn check_for_settle(
        &self,
        ledger: &Ledger,
        (payment, parsed): (&Payment, EvmPayload),
        signer: &FacilitatorSigner,
        read_nonce: bool,
    ) -> Result<Checked, NotRecorded> {
        let address = Some(signer.signer.address());
        // Checked again once the approval has landed, without the extension: its reads
        // (nonce, funding, the simulation with the approval) have nothing left to judge.
        let again = match &parsed {
            EvmPayload::Permit2(permit, scheme) if permit.erc20_approval.is_some() => {
                let mut permit = permit.clone();
                permit.erc20_approval = None;
                Some(EvmPayload::Permit2(permit, *scheme))
            }
            _ => None,
        };
        let mut checked = self
            .check_parsed(payment, parsed, address, read_nonce)
            .await
            .map_err(NotRecorded::Refused)?;
        let (Some(relay), Some(again)) = (checked.approval.take(), again) else {
            return Ok(checked);
        };
        self.relay_approval(ledger, signer, &relay)
            .await
            .map_err(NotRecorded::Answer)?;
        self.check_parsed(payment, again, address, read_nonce)
            .await
            .map_err(|verdict| match verdict.reason {
                Some(Reason::Permit2AllowanceRequired) => NotRecorded::Answer(Settlement::failed(
                    Reason::Erc20ApprovalTxFailed,
                    "the payer's approval landed but Permit2's allowance is still short; no settlement was sent",
                    Some(relay.payer.to_checksum(None)),
                    relay.approval.hash.to_string(),
                )),
                _ => NotRecorded::Refused(verdict),
            })
    }

    async fn record_as(
        &self,
        ledger: &Ledger,
        (payment, parsed): (&Payment, EvmPayload),
        draft: &Draft,
        signer: &FacilitatorSigner,
    ) -> Result<Claim, NotRecorded> {
        let address = signer.signer.address();
        let read_nonce = self.nonce_mode == NonceFetchMode::AlwaysFresh
            || !signer.seeded.load(Ordering::Acquire);
        let checked = self
            .check_for_settle(ledger, (payment, parsed), signer, read_nonce)
            .await?;
        let payer = checked.payer.to_checksum(None);
        let Some(data) = checked.settle_data.as_ref() else {
            return Err(NotRecorded::Answer(Settlement::failed(
                Reason::UnexpectedSettleError,
                "no settle data",
                Some(payer),
                "",
            )));
        };
        let plan = self
            .plan_gas(data, &payer, address)
            .map_err(NotRecorded::Answer)?;
        let valid_before = i64::try_from(checked.valid_before).unwrap_or(i64::MAX);
        let amount = checked.value.to_string();
        let entry = draft.entry(
            payer.clone(),
            address.to_checksum(None),
            valid_before,
            amount,
        );
        // An ERC-6492 wallet is deployed by the transaction just before the transfer.
        let count = if data.deployment.is_some() { 2 } else { 1 };
        let sign = |nonce: u64| -> Result<SignedTransaction, String> {
            let mut next = nonce;
            let prelude = match &data.deployment {
                Some(d) => {
                    let call = (d.factory, &d.calldata, plan.deploy_limit);
                    let (_, raw) = self.sign_transaction(signer, plan.fees, call, next)?;
                    next += 1;
                    Some(hex(&raw))
                }
                None => None,
            };
            let call = (checked.target, &checked.calldata, plan.gas_limit);
            let (hash, raw) = self.sign_transaction(signer, plan.fees, call, next)?;
            Ok(SignedTransaction {
                hash: hash.to_string(),
                raw: hex(&raw),
                prelude,
            })
        };
        let mut floor = data.chain_nonce;
        let (claim, mismatch) = loop {
            match ledger.record_signed(&entry, floor, count, &sign).await {
                Ok(recorded) => break recorded,
                Err(RecordError::NeedsChainNonce) if floor.is_none() => {
                    // The ledger lost this signer (or never had it): ask the chain once.
                    let nonce = self.pending_nonce(address).await.map_err(|e| {
                        NotRecorded::Answer(Settlement::from_verdict(rpc_refusal(
                            &self.chain_id,
                            e,
                            Some(payer.clone()),
                        )))
                    })?;
                    floor = Some(nonce);
                }
                Err(other) => {
                    return Err(NotRecorded::Answer(record_failure(
                        &draft.network,
                        other,
                        payer,
                    )))
                }
            }
        };
        signer.seeded.store(true, Ordering::Release);
        if let Some(mismatch) = mismatch {
            self.report_mismatch(&entry.signer, mismatch);
        }
        Ok(claim)
    }
}

/// The answer when a settlement (or a payer's gas funding) could not be recorded: a ledger
/// that cannot be written is ours to say so; anything else is unexpected.
pub(super) fn record_failure(network: &str, error: RecordError, payer: String) -> Settlement {
    match error {
        RecordError::Ledger(e) => ledger_refusal(network, e, Some(payer)),
        other => Settlement::failed(
            Reason::UnexpectedSettleError,
            other.to_string(),
            Some(payer),
            "",
        ),
    }
}
