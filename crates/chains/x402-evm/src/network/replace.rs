//! Transactions that can never land: when the chain proves that a recorded transaction's
//! nonce went to another transaction, and only while the authorization is unused and
//! alive, a new transaction is recorded (the ledger keeps every hash tried) and sent.

use super::cause::{transfer_terms, TransferTerms};
use super::*;

impl EvmChain {
    /// An ERC-6492 deployment whose nonce went to another transaction while the transfer's
    /// nonce is still free: sent as it is, the transfer would revert against an empty
    /// wallet. The deployment is signed again at the transfer's nonce (so no gap is left)
    /// and the transfer at a fresh nonce after it. `None`: the deployment landed (or the
    /// transfer's nonce is taken too, which its own broadcast handles); go on as recorded.
    pub(super) async fn deploy_again_if_lost(
        &self,
        ledger: &Ledger,
        entry: &Entry,
    ) -> Option<Sent> {
        let deploy = decode_recorded(entry.prelude_tx.as_deref()?)?;
        let transfer = decode_recorded(&entry.raw_tx)?;
        let wallet = transfer_terms(&entry.raw_tx)?.from.to_string();
        let signer = self.signer_named(&entry.signer)?;
        let address = signer.signer.address().to_string();
        let calls: Vec<(&'static str, Value)> = vec![
            (
                "eth_getTransactionReceipt",
                json!([deploy.hash.to_string()]),
            ),
            ("eth_getCode", json!([wallet, "latest"])),
            ("eth_getTransactionCount", json!([address, "latest"])),
            ("eth_getTransactionCount", json!([address, "pending"])),
            ("eth_gasPrice", json!([])),
            ("eth_maxPriorityFeePerGas", json!([])),
        ];
        let results = match self.rpc.batch(&calls).await {
            Ok(results) if results.len() == calls.len() => results,
            Ok(_) => return Some(Sent::Unknown("node answered a batch partially".into())),
            Err(e) => return Some(Sent::Unknown(format!("node unavailable ({e})"))),
        };
        let deployed = matches!(&results[1], Ok(Value::String(code)) if !code.trim_start_matches("0x").is_empty());
        if matches!(&results[0], Ok(Value::Object(_))) || deployed {
            return None;
        }
        let (Some(latest), Some(pending), Some(gas_price)) = (
            result_u64(&results[2]),
            result_u64(&results[3]),
            result_u128(&results[4]),
        ) else {
            return Some(Sent::Unknown("node gave no account nonce or fee".into()));
        };
        if latest > transfer.nonce
            || entry.valid_before <= now_secs() as i64 + VALID_BEFORE_MARGIN as i64
        {
            // The transfer's nonce is taken too (its own broadcast finds out and builds the
            // replacement), or the authorization is about to expire (the recorded transfer
            // fills its nonce and fails; a new deployment would be wasted).
            return None;
        }
        // A node may count a nonce as used before it serves the receipt: give our own
        // deployment a moment to show up before calling it lost.
        if let Ok(Some(_)) = self
            .wait_receipt_within(&deploy.hash.to_string(), OWN_RECEIPT_WAIT)
            .await
        {
            return None;
        }
        let fees = replacement_fees(gas_price, result_u128(&results[5]).unwrap_or(0));
        let sign = |nonce: u64| -> Result<SignedTransaction, String> {
            if nonce <= transfer.nonce {
                return Err(format!(
                    "fresh nonce {nonce} is not after the transfer's {}",
                    transfer.nonce
                ));
            }
            let (_, prelude) =
                self.sign_transaction(signer, fees, deploy.call(), transfer.nonce)?;
            let (hash, raw) = self.sign_transaction(signer, fees, transfer.call(), nonce)?;
            Ok(SignedTransaction {
                hash: hash.to_string(),
                raw: hex(&raw),
                prelude: Some(hex(&prelude)),
            })
        };
        let replaced = ledger
            .replace_transaction(entry, Some(pending), 1, sign)
            .await;
        Some(
            self.send_replacement(entry, replaced, "wallet deployment lost to another transaction at its nonce; deployed again at the transfer's nonce and the transfer sent after it")
                .await,
        )
    }

