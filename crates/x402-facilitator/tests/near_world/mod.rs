//! The NEAR tests' world: the local node stand-in with a test USDC token, a payer with a
//! full-access key, one whose only key is a function-call key, one without enough tokens,
//! a registered merchant and an unregistered stranger, and the facilitator serving
//! `near:testnet` with one relayer.

use std::collections::BTreeMap;

use near_crypto::{InMemorySigner, KeyType, SecretKey};
use near_primitives::action::delegate::{DelegateAction, NonDelegateAction, SignedDelegateAction};
use near_primitives::action::{Action, FunctionCallAction, TransferAction};
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{AccountId, Balance, Gas};
use serde_json::{json, Value};
use x402_nearnode::{Genesis, GenesisAccount, GenesisKey, GenesisToken, NearNode};

use super::fault_proxy::FaultProxy;
use super::scratch::{serve_network, TempDir};

pub const NETWORK: &str = "near:testnet";
pub const TOKEN: &str = "usdc.test";
pub const OTHER_TOKEN: &str = "other-usdc.test";
pub const PAYER: &str = "alice.test";
pub const MERCHANT: &str = "merchant.test";
pub const PAYER_TOKENS: u128 = 10_000_000;
const ONE_NEAR: u128 = 1_000_000_000_000_000_000_000_000;

pub struct World {
    pub node: NearNode,
    pub url: String,
    pub http: reqwest::Client,
    pub proxy: Option<FaultProxy>,
    relayer: String,
    relayer_key: SecretKey,
    payer_key: SecretKey,
    keys: BTreeMap<&'static str, SecretKey>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: TempDir,
}

fn key(seed: &str) -> SecretKey {
    SecretKey::from_seed(KeyType::ED25519, seed)
}

fn account(id: &str, near: u128, keys: Vec<GenesisKey>) -> GenesisAccount {
    GenesisAccount {
        account_id: id.into(),
        amount: (near * ONE_NEAR).to_string(),
        keys,
    }
}

fn full(key: &SecretKey) -> GenesisKey {
    GenesisKey {
        public_key: key.public_key().to_string(),
        function_call_receiver: None,
        nonce: 0,
    }
}

/// A node stand-in and a facilitator serving it; through a [`FaultProxy`] when `relayed`.
pub async fn world(relayed: bool, receipt_timeout_ms: u64) -> World {
    world_with(relayed, receipt_timeout_ms, true).await
}

/// [`world`], saying `local_stand_in = false` when not `stand_in` (the node's chain id is
/// `x402-local`, not `testnet`).
pub async fn world_with(relayed: bool, receipt_timeout_ms: u64, stand_in: bool) -> World {
    let relayer_key = key("relayer");
    let relayer = x402_near::implicit_account(&relayer_key.public_key())
        .expect("an ed25519 key")
        .to_string();
    let keys: BTreeMap<&'static str, SecretKey> = [
        ("payer", key("alice")),
        ("poor", key("poor")),
        ("fc", key("bob")),
        ("other", key("mallory")),
    ]
    .into_iter()
    .collect();
    let mut fc_key = full(&keys["fc"]);
    fc_key.function_call_receiver = Some(TOKEN.into());
    let genesis = Genesis {
        chain_id: "x402-local".into(),
        block_interval_ms: 200,
        accounts: vec![
            account(&relayer, 100, vec![full(&relayer_key)]),
            account(PAYER, 10, vec![full(&keys["payer"])]),
            account("poor.test", 10, vec![full(&keys["poor"])]),
            account("bob.test", 10, vec![fc_key]),
            account(MERCHANT, 1, vec![]),
            account("stranger.test", 1, vec![]),
        ],
        tokens: vec![
            GenesisToken {
                account_id: TOKEN.into(),
                balances: [
                    (PAYER, PAYER_TOKENS),
                    ("bob.test", PAYER_TOKENS),
                    ("poor.test", 1_000),
                ]
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_string()))
                .collect(),
                registered: vec![MERCHANT.into()],
            },
            GenesisToken {
                account_id: OTHER_TOKEN.into(),
                balances: [(PAYER.to_owned(), PAYER_TOKENS.to_string())]
                    .into_iter()
                    .collect(),
                registered: vec![MERCHANT.into()],
            },
        ],
    };
    let node = NearNode::start(&genesis).await.expect("node starts");
    let proxy = match relayed {
        true => Some(FaultProxy::start(&node.url).await),
        false => None,
    };
    let rpc_url = proxy.as_ref().map_or(node.url.clone(), |p| p.url.clone());
    let section = format!(
        "[networks.\"{NETWORK}\"]\nrpc_urls = [\"{rpc_url}\"]\nsigner_keys = [\"{relayer_key}\"]\nlocal_stand_in = {stand_in}\nreceipt_timeout_ms = {receipt_timeout_ms}\nassets = [\"{TOKEN}\"]\n"
    );
    let (url, shutdown, scratch) = serve_network("near", &section).await;
    World {
        node,
        url,
        http: reqwest::Client::new(),
        proxy,
        relayer,
        relayer_key,
        payer_key: keys["payer"].clone(),
        keys,
        _shutdown: shutdown,
        _dir: scratch,
    }
}

