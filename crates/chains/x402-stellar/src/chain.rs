//! What the settlement engine needs from a Stellar chain: sending a recorded transaction
//! (waiting while the account's one queue slot is taken), reading its outcome, and
//! replacing one that can never land (its sequence number went to another transaction,
//! or its time bound passed) after simulating it again.
//!
//! A replacement never pays twice: every transaction of one payment carries the same
//! authorization entry, whose nonce the Soroban host spends once.

use serde_json::{json, Value};
use stellar_xdr::{
    LedgerEntryData, LedgerKey, LedgerKeyAccount, Limits, OperationBody, ReadXdr,
    SorobanTransactionData, TransactionEnvelope, TransactionResult, TransactionResultResult,
    TransactionV1Envelope, WriteXdr,
};
use x402_ledger::{Entry, Ledger};
use x402_protocol::{ChainId, Reason, Settlement};
use x402_settlement::{ChainOps, Polling, Sent, Status};

use crate::check::simulation;
use crate::{now, sign, transaction, Signer, StellarChain};

/// What `sendTransaction` answered.
enum Submitted {
    /// Queued (`PENDING`), or known already (`DUPLICATE`).
    Accepted,
    /// The source account has a transaction in the queue already.
    TryAgainLater,
    /// Refused with stellar-core's result code.
    Error(TransactionResultResult),
}

/// What to do after a refusal of `sendTransaction`.
enum Next {
    /// An earlier transaction of the account is still queued: wait and send again.
    Wait,
    /// The entry's transaction was replaced: send the replacement.
    Replaced(Box<Entry>),
    /// Nothing more to send now.
    Done(Sent),
}

/// The recorded envelope of an entry.
fn recorded(raw: &str) -> Option<TransactionV1Envelope> {
    match TransactionEnvelope::from_xdr_base64(raw, Limits::len(1 << 20)).ok()? {
        TransactionEnvelope::Tx(v1) => Some(v1),
        _ => None,
    }
}

/// Seconds a settlement transaction stays valid: long enough for a few ledgers, short
/// enough that one the network dropped is replaced soon.
pub(crate) fn validity_seconds(max_timeout_seconds: u64) -> u64 {
    max_timeout_seconds.clamp(30, 300)
}

impl StellarChain {
    /// `account`'s sequence number on chain.
    pub(crate) async fn account_sequence(&self, account: &str) -> Result<i64, String> {
        Ok(self.account_entry(account).await?.seq_num.0)
    }

    /// `account`'s native balance in stroops.
    pub(crate) async fn account_balance(&self, account: &str) -> Result<i64, String> {
        Ok(self.account_entry(account).await?.balance)
    }

