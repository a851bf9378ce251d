//! Version detection for facilitator request bodies.
//!
//! One endpoint serves both protocol versions, so the body's `x402Version` (top level,
//! and inside `paymentPayload`) picks the typed shape it is parsed into. Any failure
//! names the JSON path of the offending field, so a caller can fix its request.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{v1, v2};

/// The protocol versions this crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum X402Version {
    /// Network names, `maxAmountRequired`.
    V1,
    /// CAIP-2 networks, `accepted`, `amount`, extensions.
    V2,
}

impl X402Version {
    /// The number on the wire.
    pub fn number(self) -> u32 {
        match self {
            X402Version::V1 => 1,
            X402Version::V2 => 2,
        }
    }

    /// The label used in logs and metrics (`"1"`, `"2"`).
    pub fn label(self) -> &'static str {
        match self {
            X402Version::V1 => "1",
            X402Version::V2 => "2",
        }
    }

    /// Maps a wire number to a version.
    pub fn from_number(n: u64) -> Option<Self> {
        match n {
            1 => Some(X402Version::V1),
            2 => Some(X402Version::V2),
            _ => None,
        }
    }
}

/// A request body parsed into the shape of its version.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionedRequest {
    /// A v1 body.
    V1(Box<v1::PaymentRequest>),
    /// A v2 body.
    V2(Box<v2::PaymentRequest>),
}

impl VersionedRequest {
    /// The version of the body.
    pub fn version(&self) -> X402Version {
        match self {
            VersionedRequest::V1(_) => X402Version::V1,
            VersionedRequest::V2(_) => X402Version::V2,
        }
    }
}

/// Why a body could not be read as a request of any version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON at all.
    #[error("request body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but no version could be found.
    #[error("x402Version is missing; expected 1 or 2")]
    MissingVersion,
    /// The version is not an integer.
    #[error("x402Version must be an integer")]
    VersionNotInteger {
        /// Path of the field.
        field: &'static str,
    },
    /// The top-level and payload versions disagree.
    #[error("x402Version is {top} but paymentPayload.x402Version is {payload}; they must match")]
    VersionMismatch {
        /// Top-level version.
        top: u64,
        /// Version inside the payment payload.
        payload: u64,
    },
    /// A version number this facilitator has never heard of.
    #[error("x402Version {0} is not a known protocol version; expected 1 or 2")]
    UnknownVersion(u64),
    /// The body does not fit the shape of its version.
    #[error("invalid x402 v{version} request at {field}: {message}")]
    Invalid {
        /// The detected version.
        version: u32,
        /// JSON path of the offending field (`paymentRequirements.network`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl EnvelopeError {
    /// The JSON path the error is about, when there is one.
    pub fn field(&self) -> Option<String> {
        match self {
            EnvelopeError::NotJson(_) => None,
            EnvelopeError::MissingVersion | EnvelopeError::UnknownVersion(_) => {
                Some("x402Version".into())
            }
            EnvelopeError::VersionNotInteger { field } => Some((*field).into()),
            EnvelopeError::VersionMismatch { .. } => Some("paymentPayload.x402Version".into()),
            EnvelopeError::Invalid { field, .. } => Some(field.clone()),
        }
    }

    /// Whether the failure is a malformed CAIP-2 network id (counted and alerted on).
    pub fn is_caip2(&self) -> bool {
        matches!(self, EnvelopeError::Invalid { message, .. } if message.contains("CAIP-2 parsing failed"))
    }
}

/// A version number as JSON may write it: `2` or `2.0` (JSON Schema calls both integers).
fn version_at(value: Option<&Value>, field: &'static str) -> Result<Option<u64>, EnvelopeError> {
    const LIMIT: f64 = 18_446_744_073_709_551_616.0; // 2^64
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match (v.as_u64(), v.as_f64()) {
            (Some(n), _) => Ok(Some(n)),
            (None, Some(f)) if v.is_f64() && f.fract() == 0.0 && (0.0..LIMIT).contains(&f) => {
                Ok(Some(f as u64))
            }
            _ => Err(EnvelopeError::VersionNotInteger { field }),
        },
    }
}

/// Detects the protocol version of a parsed body.
///
/// The top-level `x402Version` wins when present: a version we do not speak is named as
/// such whatever the payload says, and a payload version that disagrees with a known one is
/// refused rather than guessed at.
pub fn detect_version(body: &Value) -> Result<X402Version, EnvelopeError> {
    let top = version_at(body.get("x402Version"), "x402Version")?;
    if let Some(t) = top.filter(|t| X402Version::from_number(*t).is_none()) {
        return Err(EnvelopeError::UnknownVersion(t));
    }
    let inner = version_at(
        body.get("paymentPayload")
            .and_then(|p| p.get("x402Version")),
        "paymentPayload.x402Version",
    )?;
    let number = match (top, inner) {
        (Some(t), Some(p)) if t != p => {
            return Err(EnvelopeError::VersionMismatch { top: t, payload: p })
        }
        (Some(t), _) => t,
        (None, Some(p)) => p,
        (None, None) => return Err(EnvelopeError::MissingVersion),
    };
    X402Version::from_number(number).ok_or(EnvelopeError::UnknownVersion(number))
}

fn typed<T: DeserializeOwned>(body: Value, version: u32) -> Result<T, EnvelopeError> {
    serde_path_to_error::deserialize(body).map_err(|err| {
        let field = err.path().to_string();
        let field = if field == "." { String::new() } else { field };
        EnvelopeError::Invalid {
            version,
            field,
            message: err.into_inner().to_string(),
        }
    })
}

/// Parses a `/verify` or `/settle` body into the shape of its version.
pub fn parse_request(bytes: &[u8]) -> Result<VersionedRequest, EnvelopeError> {
    let body: Value =
        serde_json::from_slice(bytes).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    parse_request_value(body)
}

