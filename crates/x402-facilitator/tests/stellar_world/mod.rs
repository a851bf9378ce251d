//! The Stellar tests' world: the local node stand-in (the real Soroban host) with test USDC
//! and EURC asset contracts, a funded payer, a merchant and a stranger with trustlines, the
//! facilitator's fee-paying account, and the facilitator serving `stellar:testnet`.

use serde_json::{json, Value};
use x402_stellarnode::{Genesis, GenesisAccount, StellarNode};

use super::fault_proxy::FaultProxy;
use super::scratch::{serve_network, TempDir};

pub const NETWORK: &str = "stellar:testnet";
pub const PAYER_USDC: i64 = 50_000_000;
const XLM: i64 = 10_000_000;

/// A deterministic key: its `G…` address and `S…` secret seed.
pub struct Key {
    pub address: String,
    pub secret: String,
}

pub fn key(name: &str) -> Key {
    use sha2::Digest;
    let seed: [u8; 32] = sha2::Sha256::digest(format!("x402 stellar test {name}")).into();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    Key {
        address: format!("{}", stellar_strkey::ed25519::PublicKey(public)),
        secret: stellar_strkey::Unredacted(&stellar_strkey::ed25519::PrivateKey(seed))
            .to_string()
            .as_str()
            .to_owned(),
    }
}

fn account(key: &Key, xlm: i64, balances: &[(&str, i64)]) -> GenesisAccount {
    GenesisAccount {
        public_key: key.address.clone(),
        xlm: xlm * XLM,
        balances: balances
            .iter()
            .map(|(c, b)| ((*c).to_owned(), *b))
            .collect(),
    }
}

pub struct World {
    pub node: StellarNode,
    pub url: String,
    pub http: reqwest::Client,
    pub proxy: Option<FaultProxy>,
    pub usdc: String,
    pub eurc: String,
    pub payer: Key,
    pub merchant: Key,
    pub stranger: Key,
    pub other: Key,
    pub fee_payer: Key,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: TempDir,
}

/// A node stand-in and a facilitator serving it (through a [`FaultProxy`] when `proxied`),
/// with `section` added to the network's configuration.
pub async fn world(proxied: bool, section: &str) -> World {
    let (payer, merchant, stranger, other, fee_payer) = (
        key("payer"),
        key("merchant"),
        key("stranger"),
        key("other"),
        key("fee payer"),
    );
    let genesis = Genesis {
        passphrase: x402_stellarnode::TESTNET_PASSPHRASE.into(),
        ledger_interval_ms: 1_000,
        assets: vec!["USDC".into(), "EURC".into()],
        accounts: vec![
            account(&payer, 100, &[("USDC", PAYER_USDC), ("EURC", PAYER_USDC)]),
            account(&merchant, 10, &[("USDC", 0), ("EURC", 0)]),
            account(&stranger, 10, &[("USDC", 0)]),
            account(&other, 10, &[("USDC", PAYER_USDC)]),
            account(&fee_payer, 1_000, &[("USDC", PAYER_USDC)]),
        ],
    };
    let node = StellarNode::start(&genesis).await.expect("node starts");
    let proxy = match proxied {
        true => Some(FaultProxy::start(&node.url).await),
        false => None,
    };
    let rpc_url = proxy.as_ref().map_or(node.url.clone(), |p| p.url.clone());
    let usdc = node.contract("USDC").expect("USDC deployed");
    let eurc = node.contract("EURC").expect("EURC deployed");
    let network = format!(
        "[networks.\"{NETWORK}\"]\nrpc_urls = [\"{rpc_url}\"]\nsigner_keys = [\"{}\"]\nassets = [\"{usdc}\"]\n{section}",
        fee_payer.secret
    );
    let (url, shutdown, scratch) = serve_network("stellar", &network).await;
    World {
        node,
        url,
        http: reqwest::Client::new(),
        proxy,
        usdc,
        eurc,
        payer,
        merchant,
        stranger,
        other,
        fee_payer,
        _shutdown: shutdown,
        _dir: scratch,
    }
}

impl World {
    /// What the JavaScript conformance run needs.
    pub fn description(&self) -> Value {
        json!({
            "facilitator": self.url, "rpc": self.node.url, "network": NETWORK,
            "usdc": self.usdc, "eurc": self.eurc, "payTo": self.merchant.address,
            "stranger": self.stranger.address,
            "other": {"address": self.other.address, "secret": self.other.secret},
            "payer": {"address": self.payer.address, "secret": self.payer.secret},
            "facilitatorSecret": self.fee_payer.secret,
        })
    }

    /// `count` payments of `amount` USDC to the merchant, built and signed by the official
    /// client; each is `{payload, requirements}`.
    pub async fn payments(&self, payer: &Key, amount: i64, count: usize) -> Vec<Value> {
        let ask = json!({"rpc": self.node.url, "network": NETWORK, "secret": payer.secret,
            "requirements": self.requirements(amount), "count": count});
        let (passed, stdout) = super::scratch::run_stellar_js("pay.mjs", &[&ask.to_string()]).await;
        assert!(passed, "the official client could not pay:\n{stdout}");
        let line = stdout.lines().last().expect("a line");
        serde_json::from_str::<Vec<Value>>(line).expect("payloads")
    }

    /// The requirements of a payment of `amount` USDC to the merchant.
    pub fn requirements(&self, amount: i64) -> Value {
        json!({"scheme": "exact", "network": NETWORK, "amount": amount.to_string(),
            "asset": self.usdc, "payTo": self.merchant.address, "maxTimeoutSeconds": 300,
            "extra": {"areFeesSponsored": true}})
    }

    /// A holder's USDC.
    pub fn usdc_of(&self, holder: &Key) -> i64 {
        self.node.balance("USDC", &holder.address).unwrap_or(-1)
    }

    pub async fn get(&self, path: &str) -> Value {
        super::scratch::get_json(&self.http, &format!("{}{path}", self.url)).await
    }

    pub async fn post(&self, path: &str, payload: &Value, requirements: &Value) -> Value {
        let url = format!("{}{path}", self.url);
        super::scratch::post_payment(&self.http, &url, payload, requirements).await
    }
}
