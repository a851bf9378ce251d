//! The version-neutral view of a payment that chain code works on.
//!
//! Versions are handled once, here at the edge: a v1 or v2 request becomes a
//! [`Payment`], chain crates judge it, and their [`Verdict`] / [`Settlement`] is
//! written back in the shape of the request's version. Chain code is never written
//! twice for v1 and v2.

use serde_json::Value;

use crate::amount::TokenAmount;
use crate::caip2::ChainId;
use crate::envelope::{VersionedRequest, X402Version};
use crate::networks;
use crate::reason::Reason;
use crate::v2::JsonObject;
use crate::{v1, v2};

impl Requirements {
    /// The version-neutral form of (v2, or v1 mapped to v2) requirements.
    fn of(r: &v2::PaymentRequirements) -> Requirements {
        Requirements {
            amount: r.amount.clone(),
            asset: r.asset.clone(),
            pay_to: r.pay_to.clone(),
            max_timeout_seconds: r.max_timeout_seconds,
            extra: r.extra.clone(),
        }
    }
}

/// Requirements in version-neutral form.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirements {
    /// Required amount in atomic units.
    pub amount: TokenAmount,
    /// Token address.
    pub asset: String,
    /// Recipient.
    pub pay_to: String,
    /// Longest time the payment may take.
    pub max_timeout_seconds: u64,
    /// Scheme-specific data.
    pub extra: Option<JsonObject>,
}

impl Requirements {
    /// The latest Unix time a payment for these requirements may stay valid until: `now`
    /// plus `maxTimeoutSeconds` plus `slack`, saturating. `maxTimeoutSeconds` comes from the
    /// caller: `u64::MAX` must neither wrap (and accept the wrong payments) nor panic.
    pub fn latest_valid_until(&self, now: u64, slack: u64) -> u64 {
        now.saturating_add(self.max_timeout_seconds)
            .saturating_add(slack)
    }
}

/// Whether `scheme`'s `amount` is phase-dependent, as the spec defines `upto`: the maximum
/// the payer authorizes at verify, the amount to charge at settle. Its `accepted.amount` may
/// then differ from the settle request's, and a settle may charge nothing (sending nothing).
pub fn amount_is_a_maximum(scheme: &str) -> bool {
    scheme == "upto"
}

/// A payment to verify or settle, whatever version it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    /// The version of the request (decides the answer's shape and amount rule).
    pub version: X402Version,
    /// Network of the requirements.
    pub network: ChainId,
    /// The network exactly as the request spelled it, echoed in answers.
    pub network_label: String,
    /// Scheme of the requirements.
    pub scheme: String,
    /// Scheme the payload claims.
    pub payload_scheme: String,
    /// Network the payload claims; `None` when it names no known network.
    pub payload_network: Option<ChainId>,
    /// What must be paid.
    pub requirements: Requirements,
    /// The scheme-specific signed data.
    pub payload: JsonObject,
    /// v2 extensions the client echoed.
    pub extensions: Option<JsonObject>,
    /// The resource paid for (v1 `resource`, v2 `paymentPayload.resource.url`; empty when
    /// the request names none): part of the request's identity.
    pub resource: String,
}

const DIGEST_PREFIX: &str = "r2:";

