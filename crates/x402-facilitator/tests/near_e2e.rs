//! exact on NEAR against the local NEAR node **stand-in** (`tools/nearnode`: nearcore's
//! published types, hashing and signature checks; the delegate-action rules of nearcore's
//! runtime and a NEP-141 token ledger written by us, since no registry here ships `neard`).
//! Payments in the conformance run are built and signed by `near-api-js`; the official
//! `@x402/core` facilitator client calls us. The fault tests sign with nearcore's own
//! `SignedDelegateAction::sign`.

#[path = "support/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;
#[path = "support/scratch.rs"]
mod scratch;

mod near_world;

use fault_proxy::Fault;
use near_world::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_api_js_payments_settle_once_and_every_forgery_is_refused_stand_in() {
    let w = world(false, 20_000).await;
    let world = w.description().to_string();
    let (passed, stdout) = scratch::run_js("near-conformance.mjs", &[&world]).await;
    assert!(passed, "NEAR conformance failed:\n{stdout}");
    // Checked from here too, on the node's own state: one payment moved, once, and the node
    // accepted two transactions (the relayer's and the payer's own storage deposit).
    assert_eq!(w.node.ft_balance(TOKEN, MERCHANT), 1_250_000);
    assert_eq!(w.node.ft_balance(TOKEN, PAYER), PAYER_TOKENS - 1_250_000);
    assert_eq!(w.node.ft_balance(OTHER_TOKEN, MERCHANT), 0);
    assert_eq!(w.node.transactions(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_health_passes_on_the_stand_in_only_when_it_is_declared_one() {
    let foreign = world_with(false, 20_000, false).await;
    let deep = foreign.get("/health/deep").await;
    let chain_id = deep["checks"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["name"] == "chain_id" && c["network"] == NETWORK)
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(chain_id["ok"], false, "{deep}");
    assert!(
        chain_id["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("x402-local"),
        "{deep}"
    );

    let w = world(false, 20_000).await;
    let deep = w.get("/health/deep").await;
    scratch::assert_checks_pass(
        &deep,
        NETWORK,
        &[
            "rpc_reachable",
            "chain_id",
            "head_block",
            "signer_gas_balance",
        ],
    );
    let text = deep.to_string();
    assert!(
        !text.contains(&w.node.url),
        "the RPC URL is a secret: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_answer_is_our_trouble_and_an_unknown_outcome_is_pending_stand_in() {
    let w = world(true, 1_500).await;
    let proxy = w.proxy.as_ref().expect("relayed");
    let (payload, requirements) = w.payment(1_000).await;

    proxy.set(Fault::Reset);
    let verdict = w.post("/verify", &payload, &requirements).await;
    assert_eq!(verdict["isValid"], false, "{verdict}");
    assert_eq!(verdict["invalidReason"], "rpc_unavailable", "{verdict}");
    assert_eq!(w.node.transactions(), 0);

    // The status reads fail after the broadcast: the answer is pending, with the hash.
    proxy.set(Fault::MethodError("tx", -32000, "Server error".into()));
    let pending = w.post("/settle", &payload, &requirements).await;
    assert_eq!(pending["success"], false, "{pending}");
    assert_eq!(pending["errorReason"], "settlement_pending", "{pending}");
    let hash = pending["transaction"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(hash.len() > 30, "{pending}");
    assert_eq!(w.node.transactions(), 1);

    // The node answers again: the same request learns the outcome, nothing is sent twice.
    proxy.set(Fault::None);
    let settled = w.post("/settle", &payload, &requirements).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["transaction"], hash.as_str());
    assert_eq!(w.node.transactions(), 1);
    assert_eq!(w.node.ft_balance(TOKEN, MERCHANT), 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_settles_of_one_payment_send_one_transaction_stand_in() {
    let w = world(false, 20_000).await;
    let (payload, requirements) = w.payment(777).await;
    let body = scratch::payment_body(&payload, &requirements);
    let url = format!("{}/settle", w.url);
    let answers = scratch::post_all_at_once(&w.http, &url, vec![body; 8]).await;
    scratch::assert_one_settlement(&answers);
    assert_eq!(w.node.transactions(), 1);
    assert_eq!(w.node.ft_balance(TOKEN, MERCHANT), 777);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_receipt_that_fails_under_a_successful_transaction_is_a_failure_with_the_hash_stand_in(
) {
    let w = world(false, 20_000).await;
    let (payload, requirements) = w.payment(4_321).await;
    let verdict = w.post("/verify", &payload, &requirements).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    // The issuer pauses the token: views still answer, the transfer itself panics, and
    // nearcore's transaction status stays SuccessValue (the delegate receipt succeeded).
    w.node_call(
        "x402_stand_in_pause_token",
        json!({"account_id": TOKEN, "paused": true}),
    )
    .await;
    let failed = w.post("/settle", &payload, &requirements).await;
    assert_eq!(failed["success"], false, "{failed}");
    assert_eq!(
        failed["errorReason"], "invalid_exact_near_transaction_failed",
        "{failed}"
    );
    let hash = failed["transaction"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        hash.len() > 30,
        "after a broadcast the answer carries the hash: {failed}"
    );
    let outcome = w
        .node_call("tx", json!({"tx_hash": hash, "wait_until": "FINAL"}))
        .await;
    assert!(
        outcome["result"]["status"].get("SuccessValue").is_some(),
        "{outcome}"
    );
    assert_eq!(w.node.ft_balance(TOKEN, MERCHANT), 0);
    assert_eq!(w.node.ft_balance(TOKEN, PAYER), PAYER_TOKENS);
    // The outcome is recorded: the same request gets it again and nothing more is sent.
    let again = w.post("/settle", &payload, &requirements).await;
    assert_eq!(
        again["errorReason"], "invalid_exact_near_transaction_failed",
        "{again}"
    );
    assert_eq!(again["transaction"], hash.as_str());
    assert_eq!(w.node.transactions(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_encoded_by_uvd_x402_sdk_and_signed_by_pynacl_settles_once_stand_in() {
    let w = world(false, 20_000).await;
    let python = std::env::var("X402_NEAR_PYTHON").expect(
        "X402_NEAR_PYTHON: the virtualenv of tests/near-python (scripts/test.sh installs it)",
    );
    let script = scratch::js_dir().join("../near-python/uvd_payment.py");
    let secret = w.secret("payer");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args([&w.node.url, PAYER, &secret, TOKEN, MERCHANT, "2500", "120"])
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let encoded = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let (payload, requirements) = w.payment_of(&encoded, 2_500);
    let verdict = w.post("/verify", &payload, &requirements).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    assert_eq!(verdict["payer"], PAYER);
    let settled = w.post("/settle", &payload, &requirements).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(w.node.ft_balance(TOKEN, MERCHANT), 2_500);
    assert_eq!(w.node.transactions(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayer_transaction_whose_nonce_went_stale_unsent_is_replaced_and_settles_once_stand_in()
{
    let w = world(true, 1_500).await;
    let proxy = w.proxy.as_ref().expect("relayed");
    let (payload, requirements) = w.payment(3_333).await;
    // The send fails before the node took it: the recorded transaction is kept, the answer
    // is pending.
    proxy.set(Fault::Withhold("send_tx"));
    let pending = w.post("/settle", &payload, &requirements).await;
    assert_eq!(pending["errorReason"], "settlement_pending", "{pending}");
    let first = pending["transaction"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(w.node.transactions(), 0);
    // Meanwhile the relayer key signs something else far above the recorded nonce.
    w.relayer_transaction(1_000).await;
    proxy.set(Fault::None);
    // The retry sends the recorded bytes, the node refuses them as InvalidNonce, and a
    // replacement at a fresh nonce settles the payment, under a new hash.
    let settled = w.post("/settle", &payload, &requirements).await;
    assert_eq!(settled["success"], true, "{settled}");
    let second = settled["transaction"].as_str().unwrap_or_default();
    assert!(
        second.len() > 30 && second != first,
        "{first} then {settled}"
    );
    assert_eq!(w.node.ft_balance(TOKEN, MERCHANT), 3_333);
    assert_eq!(
        w.node.transactions(),
        2,
        "the relayer's own and the replacement"
    );
    let metrics = w.metrics().await;
    let replaced = metrics.lines().any(|l| {
        l.starts_with("x402_settlement_replacements_total") && l.trim_end().ends_with(" 1")
    });
    assert!(replaced, "{metrics}");
}