impl World {
    /// What the JavaScript conformance run needs.
    pub fn description(&self) -> Value {
        let who =
            |account: &str, name: &str| json!({"account": account, "secret": self.secret(name)});
        json!({
            "facilitator": self.url, "rpc": self.node.url, "network": NETWORK,
            "token": TOKEN, "otherToken": OTHER_TOKEN, "payTo": MERCHANT,
            "unregistered": "stranger.test", "relayer": self.relayer,
            "payer": who(PAYER, "payer"), "poor": who("poor.test", "poor"),
            "fcKey": who("bob.test", "fc"), "otherSecret": self.keys["other"].to_string(),
        })
    }

    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("answers");
        response.text().await.expect("text")
    }

    pub async fn get(&self, path: &str) -> Value {
        super::scratch::get_json(&self.http, &format!("{}{path}", self.url)).await
    }

    pub async fn post(&self, path: &str, payload: &Value, requirements: &Value) -> Value {
        let url = format!("{}{path}", self.url);
        super::scratch::post_payment(&self.http, &url, payload, requirements).await
    }

    /// One JSON-RPC call to the node.
    pub async fn node_call(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .http
            .post(&self.node.url)
            .json(&body)
            .send()
            .await
            .expect("node answers");
        response.json().await.expect("json")
    }

    /// A transaction of the relayer's own, at `nonce`, sent straight to the node: it moves
    /// the relayer key's nonce past whatever the facilitator signed below it.
    pub async fn relayer_transaction(&self, nonce: u64) {
        let head = self
            .node_call("block", json!({"finality": "optimistic"}))
            .await;
        let block_hash = head["result"]["header"]["hash"]
            .as_str()
            .expect("head")
            .parse()
            .expect("hash");
        let relayer: AccountId = self.relayer.parse().expect("account");
        let tx = Transaction::V0(TransactionV0 {
            signer_id: relayer,
            public_key: self.relayer_key.public_key(),
            nonce,
            receiver_id: MERCHANT.parse().expect("account"),
            block_hash,
            actions: vec![Action::Transfer(TransferAction {
                deposit: Balance::from_yoctonear(1),
            })],
        });
        let (hash, _) = tx.get_hash_and_size();
        let signed = SignedTransaction::new(self.relayer_key.sign(hash.as_ref()), tx);
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .encode(borsh::to_vec(&signed).expect("borsh"));
        let sent = self
            .node_call(
                "send_tx",
                json!({"signed_tx_base64": raw, "wait_until": "FINAL"}),
            )
            .await;
        assert!(sent.get("result").is_some(), "{sent}");
    }

    /// The secret key of one of the world's keys, as near-cli writes it.
    pub fn secret(&self, name: &str) -> String {
        self.keys[name].to_string()
    }

    /// The request parts of a payment of `amount` to the merchant carrying `encoded`.
    pub fn payment_of(&self, encoded: &str, amount: u128) -> (Value, Value) {
        let requirements = json!({"scheme": "exact", "network": NETWORK, "amount": amount.to_string(),
            "asset": TOKEN, "payTo": MERCHANT, "maxTimeoutSeconds": 300});
        let payload = json!({"x402Version": 2,
            "resource": {"url": "http://127.0.0.1/near", "description": "near", "mimeType": "application/json"},
            "accepted": requirements, "payload": {"signedDelegateAction": encoded}});
        (payload, requirements)
    }

    /// A payment of `amount` to the merchant, signed with nearcore's own signer at the
    /// node's head and the payer's next nonce.
    pub async fn payment(&self, amount: u128) -> (Value, Value) {
        let height = self.node.height();
        let action = Action::FunctionCall(Box::new(FunctionCallAction {
            method_name: "ft_transfer".into(),
            args: serde_json::to_vec(
                &json!({"receiver_id": MERCHANT, "amount": amount.to_string()}),
            )
            .expect("json"),
            gas: Gas::from_gas(10_000_000_000_000),
            deposit: Balance::from_yoctonear(1),
        }));
        let sender: AccountId = PAYER.parse().expect("account");
        let delegate = DelegateAction {
            sender_id: sender.clone(),
            receiver_id: TOKEN.parse().expect("account"),
            actions: vec![NonDelegateAction::try_from(action).expect("not a delegate")],
            nonce: 1,
            max_block_height: height + 200,
            public_key: self.payer_key.public_key(),
        };
        let signer = InMemorySigner::from_secret_key(sender, self.payer_key.clone());
        let signed = SignedDelegateAction::sign(&signer, delegate);
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(borsh::to_vec(&signed).expect("borsh"));
        self.payment_of(&encoded, amount)
    }
}
