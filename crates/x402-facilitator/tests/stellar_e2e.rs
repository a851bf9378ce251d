//! exact on Stellar against the local Stellar node **stand-in** (`tools/stellarnode`: the real
//! Soroban host applies and simulates every invocation, with the built-in Stellar Asset
//! Contract as the token; the ledger, queue rules and JSON-RPC around it are ours, since no
//! registry here ships stellar-core or stellar-rpc). Payments are built and signed by the
//! official client, `@x402/stellar` 2.9.0, and the official `@x402/core` facilitator client
//! calls us.

#[path = "support/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;
#[path = "support/scratch.rs"]
mod scratch;

mod stellar_world;

use fault_proxy::Fault;
use serde_json::{json, Value};
use stellar_world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_stellar_client_payments_settle_once_and_every_forgery_is_refused_stand_in() {
    let w = world(false, "").await;
    let sequence = w.node.sequence_number(&w.fee_payer.address);
    let world = w.description().to_string();
    let (passed, stdout) = scratch::run_stellar_js("stellar-conformance.mjs", &[&world]).await;
    assert!(passed, "Stellar conformance failed:\n{stdout}");
    // Checked on the node's own ledger too: one payment moved, once, in one transaction of
    // the fee-paying account; no forgery moved anything.
    assert_eq!(w.usdc_of(&w.merchant), 1_250_000);
    assert_eq!(w.usdc_of(&w.payer), PAYER_USDC - 1_250_000);
    assert_eq!(w.node.balance("EURC", &w.merchant.address), Some(0));
    assert_eq!(w.usdc_of(&w.stranger), 0);
    assert_eq!(w.usdc_of(&w.fee_payer), PAYER_USDC);
    assert_eq!(w.node.applied(), 1);
    let after = w.node.sequence_number(&w.fee_payer.address);
    assert_eq!(after, sequence.map(|s| s + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_above_the_cap_is_refused_and_a_v1_request_is_told_v2_serves_stellar_stand_in() {
    let w = world(false, "max_fee_stroops = 150\n").await;
    let mut payments = w.payments(&w.payer, 1_000, 1).await;
    let one = payments.remove(0);
    let (payload, requirements) = (&one["payload"], &one["requirements"]);
    let verdict = w.post("/verify", payload, requirements).await;
    assert_eq!(verdict["isValid"], false, "{verdict}");
    assert_eq!(
        verdict["invalidReason"], "invalid_exact_stellar_payload_fee_exceeds_maximum",
        "{verdict}"
    );
    assert_eq!(verdict["payer"], w.payer.address.as_str());
    let settled = w.post("/settle", payload, requirements).await;
    assert_eq!(settled["success"], false, "{settled}");
    assert_eq!(settled["network"], NETWORK);
    assert_eq!(w.node.applied(), 0);

    // v1 names the network `stellar-testnet`; the spec is v2 only.
    let v1 = json!({"x402Version": 1, "paymentPayload": {"x402Version": 1, "scheme": "exact",
            "network": "stellar-testnet", "payload": payload["payload"]},
        "paymentRequirements": {"scheme": "exact", "network": "stellar-testnet", "maxAmountRequired": "1000",
            "resource": "http://127.0.0.1/r", "description": "", "mimeType": "application/json",
            "payTo": w.merchant.address, "maxTimeoutSeconds": 60, "asset": w.usdc}});
    let response = w
        .http
        .post(format!("{}/verify", w.url))
        .json(&v1)
        .send()
        .await
        .expect("answers");
    let status = response.status();
    let answer: Value = response.json().await.expect("json");
    assert!(status.as_u16() < 500, "{status}: {answer}");
    let text = answer.to_string();
    assert_eq!(answer["isValid"], false, "{answer}");
    assert_eq!(answer["invalidReason"], "invalid_x402_version", "{answer}");
    assert!(
        text.contains("v2 only"),
        "the refusal says v2 serves it: {answer}"
    );
    assert_eq!(w.node.applied(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_health_reads_the_node_passphrase_ledger_and_fee_payer_balance_stand_in() {
    let w = world(false, "").await;
    let deep = w.get("/health/deep").await;
    scratch::assert_checks_pass(
        &deep,
        NETWORK,
        &[
            "rpc_reachable",
            "network_passphrase",
            "latest_ledger",
            "signer_gas_balance",
        ],
    );
    assert!(
        !deep.to_string().contains(&w.node.url),
        "the RPC URL is a secret: {deep}"
    );

    // A floor above what the fee payer holds fails the balance check, and only it.
    let poor = world(false, "min_signer_balance = \"100000000000000\"\n").await;
    let deep = poor.get("/health/deep").await;
    let balance = deep["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "signer_gas_balance"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(balance["ok"], false, "{deep}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_answer_is_our_trouble_and_an_unknown_outcome_is_pending_stand_in() {
    let w = world(true, "receipt_timeout_ms = 1500\n").await;
    let proxy = w.proxy.as_ref().expect("proxied");
    let mut payments = w.payments(&w.payer, 1_000, 1).await;
    let one = payments.remove(0);
    let (payload, requirements) = (&one["payload"], &one["requirements"]);

    proxy.set(Fault::Reset);
    let verdict = w.post("/verify", payload, requirements).await;
    assert_eq!(verdict["isValid"], false, "{verdict}");
    assert_eq!(verdict["invalidReason"], "rpc_unavailable", "{verdict}");
    proxy.set(Fault::MethodError(
        "simulateTransaction",
        -32603,
        "internal error".into(),
    ));
    let verdict = w.post("/verify", payload, requirements).await;
    assert_eq!(verdict["invalidReason"], "rpc_unavailable", "{verdict}");
    assert_eq!(w.node.applied(), 0);

    // The status reads fail after the broadcast: the answer is pending, with the hash.
    proxy.set(Fault::MethodError(
        "getTransaction",
        -32603,
        "internal error".into(),
    ));
    let pending = w.post("/settle", payload, requirements).await;
    assert_eq!(pending["success"], false, "{pending}");
    assert_eq!(pending["errorReason"], "settlement_pending", "{pending}");
    let hash = pending["transaction"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(hash.len(), 64, "{pending}");

    // The node answers again: the same request learns the outcome, nothing is sent twice.
    proxy.set(Fault::None);
    let settled = w.post("/settle", payload, requirements).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["transaction"], hash.as_str());
    assert_eq!(w.node.applied(), 1);
    assert_eq!(w.usdc_of(&w.merchant), 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_settles_of_one_payment_send_one_transaction_stand_in() {
    let w = world(false, "").await;
    let one = w.payments(&w.payer, 777, 1).await.remove(0);
    let body = scratch::payment_body(&one["payload"], &one["requirements"]);
    let url = format!("{}/settle", w.url);
    let answers = scratch::post_all_at_once(&w.http, &url, vec![body; 6]).await;
    scratch::assert_one_settlement(&answers);
    assert_eq!(w.node.applied(), 1);
    assert_eq!(w.usdc_of(&w.merchant), 777);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_payments_settled_at_once_from_one_account_all_land_once_stand_in() {
    // The fee-paying account has one queue slot and one sequence: the settlements signed at
    // the same sequence wait for the slot, and those whose sequence went to another are
    // replaced; each payment still moves exactly once.
    let w = world(false, "receipt_timeout_ms = 20000\n").await;
    let payments = w.payments(&w.payer, 1_000, 3).await;
    let bodies = payments
        .iter()
        .map(|one| scratch::payment_body(&one["payload"], &one["requirements"]))
        .collect();
    let answers = scratch::post_all_at_once(&w.http, &format!("{}/settle", w.url), bodies).await;
    for answer in &answers {
        assert_eq!(answer["success"], true, "{answers:?}");
    }
    let hashes: std::collections::BTreeSet<&str> = answers
        .iter()
        .filter_map(|a| a["transaction"].as_str())
        .collect();
    assert_eq!(hashes.len(), 3, "{answers:?}");
    assert_eq!(w.usdc_of(&w.merchant), 3_000);
    assert_eq!(w.usdc_of(&w.payer), PAYER_USDC - 3_000);
    // A replaced transaction was refused before it was queued: none cost a fee.
    assert_eq!(w.node.applied(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_who_spends_the_balance_after_verify_is_refused_at_settle_with_nothing_sent_stand_in(
) {
    // A hostile payer: a small payment verified, then the whole balance spent by a second
    // payment settled first. The first one's settle simulates again and is refused before
    // anything is signed, so this facilitator pays no fee for it.
    let w = world(false, "").await;
    let small = w.payments(&w.payer, 1_000, 1).await.remove(0);
    let verdict = w
        .post("/verify", &small["payload"], &small["requirements"])
        .await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    let all = w.payments(&w.payer, PAYER_USDC, 1).await.remove(0);
    let drained = w
        .post("/settle", &all["payload"], &all["requirements"])
        .await;
    assert_eq!(drained["success"], true, "{drained}");
    let xlm_before = w.node.xlm(&w.fee_payer.address);
    let refused = w
        .post("/settle", &small["payload"], &small["requirements"])
        .await;
    assert_eq!(refused["success"], false, "{refused}");
    assert_eq!(
        refused["errorReason"], "invalid_exact_stellar_payload_simulation_failed",
        "{refused}"
    );
    assert_eq!(refused["payer"], w.payer.address.as_str());
    assert_eq!(refused["transaction"], "", "{refused}");
    assert_eq!(w.node.applied(), 1);
    assert_eq!(w.node.xlm(&w.fee_payer.address), xlm_before, "no fee paid");
    assert_eq!(w.usdc_of(&w.merchant), PAYER_USDC);
}
