//! The `bazaar` discovery extension (feature `bazaar`): a resource server that opts in puts
//! it in its 402, the client echoes it in its v2 payment, and a facilitator catalogs the
//! resource. This module reads what such a payment offers, checked as the spec asks (`info`
//! valid against the schema it carries, a safe `routeTemplate`, an http(s) resource), and
//! writes the `EXTENSION-RESPONSES` value; storing and serving the catalog is the
//! facilitator's. Pure: nothing is fetched (a remote `$ref` fails). v1 requests offer nothing
//! (the spec does not expect facilitators to catalog them).

use base64::Engine;
use serde_json::{json, Value};

use crate::{v2, VersionedRequest};

/// The extension's key in `extensions` and in `/supported`.
pub const EXTENSION: &str = "bazaar";

/// The header that carries each extension's outcome (base64 JSON keyed by extension).
pub const RESPONSES_HEADER: &str = "extension-responses";

/// The largest extension (its `info` and `schema`, as JSON) kept in the catalog.
pub const MAX_EXTENSION_BYTES: usize = 16 * 1024;

/// The JSON Schema dialect the spec requires.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// What a payment's `bazaar` extension asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Offer {
    /// The payment carries no `bazaar` extension (or is v1): nothing to do.
    Absent,
    /// It does, and it cannot be listed; the text says why (sent back in the header).
    Rejected(String),
    /// It does and is valid: to be listed once the payment settles.
    Listing(Box<Listing>),
}

/// A resource as a payment describes it, ready for a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Catalog key: the canonical URL (and, for an MCP tool, a newline and the tool's name).
    pub key: String,
    /// Canonical URL: origin and path (query and fragment dropped), or origin and route template.
    pub resource: String,
    /// `http` or `mcp`.
    pub kind: String,
    /// The requirements the payment paid, as a JSON array (the catalog's `accepts`).
    pub accepts: String,
    /// The extension's `info` and `schema`, as JSON.
    pub extension: String,
    /// The resource's description.
    pub description: Option<String>,
    /// The MIME type of the resource's answer.
    pub mime_type: Option<String>,
    /// CAIP-2 network of the requirements.
    pub network: String,
    /// Scheme of the requirements.
    pub scheme: String,
    /// Recipient of the requirements.
    pub pay_to: String,
}

impl Offer {
    /// The offer the request makes.
    pub fn of(request: &VersionedRequest) -> Offer {
        let VersionedRequest::V2(request) = request else {
            return Offer::Absent;
        };
        let Some(extension) = request
            .payment_payload
            .extensions
            .as_ref()
            .and_then(|all| all.get(EXTENSION))
        else {
            return Offer::Absent;
        };
        match listing(request, extension) {
            Ok(listing) => Offer::Listing(Box::new(listing)),
            Err(why) => Offer::Rejected(why),
        }
    }

    /// The `EXTENSION-RESPONSES` value after a verify: only a rejection is news there.
    pub fn verify_response(&self) -> Option<String> {
        match self {
            Offer::Rejected(why) => Some(responses("rejected", Some(why))),
            _ => None,
        }
    }
}

/// The `EXTENSION-RESPONSES` value: `{"bazaar": {"status", "rejectedReason"?}}`, base64.
pub fn responses(status: &str, rejected_reason: Option<&str>) -> String {
    let mut bazaar = json!({ "status": status });
    if let Some(why) = rejected_reason {
        bazaar["rejectedReason"] = json!(why);
    }
    let document = json!({ EXTENSION: bazaar });
    base64::engine::general_purpose::STANDARD.encode(document.to_string())
}

