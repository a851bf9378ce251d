//! The stand-in's chain: blocks, accounts with access keys, and NEP-141 token ledgers, and
//! the rules a transaction and a delegate action pass, written after nearcore's runtime
//! (`verify_and_charge_transaction`, `apply_delegate_action`), which is not published.
//! Types, hashing and signature checks are nearcore's own crates.

use std::collections::{BTreeMap, HashMap};

use near_crypto::PublicKey;
use near_primitives::action::delegate::SignedDelegateAction;
use near_primitives::action::Action;
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::AccountId;
use serde_json::{json, Value};

use crate::token::Token;

/// nearcore's bound on a nonce: below the height of the transaction's block times this.
const NONCE_PER_HEIGHT: u64 = 1_000_000;
/// How many blocks a transaction's `block_hash` stays valid (nearcore's genesis default).
const VALIDITY_BLOCKS: u64 = 86_400;
/// Yocto per unit of gas: a fixed price (the real price follows demand).
pub const GAS_PRICE: u128 = 100_000_000;
/// Gas a transaction burns before its actions run (a flat stand-in for the fee table).
const SEND_GAS: u64 = 2_500_000_000_000;

/// An access key's permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// Any action.
    FullAccess,
    /// Function calls without deposit to one receiver (and named methods, when listed).
    FunctionCall {
        receiver_id: AccountId,
        method_names: Vec<String>,
    },
}

/// One access key.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub nonce: u64,
    pub permission: Permission,
}

/// One account.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub amount: u128,
    pub keys: BTreeMap<PublicKey, AccessKey>,
}

/// A transaction the node accepted, and what became of it.
#[derive(Debug, Clone)]
pub struct TxRecord {
    pub signed: SignedTransaction,
    /// Height of the block that executed it (`None`: still in the pool).
    pub executed_at: Option<u64>,
    /// The execution outcome (nearcore's `FinalExecutionOutcomeView` shape).
    pub outcome: Option<Value>,
}

/// Why a transaction was refused at the door (nearcore's `InvalidTxError` names).
#[derive(Debug, Clone)]
pub struct InvalidTx(pub Value);

/// The whole chain state of the stand-in.
pub struct Chain {
    pub chain_id: String,
    pub height: u64,
    pub blocks: Vec<CryptoHash>,
    pub accounts: BTreeMap<AccountId, Account>,
    pub tokens: BTreeMap<AccountId, Token>,
    pub pool: Vec<CryptoHash>,
    pub txs: HashMap<CryptoHash, TxRecord>,
}

fn invalid(value: Value) -> InvalidTx {
    InvalidTx(value)
}

impl Chain {
    /// A chain at height 1 with the given accounts and tokens.
    pub fn new(
        chain_id: String,
        accounts: BTreeMap<AccountId, Account>,
        tokens: BTreeMap<AccountId, Token>,
    ) -> Chain {
        let genesis = hash(chain_id.as_bytes());
        Chain {
            chain_id,
            height: 1,
            blocks: vec![genesis],
            accounts,
            tokens,
            pool: Vec::new(),
            txs: HashMap::new(),
        }
    }

    /// The hash of block `height` (1-based).
    pub fn block_hash(&self, height: u64) -> Option<CryptoHash> {
        let index = usize::try_from(height.checked_sub(1)?).ok()?;
        self.blocks.get(index).copied()
    }

    /// The height of the block with `block_hash`.
    fn height_of(&self, block_hash: &CryptoHash) -> Option<u64> {
        self.blocks
            .iter()
            .rposition(|h| h == block_hash)
            .map(|i| i as u64 + 1)
    }

    /// The final head: two blocks behind the head, as doomslug finality is.
    pub fn final_height(&self) -> u64 {
        self.height.saturating_sub(2).max(1)
    }

    /// Produces one block: every pooled transaction executes in it.
    pub fn produce_block(&mut self) {
        let previous = self.blocks.last().copied().unwrap_or_default();
        self.height += 1;
        let mut seed = previous.as_bytes().to_vec();
        seed.extend_from_slice(&self.height.to_le_bytes());
        self.blocks.push(hash(&seed));
        for tx_hash in std::mem::take(&mut self.pool) {
            self.execute(tx_hash);
        }
    }

