//! `exact` with Permit2 (`assetTransferMethod: permit2`), for tokens without EIP-3009: the
//! payer signs a Permit2 `PermitWitnessTransferFrom` whose spender is the x402 exact Permit2
//! proxy and whose witness names `payTo`. Everything that needs no node is checked here (in
//! the reference's order, with its reason codes); the node's part is one deployless probe
//! ([`super::permit2_probe`]). Settling calls the proxy, which asks Permit2 to move the
//! funds; with the `eip2612GasSponsoring` extension the payer's EIP-2612 permit to Permit2
//! rides in the same call ([`super::eip2612`]).

use super::check::refusal;
use super::eip2612::{self, Eip2612Permit};
use super::*;

/// The canonical Permit2 contract (the same address on every EVM chain).
pub(crate) const PERMIT2: Address =
    Address::new(alloy::hex!("000000000022D473030F116dDEE9F6B43aC78BA3"));
/// The canonical x402 exact Permit2 proxy, the only spender an `exact` permit may name.
pub(crate) const EXACT_PROXY: Address =
    Address::new(alloy::hex!("402085c248EeA27D92E8b30b2C58ed07f9E20001"));
/// The payload field that marks a Permit2 payment (as the official SDKs tell them apart).
pub(crate) const PAYLOAD_FIELD: &str = "permit2Authorization";

