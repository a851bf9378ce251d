//! EVM `exact` end to end on a real anvil: the official x402 clients, settlement
//! idempotency and RPC economy.

mod support;

use support::*;
use x402_facilitator::config::VersionSupport;

const BOTH: VersionSupport = VersionSupport { v1: true, v2: true };

fn js_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_conformance() {
    let h = start(BOTH).await;
    let output = tokio::process::Command::new("node")
        .arg("conformance.mjs")
        .arg(&h.url)
        .arg(&h.chain.rpc_url)
        .current_dir(js_dir())
        .output()
        .await
        .expect("node runs (npm ci in tests/js first)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "conformance failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(!stdout.contains("not ok"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_round_trips_per_verify_and_settle() {
    let h = start(BOTH).await;
    // Warm the signer's nonce cache with one settlement.
    let warm = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 1, random_nonce()),
        "1",
    );
    assert_eq!(h.post("/settle", &warm).await.1["success"], true);

    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
        "10000",
    );
    let before = h.evm.rpc_round_trips();
    let (_, verdict) = h.post("/verify", &body).await;
    let verify_trips = h.evm.rpc_round_trips() - before;
    assert_eq!(verdict["isValid"], true);

    let before = h.evm.rpc_round_trips();
    let (_, settled) = h.post("/settle", &body).await;
    let settle_trips = h.evm.rpc_round_trips() - before;
    assert_eq!(settled["success"], true, "{settled}");
    println!("RPC round trips: verify {verify_trips}, settle {settle_trips}");
    assert_eq!(verify_trips, 1, "a verify is one batched round trip");
    // verify batch (with gas, fees, signer balance) + broadcast + receipt poll(s)
    assert!(settle_trips <= 4, "settle took {settle_trips} round trips");

    // A repeated settle of the same payment costs no broadcast and returns the same hash.
    let before = h.evm.rpc_round_trips();
    let (_, again) = h.post("/settle", &body).await;
    assert_eq!(again["transaction"], settled["transaction"]);
    assert_eq!(
        h.evm.rpc_round_trips() - before,
        0,
        "a retry of a settled payment is answered from memory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_settles_pay_once() {
    let h = start(BOTH).await;
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 7_000, random_nonce()),
        "7000",
    );
    let payer_before = h.balance(PAYER).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = h.http.clone();
        let url = format!("{}/settle", h.url);
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }));
    }
    let mut hashes = std::collections::HashSet::new();
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(answer["success"], true, "{answer}");
        hashes.insert(answer["transaction"].as_str().unwrap().to_owned());
    }
    assert_eq!(hashes.len(), 1, "one transaction for one payment");
    assert_eq!(payer_before - h.balance(PAYER).await, 7_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_wallet_signature_is_checked_with_eip1271() {
    let h = start(BOTH).await;
    let wallet = h.chain.deploy_wallet(PAYER).await.unwrap();
    h.chain
        .mint(x402_facilitator::dev::BASE_SEPOLIA_USDC, &wallet, 50_000)
        .await
        .unwrap();
    // The owner signs the wallet's authorization; the token asks the wallet (EIP-1271).
    let payload = support::sign_for_wallet(PAYER_KEY, &wallet, PAY_TO, 10_000);
    let (_, verdict) = h.post("/verify", &v2_body(payload.clone(), "10000")).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    let (_, settled) = h.post("/settle", &v2_body(payload, "10000")).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(h.balance(&wallet).await, 40_000);

    // A signature by a stranger is refused by the wallet.
    let stranger = support::sign_for_wallet(DEV_ACCOUNTS_3_KEY, &wallet, PAY_TO, 10_000);
    let (_, verdict) = h.post("/verify", &v2_body(stranger, "10000")).await;
    assert_eq!(verdict["invalidReason"], "invalid_exact_evm_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_rpc_is_not_the_payers_fault() {
    let mut h = start(BOTH).await;
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
        "10000",
    );
    // Stop the chain: the facilitator's RPC is gone.
    h.chain.stop().await;
    let (status, verify) = h.post("/verify", &body).await;
    assert_eq!(status, 200);
    assert_eq!(verify["isValid"], false);
    assert_eq!(verify["invalidReason"], "rpc_unavailable");
    assert_eq!(verify["payer"], PAYER);
    let (status, settle) = h.post("/settle", &body).await;
    assert_eq!(status, 200);
    assert_eq!(settle["success"], false);
    assert_eq!(settle["errorReason"], "rpc_unavailable");
    assert_eq!(settle["transaction"], "");
}
