//! The `eip2612GasSponsoring` extension: a payer who has not approved Permit2 signs an
//! EIP-2612 permit for it, and the facilitator sends that permit inside the settling proxy
//! call (`settleWithPermit`), paying the gas of the approval. The permit must be the payer's,
//! for the payment's token, for Permit2 and for exactly the permitted amount (the proxy
//! refuses any other amount), and alive.

use super::*;

/// The extension's key in a v2 payment's `extensions`.
pub(crate) const EXTENSION_KEY: &str = "eip2612GasSponsoring";

/// An EIP-2612 permit as the extension's `info` carries it.
#[derive(Debug, Clone)]
pub(crate) struct Eip2612Permit {
    from: Address,
    asset: Address,
    spender: Address,
    amount: U256,
    deadline: U256,
    /// `(r, s, v)`, 65 bytes.
    signature: [u8; 65],
}

impl Eip2612Permit {
    /// The permit as the proxies' `settleWithPermit` takes it: `(value, deadline, r, s, v)`.
    pub(crate) fn proxy_parts(&self) -> (U256, U256, B256, B256, u8) {
        let v = self.signature[64];
        (
            self.amount,
            self.deadline,
            B256::from_slice(&self.signature[..32]),
            B256::from_slice(&self.signature[32..64]),
            if v < 27 { v + 27 } else { v },
        )
    }
}

/// The extension's permit when the payment carries the extension; `Err` says what is
/// malformed (every field the reference requires, in its formats).
pub(crate) fn extension_of(payment: &Payment) -> Option<Result<Eip2612Permit, String>> {
    ExtensionInfo::of(payment, EXTENSION_KEY).map(|info| read_info(&info))
}

fn read_info(info: &ExtensionInfo<'_>) -> Result<Eip2612Permit, String> {
    let address = |key: &str| {
        info.text(key)
            .and_then(|s| Address::from_str(s).map_err(|_| format!("info.{key} is not an address")))
    };
    info.version()?;
    info.decimal("nonce")?;
    let signature = info
        .hex_bytes("signature")?
        .try_into()
        .map_err(|_| "info.signature is not 65 bytes".to_owned())?;
    Ok(Eip2612Permit {
        from: address("from")?,
        asset: address("asset")?,
        spender: address("spender")?,
        amount: info.decimal("amount")?,
        deadline: info.decimal("deadline")?,
        signature,
    })
}

impl EvmChain {
    /// The extension's permit when it may be used for `permit`, else the reference's
    /// reason for refusing it.
    pub(crate) fn eip2612_checks(
        &self,
        extension: &Result<Eip2612Permit, String>,
        permit: &Permit2Payment,
        payer: &str,
    ) -> Result<Eip2612Permit, Verdict> {
        let refuse = |reason: Reason, message: String| refusal(payer, reason, message);
        let info = extension
            .as_ref()
            .map_err(|why| refuse(Reason::Eip2612InvalidFormat, why.clone()))?;
        if info.from != permit.from {
            return Err(refuse(
                Reason::Eip2612FromMismatch,
                "the EIP-2612 permit is not the payer's".into(),
            ));
        }
        if info.asset != permit.token {
            return Err(refuse(
                Reason::Eip2612AssetMismatch,
                "the EIP-2612 permit is for another token".into(),
            ));
        }
        if info.spender != PERMIT2 {
            return Err(refuse(
                Reason::Eip2612SpenderNotPermit2,
                format!("the EIP-2612 permit's spender is not Permit2 {PERMIT2}"),
            ));
        }
        if info.deadline < U256::from(now_secs()) + U256::from(VALID_BEFORE_MARGIN) {
            return Err(refuse(
                Reason::Eip2612DeadlineExpired,
                "the EIP-2612 permit's deadline has passed".into(),
            ));
        }
        if info.amount != permit.amount {
            // The proxy reverts with Permit2612AmountMismatch: refused before any gas.
            return Err(refuse(
                Reason::Permit2Eip2612AmountMismatch,
                format!(
                    "the EIP-2612 permit's amount {} is not the permitted {}",
                    info.amount, permit.amount
                ),
            ));
        }
        Ok(info.clone())
    }
}
