//! What an EVM payload says, read without a node: the surface the fuzz target drives (the
//! same parsers verify and settle use), so that no payload a stranger sends can panic them.

use super::*;

/// What [`read_payload`] found in a payment's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadShape {
    /// An EIP-3009 authorization from this payer.
    Eip3009 {
        /// The authorization's `from`.
        payer: String,
    },
    /// A Permit2 permit from this payer, with an EIP-2612 extension when `Some` (`Err`:
    /// malformed).
    Permit2 {
        /// The permit's `from`.
        payer: String,
        /// Whether the payment carries the `eip2612GasSponsoring` extension, and whether it reads.
        eip2612: Option<bool>,
        /// Whether it carries the `erc20ApprovalGasSponsoring` extension, and whether its
        /// `info` reads and its signed transaction decodes as one that may be relayed.
        erc20_approval: Option<bool>,
    },
}

/// Reads `payment`'s payload as `scheme` (`exact` or `upto`) reads it; `Err` is the refusal
/// verify would answer for a malformed payload.
pub fn read_payload(scheme: &str, payment: &Payment) -> Result<PayloadShape, Verdict> {
    let parsed = match scheme {
        "upto" => permit2::parse(payment)
            .map(|p| EvmPayload::Permit2(Box::new(p), permit2::Permit2Scheme::Upto))?,
        _ => exact::parse_exact(payment)?,
    };
    Ok(match parsed {
        EvmPayload::Eip3009(auth, _) => PayloadShape::Eip3009 {
            payer: auth.from.to_checksum(None),
        },
        EvmPayload::Permit2(permit, _) => PayloadShape::Permit2 {
            payer: permit.from.to_checksum(None),
            eip2612: permit.eip2612.as_ref().map(Result::is_ok),
            erc20_approval: permit
                .erc20_approval
                .as_ref()
                .map(|info| info.as_ref().is_ok_and(|i| i.decode().is_some())),
        },
    })
}
