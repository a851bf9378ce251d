//! Transactions: the checks `sendTransaction` makes before queueing one (stellar-core's
//! validity rules for what this node applies) and their application when a ledger closes.

use sha2::{Digest, Sha256};
use soroban_env_host::xdr::{
    Hash, InvokeHostFunctionResult, InvokeHostFunctionSuccessPreImage, Limits, OperationResult,
    OperationResultTr, Preconditions, ScVal, Transaction, TransactionEnvelope, TransactionExt,
    TransactionResult, TransactionResultExt, TransactionResultResult, WriteXdr,
};

use crate::host;
use crate::ledger::{account_id, muxed_key, now, Applied, Ledger, Queued, Status};

/// The base fee per operation, in stroops (the network's minimum inclusion fee).
pub const BASE_FEE: i64 = 100;

/// What `sendTransaction` answers.
pub enum Verdict {
    /// Queued for the next ledger.
    Pending([u8; 32]),
    /// Already queued or applied.
    Duplicate([u8; 32]),
    /// The source already has a transaction in the queue (stellar-core takes one per
    /// account at a time).
    TryAgainLater([u8; 32]),
    /// Refused, with stellar-core's result code.
    Error([u8; 32], TransactionResultResult),
}

fn time_bounds(tx: &Transaction) -> Option<(u64, u64)> {
    match &tx.cond {
        Preconditions::None => None,
        Preconditions::Time(tb) => Some((tb.min_time.0, tb.max_time.0)),
        Preconditions::V2(v2) => v2
            .time_bounds
            .as_ref()
            .map(|tb| (tb.min_time.0, tb.max_time.0)),
    }
}

/// The time-bound refusal of `tx` at `time`, if any.
fn out_of_time(tx: &Transaction, time: u64) -> Option<TransactionResultResult> {
    let (min, max) = time_bounds(tx)?;
    if min > time {
        return Some(TransactionResultResult::TxTooEarly);
    }
    if max != 0 && max < time {
        return Some(TransactionResultResult::TxTooLate);
    }
    None
}

/// Judges `envelope` as stellar-core's transaction queue would.
pub fn send(ledger: &mut Ledger, envelope: TransactionEnvelope) -> Result<Verdict, String> {
    let TransactionEnvelope::Tx(v1) = &envelope else {
        return Err("only v1 transaction envelopes are applied by this node".into());
    };
    let tx = &v1.tx;
    let hash = ledger.tx_hash(tx)?;
    if ledger.applied.contains_key(&hash) || ledger.queue.iter().any(|q| q.hash == hash) {
        return Ok(Verdict::Duplicate(hash));
    }
    let refuse = |code| Ok(Verdict::Error(hash, code));
    if Ledger::invoke_op(tx).is_none() {
        return refuse(TransactionResultResult::TxMalformed);
    }
    let TransactionExt::V1(data) = &tx.ext else {
        return refuse(TransactionResultResult::TxSorobanInvalid);
    };
    if data.resource_fee < 0 || i64::from(tx.fee) < BASE_FEE.saturating_add(data.resource_fee) {
        return refuse(TransactionResultResult::TxInsufficientFee);
    }
    if let Some(code) = out_of_time(tx, now()) {
        return refuse(code);
    }
    let key = muxed_key(&tx.source_account);
    let source = account_id(key);
    let Some(account) = ledger.account(&source) else {
        return refuse(TransactionResultResult::TxNoAccount);
    };
    if ledger.queue.iter().any(|q| queued_source(q) == Some(key)) {
        return Ok(Verdict::TryAgainLater(hash));
    }
    if tx.seq_num.0 != account.seq_num.0.saturating_add(1) {
        return refuse(TransactionResultResult::TxBadSeq);
    }
    let (signed, all_used) = Ledger::signed_by(&hash, &v1.signatures, &key);
    if !signed {
        return refuse(TransactionResultResult::TxBadAuth);
    }
    if !all_used {
        return refuse(TransactionResultResult::TxBadAuthExtra);
    }
    if account.balance < i64::from(tx.fee) {
        return refuse(TransactionResultResult::TxInsufficientBalance);
    }
    ledger.queue.push(Queued { hash, envelope });
    Ok(Verdict::Pending(hash))
}

