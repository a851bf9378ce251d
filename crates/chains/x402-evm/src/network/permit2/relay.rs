//! Relaying a payer's signed ERC-20 approval (`erc20ApprovalGasSponsoring`). A public chain
//! has no atomic bundle for a stranger's transaction and ours, so the facilitator keeps
//! every step safe on its own instead: it never sends the settlement before the approval
//! has landed (so a payer who replaces their approval costs no settlement gas), funds at
//! most the configured ceiling and only what the approval's gas may cost beyond the
//! payer's balance, records the funding transfer in the ledger under the approval's hash
//! before sending it (so a retry, a concurrent request or another instance never funds the
//! same approval twice, and the reconciler finishes it after a crash), and sends the
//! payer's bytes unchanged.

use x402_ledger::{EntryState, NewEntry, Terms};
use x402_settlement::answers::settle_entry;

use super::*;

/// How a funding transfer's ledger key begins (apart from every payment's key).
const FUNDING_KEY_PREFIX: &str = "erc20-approval-funding/";
/// Gas of a plain native transfer to an account without code.
const TRANSFER_GAS: u64 = 21_000;

/// An approval to relay before settling, and what the payer must be sent first.
pub(crate) struct ApprovalRelay {
    pub(crate) approval: SignedApproval,
    pub(crate) payer: Address,
    /// Native units to send the payer first (zero when they can pay the approval's gas).
    pub(crate) funding: U256,
}

