//! JSON Schemas (draft 2020-12, the dialect of OpenAPI 3.1) of the wire types, for the
//! facilitator's OpenAPI document. They live beside the types and are built from the same
//! limits (amount digits, CAIP-2 lengths) and the same reason table, so the document cannot
//! drift from what the parser accepts. The facilitator's OpenAPI test checks the official
//! SDKs' fixtures and the real server's answers against them with a third-party validator.
//!
//! Request schemas describe what a client should send; the parser also accepts a few
//! things they leave out (a missing top-level `x402Version` when the payload has one, an
//! unknown version, which gets a protocol refusal), and it ignores fields it does not know,
//! as the schemas do (no `additionalProperties: false`).

use serde_json::{json, Map, Value};

use crate::amount::MAX_AMOUNT_DIGITS;
use crate::caip2::{NAMESPACE_MAX_LEN, NAMESPACE_MIN_LEN, REFERENCE_MAX_LEN};
use crate::reason::Reason;

/// A `$ref` to another component schema.
pub fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The largest integer a `u64` field takes.
const U64_MAX: u64 = u64::MAX;

fn token_amount() -> Value {
    json!({
        "type": "string",
        "pattern": format!("^[0-9]{{1,{MAX_AMOUNT_DIGITS}}}$"),
        "description": "An amount in the asset's smallest unit, as decimal digits.",
        "examples": ["10000"],
    })
}

fn caip2() -> Value {
    let (min, max, reference) = (NAMESPACE_MIN_LEN, NAMESPACE_MAX_LEN, REFERENCE_MAX_LEN);
    json!({
        "type": "string",
        "pattern": format!(
            "^(eip155:(0|[1-9][0-9]{{0,{}}})|(?!eip155:)[-a-z0-9]{{{min},{max}}}:[-_a-zA-Z0-9]{{1,{reference}}})$",
            reference - 1
        ),
        "description": "A CAIP-2 chain id (`eip155:8453`, `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp`).",
        "examples": ["eip155:84532"],
    })
}

fn reason() -> Value {
    let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    json!({
        "type": "string",
        "enum": codes,
        "description": "Why a payment was refused or not settled (docs/reason-codes.md).",
    })
}

fn string() -> Value {
    json!({"type": "string"})
}

fn object() -> Value {
    json!({"type": "object"})
}

fn version(number: u32) -> Value {
    json!({"type": "integer", "const": number})
}

fn seconds() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": U64_MAX})
}

fn v1_requirements() -> Value {
    json!({
        "type": "object",
        "required": ["scheme", "network", "maxAmountRequired", "resource", "payTo", "maxTimeoutSeconds", "asset"],
        "properties": {
            "scheme": string(),
            "network": {"type": "string", "description": "A v1 network name (`base-sepolia`)."},
            "maxAmountRequired": reference("TokenAmount"),
            "resource": string(),
            "description": string(),
            "mimeType": {"type": ["string", "null"]},
            "outputSchema": {},
            "payTo": string(),
            "maxTimeoutSeconds": seconds(),
            "asset": string(),
            "extra": {},
        },
    })
}

fn v1_payload() -> Value {
    json!({
        "type": "object",
        "required": ["x402Version", "scheme", "network", "payload"],
        "properties": {
            "x402Version": version(1),
            "scheme": string(),
            "network": string(),
            "payload": object(),
        },
    })
}

fn request(version_number: u32, payload: &str, requirements: &str) -> Value {
    json!({
        "type": "object",
        "required": ["x402Version", "paymentPayload", "paymentRequirements"],
        "properties": {
            "x402Version": version(version_number),
            "paymentPayload": reference(payload),
            "paymentRequirements": reference(requirements),
        },
    })
}

fn v2_resource() -> Value {
    json!({
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": string(),
            "description": {"type": ["string", "null"]},
            "mimeType": {"type": ["string", "null"]},
        },
    })
}

fn v2_requirements() -> Value {
    json!({
        "type": "object",
        "required": ["scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds"],
        "properties": {
            "scheme": string(),
            "network": reference("Caip2"),
            "amount": reference("TokenAmount"),
            "asset": string(),
            "payTo": string(),
            "maxTimeoutSeconds": seconds(),
            "extra": {"type": ["object", "null"]},
        },
    })
}

