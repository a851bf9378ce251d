//! The safety layer must not be a weapon: tests of the real binary on a real anvil, as a
//! hostile payer, a stranger and a failing node would meet it. Faulty nodes are the
//! `FaultProxy` relay in front of the real anvil; every answer it does not fail is anvil's.

mod support;

use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::BASE_SEPOLIA_USDC;

/// Parts of the configured RPC URL that carry credentials, and the signer key.
const SECRETS: &[&str] = &[
    "alice-rpc-user",
    "S3cretPassw0rd",
    "PATHKEY5f3c9e21",
    "QUERYKEY77aa01",
    "SECONDQ99bb02",
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
];

fn secret_url(base: &str) -> String {
    let rest = base.trim_start_matches("http://");
    format!(
        "http://alice-rpc-user:S3cretPassw0rd@{rest}/v2/PATHKEY5f3c9e21?apikey=QUERYKEY77aa01&project=SECONDQ99bb02"
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{}",
            &text[text.find(secret).unwrap().saturating_sub(300)..]
        );
    }
}

/// A configuration file with short RPC and receipt timeouts (file keys only).
fn timeouts_file(dir: &TempDir, rpc_ms: u64, receipt_ms: u64) -> String {
    let path = dir.0.join("facilitator.toml");
    std::fs::write(
        &path,
        format!("[networks.\"eip155:84532\"]\nrpc_urls = [\"http://127.0.0.1:1\"]\nrpc_timeout_ms = {rpc_ms}\nreceipt_timeout_ms = {receipt_ms}\n"),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_rpc_urls_reach_no_answer_log_metric_or_health_at_trace_level() {
    let chain = chain_with_token(&[]).await;
    let proxy = FaultProxy::start(&chain.rpc_url).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let scratch = TempDir::new("secrets");
    let file = timeouts_file(&scratch, 1_000, 1_500);
    let urls = format!("{},{}", secret_url(&proxy.url), secret_url(&dead));
    let process = Process::spawn(
        &chain,
        &[("RPC_URL_BASE_SEPOLIA", &urls), ("RUST_LOG", "trace")],
        &["--config", &file],
    )
    .await;
    let http = reqwest::Client::new();
    let mut answers = Vec::new();

    // Before any broadcast: every way a node fails, answered as our trouble.
    for fault in [Fault::Reset, Fault::Hang, Fault::Http500, Fault::RpcError] {
        proxy.set(fault.clone());
        let (_, verdict) = post_json(
            &http,
            &format!("{}/verify", process.url),
            &fresh_body(PAYER_KEY, 1_000),
        )
        .await;
        assert_eq!(verdict["isValid"], false, "{fault:?}: {verdict}");
        assert_eq!(
            verdict["invalidReason"], "rpc_unavailable",
            "{fault:?}: {verdict}"
        );
        assert_eq!(verdict["payer"], PAYER, "{fault:?}: {verdict}");
        answers.push(verdict);
    }
    // After the broadcast: the answer is pending with the hash, and the retry finishes it.
    for fault in [Fault::Reset, Fault::Hang, Fault::Http500, Fault::RpcError] {
        proxy.after_broadcast(fault.clone());
        let body = fresh_body(PAYER_KEY, 1_000);
        let pending = settle(&http, &process.url, &body).await;
        assert_eq!(
            pending["errorReason"], "settlement_pending",
            "{fault:?}: {pending}"
        );
        let hash = pending["transaction"].as_str().unwrap().to_owned();
        assert!(hash.starts_with("0x"), "{pending}");
        proxy.set(Fault::None);
        let settled = settle(&http, &process.url, &body).await;
        assert_eq!(settled["success"], true, "{fault:?}: {settled}");
        assert_eq!(settled["transaction"], hash.as_str());
        answers.push(pending);
        answers.push(settled);
    }
    proxy.set(Fault::Reset);
    let (_, deep) = get_text(&http, &format!("{}/health/deep", process.url)).await;
    proxy.set(Fault::None);
    let (_, metrics) = get_text(&http, &format!("{}/metrics", process.url)).await;
    let (_, flags) = get_text(&http, &format!("{}/flags", process.url)).await;
    let (_, supported) = get_text(&http, &format!("{}/supported", process.url)).await;

    for answer in &answers {
        assert_no_secret("an answer", &answer.to_string());
    }
    for (what, text) in [
        ("/health/deep", &deep),
        ("/metrics", &metrics),
        ("/flags", &flags),
        ("/supported", &supported),
    ] {
        assert_no_secret(what, text);
    }
    let logs: Vec<String> = process.logs().iter().map(Value::to_string).collect();
    assert_no_secret("the log", &logs.join("\n"));
    // The log did see every failure, at trace level, with the endpoint named by position.
    let levels: std::collections::BTreeSet<String> = process
        .logs()
        .iter()
        .filter_map(|l| l["level"].as_str().map(str::to_owned))
        .collect();
    println!("levels logged: {levels:?}");
    assert!(
        levels.contains("DEBUG") || levels.contains("TRACE"),
        "{levels:?}"
    );
    let failed = process
        .warnings()
        .into_iter()
        .filter(|l| l["message"] == "RPC endpoint failed; it goes last for a while")
        .count();
    assert!(
        failed >= 2,
        "both endpoints failed and were logged: {failed}"
    );
    assert!(logs.iter().any(|l| l.contains("rpc#2")));
    println!(
        "secrets: {} answers, {} log lines, deep health, metrics, flags checked; none carried a URL credential",
        answers.len(),
        logs.len()
    );
}

/// `transferWithAuthorization(from,to,value,validAfter,validBefore,nonce,v,r,s)` of a payload.
fn authorization_call(payload: &Value) -> String {
    use alloy::primitives::{Address, FixedBytes, U256};
    use alloy::sol_types::SolCall;
    let a = &payload["authorization"];
    let number = |k: &str| U256::from_str_radix(a[k].as_str().unwrap(), 10).unwrap();
    let signature = payload["signature"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x");
    let bytes: Vec<u8> = (0..signature.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&signature[i..i + 2], 16).unwrap())
        .collect();
    let call = support::transferWithAuthorizationCall {
        from: a["from"].as_str().unwrap().parse::<Address>().unwrap(),
        to: a["to"].as_str().unwrap().parse::<Address>().unwrap(),
        value: number("value"),
        validAfter: number("validAfter"),
        validBefore: number("validBefore"),
        nonce: a["nonce"].as_str().unwrap().parse().unwrap(),
        v: bytes[64],
        r: FixedBytes::from_slice(&bytes[..32]),
        s: FixedBytes::from_slice(&bytes[32..64]),
    };
    format!("0x{}", hex_of(&call.abi_encode()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_who_moves_first_is_answered_as_the_payer_and_never_trips_the_breaker() {
    let chain = chain_with_token(&[]).await;
    chain
        .mint(BASE_SEPOLIA_USDC, DEV_ACCOUNTS_3, 1_000_000)
        .await
        .unwrap();
    // Without the payer attribution these reverts would trip at once: 2 failures, any
    // payers, any rate.
    let process = Process::spawn(
        &chain,
        &[
            ("BREAKER_THRESHOLD", "2"),
            ("BREAKER_MIN_PAYERS", "1"),
            ("BREAKER_MIN_FAILURE_RATE", "0"),
        ],
        &[],
    )
    .await;
    let http = reqwest::Client::new();
    let mut reverted = Vec::new();

    // 1. The payer empties their balance in the block our transaction lands in.
    let body = fresh_body(PAYER_KEY, 5_000);
    let answer = race_payer_drain(&chain, &http, &process.url, &body).await;
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(
        answer["errorReason"], "invalid_exact_evm_insufficient_balance",
        "{answer}"
    );
    assert_eq!(answer["payer"], PAYER);
    reverted.push((body, answer));

    // 2. Another payer submits their own authorization first.
    let payload = sign_authorization(DEV_ACCOUNTS_3_KEY, PAY_TO, 7_000, random_nonce());
    let body = v2_body(payload.clone(), "7000");
    let own = send_first(
        &chain,
        DEV_ACCOUNTS_3,
        BASE_SEPOLIA_USDC,
        authorization_call(&payload),
    );
    let answer = race(&chain, &http, &process.url, &body, own).await;
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(
        answer["errorReason"], "invalid_exact_evm_nonce_already_used",
        "{answer}"
    );
    assert_eq!(answer["payer"], DEV_ACCOUNTS_3);
    reverted.push((body, answer));

    // Both went on chain and reverted: our gas, their doing.
    for (_, answer) in &reverted {
        let receipt = chain
            .rpc("eth_getTransactionReceipt", json!([answer["transaction"]]))
            .await
            .unwrap();
        assert_eq!(receipt["status"], "0x0", "{receipt}");
    }
    // Re-sending a reverted payment, five times each: its recorded answer, nothing sent.
    let nonce = account_nonce(&chain, DEV_SIGNER, "latest").await;
    for (body, first) in &reverted {
        for _ in 0..5 {
            assert_eq!(&settle(&http, &process.url, body).await, first);
        }
    }
    assert_eq!(account_nonce(&chain, DEV_SIGNER, "latest").await, nonce);

    let (_, flags) = get_text(&http, &format!("{}/flags", process.url)).await;
    let flags: Value = serde_json::from_str(&flags).unwrap();
    assert_eq!(flags["v2_settle_enabled"], true, "{flags}");
    let (_, metrics) = get_text(&http, &format!("{}/metrics", process.url)).await;
    assert_eq!(metric(&metrics, "x402_breaker_failures_total", &[]), 0.0);
    assert_eq!(metric(&metrics, "x402_settlement_failures_total", &[]), 0.0);
    // The service still settles for everyone else.
    chain.mint(BASE_SEPOLIA_USDC, PAYER, 100_000).await.unwrap();
    let settled = settle(&http, &process.url, &fresh_body(PAYER_KEY, 1_000)).await;
    assert_eq!(settled["success"], true, "{settled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_breaker_answers_recorded_payments_and_probes_itself_back() {
    let chain = chain_with_token(&[]).await;
    let proxy = FaultProxy::start(&chain.rpc_url).await;
    let scratch = TempDir::new("probe");
    let file = timeouts_file(&scratch, 1_000, 1_500);
    let process = Process::spawn(
        &chain,
        &[
            ("RPC_URL_BASE_SEPOLIA", &proxy.url),
            ("BREAKER_THRESHOLD", "2"),
            ("BREAKER_MIN_PAYERS", "1"),
            ("BREAKER_PROBE_AFTER_SECONDS", "3"),
        ],
        &["--config", &file],
    )
    .await;
    let http = reqwest::Client::new();
    let mark = ChainMark::take(&chain).await;

    let made = fresh_body(PAYER_KEY, 1_000);
    let first = settle(&http, &process.url, &made).await;
    assert_eq!(first["success"], true, "{first}");
    // A short node outage right after two broadcasts: two pending settlements trip it.
    let mut pending = Vec::new();
    for _ in 0..2 {
        proxy.after_broadcast(Fault::Reset);
        let body = fresh_body(PAYER_KEY, 1_000);
        let answer = settle(&http, &process.url, &body).await;
        assert_eq!(answer["errorReason"], "settlement_pending", "{answer}");
        pending.push((body, answer));
    }
    process
        .wait_log(|l| l["message"] == "v2 settle disabled by breaker")
        .await;
    proxy.set(Fault::None);

    // Tripped: payments already made get their outcome, with their hash.
    assert_eq!(settle(&http, &process.url, &made).await, first);
    for (body, answer) in &pending {
        let done = settle(&http, &process.url, body).await;
        assert_eq!(done["success"], true, "{done}");
        assert_eq!(done["transaction"], answer["transaction"]);
    }
    // A new one is gated.
    let gated = settle(&http, &process.url, &fresh_body(PAYER_KEY, 1_000)).await;
    assert_eq!(gated["errorReason"], "feature_disabled", "{gated}");
    assert_eq!(gated["payer"], PAYER);

    // No person comes: the breaker half-opens, the next payment settles and closes it.
    let probed = process
        .wait_log(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("v2 settle half-open"))
        })
        .await;
    assert_eq!(probed["level"], "WARN");
    let after = settle(&http, &process.url, &fresh_body(PAYER_KEY, 1_000)).await;
    assert_eq!(after["success"], true, "{after}");
    let (_, flags) = get_text(&http, &format!("{}/flags", process.url)).await;
    assert!(flags.contains("\"v2_settle_enabled\":true"), "{flags}");
    mark.assert_moved(&chain, 4, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_errors_inside_the_settle_batch_are_ours_and_the_same_request_settles_later() {
    let chain = chain_with_token(&[]).await;
    let proxy = FaultProxy::start(&chain.rpc_url).await;
    let process = Process::spawn(&chain, &[("RPC_URL_BASE_SEPOLIA", &proxy.url)], &[]).await;
    let http = reqwest::Client::new();
    let mark = ChainMark::take(&chain).await;
    let cases = [
        (-32005, "rate limit exceeded"),
        (-32603, "internal error"),
        (-32000, "header not found"),
    ];
    for (code, message) in cases {
        let body = fresh_body(PAYER_KEY, 2_000);
        proxy.set(Fault::MethodError("eth_estimateGas", code, message.into()));
        let refused = settle(&http, &process.url, &body).await;
        assert_eq!(
            refused["errorReason"], "rpc_unavailable",
            "{code}: {refused}"
        );
        assert_eq!(refused["payer"], PAYER);
        assert_eq!(refused["transaction"], "");
        // Verify of the same payment says valid: nothing is wrong with it.
        let (_, verdict) = post_json(&http, &format!("{}/verify", process.url), &body).await;
        assert_eq!(verdict["isValid"], true, "{verdict}");
        proxy.set(Fault::None);
        let settled = settle(&http, &process.url, &body).await;
        assert_eq!(settled["success"], true, "{code}: {settled}");
    }
    // A real revert in the estimate is still the payment's: an authorization for more
    // than the payer holds fails the verify checks first, so break the signature's token.
    mark.assert_moved(&chain, 3, 2_000).await;
}

/// A hostile token (stand-in `ShortChangingUSDC`, ours, in `contracts/TestUSDC.sol`):
/// `transferWithAuthorization` succeeds with status 1 but moves one unit less. The settle
/// answer is a failure naming the transaction, counted as ours, not a success on the
/// strength of the status; the re-sent request answers the same and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_moves_less_than_authorized_is_a_failure_with_the_hash() {
    let chain = chain_with_token(&[]).await;
    chain
        .install_contract(
            "ShortChangingUSDC",
            x402_facilitator::dev::BASE_SEPOLIA_USDC,
        )
        .await
        .unwrap();
    let process = Process::spawn(&chain, &[], &[]).await;
    let http = reqwest::Client::new();
    let nonce_before = account_nonce(&chain, DEV_SIGNER, "latest").await;
    let payee_before = chain
        .balance_of(x402_facilitator::dev::BASE_SEPOLIA_USDC, PAY_TO)
        .await
        .unwrap();
    let body = fresh_body(PAYER_KEY, 5_000);
    let answer = settle(&http, &process.url, &body).await;
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(
        answer["errorReason"],
        "invalid_exact_evm_transfer_event_mismatch"
    );
    let hash = answer["transaction"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("0x") && hash.len() == 66, "{answer}");
    assert_eq!(
        answer["payer"].as_str().unwrap().to_lowercase(),
        PAYER.to_lowercase()
    );
    let payee_after = chain
        .balance_of(x402_facilitator::dev::BASE_SEPOLIA_USDC, PAY_TO)
        .await
        .unwrap();
    assert_eq!(
        payee_after - payee_before,
        4_999,
        "the token moved one unit less"
    );

    let again = settle(&http, &process.url, &body).await;
    assert_eq!(again, answer, "the first outcome, nothing sent again");
    let nonce_now = account_nonce(&chain, DEV_SIGNER, "latest").await;
    assert_eq!(
        nonce_now,
        nonce_before + 1,
        "one transaction, not sent again"
    );
    let (_, metrics) = get_text(&http, &format!("{}/metrics", process.url)).await;
    let labels = [("reason", "invalid_exact_evm_transfer_event_mismatch")];
    assert_eq!(
        metric(&metrics, "x402_settlement_failures_total", &labels),
        1.0,
        "{metrics}"
    );
}
