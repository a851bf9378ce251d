//! exact on SVM against a real local Solana JSON-RPC node (surfpool-core in
//! `tools/surfnode`, built by scripts/test.sh): the official `@x402/svm` client for v2 and
//! v1 with SPL Token and Token-2022, and every negative case answered with its reason while
//! nothing moves.

#[path = "support/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;
#[path = "support/scratch.rs"]
mod scratch;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use fault_proxy::{Fault, FaultProxy};
use scratch::{free_port, run_js, serve_network, TempDir};
use serde_json::{json, Value};
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_svm::inspect::build::{
    self, compute_unit_limit as compute_limit, compute_unit_price as compute_price, memo,
};
use x402_svm::inspect::{
    associated_token_account, MEMO_PROGRAM, TOKEN_2022_PROGRAM, TOKEN_PROGRAM,
};
use x402_testkit::surfnode::{self, SurfNode};

mod svm_world;
use svm_world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_svm_client_pays_through_the_facilitator() {
    let w = world().await;
    // The local node is accepted as the devnet stand-in the configuration says it is.
    let deep = w.get("/health/deep").await;
    let chain_check = deep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "chain_id" && c["network"] == DEVNET)
        .cloned()
        .unwrap_or_default();
    assert_eq!(chain_check["ok"], true, "{deep}");
    let (url, rpc, payer) = (&w.url, &w.node.url, w.payer.to_base58_string());
    let (pay_to, mint, mint_2022) = (
        w.pay_to.to_string(),
        w.mint.to_string(),
        w.mint_2022.to_string(),
    );
    let args = [url.as_str(), rpc, &payer, &pay_to, &mint, &mint_2022];
    let (passed, stdout) = run_js("svm-conformance.mjs", &args).await;
    assert!(passed, "official client conformance failed:\n{stdout}");
    // Checked from here too: two payments per mint (v2 12345, v1 2345), each once.
    let (_, pay_to_spl, _, pay_to_2022) = w.balances().await;
    assert_eq!(pay_to_spl, 12_345 + 2_345);
    assert_eq!(pay_to_2022, 12_345 + 2_345);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_reason_and_moves_nothing() {
    let w = world().await;
    let stranger = Keypair::new();
    let spl = (w.mint, TOKEN_PROGRAM);
    let before = w.balances().await;

    let mut cases = drain_and_budget_cases(&w, &stranger).await;
    cases.extend(transfer_cases(&w, &stranger).await);

    for (name, transaction, amount, reason) in &cases {
        let body = w.body(transaction, &spl.0, *amount);
        let verdict = w.post("/verify", &body).await;
        assert_eq!(verdict["isValid"], false, "{name}: {verdict}");
        assert_eq!(verdict["invalidReason"], *reason, "{name}: {verdict}");
        // Every refusal names the transfer authority the payload shows (the fee payer
        // itself when it is made the authority).
        let authority = if *name == "fee payer as authority" {
            w.fee_payer.to_string()
        } else {
            w.payer.pubkey().to_string()
        };
        assert_eq!(verdict["payer"], authority.as_str(), "{name}: {verdict}");
        let settled = w.post("/settle", &body).await;
        assert_eq!(settled["success"], false, "{name}: {settled}");
        assert_eq!(settled["errorReason"], *reason, "{name}: {settled}");
        assert_eq!(settled["transaction"], "", "{name}: nothing sent");
        assert_eq!(settled["payer"], authority.as_str(), "{name}: {settled}");
    }
    assert_eq!(w.balances().await, before, "no refusal moved anything");
}

/// A refusal case: what it is, the transaction, the amount required, the reason.
type Case = (&'static str, String, u64, &'static str);

