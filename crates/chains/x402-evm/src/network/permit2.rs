//! Payments signed for Permit2, the way of `exact` for tokens without EIP-3009
//! (`assetTransferMethod: permit2`) and the only way of `upto`: the payer signs a Permit2
//! `PermitWitnessTransferFrom` whose spender is the scheme's x402 proxy and whose witness
//! names `payTo` (and, for `upto`, the facilitator that may settle it). Everything that needs
//! no node is checked here, in the reference's order with its reason codes; the signed
//! message and the proxy calls are [`signed`]; the node's part is one batch ([`probe`]).
//! Settling calls the proxy, which asks Permit2 to move the funds; with the
//! `eip2612GasSponsoring` extension the payer's EIP-2612 permit to Permit2 rides in the same
//! call ([`eip2612`]).

use super::*;

pub(crate) mod eip2612;
pub(crate) mod erc20_approval;
mod probe;
mod relay;
mod signed;
use eip2612::Eip2612Permit;
use erc20_approval::{Erc20ApprovalInfo, SignedApproval};
pub(crate) use relay::ApprovalRelay;
pub(crate) use signed::{nonce_word_query, recorded_terms};

/// The canonical Permit2 contract (the same address on every EVM chain).
pub(crate) const PERMIT2: Address =
    Address::new(alloy::hex!("000000000022D473030F116dDEE9F6B43aC78BA3"));
/// The canonical x402 exact Permit2 proxy, the only spender an `exact` permit may name.
pub(crate) const EXACT_PROXY: Address =
    Address::new(alloy::hex!("402085c248EeA27D92E8b30b2C58ed07f9E20001"));
/// The canonical x402 upto Permit2 proxy, the only spender an `upto` permit may name.
pub(crate) const UPTO_PROXY: Address =
    Address::new(alloy::hex!("4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"));
/// The payload field that marks a Permit2 payment (as the official SDKs tell them apart).
pub(crate) const PAYLOAD_FIELD: &str = "permit2Authorization";

/// The scheme a Permit2 payment is for: which proxy spends it and what its witness holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit2Scheme {
    /// `exact`: the permitted amount moves, to the witness's `to`.
    Exact,
    /// `upto`: the amount the resource server names at settle, at most the permitted one,
    /// sent by the facilitator the witness names.
    Upto,
}

impl Permit2Scheme {
    fn name(self) -> &'static str {
        match self {
            Permit2Scheme::Exact => "exact",
            Permit2Scheme::Upto => "upto",
        }
    }

    /// The proxy the permit must name as spender.
    pub(crate) fn proxy(self) -> Address {
        match self {
            Permit2Scheme::Exact => EXACT_PROXY,
            Permit2Scheme::Upto => UPTO_PROXY,
        }
    }

    /// The scheme's reasons for a payload of another scheme or network.
    fn scheme_reasons(self) -> (Reason, Reason) {
        match self {
            Permit2Scheme::Exact => (Reason::ExactEvmScheme, Reason::ExactEvmNetworkMismatch),
            Permit2Scheme::Upto => (Reason::UptoEvmScheme, Reason::UptoEvmNetworkMismatch),
        }
    }
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
    /// `upto` only: the facilitator that may settle.
    pub(crate) facilitator: Option<Address>,
    pub(crate) valid_after: U256,
    pub(crate) signature: Vec<u8>,
    /// The `eip2612GasSponsoring` extension's permit, when the payment carries one;
    /// `Err` names what is malformed in it.
    pub(crate) eip2612: Option<Result<Eip2612Permit, String>>,
    /// The `erc20ApprovalGasSponsoring` extension's `info`, when the payment carries one
    /// (and no EIP-2612 permit, which the reference prefers); `Err` names what is malformed.
    pub(crate) erc20_approval: Option<Result<Erc20ApprovalInfo, String>>,
}