    async fn account_entry(&self, account: &str) -> Result<stellar_xdr::AccountEntry, String> {
        let id: stellar_xdr::AccountId = account
            .parse()
            .map_err(|_| format!("{account} is not an account id"))?;
        let key = LedgerKey::Account(LedgerKeyAccount { account_id: id })
            .to_xdr_base64(Limits::none())
            .map_err(|e| e.to_string())?;
        let answer = self
            .rpc
            .call("getLedgerEntries", json!({"keys": [key]}))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("getLedgerEntries failed at the node ({})", e.code))?;
        let entry = answer
            .pointer("/entries/0/xdr")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the account {account} is not on chain"))?;
        match LedgerEntryData::from_xdr_base64(entry, Limits::len(1 << 16)) {
            Ok(LedgerEntryData::Account(entry)) => Ok(entry),
            _ => Err("the node's account entry is unreadable".into()),
        }
    }

    async fn submit(&self, raw: &str) -> Result<Submitted, String> {
        let answer = self
            .rpc
            .call("sendTransaction", json!({"transaction": raw}))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("sendTransaction failed at the node ({})", e.code))?;
        match answer.get("status").and_then(Value::as_str) {
            Some("PENDING" | "DUPLICATE") => Ok(Submitted::Accepted),
            Some("TRY_AGAIN_LATER") => Ok(Submitted::TryAgainLater),
            Some("ERROR") => answer
                .get("errorResultXdr")
                .and_then(Value::as_str)
                .and_then(|r| TransactionResult::from_xdr_base64(r, Limits::len(1 << 16)).ok())
                .map(|r| Submitted::Error(r.result))
                .ok_or_else(|| "sendTransaction gave no readable error result".into()),
            other => Err(format!("sendTransaction answered status {other:?}")),
        }
    }

    /// A fresh transaction, recorded, for an open entry whose transaction can never land;
    /// `Err` with the answer when the payment itself can no longer happen (its simulation
    /// fails now) or nothing is known.
    async fn replace(&self, ledger: &Ledger, entry: &Entry, why: &str) -> Result<Entry, Sent> {
        let (Some(old), Some(signer)) = (recorded(&entry.raw_tx), self.signer_named(&entry.signer))
        else {
            return Err(Sent::Unknown(
                "the recorded transaction cannot be read back".into(),
            ));
        };
        let Some(op) = old.tx.operations.first().and_then(|o| match &o.body {
            OperationBody::InvokeHostFunction(op) => Some(op.clone()),
            _ => None,
        }) else {
            return Err(Sent::Unknown(
                "the recorded transaction holds no invocation".into(),
            ));
        };
        let (simulated, sequence) =
            tokio::join!(self.simulate(&op), self.account_sequence(&signer.address));
        let answer = match simulated {
            Ok(Ok(answer)) => answer,
            Ok(Err(node)) => {
                return Err(Sent::Unknown(format!(
                    "simulateTransaction failed at the node ({})",
                    node.code
                )))
            }
            Err(e) => return Err(Sent::Unknown(e.to_string())),
        };
        let data = match simulation(&answer) {
            Some(Ok(data)) => data,
            Some(Err(error)) => {
                return Err(Sent::Failed(Settlement::failed(
                    Reason::ExactStellarSimulationFailed,
                    format!("the settlement transaction could not land and the payment no longer simulates ({error}); nothing moved"),
                    Some(entry.payer.clone()),
                    entry.tx_hash.clone(),
                )))
            }
            None => {
                return Err(Sent::Unknown(
                    "the simulation gave no readable resources".into(),
                ))
            }
        };
        let sequence = match sequence {
            Ok(sequence) => sequence.saturating_add(1),
            Err(e) => return Err(Sent::Unknown(e)),
        };
        let Some(fee) = self.settlement_fee(&data) else {
            return Err(Sent::Failed(Settlement::failed(
                Reason::ExactStellarFeeExceedsMaximum,
                format!(
                    "the settlement transaction could not land, and sending it again would cost {} stroops of resource fee, above max_fee_stroops; nothing moved",
                    data.resource_fee
                ),
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            )));
        };
        let max_time = now().saturating_add(validity_seconds(0));
        let tx = transaction(signer, &op, sequence, fee, max_time, Some(data));
        // The ledger's nonce counter is not the account's sequence (read from the chain
        // just now, so replacements never leave a gap): only its bookkeeping is used.
        let sign = |_nonce| sign(signer, tx, self.passphrase);
        match ledger.replace_transaction(entry, Some(0), 1, sign).await {
            Ok(Some((replaced, _))) => {
                x402_settlement::note_replacement(
                    &self.chain_id.to_string(),
                    entry,
                    &replaced,
                    why,
                );
                Ok(replaced)
            }
            Ok(None) => Err(Sent::Moved),
            Err(e) => Err(Sent::Unknown(format!(
                "the replacement was not recorded ({e})"
            ))),
        }
    }

    /// Whether the entry's sequence number went to another transaction (`true`), or lies
    /// ahead of the account's next one (`false`: an earlier transaction is still queued).
    async fn sequence_used(&self, entry: &Entry) -> Result<bool, String> {
        let ours = recorded(&entry.raw_tx)
            .map(|v1| v1.tx.seq_num.0)
            .ok_or("the recorded transaction cannot be read back")?;
        let account = self.account_sequence(&entry.signer).await?;
        Ok(ours <= account)
    }

    fn insufficient_balance(&self, entry: &Entry) -> Sent {
        Sent::Refused(Settlement::failed(
            Reason::FacilitatorInsufficientGas,
            "the fee-paying account cannot pay the fee; the settlement is kept and sent again once funded",
            Some(entry.payer.clone()),
            entry.tx_hash.clone(),
        ))
    }

    /// What one refusal of `sendTransaction` means for the entry.
    async fn refused(
        &self,
        ledger: &Ledger,
        entry: &Entry,
        code: &TransactionResultResult,
    ) -> Next {
        match code {
            TransactionResultResult::TxBadSeq => match self.sequence_used(entry).await {
                Ok(false) => Next::Wait,
                Ok(true) => {
                    self.lost(
                        ledger,
                        entry,
                        "sequence number used by another transaction; replaced",
                    )
                    .await
                }
                Err(e) => Next::Done(Sent::Unknown(e)),
            },
            TransactionResultResult::TxTooLate => {
                self.lost(
                    ledger,
                    entry,
                    "time bound passed before the transaction was included; replaced",
                )
                .await
            }
            TransactionResultResult::TxInsufficientBalance => {
                Next::Done(self.insufficient_balance(entry))
            }
            other => {
                tracing::warn!(network = %self.chain_id, tx_hash = %entry.tx_hash, code = ?other, "node refused a recorded settlement transaction");
                Next::Done(Sent::Unknown(format!(
                    "node refused the send ({})",
                    other.name()
                )))
            }
        }
    }

    /// A transaction that can no longer land as signed: its outcome if one of the entry's
    /// transactions landed after all, otherwise a replacement.
    async fn lost(&self, ledger: &Ledger, entry: &Entry, why: &str) -> Next {
        match self.status(entry).await {
            Ok(Status::Landed(outcome)) => Next::Done(Sent::Landed(outcome)),
            Ok(_) => match self.replace(ledger, entry, why).await {
                Ok(replaced) => Next::Replaced(Box::new(replaced)),
                Err(sent) => Next::Done(sent),
            },
            Err(e) => Next::Done(Sent::Unknown(e)),
        }
    }

    /// One transaction's outcome: `None` while the node has not applied it.
    async fn outcome(&self, hash: &str) -> Result<Option<Result<(), String>>, String> {
        let answer = self
            .rpc
            .call("getTransaction", json!({"hash": hash}))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("getTransaction failed at the node ({})", e.code))?;
        match answer.get("status").and_then(Value::as_str) {
            Some("SUCCESS") => Ok(Some(Ok(()))),
            Some("FAILED") => {
                let code = answer
                    .get("resultXdr")
                    .and_then(Value::as_str)
                    .and_then(|r| TransactionResult::from_xdr_base64(r, Limits::len(1 << 16)).ok())
                    .map_or_else(
                        || "unreadable result".to_owned(),
                        |r| r.result.name().to_owned(),
                    );
                Ok(Some(Err(format!("the transaction failed ({code})"))))
            }
            Some("NOT_FOUND") => Ok(None),
            other => Err(format!("getTransaction answered status {other:?}")),
        }
    }
}

