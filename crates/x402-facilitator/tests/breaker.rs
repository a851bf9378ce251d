//! The v2 settle breaker against the real binary on anvil: payer refusals and one payer's
//! failures never trip it, facilitator-side failures from several payers do, and only an
//! operator (the admin API on its own listener, with the token) turns v2 settle on again.

mod support;

use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::BASE_SEPOLIA_USDC;

const ADMIN_TOKEN: &str = "test-admin-9f8e7d6c5b4a3210";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_turns_v2_settle_off_and_only_an_operator_turns_it_on() {
    let chain = chain_with_token(&[]).await;
    let admin_port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let admin_addr = format!("127.0.0.1:{admin_port}");
    let process = Process::spawn(
        &chain,
        &[
            ("BREAKER_THRESHOLD", "3"),
            ("BREAKER_WINDOW_SECONDS", "600"),
            ("BREAKER_PROBE_AFTER_SECONDS", "0"),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("ADMIN_ADDR", &admin_addr),
        ],
        &[],
    )
    .await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", process.url);
    let flags = || async {
        let (_, text) = get_text(&http, &url("/flags")).await;
        serde_json::from_str::<Value>(&text).unwrap()
    };

    // Payer-side refusals never count.
    for _ in 0..4 {
        let mut payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
        payload["authorization"]["value"] = json!("10001");
        let (_, answer) = post_json(&http, &url("/settle"), &v2_body(payload, "10001")).await;
        assert_eq!(
            answer["errorReason"], "invalid_exact_evm_signature",
            "{answer}"
        );
    }
    assert_eq!(flags().await["v2_settle_enabled"], true);

    // The facilitator's signer runs out of gas: real facilitator-side failures. One payer's
    // failures, however many, do not trip it (one payer cannot switch v2 off for all).
    chain
        .mint(BASE_SEPOLIA_USDC, DEV_ACCOUNTS_3, 1_000_000)
        .await
        .unwrap();
    let signer_balance = drain_signer_gas(&chain).await;
    let no_gas = |key: &'static str| {
        let http = http.clone();
        let settle = url("/settle");
        async move {
            let payload = sign_authorization(key, PAY_TO, 10_000, random_nonce());
            let (_, answer) = post_json(&http, &settle, &v2_body(payload, "10000")).await;
            assert_eq!(
                answer["errorReason"], "facilitator_insufficient_gas",
                "{answer}"
            );
        }
    };
    for _ in 0..3 {
        no_gas(PAYER_KEY).await;
    }
    assert_eq!(flags().await["v2_settle_enabled"], true, "one payer only");
    no_gas(DEV_ACCOUNTS_3_KEY).await;
    assert_tripped(&process, &http).await;

    // v2 settle is refused by the flag; v2 verify and v1 settle still run.
    restore_signer_gas(&chain, signer_balance).await;
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let (_, refused) = post_json(&http, &url("/settle"), &v2_body(payload.clone(), "10000")).await;
    assert_eq!(refused["errorReason"], "feature_disabled");
    assert_eq!(refused["network"], "eip155:84532");
    let (_, verified) = post_json(&http, &url("/verify"), &v2_body(payload.clone(), "10000")).await;
    assert_eq!(verified["isValid"], true);

    admin_api_turns_it_on(&http, &process.url, &admin_addr, payload).await;
}

/// The breaker's trip as an operator sees it: the log line, `/flags`, metrics, v2 health.
async fn assert_tripped(process: &Process, http: &reqwest::Client) {
    let url = |path: &str| format!("{}{path}", process.url);
    let flags = || async {
        let (_, text) = get_text(http, &url("/flags")).await;
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let tripped = process
        .wait_log(|l| l["message"] == "v2 settle disabled by breaker")
        .await;
    assert_eq!(tripped["level"], "ERROR");
    assert_eq!(tripped["probe"], "an operator must re-enable it");
    let now = flags().await;
    assert_eq!(now["v2_settle_enabled"], false);
    assert_eq!(now["disabled_by"]["v2_settle_enabled"]["by"], "breaker");
    assert!(now["disabled_by"]["v2_settle_enabled"]["reason"]
        .as_str()
        .unwrap()
        .contains("4 facilitator-side v2 settlement failures from 2 payers"));
    let (_, text) = get_text(http, &url("/metrics")).await;
    assert_eq!(metric(&text, "x402_breaker_trips_total", &[]), 1.0);
    assert_eq!(
        metric(
            &text,
            "x402_feature_flag_enabled",
            &[("flag", "v2_settle_enabled")]
        ),
        0.0
    );
    let (status, _) = get_text(http, &url("/health/v2")).await;
    assert_eq!(status, 503);
}

/// The admin API on its own listener wants the token; with it, v2 settle is on again and
/// `payload` settles.
async fn admin_api_turns_it_on(
    http: &reqwest::Client,
    main_url: &str,
    admin_addr: &str,
    payload: Value,
) {
    let url = |path: &str| format!("{main_url}{path}");
    // The admin API lives on its own listener and wants the token.
    let admin = format!("http://{admin_addr}/admin/flags");
    let on = json!({"v2_settle_enabled": true});
    let (status, _) = get_text(http, &url("/admin/flags")).await;
    assert_eq!(
        status, 404,
        "not on the main listener when ADMIN_ADDR is set"
    );
    let status = http.put(&admin).json(&on).send().await.unwrap().status();
    assert_eq!(status, 401);
    let status = http
        .put(&admin)
        .bearer_auth("wrong-token-wrong-token")
        .json(&on)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let status = http
        .put(&admin)
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"v2_settle_enabled": "yes"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    let answer: Value = http
        .put(&admin)
        .bearer_auth(ADMIN_TOKEN)
        .json(&on)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["flags"]["v2_settle_enabled"], true, "{answer}");
    assert_eq!(answer["flags"]["disabled_by"], json!({}));
    let (_, settled) = post_json(http, &url("/settle"), &v2_body(payload, "10000")).await;
    assert_eq!(settled["success"], true, "{settled}");
}
