//! `GET /settlements/{id}` against the real binary on anvil: a settlement looked up by its
//! settlement id (the `x402-settlement-id` header of every verify and settle answer) and by
//! its v2 payment id, pending (automine off) and then settled; a settlement that failed on
//! chain, in v1; and what a stranger can ask (nothing that reaches a node, never a 5xx).

mod support;

use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::BASE_SEPOLIA_USDC;

const NETWORK: &str = "eip155:84532";

/// A v2 settle body carrying a payment id (the `payment-identifier` extension).
fn body_with_payment_id(value: u64, payment_id: &str) -> Value {
    let mut body = fresh_body(PAYER_KEY, value);
    body["paymentPayload"]["extensions"] =
        json!({"payment-identifier": {"info": {"id": payment_id}}});
    body
}

/// POSTs `body` to `path`; the answer and its settlement-id header.
async fn post_with_id(http: &reqwest::Client, url: &str, body: &Value) -> (Value, String) {
    let response = http.post(url).json(body).send().await.expect("request");
    assert_eq!(response.status(), 200);
    let id = response
        .headers()
        .get("x402-settlement-id")
        .and_then(|v| v.to_str().ok())
        .expect("every verify and settle answer names its settlement id")
        .to_owned();
    (response.json().await.expect("JSON"), id)
}

