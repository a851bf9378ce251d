//! The settlement ledger with real stores and a real chain: several instances on one
//! PostgreSQL sharing a signer, blue-green overlap, `kill -9` recovery, fail-closed
//! settlement when the store is gone, and nonce mismatches.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::BASE_SEPOLIA_USDC;
use x402_ledger::{EntryState, Ledger};

mod ledger_support;
use ledger_support::*;
mod ledger_cases;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_settle_400_payments_through_one_postgres_without_a_nonce_clash() {
    const N: usize = 400;
    const VALUE: u64 = 1_000;
    let chain = chain_with_token(&[]).await;
    let (database_url, database) = fresh_postgres("pair").await;
    let env = [("DATABASE_URL", database_url.as_str())];
    let first = Process::spawn(&chain, &env, &[]).await;
    let second = Process::spawn(&chain, &env, &[]).await;
    let targets = vec![first.url.clone(), second.url.clone()];
    let nonce_before = account_nonce(&chain, DEV_SIGNER, "latest").await;
    let payee_before = chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap();

    let bodies = payments(N, VALUE);
    let started = Instant::now();
    let answers = settle_all(&targets, &bodies, 32).await;
    let seconds = started.elapsed().as_secs_f64();
    let failures: Vec<&Value> = answers.iter().filter(|a| a["success"] != true).collect();
    assert!(
        failures.is_empty(),
        "{} failed, first: {}",
        failures.len(),
        failures[0]
    );
    let hashes: HashSet<&str> = answers
        .iter()
        .map(|a| a["transaction"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), N, "one distinct transaction per payment");

    // Exactly N transactions from the shared signer, and exactly N payments moved.
    assert_eq!(
        account_nonce(&chain, DEV_SIGNER, "latest").await - nonce_before,
        N as u64
    );
    let payee_after = chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap();
    assert_eq!(payee_after - payee_before, N as u128 * VALUE as u128);
    let ledger = Ledger::connect(&database_url).await.unwrap();
    assert_eq!(
        ledger
            .count_by_state(NETWORK, EntryState::Confirmed)
            .await
            .unwrap(),
        N as u64
    );
    // No nonce clash, resynchronisation or node refusal anywhere.
    for process in [&first, &second] {
        assert_eq!(nonce_warnings(process), 0, "{:#?}", process.logs());
        let (_, metrics) =
            get_text(&reqwest::Client::new(), &format!("{}/metrics", process.url)).await;
        assert_eq!(metric(&metrics, "x402_nonce_mismatches_total", &[]), 0.0);
    }

