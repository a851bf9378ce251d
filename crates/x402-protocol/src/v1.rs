//! x402 protocol version 1 wire types (network names, `maxAmountRequired`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::amount::TokenAmount;
use crate::v2::JsonObject;

/// One way the resource server accepts payment, v1 shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// Scheme name, e.g. `exact`.
    pub scheme: String,
    /// v1 network name, e.g. `base-sepolia`.
    pub network: String,
    /// Amount in atomic units (v1 exact accepts payments of at least this much).
    pub max_amount_required: TokenAmount,
    /// URL of the resource.
    pub resource: String,
    /// Description of the resource.
    #[serde(default)]
    pub description: String,
    /// MIME type of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// JSON schema of the response; `null` is kept as `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::keep_null"
    )]
    pub output_schema: Option<Value>,
    /// Recipient.
    pub pay_to: String,
    /// How long the payment may take.
    #[serde(deserialize_with = "crate::serde_util::whole_number")]
    pub max_timeout_seconds: u64,
    /// Token address.
    pub asset: String,
    /// Scheme-specific data; `null` is kept as `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::keep_null"
    )]
    pub extra: Option<Value>,
}

/// The 402 answer of a resource server, v1 shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always 1.
    pub x402_version: u32,
    /// Why payment is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Accepted payment methods.
    pub accepts: Vec<PaymentRequirements>,
}

/// A signed payment, v1 shape (the decoded `X-PAYMENT` header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// Protocol version of the payload.
    pub x402_version: u32,
    /// Scheme.
    pub scheme: String,
    /// v1 network name.
    pub network: String,
    /// Scheme-specific signed data.
    pub payload: JsonObject,
}

/// Body of `POST /verify` and `POST /settle`, v1 shape.
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

/// Answer of `POST /verify`, v1 shape.
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
}

/// Answer of `POST /settle`, v1 shape.
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
    /// v1 network name.
    pub network: String,
}
