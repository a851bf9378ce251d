//! `GET /openapi.json`: the OpenAPI 3.1 document of every route this instance serves. The
//! wire types' schemas come from `x402_protocol::schema` (built beside the types, from the
//! same limits and the reason table); the service's own answers (errors, health, flags,
//! settlement status) are described here, next to the routes. The OpenAPI test runs
//! schemathesis against the real binary from this document and checks every status listed
//! here is one the server really gives.

use serde_json::Map;
use x402_protocol::schema::{components, reference};

use super::*;

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// One documented answer: a description and a JSON body.
fn answer(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": json_content(schema)})
}

fn error(description: &str) -> Value {
    answer(description, reference("Error"))
}

fn retry_later(description: &str) -> Value {
    let mut documented = error(description);
    documented["headers"] = json!({"Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }});
    documented
}

/// `/verify` or `/settle`: one body for both versions, the answer in the request's version.
fn payment_route(summary: &str, v1: &str, v2: &str, settle: bool) -> Value {
    let mut ok = answer(
        "The protocol answer, in the request's version: a refused payment is a 200 too.",
        json!({"anyOf": [reference(v1), reference(v2)]}),
    );
    ok["headers"] = json!({
        "X402-Settlement-Id": {
            "description": "The request's settlement id, for GET /settlements/{id} (present once the body read as a payment).",
            "schema": {"type": "string"},
        },
        "EXTENSION-RESPONSES": {
            "description": "Base64 JSON keyed by extension: `bazaar` says whether the resource was listed (`success`) or why not (`rejected`, `rejectedReason`); on verify only a rejection.",
            "schema": {"type": "string"},
        },
    });
    let mut responses = json!({
        "200": ok,
        "400": error("Not an x402 request: not JSON, no or mismatched x402Version, a field of the wrong shape (named in `field`)."),
        "413": error("The body is larger than 64 KiB."),
        "415": error("The body is not sent as application/json."),
    });
    if settle {
        responses["429"] = retry_later(
            "Too many settlements for this payer or payTo (only with rate limits configured).",
        );
    }
    json!({"post": {
        "summary": summary,
        "requestBody": {"required": true, "content": json_content(reference("PaymentRequest"))},
        "responses": responses,
    }})
}

fn get(summary: &str, responses: Value) -> Value {
    json!({"get": {"summary": summary, "responses": responses}})
}

fn settlement_route() -> Value {
    json!({"get": {
        "summary": "What the ledger recorded about one settlement (never sends, never asks a node).",
        "parameters": [{
            "name": "id", "in": "path", "required": true,
            "description": "A settlement id (the X402-Settlement-Id header) or a v2 payment-identifier id.",
            "schema": {"type": "string", "pattern": "^(r2:[0-9a-f]{64}:[0-9a-f]{64}|[A-Za-z0-9_-]{16,128})$"},
        }],
        "responses": {
            "200": answer("The settlement.", reference("Settlement")),
            "400": error("The id is neither a settlement id nor a payment id."),
            "404": error("Nothing is recorded under this id."),
            "503": retry_later("The ledger cannot be read right now."),
        },
    }})
}

fn discovery_route() -> Value {
    let text = |name: &str, description: &str| {
        // What the route reads: no control characters (PostgreSQL text holds no NUL).
        let schema = json!({
            "type": "string",
            "maxLength": super::discovery::MAX_FILTER_CHARS,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
        });
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
    };
    let number = |name: &str, minimum: u64, maximum: Option<u64>| {
        let mut schema = json!({"type": "integer", "minimum": minimum});
        if let Some(maximum) = maximum {
            schema["maximum"] = json!(maximum);
        }
        json!({"name": name, "in": "query", "required": false, "schema": schema})
    };
    json!({"get": {
        "summary": "Resources listed by settled payments that carried the bazaar extension.",
        "parameters": [
            text("type", "http or mcp"),
            text("payTo", "recipient (a 0x address in any case)"),
            text("scheme", "payment scheme"),
            text("network", "CAIP-2 network"),
            text("extensions", "an extension the resource declares (bazaar)"),
            number("limit", 1, Some(super::discovery::MAX_PAGE.into())),
            number("offset", 0, Some(super::discovery::MAX_OFFSET)),
        ],
        "responses": {
            "200": answer("One page of the catalog, most recently settled first.", reference("DiscoveryResources")),
            "400": error("limit or offset out of range (named in `field`)."),
            "404": error("Discovery is switched off (discovery_enabled=false)."),
            "503": retry_later("The ledger cannot be read right now."),
        },
    }})
}

fn health_routes(paths: &mut Map<String, Value>) {
    let checks = reference("HealthReport");
    let entries = [
        (
            "/health",
            get(
                "Liveness.",
                json!({"200": answer("The process serves HTTP.", reference("Liveness"))}),
            ),
        ),
        (
            "/health/ready",
            get(
                "Readiness, for a load balancer.",
                json!({
                    "200": answer("Ready for traffic.", reference("Readiness")),
                    "503": answer("Starting or draining.", reference("Readiness")),
                }),
            ),
        ),
        (
            "/health/deep",
            get(
                "Every dependency: ledger, each network's nodes and signers.",
                json!({
                    "200": answer("Every critical check passed.", checks.clone()),
                    "503": answer("A critical check failed.", checks.clone()),
                }),
            ),
        ),
        (
            "/health/v2",
            get(
                "The v2 subset: v2 flags and the networks v2 serves.",
                json!({
                    "200": answer("v2 is on and healthy.", checks.clone()),
                    "503": answer("v2 is off or a critical v2 check failed.", checks),
                }),
            ),
        ),
    ];
    for (path, item) in entries {
        paths.insert(path.to_owned(), item);
    }
}

fn operator_routes(paths: &mut Map<String, Value>, admin: bool) {
    let metrics = json!({"200": {
        "description": "Prometheus text format.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }});
    paths.insert("/metrics".into(), get("Prometheus metrics.", metrics));
    let flags = json!({"200": answer("The flags now.", reference("Flags"))});
    paths.insert("/flags".into(), get("The runtime feature flags.", flags));
    if admin {
        paths.insert("/admin/flags".into(), json!({"put": {
            "summary": "Change runtime flags (only with ADMIN_TOKEN).",
            "security": [{"adminToken": []}],
            "requestBody": {"required": true, "content": json_content(reference("FlagUpdate"))},
            "responses": {
                "200": answer("The changes and the flags now.", json!({
                    "type": "object", "required": ["changed", "flags"],
                    "properties": {"changed": {"type": "array"}, "flags": reference("Flags")},
                })),
                "400": error("Not a flag update, or a value out of range, or more than one Authorization header."),
                "401": error("Missing or wrong bearer token."),
                "413": error("The body is larger than 64 KiB."),
            },
        }}));
    }
    let document = json!({"200": answer("This document.", json!({"type": "object"}))});
    paths.insert(
        "/openapi.json".into(),
        get("The OpenAPI document of this instance.", document),
    );
}

/// A network as configuration names it: a CAIP-2 id or a v1 name.
fn network_name() -> Value {
    let v1_names: Vec<&str> = networks::KNOWN_NETWORKS.iter().map(|n| n.v1_name).collect();
    json!({"anyOf": [reference("Caip2"), {"enum": v1_names}]})
}

/// The body of `PUT /admin/flags`, from the flag table: every field optional, no others.
fn flag_update() -> Value {
    let mut properties = Map::new();
    properties.insert(
        "x402_version_support".into(),
        json!({"enum": ["v1,v2", "v1", "v2", null]}),
    );
    properties.insert(
        "v2_networks".into(),
        json!({
            "type": ["array", "null"],
            "description": "CAIP-2 ids or v1 names; empty: every network.",
            "items": network_name(),
        }),
    );
    for (name, _, _) in Flags::SWITCHES {
        properties.insert((*name).to_owned(), json!({"type": ["boolean", "null"]}));
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// The answer of `GET /discovery/resources` (the shape `@x402/extensions` reads).
fn discovery_resources() -> Value {
    let text = json!({"type": "string"});
    json!({
        "type": "object", "required": ["x402Version", "items", "pagination"],
        "properties": {
            "x402Version": {"const": 2},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["resource", "type", "x402Version", "accepts", "lastUpdated"],
                "properties": {
                    "resource": text, "type": {"enum": ["http", "mcp"]},
                    "x402Version": {"type": "integer"},
                    "accepts": {"type": "array", "items": reference("V2PaymentRequirements")},
                    "lastUpdated": {"type": "string", "format": "date-time"},
                    "description": text, "mimeType": text,
                    "extensions": {"type": "object"},
                },
            }},
            "pagination": {
                "type": "object", "required": ["limit", "offset", "total"],
                "properties": {
                    "limit": {"type": "integer"}, "offset": {"type": "integer"},
                    "total": {"type": "integer", "minimum": 0},
                },
            },
        },
    })
}

fn service_components() -> Map<String, Value> {
    let text = json!({"type": "string"});
    let entries = [
        (
            "Error",
            json!({
                "type": "object", "required": ["error"],
                "properties": {"error": text, "field": {"type": ["string", "null"]}},
            }),
        ),
        (
            "Settlement",
            json!({
                "type": "object",
                "required": ["id", "settlementId", "status", "network", "x402Version", "payer", "transaction", "transactions", "createdAt", "updatedAt"],
                "properties": {
                    "id": text, "settlementId": text,
                    "status": {"type": "string", "enum": ["pending", "success", "failed"]},
                    "network": reference("Caip2"),
                    "x402Version": {"type": "integer", "enum": [1, 2]},
                    "scheme": text, "payer": text, "payTo": text, "asset": text,
                    "amount": reference("TokenAmount"), "resource": text,
                    "transaction": text, "transactions": {"type": "array", "items": text},
                    "errorReason": reference("Reason"), "errorMessage": text,
                    "createdAt": {"type": "string", "format": "date-time"},
                    "updatedAt": {"type": "string", "format": "date-time"},
                },
            }),
        ),
        (
            "Liveness",
            json!({
                "type": "object", "required": ["status", "version", "build"],
                "properties": {"status": {"const": "healthy"}, "version": text, "build": text},
            }),
        ),
        (
            "Readiness",
            json!({
                "type": "object", "required": ["status"],
                "properties": {"status": {"enum": ["ready", "starting", "draining"]}},
            }),
        ),
        (
            "HealthReport",
            json!({
                "type": "object", "required": ["status", "checks"],
                "properties": {
                    "status": {"enum": ["healthy", "unhealthy"]},
                    "settlements_in_flight": {"type": "integer", "minimum": 0},
                    "draining": {"type": "boolean"},
                    "checks": {"type": "array", "items": {
                        "type": "object", "required": ["name", "ok", "critical"],
                        "properties": {
                            "name": text, "network": text, "ok": {"type": "boolean"},
                            "critical": {"type": "boolean"}, "detail": text,
                        },
                    }},
                },
            }),
        ),
        ("DiscoveryResources", discovery_resources()),
        ("FlagUpdate", flag_update()),
        (
            "Flags",
            json!({
                "type": "object", "required": ["disabled_by"],
                "properties": {"disabled_by": {"type": "object"}},
            }),
        ),
    ];
    entries
        .into_iter()
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect()
}

/// With `API_KEYS=required`: `/verify` and `/settle` need a key and answer 401, 403 and
/// 429 for it.
fn require_keys(paths: &mut Map<String, Value>) {
    for path in ["/verify", "/settle"] {
        let Some(operation) = paths.get_mut(path).and_then(|p| p.get_mut("post")) else {
            continue;
        };
        operation["security"] = json!([{"apiKeyBearer": []}, {"apiKey": []}]);
        let responses = &mut operation["responses"];
        responses["401"] = error("No API key, or one that is unknown or revoked.");
        responses["403"] = answer(
            "The payment is outside the key's networks, assets or payTo: the protocol refusal (reason, network) with `error`.",
            json!({"type": "object", "required": ["error"]}),
        );
        responses["429"] = retry_later(
            "Past the key's requests a minute (or, on /settle, a payer or payTo limit).",
        );
    }
}

/// `/admin/api-keys`: create (the key answered once), list, revoke.
fn admin_key_routes(paths: &mut Map<String, Value>) {
    let secured = |mut operation: Value| {
        operation["security"] = json!([{"adminToken": []}]);
        operation["responses"]["401"] = error("Missing or wrong bearer token.");
        operation["responses"]["400"] =
            error("A malformed body or id, or more than one Authorization header.");
        operation["responses"]["503"] = retry_later("The ledger cannot be written right now.");
        operation
    };
    let policy = json!({
        "type": "object", "additionalProperties": false, "required": ["id"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
            "networks": {"type": "array", "items": network_name()},
            "assets": {"type": "array", "items": {"type": "string"}},
            "pay_to": {"type": "array", "items": {"type": "string"}},
            "rate_limit_per_minute": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
        },
    });
    let object = json!({"type": "object"});
    paths.insert(
        "/admin/api-keys".into(),
        json!({
            "get": secured(json!({"summary": "The keys (ids, policies, sources; never a key).",
                "responses": {"200": answer("The keys.", object.clone())}})),
            "post": secured(json!({"summary": "A new caller key: answered once, kept hashed.",
                "requestBody": {"required": true, "content": json_content(policy)},
                "responses": {"201": answer("The key, shown this once.", object.clone()),
                    "413": error("The body is larger than 64 KiB.")}})),
        }),
    );
    let id_schema = json!({"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"});
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": id_schema}]);
    paths.insert("/admin/api-keys/{id}".into(), json!({
        "delete": secured(json!({"summary": "Revokes a key here at once, elsewhere within a second.",
            "parameters": id,
            "responses": {"200": answer("Revoked.", object), "404": error("No key has this id.")}})),
    }));
}

/// The document for an instance; `admin` when the admin API is on the main listener,
/// `keys` when callers need an API key.
pub(super) fn document(admin: bool, keys: bool) -> Value {
    let mut paths = Map::new();
    paths.insert(
        "/verify".into(),
        payment_route(
            "Is this signed payment valid and fundable?",
            "V1VerifyResponse",
            "V2VerifyResponse",
            false,
        ),
    );
    paths.insert(
        "/settle".into(),
        payment_route(
            "Put the payment on chain; the transaction in every answer after a broadcast.",
            "V1SettleResponse",
            "V2SettleResponse",
            true,
        ),
    );
    paths.insert(
        "/supported".into(),
        get(
            "Versions, schemes, networks and signers served now.",
            json!({"200": answer("What is served.", reference("SupportedResponse"))}),
        ),
    );
    paths.insert("/settlements/{id}".into(), settlement_route());
    paths.insert("/discovery/resources".into(), discovery_route());
    health_routes(&mut paths);
    operator_routes(&mut paths, admin);
    if admin {
        admin_key_routes(&mut paths);
    }
    if keys {
        require_keys(&mut paths);
    }
    let mut schemas = components();
    schemas.extend(service_components());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "x402 facilitator",
            "version": telemetry::VERSION,
            "description": "x402 protocol v1 and v2 from one process: each request is answered in its own version.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer"},
                "apiKeyBearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    })
}

pub(super) async fn openapi(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.openapi.clone())
}
