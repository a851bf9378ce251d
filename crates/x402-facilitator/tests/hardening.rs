//! The safety layer must not be a weapon: tests of the real binary on a real anvil, as a
//! hostile payer, a stranger and a failing node would meet it. Faulty nodes are the
//! `FaultProxy` relay in front of the real anvil; every answer it does not fail is anvil's.

mod support;

use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::{LocalChain, BASE_SEPOLIA_USDC, DEV_ACCOUNTS};

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

async fn settle(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    post_json(http, &format!("{url}/settle"), body).await.1
}

fn fresh_body(key: &str, value: u64) -> Value {
    v2_body(
        sign_authorization(key, PAY_TO, value, random_nonce()),
        &value.to_string(),
    )
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

/// A token `transfer` sent from an unlocked dev account with a tip far above the
/// facilitator's, so that anvil orders it first in the next block.
async fn send_first(chain: &LocalChain, from: &str, to: &str, data: String) -> Value {
    chain
        .rpc(
            "eth_sendTransaction",
            json!([{
                "from": from, "to": to, "data": data, "gas": "0x30000",
                "maxFeePerGas": "0x2540be40000", "maxPriorityFeePerGas": "0x174876e8000"
            }]),
        )
        .await
        .unwrap()
}

fn transfer_data(to: &str, amount: u128) -> String {
    format!(
        "0xa9059cbb{:0>64}{amount:064x}",
        to.trim_start_matches("0x").to_ascii_lowercase()
    )
}

/// `transferWithAuthorization(from,to,value,validAfter,validBefore,nonce,v,r,s)` of a payload.
fn authorization_call(payload: &Value) -> String {
    use x402_evm::alloy::primitives::{Address, FixedBytes, U256};
    use x402_evm::alloy::sol_types::SolCall;
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
    let call = x402_evm::exact::transferWithAuthorization_0Call {
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

/// Settles `body` with automine off; once our transaction is in the pool, `first` runs (the
/// payer's competing transaction), then one block is mined. Returns the settle answer.
async fn race(
    chain: &LocalChain,
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    first: impl std::future::Future<Output = Value>,
) -> Value {
    chain.rpc("evm_setAutomine", json!([false])).await.unwrap();
    let settle_url = format!("{url}/settle");
    let request = {
        let (http, body) = (http.clone(), body.clone());
        tokio::spawn(async move { post_json(&http, &settle_url, &body).await.1 })
    };
    until(30, "our settlement in the pool", || async {
        (pending_transactions(chain).await >= 1).then_some(())
    })
    .await;
    first.await;
    chain.rpc("evm_mine", json!([])).await.unwrap();
    chain.rpc("evm_setAutomine", json!([true])).await.unwrap();
    request.await.unwrap()
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
    let balance = chain.balance_of(BASE_SEPOLIA_USDC, PAYER).await.unwrap();
    let drain = send_first(
        &chain,
        PAYER,
        BASE_SEPOLIA_USDC,
        transfer_data(DEV_SIGNER, balance),
    );
    let answer = race(&chain, &http, &process.url, &body, drain).await;
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
        proxy.set(Fault::EstimateError(code, message.into()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_authorization_pays_for_one_request_only() {
    let chain = chain_with_token(&[]).await;
    let process = Process::spawn(&chain, &[], &[]).await;
    let http = reqwest::Client::new();
    let mark = ChainMark::take(&chain).await;
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 3_000, random_nonce());
    let body = v2_body(payload.clone(), "3000");
    let settled = settle(&http, &process.url, &body).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(
        settle(&http, &process.url, &body).await,
        settled,
        "identical retry"
    );

    let mut other_resource = body.clone();
    other_resource["paymentPayload"]["resource"] =
        json!({"url": "http://127.0.0.1/another", "description": "", "mimeType": ""});
    let v1 = v1_body(payload, "3000");
    for (what, request) in [("another resource", other_resource), ("v1", v1)] {
        let answer = settle(&http, &process.url, &request).await;
        assert_eq!(answer["success"], false, "{what}: {answer}");
        assert_eq!(
            answer["errorReason"], "invalid_exact_evm_nonce_already_used",
            "{what}: {answer}"
        );
        assert_eq!(answer["transaction"], "", "{what}: {answer}");
    }
    mark.assert_moved(&chain, 1, 3_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_make_us_pay_gas_for_free_tokens_zero_amounts_or_burns() {
    const FREE_TOKEN: &str = "0x00000000000000000000000000000000000f2ee0";
    let chain = chain_with_token(&[]).await;
    chain.install_token(FREE_TOKEN).await.unwrap();
    chain.mint(FREE_TOKEN, PAYER, 1_000_000).await.unwrap();
    let process = Process::spawn(
        &chain,
        &[
            ("MIN_AMOUNT_BASE_SEPOLIA", "100"),
            ("RATE_LIMIT_PER_PAYER", "2"),
        ],
        &[],
    )
    .await;
    let http = reqwest::Client::new();
    let nonce = account_nonce(&chain, DEV_SIGNER, "latest").await;

    // A token the stranger deployed and minted for free.
    let mut free = fresh_body(PAYER_KEY, 5_000);
    free["paymentRequirements"]["asset"] = json!(FREE_TOKEN);
    free["paymentPayload"]["accepted"]["asset"] = json!(FREE_TOKEN);
    // Zero, and under the configured minimum.
    let zero = fresh_body(PAYER_KEY, 0);
    let small = fresh_body(PAYER_KEY, 99);
    // Funds sent to the zero address are burnt.
    let mut burn = v2_body(
        sign_authorization(
            PAYER_KEY,
            "0x0000000000000000000000000000000000000000",
            1_000,
            random_nonce(),
        ),
        "1000",
    );
    for part in ["paymentRequirements", "paymentPayload"] {
        let target = if part == "paymentPayload" {
            &mut burn[part]["accepted"]
        } else {
            &mut burn[part]
        };
        target["payTo"] = json!("0x0000000000000000000000000000000000000000");
    }
    for (what, body) in [
        ("free token", &free),
        ("zero", &zero),
        ("under minimum", &small),
        ("burn", &burn),
    ] {
        for endpoint in ["verify", "settle"] {
            let (status, answer) =
                post_json(&http, &format!("{}/{endpoint}", process.url), body).await;
            assert_eq!(status, 200, "{what}");
            let reason = if endpoint == "verify" {
                &answer["invalidReason"]
            } else {
                &answer["errorReason"]
            };
            assert_eq!(
                reason, "invalid_payment_requirements",
                "{what} {endpoint}: {answer}"
            );
            assert_eq!(answer["payer"], PAYER, "{what}: {answer}");
        }
    }
    assert_eq!(
        account_nonce(&chain, DEV_SIGNER, "latest").await,
        nonce,
        "no gas spent"
    );

    // Two new settlements a minute for one payer; a re-send of a settled one still passes.
    let first = fresh_body(PAYER_KEY, 100);
    assert_eq!(settle(&http, &process.url, &first).await["success"], true);
    assert_eq!(
        settle(&http, &process.url, &fresh_body(PAYER_KEY, 100)).await["success"],
        true
    );
    let limited = http
        .post(format!("{}/settle", process.url))
        .json(&fresh_body(PAYER_KEY, 100))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        settle(&http, &process.url, &first).await["success"],
        true,
        "re-send"
    );
    assert_eq!(account_nonce(&chain, DEV_SIGNER, "latest").await, nonce + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_read_strictly() {
    let chain = chain_with_token(&[]).await;
    let process = Process::spawn(&chain, &[], &[]).await;
    let http = reqwest::Client::new();
    let verify = format!("{}/verify", process.url);

    // v2 `accepted` must be the requirements.
    let fields = [
        ("amount", json!("2000")),
        ("asset", json!("0x0000000000000000000000000000000000000001")),
        ("payTo", json!(DEV_ACCOUNTS_3)),
        ("maxTimeoutSeconds", json!(3600)),
    ];
    for (field, value) in fields {
        let mut body = fresh_body(PAYER_KEY, 1_000);
        body["paymentPayload"]["accepted"][field] = value;
        let (_, answer) = post_json(&http, &verify, &body).await;
        assert_eq!(
            answer["invalidReason"], "invalid_payment_requirements",
            "{field}: {answer}"
        );
        assert!(
            answer["invalidMessage"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    // A high-s signature (the same signature's malleable twin) is refused.
    let mut body = fresh_body(PAYER_KEY, 1_000);
    body["paymentPayload"]["payload"]["signature"] = json!(high_s_twin(
        body["paymentPayload"]["payload"]["signature"]
            .as_str()
            .unwrap()
    ));
    let (_, answer) = post_json(&http, &verify, &body).await;
    assert_eq!(
        answer["invalidReason"], "invalid_exact_evm_signature",
        "{answer}"
    );
    // JSON only.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = http
            .post(&verify)
            .body(fresh_body(PAYER_KEY, 1_000).to_string());
        if let Some(kind) = content_type {
            request = request.header("content-type", kind);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]
            .as_str()
            .unwrap()
            .contains("application/json"));
    }
    let response = http
        .post(&verify)
        .header("content-type", "application/json; charset=utf-8")
        .body(fresh_body(PAYER_KEY, 1_000).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A maxTimeoutSeconds that would overflow is arithmetic, not a panic or a wrap.
    let mut body = fresh_body(PAYER_KEY, 1_000);
    for part in ["paymentRequirements", "paymentPayload"] {
        let target = if part == "paymentPayload" {
            &mut body[part]["accepted"]
        } else {
            &mut body[part]
        };
        target["maxTimeoutSeconds"] = json!(u64::MAX);
    }
    let (status, answer) = post_json(&http, &verify, &body).await;
    assert_eq!(
        (status, &answer["isValid"]),
        (200, &json!(true)),
        "{answer}"
    );
}

/// The signature with `s` replaced by `n - s` and the parity flipped: it recovers to the
/// same address, and EIP-3009 tokens refuse it on chain.
fn high_s_twin(signature: &str) -> String {
    use x402_evm::alloy::primitives::U256;
    let hex = signature.trim_start_matches("0x");
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let s = U256::from_str_radix(&hex[64..128], 16).unwrap();
    let v = u8::from_str_radix(&hex[128..130], 16).unwrap();
    let flipped = if v == 27 { 28 } else { 27 };
    format!("0x{}{:064x}{flipped:02x}", &hex[..64], n - s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_and_the_cap_holds() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chain = chain_with_token(&[]).await;
    let process = Process::spawn(
        &chain,
        &[
            ("HEADER_READ_TIMEOUT_SECONDS", "2"),
            ("MAX_CONNECTIONS", "40"),
        ],
        &[],
    )
    .await;
    let address = process.url.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    let mut sockets = Vec::new();
    for i in 0..100 {
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        match i % 3 {
            // Slow loris: half a request head, then nothing.
            0 => socket
                .write_all(b"POST /verify HTTP/1.1\r\nhost: x\r\ncontent-type: appl")
                .await
                .unwrap(),
            // Keep-alive after one answered request, then idle.
            1 => {
                socket
                    .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                    .await
                    .unwrap();
            }
            // Connected and silent.
            _ => {}
        }
        sockets.push(socket);
    }
    // Every one of them is closed by the server within the timeout and a margin.
    for mut socket in sockets {
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut buffer = [0u8; 4096];
            loop {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a connection stayed open");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    // Connections past the cap were closed at once and counted; the service still answers.
    let http = reqwest::Client::new();
    let (status, metrics) = get_text(&http, &format!("{}/metrics", process.url)).await;
    assert_eq!(status, 200);
    assert!(
        metric(&metrics, "x402_connections_refused_total", &[]) >= 1.0,
        "{metrics}"
    );
    let (status, _) = get_text(&http, &format!("{}/health", process.url)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_wants_a_strong_token_and_exactly_one_authorization_header() {
    let chain = chain_with_token(&[]).await;
    for weak in ["               x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402-facilitator"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RPC_URL_BASE_SEPOLIA", &chain.rpc_url)
            .env("EVM_PRIVATE_KEY", DEV_ACCOUNTS[0].1)
            .env("ADMIN_TOKEN", weak)
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("invalid configuration: ADMIN_TOKEN"),
            "{said}"
        );
        assert!(!said.contains(weak), "the token is not echoed: {said}");
    }
    const TOKEN: &str = "adm-7Qm2xW9pL4vK8zR3tY6n";
    let process = Process::spawn(&chain, &[("ADMIN_TOKEN", TOKEN)], &[]).await;
    let http = reqwest::Client::new();
    let admin = format!("{}/admin/flags", process.url);
    let twice = http
        .put(&admin)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("authorization", "Bearer wrong")
        .json(&json!({"v2_enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    let reversed = http
        .put(&admin)
        .header("authorization", "Bearer wrong")
        .header("authorization", format!("Bearer {TOKEN}"))
        .json(&json!({"v2_enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(reversed.status(), 400);
    let (_, flags) = get_text(&http, &format!("{}/flags", process.url)).await;
    assert!(
        flags.contains("\"v2_enabled\":true"),
        "nothing changed: {flags}"
    );
    let once = http
        .put(&admin)
        .bearer_auth(TOKEN)
        .json(&json!({"v2_enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(once.status(), 200);
}
