//! What a route costs, and the 402 objects of both versions built from it.

use x402_protocol::networks;
use x402_protocol::v2::JsonObject;
use x402_protocol::{v1, v2, ChainId, TokenAmount, X402Version};

/// One way a route can be paid: a scheme on a network, an amount of an asset to `pay_to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// Scheme, e.g. `exact` (or `upto`, where the amount is the most a request may cost).
    pub scheme: String,
    /// The network, by CAIP-2 id; v1 clients see its v1 name when it has one.
    pub network: ChainId,
    /// Token address (or other asset id).
    pub asset: String,
    /// Atomic units: the price (`exact`) or the maximum (`upto`).
    pub amount: TokenAmount,
    /// Who receives the payment.
    pub pay_to: String,
    /// How long a payment may take to settle.
    pub max_timeout_seconds: u64,
    /// Scheme data the client needs (for EVM `exact`: the token's EIP-712 `name` and
    /// `version`).
    pub extra: Option<JsonObject>,
}

/// Put into the request's extensions for the handler: who paid, how, and which price.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedPayment {
    /// The client's protocol version.
    pub version: X402Version,
    /// The payer, as the facilitator named it.
    pub payer: Option<String>,
    /// The price the payment chose.
    pub price: Price,
}

/// Put by a handler into its response's extensions to charge less than the price: the
/// amount an `upto` request used, decided after the work was done. Above the payment's
/// maximum is refused (500, nothing charged); for `exact` only the price itself is
/// accepted; zero charges nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge(pub TokenAmount);

/// Which protocol versions a paid route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// v1: `X-PAYMENT`, the 402 JSON body.
    pub v1: bool,
    /// v2: `PAYMENT-SIGNATURE`, the `PAYMENT-REQUIRED` header.
    pub v2: bool,
}

impl Default for Versions {
    fn default() -> Self {
        Versions { v1: true, v2: true }
    }
}

/// A paid route: the prices it accepts and what it tells clients about itself.
#[derive(Debug, Clone)]
pub struct Paywall {
    /// Accepted prices, in the order clients see them.
    pub accepts: Vec<Price>,
    /// What the client pays for.
    pub description: String,
    /// MIME type of the paid answer.
    pub mime_type: Option<String>,
    /// The resource URL named in payments; default: `http://` + `Host` + path.
    pub resource: Option<String>,
    /// v2 extensions offered to clients.
    pub extensions: Option<JsonObject>,
    /// Versions taken.
    pub versions: Versions,
    /// The longest handler answer held back until the payment settles.
    pub max_response_bytes: usize,
}

impl Paywall {
    /// A route paid by `price`, both versions, a 4 MiB answer at most.
    pub fn new(price: Price, description: impl Into<String>) -> Self {
        Paywall {
            accepts: vec![price],
            description: description.into(),
            mime_type: None,
            resource: None,
            extensions: None,
            versions: Versions::default(),
            max_response_bytes: 4 * 1024 * 1024,
        }
    }

    /// The v2 requirement of each price.
    pub(crate) fn v2_requirements(&self) -> Vec<v2::PaymentRequirements> {
        self.accepts.iter().map(v2_requirement).collect()
    }

    /// The v1 requirement of each price whose network has a v1 name (v1 knows no other).
    pub(crate) fn v1_requirements(&self, resource: &str) -> Vec<v1::PaymentRequirements> {
        self.accepts
            .iter()
            .filter_map(|price| self.v1_requirement(price, resource))
            .collect()
    }

    /// The v1 requirement of one price, when its network has a v1 name.
    pub(crate) fn v1_requirement(
        &self,
        price: &Price,
        resource: &str,
    ) -> Option<v1::PaymentRequirements> {
        let known = networks::by_chain_id(&price.network)?;
        Some(v1::PaymentRequirements {
            scheme: price.scheme.clone(),
            network: known.v1_name.to_owned(),
            max_amount_required: price.amount.clone(),
            resource: resource.to_owned(),
            description: self.description.clone(),
            mime_type: self.mime_type.clone(),
            output_schema: None,
            pay_to: price.pay_to.clone(),
            max_timeout_seconds: price.max_timeout_seconds,
            asset: price.asset.clone(),
            extra: price.extra.clone().map(serde_json::Value::Object),
        })
    }

    /// The v2 `PaymentRequired` with `error`.
    pub(crate) fn payment_required_v2(&self, resource: &str, error: &str) -> v2::PaymentRequired {
        v2::PaymentRequired {
            x402_version: 2,
            error: Some(error.to_owned()),
            resource: v2::ResourceInfo {
                url: resource.to_owned(),
                description: Some(self.description.clone()),
                mime_type: self.mime_type.clone(),
            },
            accepts: self.v2_requirements(),
            extensions: self.extensions.clone(),
        }
    }

    /// The v1 402 body with `error`.
    pub(crate) fn payment_required_v1(&self, resource: &str, error: &str) -> v1::PaymentRequired {
        v1::PaymentRequired {
            x402_version: 1,
            error: Some(error.to_owned()),
            accepts: self.v1_requirements(resource),
        }
    }

    /// The price a v2 payment chose: its `accepted` names one of ours. What is compared is
    /// what decides the payment (scheme, network, amount, asset, recipient); the
    /// facilitator is then given our requirement, never the client's copy.
    pub(crate) fn match_v2(&self, accepted: &v2::PaymentRequirements) -> Option<&Price> {
        self.accepts.iter().find(|price| {
            price.scheme == accepted.scheme
                && price.network == accepted.network
                && price.amount == accepted.amount
                && same_address(&price.asset, &accepted.asset)
                && same_address(&price.pay_to, &accepted.pay_to)
        })
    }

    /// The price a v1 payment chose: v1 payments name only scheme and network.
    pub(crate) fn match_v1(&self, payment: &v1::PaymentPayload) -> Option<&Price> {
        let network = networks::by_v1_name(&payment.network)?.chain_id();
        self.accepts
            .iter()
            .find(|price| price.scheme == payment.scheme && price.network == network)
    }
}

/// The v2 requirement of one price.
pub(crate) fn v2_requirement(price: &Price) -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: price.scheme.clone(),
        network: price.network.clone(),
        amount: price.amount.clone(),
        asset: price.asset.clone(),
        pay_to: price.pay_to.clone(),
        max_timeout_seconds: price.max_timeout_seconds,
        extra: price.extra.clone(),
    }
}

/// EVM addresses compare without case (checksums are a display form); other chains'
/// addresses are case-sensitive, but a `0x` hex string compared without case is still
/// the same bytes.
fn same_address(ours: &str, theirs: &str) -> bool {
    if ours.starts_with("0x") && theirs.starts_with("0x") {
        ours.eq_ignore_ascii_case(theirs)
    } else {
        ours == theirs
    }
}
