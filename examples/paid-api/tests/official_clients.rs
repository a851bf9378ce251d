//! The example paid API, paid by the official x402 clients through this project's
//! facilitator on a real anvil: `@x402/fetch` 2.27 (v2), `x402-fetch` 1.2 (v1) and the
//! Python SDK's httpx client (v2), each paying the example's own binary (`paid-api`).
//! Each asserts the 402 it first got, the content, the settlement header against the
//! transaction on chain, and balances moved exactly once.

mod support;

use serde_json::Value;
use support::{example_binary, node, python, start, Stack, PAYER, PAY_TO};

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The settlement header names a transaction that moved `amount` from the payer to the
/// payee, once, and the balances say the same.
async fn moved_once(stack: &Stack, settlement: &Value, before: (u128, u128), amount: u128) {
    assert_eq!(settlement["success"], true, "{settlement}");
    assert!(
        same(settlement["payer"].as_str().unwrap_or(""), PAYER),
        "{settlement}"
    );
    let hash = settlement["transaction"].as_str().expect("a transaction");
    let (ok, transfers) = stack.transfers_in(hash).await;
    assert!(ok, "the transaction {hash} succeeded on chain");
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    let (from, to, value) = &transfers[0];
    assert!(
        same(from, PAYER) && same(to, PAY_TO) && *value == amount,
        "{transfers:?}"
    );
    let after = stack.balances().await;
    assert_eq!(after.0, before.0 - amount, "the payer paid once");
    assert_eq!(after.1, before.1 + amount, "the payee was paid once");
}

#[tokio::test]
async fn the_official_v2_fetch_client_pays_the_weather_route() {
    let stack = start().await;
    let example = example_binary(&stack).await;
    let before = stack.balances().await;
    let url = format!("{}/weather", example.url);
    let out = node("v2", &url).await;

    assert_eq!(out["firstStatus"], 402, "{out}");
    let required = &out["firstRequired"]["v2"];
    assert_eq!(required["x402Version"], 2);
    assert_eq!(required["resource"]["url"], url);
    let accepted = &required["accepts"][0];
    assert_eq!(accepted["network"], "eip155:84532");
    assert_eq!(accepted["amount"], "1000");
    assert!(same(accepted["payTo"].as_str().unwrap_or(""), PAY_TO));
    assert!(out["sent"]["payment-signature"].is_string(), "{out}");

    assert_eq!(out["status"], 200, "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap_or("")).expect("json");
    assert_eq!(body["weather"], "sunny");
    assert_eq!(out["settlement"]["network"], "eip155:84532");
    moved_once(&stack, &out["settlement"], before, 1_000).await;
}

#[tokio::test]
async fn the_official_v1_fetch_client_pays_from_the_402_body() {
    let stack = start().await;
    let example = example_binary(&stack).await;
    let before = stack.balances().await;
    let url = format!("{}/premium/report", example.url);
    let out = node("v1", &url).await;

    assert_eq!(out["firstStatus"], 402, "{out}");
    let body = &out["firstRequired"]["body"];
    assert_eq!(body["x402Version"], 1, "the 402 body is v1's: {out}");
    let accepted = &body["accepts"][0];
    assert_eq!(accepted["network"], "base-sepolia");
    assert_eq!(accepted["maxAmountRequired"], "5000");
    assert_eq!(accepted["resource"], url);
    assert!(out["sent"]["x-payment"].is_string(), "{out}");

    assert_eq!(out["status"], 200, "{out}");
    let content: Value = serde_json::from_str(out["body"].as_str().unwrap_or("")).expect("json");
    assert_eq!(content["days"], 7);
    assert_eq!(out["settlement"]["network"], "base-sepolia");
    moved_once(&stack, &out["settlement"], before, 5_000).await;
}

#[tokio::test]
async fn the_official_python_httpx_client_pays_the_weather_route() {
    let stack = start().await;
    let example = example_binary(&stack).await;
    let before = stack.balances().await;
    let url = format!("{}/weather", example.url);
    let out = python(&url).await;

    assert_eq!(out["firstStatus"], 402, "{out}");
    assert_eq!(out["firstRequired"]["v2"]["accepts"][0]["amount"], "1000");
    assert!(out["sent"]["payment-signature"].is_string(), "{out}");
    assert_eq!(out["status"], 200, "{out}");
    assert!(out["body"].as_str().unwrap_or("").contains("sunny"));
    assert_eq!(out["settlement"]["network"], "eip155:84532");
    moved_once(&stack, &out["settlement"], before, 1_000).await;
}