/// The fee payer made to pay or drain, the compute price over the cap, an extra transfer.
async fn drain_and_budget_cases(w: &World, stranger: &Keypair) -> Vec<Case> {
    let spl = (w.mint, TOKEN_PROGRAM);
    let good = |amount| w.good_instructions(&spl.0, &spl.1, amount);
    let mut cases: Vec<Case> = Vec::new();
    // The fee payer in an instruction's accounts, and as the transfer authority (drains).
    let mut ix = good(1_000);
    ix[3] = Instruction::new_with_bytes(
        MEMO_PROGRAM,
        b"drain",
        vec![AccountMeta::new(w.fee_payer, true)],
    );
    cases.push((
        "fee payer in accounts",
        w.transaction(&ix, &[&w.payer], None).await,
        1_000,
        "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds",
    ));
    let mut ix = good(1_000);
    ix[2] = transfer_checked(
        &spl.1,
        associated_token_account(&w.fee_payer, &spl.0, &spl.1),
        spl.0,
        associated_token_account(&w.pay_to, &spl.0, &spl.1),
        w.fee_payer,
        1_000,
    );
    cases.push((
        "fee payer as authority",
        w.transaction(&ix, &[&w.payer], None).await,
        1_000,
        "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds",
    ));
    // Compute price over the cap.
    let mut ix = good(1_000);
    ix[1] = compute_price(5_000_001);
    cases.push((
        "compute price over the cap",
        w.transaction(&ix, &[&w.payer], None).await,
        1_000,
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high",
    ));
    // An extra SOL transfer.
    let mut ix = good(1_000);
    let mut data = vec![2, 0, 0, 0];
    data.extend_from_slice(&1_000_000u64.to_le_bytes());
    ix.push(Instruction::new_with_bytes(
        Pubkey::from_str_const("11111111111111111111111111111111"),
        &data,
        vec![
            AccountMeta::new(w.payer.pubkey(), true),
            AccountMeta::new(stranger.pubkey(), false),
        ],
    ));
    cases.push((
        "extra SOL transfer",
        w.transaction(&ix, &[&w.payer], None).await,
        1_000,
        "invalid_exact_svm_payload_unknown_fifth_instruction", // after the memo
    ));
    cases
}