    /// One batch: the receipt, the signer's mined and pending nonces, the authorization's
    /// state, fees and (with a deployment) the wallet's code.
    async fn nonce_state(
        &self,
        entry: &Entry,
        signer: &FacilitatorSigner,
        terms: &TransferTerms,
    ) -> Result<Vec<CallResult>, String> {
        let address = signer.signer.address().to_string();
        let (spent_at, state_call) = terms.spent_query();
        let mut calls: Vec<(&'static str, Value)> = vec![
            ("eth_getTransactionReceipt", json!([entry.tx_hash])),
            ("eth_getTransactionCount", json!([address, "latest"])),
            ("eth_getTransactionCount", json!([address, "pending"])),
            (
                "eth_call",
                json!([{"to": spent_at.to_string(), "data": hex(&state_call)}, "latest"]),
            ),
            ("eth_gasPrice", json!([])),
            ("eth_maxPriorityFeePerGas", json!([])),
        ];
        if entry.prelude_tx.is_some() {
            // Did the ERC-6492 wallet deployment land? If its nonce went to another
            // transaction too, the replacement must deploy the wallet again first.
            calls.push(("eth_getCode", json!([terms.from.to_string(), "latest"])));
        }
        match self.rpc.batch(&calls).await {
            Ok(results) if results.len() == calls.len() => Ok(results),
            Ok(_) => Err("node answered a batch partially".into()),
            Err(e) => Err(format!("node unavailable ({e})")),
        }
    }

    /// The node says the transaction's account nonce is taken. Only when the chain proves
    /// that our transaction can never land (its nonce mined by another transaction) and
    /// the authorization is still unused and alive is a new transaction built; the ledger
    /// keeps every hash tried.
    pub(super) async fn nonce_taken(
        &self,
        ledger: &Ledger,
        entry: &Entry,
        node: &NodeError,
    ) -> Sent {
        let Some(signer) = self.signer_named(&entry.signer) else {
            return Sent::Unknown("the entry's signer is not configured here".into());
        };
        let Some(terms) = transfer_terms(&entry.raw_tx) else {
            return Sent::Unknown("recorded transaction cannot be decoded".into());
        };
        let results = match self.nonce_state(entry, signer, &terms).await {
            Ok(results) => results,
            Err(why) => return Sent::Unknown(why),
        };
        if let Ok(receipt @ Value::Object(_)) = &results[0] {
            return Sent::Landed(receipt::outcome_of(receipt, entry));
        }
        let (Some(latest), Some(pending)) = (result_u64(&results[1]), result_u64(&results[2]))
        else {
            return Sent::Unknown("node gave no account nonce".into());
        };
        let Some(call) = decode_recorded(&entry.raw_tx) else {
            return Sent::Unknown("recorded transaction cannot be decoded".into());
        };
        let transfer_nonce = call.nonce;
        if latest <= transfer_nonce {
            // Another transaction holds the nonce in the pool only: not proof it wins.
            return Sent::Unknown(format!("node refused the broadcast ({})", node.message));
        }
        let used = result_bytes(&results[3]).and_then(|b| terms.spent_in(&b));
        // The node may count our own transaction's nonce before it serves its receipt or
        // shows its effect on the authorization. A spent authorization was most likely
        // spent by this very transaction: wait for its receipt as long as settle waits;
        // otherwise give it a moment before calling it lost (a replacement of a
        // transaction that landed would only revert).
        let wait = match used {
            Some(true) => self.receipt_timeout,
            _ => OWN_RECEIPT_WAIT,
        };
        if let Ok(Some(receipt)) = self.wait_receipt_within(&entry.tx_hash, wait).await {
            return Sent::Landed(receipt::outcome_of(&receipt, entry));
        }
        self.report_mismatch(
            &entry.signer,
            NonceMismatch {
                ledger: transfer_nonce,
                chain: latest,
            },
        );
        let (spent_reason, _, expired_reason) = terms.payer_reasons();
        if used == Some(true) {
            return Sent::Failed(Settlement::failed(
                spent_reason,
                "the authorization was used by a transaction this facilitator did not send",
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            ));
        }
        if entry.valid_before <= now_secs() as i64 + VALID_BEFORE_MARGIN as i64 {
            let settlement = Settlement::failed(
                expired_reason,
                "the authorization expired before its transaction could land",
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            );
            return Sent::Failed(settlement);
        }
        let (Some(gas_price), Some(false)) = (result_u128(&results[4]), used) else {
            return Sent::Unknown("node gave no fee or authorization state".into());
        };
        let fees = replacement_fees(gas_price, result_u128(&results[5]).unwrap_or(0));
        let wallet_code = results.get(6).and_then(|r| r.as_ref().ok());
        self.replace(ledger, entry, (signer, fees, pending), &call, wallet_code)
            .await
    }

