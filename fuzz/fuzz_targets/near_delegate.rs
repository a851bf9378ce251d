//! The `signedDelegateAction` of a NEAR `exact` payload: decoding and every check that
//! needs no node never panic, and whatever passes is exactly one `ft_transfer` of the
//! wanted amount to the wanted recipient with 1 yoctoNEAR attached, signed by its sender.
//!
//! The first byte picks the mode. Raw mode feeds the rest as the payload's bytes. Built
//! mode reads the rest as the parts of a delegate action (actions, method, recipient,
//! amount, deposit, gas, token, signer) and signs it with nearcore's signer, so the fuzzer
//! reaches the deep checks; then it may flip one byte of the encoding.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use near_crypto::{InMemorySigner, KeyType, SecretKey};
use near_primitives::action::delegate::{DelegateAction, NonDelegateAction, SignedDelegateAction};
use near_primitives::action::{Action, FunctionCallAction, TransferAction};
use near_primitives::types::{AccountId, Balance, Gas};
use x402_near::payload::{decode, inspect, Wanted};

const TOKEN: &str = "usdc.test";
const PAY_TO: &str = "merchant.test";
const AMOUNT: u128 = 1_000;

#[path = "../common/reader.rs"]
mod reader;
use reader::Reader;

fn id(text: &str) -> AccountId {
    text.parse()
        .unwrap_or_else(|_| "fallback.test".parse().unwrap())
}

fn action(r: &mut Reader<'_>) -> Action {
    if r.chance(8) {
        return Action::Transfer(TransferAction {
            deposit: Balance::from_yoctonear(u128::from(r.byte())),
        });
    }
    let method = r.pick(&["ft_transfer", "ft_transfer_call", "storage_deposit", ""]);
    let receiver = r.pick(&[PAY_TO, "mallory.test", ""]);
    let amount = match r.byte() % 6 {
        0 => (AMOUNT - 1).to_string(),
        1 => (AMOUNT + 1).to_string(),
        2 => format!("0{AMOUNT}"),
        3 => u128::MAX.to_string() + "0",
        _ => AMOUNT.to_string(),
    };
    let args = match r.byte() % 5 {
        0 => vec![r.byte(); usize::from(r.byte() % 8)],
        1 => format!("{{\"receiver_id\":\"{receiver}\",\"amount\":{AMOUNT}}}").into_bytes(),
        _ => format!("{{\"receiver_id\":\"{receiver}\",\"amount\":\"{amount}\",\"memo\":null}}")
            .into_bytes(),
    };
    let deposit = match r.byte() % 4 {
        0 => u128::from(r.byte()),
        _ => 1,
    };
    Action::FunctionCall(Box::new(FunctionCallAction {
        method_name: method.into(),
        args,
        gas: Gas::from_gas(r.u64()),
        deposit: Balance::from_yoctonear(deposit),
    }))
}

fn built(r: &mut Reader<'_>) -> String {
    let payer = SecretKey::from_seed(KeyType::ED25519, "payer");
    let other = SecretKey::from_seed(KeyType::SECP256K1, "other");
    let count = match r.byte() % 6 {
        0 => 0,
        1 => 2,
        _ => 1,
    };
    let actions = (0..count)
        .map(|_| action(r))
        .filter_map(|a| NonDelegateAction::try_from(a).ok())
        .collect();
    let delegate = DelegateAction {
        sender_id: id(r.pick(&["alice.test", "relayer.test"])),
        receiver_id: id(r.pick(&[TOKEN, "other-usdc.test"])),
        actions,
        nonce: r.u64(),
        max_block_height: r.u64(),
        public_key: payer.public_key(),
    };
    let key = if r.chance(5) { other } else { payer };
    let signer = InMemorySigner::from_secret_key(delegate.sender_id.clone(), key);
    let signed = SignedDelegateAction::sign(&signer, delegate);
    let mut bytes = borsh::to_vec(&signed).unwrap_or_default();
    if r.chance(3) && !bytes.is_empty() {
        let at = usize::from(r.byte()) * 7 % bytes.len();
        bytes[at] ^= r.byte() | 1;
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let encoded = match r.byte() % 2 {
        0 => base64::engine::general_purpose::STANDARD.encode(r.0),
        _ => built(&mut r),
    };
    let Ok(signed) = decode(&encoded) else {
        return;
    };
    let relayers = [id("relayer.test")];
    let wanted = Wanted {
        asset: TOKEN,
        pay_to: PAY_TO,
        amount: AMOUNT,
        max_gas: 30_000_000_000_000,
        relayers: &relayers,
    };
    let Ok(passed) = inspect(signed, &wanted) else {
        return;
    };
    // Whatever passes is one exact ft_transfer, signed by its sender, not the relayer.
    assert!(passed.signed.verify());
    assert_eq!(passed.amount, AMOUNT);
    let action = &passed.signed.delegate_action;
    assert_eq!(action.receiver_id.as_str(), TOKEN);
    assert!(!relayers.contains(&action.sender_id));
    let actions = action.get_actions();
    let [Action::FunctionCall(call)] = actions.as_slice() else {
        panic!("passed with {actions:?}");
    };
    assert_eq!(call.method_name, "ft_transfer");
    assert_eq!(call.deposit.as_yoctonear(), 1);
    assert!(call.gas.as_gas() <= 30_000_000_000_000);
    let args: serde_json::Value = serde_json::from_slice(&call.args).unwrap();
    assert_eq!(args["receiver_id"], PAY_TO);
    assert_eq!(args["amount"], AMOUNT.to_string());
});