/// SHA-256 over length-prefixed parts (no two splits give the same bytes), hex.
fn digest_of(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a digest the ledger recorded is the one of this request
/// ([`Payment::request_digest`]): exactly, or, for an entry an earlier release wrote
/// (without the `r2:` prefix), by its legacy part.
pub fn digest_matches(recorded: &str, current: &str) -> bool {
    if recorded.starts_with(DIGEST_PREFIX) {
        return recorded == current;
    }
    current
        .rsplit_once(':')
        .is_some_and(|(_, legacy)| legacy == recorded)
}

/// Whether `text` has the shape of a [`Payment::request_digest`] of this release
/// (`r2:` and two SHA-256 digests in lower-case hex, colon between): callers name a
/// settlement by it, so its shape is checked before any store is asked.
pub fn is_request_digest(text: &str) -> bool {
    let is_hash = |part: &str| {
        part.len() == 64
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    text.strip_prefix(DIGEST_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(whole, legacy)| is_hash(whole) && is_hash(legacy))
}

/// A refusal before any chain code runs (unknown v1 network and the like).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Reason code.
    pub reason: Reason,
    /// Detail for humans.
    pub message: String,
    /// The network as the request spelled it.
    pub network_label: String,
}

impl Payment {
    /// The identity of the request, as the ledger records it: a retry of the identical
    /// request matches, while the same signed payload sent for another resource, under
    /// another version or with other requirements does not (one payment pays for one
    /// request). `r2:<sha256 of the whole request>:<legacy digest>`, hex; the legacy part
    /// (payload, network, amount, asset, payee) lets entries written by earlier releases be
    /// matched (see [`digest_matches`]). Stable across builds: instances of different
    /// releases sharing a ledger compare it.
    pub fn request_digest(&self) -> String {
        let payload = serde_json::to_string(&self.payload).unwrap_or_default();
        let legacy = digest_of(&[
            payload.as_str(),
            self.network.as_str(),
            self.requirements.amount.as_str(),
            &self.requirements.asset.to_ascii_lowercase(),
            &self.requirements.pay_to.to_ascii_lowercase(),
        ]);
        let extra = serde_json::to_string(&self.requirements.extra).unwrap_or_default();
        let extensions = serde_json::to_string(&self.extensions).unwrap_or_default();
        let timeout = self.requirements.max_timeout_seconds.to_string();
        let whole = digest_of(&[
            legacy.as_str(),
            self.version.label(),
            self.scheme.as_str(),
            self.payload_scheme.as_str(),
            self.resource.as_str(),
            timeout.as_str(),
            extra.as_str(),
            extensions.as_str(),
        ]);
        format!("{DIGEST_PREFIX}{whole}:{legacy}")
    }

    /// Normalises a parsed request.
    pub fn from_request(request: &VersionedRequest) -> Result<Payment, Refusal> {
        match request {
            VersionedRequest::V1(r) => Self::from_v1(r),
            VersionedRequest::V2(r) => Ok(Self::from_v2(r)),
        }
    }

    fn from_v2(r: &v2::PaymentRequest) -> Payment {
        let req = &r.payment_requirements;
        Payment {
            version: X402Version::V2,
            network: req.network.clone(),
            network_label: req.network.to_string(),
            scheme: req.scheme.clone(),
            payload_scheme: r.payment_payload.accepted.scheme.clone(),
            payload_network: Some(r.payment_payload.accepted.network.clone()),
            requirements: Requirements::of(req),
            payload: r.payment_payload.payload.clone(),
            extensions: r.payment_payload.extensions.clone(),
            resource: r
                .payment_payload
                .resource
                .as_ref()
                .map(|info| info.url.clone())
                .unwrap_or_default(),
        }
    }

    /// A v1 request, read through the one v1 → v2 mapping
    /// ([`crate::convert::requirements_v1_to_v2`]) that shadow mode uses too.
    fn from_v1(r: &v1::PaymentRequest) -> Result<Payment, Refusal> {
        let req = &r.payment_requirements;
        let (requirements, resource) =
            crate::convert::requirements_v1_to_v2(req).map_err(|_| Refusal {
                reason: Reason::InvalidNetwork,
                message: format!("unknown v1 network name {:?}", req.network),
                network_label: req.network.clone(),
            })?;
        // An unknown payload network is the scheme's refusal (network mismatch), with
        // the payer named, not an unreadable request.
        let payload_network =
            networks::by_v1_name(&r.payment_payload.network).map(|k| k.chain_id());
        Ok(Payment {
            version: X402Version::V1,
            network: requirements.network.clone(),
            network_label: req.network.clone(),
            scheme: requirements.scheme.clone(),
            payload_scheme: r.payment_payload.scheme.clone(),
            payload_network,
            requirements: Requirements::of(&requirements),
            payload: r.payment_payload.payload.clone(),
            extensions: None,
            resource: resource.url,
        })
    }
}

/// The outcome of a verification, version-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the payment is valid.
    pub is_valid: bool,
    /// Reason when invalid.
    pub reason: Option<Reason>,
    /// Detail when invalid.
    pub message: Option<String>,
    /// The payer, when known.
    pub payer: Option<String>,
}

