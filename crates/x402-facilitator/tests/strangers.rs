//! What a stranger can do with a request alone, tested on the real binary on a real anvil:
//! make us pay gas for worthless payments (free tokens, zero amounts, burns, floods), get
//! one payment counted for two requests, slip loose input past the parser, hold
//! connections open, or guess at the admin API. Each is refused with nothing sent.

mod support;

use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::DEV_ACCOUNTS;

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
    use alloy::primitives::U256;
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