fn listing(request: &v2::PaymentRequest, extension: &Value) -> Result<Listing, String> {
    let extension = extension
        .as_object()
        .ok_or("the bazaar extension is not an object")?;
    let info = extension
        .get("info")
        .filter(|i| i.is_object())
        .ok_or("bazaar.info is missing or not an object")?;
    let schema = extension
        .get("schema")
        .filter(|s| s.is_object())
        .ok_or("bazaar.schema is missing or not an object")?;
    let kept = json!({ "info": info, "schema": schema });
    let kept_text = kept.to_string();
    if kept_text.len() > MAX_EXTENSION_BYTES {
        return Err(format!(
            "the bazaar extension is larger than {MAX_EXTENSION_BYTES} bytes"
        ));
    }
    check_against_schema(info, schema)?;
    let input = &info["input"];
    let (kind, tool) = match input["type"].as_str() {
        Some("http") => ("http", None),
        Some("mcp") => match input["tool"].as_str().filter(|t| !t.is_empty()) {
            Some(tool) => ("mcp", Some(tool)),
            None => return Err("bazaar.info.input.tool is missing for an MCP tool".into()),
        },
        _ => return Err("bazaar.info.input.type must be \"http\" or \"mcp\"".into()),
    };
    let resource = request
        .payment_payload
        .resource
        .as_ref()
        .ok_or("the payment names no resource to list")?;
    let template = extension
        .get("routeTemplate")
        .and_then(Value::as_str)
        .filter(|t| kind == "http" && is_valid_route_template(t));
    let canonical = canonical_url(&resource.url, template)?;
    let key = match tool {
        Some(tool) => format!("{canonical}\n{tool}"),
        None => canonical.clone(),
    };
    let requirements = &request.payment_requirements;
    let accepts = serde_json::to_string(&[requirements]).map_err(|e| e.to_string())?;
    Ok(Listing {
        key,
        resource: canonical,
        kind: kind.to_owned(),
        accepts,
        extension: kept_text,
        description: resource.description.clone(),
        mime_type: resource.mime_type.clone(),
        network: requirements.network.to_string(),
        scheme: requirements.scheme.clone(),
        pay_to: requirements.pay_to.clone(),
    })
}

/// `info` against the schema it came with, as JSON Schema 2020-12; nothing is fetched
/// (a remote `$ref` fails), and patterns run on a linear-time regex engine, so a hostile
/// schema can neither make us call out nor spin.
fn check_against_schema(info: &Value, schema: &Value) -> Result<(), String> {
    if let Some(dialect) = schema.get("$schema") {
        if dialect.as_str().map(|d| d.trim_end_matches('#')) != Some(DRAFT_2020_12) {
            return Err(format!(
                "bazaar.schema must be JSON Schema 2020-12 ({DRAFT_2020_12})"
            ));
        }
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_pattern_options(jsonschema::PatternOptions::regex().size_limit(1 << 20))
        .build(schema)
        .map_err(|e| format!("bazaar.schema is not a usable JSON Schema: {e}"))?;
    validator.validate(info).map_err(|e| {
        let at = e.instance_path().to_string();
        let at = if at.is_empty() { "(root)".into() } else { at };
        format!("bazaar.info does not match bazaar.schema at {at}: {e}")
    })
}

/// The spec's rules for `routeTemplate` (the same in every official SDK): starts with `/`,
/// only safe path characters, and after percent-decoding no `..` and no `://`. A template
/// that fails is ignored and the concrete path is listed instead.
pub fn is_valid_route_template(template: &str) -> bool {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_/:.-~%".contains(c);
    if template.len() < 2 || !template.starts_with('/') || !template.chars().all(safe) {
        return false;
    }
    let Ok(decoded) = percent_encoding::percent_decode_str(template).decode_utf8() else {
        return false;
    };
    !decoded.contains("..") && !decoded.contains("://")
}

/// Origin and path of an http(s) resource URL (query and fragment dropped), the path
/// replaced by the route template of a dynamic route.
fn canonical_url(resource: &str, template: Option<&str>) -> Result<String, String> {
    let url = url::Url::parse(resource).map_err(|_| "resource.url is not a URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("resource.url must be an http or https URL with a host".into());
    }
    let origin = url.origin().ascii_serialization();
    Ok(format!("{origin}{}", template.unwrap_or(url.path())))
}

#[cfg(test)]
mod tests;