    // Retries and cross-instance duplicates: the original answer, nothing moves.
    let again = settle_all(&[second.url.clone(), first.url.clone()], &bodies[..40], 8).await;
    for (retry, original) in again.iter().zip(&answers[..40]) {
        assert_eq!(retry["success"], true, "{retry}");
        assert_eq!(retry["transaction"], original["transaction"]);
    }
    let twins = payments(20, VALUE);
    let doubled: Vec<Value> = twins.iter().flat_map(|b| [b.clone(), b.clone()]).collect();
    let twin_answers = settle_all(&targets, &doubled, 40).await;
    for pair in twin_answers.chunks(2) {
        assert_eq!(pair[0]["success"], true, "{}", pair[0]);
        assert_eq!(pair[0]["transaction"], pair[1]["transaction"], "{pair:?}");
    }
    assert_eq!(
        account_nonce(&chain, DEV_SIGNER, "latest").await - nonce_before,
        N as u64 + 20
    );
    assert_eq!(
        chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap() - payee_after,
        20 * VALUE as u128
    );
    println!(
        "two instances, one signer, one PostgreSQL: {N} settlements at 32 concurrent in {seconds:.2} s = {:.0} confirmed/s; 0 failures, 0 nonce errors, {} duplicates answered with the original hash",
        N as f64 / seconds,
        40 + 20
    );
    drop(ledger);
    drop((first, second));
    drop_postgres(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_overlap_loses_no_request() {
    const VALUE: u64 = 700;
    let chain = chain_with_token(&[]).await;
    let (database_url, database) = fresh_postgres("bluegreen").await;
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("SHUTDOWN_GRACE_SECONDS", "2"),
    ];
    let mut blue = Process::spawn(&chain, &env, &[]).await;
    let mark = ChainMark::take(&chain).await;

    // A load balancer in miniature: clients send to every instance whose readiness passes.
    let pool = Arc::new(std::sync::Mutex::new(vec![blue.url.clone()]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    // Four clients: enough for both instances to serve at once, few enough that anvil's
    // instant-mining pool rarely sees the out-of-order arrivals it sometimes leaves queued.
    for worker in 0..4 {
        let (pool, stop, http) = (pool.clone(), stop.clone(), http.clone());
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut i = worker;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let target = {
                    let pool = pool.lock().unwrap();
                    pool[i % pool.len()].clone()
                };
                i += 1;
                let (ready, _) = get_text(&http, &format!("{target}/health/ready")).await;
                if ready != 200 {
                    continue;
                }
                answers.push(pay_once(&http, &format!("{target}/settle"), VALUE).await);
            }
            answers
        }));
    }
    until(30, "blue serving traffic", || async {
        let (_, metrics) = get_text(&http, &format!("{}/metrics", blue.url)).await;
        (metric(&metrics, "x402_settlements_total", &[]) >= 20.0).then_some(())
    })
    .await;
    let green = Process::spawn(&chain, &env, &[]).await;
    pool.lock().unwrap().push(green.url.clone());
    until(30, "green serving traffic", || async {
        let (_, metrics) = get_text(&http, &format!("{}/metrics", green.url)).await;
        (metric(&metrics, "x402_settlements_total", &[]) >= 20.0).then_some(())
    })
    .await;
    blue.signal("TERM");
    // Readiness fails on blue at once; the balancer takes it out, green carries on.
    until(10, "blue's readiness to fail", || async {
        let (status, _) = get_text(&http, &format!("{}/health/ready", blue.url)).await;
        (status == 503).then_some(())
    })
    .await;
    pool.lock().unwrap().retain(|u| *u != blue.url);
    let exit = blue.wait_exit(60).await;
    assert!(exit.success(), "blue exit {exit}");
    until(30, "green alone serving traffic", || async {
        let (_, metrics) = get_text(&http, &format!("{}/metrics", green.url)).await;
        (metric(&metrics, "x402_settlements_total", &[]) >= 60.0).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.unwrap());
    }
    let settled = assert_all_settled(&answers, &[("blue", &blue), ("green", &green)]);
    mark.assert_moved(&chain, settled, VALUE).await;
    println!("blue-green overlap: {settled} settlements, 0 failed, blue exited 0 after draining");
    drop(green);
    drop_postgres(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_settlement_then_restart_settles_every_payment_exactly_once() {
    const N: usize = 12;
    const VALUE: u64 = 900;
    let chain = chain_with_token(&[]).await;
    chain.rpc("evm_setAutomine", json!([false])).await.unwrap();
    let mut first = Process::spawn(&chain, &[], &[]).await;
    let nonce_before = account_nonce(&chain, DEV_SIGNER, "latest").await;
    let payee_before = chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap();
    let bodies = payments(N, VALUE);
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for body in &bodies {
        let (http, body, url) = (http.clone(), body.clone(), format!("{}/settle", first.url));
        clients.push(tokio::spawn(async move {
            http.post(url).json(&body).send().await.map(|_| ())
        }));
    }
    until(60, "all settlements broadcast", || async {
        (pending_transactions(&chain).await == N as u64).then_some(())
    })
    .await;
    first.kill().await;
    for client in clients {
        assert!(
            client.await.unwrap().is_err(),
            "killed mid-request: no answer"
        );
    }
    // The node loses them too (as after a node restart): only the ledger remembers.
    chain
        .rpc("anvil_dropAllTransactions", json!([]))
        .await
        .unwrap();
    assert_eq!(pending_transactions(&chain).await, 0);
    let database_url = format!("sqlite://{}?mode=rwc", chain.ledger_path.display());
    let recorded: HashMap<String, String> = {
        let ledger = Ledger::connect(&database_url).await.unwrap();
        let open = ledger
            .open_entries(NETWORK, std::time::Duration::ZERO, 100)
            .await
            .unwrap();
        assert_eq!(
            open.len(),
            N,
            "every settlement recorded before its broadcast"
        );
        open.into_iter()
            .map(|e| (e.payment_key, e.tx_hash))
            .collect()
    };
    chain.rpc("evm_setAutomine", json!([true])).await.unwrap();

    let second = Process::spawn(&chain, &[], &[]).await;
    let recovered = second
        .wait_log(|l| l["message"] == "reconciled unfinished settlements" && l["startup"] == true)
        .await;
    assert_eq!(recovered["examined"], N, "{recovered}");
    assert_eq!(recovered["resent"], N, "{recovered}");
    // The clients retry: each gets the one transaction recorded before the crash.
    let answers = settle_all(std::slice::from_ref(&second.url), &bodies, 4).await;
    let original: HashSet<&String> = recorded.values().collect();
    for answer in &answers {
        assert_eq!(answer["success"], true, "{answer}");
        assert!(
            original.contains(&answer["transaction"].as_str().unwrap().to_owned()),
            "{answer}"
        );
    }
    assert_eq!(
        account_nonce(&chain, DEV_SIGNER, "latest").await - nonce_before,
        N as u64,
        "no transaction beyond the recorded ones"
    );
    assert_eq!(
        chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap() - payee_before,
        N as u128 * VALUE as u128
    );
    let ledger = Ledger::connect(&database_url).await.unwrap();
    assert_eq!(
        ledger
            .count_by_state(NETWORK, EntryState::Confirmed)
            .await
            .unwrap(),
        N as u64
    );
    println!("kill -9 with {N} settlements in flight and the node's pool lost: {N} re-sent from the ledger at start, {N} settled exactly once, original hashes answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_is_refused_before_broadcast_when_the_ledger_is_gone() {
    let chain = chain_with_token(&[]).await;
    let (database_url, database) = fresh_postgres("gone").await;
    let process = Process::spawn(&chain, &[("DATABASE_URL", database_url.as_str())], &[]).await;
    let http = reqwest::Client::new();
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 500, random_nonce()),
        "500",
    );
    let nonce_before = account_nonce(&chain, DEV_SIGNER, "pending").await;
    let payer_before = chain.balance_of(BASE_SEPOLIA_USDC, PAYER).await.unwrap();

    drop_postgres(&database).await;
    let (status, answer) = post_json(&http, &format!("{}/settle", process.url), &body).await;
    assert_eq!(status, 200, "a refusal is a protocol answer");
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(answer["errorReason"], "ledger_unavailable", "{answer}");
    assert_eq!(answer["transaction"], "", "nothing broadcast");
    assert_eq!(
        account_nonce(&chain, DEV_SIGNER, "pending").await,
        nonce_before
    );
    assert_eq!(
        chain.balance_of(BASE_SEPOLIA_USDC, PAYER).await.unwrap(),
        payer_before
    );
    // Verify moves nothing and still answers; deep health names the ledger.
    let (_, verdict) = post_json(&http, &format!("{}/verify", process.url), &body).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    let (deep_status, deep) = get_text(&http, &format!("{}/health/deep", process.url)).await;
    assert_eq!(deep_status, 503, "{deep}");
    assert!(deep.contains("\"ledger\""), "{deep}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_taken_behind_the_ledgers_back_is_detected_in_both_fetch_modes() {
    let chain = chain_with_token(&[]).await;
    let http = reqwest::Client::new();
    for mode in ["cached", "always_fresh"] {
        let process = Process::spawn(&chain, &[("NONCE_FETCH_MODE", mode)], &[]).await;
        // Warm the ledger's counter for the signer with one settlement.
        let warm = payments(1, 100);
        let answer = settle_all(std::slice::from_ref(&process.url), &warm, 1).await;
        assert_eq!(answer[0]["success"], true, "{}", answer[0]);
        // Someone else uses the signer key: the chain's nonce moves past the ledger's.
        for _ in 0..2 {
            chain
                .rpc(
                    "eth_sendTransaction",
                    json!([{"from": DEV_SIGNER, "to": DEV_SIGNER, "value": "0x0"}]),
                )
                .await
                .unwrap();
        }
        // Both mined before the next settlement (anvil mines right after answering).
        let chain_nonce = until(10, "the key's transactions to be mined", || async {
            let latest = account_nonce(&chain, DEV_SIGNER, "latest").await;
            (latest == account_nonce(&chain, DEV_SIGNER, "pending").await).then_some(latest)
        })
        .await;
        let body = payments(1, 100);
        let answer = settle_all(std::slice::from_ref(&process.url), &body, 1).await;
        assert_eq!(answer[0]["success"], true, "{mode}: {}", answer[0]);
        let mismatch = process
            .wait_log(|l| {
                l["level"] == "WARN"
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("nonce mismatch"))
            })
            .await;
        assert_eq!(mismatch["chain_nonce"], chain_nonce, "{mode}: {mismatch}");
        assert_eq!(
            mismatch["local_nonce"],
            chain_nonce - 2,
            "{mode}: {mismatch}"
        );
        let (_, metrics) = get_text(&http, &format!("{}/metrics", process.url)).await;
        assert_eq!(
            metric(&metrics, "x402_nonce_mismatches_total", &[]),
            1.0,
            "{mode}"
        );
        // The answer names the transaction that landed, at the chain's nonce.
        let receipt = chain
            .rpc(
                "eth_getTransactionByHash",
                json!([answer[0]["transaction"]]),
            )
            .await
            .unwrap();
        assert_eq!(quantity(&receipt["nonce"]), chain_nonce, "{mode}");
        let auth = &body[0]["paymentPayload"]["payload"]["authorization"];
        let key = format!(
            "{}/{}/{}",
            BASE_SEPOLIA_USDC.to_lowercase(),
            PAYER.to_lowercase(),
            auth["nonce"].as_str().unwrap()
        );
        let ledger = Ledger::connect(&format!(
            "sqlite://{}?mode=rwc",
            chain.ledger_path.display()
        ))
        .await
        .unwrap();
        let entry = ledger
            .entry(NETWORK, &key)
            .await
            .unwrap()
            .expect("recorded");
        assert_eq!(entry.state, EntryState::Confirmed);
        assert_eq!(entry.tx_hash, answer[0]["transaction"].as_str().unwrap());
        if mode == "cached" {
            // The node refused the stale nonce; a new transaction was built (the
            // authorization was unused) and the ledger keeps both hashes.
            assert_eq!(entry.tx_hashes.len(), 2, "{entry:?}");
        } else {
            // The chain's nonce was read with the settlement: nothing was refused.
            assert_eq!(entry.tx_hashes.len(), 1, "{entry:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_signers_share_the_load_and_are_all_advertised() {
    const N: usize = 40;
    let h = start_with(
        x402_facilitator::config::VersionSupport { v1: true, v2: true },
        |s| {
            s.signer_keys.push(DEV_ACCOUNTS_3_KEY.to_owned());
        },
    )
    .await;
    let (_, supported) = h.get("/supported").await;
    let advertised: Vec<String> = supported["signers"]["eip155:*"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_lowercase())
        .collect();
    assert!(
        advertised.contains(&DEV_SIGNER.to_lowercase()),
        "{supported}"
    );
    assert!(
        advertised.contains(&DEV_ACCOUNTS_3.to_lowercase()),
        "{supported}"
    );
    let before = [
        account_nonce(&h.chain, DEV_SIGNER, "latest").await,
        account_nonce(&h.chain, DEV_ACCOUNTS_3, "latest").await,
    ];
    let answers = settle_all(std::slice::from_ref(&h.url), &payments(N, 50), 8).await;
    assert!(answers.iter().all(|a| a["success"] == true), "{answers:?}");
    let used = [
        account_nonce(&h.chain, DEV_SIGNER, "latest").await - before[0],
        account_nonce(&h.chain, DEV_ACCOUNTS_3, "latest").await - before[1],
    ];
    assert_eq!(used[0] + used[1], N as u64);
    assert!(
        used[0] > 0 && used[1] > 0,
        "both signers carried settlements: {used:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_changes_reach_every_instance_on_a_shared_ledger() {
    const TOKEN: &str = "an-admin-token-for-tests";
    let chain = chain_with_token(&[]).await;
    let (database_url, database) = fresh_postgres("flags").await;
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("ADMIN_TOKEN", TOKEN),
    ];
    let first = Process::spawn(&chain, &env, &[]).await;
    let second = Process::spawn(&chain, &env, &[]).await;
    let http = reqwest::Client::new();
    let put = |url: String, body: Value| put_admin_flags(&http, url, TOKEN, body);
    let flag = |url: String| {
        let http = http.clone();
        async move {
            let (_, text) = get_text(&http, &format!("{url}/flags")).await;
            serde_json::from_str::<Value>(&text).unwrap()["v2_settle_enabled"].clone()
        }
    };
    assert_eq!(flag(second.url.clone()).await, true);
    put(first.url.clone(), json!({"v2_settle_enabled": false})).await;
    until(10, "the change to reach the second instance", || async {
        (flag(second.url.clone()).await == false).then_some(())
    })
    .await;
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 10, random_nonce()),
        "10",
    );
    let (_, refused) = post_json(&http, &format!("{}/settle", second.url), &body).await;
    assert_eq!(refused["errorReason"], "feature_disabled", "{refused}");
    let applied = second
        .wait_log(|l| l["message"] == "feature flag changed" && l["source"] == "shared")
        .await;
    assert_eq!(applied["flag"], "v2_settle_enabled");
    // Back on from the other side; a third instance starting now inherits the fleet's state.
    put(
        second.url.clone(),
        json!({"v2_settle_enabled": true, "v2_verify_enabled": false}),
    )
    .await;
    until(10, "the change to reach the first instance", || async {
        (flag(first.url.clone()).await == true).then_some(())
    })
    .await;
    let third = Process::spawn(&chain, &env, &[]).await;
    let (_, text) = get_text(&http, &format!("{}/flags", third.url)).await;
    let flags: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(flags["v2_verify_enabled"], false, "{flags}");
    let (_, settled) = post_json(&http, &format!("{}/settle", third.url), &body).await;
    assert_eq!(settled["success"], true, "{settled}");
    drop((first, second, third));
    drop_postgres(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_settlement_is_finished_by_whichever_instance_the_retry_reaches() {
    let chain = chain_with_token(&[]).await;
    chain.rpc("evm_setAutomine", json!([false])).await.unwrap();
    let (database_url, database) = fresh_postgres("pending").await;
    let dir = std::env::temp_dir().join(format!("x402-pending-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("facilitator.toml");
    // A short receipt wait, so that the first answer is `settlement_pending`.
    std::fs::write(
        &file,
        format!(
            "[networks.base-sepolia]\nrpc_urls = [\"{}\"]\nreceipt_timeout_ms = 300\n",
            chain.rpc_url
        ),
    )
    .unwrap();
    let env = [("DATABASE_URL", database_url.as_str())];
    let args = ["--config", file.to_str().unwrap()];
    let first = Process::spawn(&chain, &env, &args).await;
    let second = Process::spawn(&chain, &env, &args).await;
    let http = reqwest::Client::new();
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 4_321, random_nonce()),
        "4321",
    );
    let nonce_before = account_nonce(&chain, DEV_SIGNER, "pending").await;

    let (_, pending) = post_json(&http, &format!("{}/settle", first.url), &body).await;
    assert_eq!(pending["success"], false, "{pending}");
    assert_eq!(pending["errorReason"], "settlement_pending", "{pending}");
    let hash = pending["transaction"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("0x") && hash.len() == 66, "{pending}");
    chain.rpc("evm_mine", json!([])).await.unwrap();

    let (_, settled) = post_json(&http, &format!("{}/settle", second.url), &body).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(
        settled["transaction"],
        hash.as_str(),
        "the same transaction"
    );
    assert_eq!(
        account_nonce(&chain, DEV_SIGNER, "pending").await - nonce_before,
        1,
        "one transaction in all"
    );
    let (_, again) = post_json(&http, &format!("{}/settle", first.url), &body).await;
    assert_eq!(again["transaction"], hash.as_str(), "{again}");
    assert_eq!(again["success"], true, "{again}");
    drop((first, second));
    let _ = std::fs::remove_dir_all(dir);
    drop_postgres(&database).await;
}
