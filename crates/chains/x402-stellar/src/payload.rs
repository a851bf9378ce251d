//! The payload's own checks, without I/O: the transaction XDR decodes, its one operation
//! invokes `transfer(from, to, amount)` on the required asset contract with exactly the
//! required recipient and amount, and its authorization entries are the payer's signed
//! address credentials with nothing beyond the transfer and no address of this
//! facilitator. What needs the ledger (signatures, nonce, balance, the events) is the
//! simulation's, in `check.rs`.

use stellar_xdr::{
    HostFunction, InvokeContractArgs, InvokeHostFunctionOp, Limits, MuxedAccount, OperationBody,
    ReadXdr, ScAddress, ScVal, SorobanAuthorizationEntry, SorobanCredentials, TransactionEnvelope,
    TransactionV1Envelope,
};
use x402_protocol::Reason;

/// Largest transaction this facilitator decodes, in bytes of XDR (a transfer is under 2 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Nesting limit of the XDR decoder (an invocation tree deeper than this is refused).
const MAX_XDR_DEPTH: u32 = 64;

/// A refusal of the payload, with the payer when the payload named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: Reason,
    pub message: String,
    pub payer: Option<String>,
}

fn refuse(reason: Reason, message: impl Into<String>, payer: Option<&str>) -> Refused {
    Refused {
        reason,
        message: message.into(),
        payer: payer.map(str::to_owned),
    }
}

/// What the payment must be.
pub struct Wanted<'a> {
    /// The asset contract, `C…`.
    pub asset: &'a str,
    /// `payTo`.
    pub pay_to: &'a str,
    pub amount: i128,
    /// This facilitator's own addresses (`G…`), which must not appear.
    pub ours: &'a [String],
}

/// A payload that passed its own checks.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// The operation to submit: the client's host function and auth entries, with no
    /// operation source of its own (the facilitator's transaction is the source).
    pub op: InvokeHostFunctionOp,
    pub from: String,
    pub to: String,
    pub amount: i128,
    /// The payer's authorization nonce: the host spends `(from, nonce)` once.
    pub nonce: i64,
    /// The latest `signatureExpirationLedger` among the entries.
    pub expiration_ledger: u32,
}

/// Decodes `payload.transaction`: base64 of a v1 `TransactionEnvelope`.
pub fn decode(encoded: &str) -> Result<TransactionV1Envelope, Refused> {
    let malformed = |why: &str| {
        refuse(
            Reason::ExactStellarMalformed,
            format!("payload.transaction {why}"),
            None,
        )
    };
    if encoded.len() > MAX_PAYLOAD_BYTES.div_ceil(3) * 4 {
        return Err(malformed("is larger than this facilitator decodes"));
    }
    let limits = Limits {
        depth: MAX_XDR_DEPTH,
        len: MAX_PAYLOAD_BYTES,
    };
    match TransactionEnvelope::from_xdr_base64(encoded, limits) {
        Ok(TransactionEnvelope::Tx(envelope)) => Ok(envelope),
        Ok(_) => Err(malformed("is not a v1 transaction envelope")),
        Err(_) => Err(malformed("is not base64 transaction XDR")),
    }
}

/// The strkey of an address (`G…`, `C…`, `M…`).
pub fn address(address: &ScAddress) -> String {
    address.to_string()
}

fn muxed(account: &MuxedAccount) -> String {
    match account {
        MuxedAccount::Ed25519(key) => format!("{}", stellar_strkey::ed25519::PublicKey(key.0)),
        MuxedAccount::MuxedEd25519(m) => {
            format!("{}", stellar_strkey::ed25519::PublicKey(m.ed25519.0))
        }
    }
}

/// The i128 an `ScVal` holds, if it is one.
pub fn i128_of(value: &ScVal) -> Option<i128> {
    match value {
        ScVal::I128(parts) => Some(i128::from(parts)),
        _ => None,
    }
}

/// The one `InvokeContract` call of the envelope, refused in the official SDK's order.
fn the_call<'a>(
    envelope: &'a TransactionV1Envelope,
    wanted: &Wanted<'_>,
) -> Result<(&'a InvokeHostFunctionOp, &'a InvokeContractArgs), Refused> {
    let tx = &envelope.tx;
    let wrong_op = |why: &str| refuse(Reason::ExactStellarWrongOperation, why, None);
    let [operation] = tx.operations.as_slice() else {
        return Err(wrong_op("the transaction must hold exactly one operation"));
    };
    let OperationBody::InvokeHostFunction(op) = &operation.body else {
        return Err(wrong_op("the operation is not invokeHostFunction"));
    };
    let sources = std::iter::once(muxed(&tx.source_account))
        .chain(operation.source_account.as_ref().map(muxed));
    for source in sources {
        if wanted.ours.contains(&source) {
            return Err(refuse(
                Reason::ExactStellarUnsafeSource,
                "the transaction or operation source is this facilitator's account",
                None,
            ));
        }
    }
    let HostFunction::InvokeContract(call) = &op.host_function else {
        return Err(wrong_op("the host function is not a contract invocation"));
    };
    Ok((op, call))
}

