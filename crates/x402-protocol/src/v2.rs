//! x402 protocol version 2 wire types (CAIP-2 networks, `accepted`, `amount`).
//!
//! Field names follow the v2 specification exactly; optional fields are omitted when
//! absent; `extra`, `payload` and `extensions` are kept as given so that nothing a
//! client signed or echoed is lost in a round trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::amount::TokenAmount;
use crate::caip2::ChainId;

/// A free-form JSON object (`extra`, `payload`, `extensions`).
pub type JsonObject = Map<String, Value>;

/// The protected resource a payment is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// URL of the resource.
    pub url: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// One way the resource server accepts payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// Scheme name, e.g. `exact`.
    pub scheme: String,
    /// CAIP-2 network.
    pub network: ChainId,
    /// Amount in atomic units.
    pub amount: TokenAmount,
    /// Token address (or other asset id).
    pub asset: String,
    /// Recipient.
    pub pay_to: String,
    /// How long the payment may take.
    #[serde(deserialize_with = "crate::serde_util::whole_number")]
    pub max_timeout_seconds: u64,
    /// Scheme-specific data (EIP-712 domain name and version for exact EVM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<JsonObject>,
}

/// The 402 answer of a resource server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always 2.
    pub x402_version: u32,
    /// Why payment is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: ResourceInfo,
    /// Accepted payment methods.
    pub accepts: Vec<PaymentRequirements>,
    /// Extensions offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<JsonObject>,
}

/// A signed payment as the client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// Protocol version of the payload.
    pub x402_version: u32,
    /// The resource paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The requirements the client chose.
    pub accepted: PaymentRequirements,
    /// Scheme-specific signed data.
    pub payload: JsonObject,
    /// Extensions echoed by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<JsonObject>,
}

/// Body of `POST /verify` and `POST /settle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest {
    /// Protocol version of the request.
    pub x402_version: u32,
    /// The payment.
    pub payment_payload: PaymentPayload,
    /// What the resource server requires.
    pub payment_requirements: PaymentRequirements,
}

/// Body of `POST /verify`.
pub type VerifyRequest = PaymentRequest;
/// Body of `POST /settle`.
pub type SettleRequest = PaymentRequest;

/// Answer of `POST /verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment is valid.
    pub is_valid: bool,
    /// Reason code when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Human-readable detail when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The payer, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Extension data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<JsonObject>,
}

/// Answer of `POST /settle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the payment is settled.
    pub success: bool,
    /// Reason code when not settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Human-readable detail when not settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The payer, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Transaction hash; empty when nothing was broadcast.
    pub transaction: String,
    /// CAIP-2 network.
    pub network: String,
    /// Amount actually settled, when it can differ from the requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Extension data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<JsonObject>,
}

/// One (version, scheme, network) the facilitator serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// Protocol version.
    pub x402_version: u32,
    /// Scheme.
    pub scheme: String,
    /// Network: CAIP-2 for v2 kinds, v1 name for v1 kinds.
    pub network: String,
    /// Scheme-specific data (for example the Solana fee payer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<JsonObject>,
}

/// Answer of `GET /supported`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    /// Served kinds.
    pub kinds: Vec<SupportedKind>,
    /// Implemented extension ids.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Signer addresses by CAIP-2 pattern (`eip155:*`).
    #[serde(default)]
    pub signers: BTreeMap<String, Vec<String>>,
}
