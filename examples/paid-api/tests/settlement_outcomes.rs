//! What happens after the handler ran: a payer who spends the money meanwhile gets no
//! content (402 with the failed settlement header), and a settlement that is not final in
//! time gets 504 with its transaction and no content, and lands once.

mod support;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{official_header, pay, start, start_with, PAYER, PAY_TO};
use x402_axum::{PaymentLayer, Paywall};
use x402_facilitator_client::{ClientOptions, FacilitatorClient};
use x402_testkit::anvil::{BASE_SEPOLIA_USDC, DEV_ACCOUNTS};

/// JSON-RPC on anvil from inside a handler.
async fn rpc(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer: Value = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("anvil answers")
        .json()
        .await
        .expect("json");
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

/// The payer moves all its test USDC away (anvil impersonation): a payer spending the
/// money between verify and settle.
async fn drain_payer(rpc_url: &str) {
    let balance = rpc(
        rpc_url,
        "eth_call",
        json!([{"to": BASE_SEPOLIA_USDC, "data": format!("0x70a08231{:0>64}", &PAYER[2..])}, "latest"]),
    )
    .await;
    let amount = balance
        .as_str()
        .expect("hex")
        .trim_start_matches("0x")
        .to_owned();
    let to = &DEV_ACCOUNTS[3].0[2..];
    let data = format!("0xa9059cbb{to:0>64}{amount:0>64}");
    rpc(rpc_url, "anvil_impersonateAccount", json!([PAYER])).await;
    let hash = rpc(
        rpc_url,
        "eth_sendTransaction",
        json!([{"from": PAYER, "to": BASE_SEPOLIA_USDC, "data": data}]),
    )
    .await;
    // anvil answers before it mines: the drain must have landed before the handler returns,
    // or the settlement's checks could read the chain on both sides of it.
    while rpc(rpc_url, "eth_getTransactionReceipt", json!([hash]))
        .await
        .is_null()
    {
        tokio::task::yield_now().await;
    }
}

fn decoded(response: &reqwest::Response, name: &str) -> Option<Value> {
    let value = response.headers().get(name)?;
    serde_json::from_slice(&STANDARD.decode(value.as_bytes()).ok()?).ok()
}

#[tokio::test]
async fn a_payer_who_spends_the_money_while_the_handler_runs_gets_no_content() {
    let stack = start().await;
    let rpc_url = stack.chain.rpc_url.clone();
    let facilitator =
        FacilitatorClient::new(&stack.facilitator_url, ClientOptions::default()).expect("client");
    let settings = paid_api::Settings::dev();
    let paywall = Paywall::new(settings.price(1_000), "drained while served");
    let app = Router::new().route(
        "/drained",
        get(move || {
            let rpc_url = rpc_url.clone();
            async move {
                drain_payer(&rpc_url).await;
                "the paid content"
            }
        })
        .layer(PaymentLayer::new(facilitator, paywall)),
    );
    let (api, _stop) = support::serve(app).await;
    let url = format!("{api}/drained");
    let header = official_header("header", &url).await;
    let payee_before = stack.balances().await.1;

    let response = pay(&url, &header).await;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    let settlement = decoded(&response, "payment-response").expect("the failed settlement");
    assert_eq!(settlement["success"], false);
    assert_eq!(
        settlement["errorReason"], "invalid_exact_evm_insufficient_balance",
        "{settlement}"
    );
    let required = decoded(&response, "payment-required").expect("how to pay");
    assert_eq!(required["error"], settlement["errorReason"]);
    let body = response.text().await.expect("body");
    assert!(!body.contains("the paid content"), "{body}");
    assert_eq!(
        stack.balances().await.1,
        payee_before,
        "the payee got nothing"
    );
}

#[tokio::test]
async fn a_settlement_not_final_in_time_gets_504_with_its_transaction_and_lands_once() {
    let options = ClientOptions {
        pending_budget: Duration::from_millis(300),
        ..ClientOptions::default()
    };
    let stack = start_with(
        &[],
        |config| config.networks[0].receipt_timeout = Duration::from_secs(1),
        options,
    )
    .await;
    // Funded and ready; from now on transactions wait in the pool.
    stack
        .chain
        .rpc("evm_setAutomine", json!([false]))
        .await
        .expect("automine off");
    let before = stack.balances().await;
    let url = format!("{}/weather", stack.api_url);
    let header = official_header("header", &url).await;
    let response = pay(&url, &header).await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let settlement = decoded(&response, "payment-response").expect("the pending settlement");
    assert_eq!(
        settlement["errorReason"], "settlement_pending",
        "{settlement}"
    );
    let hash = settlement["transaction"].as_str().expect("hash").to_owned();
    assert_eq!(hash.len(), 66, "a transaction hash: {settlement}");
    let body = response.text().await.expect("body");
    assert!(
        !body.contains("sunny"),
        "no content before the payment is final"
    );
    assert_eq!(stack.balances().await, before, "not mined yet");

    stack
        .chain
        .rpc("anvil_mine", json!([1]))
        .await
        .expect("mined");
    let (ok, transfers) = stack.transfers_in(&hash).await;
    assert!(ok && transfers.len() == 1, "{transfers:?}");
    assert_eq!(
        stack.balances().await,
        (before.0 - 1_000, before.1 + 1_000),
        "it landed once"
    );
    assert!(transfers[0].1.eq_ignore_ascii_case(PAY_TO));
}

#[tokio::test]
async fn a_facilitator_with_v2_settle_switched_off_gives_503_and_blames_no_payer() {
    let stack = start_with(
        &[],
        |config| config.flags.v2_settle_enabled = false,
        ClientOptions::default(),
    )
    .await;
    let before = stack.balances().await;
    let url = format!("{}/weather", stack.api_url);
    let header = official_header("header", &url).await;
    let response = pay(&url, &header).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        decoded(&response, "payment-required").is_none(),
        "not a refusal of the payment"
    );
    let body = response.text().await.expect("body");
    assert!(
        body.contains("feature_disabled") && body.contains("nothing was charged"),
        "{body}"
    );
    assert!(!body.contains("sunny"));
    assert_eq!(stack.balances().await, before, "nothing moved");
}