fn queued_source(queued: &Queued) -> Option<[u8; 32]> {
    match &queued.envelope {
        TransactionEnvelope::Tx(v1) => Some(muxed_key(&v1.tx.source_account)),
        _ => None,
    }
}

/// Closes the next ledger: applies every queued transaction still valid, in order.
pub fn close(ledger: &mut Ledger) {
    ledger.sequence = ledger.sequence.saturating_add(1);
    ledger.close_time = now().max(ledger.close_time);
    let queue = std::mem::take(&mut ledger.queue);
    let mut order = 0u32;
    for queued in queue {
        if let Some(applied) = apply_one(ledger, &queued, order.saturating_add(1)) {
            order = order.saturating_add(1);
            ledger.applied.insert(queued.hash, applied);
        }
    }
}

/// Applies one queued transaction; `None` when it is no longer valid (dropped from the
/// queue without a trace, as stellar-core drops it).
fn apply_one(ledger: &mut Ledger, queued: &Queued, order: u32) -> Option<Applied> {
    let TransactionEnvelope::Tx(v1) = &queued.envelope else {
        return None;
    };
    let tx = &v1.tx;
    let source = account_id(muxed_key(&tx.source_account));
    let mut account = ledger.account(&source)?;
    if out_of_time(tx, ledger.close_time).is_some()
        || tx.seq_num.0 != account.seq_num.0.saturating_add(1)
    {
        return None;
    }
    let (op, TransactionExt::V1(data)) = (Ledger::invoke_op(tx)?, &tx.ext) else {
        return None;
    };
    let fee = i64::from(tx.fee).min(BASE_FEE.saturating_add(data.resource_fee));
    account.balance = account.balance.checked_sub(fee)?;
    account.seq_num = tx.seq_num.clone();
    ledger.store_account(account);
    let op_source = op_source(tx).unwrap_or(source);
    let info = host::ledger_info(ledger.sequence, ledger.close_time, ledger.network_id);
    let seed = ledger.next_seed();
    let outcome = host::apply(&mut ledger.entries, &info, op, &op_source, data, seed);
    let (status, return_value, events, error) = match outcome {
        Ok(applied) => (Status::Success, applied.return_value, applied.events, None),
        Err(e) => (Status::Failed, ScVal::Void, Vec::new(), Some(e)),
    };
    Some(Applied {
        status,
        ledger: ledger.sequence,
        created_at: ledger.close_time,
        application_order: order,
        envelope: queued.envelope.clone(),
        fee_charged: fee,
        return_value,
        events,
        error,
    })
}

fn op_source(tx: &Transaction) -> Option<soroban_env_host::xdr::AccountId> {
    tx.operations
        .first()
        .and_then(|op| op.source_account.as_ref())
        .map(|m| account_id(muxed_key(m)))
}

/// The `TransactionResult` of an applied transaction.
pub fn result_of(applied: &Applied) -> TransactionResult {
    let op = match applied.status {
        Status::Success => {
            let preimage = InvokeHostFunctionSuccessPreImage {
                return_value: applied.return_value.clone(),
                events: applied.events.clone().try_into().unwrap_or_default(),
            };
            let bytes = preimage.to_xdr(Limits::none()).unwrap_or_default();
            InvokeHostFunctionResult::Success(Hash(Sha256::digest(bytes).into()))
        }
        Status::Failed => InvokeHostFunctionResult::Trapped,
    };
    let ops = vec![OperationResult::OpInner(
        OperationResultTr::InvokeHostFunction(op),
    )]
    .try_into()
    .unwrap_or_default();
    TransactionResult {
        fee_charged: applied.fee_charged,
        result: match applied.status {
            Status::Success => TransactionResultResult::TxSuccess(ops),
            Status::Failed => TransactionResultResult::TxFailed(ops),
        },
        ext: TransactionResultExt::V0,
    }
}

/// The `TransactionResult` of a refusal.
pub fn refusal(code: TransactionResultResult) -> TransactionResult {
    TransactionResult {
        fee_charged: 0,
        result: code,
        ext: TransactionResultExt::V0,
    }
}
