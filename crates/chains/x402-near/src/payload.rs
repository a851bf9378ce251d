//! The checks of a NEAR `exact` payload that need no node: decoding the NEP-366
//! `SignedDelegateAction` with nearcore's own types, its signature over the NEP-461 hash,
//! and the one `ft_transfer` it must hold. Pure, so the fuzzer drives it directly.

use base64::Engine as _;
use near_crypto::KeyType;
use near_primitives::action::delegate::SignedDelegateAction;
use near_primitives::action::{Action, FunctionCallAction};
use near_primitives::types::AccountId;
use x402_protocol::Reason;

/// Largest payload accepted, decoded (a one-action delegate is under 1 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// A refusal: the reason, what was wrong, and the payer once the signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The code.
    pub reason: Reason,
    /// What was wrong.
    pub message: String,
    /// The sender, only when its signature verified (the spec names no unverified payer).
    pub payer: Option<String>,
}

fn refuse(reason: Reason, message: impl Into<String>, payer: Option<&AccountId>) -> Refused {
    Refused {
        reason,
        message: message.into(),
        payer: payer.map(|p| p.to_string()),
    }
}

/// What the payment must do, from the requirements and this facilitator's policy.
pub struct Wanted<'a> {
    /// The NEP-141 token contract.
    pub asset: &'a str,
    /// The recipient.
    pub pay_to: &'a str,
    /// The exact amount, in the token's smallest unit.
    pub amount: u128,
    /// Most gas the call may ask for.
    pub max_gas: u64,
    /// This facilitator's relayer accounts (a payer may not be one).
    pub relayers: &'a [AccountId],
}

/// A delegate action that passed every check here.
#[derive(Debug, Clone)]
pub struct Delegated {
    /// The decoded payload, relayed as it is.
    pub signed: SignedDelegateAction,
    /// Its sender, the payer.
    pub payer: AccountId,
    /// What `ft_transfer` moves.
    pub amount: u128,
}

/// The payload's bytes as nearcore's `SignedDelegateAction` (the whole input must be one).
pub fn decode(encoded: &str) -> Result<SignedDelegateAction, Refused> {
    let undecodable = |why: &str| refuse(Reason::ExactNearUndecodable, why, None);
    if encoded.len() > MAX_PAYLOAD_BYTES * 4 / 3 + 4 {
        return Err(undecodable("signedDelegateAction is too long"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| undecodable("signedDelegateAction is not base64"))?;
    borsh::from_slice::<SignedDelegateAction>(&bytes).map_err(|_| {
        undecodable("signedDelegateAction is not a Borsh NEP-366 SignedDelegateAction")
    })
}

/// The sender, when the signature verifies: the only payer a refusal may name.
pub fn verified_sender(signed: &SignedDelegateAction) -> Option<AccountId> {
    check_signature(signed)
        .is_ok()
        .then(|| signed.delegate_action.sender_id.clone())
}

/// The arguments of a NEP-141 `ft_transfer` (unknown keys are ignored, as the reference
/// token's JSON reader ignores them).
#[derive(serde::Deserialize)]
struct TransferArgs {
    receiver_id: String,
    amount: String,
    #[serde(default)]
    #[allow(dead_code)]
    memo: Option<String>,
}

/// Every check that needs no node, in the spec's order.
pub fn inspect(signed: SignedDelegateAction, wanted: &Wanted<'_>) -> Result<Delegated, Refused> {
    check_signature(&signed)?;
    let action = &signed.delegate_action;
    let payer = &action.sender_id;
    let by = Some(payer);
    if wanted.relayers.contains(payer) {
        return Err(refuse(
            Reason::ExactNearSenderIsRelayer,
            "the payer is this facilitator's relayer",
            by,
        ));
    }
    let actions = action.get_actions();
    let [only] = actions.as_slice() else {
        return Err(refuse(
            Reason::ExactNearActionCount,
            format!(
                "{} actions; exactly one ft_transfer is allowed",
                actions.len()
            ),
            by,
        ));
    };
    let Action::FunctionCall(call) = only else {
        return Err(refuse(
            Reason::ExactNearNotFtTransfer,
            "the action is not a function call",
            by,
        ));
    };
    if call.method_name != "ft_transfer" {
        return Err(refuse(
            Reason::ExactNearNotFtTransfer,
            format!("the call is {:?}, not ft_transfer", call.method_name),
            by,
        ));
    }
    if action.receiver_id.as_str() != wanted.asset {
        return Err(refuse(
            Reason::ExactNearAssetMismatch,
            format!(
                "the call goes to {}, not the token {}",
                action.receiver_id, wanted.asset
            ),
            by,
        ));
    }
    let amount = check_transfer(call, wanted, payer)?;
    let payer = payer.clone();
    Ok(Delegated {
        signed,
        payer,
        amount,
    })
}

/// A key of a supported curve, and its signature over the NEP-461 hash.
fn check_signature(signed: &SignedDelegateAction) -> Result<(), Refused> {
    let key_type = signed.delegate_action.public_key.key_type();
    if !matches!(key_type, KeyType::ED25519 | KeyType::SECP256K1) {
        return Err(refuse(
            Reason::ExactNearUnsupportedKeyType,
            format!("{key_type} keys are not supported (ed25519 and secp256k1 are)"),
            None,
        ));
    }
    // nearcore's check: a signature of another curve than the key never verifies.
    if !signed.verify() {
        return Err(refuse(
            Reason::ExactNearSignatureInvalid,
            "the signature does not verify over the delegate action's NEP-461 hash",
            None,
        ));
    }
    Ok(())
}

/// `ft_transfer`'s arguments, deposit and gas; the amount it moves.
fn check_transfer(
    call: &FunctionCallAction,
    wanted: &Wanted<'_>,
    payer: &AccountId,
) -> Result<u128, Refused> {
    let by = Some(payer);
    let args: TransferArgs = serde_json::from_slice(&call.args).map_err(|_| {
        refuse(
            Reason::ExactNearArgsInvalid,
            "ft_transfer's arguments are not {receiver_id, amount}",
            by,
        )
    })?;
    if args.receiver_id != wanted.pay_to {
        return Err(refuse(
            Reason::ExactNearRecipientMismatch,
            format!(
                "ft_transfer pays {}, not {}",
                args.receiver_id, wanted.pay_to
            ),
            by,
        ));
    }
    let canonical = !args.amount.is_empty()
        && args.amount.bytes().all(|b| b.is_ascii_digit())
        && (args.amount == "0" || !args.amount.starts_with('0'));
    let amount = match args.amount.parse::<u128>() {
        Ok(amount) if canonical => amount,
        _ => {
            return Err(refuse(
                Reason::ExactNearArgsInvalid,
                "ft_transfer's amount is not a decimal u128",
                by,
            ))
        }
    };
    if amount != wanted.amount {
        return Err(refuse(
            Reason::ExactNearAmountMismatch,
            format!(
                "ft_transfer moves {amount}, the requirement is {}",
                wanted.amount
            ),
            by,
        ));
    }
    let deposit = call.deposit.as_yoctonear();
    if deposit != 1 {
        return Err(refuse(
            Reason::ExactNearDepositNotOneYocto,
            format!("the call attaches {deposit} yoctoNEAR; NEP-141 ft_transfer takes exactly 1"),
            by,
        ));
    }
    if call.gas.as_gas() > wanted.max_gas {
        return Err(refuse(
            Reason::ExactNearGasAboveCap,
            format!(
                "the call asks for {} gas; this facilitator sponsors at most {}",
                call.gas.as_gas(),
                wanted.max_gas
            ),
            by,
        ));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests;