sol! {
    /// Permit2's token and amount.
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    /// The witness of the exact proxy: where the funds go, and from when.
    struct Witness {
        address to;
        uint256 validAfter;
    }

    /// The EIP-712 message the payer signs (Permit2's witness transfer with the exact
    /// proxy's witness type).
    struct PermitWitnessTransferFrom {
        TokenPermissions permitted;
        address spender;
        uint256 nonce;
        uint256 deadline;
        Witness witness;
    }

    /// Permit2's permit as the proxy takes it.
    struct PermitTransferFrom {
        TokenPermissions permitted;
        uint256 nonce;
        uint256 deadline;
    }

    /// The EIP-2612 permit as the proxy takes it.
    struct ProxyEip2612Permit {
        uint256 value;
        uint256 deadline;
        bytes32 r;
        bytes32 s;
        uint8 v;
    }

    function settle(PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;
    function settleWithPermit(ProxyEip2612Permit permit2612, PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;
    function nonceBitmap(address owner, uint256 wordPosition) external view returns (uint256);
    function allowance(address owner, address spender) external view returns (uint256);
}

/// A Permit2 payment as the payload states it.
#[derive(Debug, Clone)]
pub(crate) struct Permit2Payment {
    pub(crate) from: Address,
    pub(crate) token: Address,
    pub(crate) amount: U256,
    pub(crate) spender: Address,
    pub(crate) nonce: U256,
    pub(crate) deadline: U256,
    pub(crate) to: Address,
    pub(crate) valid_after: U256,
    pub(crate) signature: Vec<u8>,
    /// The `eip2612GasSponsoring` extension's permit, when the payment carries one;
    /// `Err` names what is malformed in it.
    pub(crate) eip2612: Option<Result<Eip2612Permit, String>>,
}

/// Reads a Permit2 payload, or names what is malformed.
pub(crate) fn parse(payment: &Payment) -> Result<Permit2Payment, Verdict> {
    let auth = payment
        .payload
        .get(PAYLOAD_FIELD)
        .and_then(Value::as_object);
    let payer = auth
        .and_then(|a| a.get("from"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let bad = |what: &str| {
        Verdict::invalid(
            Reason::InvalidPayload,
            format!("payload.{PAYLOAD_FIELD}{what} is missing or malformed"),
            payer.clone(),
        )
    };
    let auth = auth.ok_or_else(|| bad(""))?;
    let field = |path: &[&str]| {
        path.iter()
            .try_fold(None::<&Value>, |at, key| match at {
                None => auth.get(*key).map(Some),
                Some(value) => value.get(*key).map(Some),
            })
            .flatten()
    };
    let address = |path: &[&str]| {
        field(path)
            .and_then(Value::as_str)
            .and_then(|s| Address::from_str(s).ok())
            .ok_or_else(|| bad(&format!(".{}", path.join("."))))
    };
    let number = |path: &[&str]| {
        field(path)
            .and_then(parse_u256)
            .ok_or_else(|| bad(&format!(".{}", path.join("."))))
    };
    let signature = payment
        .payload
        .get("signature")
        .and_then(Value::as_str)
        .and_then(parse_hex_bytes)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Verdict::invalid(
                Reason::InvalidPayload,
                "payload.signature is missing or malformed",
                payer.clone(),
            )
        })?;
    Ok(Permit2Payment {
        from: address(&["from"])?,
        token: address(&["permitted", "token"])?,
        amount: number(&["permitted", "amount"])?,
        spender: address(&["spender"])?,
        nonce: number(&["nonce"])?,
        deadline: number(&["deadline"])?,
        to: address(&["witness", "to"])?,
        valid_after: number(&["witness", "validAfter"])?,
        signature,
        eip2612: eip2612::extension_of(payment),
    })
}

/// What the checks without the node established about a Permit2 payment.
pub(crate) struct Permit2Local {
    pub(crate) permit: Permit2Payment,
    pub(crate) payer: String,
    /// The EIP-712 digest the payer signed.
    pub(crate) digest: B256,
    /// The signature without an ERC-6492 wrapping (Permit2 never deploys a wallet).
    pub(crate) inner_signature: Vec<u8>,
    /// Whether the signature recovers to `from` (Permit2 then accepts it if `from` has no code).
    pub(crate) eoa_valid: bool,
    /// The proxy call that settles the payment (`settleWithPermit` with an EIP-2612 permit).
    pub(crate) calldata: Bytes,
}

impl EvmChain {
    /// Every check of a Permit2 payment that needs no node, in the reference's order.
    pub(crate) fn permit2_local_checks(
        &self,
        payment: &Payment,
        mut permit: Permit2Payment,
    ) -> Result<Permit2Local, Verdict> {
        if !self.eip2612_sponsoring {
            // An operator who does not sponsor approvals reads the payment without it.
            permit.eip2612 = None;
        }
        let payer = permit.from.to_checksum(None);
        let refuse = |reason: Reason, message: String| refusal(&payer, reason, message);
        if payment.version == X402Version::V1 {
            return Err(refuse(
                Reason::UnsupportedPayloadType,
                "a Permit2 payment is served in x402 v2 only; v1 pays with EIP-3009".into(),
            ));
        }
        if !self.permit2 {
            return Err(refuse(
                Reason::UnsupportedPayloadType,
                format!("Permit2 payments are not served on {}", self.chain_id),
            ));
        }
        let (asset, pay_to) = self.requirement_addresses(payment, &payer)?;
        if permit.spender != EXACT_PROXY {
            return Err(refuse(
                Reason::Permit2InvalidSpender,
                format!("spender must be the x402 exact Permit2 proxy {EXACT_PROXY}"),
            ));
        }
        if permit.to != pay_to {
            return Err(refuse(
                Reason::Permit2RecipientMismatch,
                format!("witness.to is not payTo {pay_to}"),
            ));
        }
        let now = U256::from(now_secs());
        if permit.deadline < now + U256::from(VALID_BEFORE_MARGIN) {
            return Err(refuse(
                Reason::Permit2DeadlineExpired,
                "the permit's deadline has passed".into(),
            ));
        }
        if permit.valid_after > now {
            return Err(refuse(
                Reason::Permit2NotYetValid,
                "witness.validAfter is in the future".into(),
            ));
        }
        let required =
            U256::from_str_radix(payment.requirements.amount.as_str(), 10).map_err(|_| {
                refuse(
                    Reason::InvalidPaymentRequirements,
                    "amount does not fit 256 bits".into(),
                )
            })?;
        if permit.amount != required {
            return Err(refuse(
                Reason::Permit2AmountMismatch,
                format!(
                    "permitted amount {} is not the required {required}",
                    permit.amount
                ),
            ));
        }
        if permit.token != asset {
            return Err(refuse(
                Reason::Permit2TokenMismatch,
                format!("permitted token is not the asset {asset}"),
            ));
        }
        let eip2612 = match &permit.eip2612 {
            None => None,
            Some(extension) => Some(self.eip2612_checks(extension, &permit, &payer)?),
        };
        self.permit2_signed_call(permit, payer, eip2612)
    }

    /// The digest, the EOA recovery (a contract wallet is left to the probe) and the call.
    fn permit2_signed_call(
        &self,
        permit: Permit2Payment,
        payer: String,
        eip2612: Option<Eip2612Permit>,
    ) -> Result<Permit2Local, Verdict> {
        let domain = eip712_domain! {
            name: "Permit2",
            chain_id: self.numeric_chain_id,
            verifying_contract: PERMIT2,
        };
        let permitted = TokenPermissions {
            token: permit.token,
            amount: permit.amount,
        };
        let witness = Witness {
            to: permit.to,
            validAfter: permit.valid_after,
        };
        let message = PermitWitnessTransferFrom {
            permitted: permitted.clone(),
            spender: permit.spender,
            nonce: permit.nonce,
            deadline: permit.deadline,
            witness: witness.clone(),
        };
        let digest = message.eip712_signing_hash(&domain);
        let inner_signature = unwrap_erc6492(&permit.signature).ok_or_else(|| {
            refusal(
                &payer,
                Reason::Permit2InvalidSignature,
                "malformed ERC-6492 signature",
            )
        })?;
        let eoa_valid = recover_signer(&digest, &inner_signature) == Some(permit.from);
        let transfer = PermitTransferFrom {
            permitted,
            nonce: permit.nonce,
            deadline: permit.deadline,
        };
        let signature = Bytes::from(inner_signature.clone());
        let calldata: Bytes = match &eip2612 {
            None => settleCall {
                permit: transfer,
                owner: permit.from,
                witness,
                signature,
            }
            .abi_encode()
            .into(),
            Some(p) => settleWithPermitCall {
                permit2612: p.proxy_argument(),
                permit: transfer,
                owner: permit.from,
                witness,
                signature,
            }
            .abi_encode()
            .into(),
        };
        Ok(Permit2Local {
            permit,
            payer,
            digest,
            inner_signature,
            eoa_valid,
            calldata,
        })
    }
}

/// The signature inside an ERC-6492 wrapping, or the signature itself; `None` when the
/// wrapping is malformed.
pub(crate) fn unwrap_erc6492(signature: &[u8]) -> Option<Vec<u8>> {
    if signature.len() > 32 && signature[signature.len() - 32..] == ERC6492_SUFFIX {
        let wrapped = &signature[..signature.len() - 32];
        let (_, _, inner) = <(Address, Bytes, Bytes)>::abi_decode_params(wrapped).ok()?;
        return Some(inner.to_vec());
    }
    Some(signature.to_vec())
}

/// The transfer a recorded proxy call promises, read back from its calldata.
pub(crate) fn recorded_terms(input: &[u8]) -> Option<(PermitTransferFrom, Address, Witness)> {
    if let Ok(call) = settleCall::abi_decode(input) {
        return Some((call.permit, call.owner, call.witness));
    }
    let call = settleWithPermitCall::abi_decode(input).ok()?;
    Some((call.permit, call.owner, call.witness))
}

/// `nonceBitmap(owner, nonce >> 8)` and the bit of `nonce` in its answer: how Permit2
/// records an unordered nonce as spent.
pub(crate) fn nonce_word_query(owner: Address, nonce: U256) -> (Bytes, U256) {
    let call = nonceBitmapCall {
        owner,
        wordPosition: nonce >> 8,
    };
    let bit = U256::from(1) << (nonce & U256::from(0xff)).to::<usize>();
    (call.abi_encode().into(), bit)
}