    /// The checks nearcore makes before a transaction enters the pool, and the charge for
    /// its gas and deposits. An identical transaction already known is answered as known.
    pub fn submit(&mut self, signed: SignedTransaction) -> Result<CryptoHash, InvalidTx> {
        let tx_hash = signed.get_hash();
        if self.txs.contains_key(&tx_hash) {
            return Ok(tx_hash);
        }
        let tx = &signed.transaction;
        if !signed.signature.verify(tx_hash.as_ref(), tx.public_key()) {
            return Err(invalid(json!("InvalidSignature")));
        }
        let Some(block_height) = self.height_of(tx.block_hash()) else {
            return Err(invalid(json!("Expired")));
        };
        if self.height.saturating_sub(block_height) > VALIDITY_BLOCKS {
            return Err(invalid(json!("Expired")));
        }
        let nonce = match tx.nonce() {
            near_primitives::transaction::TransactionNonce::Nonce { nonce } => nonce,
            _ => return Err(invalid(json!({"InvalidNonceIndex": {}}))),
        };
        let cost = transaction_cost(tx.actions()).ok_or_else(|| invalid(json!("CostOverflow")))?;
        let signer_id = tx.signer_id().clone();
        let Some(account) = self.accounts.get_mut(&signer_id) else {
            return Err(invalid(
                json!({"SignerDoesNotExist": {"signer_id": signer_id}}),
            ));
        };
        let Some(key) = account.keys.get_mut(tx.public_key()) else {
            return Err(invalid(
                json!({"InvalidAccessKeyError": {"AccessKeyNotFound": {
                "account_id": signer_id, "public_key": tx.public_key().to_string()}}}),
            ));
        };
        if nonce <= key.nonce {
            return Err(invalid(
                json!({"InvalidNonce": {"tx_nonce": nonce, "ak_nonce": key.nonce}}),
            ));
        }
        if nonce >= block_height.saturating_mul(NONCE_PER_HEIGHT) {
            return Err(invalid(json!({"NonceTooLarge": {"tx_nonce": nonce,
                "upper_bound": block_height.saturating_mul(NONCE_PER_HEIGHT)}})));
        }
        if key.permission != Permission::FullAccess && !function_call_only(tx.actions()) {
            return Err(invalid(
                json!({"InvalidAccessKeyError": "RequiresFullAccess"}),
            ));
        }
        if account.amount < cost {
            return Err(invalid(json!({"NotEnoughBalance": {"signer_id": signer_id,
                "balance": account.amount.to_string(), "cost": cost.to_string()}})));
        }
        key.nonce = nonce;
        account.amount -= cost;
        self.pool.push(tx_hash);
        self.txs.insert(
            tx_hash,
            TxRecord {
                signed,
                executed_at: None,
                outcome: None,
            },
        );
        Ok(tx_hash)
    }

    /// Runs a pooled transaction's actions and records nearcore's outcome shape for it.
    fn execute(&mut self, tx_hash: CryptoHash) {
        let Some(record) = self.txs.get(&tx_hash) else {
            return;
        };
        let signed = record.signed.clone();
        let tx = &signed.transaction;
        let mut receipts = Vec::new();
        let first_receipt = receipt_id(&tx_hash, 0);
        let status = self.run_receipt(tx, first_receipt, &mut receipts);
        let block_hash = self.blocks.last().copied().unwrap_or_default().to_string();
        let outcome = json!({
            "status": status,
            "transaction": {
                "signer_id": tx.signer_id(),
                "public_key": tx.public_key().to_string(),
                "receiver_id": tx.receiver_id(),
                "hash": tx_hash.to_string(),
                "signature": signed.signature.to_string(),
            },
            "transaction_outcome": {
                "id": tx_hash.to_string(),
                "block_hash": block_hash,
                "outcome": {
                    "executor_id": tx.signer_id(),
                    "logs": [],
                    "receipt_ids": [first_receipt.to_string()],
                    "gas_burnt": SEND_GAS,
                    "tokens_burnt": (u128::from(SEND_GAS) * GAS_PRICE).to_string(),
                    "status": {"SuccessReceiptId": first_receipt.to_string()},
                }
            },
            "receipts_outcome": receipts.iter().map(|r: &ReceiptOutcome| json!({
                "id": r.id.to_string(),
                "block_hash": block_hash,
                "outcome": {
                    "executor_id": r.executor,
                    "logs": r.logs,
                    "receipt_ids": r.children.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    "gas_burnt": SEND_GAS,
                    "tokens_burnt": "0",
                    "status": r.status,
                }
            })).collect::<Vec<_>>(),
        });
        if let Some(record) = self.txs.get_mut(&tx_hash) {
            record.executed_at = Some(self.height);
            record.outcome = Some(outcome);
        }
    }

