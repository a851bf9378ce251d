//! What a hostile or broken client (and a facilitator that is down) gets from a paid route:
//! the right status and reason, and nothing moved on chain. Headers start as the official
//! clients make them (`tests/js/pay-api.mjs header`), then are bent.

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{official_header, start, Stack, PAYER, PAYER_KEY, PAY_TO};
use x402_protocol::headers;

/// One request to the API: status, the decoded `PAYMENT-REQUIRED` (if any), the decoded
/// settlement header (if any), the body as JSON (or its text).
struct Answer {
    status: StatusCode,
    required: Option<Value>,
    settlement: Option<Value>,
    body: Value,
    retry_after: Option<String>,
}

async fn get(url: &str, header: Option<(&str, &str)>) -> Answer {
    let mut request = reqwest::Client::new().get(url);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("the API answers");
    let decoded = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| STANDARD.decode(v.as_bytes()).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    let required = decoded("payment-required");
    let settlement = decoded("payment-response").or_else(|| decoded("x-payment-response"));
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        required,
        settlement,
        body,
        retry_after,
    }
}

fn error_of(answer: &Answer) -> String {
    answer
        .required
        .as_ref()
        .and_then(|r| r["error"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn bend(header: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut payment: Value =
        serde_json::from_slice(&STANDARD.decode(header).expect("base64")).expect("json");
    change(&mut payment);
    STANDARD.encode(serde_json::to_vec(&payment).expect("json"))
}

async fn nothing_moved(stack: &Stack, before: (u128, u128)) {
    assert_eq!(stack.balances().await, before, "nothing moved");
}

#[tokio::test]
async fn unreadable_headers_get_400_naming_the_header() {
    let stack = start().await;
    let before = stack.balances().await;
    let weather = format!("{}/weather", stack.api_url);

    let answer = get(&weather, Some(("PAYMENT-SIGNATURE", "not*base64"))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let error = error_of(&answer);
    assert!(
        error.contains("PAYMENT-SIGNATURE header is not base64"),
        "{error}"
    );
    assert!(error.contains("position 3"), "{error}");

    let answer = get(&weather, Some(("X-PAYMENT", "eyJ4NDAyVmVyc2lvbiI6MX0"))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.required.is_none(), "a v1 client is answered in v1");
    assert_eq!(answer.body["x402Version"], 1);
    let error = answer.body["error"].as_str().unwrap_or_default();
    assert!(error.contains("X-PAYMENT header is not base64"), "{error}");

    let v1_in_v2 = STANDARD
        .encode(br#"{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{}}"#);
    let answer = get(&weather, Some(("PAYMENT-SIGNATURE", &v1_in_v2))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&answer).contains("x402Version 1; it takes version 2"));
    nothing_moved(&stack, before).await;
}

#[tokio::test]
async fn tampered_foreign_expired_and_replayed_payments_are_refused_and_nothing_moves() {
    let stack = start().await;
    let before = stack.balances().await;
    let weather = format!("{}/weather", stack.api_url);
    let report = format!("{}/premium/report", stack.api_url);
    let header = official_header("header", &weather).await;

    // Another route's price: the payment's terms are not among this route's.
    let answer = get(&report, Some(("PAYMENT-SIGNATURE", &header))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert!(
        error_of(&answer).starts_with("no matching payment requirements"),
        "{}",
        error_of(&answer)
    );

    // Tampered: the signed value raised (and the accepted terms left as they were).
    let tampered = bend(&header, |p| {
        p["payload"]["authorization"]["value"] = json!("999999")
    });
    let answer = get(&weather, Some(("PAYMENT-SIGNATURE", &tampered))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    let error = error_of(&answer);
    assert!(
        error.starts_with("invalid_exact_evm"),
        "a scheme reason: {error}"
    );

    // Tampered terms: the client's copy claims a lower amount than the route's price.
    let cheaper = bend(&header, |p| p["accepted"]["amount"] = json!("1"));
    let answer = get(&weather, Some(("PAYMENT-SIGNATURE", &cheaper))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert!(error_of(&answer).starts_with("no matching payment requirements"));

    // Expired: an authorization whose window closed, for the right price.
    let now = x402_testkit::eip3009::now();
    let expired = x402_testkit::eip3009::sign_window(
        PAYER_KEY,
        PAYER,
        PAY_TO,
        1_000,
        x402_testkit::eip3009::random_nonce(),
        (now - 600, now - 30),
    );
    let expired = bend(&header, |p| p["payload"] = expired);
    let answer = get(&weather, Some(("PAYMENT-SIGNATURE", &expired))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        error_of(&answer),
        "invalid_exact_evm_payload_authorization_valid_before"
    );
    nothing_moved(&stack, before).await;

    // Used once (paid), then replayed: refused, and it moved once.
    let paid = get(&weather, Some(("PAYMENT-SIGNATURE", &header))).await;
    assert_eq!(paid.status, StatusCode::OK);
    assert_eq!(
        paid.settlement.as_ref().map(|s| s["success"].clone()),
        Some(json!(true))
    );
    let replay = get(&weather, Some(("PAYMENT-SIGNATURE", &header))).await;
    assert_eq!(replay.status, StatusCode::PAYMENT_REQUIRED);
    assert!(
        replay.settlement.is_none(),
        "verify refused it: no settlement was tried"
    );
    assert_eq!(error_of(&replay), "invalid_exact_evm_nonce_already_used");
    assert_eq!(stack.balances().await, (before.0 - 1_000, before.1 + 1_000));
}

#[tokio::test]
async fn a_v1_replay_is_refused_in_v1() {
    let stack = start().await;
    let before = stack.balances().await;
    let weather = format!("{}/weather", stack.api_url);
    let header = official_header("header-v1", &weather).await;
    let paid = get(&weather, Some(("X-PAYMENT", &header))).await;
    assert_eq!(paid.status, StatusCode::OK);
    let settlement = paid.settlement.expect("X-PAYMENT-RESPONSE");
    assert_eq!(settlement["network"], "base-sepolia");
    let replay = get(&weather, Some(("X-PAYMENT", &header))).await;
    assert_eq!(replay.status, StatusCode::PAYMENT_REQUIRED);
    assert!(replay.required.is_none(), "v1 is answered in the body");
    assert_eq!(replay.body["error"], "invalid_exact_evm_nonce_already_used");
    assert_eq!(replay.body["x402Version"], 1);
    assert_eq!(stack.balances().await, (before.0 - 1_000, before.1 + 1_000));
}

#[tokio::test]
async fn a_facilitator_that_is_down_gives_503_and_no_content() {
    let stack = start().await;
    let before = stack.balances().await;
    let header = official_header("header", &format!("{}/weather", stack.api_url)).await;
    let closed = x402_testkit::free_port();
    let (down_api, _stop) =
        support::serve(support::api(&format!("http://127.0.0.1:{closed}"))).await;
    let answer = get(
        &format!("{down_api}/weather"),
        Some(("PAYMENT-SIGNATURE", &header)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    assert!(answer.body["error"]
        .as_str()
        .unwrap_or("")
        .contains("nothing was charged"));
    assert!(
        !answer.body.to_string().contains("sunny"),
        "no content for free"
    );
    nothing_moved(&stack, before).await;
}

#[tokio::test]
async fn a_failing_or_overcharging_handler_settles_nothing() {
    let stack = start().await;
    let before = stack.balances().await;
    for (route, status) in [
        ("/broken", StatusCode::INTERNAL_SERVER_ERROR),
        ("/overcharge", StatusCode::INTERNAL_SERVER_ERROR),
        ("/undercharge", StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let url = format!("{}{route}", stack.api_url);
        let header = official_header("header", &url).await;
        let answer = get(&url, Some(("PAYMENT-SIGNATURE", &header))).await;
        assert_eq!(answer.status, status, "{route}: {}", answer.body);
        assert!(answer.settlement.is_none(), "{route}: nothing settled");
        assert_ne!(answer.body, json!("content"), "{route}: no content");
    }
    nothing_moved(&stack, before).await;
}

#[tokio::test]
async fn two_payment_headers_at_once_are_refused() {
    let stack = start().await;
    let weather = format!("{}/weather", stack.api_url);
    let response = reqwest::Client::new()
        .get(&weather)
        .header("PAYMENT-SIGNATURE", "e30=")
        .header("X-PAYMENT", "e30=")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let required = response
        .headers()
        .get(headers::PAYMENT_REQUIRED)
        .map(|v| headers::decode_payment_required(v.to_str().unwrap_or("")).expect("decodes"));
    let error = required.and_then(|r| r.error).unwrap_or_default();
    assert!(error.contains("send one"), "{error}");
}

#[tokio::test]
async fn one_payment_sent_many_times_at_once_buys_one_answer() {
    let stack = start().await;
    let before = stack.balances().await;
    let weather = format!("{}/weather", stack.api_url);
    let header = official_header("header", &weather).await;
    let copies = (0..8).map(|_| get(&weather, Some(("PAYMENT-SIGNATURE", &header))));
    let answers = futures::future::join_all(copies).await;
    let paid: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .collect();
    assert_eq!(
        paid.len(),
        1,
        "{:?}",
        answers
            .iter()
            .map(|a| (a.status, error_of(a)))
            .collect::<Vec<_>>()
    );
    for refused in answers.iter().filter(|a| a.status != StatusCode::OK) {
        assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
        assert!(!refused.body.to_string().contains("sunny"));
    }
    assert_eq!(stack.balances().await, (before.0 - 1_000, before.1 + 1_000));
}