/// The calls a relayed approval adds to the check's batch: the payer's mined nonce and
/// balance, the head's base fee, and the approval and settlement simulated in one block.
pub(super) fn push_approval_reads(
    calls: &mut Vec<(&'static str, Value)>,
    local: &Permit2Local,
    approval: &SignedApproval,
    settle_from: Address,
) {
    let payer = local.permit.from.to_string();
    calls.push(("eth_getTransactionCount", json!([payer, "latest"])));
    calls.push(("eth_getBalance", json!([payer, "latest"])));
    calls.push(("eth_getBlockByNumber", json!(["latest", false])));
    let approve = json!({
        "from": payer,
        "to": local.permit.token.to_string(),
        "data": hex(&approval.calldata),
        "gas": format!("{:#x}", approval.gas_limit),
    });
    let settle = json!({
        "from": settle_from.to_string(),
        "to": local.scheme.proxy().to_string(),
        "data": hex(&local.calldata),
    });
    let blocks = json!({"blockStateCalls": [{"calls": [approve, settle]}], "validation": false});
    calls.push(("eth_simulateV1", json!([blocks, "latest"])));
}

impl EvmChain {
    /// The verdict of the approval reads: the approval can land as signed (its nonce is the
    /// payer's next, its fee cap at least the base fee, the funding it needs within the
    /// ceiling) and, landed, lets the settlement succeed.
    pub(super) fn judge_approval(
        &self,
        local: &Permit2Local,
        approval: &SignedApproval,
        results: &[CallResult],
    ) -> Result<ApprovalRelay, Verdict> {
        let refuse = |reason: Reason, message: String| refusal(&local.payer, reason, message);
        let node = |what: &str| {
            refusal(
                &local.payer,
                Reason::RpcUnavailable,
                format!("node did not answer {what} for the approval check"),
            )
        };
        let nonce = results
            .first()
            .and_then(result_u64)
            .ok_or_else(|| node("the payer's nonce"))?;
        let balance = results
            .get(1)
            .and_then(|r| r.as_ref().ok())
            .and_then(parse_u256)
            .ok_or_else(|| node("the payer's balance"))?;
        let base_fee = results
            .get(2)
            .and_then(|r| r.as_ref().ok())
            .and_then(|block| block.get("baseFeePerGas"))
            .and_then(parse_u256)
            .unwrap_or(U256::ZERO);
        if approval.nonce != nonce {
            let message = format!(
                "the approval's nonce {} is not the payer's next nonce {nonce}",
                approval.nonce
            );
            return Err(refuse(Reason::Erc20ApprovalTxFailed, message));
        }
        if U256::from(approval.max_fee_per_gas) < base_fee {
            let message = format!(
                "the approval's fee cap {} is below the base fee {base_fee}",
                approval.max_fee_per_gas
            );
            return Err(refuse(Reason::Erc20ApprovalTxFailed, message));
        }
        let funding = approval.max_cost.saturating_sub(balance);
        if funding > self.max_approval_funding {
            let message = format!(
                "the approval may cost {} and the payer holds {balance}; this facilitator funds at most {}",
                approval.max_cost, self.max_approval_funding
            );
            return Err(refuse(Reason::Erc20ApprovalTxFailed, message));
        }
        self.judge_simulation(local, results.get(3))?;
        Ok(ApprovalRelay {
            approval: approval.clone(),
            payer: local.permit.from,
            funding,
        })
    }

    /// `eth_simulateV1` of the approval then the settlement: both must succeed.
    fn judge_simulation(
        &self,
        local: &Permit2Local,
        result: Option<&CallResult>,
    ) -> Result<(), Verdict> {
        let refuse = |reason: Reason, message: String| refusal(&local.payer, reason, message);
        let calls = match result {
            Some(Ok(blocks)) => blocks
                .get(0)
                .and_then(|block| block.get("calls"))
                .and_then(Value::as_array)
                .filter(|calls| calls.len() == 2),
            Some(Err(error)) => {
                let message = node_trouble(
                    "eth_simulateV1 (the erc20ApprovalGasSponsoring check needs it)",
                    error,
                );
                return Err(refuse(Reason::RpcUnavailable, message));
            }
            None => None,
        };
        let Some(calls) = calls else {
            let message = "node did not simulate the approval and the settlement".to_owned();
            return Err(refuse(Reason::RpcUnavailable, message));
        };
        // A simulated call's `status` reads as a receipt's.
        if !receipt::succeeded(&calls[0]) {
            return Err(refuse(
                Reason::Erc20ApprovalTxFailed,
                "the approval reverts when simulated".into(),
            ));
        }
        if !receipt::succeeded(&calls[1]) {
            let data = calls[1]
                .get("returnData")
                .and_then(Value::as_str)
                .and_then(parse_hex_bytes)
                .unwrap_or_default();
            let (reason, message) = super::probe::revert_reason_of(&data);
            return Err(refuse(reason, format!("after the approval, {message}")));
        }
        Ok(())
    }

    /// Funds the payer when needed, sends their approval and waits for it to land; the
    /// settlement is checked again and recorded only after this returns `Ok`.
    pub(crate) async fn relay_approval(
        &self,
        ledger: &Ledger,
        signer: &FacilitatorSigner,
        relay: &ApprovalRelay,
    ) -> Result<(), Settlement> {
        let payer = relay.payer.to_checksum(None);
        let hash = relay.approval.hash.to_string();
        if !relay.funding.is_zero() {
            self.fund_payer(ledger, signer, relay).await?;
        }
        let failed = |reason: Reason, message: String| {
            Settlement::failed(reason, message, Some(payer.clone()), hash.clone())
        };
        match self.broadcast(&relay.approval.raw_hex).await {
            Ok(Ok(())) => {}
            // Sent before by this payment (its receipt tells) or replaced by the payer.
            Ok(Err(node)) if nonce_taken(&node) => {}
            Ok(Err(node)) => {
                let message = format!("the node refused the payer's approval: {}", node.message);
                return Err(failed(Reason::Erc20ApprovalBroadcastFailed, message));
            }
            Err(e) => return Err(rpc_answer(&self.chain_id, e, &payer, &hash)),
        }
        match self.wait_receipt_within(&hash, self.receipt_timeout).await {
            Ok(Some(receipt)) if receipt::succeeded(&receipt) => Ok(()),
            Ok(Some(_)) => Err(failed(
                Reason::Erc20ApprovalTxFailed,
                "the payer's approval reverted on chain; no settlement was sent".into(),
            )),
            Ok(None) => Err(failed(
                Reason::SettlementPending,
                "the payer's approval is sent but not mined yet; no settlement was sent; retry the same request".into(),
            )),
            Err(e) => Err(rpc_answer(&self.chain_id, e, &payer, &hash)),
        }
    }

    /// Sends the payer what their approval's gas may cost beyond their balance, recorded
    /// first in the ledger under the approval's hash (one funding per approval, ever).
    async fn fund_payer(
        &self,
        ledger: &Ledger,
        signer: &FacilitatorSigner,
        relay: &ApprovalRelay,
    ) -> Result<(), Settlement> {
        let payer = relay.payer.to_checksum(None);
        let key = format!(
            "{FUNDING_KEY_PREFIX}{:#x}/{:#x}",
            relay.payer, relay.approval.hash
        );
        let entry = NewEntry {
            network: self.chain_id.to_string(),
            digest: hex(alloy::primitives::keccak256(key.as_bytes()).as_slice()),
            payment_key: key,
            x402_version: 2,
            payer: payer.clone(),
            signer: signer.signer.address().to_checksum(None),
            valid_before: i64::MAX,
            terms: Terms {
                scheme: erc20_approval::EXTENSION_KEY.into(),
                asset: "native".into(),
                pay_to: payer.clone(),
                amount: relay.funding.to_string(),
                resource: String::new(),
            },
        };
        let gate = self.funding_gate.lock().await;
        self.within_funding_budget(ledger, &entry).await?;
        let address = signer.signer.address();
        let reads = self.funding_reads(address, &payer).await?;
        let sign = |nonce: u64| -> Result<SignedTransaction, String> {
            let call = (relay.payer, &Bytes::new(), TRANSFER_GAS);
            let (hash, raw) =
                self.sign_value_transaction(signer, reads.1, call, relay.funding, nonce)?;
            Ok(SignedTransaction {
                hash: hash.to_string(),
                raw: hex(&raw),
                prelude: None,
            })
        };
        let recorded = match ledger.record_signed(&entry, Some(reads.0), 1, sign).await {
            Ok((Claim::Recorded(entry), _)) | Ok((Claim::Existing(entry), _)) => entry,
            Err(error) => return Err(record::record_failure(&entry.network, error, payer)),
        };
        drop(gate);
        if recorded.state == EntryState::Confirmed {
            return Ok(());
        }
        tracing::info!(network = %self.chain_id, payer = %payer, funding_wei = %relay.funding, tx_hash = %recorded.tx_hash, "funding a payer's gas for their ERC-20 approval");
        match self.send(ledger, &recorded).await {
            Sent::Refused(answer) | Sent::Failed(answer) => return Err(answer),
            // Accepted, or a refusal that may mean it landed before: the receipt tells.
            _ => {}
        }
        match self
            .wait_receipt_within(&recorded.tx_hash, self.receipt_timeout)
            .await
        {
            Ok(Some(receipt)) if receipt::succeeded(&receipt) => {
                let done = Settlement::settled(payer, recorded.tx_hash.clone());
                let failed_reason = Reason::UnexpectedSettleError;
                settle_entry(
                    ledger,
                    &recorded,
                    EntryState::Confirmed,
                    done,
                    failed_reason,
                )
                .await;
                Ok(())
            }
            Ok(_) => Err(pending_answer(
                &recorded,
                "the payer's gas funding is not mined yet; no settlement was sent",
            )),
            Err(e) => Err(rpc_answer(&self.chain_id, e, &payer, &recorded.tx_hash)),
        }
    }

    /// Refuses a new funding past `erc20_approval_max_fundings_per_hour` on this network (the
    /// ledger's count, shared by the instances on one database); a funding already recorded
    /// for this approval goes on. A payer refused here can send their approval with gas of
    /// their own: nothing was sent for them.
    async fn within_funding_budget(
        &self,
        ledger: &Ledger,
        entry: &NewEntry,
    ) -> Result<(), Settlement> {
        let payer = entry.payer.clone();
        let unavailable = |error: x402_ledger::LedgerError| {
            record::record_failure(&entry.network, error.into(), payer.clone())
        };
        if ledger
            .entry(&entry.network, &entry.payment_key)
            .await
            .map_err(unavailable)?
            .is_some()
        {
            return Ok(());
        }
        let now_millis = i64::try_from(now_secs())
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let hour_ago = now_millis.saturating_sub(3_600_000);
        let scheme = erc20_approval::EXTENSION_KEY;
        let funded = ledger
            .count_scheme_since(&entry.network, scheme, hour_ago)
            .await
            .map_err(unavailable)?;
        if funded < self.max_fundings_per_hour {
            return Ok(());
        }
        let message = format!(
            "this facilitator has funded {funded} approvals on this network in the last hour, its limit; send the approval with gas of your own (nothing was sent)"
        );
        Err(Settlement::failed(
            Reason::Erc20ApprovalTxFailed,
            message,
            Some(payer),
            String::new(),
        ))
    }

    /// The signer's pending nonce and the fee plan of a funding transfer, in one batch.
    async fn funding_reads(
        &self,
        signer: Address,
        payer: &str,
    ) -> Result<(u64, (u128, u128)), Settlement> {
        let calls: Vec<(&'static str, Value)> = vec![
            (
                "eth_getTransactionCount",
                json!([signer.to_string(), "pending"]),
            ),
            ("eth_gasPrice", json!([])),
            ("eth_maxPriorityFeePerGas", json!([])),
        ];
        let results = self
            .check_batch(&calls, payer)
            .await
            .map_err(Settlement::from_verdict)?;
        let (Some(nonce), Some(gas_price)) = (result_u64(&results[0]), result_u128(&results[1]))
        else {
            let message = "node gave no nonce or fee for the gas funding; nothing was sent";
            return Err(Settlement::failed(
                Reason::RpcUnavailable,
                message,
                Some(payer.to_owned()),
                "",
            ));
        };
        let priority = result_u128(&results[2]).unwrap_or(0);
        Ok((nonce, (fee_cap(gas_price, priority), priority)))
    }
}

/// The answer when the node stopped answering after something was sent: ours, with the hash.
fn rpc_answer(network: &ChainId, error: RpcUnavailable, payer: &str, hash: &str) -> Settlement {
    let mut answer = Settlement::from_verdict(rpc_refusal(network, error, Some(payer.to_owned())));
    answer.transaction = hash.to_owned();
    answer
}