    /// The transaction's receipt on its receiver: a delegate action is applied there and
    /// its inner actions go on to the delegate's receiver in a receipt of their own. The
    /// answer is the transaction's final status, which follows nearcore's rule: a
    /// delegate receipt that succeeded gives `SuccessValue` whatever its inner receipt
    /// did, so only the inner receipt tells whether the token moved.
    fn run_receipt(
        &mut self,
        tx: &near_primitives::transaction::Transaction,
        id: CryptoHash,
        receipts: &mut Vec<ReceiptOutcome>,
    ) -> Value {
        let receiver = tx.receiver_id().clone();
        let mut outcome = ReceiptOutcome::new(id, receiver.clone());
        let mut inner = Vec::new();
        for (index, action) in tx.actions().iter().enumerate() {
            let result = match action {
                Action::Delegate(signed) => self.apply_delegate(&receiver, signed, id, &mut inner),
                other => self.apply(tx.signer_id(), &receiver, other, &mut outcome.logs),
            };
            if let Err(kind) = result {
                outcome.status =
                    json!({"Failure": {"ActionError": {"index": index, "kind": kind}}});
                receipts.push(outcome.clone());
                return outcome.status;
            }
        }
        outcome.children = inner.iter().map(|r: &ReceiptOutcome| r.id).collect();
        receipts.push(outcome.clone());
        receipts.extend(inner);
        outcome.status
    }

    /// nearcore's `apply_delegate_action` and the access-key checks of the receipt it
    /// creates, then the inner actions as a receipt from the delegate's sender.
    /// The relayer paid the inner actions' deposits when the transaction was charged.
    fn apply_delegate(
        &mut self,
        tx_receiver: &AccountId,
        signed: &SignedDelegateAction,
        parent: CryptoHash,
        inner: &mut Vec<ReceiptOutcome>,
    ) -> Result<(), Value> {
        let action = &signed.delegate_action;
        if !signed.verify() {
            return Err(json!("DelegateActionInvalidSignature"));
        }
        if &action.sender_id != tx_receiver {
            return Err(json!({"DelegateActionSenderDoesNotMatchTxReceiver": {
                "sender_id": action.sender_id, "receiver_id": tx_receiver}}));
        }
        if self.height > action.max_block_height {
            return Err(json!("DelegateActionExpired"));
        }
        let height = self.height;
        let key_error = |e: Value| json!({"DelegateActionAccessKeyError": e});
        let account = self
            .accounts
            .get_mut(&action.sender_id)
            .ok_or_else(|| json!({"AccountDoesNotExist": {"account_id": action.sender_id}}))?;
        let key = account.keys.get_mut(&action.public_key).ok_or_else(|| {
            key_error(json!({"AccessKeyNotFound": {"account_id": action.sender_id,
                "public_key": action.public_key.to_string()}}))
        })?;
        if action.nonce <= key.nonce {
            return Err(json!({"DelegateActionInvalidNonce": {
                "delegate_nonce": action.nonce, "ak_nonce": key.nonce}}));
        }
        if action.nonce >= height.saturating_mul(NONCE_PER_HEIGHT) {
            return Err(json!({"DelegateActionNonceTooLarge": {
                "delegate_nonce": action.nonce,
                "upper_bound": height.saturating_mul(NONCE_PER_HEIGHT)}}));
        }
        if let Permission::FunctionCall {
            receiver_id,
            method_names,
        } = &key.permission
        {
            let actions = action.get_actions();
            let [Action::FunctionCall(call)] = actions.as_slice() else {
                return Err(key_error(json!("RequiresFullAccess")));
            };
            if call.deposit.as_yoctonear() > 0 {
                return Err(key_error(json!("DepositWithFunctionCall")));
            }
            if receiver_id != &action.receiver_id {
                return Err(key_error(json!({"ReceiverMismatch": {
                    "tx_receiver": action.receiver_id, "ak_receiver": receiver_id}})));
            }
            if !method_names.is_empty() && !method_names.contains(&call.method_name) {
                return Err(key_error(
                    json!({"MethodNameMismatch": {"method_name": call.method_name}}),
                ));
            }
        }
        key.nonce = action.nonce;
        let id = receipt_id(&parent, 1);
        let mut outcome = ReceiptOutcome::new(id, action.receiver_id.clone());
        for (index, inner_action) in action.get_actions().iter().enumerate() {
            let result = self.apply(
                &action.sender_id,
                &action.receiver_id,
                inner_action,
                &mut outcome.logs,
            );
            if let Err(kind) = result {
                outcome.status =
                    json!({"Failure": {"ActionError": {"index": index, "kind": kind}}});
                break;
            }
        }
        inner.push(outcome);
        Ok(())
    }