fn v2_payload() -> Value {
    json!({
        "type": "object",
        "required": ["x402Version", "accepted", "payload"],
        "properties": {
            "x402Version": version(2),
            "resource": {"oneOf": [reference("V2ResourceInfo"), {"type": "null"}]},
            "accepted": reference("V2PaymentRequirements"),
            "payload": object(),
            "extensions": {"type": ["object", "null"]},
        },
    })
}

fn verify_response(v2: bool) -> Value {
    let mut properties = json!({
        "isValid": {"type": "boolean"},
        "invalidReason": reference("Reason"),
        "invalidMessage": string(),
        "payer": string(),
    });
    if v2 {
        properties["extensions"] = object();
    }
    json!({"type": "object", "required": ["isValid"], "properties": properties})
}

fn settle_response(v2: bool) -> Value {
    let mut properties = json!({
        "success": {"type": "boolean"},
        "errorReason": reference("Reason"),
        "errorMessage": string(),
        "payer": string(),
        "transaction": {"type": "string", "description": "Empty when nothing was broadcast."},
        "network": {"type": "string", "description": "The network as the request spelled it."},
    });
    if v2 {
        properties["amount"] = reference("TokenAmount");
        properties["extensions"] = object();
    }
    json!({
        "type": "object",
        "required": ["success", "transaction", "network"],
        "properties": properties,
    })
}

fn supported() -> Value {
    json!({
        "type": "object",
        "required": ["kinds", "extensions", "signers"],
        "properties": {
            "kinds": {"type": "array", "items": {
                "type": "object",
                "required": ["x402Version", "scheme", "network"],
                "properties": {
                    "x402Version": {"type": "integer", "enum": [1, 2]},
                    "scheme": string(),
                    "network": string(),
                    "extra": object(),
                },
            }},
            "extensions": {"type": "array", "items": string()},
            "signers": {"type": "object", "additionalProperties": {"type": "array", "items": string()}},
        },
    })
}

/// A request in a version this facilitator does not speak: a protocol answer (200,
/// `invalid_x402_version`), not a 400, so the document lists it as a request.
fn other_version_request() -> Value {
    let other = json!({
        "type": "integer", "minimum": 0, "maximum": u64::MAX, "not": {"enum": [1, 2]},
    });
    json!({
        "description": "Another x402Version (the top-level one decides; without it, the payload's): answered 200 with invalid_x402_version.",
        "type": "object",
        "anyOf": [
            {"required": ["x402Version"], "properties": {"x402Version": other}},
            {
                "required": ["paymentPayload"],
                "properties": {
                    "x402Version": {"type": "null"},
                    "paymentPayload": {
                        "type": "object",
                        "required": ["x402Version"],
                        "properties": {"x402Version": other},
                    },
                },
            },
        ],
    })
}

/// Every wire-type schema by component name.
pub fn components() -> Map<String, Value> {
    let entries = [
        ("TokenAmount", token_amount()),
        ("Caip2", caip2()),
        ("Reason", reason()),
        ("V1PaymentRequirements", v1_requirements()),
        ("V1PaymentPayload", v1_payload()),
        (
            "V1PaymentRequest",
            request(1, "V1PaymentPayload", "V1PaymentRequirements"),
        ),
        ("V2ResourceInfo", v2_resource()),
        ("V2PaymentRequirements", v2_requirements()),
        ("V2PaymentPayload", v2_payload()),
        (
            "V2PaymentRequest",
            request(2, "V2PaymentPayload", "V2PaymentRequirements"),
        ),
        (
            "PaymentRequest",
            json!({"oneOf": [
                reference("V1PaymentRequest"),
                reference("V2PaymentRequest"),
                other_version_request(),
            ]}),
        ),
        ("V1VerifyResponse", verify_response(false)),
        ("V2VerifyResponse", verify_response(true)),
        ("V1SettleResponse", settle_response(false)),
        ("V2SettleResponse", settle_response(true)),
        ("SupportedResponse", supported()),
    ];
    entries
        .into_iter()
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target.clone());
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_names_a_component_and_every_reason_is_listed() {
        let components = components();
        let mut found = Vec::new();
        refs(&Value::Object(components.clone()), &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target.trim_start_matches("#/components/schemas/");
            assert!(components.contains_key(name), "{target}");
        }
        let listed = components["Reason"]["enum"].as_array().unwrap().len();
        assert_eq!(listed, Reason::ALL.len());
    }
}