/// `GET /settlements/{id}` (the id percent-encoded as a path segment).
async fn lookup(http: &reqwest::Client, url: &str, id: &str) -> (u16, Value) {
    let segment: String = id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    let response = http
        .get(format!("{url}/settlements/{segment}"))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

/// A facilitator binary whose receipt wait is short, so that automine off answers pending.
async fn short_wait_facilitator(chain: &x402_facilitator::dev::LocalChain) -> (Process, TempDir) {
    let dir = TempDir::new("status");
    let file = dir.0.join("facilitator.toml");
    let config = format!(
        "[networks.base-sepolia]\nrpc_urls = [\"{}\"]\nreceipt_timeout_ms = 300\n",
        chain.rpc_url
    );
    std::fs::write(&file, config).unwrap();
    let process = Process::spawn(chain, &[], &["--config", file.to_str().unwrap()]).await;
    (process, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_is_found_by_its_id_and_its_payment_id_while_pending_and_once_settled() {
    let chain = chain_with_token(&[]).await;
    let (process, _dir) = short_wait_facilitator(&chain).await;
    let http = reqwest::Client::new();
    let payment_id = "order-2026-12-02-status-0001";
    let body = body_with_payment_id(4_321, payment_id);

    // Verify already names the id; nothing is recorded under it yet.
    let (verdict, id) = post_with_id(&http, &format!("{}/verify", process.url), &body).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    assert!(id.starts_with("r2:"), "{id}");
    assert_eq!(lookup(&http, &process.url, &id).await.0, 404);
    assert_eq!(lookup(&http, &process.url, payment_id).await.0, 404);

    chain.rpc("evm_setAutomine", json!([false])).await.unwrap();
    let (pending, settle_id) = post_with_id(&http, &format!("{}/settle", process.url), &body).await;
    assert_eq!(pending["errorReason"], "settlement_pending", "{pending}");
    assert_eq!(
        settle_id, id,
        "verify and settle of one request name one settlement"
    );
    let hash = pending["transaction"].as_str().unwrap().to_owned();

    let nonce_before = account_nonce(&chain, DEV_SIGNER, "pending").await;
    let (status, by_id) = lookup(&http, &process.url, &id).await;
    assert_eq!(status, 200, "{by_id}");
    assert_eq!(by_id["status"], "pending", "{by_id}");
    assert_eq!(by_id["settlementId"], id.as_str());
    assert_eq!(by_id["transaction"], hash.as_str());
    assert_eq!(by_id["transactions"], json!([hash]));
    assert_eq!(by_id["network"], NETWORK);
    assert_eq!(by_id["x402Version"], 2);
    assert_eq!(by_id["scheme"], "exact");
    assert_eq!(by_id["payer"], PAYER);
    assert_eq!(by_id["payTo"], PAY_TO);
    assert_eq!(by_id["asset"], BASE_SEPOLIA_USDC);
    assert_eq!(by_id["amount"], "4321");
    assert!(by_id.get("errorReason").is_none(), "{by_id}");
    let (status, by_payment_id) = lookup(&http, &process.url, payment_id).await;
    assert_eq!(status, 200, "{by_payment_id}");
    let mut same = by_id.clone();
    same["id"] = json!(payment_id);
    assert_eq!(by_payment_id, same, "one settlement, whichever id names it");
    // Asking sends nothing: still the one transaction in the pool.
    for _ in 0..20 {
        assert_eq!(lookup(&http, &process.url, &id).await.0, 200);
    }
    assert_eq!(pending_transactions(&chain).await, 1);
    assert_eq!(
        account_nonce(&chain, DEV_SIGNER, "pending").await,
        nonce_before
    );

    chain.rpc("evm_mine", json!([])).await.unwrap();
    chain.rpc("evm_setAutomine", json!([true])).await.unwrap();
    let (settled, _) = post_with_id(&http, &format!("{}/settle", process.url), &body).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["transaction"], hash.as_str());
    let (status, done) = lookup(&http, &process.url, payment_id).await;
    assert_eq!(status, 200);
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["transaction"], hash.as_str());
    assert_eq!(done["createdAt"], by_id["createdAt"]);
    let (created, updated) = (
        done["createdAt"].as_str().unwrap(),
        done["updatedAt"].as_str().unwrap(),
    );
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    assert!(updated >= created, "{created} then {updated}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_settlement_that_failed_on_chain_is_found_with_its_reason() {
    let chain = chain_with_token(&[]).await;
    let process = Process::spawn(&chain, &[], &[]).await;
    let http = reqwest::Client::new();
    let body = v1_body(
        sign_authorization(PAYER_KEY, PAY_TO, 5_000, random_nonce()),
        "5000",
    );
    let (_, id) = post_with_id(&http, &format!("{}/verify", process.url), &body).await;
    // The payer empties their balance in the block our transaction lands in.
    let answer = race_payer_drain(&chain, &http, &process.url, &body).await;
    assert_eq!(answer["success"], false, "{answer}");
    let (status, found) = lookup(&http, &process.url, &id).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["status"], "failed", "{found}");
    assert_eq!(found["x402Version"], 1);
    assert_eq!(found["network"], NETWORK);
    assert_eq!(found["transaction"], answer["transaction"]);
    assert_eq!(found["errorReason"], answer["errorReason"]);
    assert_eq!(
        found["errorReason"],
        "invalid_exact_evm_insufficient_balance"
    );
    assert_eq!(found["payer"], PAYER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_400_or_404_and_nothing_else() {
    let chain = chain_with_token(&[]).await;
    let process = Process::spawn(&chain, &[], &[]).await;
    let http = reqwest::Client::new();
    let unknown_digest = format!("r2:{}:{}", "ab".repeat(32), "cd".repeat(32));
    for (id, want) in [
        (unknown_digest.as_str(), 404),
        ("an-unknown-payment-id-0001", 404),
        ("short", 400),
        ("r2:not-hex", 400),
        ("../../../../etc/passwd/../x", 400),
        ("' OR 1=1; DROP TABLE x402_settlements; --", 400),
        ("%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00", 400),
        ("\0".repeat(16).as_str(), 400),
        (&"a".repeat(4096), 400),
    ] {
        let (status, answer) = lookup(&http, &process.url, id).await;
        assert_eq!(status, want, "{id:?}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Not UTF-8 once decoded.
    let (status, text) = get_text(&http, &format!("{}/settlements/%FF%FE%FD", process.url)).await;
    assert_eq!(status, 400, "{text}");
    // A settlement afterwards still works: the table is there.
    let body = fresh_body(PAYER_KEY, 1_000);
    let (settled, id) = post_with_id(&http, &format!("{}/settle", process.url), &body).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(
        lookup(&http, &process.url, &id).await.1["status"],
        "success"
    );
    assert!(process.warnings().is_empty(), "{:#?}", process.warnings());
}