    fn credit(&mut self, account_id: &AccountId, amount: u128) {
        let account = self.accounts.entry(account_id.clone()).or_default();
        account.amount = account.amount.saturating_add(amount);
    }

    /// One action other than a delegate action, from `predecessor` on `receiver`; `Err` is
    /// nearcore's `ActionErrorKind`. Only the stand-in's token contracts have code.
    fn apply(
        &mut self,
        predecessor: &AccountId,
        receiver: &AccountId,
        action: &Action,
        logs: &mut Vec<String>,
    ) -> Result<(), Value> {
        match action {
            Action::Transfer(transfer) => {
                self.credit(receiver, transfer.deposit.as_yoctonear());
                Ok(())
            }
            Action::FunctionCall(call) => {
                let Some(token) = self.tokens.get_mut(receiver) else {
                    return Err(json!({"FunctionCallError": {"CompilationError": {
                        "CodeDoesNotExist": {"account_id": receiver}}}}));
                };
                let deposit = call.deposit.as_yoctonear();
                token
                    .call(predecessor, &call.method_name, &call.args, deposit, logs)
                    .map_err(|panic| {
                        json!({"FunctionCallError": {"ExecutionError": format!("Smart contract panicked: {panic}")}})
                    })
            }
            _ => Err(json!("ActionNotModelledByThisStandIn")),
        }
    }
}

/// One receipt's outcome.
#[derive(Debug, Clone)]
struct ReceiptOutcome {
    id: CryptoHash,
    executor: AccountId,
    status: Value,
    logs: Vec<String>,
    children: Vec<CryptoHash>,
}

impl ReceiptOutcome {
    fn new(id: CryptoHash, executor: AccountId) -> ReceiptOutcome {
        ReceiptOutcome {
            id,
            executor,
            status: json!({"SuccessValue": ""}),
            logs: Vec::new(),
            children: Vec::new(),
        }
    }
}

/// A receipt id derived from its parent, as nearcore derives them from a hash chain.
fn receipt_id(parent: &CryptoHash, index: u64) -> CryptoHash {
    let mut seed = parent.as_bytes().to_vec();
    seed.extend_from_slice(&index.to_le_bytes());
    hash(&seed)
}

/// Whether a function-call access key may sign these actions.
fn function_call_only(actions: &[Action]) -> bool {
    matches!(actions, [Action::FunctionCall(call)] if call.deposit.as_yoctonear() == 0)
}

/// What the signer pays up front: gas at the fixed price and every deposit, inner
/// actions of a delegate action included (nearcore charges those to the relayer).
fn transaction_cost(actions: &[Action]) -> Option<u128> {
    let mut cost = u128::from(SEND_GAS).checked_mul(GAS_PRICE)?;
    let mut add = |action: &Action| -> Option<()> {
        let (gas, deposit) = match action {
            Action::FunctionCall(call) => (call.gas.as_gas(), call.deposit.as_yoctonear()),
            Action::Transfer(transfer) => (0, transfer.deposit.as_yoctonear()),
            _ => (0, 0),
        };
        cost = cost
            .checked_add(u128::from(gas).checked_mul(GAS_PRICE)?)?
            .checked_add(deposit)?;
        Some(())
    };
    for action in actions {
        match action {
            Action::Delegate(signed) => {
                for inner in signed.delegate_action.get_actions() {
                    add(&inner)?;
                }
            }
            other => add(other)?,
        }
    }
    Some(cost)
}