/// A gas-sponsoring extension's `info` (`eip2612GasSponsoring`, `erc20ApprovalGasSponsoring`),
/// read field by field in the formats both schemas give; each error names the field.
pub(crate) struct ExtensionInfo<'a>(&'a Value);

impl<'a> ExtensionInfo<'a> {
    /// The `info` of the extension `key`, when the payment carries it.
    pub(crate) fn of(payment: &'a Payment, key: &str) -> Option<Self> {
        let info = payment.extensions.as_ref()?.get(key)?.get("info")?;
        Some(ExtensionInfo(info))
    }

    pub(crate) fn text(&self, key: &str) -> Result<&'a str, String> {
        self.0
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("info.{key} is missing"))
    }

    /// A decimal number of at most 256 bits, digits only.
    pub(crate) fn decimal(&self, key: &str) -> Result<U256, String> {
        self.text(key).and_then(|s| {
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            digits
                .then(|| U256::from_str_radix(s, 10).ok())
                .flatten()
                .ok_or_else(|| format!("info.{key} is not a decimal number of 256 bits"))
        })
    }

    /// `version`: dot-separated numbers ("1", "1.2.3").
    pub(crate) fn version(&self) -> Result<(), String> {
        let version = self.text("version")?;
        let numbers = !version.is_empty()
            && version
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        numbers
            .then_some(())
            .ok_or_else(|| "info.version is not a version number".into())
    }

    /// `0x`-prefixed hex bytes.
    pub(crate) fn hex_bytes(&self, key: &str) -> Result<Vec<u8>, String> {
        self.text(key).and_then(|s| {
            s.strip_prefix("0x")
                .and_then(parse_hex_bytes)
                .ok_or_else(|| format!("info.{key} is not hex"))
        })
    }
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
    let signature = payload_signature(payment, payer.clone())?;
    Ok(Permit2Payment {
        from: address(&["from"])?,
        token: address(&["permitted", "token"])?,
        amount: number(&["permitted", "amount"])?,
        spender: address(&["spender"])?,
        nonce: number(&["nonce"])?,
        deadline: number(&["deadline"])?,
        to: address(&["witness", "to"])?,
        facilitator: match field(&["witness", "facilitator"]) {
            None => None,
            Some(_) => Some(address(&["witness", "facilitator"])?),
        },
        valid_after: number(&["witness", "validAfter"])?,
        signature,
        eip2612: eip2612::extension_of(payment),
        erc20_approval: erc20_approval::extension_of(payment),
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
    /// The scheme, whose proxy the settling call goes to.
    pub(crate) scheme: Permit2Scheme,
    /// What the settling call moves: the permitted amount, or for `upto` at settle the
    /// amount the resource server names.
    pub(crate) amount: U256,
    /// The proxy call that settles the payment (`settleWithPermit` with an EIP-2612 permit).
    pub(crate) calldata: Bytes,
    /// The payer's signed approval of Permit2 to relay first, when one came with the payment.
    pub(crate) approval: Option<SignedApproval>,
}

impl EvmChain {
    /// Every check of a Permit2 payment that needs no node, in the reference's order;
    /// `settling` reads an `upto` requirement's amount as the amount to settle.
    pub(crate) fn permit2_local_checks(
        &self,
        payment: &Payment,
        mut permit: Permit2Payment,
        (scheme, settling): (Permit2Scheme, bool),
    ) -> Result<Permit2Local, Verdict> {
        if !self.eip2612_sponsoring {
            // An operator who does not sponsor approvals reads the payment without it.
            permit.eip2612 = None;
        }
        if !self.erc20_approval_sponsoring || permit.eip2612.is_some() {
            // Not relayed here, or an EIP-2612 permit does the approval (the reference's
            // preference when a payment carries both).
            permit.erc20_approval = None;
        }
        let payer = permit.from.to_checksum(None);
        let refuse = |reason: Reason, message: String| refusal(&payer, reason, message);
        if payment.version == X402Version::V1 {
            return Err(refuse(
                Reason::UnsupportedPayloadType,
                "a Permit2 payment is served in x402 v2 only; v1 pays with EIP-3009".into(),
            ));
        }
        if scheme == Permit2Scheme::Exact && !self.permit2 {
            return Err(refuse(
                Reason::UnsupportedPayloadType,
                format!("Permit2 payments are not served on {}", self.chain_id),
            ));
        }
        let (scheme_reason, network_reason) = scheme.scheme_reasons();
        let names = (scheme.name(), scheme_reason, network_reason);
        let (asset, pay_to) = self.requirement_addresses(payment, &payer, names)?;
        if permit.spender != scheme.proxy() {
            return Err(refuse(
                Reason::Permit2InvalidSpender,
                format!(
                    "spender must be the x402 {} Permit2 proxy {}",
                    scheme.name(),
                    scheme.proxy()
                ),
            ));
        }
        if scheme == Permit2Scheme::Upto {
            self.check_upto_facilitator(&permit, &payer)?;
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
        let amount = permit2_amount(&permit, required, (scheme, settling), &payer)?;
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
        let approval = match &permit.erc20_approval {
            None => None,
            Some(extension) => Some(self.erc20_approval_checks(extension, &permit, &payer)?),
        };
        let mut local = self.permit2_signed_call(permit, payer, (scheme, amount), eip2612)?;
        local.approval = approval;
        Ok(local)
    }

    /// The gas-sponsoring extensions a Permit2 scheme lists in `/supported` (none when
    /// the scheme takes no Permit2 payment here, `served` false).
    pub(crate) fn permit2_extensions(&self, served: bool) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if served && self.eip2612_sponsoring {
            keys.push(eip2612::EXTENSION_KEY);
        }
        if served && self.erc20_approval_sponsoring {
            keys.push(erc20_approval::EXTENSION_KEY);
        }
        keys
    }

    /// `upto`: the witness must name one of this network's signers, which alone can settle.
    fn check_upto_facilitator(&self, permit: &Permit2Payment, payer: &str) -> Result<(), Verdict> {
        if permit.facilitator.and_then(|f| self.signer_at(f)).is_some() {
            return Ok(());
        }
        Err(refusal(
            payer,
            Reason::UptoFacilitatorMismatch,
            "witness.facilitator is not a signer of this facilitator (see /supported extra.facilitatorAddress)",
        ))
    }
}

/// The amount a Permit2 payment moves. `exact`, and `upto` at verify: the permitted
/// amount, which must be the required one. `upto` at settle: the required amount, at most
/// the permitted one.
fn permit2_amount(
    permit: &Permit2Payment,
    required: U256,
    (scheme, settling): (Permit2Scheme, bool),
    payer: &str,
) -> Result<U256, Verdict> {
    if scheme == Permit2Scheme::Upto && settling {
        if required > permit.amount {
            return Err(refusal(
                payer,
                Reason::UptoSettlementExceedsAmount,
                format!(
                    "the amount to settle {required} is above the authorized {}",
                    permit.amount
                ),
            ));
        }
        return Ok(required);
    }
    if permit.amount != required {
        return Err(refusal(
            payer,
            Reason::Permit2AmountMismatch,
            format!(
                "permitted amount {} is not the required {required}",
                permit.amount
            ),
        ));
    }
    Ok(required)
}

/// The payment's identity in the ledger: payer and permit nonce. Permit2 spends a nonce
/// once per owner, whatever the token or proxy, so one key serves both schemes; the prefix
/// keeps it apart from EIP-3009 keys (which start with the asset).
pub(crate) fn payment_key(permit: &Permit2Payment) -> String {
    format!("{KEY_PREFIX}{:#x}/{:#x}", permit.from, permit.nonce)
}

/// How a Permit2 payment's ledger key begins.
pub(crate) const KEY_PREFIX: &str = "permit2/";
