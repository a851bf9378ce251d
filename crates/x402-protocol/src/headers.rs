//! The x402 HTTP transport's headers and the v1 402 body, both versions.
//!
//! A resource server and its clients exchange x402 objects as base64 (standard alphabet,
//! padded) JSON in headers: v2 uses `PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE` and
//! `PAYMENT-RESPONSE`; v1 uses `X-PAYMENT`, `X-PAYMENT-RESPONSE` and a JSON 402 body.
//! Decoding is strict (canonical base64, one JSON document of the right version) and every
//! error names the header and what is wrong with it, so a client can be told exactly why
//! its payment was not read. Pure functions, no I/O.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{v1, v2};

/// v2, server to client: the base64 `PaymentRequired` of a 402.
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// v2, client to server: the base64 `PaymentPayload`.
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// v2, server to client: the base64 settlement answer.
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// v1, client to server: the base64 v1 `PaymentPayload`.
pub const X_PAYMENT: &str = "x-payment";
/// v1, server to client: the base64 v1 settlement answer.
pub const X_PAYMENT_RESPONSE: &str = "x-payment-response";
/// Where the v1 402 answer lives (named in errors like a header).
pub const V1_402_BODY: &str = "402 body";

/// The longest header value (or v1 402 body) read: payments with contract-wallet
/// signatures or Solana transactions are a few KiB; anything near this is not a payment.
pub const MAX_ENCODED_BYTES: usize = 32 * 1024;

/// Why an x402 header (or the v1 402 body) could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header is present but empty.
    #[error("the {part} header is empty")]
    Empty {
        /// Which header.
        part: &'static str,
    },
    /// Larger than [`MAX_ENCODED_BYTES`].
    #[error("the {part} header is {len} bytes long, more than the {limit} accepted")]
    TooLong {
        /// Which header.
        part: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not canonical standard base64.
    #[error("the {part} header is not base64 (standard alphabet, padded): {detail}")]
    NotBase64 {
        /// Which header.
        part: &'static str,
        /// What the decoder saw, with the position.
        detail: String,
    },
    /// Base64, but not one UTF-8 JSON object.
    #[error("the {part} header does not hold a JSON object: {detail}")]
    NotJson {
        /// Which header.
        part: &'static str,
        /// The JSON parser's message.
        detail: String,
    },
    /// A JSON object of another protocol version.
    #[error("the {part} header carries x402Version {found}; it takes version {expected}")]
    WrongVersion {
        /// Which header.
        part: &'static str,
        /// The version this header carries.
        expected: u32,
        /// What was found (`missing` when absent).
        found: String,
    },
    /// The right version, but a field is missing or of the wrong type.
    #[error("the {part} header: {path}: {detail}")]
    Shape {
        /// Which header.
        part: &'static str,
        /// JSON path of the field.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Both payment headers at once: which one counts would be a guess.
    #[error("both PAYMENT-SIGNATURE (v2) and X-PAYMENT (v1) are present; send one")]
    TwoPayments,
    /// Could not be written (never expected for these types).
    #[error("the {part} header could not be written: {detail}")]
    Encode {
        /// Which header.
        part: &'static str,
        /// The serializer's message.
        detail: String,
    },
}

/// A payment header as a resource server receives it, in the version the client chose.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentHeader {
    /// From `X-PAYMENT`.
    V1(v1::PaymentPayload),
    /// From `PAYMENT-SIGNATURE`.
    V2(Box<v2::PaymentPayload>),
}

/// Reads whichever payment header the client sent: `Ok(None)` when neither, an error
/// when one is unreadable or both are present.
pub fn read_payment_header(
    payment_signature: Option<&str>,
    x_payment: Option<&str>,
) -> Result<Option<PaymentHeader>, HeaderError> {
    match (payment_signature, x_payment) {
        (Some(_), Some(_)) => Err(HeaderError::TwoPayments),
        (Some(v2), None) => {
            decode_payment_signature(v2).map(|p| Some(PaymentHeader::V2(Box::new(p))))
        }
        (None, Some(v1)) => decode_x_payment(v1).map(|p| Some(PaymentHeader::V1(p))),
        (None, None) => Ok(None),
    }
}

/// Writes `PAYMENT-REQUIRED`.
pub fn encode_payment_required(value: &v2::PaymentRequired) -> Result<String, HeaderError> {
    encode("PAYMENT-REQUIRED", value)
}

/// Reads `PAYMENT-REQUIRED` (a v2 object).
pub fn decode_payment_required(value: &str) -> Result<v2::PaymentRequired, HeaderError> {
    decode("PAYMENT-REQUIRED", value, Some(2))
}

/// Writes `PAYMENT-SIGNATURE`.
pub fn encode_payment_signature(value: &v2::PaymentPayload) -> Result<String, HeaderError> {
    encode("PAYMENT-SIGNATURE", value)
}