/// The transfer itself wrong (mint, destination, amount), signed by another key, or on a
/// blockhash the node does not know.
async fn transfer_cases(w: &World, stranger: &Keypair) -> Vec<Case> {
    let spl = (w.mint, TOKEN_PROGRAM);
    let good = |amount| w.good_instructions(&spl.0, &spl.1, amount);
    let mut cases: Vec<Case> = Vec::new();
    // Wrong mint, wrong destination, amount short and over.
    let ix = w.good_instructions(&w.mint_2022, &TOKEN_2022_PROGRAM, 1_000);
    cases.push((
        "wrong mint",
        w.transaction(&ix, &[&w.payer], None).await,
        1_000,
        "invalid_exact_svm_payload_mint_mismatch",
    ));
    let mut ix = good(1_000);
    ix[2] = transfer_checked(
        &spl.1,
        associated_token_account(&w.payer.pubkey(), &spl.0, &spl.1),
        spl.0,
        associated_token_account(&stranger.pubkey(), &spl.0, &spl.1),
        w.payer.pubkey(),
        1_000,
    );
    cases.push((
        "wrong destination",
        w.transaction(&ix, &[&w.payer], None).await,
        1_000,
        "invalid_exact_svm_payload_recipient_mismatch",
    ));
    cases.push((
        "amount short",
        w.transaction(&good(999), &[&w.payer], None).await,
        1_000,
        "invalid_exact_svm_payload_amount_mismatch",
    ));
    cases.push((
        "amount over",
        w.transaction(&good(1_001), &[&w.payer], None).await,
        1_000,
        "invalid_exact_svm_payload_amount_mismatch",
    ));
    // A signature from another key in the payer's place.
    let tx = w.transaction(&good(1_000), &[&w.payer], None).await;
    let mut decoded: VersionedTransaction = bincode::deserialize(
        &base64::engine::general_purpose::STANDARD
            .decode(&tx)
            .unwrap(),
    )
    .unwrap();
    decoded.signatures[1] = stranger.sign_message(&decoded.message.serialize());
    let forged =
        base64::engine::general_purpose::STANDARD.encode(bincode::serialize(&decoded).unwrap());
    cases.push((
        "signature from another key",
        forged,
        1_000,
        "invalid_exact_svm_payload_signature_invalid",
    ));
    // An expired (unknown) blockhash: only the simulation can tell.
    let stale = solana_hash::Hash::new_from_array([9; 32]);
    cases.push((
        "expired blockhash",
        w.transaction(&good(1_000), &[&w.payer], Some(stale)).await,
        1_000,
        "invalid_exact_svm_transaction_simulation_failed",
    ));

    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_transaction_pays_for_one_request_and_its_replay_moves_nothing() {
    let w = world().await;
    let spl = (w.mint, TOKEN_PROGRAM);
    let before = w.balances().await;
    // A replay of a settled transaction: the same answer, nothing moves twice.
    let tx = w
        .transaction(&w.good_instructions(&spl.0, &spl.1, 777), &[&w.payer], None)
        .await;
    let body = w.body(&tx, &spl.0, 777);
    let first = w.post("/settle", &body).await;
    assert_eq!(first["success"], true, "{first}");
    let settled_once = w.balances().await;
    assert_eq!(settled_once.1, before.1 + 777);
    let again = w.post("/settle", &body).await;
    assert_eq!(again["transaction"], first["transaction"], "{again}");
    // The same transaction for another resource, or wrapped in a v1 request: one payment
    // pays for one request, so neither is answered as a success.
    let mut other_resource = body.clone();
    other_resource["paymentPayload"]["resource"] =
        json!({"url": "https://example.test/another", "description": "", "mimeType": ""});
    let v1 = json!({
        "x402Version": 1,
        "paymentPayload": {"x402Version": 1, "scheme": "exact", "network": "solana-devnet",
            "payload": {"transaction": tx}},
        "paymentRequirements": {
            "scheme": "exact", "network": "solana-devnet", "maxAmountRequired": "777",
            "resource": "https://example.test/r", "description": "", "mimeType": "",
            "payTo": w.pay_to.to_string(), "maxTimeoutSeconds": 60, "asset": spl.0.to_string(),
            "extra": {"feePayer": w.fee_payer.to_string()}
        }
    });
    for (what, request) in [("another resource", &other_resource), ("v1", &v1)] {
        let duplicate = w.post("/settle", request).await;
        assert_eq!(duplicate["success"], false, "{what}: {duplicate}");
        assert_eq!(
            duplicate["errorReason"], "duplicate_settlement",
            "{what}: {duplicate}"
        );
        assert_eq!(duplicate["payer"], w.payer.pubkey().to_string(), "{what}");
    }
    let replay = w.post("/verify", &body).await;
    assert_eq!(replay["isValid"], false, "{replay}");
    assert_eq!(
        replay["invalidReason"], "invalid_exact_svm_transaction_simulation_failed",
        "{replay}"
    );
    assert_eq!(w.balances().await, settled_once, "the replay moved nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_health_flags_a_node_whose_genesis_is_not_the_configured_network() {
    let node = SurfNode::start().await;
    let fee_payer = Keypair::new();
    node.lamports(&fee_payer.pubkey(), 1_000_000_000).await;
    let dir = TempDir::new("svm-health");
    let ledger = Arc::new(
        x402_ledger::Ledger::connect(&format!("sqlite://{}/ledger.db?mode=rwc", dir.0.display()))
            .await
            .unwrap(),
    );
    let handler = |stand_in: bool| {
        x402_svm::SvmNetwork::new(x402_svm::SvmSettings {
            chain_id: DEVNET.parse().unwrap(),
            rpc_urls: vec![node.url.clone()],
            fee_payer_keys: vec![fee_payer.to_base58_string()],
            options: x402_svm::SvmOptions {
                max_compute_units: 400_000,
                max_compute_unit_price: 5_000_000,
                optional_programs: vec![MEMO_PROGRAM.to_string()],
                commitment: "confirmed".into(),
                local_stand_in: stand_in,
            },
            confirm_timeout: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(5),
            min_fee_payer_lamports: 10_000_000,
            ledger: ledger.clone(),
        })
        .unwrap()
    };
    use x402_protocol::Chain;
    for (stand_in, expected) in [(false, false), (true, true)] {
        let checks = handler(stand_in).health().await;
        let chain = checks
            .iter()
            .find(|c| c.name == "chain_id")
            .expect("chain check");
        assert_eq!(chain.ok, expected, "local_stand_in={stand_in}: {chain:?}");
        assert!(
            checks
                .iter()
                .any(|c| c.name == "signer_gas_balance" && c.ok),
            "{checks:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_settlement_is_finished_by_its_retry_with_the_same_signature() {
    // A node that has not seen the transaction within a 1 ms confirmation wait: the first
    // answer is `settlement_pending` with the signature, whatever the local node's speed.
    let w = world_at(DEVNET, 1, true).await;
    let proxy = w.proxy.as_ref().expect("relayed");
    proxy.set(Fault::SignaturesUnseen);
    let before = w.balances().await;
    let ix = w.good_instructions(&w.mint, &TOKEN_PROGRAM, 4_321);
    let body = w.body(&w.transaction(&ix, &[&w.payer], None).await, &w.mint, 4_321);
    let pending = w.post("/settle", &body).await;
    assert_eq!(pending["success"], false, "{pending}");
    assert_eq!(pending["errorReason"], "settlement_pending", "{pending}");
    let signature = pending["transaction"].as_str().unwrap().to_owned();
    assert!(signature.len() >= 80, "{pending}");
    // The node catches up: retries return the outcome of that same transaction.
    proxy.set(Fault::None);
    let mut settled = Value::Null;
    for _ in 0..200 {
        settled = w.post("/settle", &body).await;
        if settled["success"] == true {
            break;
        }
        assert_eq!(settled["transaction"], signature.as_str(), "{settled}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["transaction"], signature.as_str());
    let after = w.balances().await;
    assert_eq!(after.1 - before.1, 4_321, "moved exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fogo_is_served_under_its_genesis_id_in_v1_and_v2() {
    // The local node stands in for Fogo mainnet (its genesis is not Fogo's; the
    // configuration says so with `local_stand_in`).
    let w = world_on(FOGO, 20_000).await;
    let supported = w.get("/supported").await;
    for (version, network) in [(1, "fogo"), (2, FOGO)] {
        let kind = supported["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["x402Version"] == version && k["network"] == network)
            .cloned()
            .unwrap_or_else(|| panic!("v{version} {network} missing: {supported}"));
        assert_eq!(kind["extra"]["feePayer"], w.fee_payer.to_string());
    }
    assert!(
        supported["signers"]["solana:*"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(w.fee_payer.to_string()))),
        "{supported}"
    );

    let before = w.balances().await;
    // v2 under the CAIP-2 id.
    let ix = w.good_instructions(&w.mint, &TOKEN_PROGRAM, 3_000);
    let v2_body = w.body(&w.transaction(&ix, &[&w.payer], None).await, &w.mint, 3_000);
    let settled = w.post("/settle", &v2_body).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["network"], FOGO);
    assert_eq!(settled["payer"], w.payer.pubkey().to_string());

    // v1 under the v1 name, answered in v1.
    let ix = w.good_instructions(&w.mint, &TOKEN_PROGRAM, 700);
    let transaction = w.transaction(&ix, &[&w.payer], None).await;
    let requirements = json!({
        "scheme": "exact", "network": "fogo", "maxAmountRequired": "700",
        "resource": "https://example.test/report", "description": "a report",
        "mimeType": "application/json", "payTo": w.pay_to.to_string(),
        "maxTimeoutSeconds": 60, "asset": w.mint.to_string(),
        "extra": {"feePayer": w.fee_payer.to_string()}
    });
    let v1_body = json!({
        "x402Version": 1,
        "paymentPayload": {"x402Version": 1, "scheme": "exact", "network": "fogo",
            "payload": {"transaction": transaction}},
        "paymentRequirements": requirements
    });
    let verified = w.post("/verify", &v1_body).await;
    assert_eq!(verified["isValid"], true, "{verified}");
    let settled_v1 = w.post("/settle", &v1_body).await;
    assert_eq!(settled_v1["success"], true, "{settled_v1}");
    assert_eq!(settled_v1["network"], "fogo");
    assert_ne!(settled_v1["transaction"], settled["transaction"]);
    let after = w.balances().await;
    assert_eq!(after.1 - before.1, 3_000 + 700, "each moved exactly once");
    assert_eq!(before.0 - after.0, 3_000 + 700);

    // The seeds' guessed id is refused with the real one named, and nothing moves.
    let ix = w.good_instructions(&w.mint, &TOKEN_PROGRAM, 500);
    let mut guessed = w.body(&w.transaction(&ix, &[&w.payer], None).await, &w.mint, 500);
    guessed["paymentRequirements"]["network"] = json!("fogo:mainnet");
    guessed["paymentPayload"]["accepted"]["network"] = json!("fogo:mainnet");
    for path in ["/verify", "/settle"] {
        let answer = w.post(path, &guessed).await;
        let (ok, reason, message) = if path == "/verify" {
            ("isValid", "invalidReason", "invalidMessage")
        } else {
            ("success", "errorReason", "errorMessage")
        };
        assert_eq!(answer[ok], false, "{answer}");
        assert_eq!(answer[reason], "invalid_network", "{answer}");
        if path == "/settle" {
            assert_eq!(answer["network"], "fogo:mainnet", "{answer}");
        }
        assert!(
            answer[message].as_str().is_some_and(|m| m.contains(FOGO)),
            "{answer}"
        );
    }
    assert_eq!(w.balances().await, after, "nothing moved");
}

/// Refusals given before any chain check name the payer as SVM payloads carry it: the
/// transfer authority. Here a `payment-identifier` id reused with another payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_chain_checks_name_the_transfer_authority() {
    async fn paid(w: &World, amount: u64) -> Value {
        let ix = w.good_instructions(&w.mint, &TOKEN_PROGRAM, amount);
        let mut body = w.body(
            &w.transaction(&ix, &[&w.payer], None).await,
            &w.mint,
            amount,
        );
        body["paymentPayload"]["extensions"] = json!({"payment-identifier": {"info": {"required": false, "id": "pay_svm_0123456789abcdef0123"}}});
        body
    }
    let w = world().await;
    let before = w.balances().await;
    let settled = w.post("/settle", &paid(&w, 1_111).await).await;
    assert_eq!(settled["success"], true, "{settled}");

    let other = paid(&w, 2_222).await;
    let payer = w.payer.pubkey().to_string();
    let verdict = w.post("/verify", &other).await;
    assert_eq!(
        verdict["invalidReason"], "payment_identifier_conflict",
        "{verdict}"
    );
    assert_eq!(verdict["payer"], payer.as_str());
    let refused = w.post("/settle", &other).await;
    assert_eq!(
        refused["errorReason"], "payment_identifier_conflict",
        "{refused}"
    );
    assert_eq!(refused["payer"], payer.as_str());
    assert_eq!(refused["network"], w.network);
    assert_eq!(refused["transaction"], "");
    let after = w.balances().await;
    assert_eq!(after.1 - before.1, 1_111, "only the first payment moved");
}

/// The sum of every series of `name` in a Prometheus text, or of those carrying `label`.
fn metric_sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| label.is_none_or(|wanted| l.contains(wanted)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Stand-in for a node whose simulation disagrees with execution (a provider lagging
/// behind the cluster): the relay answers `simulateTransaction` with success, so a
/// transfer the payer cannot fund is sent and fails on chain. Such a failure is the
/// facilitator's (it paid the fee for nothing): the answer says so with the signature,
/// and the breaker, `x402_settlement_failures_total` and `x402-deploy watch` count it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_svm_transaction_failing_on_chain_counts_for_the_breaker_the_metric_and_the_watch() {
    let w = world_at(DEVNET, 20_000, true).await;
    let failures = |text: &str| {
        metric_sum(
            text,
            "x402_settlement_failures_total",
            Some("reason=\"invalid_exact_svm_transaction_failed\""),
        )
    };
    let metrics = || async {
        w.http
            .get(format!("{}/metrics", w.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = metrics().await;
    // Twice what the payer holds: a correct node refuses it in simulation.
    let amount = 2_000_000_000;
    let pay = || async {
        let instructions = w.good_instructions(&w.mint, &TOKEN_PROGRAM, amount);
        let tx = w.transaction(&instructions, &[&w.payer], None).await;
        w.post("/settle", &w.body(&tx, &w.mint, amount)).await
    };
    let refused = pay().await;
    assert_eq!(
        refused["errorReason"], "invalid_exact_svm_transaction_simulation_failed",
        "{refused}"
    );
    w.proxy.as_ref().unwrap().set(Fault::SimulationPasses);
    let failed = pay().await;
    assert_eq!(failed["success"], false, "{failed}");
    assert_eq!(
        failed["errorReason"], "invalid_exact_svm_transaction_failed",
        "{failed}"
    );
    assert_eq!(failed["payer"], w.payer.pubkey().to_string(), "{failed}");
    let signature = failed["transaction"].as_str().unwrap().to_owned();
    assert!(!signature.is_empty(), "{failed}");
    let status = w
        .node
        .rpc(
            "getSignatureStatuses",
            json!([[signature], {"searchTransactionHistory": true}]),
        )
        .await;
    assert!(
        !status["value"][0]["err"].is_null(),
        "failed on chain: {status}"
    );

    let after = metrics().await;
    assert_eq!(failures(&after) - failures(&before), 1.0, "{after}");
    assert!(
        metric_sum(&after, "x402_breaker_failures_total", None)
            > metric_sum(&before, "x402_breaker_failures_total", None),
        "the breaker counted it"
    );
    // The watch reads the same counter: with the count before this failure as its
    // allowance, it calls the instance unhealthy (and, with no load balancer here, stops
    // at the rollback).
    let allowed = metric_sum(&before, "x402_settlement_failures_total", None) as u64;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/bin/x402-deploy");
    let watch = tokio::process::Command::new("bash")
        .args([script, "watch", "green", &w.url, "5", &allowed.to_string()])
        .env("X402_LB_ADMIN", format!("127.0.0.1:{}", free_port()))
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&watch.stderr);
    assert!(!watch.status.success(), "{said}");
    assert!(
        said.contains("facilitator-side settlement failures >") && said.contains("rolling back"),
        "{said}"
    );
}