    /// Records and sends a replacement for `entry`'s transfer (`call`) at a fresh nonce
    /// above `pending`, deploying the ERC-6492 wallet again first when its code is still
    /// missing.
    async fn replace(
        &self,
        ledger: &Ledger,
        entry: &Entry,
        (signer, fees, pending): (&FacilitatorSigner, (u128, u128), u64),
        call: &RecordedTx,
        wallet_code: Option<&Value>,
    ) -> Sent {
        let redeploy = match entry.prelude_tx.as_deref() {
            None => None,
            Some(prelude) => {
                let Some(Value::String(code)) = wallet_code else {
                    return Sent::Unknown("node gave no wallet code".into());
                };
                if code.trim_start_matches("0x").is_empty() {
                    let Some(deploy) = decode_recorded(prelude) else {
                        return Sent::Unknown("recorded deployment cannot be decoded".into());
                    };
                    Some(deploy)
                } else {
                    None
                }
            }
        };
        let count = if redeploy.is_some() { 2 } else { 1 };
        let sign = |nonce: u64| -> Result<SignedTransaction, String> {
            let mut next = nonce;
            let prelude = match &redeploy {
                Some(deploy) => {
                    let (_, raw) = self.sign_transaction(signer, fees, deploy.call(), next)?;
                    next += 1;
                    Some(hex(&raw))
                }
                None => None,
            };
            let (hash, raw) = self.sign_transaction(signer, fees, call.call(), next)?;
            Ok(SignedTransaction {
                hash: hash.to_string(),
                raw: hex(&raw),
                prelude,
            })
        };
        let replaced = ledger
            .replace_transaction(entry, Some(pending), count, sign)
            .await;
        self.send_replacement(entry, replaced, "settlement transaction could never land (nonce taken by another transaction); sent a replacement").await
    }

    /// Sends what [`Ledger::replace_transaction`] stored (deployment first, if any); when
    /// another request or instance moved the entry on first, its state is the answer.
    async fn send_replacement(
        &self,
        entry: &Entry,
        replaced: Result<Option<(Entry, Option<NonceMismatch>)>, RecordError>,
        why: &'static str,
    ) -> Sent {
        let replaced = match replaced {
            Ok(Some((replaced, _))) => replaced,
            Ok(None) => return Sent::Moved,
            Err(e) => return Sent::Unknown(format!("ledger unavailable ({e})")),
        };
        x402_settlement::note_replacement(&self.chain_id.to_string(), entry, &replaced, why);
        let bytes: Vec<String> = replaced
            .prelude_tx
            .iter()
            .chain([&replaced.raw_tx])
            .cloned()
            .collect();
        let mut refused = None;
        for raw in &bytes {
            match self.broadcast(raw).await {
                Ok(Ok(())) => {}
                Ok(Err(node)) => refused = Some(self.refused_broadcast(&replaced, &node)),
                Err(e) => refused = Some(Sent::Unknown(format!("broadcast outcome unknown ({e})"))),
            }
            if refused.is_some() {
                break;
            }
        }
        let Some(refused) = refused else {
            return Sent::Replaced(Box::new(replaced));
        };
        // The answer names the replacement, the transaction now recorded.
        match refused {
            Sent::Unknown(why) => Sent::Refused(pending_answer(&replaced, why)),
            other => other,
        }
    }
}
