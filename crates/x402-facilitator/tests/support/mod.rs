//! Shared setup for the integration tests: a real anvil, our test token, and the real
//! facilitator server on a random loopback port.

#![allow(dead_code)]

mod fault_proxy;
mod process;
mod race;
mod scratch;
mod switch_proxy;
#[allow(unused_imports)] // not every test binary needs them
pub use fault_proxy::{Fault, FaultProxy};
pub use process::Process;
#[allow(unused_imports)] // not every test binary needs them
pub use race::{race, race_payer_drain, send_first, transfer_data};
#[allow(unused_imports)] // not every test binary needs them
pub use scratch::{free_port, TempDir};
#[allow(unused_imports)] // not every test binary needs it
pub use switch_proxy::SwitchProxy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::TcpListener;
use x402_facilitator::config::{Config, VersionSupport};
use x402_facilitator::dev::{LocalChain, BASE_SEPOLIA_USDC, DEV_ACCOUNTS};
use x402_facilitator::served::Served;
use x402_facilitator::AppState;
use x402_protocol::Chain;

pub use x402_testkit::eip3009::*;

pub const PAYER: &str = DEV_ACCOUNTS[1].0;
pub const PAYER_KEY: &str = DEV_ACCOUNTS[1].1;
pub const PAY_TO: &str = DEV_ACCOUNTS[2].0;
pub const DEV_SIGNER: &str = DEV_ACCOUNTS[0].0;
pub const DEV_ACCOUNTS_3: &str = DEV_ACCOUNTS[3].0;
pub const DEV_ACCOUNTS_3_KEY: &str = DEV_ACCOUNTS[3].1;

pub struct Harness {
    pub chain: LocalChain,
    pub url: String,
    pub evm: Arc<x402_evm::EvmNetwork>,
    pub state: Arc<AppState>,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts anvil (chain 84532), the token at Base Sepolia's USDC address, a funded payer,
/// and the facilitator with the given version support.
pub async fn start(versions: VersionSupport) -> Harness {
    start_with(versions, |_| {}).await
}

/// Like [`start`], with a last word on the EVM handler's settings.
pub async fn start_with(
    versions: VersionSupport,
    adjust: impl FnOnce(&mut x402_evm::EvmSettings),
) -> Harness {
    start_custom(
        &[],
        |config| config.flags.x402_version_support = versions,
        adjust,
    )
    .await
}

/// The most general start: extra anvil arguments, then adjustments of the facilitator
/// configuration and of the EVM handler's settings.
pub async fn start_custom(
    anvil_args: &[&str],
    adjust_config: impl FnOnce(&mut Config),
    adjust: impl FnOnce(&mut x402_evm::EvmSettings),
) -> Harness {
    let chain = chain_with_token(anvil_args).await;
    let rpc_url = chain.rpc_url.clone();
    start_on(chain, &rpc_url, adjust_config, adjust).await
}

/// [`start_custom`] on a chain of the caller's, the facilitator reaching it at `rpc_url`
/// (a [`FaultProxy`] in front of it, say).
pub async fn start_on(
    chain: LocalChain,
    rpc_url: &str,
    adjust_config: impl FnOnce(&mut Config),
    adjust: impl FnOnce(&mut x402_evm::EvmSettings),
) -> Harness {
    let mut config: Config =
        x402_facilitator::dev::facilitator_config(&chain, DEV_ACCOUNTS[0].1, 0).expect("config");
    adjust_config(&mut config);
    let ledger = x402_facilitator::open_ledger(&config)
        .await
        .expect("ledger opens");
    let network = &config.networks[0];
    let mut settings = x402_evm::EvmSettings {
        chain_id: network.chain_id.clone(),
        rpc_urls: vec![rpc_url.to_owned()],
        signer_keys: vec![DEV_ACCOUNTS[0].1.to_owned()],
        options: x402_evm::EvmOptions::default(),
        receipt_timeout: network.receipt_timeout,
        assets: Vec::new(),
        min_signer_balance: network.min_signer_balance,
        rpc_timeout: network.rpc_timeout,
        ledger: ledger.clone(),
        nonce_mode: x402_evm::NonceFetchMode::Cached,
    };
    adjust(&mut settings);
    let evm = Arc::new(x402_evm::EvmNetwork::new(settings).expect("network"));
    let mut served = Served::new();
    let schemes = network
        .schemes
        .iter()
        .map(|name| evm.scheme(name).expect("a scheme the EVM crate serves"))
        .collect();
    served.add(evm.clone() as Arc<dyn Chain>, schemes);
    let state = AppState::new(&config, served, ledger);
    let app_state = state.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = x402_facilitator::serve_on(listener, state, &config, async {
            let _ = rx.await;
        })
        .await;
    });
    Harness {
        chain,
        url,
        evm,
        state: app_state,
        http: reqwest::Client::new(),
        shutdown: Some(tx),
    }
}