#[async_trait::async_trait]
impl ChainOps for StellarChain {
    fn network(&self) -> &ChainId {
        &self.chain_id
    }

    fn failed_reason(&self) -> Reason {
        Reason::ExactStellarTransactionFailed
    }

    async fn send(&self, ledger: &Ledger, entry: &Entry) -> Sent {
        let deadline = tokio::time::Instant::now() + self.confirm_timeout;
        let mut pause = std::time::Duration::from_millis(200);
        // The entry as it is now: a replacement is sent in the same loop, and the engine
        // is told about it whatever happens next (it follows the entry as recorded).
        let mut replaced: Option<Entry> = None;
        let follow = |replaced: Option<Entry>, otherwise: Sent| match replaced {
            Some(now) => Sent::Replaced(Box::new(now)),
            None => otherwise,
        };
        loop {
            let current = replaced.as_ref().unwrap_or(entry);
            match self.submit(&current.raw_tx).await {
                Err(e) => {
                    return follow(
                        replaced,
                        Sent::Unknown(format!("send outcome unknown ({e})")),
                    )
                }
                Ok(Submitted::Accepted) => return follow(replaced, Sent::Accepted),
                Ok(Submitted::TryAgainLater) => {}
                Ok(Submitted::Error(code)) => match self.refused(ledger, current, &code).await {
                    Next::Wait => {}
                    Next::Replaced(now) => {
                        replaced = Some(*now);
                        continue;
                    }
                    Next::Done(sent) => return follow(replaced, sent),
                },
            }
            // One transaction per account waits in the network's queue: the next ledger
            // frees the slot.
            if tokio::time::Instant::now() + pause > deadline {
                let waiting = Sent::Unknown(
                    "the fee-paying account's queue slot stayed taken; kept and sent again later"
                        .into(),
                );
                return follow(replaced, waiting);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
        }
    }

    async fn status(&self, entry: &Entry) -> Result<Status, String> {
        // Any of the entry's transactions (the current one among them) may have landed.
        let mut current = None;
        for hash in entry.tx_hashes.iter().rev() {
            match self.outcome(hash).await? {
                Some(Ok(())) => return Ok(Status::Landed(Ok(()))),
                Some(Err(failed)) if *hash == entry.tx_hash => current = Some(failed),
                _ => {}
            }
        }
        Ok(current.map_or(Status::Unseen, |failed| Status::Landed(Err(failed))))
    }

    async fn failure(&self, entry: &Entry, detail: &str) -> Settlement {
        Settlement::failed(
            Reason::ExactStellarTransactionFailed,
            format!("failed on chain, the token did not move: {detail}"),
            Some(entry.payer.clone()),
            entry.tx_hash.clone(),
        )
    }

    fn polling(&self) -> Polling {
        Polling {
            first: std::time::Duration::from_millis(200),
            longest: std::time::Duration::from_secs(1),
            limit: self.confirm_timeout,
        }
    }
}

/// Signs `op` from `signer` at `sequence`: the recorded form of a new settlement.
pub(crate) fn settlement(
    chain: &StellarChain,
    signer: &Signer,
    op: &stellar_xdr::InvokeHostFunctionOp,
    sequence: i64,
    fee: u32,
    data: SorobanTransactionData,
    max_timeout_seconds: u64,
) -> Result<x402_ledger::SignedTransaction, String> {
    let max_time = now().saturating_add(validity_seconds(max_timeout_seconds));
    let tx = transaction(signer, op, sequence, fee, max_time, Some(data));
    sign(signer, tx, chain.passphrase)
}
