//! The payload checks on delegate actions signed with nearcore's own signer.

use base64::Engine as _;
use near_crypto::{InMemorySigner, KeyType, SecretKey};
use near_primitives::action::delegate::{DelegateAction, NonDelegateAction, SignedDelegateAction};
use near_primitives::action::{Action, FunctionCallAction, TransferAction};
use near_primitives::types::{AccountId, Balance, Gas};
use x402_protocol::Reason;

use super::{decode, inspect, verified_sender, Wanted};

const PAYER: &str = "alice.test";
const TOKEN: &str = "usdc.test";
const MERCHANT: &str = "merchant.test";

fn id(text: &str) -> AccountId {
    text.parse().unwrap()
}

fn ft_transfer(receiver: &str, amount: &str, deposit: u128, gas: u64) -> Action {
    Action::FunctionCall(Box::new(FunctionCallAction {
        method_name: "ft_transfer".into(),
        args: serde_json::to_vec(&serde_json::json!({"receiver_id": receiver, "amount": amount}))
            .unwrap(),
        gas: Gas::from_gas(gas),
        deposit: Balance::from_yoctonear(deposit),
    }))
}

fn delegate(actions: Vec<Action>, receiver: &str, key: &SecretKey) -> DelegateAction {
    DelegateAction {
        sender_id: id(PAYER),
        receiver_id: id(receiver),
        actions: actions
            .into_iter()
            .map(|a| NonDelegateAction::try_from(a).unwrap())
            .collect(),
        nonce: 7,
        max_block_height: 100,
        public_key: key.public_key(),
    }
}

fn signed_by(action: DelegateAction, key: &SecretKey) -> SignedDelegateAction {
    let signer = InMemorySigner::from_secret_key(id(PAYER), key.clone());
    SignedDelegateAction::sign(&signer, action)
}

fn payer_key() -> SecretKey {
    SecretKey::from_seed(KeyType::ED25519, "payer")
}

fn good(actions: Vec<Action>, receiver: &str) -> SignedDelegateAction {
    let key = payer_key();
    signed_by(delegate(actions, receiver, &key), &key)
}

fn wanted(relayers: &[AccountId]) -> Wanted<'_> {
    Wanted {
        asset: TOKEN,
        pay_to: MERCHANT,
        amount: 1_000,
        max_gas: 30_000_000_000_000,
        relayers,
    }
}

fn reason_of(signed: SignedDelegateAction) -> Reason {
    inspect(signed, &wanted(&[id("relayer.test")]))
        .unwrap_err()
        .reason
}

fn transfer(amount: &str) -> Vec<Action> {
    vec![ft_transfer(MERCHANT, amount, 1, 10_000_000_000_000)]
}

#[test]
fn one_exact_ft_transfer_signed_by_the_sender_passes() {
    let checked = inspect(good(transfer("1000"), TOKEN), &wanted(&[])).unwrap();
    assert_eq!(checked.payer.as_str(), PAYER);
    assert_eq!(checked.amount, 1_000);
}

#[test]
fn the_payload_round_trips_through_base64_borsh_and_nothing_else_decodes() {
    let signed = good(transfer("1000"), TOKEN);
    let bytes = borsh::to_vec(&signed).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    assert_eq!(decode(&encoded).unwrap(), signed);
    let mut longer = bytes.clone();
    longer.push(0);
    for bad in [
        "not base64!".to_owned(),
        base64::engine::general_purpose::STANDARD.encode(&longer),
        base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() - 1]),
        "A".repeat(64 * 1024),
    ] {
        assert_eq!(
            decode(&bad).unwrap_err().reason,
            Reason::ExactNearUndecodable
        );
    }
}

#[test]
fn a_signature_by_another_key_or_over_other_bytes_is_refused_without_a_payer() {
    let payer = payer_key();
    let other = SecretKey::from_seed(KeyType::ED25519, "someone else");
    let forged = signed_by(delegate(transfer("1000"), TOKEN, &payer), &other);
    let refused = inspect(forged.clone(), &wanted(&[])).unwrap_err();
    assert_eq!(refused.reason, Reason::ExactNearSignatureInvalid);
    assert_eq!(refused.payer, None, "an unverified sender is never named");
    assert_eq!(verified_sender(&forged), None);
    let mut tampered = good(transfer("1000"), TOKEN);
    tampered.delegate_action.nonce += 1;
    assert_eq!(reason_of(tampered), Reason::ExactNearSignatureInvalid);
}

#[test]
fn a_secp256k1_key_is_verified_too() {
    let key = SecretKey::from_seed(KeyType::SECP256K1, "payer");
    let signed = signed_by(delegate(transfer("1000"), TOKEN, &key), &key);
    assert!(inspect(signed, &wanted(&[])).is_ok());
}

#[test]
fn every_departure_from_one_exact_ft_transfer_has_its_reason() {
    let gas = 10_000_000_000_000;
    let cases = [
        (transfer("999"), TOKEN, Reason::ExactNearAmountMismatch),
        (transfer("1001"), TOKEN, Reason::ExactNearAmountMismatch),
        (transfer("01000"), TOKEN, Reason::ExactNearArgsInvalid),
        (transfer("-1"), TOKEN, Reason::ExactNearArgsInvalid),
        (
            transfer("1000"),
            "other-token.test",
            Reason::ExactNearAssetMismatch,
        ),
        (
            vec![ft_transfer("mallory.test", "1000", 1, gas)],
            TOKEN,
            Reason::ExactNearRecipientMismatch,
        ),
        (
            vec![ft_transfer(MERCHANT, "1000", 0, gas)],
            TOKEN,
            Reason::ExactNearDepositNotOneYocto,
        ),
        (
            vec![ft_transfer(MERCHANT, "1000", 2, gas)],
            TOKEN,
            Reason::ExactNearDepositNotOneYocto,
        ),
        (
            vec![ft_transfer(MERCHANT, "1000", 1, 300_000_000_000_000)],
            TOKEN,
            Reason::ExactNearGasAboveCap,
        ),
        (
            [transfer("1000"), transfer("1000")].concat(),
            TOKEN,
            Reason::ExactNearActionCount,
        ),
        (vec![], TOKEN, Reason::ExactNearActionCount),
        (
            vec![Action::Transfer(TransferAction {
                deposit: Balance::from_yoctonear(5),
            })],
            TOKEN,
            Reason::ExactNearNotFtTransfer,
        ),
    ];
    for (actions, receiver, reason) in cases {
        assert_eq!(
            reason_of(good(actions.clone(), receiver)),
            reason,
            "{actions:?}"
        );
    }
    let mut other_method = ft_transfer(MERCHANT, "1000", 1, gas);
    if let Action::FunctionCall(call) = &mut other_method {
        call.method_name = "ft_transfer_call".into();
    }
    assert_eq!(
        reason_of(good(vec![other_method], TOKEN)),
        Reason::ExactNearNotFtTransfer
    );
    let mut not_json = ft_transfer(MERCHANT, "1000", 1, gas);
    if let Action::FunctionCall(call) = &mut not_json {
        call.args = b"receiver_id=merchant.test".to_vec();
    }
    assert_eq!(
        reason_of(good(vec![not_json], TOKEN)),
        Reason::ExactNearArgsInvalid
    );
}

#[test]
fn the_relayer_cannot_be_the_payer() {
    let refused = inspect(good(transfer("1000"), TOKEN), &wanted(&[id(PAYER)])).unwrap_err();
    assert_eq!(refused.reason, Reason::ExactNearSenderIsRelayer);
    assert_eq!(refused.payer.as_deref(), Some(PAYER));
}