/// The repository root, read when the test runs: cargo sets `CARGO_MANIFEST_DIR` for the
/// test process, while the compile-time value can name another checkout whose build was
/// reused through a shared target directory.
pub fn repo_dir() -> std::path::PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    std::path::PathBuf::from(manifest).join("../..")
}

/// Runs a conformance script (`program script <facilitator url> <rpc url>`, from tests/js)
/// against the harness and fails with the script's own output unless every check passed.
#[allow(dead_code)] // not every test binary runs scripts
pub async fn run_script(h: &Harness, program: &str, script: &std::path::Path) {
    run_script_with(h, program, script, &[]).await
}

/// [`run_script`] with arguments after the facilitator's and the chain's URLs.
#[allow(dead_code)]
pub async fn run_script_with(h: &Harness, program: &str, script: &std::path::Path, more: &[&str]) {
    let output = tokio::process::Command::new(program)
        .arg(script)
        .arg(&h.url)
        .arg(&h.chain.rpc_url)
        .args(more)
        .current_dir(repo_dir().join("tests/js"))
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} {} could not start: {e}", script.display()));
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

pub fn v2_requirements(amount: &str) -> Value {
    json!({
        "scheme": "exact", "network": "eip155:84532", "amount": amount,
        "asset": BASE_SEPOLIA_USDC, "payTo": PAY_TO, "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"}
    })
}

pub fn v1_requirements(amount: &str) -> Value {
    json!({
        "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": amount,
        "resource": "http://127.0.0.1/r", "description": "test", "mimeType": "application/json",
        "payTo": PAY_TO, "maxTimeoutSeconds": 60, "asset": BASE_SEPOLIA_USDC,
        "extra": {"name": "USDC", "version": "2"}
    })
}

pub fn v2_body(payload: Value, amount: &str) -> Value {
    let requirements = v2_requirements(amount);
    json!({
        "x402Version": 2,
        "paymentPayload": {"x402Version": 2, "accepted": requirements, "payload": payload},
        "paymentRequirements": requirements
    })
}

pub fn v1_body(payload: Value, amount: &str) -> Value {
    json!({
        "x402Version": 1,
        "paymentPayload": {"x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": payload},
        "paymentRequirements": v1_requirements(amount)
    })
}

impl Harness {
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("json body"))
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("json"))
    }

    pub async fn balance(&self, who: &str) -> u128 {
        self.chain
            .balance_of(BASE_SEPOLIA_USDC, who)
            .await
            .expect("balance")
    }
}

/// POSTs JSON and returns status and body.
pub async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let response = http.post(url).json(body).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

/// GETs and returns status and the JSON answer.
pub async fn get_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

/// Runs `node tests/js/<script> <args>` and returns the last JSON line it printed, failing
/// with its whole output unless it exited 0.
pub async fn node_report(script: &str, args: &[&str]) -> Value {
    let output = tokio::process::Command::new("node")
        .arg(repo_dir().join("tests/js").join(script))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = printed
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("a JSON report");
    serde_json::from_str(line).expect("JSON report")
}

