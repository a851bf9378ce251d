//! Conversions between v1 and v2 requests.
//!
//! [`requirements_v1_to_v2`] is the one v1 → v2 mapping: production reads a v1 request
//! through it ([`crate::Payment::from_request`]) and shadow mode re-checks v1 traffic
//! through the v2 path with [`request_v1_to_v2`], built on it, so both check the same
//! payment. v2 → v1 exists for the reverse comparison and for tests, and fails where v1
//! cannot express the network.

use serde_json::Value;

use crate::networks;
use crate::{v1, v2};

/// Why a request cannot be expressed in the other version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A v1 network name with no CAIP-2 id in the registry.
    #[error("v1 network {0:?} has no known CAIP-2 id")]
    UnknownV1Network(String),
    /// A CAIP-2 id with no v1 name in the registry.
    #[error("network {0} has no v1 name")]
    NoV1Name(String),
}

fn caip2_of(name: &str) -> Result<crate::caip2::ChainId, ConvertError> {
    networks::by_v1_name(name)
        .map(|k| k.chain_id())
        .ok_or_else(|| ConvertError::UnknownV1Network(name.to_owned()))
}

/// v1 requirements → v2 requirements and the resource description they carried. An
/// `extra` that is not a JSON object carries nothing a scheme can read and maps to none
/// (the scheme then names what is missing, as it does for a v2 request without it).
pub fn requirements_v1_to_v2(
    r: &v1::PaymentRequirements,
) -> Result<(v2::PaymentRequirements, v2::ResourceInfo), ConvertError> {
    let extra = match &r.extra {
        Some(Value::Object(map)) => Some(map.clone()),
        _ => None,
    };
    let requirements = v2::PaymentRequirements {
        scheme: r.scheme.clone(),
        network: caip2_of(&r.network)?,
        amount: r.max_amount_required.clone(),
        asset: r.asset.clone(),
        pay_to: r.pay_to.clone(),
        max_timeout_seconds: r.max_timeout_seconds,
        extra,
    };
    let resource = v2::ResourceInfo {
        url: r.resource.clone(),
        description: Some(r.description.clone()),
        mime_type: r.mime_type.clone(),
    };
    Ok((requirements, resource))
}

/// A v1 `/verify` or `/settle` body → the equivalent v2 body.
pub fn request_v1_to_v2(r: &v1::PaymentRequest) -> Result<v2::PaymentRequest, ConvertError> {
    let (requirements, resource) = requirements_v1_to_v2(&r.payment_requirements)?;
    let mut accepted = requirements.clone();
    accepted.scheme = r.payment_payload.scheme.clone();
    accepted.network = caip2_of(&r.payment_payload.network)?;
    Ok(v2::PaymentRequest {
        x402_version: 2,
        payment_payload: v2::PaymentPayload {
            x402_version: 2,
            resource: Some(resource),
            accepted,
            payload: r.payment_payload.payload.clone(),
            extensions: None,
        },
        payment_requirements: requirements,
    })
}

/// v2 requirements (with the resource they protect) → v1 requirements.
pub fn requirements_v2_to_v1(
    r: &v2::PaymentRequirements,
    resource: Option<&v2::ResourceInfo>,
) -> Result<v1::PaymentRequirements, ConvertError> {
    let name = networks::by_chain_id(&r.network)
        .map(|k| k.v1_name)
        .ok_or_else(|| ConvertError::NoV1Name(r.network.to_string()))?;
    Ok(v1::PaymentRequirements {
        scheme: r.scheme.clone(),
        network: name.to_owned(),
        max_amount_required: r.amount.clone(),
        resource: resource.map(|x| x.url.clone()).unwrap_or_default(),
        description: resource
            .and_then(|x| x.description.clone())
            .unwrap_or_default(),
        mime_type: resource.and_then(|x| x.mime_type.clone()),
        output_schema: None,
        pay_to: r.pay_to.clone(),
        max_timeout_seconds: r.max_timeout_seconds,
        asset: r.asset.clone(),
        extra: r.extra.clone().map(Value::Object),
    })
}