/// Reads `PAYMENT-SIGNATURE` (a v2 payment).
pub fn decode_payment_signature(value: &str) -> Result<v2::PaymentPayload, HeaderError> {
    decode("PAYMENT-SIGNATURE", value, Some(2))
}

/// Writes `PAYMENT-RESPONSE`.
pub fn encode_payment_response(value: &v2::SettleResponse) -> Result<String, HeaderError> {
    encode("PAYMENT-RESPONSE", value)
}

/// Reads `PAYMENT-RESPONSE`.
pub fn decode_payment_response(value: &str) -> Result<v2::SettleResponse, HeaderError> {
    decode("PAYMENT-RESPONSE", value, None)
}

/// Writes `X-PAYMENT`.
pub fn encode_x_payment(value: &v1::PaymentPayload) -> Result<String, HeaderError> {
    encode("X-PAYMENT", value)
}

/// Reads `X-PAYMENT` (a v1 payment).
pub fn decode_x_payment(value: &str) -> Result<v1::PaymentPayload, HeaderError> {
    decode("X-PAYMENT", value, Some(1))
}

/// Writes `X-PAYMENT-RESPONSE`.
pub fn encode_x_payment_response(value: &v1::SettleResponse) -> Result<String, HeaderError> {
    encode("X-PAYMENT-RESPONSE", value)
}

/// Reads `X-PAYMENT-RESPONSE`.
pub fn decode_x_payment_response(value: &str) -> Result<v1::SettleResponse, HeaderError> {
    decode("X-PAYMENT-RESPONSE", value, None)
}

/// Writes the v1 402 body (JSON, not base64).
pub fn encode_v1_payment_required_body(
    value: &v1::PaymentRequired,
) -> Result<Vec<u8>, HeaderError> {
    serde_json::to_vec(value).map_err(|e| HeaderError::Encode {
        part: V1_402_BODY,
        detail: e.to_string(),
    })
}

/// Reads the v1 402 body.
pub fn decode_v1_payment_required_body(body: &[u8]) -> Result<v1::PaymentRequired, HeaderError> {
    check_length(V1_402_BODY, body.len())?;
    typed(V1_402_BODY, body, Some(1))
}

fn encode<T: Serialize>(part: &'static str, value: &T) -> Result<String, HeaderError> {
    let json = serde_json::to_vec(value).map_err(|e| HeaderError::Encode {
        part,
        detail: e.to_string(),
    })?;
    Ok(STANDARD.encode(json))
}

fn check_length(part: &'static str, len: usize) -> Result<(), HeaderError> {
    if len == 0 {
        return Err(HeaderError::Empty { part });
    }
    if len > MAX_ENCODED_BYTES {
        return Err(HeaderError::TooLong {
            part,
            len,
            limit: MAX_ENCODED_BYTES,
        });
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(
    part: &'static str,
    value: &str,
    version: Option<u32>,
) -> Result<T, HeaderError> {
    check_length(part, value.len())?;
    let bytes = STANDARD
        .decode(value.as_bytes())
        .map_err(|e| HeaderError::NotBase64 {
            part,
            detail: base64_detail(&e),
        })?;
    typed(part, &bytes, version)
}

fn typed<T: DeserializeOwned>(
    part: &'static str,
    json: &[u8],
    version: Option<u32>,
) -> Result<T, HeaderError> {
    let value: Value = serde_json::from_slice(json).map_err(|e| HeaderError::NotJson {
        part,
        detail: e.to_string(),
    })?;
    let Value::Object(object) = &value else {
        return Err(HeaderError::NotJson {
            part,
            detail: format!("found {}", kind(&value)),
        });
    };
    if let Some(expected) = version {
        let found = object.get("x402Version");
        if found.and_then(Value::as_u64) != Some(u64::from(expected)) {
            return Err(HeaderError::WrongVersion {
                part,
                expected,
                found: found.map_or_else(|| "missing".to_owned(), Value::to_string),
            });
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| HeaderError::Shape {
        part,
        path: e.path().to_string(),
        detail: e.into_inner().to_string(),
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn base64_detail(error: &base64::DecodeError) -> String {
    match error {
        base64::DecodeError::InvalidByte(at, byte) => {
            format!("byte {byte:#04x} at position {at} is not in the alphabet")
        }
        base64::DecodeError::InvalidLength(len) => {
            format!("{len} symbols cannot end a base64 text (padding missing?)")
        }
        base64::DecodeError::InvalidLastSymbol(at, byte) => {
            format!(
                "the last symbol {byte:#04x} at position {at} has bits set that it cannot carry"
            )
        }
        base64::DecodeError::InvalidPadding => "the padding is wrong or missing".to_owned(),
    }
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
