//! The stack the example is paid on: a real anvil with the test USDC, this project's
//! facilitator on it (in process, the `dev` configuration), and the example API with a few
//! test-only routes, each on a loopback port. Clients run as child processes.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use paid_api::Settings;
use serde_json::Value;
use x402_axum::{Charge, PaymentLayer, Paywall};
use x402_facilitator_client::{ClientOptions, FacilitatorClient};
use x402_protocol::TokenAmount;
use x402_testkit::anvil::{LocalChain, BASE_SEPOLIA_USDC, DEV_ACCOUNTS};

pub const PAYER: &str = DEV_ACCOUNTS[1].0;
pub const PAYER_KEY: &str = DEV_ACCOUNTS[1].1;
pub const PAY_TO: &str = paid_api::DEV_PAY_TO;

pub struct Stack {
    pub chain: LocalChain,
    pub facilitator_url: String,
    pub api_url: String,
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for stop in self.stop.drain(..) {
            let _ = stop.send(());
        }
    }
}

impl Stack {
    /// (payer, payee) balances of the test USDC.
    pub async fn balances(&self) -> (u128, u128) {
        let payer = self.chain.balance_of(BASE_SEPOLIA_USDC, PAYER).await;
        let payee = self.chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await;
        (payer.expect("payer balance"), payee.expect("payee balance"))
    }

    /// The on-chain receipt of `hash`: its status and the test USDC moved by it
    /// (`Transfer` logs: from, to, amount).
    pub async fn transfers_in(&self, hash: &str) -> (bool, Vec<(String, String, u128)>) {
        let receipt = self
            .chain
            .rpc("eth_getTransactionReceipt", serde_json::json!([hash]))
            .await
            .expect("receipt");
        let ok = receipt["status"] == "0x1";
        let transfer_topic = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
        let mut moved = Vec::new();
        for log in receipt["logs"].as_array().into_iter().flatten() {
            let topics: Vec<&str> = log["topics"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let from_token = log["address"]
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case(BASE_SEPOLIA_USDC));
            if from_token && topics.len() == 3 && topics[0] == transfer_topic {
                let address = |t: &str| format!("0x{}", &t[26..]);
                let data = log["data"].as_str().expect("data").trim_start_matches("0x");
                let amount = u128::from_str_radix(data, 16).expect("amount");
                moved.push((address(topics[1]), address(topics[2]), amount));
            }
        }
        (ok, moved)
    }
}

/// Test-only routes next to the example's: a handler that fails, one that charges more
/// than the price, one that charges another amount on an exact price.
fn test_routes(facilitator: &FacilitatorClient, settings: &Settings) -> Router {
    let paywall = |amount| Paywall::new(settings.price(amount), "a test route");
    let charge = |amount: u64| {
        move || async move {
            let mut response = axum::response::IntoResponse::into_response("content");
            response
                .extensions_mut()
                .insert(Charge(TokenAmount::from(amount)));
            response
        }
    };
    Router::new()
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "the handler failed") })
                .layer(PaymentLayer::new(facilitator.clone(), paywall(1_000))),
        )
        .route(
            "/overcharge",
            get(charge(1_001)).layer(PaymentLayer::new(facilitator.clone(), paywall(1_000))),
        )
        .route(
            "/undercharge",
            get(charge(10)).layer(PaymentLayer::new(facilitator.clone(), paywall(1_000))),
        )
}

/// Serves `app` on a loopback port until the returned sender is dropped or fired.
pub async fn serve(app: Router) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (url, tx)
}

/// The example API (and the test routes) checked by the facilitator at `facilitator_url`.
pub fn api(facilitator_url: &str) -> Router {
    api_with(facilitator_url, ClientOptions::default())
}

/// [`api`] with the facilitator client's options (the retry pause shortened for tests).
pub fn api_with(facilitator_url: &str, options: ClientOptions) -> Router {
    let options = ClientOptions {
        timeout: Duration::from_secs(5),
        retry_delay: Duration::from_millis(50),
        ..options
    };
    let facilitator = FacilitatorClient::new(facilitator_url, options).expect("client");
    let settings = Settings::dev();
    paid_api::app(facilitator.clone(), &settings).merge(test_routes(&facilitator, &settings))
}

/// anvil, the token with a funded payer, the facilitator, and the API.
pub async fn start() -> Stack {
    start_with(&[], |_| {}, ClientOptions::default()).await
}

/// Like [`start`], with anvil arguments, a last word on the facilitator's configuration,
/// and the API's facilitator client options.
pub async fn start_with(
    anvil_args: &[&str],
    adjust: impl FnOnce(&mut x402_facilitator::Config),
    options: ClientOptions,
) -> Stack {
    let chain = LocalChain::with_funded_payer(anvil_args)
        .await
        .expect("anvil with the test USDC and a funded payer");
    let mut config =
        x402_facilitator::dev::facilitator_config(&chain, DEV_ACCOUNTS[0].1, 0).expect("config");
    adjust(&mut config);
    let state = x402_facilitator::build_state(&config)
        .await
        .expect("facilitator state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let facilitator_url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop_facilitator, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = x402_facilitator::serve_on(listener, state, &config, async {
            let _ = stopped.await;
        })
        .await;
    });
    let (api_url, stop_api) = serve(api_with(&facilitator_url, options)).await;
    Stack {
        chain,
        facilitator_url,
        api_url,
        stop: vec![stop_facilitator, stop_api],
    }
}

/// The repository root (the client scripts live under `tests/`).
pub fn repo_dir() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    PathBuf::from(manifest).join("../..")
}

/// Runs a client script and reads the JSON line it prints.
pub async fn client(program: &str, args: &[&str]) -> Value {
    let output = tokio::process::Command::new(program)
        .args(args)
        .current_dir(repo_dir())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{program} printed {stdout}: {e}"))
}

/// The official JavaScript clients (`tests/js/pay-api.mjs`).
pub async fn node(mode: &str, url: &str) -> Value {
    client("node", &["tests/js/pay-api.mjs", mode, url]).await
}

/// The official Python client (`tests/python/pay_api.py`), in the virtualenv
/// `scripts/test.sh` prepares (`X402_PYTHON`).
pub async fn python(url: &str) -> Value {
    let python = std::env::var("X402_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    client(&python, &["tests/python/pay_api.py", url]).await
}

/// The example's own binary (`paid-api`, as `scripts/example.sh` runs it) in front of the
/// stack's facilitator, on a free port; killed when the handle drops.
pub struct ExampleBinary {
    pub url: String,
    _child: tokio::process::Child,
}

pub async fn example_binary(stack: &Stack) -> ExampleBinary {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_paid-api"))
        .env("FACILITATOR_URL", &stack.facilitator_url)
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("paid-api starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("paid API on ") {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("paid-api prints where it listens");
    // Keep reading so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    ExampleBinary { url, _child: child }
}

/// A payment header for the route at `url`, signed by an official client from the route's
/// 402: `header` (v2, `@x402/core`) or `header-v1` (the v1 `x402` package).
pub async fn official_header(mode: &str, url: &str) -> String {
    let out = node(mode, url).await;
    out["header"].as_str().expect("a header").to_owned()
}

/// `GET url` with the v2 payment header.
pub async fn pay(url: &str, header: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("PAYMENT-SIGNATURE", header)
        .send()
        .await
        .expect("the API answers")
}