/// A v2 body → the equivalent v1 body, where v1 can express it.
pub fn request_v2_to_v1(r: &v2::PaymentRequest) -> Result<v1::PaymentRequest, ConvertError> {
    let resource = r.payment_payload.resource.as_ref();
    let requirements = requirements_v2_to_v1(&r.payment_requirements, resource)?;
    let accepted = &r.payment_payload.accepted;
    let payload_network = networks::by_chain_id(&accepted.network)
        .map(|k| k.v1_name)
        .ok_or_else(|| ConvertError::NoV1Name(accepted.network.to_string()))?;
    Ok(v1::PaymentRequest {
        x402_version: 1,
        payment_payload: v1::PaymentPayload {
            x402_version: 1,
            scheme: accepted.scheme.clone(),
            network: payload_network.to_owned(),
            payload: r.payment_payload.payload.clone(),
        },
        payment_requirements: requirements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v1_request() -> v1::PaymentRequest {
        serde_json::from_value(json!({
            "x402Version": 1,
            "paymentPayload": {"x402Version": 1, "scheme": "exact", "network": "base-sepolia",
                "payload": {"signature": "0xab", "authorization": {"from": "0x1", "value": "5"}}},
            "paymentRequirements": {
                "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "10000",
                "resource": "https://api.example.com/x", "description": "data",
                "mimeType": "application/json",
                "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "extra": {"name": "USDC", "version": "2"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn v1_to_v2_maps_every_field() {
        let v2 = request_v1_to_v2(&v1_request()).unwrap();
        assert_eq!(v2.x402_version, 2);
        let req = &v2.payment_requirements;
        assert_eq!(req.network.as_str(), "eip155:84532");
        assert_eq!(req.amount.as_str(), "10000");
        assert_eq!(req.extra.as_ref().unwrap()["name"], "USDC");
        assert_eq!(v2.payment_payload.accepted, *req);
        let resource = v2.payment_payload.resource.as_ref().unwrap();
        assert_eq!(resource.url, "https://api.example.com/x");
        assert_eq!(resource.mime_type.as_deref(), Some("application/json"));
        assert_eq!(v2.payment_payload.payload["signature"], "0xab");
    }

    #[test]
    fn round_trip_v1_v2_v1_is_identity() {
        let original = v1_request();
        let back = request_v2_to_v1(&request_v1_to_v2(&original).unwrap()).unwrap();
        assert_eq!(back, original);
    }

    /// Production reads a v1 request, shadow mode its v2 conversion: the payment a scheme
    /// sees is the same but for the version (whatever `extra` holds).
    #[test]
    fn production_and_shadow_see_the_same_payment() {
        use crate::{Payment, VersionedRequest};
        for extra in [
            json!({"name": "USDC", "version": "2"}),
            json!("USDC"),
            json!(7),
            json!(null),
            json!([1]),
        ] {
            let mut r = v1_request();
            r.payment_requirements.extra = Some(extra.clone());
            let production =
                Payment::from_request(&VersionedRequest::V1(Box::new(r.clone()))).unwrap();
            let converted = request_v1_to_v2(&r).unwrap();
            let shadow = Payment::from_request(&VersionedRequest::V2(Box::new(converted))).unwrap();
            assert_eq!(production.requirements, shadow.requirements, "{extra}");
            assert_eq!(production.network, shadow.network, "{extra}");
            assert_eq!(
                production.payload_network, shadow.payload_network,
                "{extra}"
            );
            assert_eq!(production.scheme, shadow.scheme, "{extra}");
            assert_eq!(production.payload_scheme, shadow.payload_scheme, "{extra}");
            assert_eq!(production.payload, shadow.payload, "{extra}");
            assert_eq!(production.resource, shadow.resource, "{extra}");
        }
    }

    #[test]
    fn unknown_names_fail_clearly() {
        let mut r = v1_request();
        r.payment_requirements.network = "atlantis".into();
        assert_eq!(
            request_v1_to_v2(&r),
            Err(ConvertError::UnknownV1Network("atlantis".into()))
        );
        let mut v2 = request_v1_to_v2(&v1_request()).unwrap();
        v2.payment_requirements.network = crate::caip2::ChainId::eip155(31337);
        assert_eq!(
            request_v2_to_v1(&v2),
            Err(ConvertError::NoV1Name("eip155:31337".into()))
        );
    }
}
