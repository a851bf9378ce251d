//! What a payer or a resource server can put in the `bazaar` extension, and what is kept.

use super::*;
use crate::envelope::parse_request_value;

/// The spec's GET example: `info` and the `schema` it must satisfy.
fn weather_extension() -> Value {
    json!({
        "info": {
            "input": {"type": "http", "method": "GET", "queryParams": {"city": "San Francisco"}},
            "output": {"type": "json", "example": {"city": "San Francisco", "weather": "foggy"}},
        },
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "input": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "const": "http"},
                        "method": {"type": "string", "enum": ["GET", "HEAD", "DELETE"]},
                        "queryParams": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                    "required": ["type", "method"],
                    "additionalProperties": false,
                },
                "output": {"type": "object", "required": ["type"]},
            },
            "required": ["input"],
        },
    })
}

/// A v2 request for `url` whose payload carries `extension` as `bazaar`.
fn offer_for(url: &str, extension: Option<Value>) -> Offer {
    let accepted = json!({
        "scheme": "exact", "network": "eip155:84532", "amount": "10000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"},
    });
    let mut payload = json!({
        "x402Version": 2,
        "resource": {"url": url, "description": "Weather", "mimeType": "application/json"},
        "accepted": accepted,
        "payload": {"signature": "0x00"},
    });
    if let Some(extension) = extension {
        payload["extensions"] = json!({ EXTENSION: extension });
    }
    let body =
        json!({"x402Version": 2, "paymentPayload": payload, "paymentRequirements": accepted});
    let request = parse_request_value(body).expect("a v2 request");
    Offer::of(&request)
}

fn listed(offer: Offer) -> Listing {
    match offer {
        Offer::Listing(listing) => *listing,
        other => panic!("not listed: {other:?}"),
    }
}

fn rejected(offer: Offer) -> String {
    match offer {
        Offer::Rejected(why) => why,
        other => panic!("not rejected: {other:?}"),
    }
}

#[test]
fn a_valid_extension_is_listed_under_its_origin_and_path() {
    let listing = listed(offer_for(
        "https://api.example.com/weather?city=SF#top",
        Some(weather_extension()),
    ));
    assert_eq!(listing.resource, "https://api.example.com/weather");
    assert_eq!(listing.key, listing.resource);
    assert_eq!(listing.kind, "http");
    assert_eq!(listing.network, "eip155:84532");
    assert_eq!(listing.description.as_deref(), Some("Weather"));
    let accepts: Value = serde_json::from_str(&listing.accepts).unwrap();
    assert_eq!(
        accepts[0]["payTo"],
        "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    );
    let kept: Value = serde_json::from_str(&listing.extension).unwrap();
    assert_eq!(kept, weather_extension(), "info and schema kept as sent");
    assert_eq!(offer_for("https://api.example.com/w", None), Offer::Absent);
}

#[test]
fn info_that_its_schema_refuses_is_rejected_with_the_place() {
    let mut extension = weather_extension();
    extension["info"]["input"]["method"] = json!("POST");
    let why = rejected(offer_for("https://api.example.com/w", Some(extension)));
    assert!(why.contains("/input/method"), "{why}");
    let mut no_city = weather_extension();
    no_city["info"]["input"]["queryParams"] = json!({});
    assert!(rejected(offer_for("https://a.example/w", Some(no_city))).contains("queryParams"));
}

#[test]
fn a_hostile_schema_neither_fetches_nor_spins_nor_passes() {
    let mut remote = weather_extension();
    remote["schema"] = json!({"$ref": "https://attacker.example/schema.json"});
    let why = rejected(offer_for("https://a.example/w", Some(remote)));
    assert!(why.contains("not a usable JSON Schema"), "{why}");

    let mut draft4 = weather_extension();
    draft4["schema"]["$schema"] = json!("http://json-schema.org/draft-04/schema#");
    assert!(rejected(offer_for("https://a.example/w", Some(draft4))).contains("2020-12"));

    // A pattern that backtracks exponentially on a backtracking engine: answered at once.
    let mut redos = weather_extension();
    redos["schema"]["properties"]["input"]["properties"]["queryParams"]["properties"]["city"] =
        json!({"type": "string", "pattern": "^(a+)+$"});
    redos["info"]["input"]["queryParams"]["city"] = json!(format!("{}!", "a".repeat(5_000)));
    let why = rejected(offer_for("https://a.example/w", Some(redos)));
    assert!(why.contains("city"), "{why}");

    let mut huge = weather_extension();
    huge["info"]["output"]["example"] = json!({"blob": "x".repeat(MAX_EXTENSION_BYTES)});
    assert!(rejected(offer_for("https://a.example/w", Some(huge))).contains("larger than"));
    for not_object in [
        json!("bazaar"),
        json!({"info": 1, "schema": {}}),
        json!({"info": {}}),
    ] {
        rejected(offer_for("https://a.example/w", Some(not_object)));
    }
}

#[test]
fn only_http_urls_with_a_host_are_listed() {
    for url in [
        "javascript:alert(1)",
        "ftp://a.example/x",
        "not a url",
        "file:///etc/passwd",
    ] {
        let why = rejected(offer_for(url, Some(weather_extension())));
        assert!(why.contains("resource.url"), "{url}: {why}");
    }
}

#[test]
fn route_templates_follow_the_spec_rules_and_a_bad_one_falls_back_to_the_path() {
    for good in [
        "/users/:userId",
        "/weather/:country/:city",
        "/api/v1/items",
        "/a%20b",
    ] {
        assert!(is_valid_route_template(good), "{good}");
    }
    for bad in [
        "",
        "/",
        "users/:id",
        "/users/../admin",
        "/a/%2e%2e/b",
        "/x?y=1",
        "/http://evil",
        "/a%3A%2F%2Fevil",
        "/ünï",
        "/a b",
        "/%ff",
    ] {
        assert!(!is_valid_route_template(bad), "{bad}");
    }
    let mut dynamic = weather_extension();
    dynamic["routeTemplate"] = json!("/users/:userId");
    let listing = listed(offer_for(
        "https://api.example.com/users/123",
        Some(dynamic),
    ));
    assert_eq!(listing.resource, "https://api.example.com/users/:userId");
    let mut poisoned = weather_extension();
    poisoned["routeTemplate"] = json!("/../admin");
    let listing = listed(offer_for(
        "https://api.example.com/users/123",
        Some(poisoned),
    ));
    assert_eq!(listing.resource, "https://api.example.com/users/123");
}

#[test]
fn an_mcp_tool_is_keyed_by_url_and_tool() {
    let extension = json!({
        "info": {"input": {"type": "mcp", "tool": "financial_analysis", "inputSchema": {"type": "object"}}},
        "schema": {
            "type": "object",
            "properties": {"input": {"type": "object", "required": ["type", "tool", "inputSchema"]}},
            "required": ["input"],
        },
    });
    let listing = listed(offer_for(
        "https://api.example.com/mcp",
        Some(extension.clone()),
    ));
    assert_eq!(listing.kind, "mcp");
    assert_eq!(
        listing.key,
        "https://api.example.com/mcp\nfinancial_analysis"
    );
    let mut no_tool = extension;
    no_tool["info"]["input"]["tool"] = json!("");
    assert!(rejected(offer_for("https://api.example.com/mcp", Some(no_tool))).contains("tool"));
}

#[test]
fn the_header_value_is_base64_json_keyed_by_extension() {
    use base64::Engine;
    let value = responses("rejected", Some("info failed schema validation"));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap();
    let document: Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(
        document,
        json!({"bazaar": {"status": "rejected", "rejectedReason": "info failed schema validation"}})
    );
}