/// Like [`parse_request`], for a body already parsed as JSON.
pub fn parse_request_value(body: Value) -> Result<VersionedRequest, EnvelopeError> {
    if !body.is_object() {
        return Err(EnvelopeError::Invalid {
            version: 0,
            field: String::new(),
            message: "request body must be a JSON object".into(),
        });
    }
    let version = detect_version(&body)?;
    let mut body = body;
    // `2.0` read as 2 by the detection is written as 2 for the typed read too.
    let number = Value::from(version.number());
    if body.get("x402Version").is_some_and(Value::is_f64) {
        body["x402Version"] = number.clone();
    }
    if let Some(payload) = body.get_mut("paymentPayload").filter(|p| p.is_object()) {
        if payload.get("x402Version").is_some_and(Value::is_f64) {
            payload["x402Version"] = number;
        }
    }
    match version {
        X402Version::V1 => typed(body, 1).map(|r| VersionedRequest::V1(Box::new(r))),
        X402Version::V2 => typed(body, 2).map(|r| VersionedRequest::V2(Box::new(r))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v2_body() -> Value {
        let req = json!({
            "scheme": "exact", "network": "eip155:84532", "amount": "10000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}
        });
        json!({
            "x402Version": 2,
            "paymentPayload": {"x402Version": 2, "accepted": req, "payload": {"signature": "0x"}},
            "paymentRequirements": req
        })
    }

    fn v1_body() -> Value {
        json!({
            "x402Version": 1,
            "paymentPayload": {"x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": {}},
            "paymentRequirements": {
                "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "10000",
                "resource": "https://x/y", "description": "", "mimeType": "application/json",
                "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
            }
        })
    }

    #[test]
    fn detects_both_versions() {
        let v2 = parse_request(v2_body().to_string().as_bytes()).unwrap();
        assert_eq!(v2.version(), X402Version::V2);
        let v1 = parse_request(v1_body().to_string().as_bytes()).unwrap();
        assert_eq!(v1.version(), X402Version::V1);
        // `2.0` is the integer 2 in JSON Schema: read as v2 everywhere, not only detected.
        let mut whole = v2_body();
        whole["x402Version"] = json!(2.0);
        whole["paymentPayload"]["x402Version"] = json!(2.0);
        let parsed = parse_request_value(whole).unwrap();
        assert_eq!(parsed, v2);
    }

    #[test]
    fn payload_version_is_used_when_top_level_is_missing() {
        let mut body = v2_body();
        body.as_object_mut().unwrap().remove("x402Version");
        assert_eq!(detect_version(&body), Ok(X402Version::V2));
    }

    #[test]
    fn mismatch_is_refused() {
        let mut body = v1_body();
        body["x402Version"] = json!(2);
        assert_eq!(
            parse_request_value(body),
            Err(EnvelopeError::VersionMismatch { top: 2, payload: 1 })
        );
    }

    #[test]
    fn v1_body_labelled_v2_names_the_missing_field() {
        let mut body = v1_body();
        body["x402Version"] = json!(2);
        body["paymentPayload"]["x402Version"] = json!(2);
        let err = parse_request_value(body).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("paymentPayload"));
        assert!(err.to_string().contains("accepted"), "{err}");
    }

    #[test]
    fn bad_caip2_is_flagged_with_its_path() {
        let mut body = v2_body();
        body["paymentRequirements"]["network"] = json!("base-sepolia");
        let err = parse_request_value(body).unwrap_err();
        assert!(err.is_caip2());
        assert_eq!(err.field().as_deref(), Some("paymentRequirements.network"));
    }

    #[test]
    fn other_failures() {
        assert!(matches!(
            parse_request(b"{"),
            Err(EnvelopeError::NotJson(_))
        ));
        assert_eq!(parse_request(b"{}"), Err(EnvelopeError::MissingVersion));
        assert_eq!(
            parse_request(br#"{"x402Version":"2"}"#),
            Err(EnvelopeError::VersionNotInteger {
                field: "x402Version"
            })
        );
        assert_eq!(
            parse_request(br#"{"x402Version":3}"#),
            Err(EnvelopeError::UnknownVersion(3))
        );
        // The top-level version decides: an unknown one is named whatever the payload says.
        for body in [
            r#"{"x402Version":3,"paymentPayload":{"x402Version":651}}"#,
            r#"{"x402Version":3.0,"paymentPayload":{"x402Version":"x"}}"#,
            r#"{"x402Version":3,"paymentPayload":5}"#,
        ] {
            assert_eq!(
                parse_request(body.as_bytes()),
                Err(EnvelopeError::UnknownVersion(3)),
                "{body}"
            );
        }
        assert_eq!(
            parse_request(br#"{"paymentPayload":{"x402Version":0}}"#),
            Err(EnvelopeError::UnknownVersion(0))
        );
        assert_eq!(
            parse_request(br#"{"x402Version":2,"paymentPayload":{"x402Version":1}}"#),
            Err(EnvelopeError::VersionMismatch { top: 2, payload: 1 })
        );
        for not_whole in ["2.5", "-1", "1e30", "true"] {
            let body = format!(r#"{{"x402Version":{not_whole}}}"#);
            assert_eq!(
                parse_request(body.as_bytes()),
                Err(EnvelopeError::VersionNotInteger {
                    field: "x402Version"
                }),
                "{body}"
            );
        }
        assert!(matches!(
            parse_request(b"[1]"),
            Err(EnvelopeError::Invalid { .. })
        ));
        let mut body = v2_body();
        body["paymentRequirements"]["amount"] = json!("-5");
        let err = parse_request_value(body).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("paymentRequirements.amount"));
    }
}