/// Every check of the payload against `wanted` that needs no ledger.
pub fn inspect(envelope: &TransactionV1Envelope, wanted: &Wanted<'_>) -> Result<Transfer, Refused> {
    let (op, call) = the_call(envelope, wanted)?;
    let contract = address(&call.contract_address);
    if contract != wanted.asset {
        return Err(refuse(
            Reason::ExactStellarWrongAsset,
            format!("the call is to {contract}, the asset is {}", wanted.asset),
            None,
        ));
    }
    let name = String::from_utf8_lossy(call.function_name.0.as_slice()).into_owned();
    let [from, to, amount] = call.args.as_slice() else {
        return Err(refuse(
            Reason::ExactStellarWrongFunction,
            "the call is not transfer(from, to, amount)",
            None,
        ));
    };
    if name != "transfer" {
        return Err(refuse(
            Reason::ExactStellarWrongFunction,
            format!("the call is {name}, not transfer"),
            None,
        ));
    }
    let ScVal::Address(from) = from else {
        return Err(refuse(
            Reason::ExactStellarMalformed,
            "transfer's from is not an address",
            None,
        ));
    };
    let from = address(from);
    if wanted.ours.contains(&from) {
        return Err(refuse(
            Reason::ExactStellarFacilitatorIsPayer,
            "the payer is this facilitator's own account",
            None,
        ));
    }
    let payer = Some(from.as_str());
    let to = match to {
        ScVal::Address(to) => address(to),
        _ => String::new(),
    };
    if to != wanted.pay_to {
        return Err(refuse(
            Reason::ExactStellarWrongRecipient,
            format!("the transfer pays {to:?}, payTo is {}", wanted.pay_to),
            payer,
        ));
    }
    let amount = i128_of(amount);
    if amount != Some(wanted.amount) {
        let shown = amount.map_or_else(|| "no i128".to_owned(), |a| a.to_string());
        return Err(refuse(
            Reason::ExactStellarWrongAmount,
            format!(
                "the transfer moves {shown}, the requirement is {}",
                wanted.amount
            ),
            payer,
        ));
    }
    let (nonce, expiration_ledger) = check_auth(&op.auth, &from, wanted)?;
    Ok(Transfer {
        op: op.clone(),
        from,
        to,
        amount: wanted.amount,
        nonce,
        expiration_ledger,
    })
}

/// The entries: address credentials only, none of ours, no sub-invocations, the payer's
/// signed and nobody's left to sign. Returns the payer's nonce and the latest expiration.
fn check_auth(
    entries: &[SorobanAuthorizationEntry],
    from: &str,
    wanted: &Wanted<'_>,
) -> Result<(i64, u32), Refused> {
    let payer = Some(from);
    if entries.is_empty() {
        return Err(refuse(
            Reason::ExactStellarNoAuthEntries,
            "the operation carries no authorization entry",
            payer,
        ));
    }
    let mut payer_nonce = None;
    let mut pending = Vec::new();
    let mut latest = 0u32;
    for entry in entries {
        let SorobanCredentials::Address(credentials) = &entry.credentials else {
            return Err(refuse(
                Reason::ExactStellarUnsupportedCredential,
                "only address credentials are accepted (source-account credentials would make this facilitator authorize)",
                payer,
            ));
        };
        let signer = address(&credentials.address);
        if wanted.ours.contains(&signer) {
            return Err(refuse(
                Reason::ExactStellarFacilitatorInAuth,
                "an authorization entry is for this facilitator's account",
                payer,
            ));
        }
        if !entry.root_invocation.sub_invocations.is_empty() {
            return Err(refuse(
                Reason::ExactStellarHasSubinvocations,
                "an authorization entry authorizes calls beyond the transfer",
                payer,
            ));
        }
        latest = latest.max(credentials.signature_expiration_ledger);
        let signed = credentials.signature != ScVal::Void;
        if signer == from && signed {
            payer_nonce = Some(credentials.nonce);
        } else if !signed {
            pending.push(signer);
        }
    }
    let Some(nonce) = payer_nonce else {
        return Err(refuse(
            Reason::ExactStellarMissingPayerSignature,
            "the payer's authorization entry is not signed",
            payer,
        ));
    };
    if !pending.is_empty() {
        return Err(refuse(
            Reason::ExactStellarPendingSignatures,
            format!(
                "authorization entries still need signatures: {}",
                pending.join(", ")
            ),
            payer,
        ));
    }
    Ok((nonce, latest))
}

#[cfg(test)]
mod tests;