/// GETs and returns status and body text.
pub async fn get_text(http: &reqwest::Client, url: &str) -> (u16, String) {
    let response = http.get(url).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The value of a Prometheus sample whose line starts with `prefix` (name and labels),
/// summed over matching lines; 0 when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name)
                && l[name.len()..].starts_with(['{', ' '])
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `probe` until it returns `Some`, at most `seconds`; the polling interval is
/// short and the condition, not the interval, decides.
pub async fn until<T, F, Fut>(seconds: u64, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// anvil with the test USDC and the payer funded ([`LocalChain::with_funded_payer`]).
pub async fn chain_with_token(args: &[&str]) -> LocalChain {
    LocalChain::with_funded_payer(args)
        .await
        .expect("anvil with the test USDC and a funded payer")
}

pub async fn pending_transactions(chain: &LocalChain) -> u64 {
    let status = chain.rpc("txpool_status", json!([])).await.unwrap();
    let pending = status["pending"].clone();
    match pending {
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap(),
        Value::Number(n) => n.as_u64().unwrap(),
        other => panic!("txpool_status pending: {other}"),
    }
}

/// Empties the dev signer's gas balance (the facilitator can no longer pay gas) and returns
/// what it held, for [`restore_signer_gas`].
pub async fn drain_signer_gas(chain: &LocalChain) -> Value {
    let balance = chain
        .rpc("eth_getBalance", json!([DEV_SIGNER, "latest"]))
        .await
        .unwrap();
    chain
        .rpc("anvil_setBalance", json!([DEV_SIGNER, "0x0"]))
        .await
        .unwrap();
    balance
}

/// Gives the dev signer back the balance [`drain_signer_gas`] took.
pub async fn restore_signer_gas(chain: &LocalChain, balance: Value) {
    chain
        .rpc("anvil_setBalance", json!([DEV_SIGNER, balance]))
        .await
        .unwrap();
}

/// A PostgreSQL database of its own for one test, dropped by [`drop_postgres`].
pub async fn fresh_postgres(tag: &str) -> (String, String) {
    use x402_ledger::sqlx::{self, Connection};
    let admin_url = std::env::var("X402_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!(
        "x402_{tag}_{}_{}",
        std::process::id(),
        now_nanos() % 1_000_000_000
    );
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("PostgreSQL reachable (X402_TEST_POSTGRES_URL)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin_url.rsplit_once('/').expect("URL with a database").0;
    (format!("{base}/{name}"), name)
}

/// Drops a database made by [`fresh_postgres`], closing its connections.
pub async fn drop_postgres(name: &str) {
    use x402_ledger::sqlx::{self, Connection};
    let admin_url = std::env::var("X402_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop database");
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A number the node answered as hex (or a JSON number).
pub fn quantity(value: &Value) -> u64 {
    match value {
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap(),
        Value::Number(n) => n.as_u64().unwrap(),
        other => panic!("not a quantity: {other}"),
    }
}

/// The account nonce of `address` at `block` (`latest` or `pending`).
pub async fn account_nonce(chain: &LocalChain, address: &str, block: &str) -> u64 {
    quantity(
        &chain
            .rpc("eth_getTransactionCount", json!([address, block]))
            .await
            .unwrap(),
    )
}

/// The dev signer's nonce and the payee's token balance at one moment, to check what a run
/// moved afterwards.
pub struct ChainMark {
    nonce: u64,
    payee: u128,
}

impl ChainMark {
    pub async fn take(chain: &LocalChain) -> ChainMark {
        ChainMark {
            nonce: account_nonce(chain, DEV_SIGNER, "latest").await,
            payee: chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap(),
        }
    }

    /// Since the mark, exactly `settlements` transactions from the signer, and the payee
    /// received `value` for each of them.
    pub async fn assert_moved(&self, chain: &LocalChain, settlements: u64, value: u64) {
        assert_eq!(
            account_nonce(chain, DEV_SIGNER, "latest").await - self.nonce,
            settlements,
            "one transaction per settlement, none more"
        );
        assert_eq!(
            chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap() - self.payee,
            u128::from(settlements) * u128::from(value)
        );
    }
}

/// Asserts that every answer is a successful settlement and returns how many there were.
/// On failure the instances' warnings and errors are printed first: the cause is there.
pub fn assert_all_settled(answers: &[Value], instances: &[(&str, &Process)]) -> u64 {
    let failed: Vec<&Value> = answers.iter().filter(|a| a["success"] != true).collect();
    if !failed.is_empty() {
        for (name, process) in instances {
            eprintln!("{name}: {:#?}", process.warnings());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        answers.len(),
        failed.first()
    );
    answers.len() as u64
}

/// `/settle` at the facilitator `url`; the answer's body.
pub async fn settle(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    post_json(http, &format!("{url}/settle"), body).await.1
}

/// A v2 request for a freshly signed payment of `value` from `key` to [`PAY_TO`].
pub fn fresh_body(key: &str, value: u64) -> Value {
    v2_body(
        sign_authorization(key, PAY_TO, value, random_nonce()),
        &value.to_string(),
    )
}

/// Settles one fresh v2 payment of `value` at `settle_url`; a transport failure comes back
/// as `{"client_error": ...}` so load clients keep every outcome.
pub async fn pay_once(http: &reqwest::Client, settle_url: &str, value: u64) -> Value {
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, value, random_nonce()),
        &value.to_string(),
    );
    match http.post(settle_url).json(&body).send().await {
        Ok(r) => r
            .json::<Value>()
            .await
            .unwrap_or_else(|e| json!({"client_error": e.to_string()})),
        Err(e) => json!({"client_error": e.to_string()}),
    }
}
