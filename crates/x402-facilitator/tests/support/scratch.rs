//! Scratch resources for tests that need no chain: free loopback ports, temporary
//! directories removed on drop, a facilitator served in the test process, and the
//! JavaScript tools run as a child. Kept apart from `support` so the SVM and NEAR tests,
//! which do not build the EVM side, can use them too.

#![allow(dead_code)]

use std::path::PathBuf;

pub use x402_testkit::free_port;

/// A fresh directory under the system temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("x402-{tag}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serves `state` on a free loopback port in this process; the URL, and the sender whose
/// firing (or drop) shuts it down.
pub async fn serve(
    state: std::sync::Arc<x402_facilitator::AppState>,
    config: x402_facilitator::Config,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = x402_facilitator::serve_on(listener, state, &config, async {
            let _ = rx.await;
        })
        .await;
    });
    (url, tx)
}

/// Runs `node tests/js/<script> <args>`; whether it succeeded, and what it printed (also
/// printed here, for the test's log).
pub async fn run_js(script: &str, args: &[&str]) -> (bool, String) {
    run_node(&js_dir().join(script), args, &[]).await
}

/// Runs `node tests/js-stellar/<script> <args>` (the official Stellar client needs another
/// `@x402/core` than tests/js, and accepts the local TLS front's self-signed certificate).
pub async fn run_stellar_js(script: &str, args: &[&str]) -> (bool, String) {
    let dir = js_dir().join("../js-stellar");
    run_node(
        &dir.join(script),
        args,
        &[("NODE_TLS_REJECT_UNAUTHORIZED", "0")],
    )
    .await
}

async fn run_node(script: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    (output.status.success(), stdout)
}

/// `tests/js` of the checkout the test runs in (read when the test runs: a build reused from
/// another checkout carries that checkout's compile-time path).
pub fn js_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../../tests/js")
}

/// A facilitator serving one network section (`network_toml`, the `[networks."…"]` table
/// and its keys) with a SQLite ledger in a fresh directory; the URL, the shutdown sender
/// and the directory (removed on drop).
pub async fn serve_network(
    tag: &str,
    network_toml: &str,
) -> (String, tokio::sync::oneshot::Sender<()>, TempDir) {
    let scratch = TempDir::new(tag);
    let file = scratch.0.join("facilitator.toml");
    let text = format!(
        "log_format = \"pretty\"\ndatabase_url = \"sqlite://{}/ledger.db?mode=rwc\"\nshutdown_grace_seconds = 0\n\n{network_toml}",
        scratch.0.display()
    );
    std::fs::write(&file, text).expect("configuration written");
    let no_environment = std::collections::BTreeMap::<String, String>::new();
    let config =
        x402_facilitator::Config::load(Some(&file), &no_environment).expect("configuration");
    let state = x402_facilitator::build_state(&config).await.expect("state");
    let (url, shutdown) = serve(state, config).await;
    (url, shutdown, scratch)
}

/// `POST url` with every one of `bodies` at once; the JSON answers, in the bodies' order.
pub async fn post_all_at_once(
    http: &reqwest::Client,
    url: &str,
    bodies: Vec<serde_json::Value>,
) -> Vec<serde_json::Value> {
    let calls = bodies.into_iter().map(|body| {
        let (http, url) = (http.clone(), url.to_owned());
        tokio::spawn(async move {
            let response = http.post(url).json(&body).send().await.expect("answers");
            response.json::<serde_json::Value>().await.expect("json")
        })
    });
    let calls: Vec<_> = calls.collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("the call ran"));
    }
    answers
}

/// The v2 `/verify` and `/settle` body of a payment.
pub fn payment_body(
    payload: &serde_json::Value,
    requirements: &serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({"x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirements})
}

/// Asserts that concurrent settles of one payment agree on one transaction: every answer
/// succeeded with it or said another request was settling it.
pub fn assert_one_settlement(answers: &[serde_json::Value]) {
    let hashes: std::collections::BTreeSet<&str> = answers
        .iter()
        .filter(|a| a["success"] == true)
        .map(|a| a["transaction"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(hashes.len(), 1, "{answers:?}");
    for answer in answers {
        let ok = answer["success"] == true || answer["errorReason"] == "settlement_in_progress";
        assert!(ok, "{answer}");
    }
}

/// `GET url` as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = http.get(url).send().await.expect("answers");
    response.json().await.expect("json")
}

/// `POST url` of a v2 `{paymentPayload, paymentRequirements}` body, which must be answered
/// 200 (a refusal is a protocol answer); its JSON.
pub async fn post_payment(
    http: &reqwest::Client,
    url: &str,
    payload: &serde_json::Value,
    requirements: &serde_json::Value,
) -> serde_json::Value {
    let body = payment_body(payload, requirements);
    let response = http.post(url).json(&body).send().await.expect("answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// Asserts that `/health/deep`'s answer `deep` has every check in `names` for `network`, and
/// passed.
pub fn assert_checks_pass(deep: &serde_json::Value, network: &str, names: &[&str]) {
    let checks: Vec<&serde_json::Value> = deep["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["network"] == network)
        .collect();
    for name in names {
        let check = checks.iter().find(|c| c["name"] == *name);
        assert_eq!(
            check.map(|c| c["ok"].clone()),
            Some(serde_json::Value::Bool(true)),
            "{name}: {deep}"
        );
    }
}
