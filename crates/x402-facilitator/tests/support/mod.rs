//! Shared setup for the integration tests: a real anvil, our test token, and the real
//! facilitator server on a random loopback port.

#![allow(dead_code)]

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use x402_evm::alloy::primitives::{Address, B256, U256};
use x402_evm::alloy::signers::local::PrivateKeySigner;
use x402_evm::alloy::signers::SignerSync;
use x402_evm::alloy::sol_types::{eip712_domain, SolStruct};
use x402_evm::exact::TransferWithAuthorization;
use x402_facilitator::app::HandlerMap;
use x402_facilitator::config::{Config, VersionSupport};
use x402_facilitator::dev::{LocalChain, BASE_SEPOLIA_USDC, DEV_ACCOUNTS};
use x402_facilitator::AppState;
use x402_protocol::{ChainId, SchemeHandler};

pub const PAYER: &str = DEV_ACCOUNTS[1].0;
pub const PAYER_KEY: &str = DEV_ACCOUNTS[1].1;
pub const PAY_TO: &str = DEV_ACCOUNTS[2].0;
pub const DEV_SIGNER: &str = DEV_ACCOUNTS[0].0;
pub const DEV_ACCOUNTS_3: &str = DEV_ACCOUNTS[3].0;
pub const DEV_ACCOUNTS_3_KEY: &str = DEV_ACCOUNTS[3].1;

pub struct Harness {
    pub chain: LocalChain,
    pub url: String,
    pub evm: Arc<x402_evm::ExactEvm>,
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
    let chain = LocalChain::start(84532, &[]).await.expect("anvil starts");
    chain
        .install_token(BASE_SEPOLIA_USDC)
        .await
        .expect("token installed");
    chain
        .mint(BASE_SEPOLIA_USDC, PAYER, 1_000_000_000)
        .await
        .expect("minted");
    let mut config: Config = chain.facilitator_config(DEV_ACCOUNTS[0].1, 0);
    config.flags.x402_version_support = versions;
    let network = &config.networks[0];
    let mut settings = x402_evm::EvmSettings {
        chain_id: network.chain_id.clone(),
        rpc_urls: vec![chain.rpc_url.clone()],
        signer_keys: vec![DEV_ACCOUNTS[0].1.to_owned()],
        max_gas_per_settlement: network.max_gas_per_settlement,
        max_gas_per_deployment: network.max_gas_per_deployment,
        receipt_timeout: network.receipt_timeout,
        assets: Vec::new(),
        erc6492_factories: Vec::new(),
        min_signer_balance: x402_evm::alloy::primitives::U256::from(network.min_signer_balance),
        expected_block_interval: network.expected_block_interval,
    };
    adjust(&mut settings);
    let evm = Arc::new(x402_evm::ExactEvm::new(settings).expect("handler"));
    let mut handlers = HandlerMap::new();
    handlers.insert(
        ("exact".to_owned(), ChainId::eip155(84532)),
        evm.clone() as Arc<dyn SchemeHandler>,
    );
    let state = AppState::new(&config, handlers);
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
        http: reqwest::Client::new(),
        shutdown: Some(tx),
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs an EIP-3009 authorization for the test token, like an official client would.
pub fn sign_authorization(key: &str, to: &str, value: u64, nonce: B256) -> Value {
    let signer: PrivateKeySigner = key.parse().unwrap();
    sign_as(key, &signer.address().to_checksum(None), to, value, nonce)
}

/// Signs with `key` an authorization whose `from` is a contract wallet.
pub fn sign_for_wallet(key: &str, wallet: &str, to: &str, value: u64) -> Value {
    sign_as(key, wallet, to, value, random_nonce())
}

fn sign_as(key: &str, from: &str, to: &str, value: u64, nonce: B256) -> Value {
    let signer: PrivateKeySigner = key.parse().unwrap();
    let from_address: Address = from.parse().unwrap();
    let asset: Address = BASE_SEPOLIA_USDC.parse().unwrap();
    let domain = eip712_domain! {
        name: "USDC",
        version: "2",
        chain_id: 84532,
        verifying_contract: asset,
    };
    let message = TransferWithAuthorization {
        from: from_address,
        to: to.parse().unwrap(),
        value: U256::from(value),
        validAfter: U256::from(now() - 600),
        validBefore: U256::from(now() + 60),
        nonce,
    };
    let signature = signer
        .sign_hash_sync(&message.eip712_signing_hash(&domain))
        .unwrap();
    json!({
        "signature": format!("0x{}", hex_of(&signature.as_bytes())),
        "authorization": {
            "from": from_address.to_checksum(None),
            "to": to,
            "value": value.to_string(),
            "validAfter": (now() - 600).to_string(),
            "validBefore": (now() + 60).to_string(),
            "nonce": nonce.to_string(),
        }
    })
}

pub fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh authorization nonce: unique per process and call.
pub fn random_nonce() -> B256 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    x402_evm::alloy::primitives::keccak256(format!("{}-{nanos}-{n}", std::process::id()))
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