impl Verdict {
    /// A valid payment by `payer`.
    pub fn valid(payer: impl Into<String>) -> Self {
        Verdict {
            is_valid: true,
            reason: None,
            message: None,
            payer: Some(payer.into()),
        }
    }

    /// A refused payment.
    pub fn invalid(reason: Reason, message: impl Into<String>, payer: Option<String>) -> Self {
        Verdict {
            is_valid: false,
            reason: Some(reason),
            message: Some(message.into()),
            payer,
        }
    }

    /// The answer in v1 shape.
    pub fn to_v1(&self) -> v1::VerifyResponse {
        v1::VerifyResponse {
            is_valid: self.is_valid,
            invalid_reason: self.reason.map(|r| r.as_str().to_owned()),
            invalid_message: self.message.clone(),
            payer: self.payer.clone(),
        }
    }

    /// The answer in v2 shape.
    pub fn to_v2(&self) -> v2::VerifyResponse {
        v2::VerifyResponse {
            is_valid: self.is_valid,
            invalid_reason: self.reason.map(|r| r.as_str().to_owned()),
            invalid_message: self.message.clone(),
            payer: self.payer.clone(),
            extensions: None,
        }
    }

    /// The answer as JSON in the shape of `version`.
    pub fn to_json(&self, version: X402Version) -> Value {
        let value = match version {
            X402Version::V1 => serde_json::to_value(self.to_v1()),
            X402Version::V2 => serde_json::to_value(self.to_v2()),
        };
        value.unwrap_or(Value::Null)
    }
}

/// The outcome of a settlement, version-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// Whether the payment is settled on chain.
    pub success: bool,
    /// Reason when not settled.
    pub reason: Option<Reason>,
    /// Detail when not settled.
    pub message: Option<String>,
    /// The payer, when known.
    pub payer: Option<String>,
    /// Transaction hash; empty only when nothing was broadcast.
    pub transaction: String,
    /// The amount settled, answered in v2 where the scheme lets it differ from the
    /// requirement (`upto`); `None` elsewhere.
    pub amount: Option<String>,
}

impl Settlement {
    /// A confirmed settlement.
    pub fn settled(payer: impl Into<String>, transaction: impl Into<String>) -> Self {
        Settlement {
            success: true,
            reason: None,
            message: None,
            payer: Some(payer.into()),
            transaction: transaction.into(),
            amount: None,
        }
    }

    /// A refusal or failure; `transaction` is the hash when something was broadcast.
    pub fn failed(
        reason: Reason,
        message: impl Into<String>,
        payer: Option<String>,
        transaction: impl Into<String>,
    ) -> Self {
        Settlement {
            success: false,
            reason: Some(reason),
            message: Some(message.into()),
            payer,
            transaction: transaction.into(),
            amount: None,
        }
    }

    /// A settlement refused because the payment failed verification.
    pub fn from_verdict(verdict: Verdict) -> Self {
        Settlement {
            success: false,
            reason: verdict.reason.or(Some(Reason::InvalidPayload)),
            message: verdict.message,
            payer: verdict.payer,
            transaction: String::new(),
            amount: None,
        }
    }

    /// The answer in v1 shape.
    pub fn to_v1(&self, network_label: &str) -> v1::SettleResponse {
        v1::SettleResponse {
            success: self.success,
            error_reason: self.reason.map(|r| r.as_str().to_owned()),
            error_message: self.message.clone(),
            payer: self.payer.clone(),
            transaction: self.transaction.clone(),
            network: network_label.to_owned(),
        }
    }

    /// The answer in v2 shape.
    pub fn to_v2(&self, network_label: &str) -> v2::SettleResponse {
        v2::SettleResponse {
            success: self.success,
            error_reason: self.reason.map(|r| r.as_str().to_owned()),
            error_message: self.message.clone(),
            payer: self.payer.clone(),
            transaction: self.transaction.clone(),
            network: network_label.to_owned(),
            amount: self.amount.clone(),
            extensions: None,
        }
    }

    /// The answer as JSON in the shape of `version`.
    pub fn to_json(&self, version: X402Version, network_label: &str) -> Value {
        let value = match version {
            X402Version::V1 => serde_json::to_value(self.to_v1(network_label)),
            X402Version::V2 => serde_json::to_value(self.to_v2(network_label)),
        };
        value.unwrap_or(Value::Null)
    }
}
