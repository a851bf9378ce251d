//! The `bazaar` extension as a payer's client echoes it (info, schema, routeTemplate) with
//! the resource URL beside it: reading it never panics, whatever JSON Schema it carries, and
//! what is offered for listing is an http(s) URL whose path is the concrete one or a route
//! template that passes the spec's rules.
//! Seeds (`fuzz/seeds/bazaar_extension`): the spec's GET example with a route template and a
//! pattern, and an MCP tool whose schema uses a local `$ref`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use x402_protocol::bazaar::{is_valid_route_template, Offer};
use x402_protocol::envelope::parse_request_value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = is_valid_route_template(text);
    }
    // First line: the resource URL; the rest: the extension's JSON.
    let (url, extension) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"https://api.example.com/weather"[..], data),
    };
    let (Ok(url), Ok(extension)) = (
        std::str::from_utf8(url),
        serde_json::from_slice::<Value>(extension),
    ) else {
        return;
    };
    let accepted = json!({
        "scheme": "exact", "network": "eip155:84532", "amount": "1000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
    });
    let body = json!({
        "x402Version": 2,
        "paymentPayload": {
            "x402Version": 2, "resource": {"url": url}, "accepted": accepted,
            "payload": {}, "extensions": {"bazaar": extension},
        },
        "paymentRequirements": accepted,
    });
    let Ok(request) = parse_request_value(body) else {
        return;
    };
    if let Offer::Listing(listing) = Offer::of(&request) {
        assert!(
            listing.resource.starts_with("http://") || listing.resource.starts_with("https://"),
            "{}",
            listing.resource
        );
        assert!(listing.key.starts_with(&listing.resource));
        assert!(listing.kind == "http" || listing.kind == "mcp");
        assert!(listing.extension.len() <= x402_protocol::bazaar::MAX_EXTENSION_BYTES);
    }
});
