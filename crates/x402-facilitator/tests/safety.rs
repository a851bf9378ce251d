//! The safety layer against a running facilitator and a real anvil: graceful drain on
//! SIGTERM, flags (SIGHUP), health checks, metrics and shadow mode (the v2 settle breaker
//! and the admin API on its own listener: `breaker.rs`).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::{BASE_SEPOLIA_USDC, DEV_ACCOUNTS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_settlements() {
    const N: u64 = 6;
    let chain = chain_with_token(&[]).await;
    // Mining held back: settlements stay in flight until the test mines a block.
    chain.rpc("evm_setAutomine", json!([false])).await.unwrap();
    let mut process = Process::spawn(&chain, &[("SHUTDOWN_GRACE_SECONDS", "2")], &[]).await;
    let http = reqwest::Client::new();
    let payer_before = chain.balance_of(BASE_SEPOLIA_USDC, PAYER).await.unwrap();

    let mut clients = Vec::new();
    for i in 0..N {
        let body = v2_body(
            sign_authorization(PAYER_KEY, PAY_TO, 1_000 + i, random_nonce()),
            &(1_000 + i).to_string(),
        );
        let url = format!("{}/settle", process.url);
        let http = http.clone();
        clients.push(tokio::spawn(
            async move { post_json(&http, &url, &body).await },
        ));
    }
    // All N broadcast and waiting for their receipts.
    until(60, "N pending transactions", || async {
        (pending_transactions(&chain).await == N).then_some(())
    })
    .await;
    let (_, metrics_text) = get_text(&http, &format!("{}/metrics", process.url)).await;
    assert_eq!(
        metric(&metrics_text, "x402_settlements_in_flight", &[]),
        N as f64,
        "{metrics_text}"
    );
    let (_, deep) = get_text(&http, &format!("{}/health/deep", process.url)).await;
    let deep: Value = serde_json::from_str(&deep).unwrap();
    assert_eq!(deep["settlements_in_flight"], N);

    let signalled = Instant::now();
    process.signal("TERM");
    // Readiness fails at once while the listener still serves through the grace period.
    until(10, "readiness to fail", || async {
        let (status, body) = get_text(&http, &format!("{}/health/ready", process.url)).await;
        (status == 503 && body.contains("draining")).then_some(())
    })
    .await;
    // The grace period ends with all N still waiting; only then let blocks come, so the
    // answers are given by the drain, after the listener stopped accepting.
    let grace_over = process
        .wait_log(|l| {
            l["message"] == "grace period over: no new connections, finishing in-flight work"
        })
        .await;
    assert_eq!(grace_over["settlements_in_flight"], N);
    chain.rpc("evm_mine", json!([])).await.unwrap();

    let mut hashes = std::collections::HashSet::new();
    for client in clients {
        let (status, answer) = client.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(answer["success"], true, "{answer}");
        hashes.insert(answer["transaction"].as_str().unwrap().to_owned());
    }
    assert_eq!(hashes.len() as u64, N);
    let status = process.wait_exit(60).await;
    let exit_seconds = signalled.elapsed().as_secs_f64();
    assert!(status.success(), "exit status {status}");
    let moved = payer_before - chain.balance_of(BASE_SEPOLIA_USDC, PAYER).await.unwrap();
    assert_eq!(moved, (0..N as u128).map(|i| 1_000 + i).sum::<u128>());
    for hash in &hashes {
        let receipt = chain
            .rpc("eth_getTransactionReceipt", json!([hash]))
            .await
            .unwrap();
        assert_eq!(receipt["status"], "0x1", "{hash} on chain");
    }
    process
        .wait_log(|l| l["message"] == "received shutdown signal")
        .await;
    let done = process
        .wait_log(|l| l["message"] == "graceful shutdown complete")
        .await;
    assert!(done["completed"].as_u64().unwrap() >= N, "{done}");
    println!(
        "SIGTERM drain: {N} settlements in flight, {} answered, {} on chain, exit 0 after {exit_seconds:.2}s",
        N,
        hashes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_flags_from_the_configuration_file() {
    let chain = chain_with_token(&[]).await;
    let dir = std::env::temp_dir().join(format!("x402-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("facilitator.toml");
    std::fs::write(&file, "v2_enabled = true\n").unwrap();
    let process = Process::spawn(&chain, &[], &["--config", file.to_str().unwrap()]).await;
    let http = reqwest::Client::new();
    let flags = |http: reqwest::Client, url: String| async move {
        let (_, text) = get_text(&http, &format!("{url}/flags")).await;
        serde_json::from_str::<Value>(&text).unwrap()
    };
    assert_eq!(
        flags(http.clone(), process.url.clone()).await["v2_enabled"],
        true
    );

    std::fs::write(&file, "v2_enabled = false\nv2_networks = [\"base\"]\n").unwrap();
    process.signal("HUP");
    let change = process
        .wait_log(|l| l["message"] == "feature flag changed" && l["flag"] == "v2_enabled")
        .await;
    assert_eq!(change["old"], "true");
    assert_eq!(change["new"], "false");
    assert_eq!(change["source"], "sighup");
    let now = flags(http.clone(), process.url.clone()).await;
    assert_eq!(now["v2_enabled"], false);
    assert_eq!(now["v2_networks"], json!(["eip155:8453"]));

    // v2 is refused in its own shape; v1 is unaffected.
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let (status, v2) = post_json(
        &http,
        &format!("{}/verify", process.url),
        &v2_body(payload.clone(), "10000"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v2["isValid"], false);
    assert_eq!(v2["invalidReason"], "feature_disabled");
    let (_, v1) = post_json(
        &http,
        &format!("{}/verify", process.url),
        &v1_body(payload, "10000"),
    )
    .await;
    assert_eq!(v1["isValid"], true, "{v1}");
    // /supported no longer advertises v2.
    let (_, supported) = get_text(&http, &format!("{}/supported", process.url)).await;
    let supported: Value = serde_json::from_str(&supported).unwrap();
    assert!(supported["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["x402Version"] == 1));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_checks_v1_payments_on_the_v2_path() {
    let chain = chain_with_token(&[]).await;
    let process = Process::spawn(&chain, &[("SHADOW_V2_ENABLED", "true")], &[]).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", process.url);

    // A real v1 payment: both paths agree.
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let (_, v1) = post_json(&http, &url("/verify"), &v1_body(payload.clone(), "10000")).await;
    assert_eq!(v1["isValid"], true);
    until(30, "a shadow match", || async {
        let (_, text) = get_text(&http, &url("/metrics")).await;
        (metric(
            &text,
            "x402_shadow_comparisons_total",
            &[("result", "match")],
        ) == 1.0)
            .then_some(())
    })
    .await;
    // A v1 settle is not shadowed (its payment is spent by then).
    let (_, settled) = post_json(&http, &url("/settle"), &v1_body(payload, "10000")).await;
    assert_eq!(settled["success"], true, "{settled}");

    // Deliberately divergent: v1 accepts a value above maxAmountRequired, v2 needs equality.
    let over = sign_authorization(PAYER_KEY, PAY_TO, 10_001, random_nonce());
    let response = http
        .post(url("/verify"))
        .json(&v1_body(over, "10000"))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let v1: Value = response.json().await.unwrap();
    assert_eq!(
        v1["isValid"], true,
        "the v1 answer is not changed by shadow"
    );
    let mismatch = process
        .wait_log(|l| l["message"] == "Shadow v2 verification mismatch")
        .await;
    assert_eq!(mismatch["level"], "ERROR");
    assert_eq!(mismatch["request_id"], request_id.as_str());
    assert!(mismatch["v1_result"]
        .as_str()
        .unwrap()
        .contains("\"isValid\":true"));
    assert!(mismatch["v2_result"]
        .as_str()
        .unwrap()
        .contains("invalid_exact_evm_payload_authorization_value_mismatch"));
    let (_, text) = get_text(&http, &url("/metrics")).await;
    assert_eq!(metric(&text, "x402_shadow_mismatches_total", &[]), 1.0);
    assert_eq!(
        metric(&text, "x402_shadow_comparisons_total", &[]),
        2.0,
        "one match, one mismatch, the settle not shadowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_health_checks_chain_signers_and_head() {
    let both = x402_facilitator::config::VersionSupport { v1: true, v2: true };
    let h = start(both).await;
    let (status, deep) = h.get("/health/deep").await;
    assert_eq!(status, 200, "{deep}");
    let names: Vec<&str> = deep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "self_test_caip2",
        "self_test_serialization_v1",
        "self_test_serialization_v2",
        "flags_loaded",
        "rpc_reachable",
        "chain_id",
        "head_block",
        "signer_gas_balance",
    ] {
        assert!(names.contains(&expected), "{expected} in {deep}");
    }
    assert!(
        !deep.to_string().contains(&h.chain.rpc_url),
        "RPC URLs are secrets"
    );
    let (status, _) = h.get("/health/ready").await;
    assert_eq!(status, 200);
    let (status, _) = h.get("/health/v2").await;
    assert_eq!(status, 200);

    // A signer below the gas floor makes the instance unhealthy.
    h.chain
        .rpc("anvil_setBalance", json!([DEV_SIGNER, "0x10"]))
        .await
        .unwrap();
    let (status, deep) = h.get("/health/deep").await;
    assert_eq!(status, 503);
    let gas = deep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "signer_gas_balance")
        .unwrap();
    assert_eq!(gas["ok"], false, "{gas}");

    // v2 switched off: /health/v2 says so.
    let update: x402_facilitator::flags::FlagUpdate =
        serde_json::from_value(json!({"v2_enabled": false})).unwrap();
    h.state.update_flags(&update, "test").unwrap();
    let (status, v2) = h.get("/health/v2").await;
    assert_eq!(status, 503);
    assert!(v2.to_string().contains("v2_enabled=false"), "{v2}");

    // The node is down: unhealthy, and still no URL in the answer.
    let mut h = h;
    h.chain.stop().await;
    let (status, deep) = h.get("/health/deep").await;
    assert_eq!(status, 503);
    assert!(deep.to_string().contains("no RPC endpoint answered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_health_flags_a_stale_head_only_with_an_expected_interval() {
    // A node whose latest block is years old, as a stuck node would report.
    let stale_args = ["--timestamp", "1700000000"];
    let judged = start_custom(
        &stale_args,
        |_| {},
        |settings| settings.options.expected_block_interval = Some(Duration::from_secs(2)),
    )
    .await;
    let (status, deep) = judged.get("/health/deep").await;
    assert_eq!(status, 503, "{deep}");
    let head = deep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "head_block")
        .unwrap()
        .clone();
    assert_eq!(head["ok"], false, "{head}");
    assert!(head["detail"].as_str().unwrap().contains("old"), "{head}");

    // Ruling 8: without an expected interval (anvil, instant mining) nothing is stale.
    let unjudged = start_custom(&stale_args, |_| {}, |_| {}).await;
    let (status, deep) = unjudged.get("/health/deep").await;
    assert_eq!(status, 200, "{deep}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_version_and_configured_networks_only() {
    let both = x402_facilitator::config::VersionSupport { v1: true, v2: true };
    let h = start(both).await;
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    h.post("/verify", &v2_body(payload.clone(), "10000")).await;
    h.post("/verify", &v1_body(payload, "10000")).await;
    // A network nobody configured, and a CAIP-2 id that does not parse.
    let mut unknown = v2_body(json!({}), "1");
    unknown["paymentRequirements"]["network"] = json!("eip155:999999");
    unknown["paymentPayload"]["accepted"]["network"] = json!("eip155:999999");
    h.post("/verify", &unknown).await;
    let mut broken = v2_body(json!({}), "1");
    broken["paymentRequirements"]["network"] = json!("eip155:");
    let (status, _) = h.post("/verify", &broken).await;
    assert_eq!(status, 400);

    let (status, text) = get_text(&h.http, &format!("{}/metrics", h.url)).await;
    assert_eq!(status, 200);
    let requests = |labels: &[(&str, &str)]| metric(&text, "x402_requests_total", labels);
    assert!(
        requests(&[
            ("x402_version", "2"),
            ("network", "eip155:84532"),
            ("endpoint", "verify"),
            ("outcome", "valid")
        ]) >= 1.0,
        "{text}"
    );
    assert!(requests(&[("x402_version", "1"), ("network", "eip155:84532")]) >= 1.0);
    assert!(requests(&[("network", "other")]) >= 1.0);
    assert!(
        !text.contains("999999"),
        "unconfigured networks never become labels"
    );
    assert!(metric(&text, "x402_caip2_parse_errors_total", &[]) >= 1.0);
    assert!(text.contains("x402_request_duration_seconds_bucket"));
    assert!(text.contains("x402_feature_flag_enabled{flag=\"v2_enabled\"}"));
    assert!(!text.contains(&h.chain.rpc_url));
}

/// The first RPC endpoint is a relay in front of anvil, switched off mid-run: every open
/// connection is dropped mid-request and new ones are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_failover_keeps_settling_when_the_first_endpoint_is_cut_mid_run() {
    const N: usize = 300;
    const VALUE: u64 = 300;
    let proxy = SwitchProxy::start("").await;
    let h = start_custom(
        &[],
        |_| {},
        |settings| {
            // The proxy first, anvil itself second.
            proxy.point_at(settings.rpc_urls[0].trim_start_matches("http://"));
            settings.rpc_urls.insert(0, proxy.url());
        },
    )
    .await;
    let nonce_before = account_nonce(&h.chain, DEV_SIGNER, "latest").await;
    let payee_before = h.chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Four at a time, as the other multi-client tests: with more, anvil's instant-mining pool
    // sometimes keeps out-of-order transactions queued (foundry-rs/foundry#10122), which
    // stalls every later settlement of the one signer; seen once in CI at 16, with the test
    // binary's other tests loading the two cores.
    let gate = Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let body = v2_body(
            sign_authorization(PAYER_KEY, PAY_TO, VALUE, random_nonce()),
            &VALUE.to_string(),
        );
        let (http, url, gate, done) = (
            h.http.clone(),
            format!("{}/settle", h.url),
            gate.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let (_, answer) = post_json(&http, &url, &body).await;
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            answer
        }));
    }
    until(
        60,
        "a third of the settlements through the proxy",
        || async { (done.load(std::sync::atomic::Ordering::SeqCst) >= N / 3).then_some(()) },
    )
    .await;
    assert_eq!(h.evm.rpc_failovers(), 0, "nothing failed before the cut");
    proxy.set(false);
    let mut failed = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        if answer["success"] != true {
            failed.push(answer);
        }
    }
    let succeeded = (N - failed.len()) as u64;
    println!(
        "RPC failover: {N} settlements, first endpoint cut after {}; {} failed ({:.2} %), {} calls failed over",
        N / 3,
        failed.len(),
        failed.len() as f64 * 100.0 / N as f64,
        h.evm.rpc_failovers()
    );
    assert!(failed.len() * 100 < N, "error rate 1 % or more: {failed:?}");
    assert!(h.evm.rpc_failovers() > 0, "the cut was noticed");
    // Whatever succeeded is on chain exactly once; nothing else moved.
    assert_eq!(
        account_nonce(&h.chain, DEV_SIGNER, "latest").await - nonce_before,
        succeeded
    );
    assert_eq!(
        h.chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap() - payee_before,
        succeeded as u128 * VALUE as u128
    );
}

/// Ruling 4: a production start with nothing configured serves nothing and says why; it
/// never falls back to a demo chain or a well-known key. The binary runs with a clean
/// environment (only `PATH`), once bare and once with the first anvil key but no network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfigured_start_serves_nothing_and_says_why() {
    let port = free_port();
    for extra in [vec![], vec![("EVM_PRIVATE_KEY", DEV_ACCOUNTS[0].1)]] {
        let dir = TempDir::new("unconfigured");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402-facilitator"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .current_dir(&dir.0)
            .kill_on_drop(true);
        for (key, value) in &extra {
            command.env(key, value);
        }
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("exits by itself")
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("no network is configured"), "{stderr}");
        assert!(stderr.contains("x402-facilitator dev"), "{stderr}");
        assert!(
            !stderr.contains(DEV_ACCOUNTS[0].1.trim_start_matches("0x")),
            "no key in the message"
        );
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            0,
            "no ledger opened, nothing written"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "nothing listens"
        );
    }
}
