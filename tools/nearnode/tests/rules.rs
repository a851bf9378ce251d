//! The stand-in applies nearcore's rules itself, so a payment the facilitator wrongly let
//! through would fail on the node as on NEAR: checked here on the chain directly, with
//! transactions signed by nearcore's own signer.

use std::collections::BTreeMap;

use near_crypto::{InMemorySigner, KeyType, SecretKey};
use near_primitives::action::delegate::{DelegateAction, NonDelegateAction, SignedDelegateAction};
use near_primitives::action::{Action, FunctionCallAction};
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{AccountId, Balance, Gas};
use serde_json::Value;
use x402_nearnode::chain::{AccessKey, Account, Chain, Permission};
use x402_nearnode::token::Token;

const ONE_NEAR: u128 = 1_000_000_000_000_000_000_000_000;

fn id(text: &str) -> AccountId {
    text.parse().unwrap()
}

struct Setup {
    chain: Chain,
    relayer: SecretKey,
    payer: SecretKey,
}

fn setup() -> Setup {
    let relayer = SecretKey::from_seed(KeyType::ED25519, "relayer");
    let payer = SecretKey::from_seed(KeyType::ED25519, "payer");
    let full = |key: &SecretKey| {
        BTreeMap::from([(
            key.public_key(),
            AccessKey {
                nonce: 0,
                permission: Permission::FullAccess,
            },
        )])
    };
    let accounts = BTreeMap::from([
        (
            id("relayer.test"),
            Account {
                amount: 100 * ONE_NEAR,
                keys: full(&relayer),
            },
        ),
        (
            id("alice.test"),
            Account {
                amount: ONE_NEAR,
                keys: full(&payer),
            },
        ),
        (id("merchant.test"), Account::default()),
        (id("usdc.test"), Account::default()),
    ]);
    let mut token = Token::default();
    token.balances.insert(id("alice.test"), 1_000);
    token
        .registered
        .extend([id("alice.test"), id("merchant.test")]);
    let chain = Chain::new(
        "x402-local".into(),
        accounts,
        BTreeMap::from([(id("usdc.test"), token)]),
    );
    Setup {
        chain,
        relayer,
        payer,
    }
}

impl Setup {
    fn delegate(&self, nonce: u64, max_block_height: u64, amount: u128) -> SignedDelegateAction {
        let call = Action::FunctionCall(Box::new(FunctionCallAction {
            method_name: "ft_transfer".into(),
            args: format!("{{\"receiver_id\":\"merchant.test\",\"amount\":\"{amount}\"}}")
                .into_bytes(),
            gas: Gas::from_gas(10_000_000_000_000),
            deposit: Balance::from_yoctonear(1),
        }));
        let action = DelegateAction {
            sender_id: id("alice.test"),
            receiver_id: id("usdc.test"),
            actions: vec![NonDelegateAction::try_from(call).unwrap()],
            nonce,
            max_block_height,
            public_key: self.payer.public_key(),
        };
        SignedDelegateAction::sign(
            &InMemorySigner::from_secret_key(id("alice.test"), self.payer.clone()),
            action,
        )
    }

    fn relay(&self, nonce: u64, delegate: SignedDelegateAction) -> SignedTransaction {
        let tx = Transaction::V0(TransactionV0 {
            signer_id: id("relayer.test"),
            public_key: self.relayer.public_key(),
            nonce,
            receiver_id: id("alice.test"),
            block_hash: self.chain.block_hash(self.chain.height).unwrap(),
            actions: vec![Action::Delegate(Box::new(delegate))],
        });
        let (hash, _) = tx.get_hash_and_size();
        SignedTransaction::new(self.relayer.sign(hash.as_ref()), tx)
    }

    /// Sends and executes one relayer transaction; the inner receipt's status.
    fn execute(&mut self, nonce: u64, delegate: SignedDelegateAction) -> Value {
        let tx = self.relay(nonce, delegate);
        let hash = self.chain.submit(tx).expect("accepted");
        self.chain.produce_block();
        let outcome = self.chain.txs[&hash].outcome.clone().expect("executed");
        outcome["receipts_outcome"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["outcome"]["status"]
            .clone()
    }

    fn merchant(&self) -> u128 {
        self.chain.tokens[&id("usdc.test")]
            .balances
            .get(&id("merchant.test"))
            .copied()
            .unwrap_or(0)
    }
}

#[test]
fn a_delegate_action_executes_once_and_its_replay_fails_with_the_nonce() {
    let mut s = setup();
    let delegate = s.delegate(1, 100, 400);
    assert!(s.execute(1, delegate.clone()).get("SuccessValue").is_some());
    assert_eq!(s.merchant(), 400);
    let replay = s.execute(2, delegate);
    assert!(
        replay.to_string().contains("DelegateActionInvalidNonce"),
        "{replay}"
    );
    assert_eq!(s.merchant(), 400);
}

#[test]
fn an_expired_delegate_action_fails_and_moves_nothing() {
    let mut s = setup();
    for _ in 0..5 {
        s.chain.produce_block();
    }
    let status = s.execute(1, s.delegate(1, 3, 400));
    assert!(
        status.to_string().contains("DelegateActionExpired"),
        "{status}"
    );
    assert_eq!(s.merchant(), 0);
}

#[test]
fn a_transfer_beyond_the_balance_fails_inside_a_successful_transaction() {
    let mut s = setup();
    let tx = s.relay(1, s.delegate(1, 100, 5_000));
    let hash = s.chain.submit(tx).unwrap();
    s.chain.produce_block();
    let outcome = s.chain.txs[&hash].outcome.clone().unwrap();
    assert!(outcome["status"].get("SuccessValue").is_some(), "{outcome}");
    assert!(outcome.to_string().contains("enough balance"), "{outcome}");
    assert_eq!(s.merchant(), 0);
}

#[test]
fn the_pool_refuses_a_used_relayer_nonce_and_a_forged_signature() {
    let mut s = setup();
    s.chain.submit(s.relay(5, s.delegate(1, 100, 1))).unwrap();
    let stale = s
        .chain
        .submit(s.relay(5, s.delegate(2, 100, 1)))
        .unwrap_err();
    assert!(
        stale.0.to_string().contains("InvalidNonce"),
        "{:?}",
        stale.0
    );
    let mut forged = s.relay(6, s.delegate(3, 100, 1));
    forged.signature = s.payer.sign(b"something else");
    let refused = s.chain.submit(forged).unwrap_err();
    assert_eq!(refused.0, "InvalidSignature");
}
