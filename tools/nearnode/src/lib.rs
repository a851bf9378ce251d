//! A local NEAR JSON-RPC node for the facilitator's tests: a **stand-in**, since no registry
//! reachable here ships `neard` or a NEAR sandbox, and nearcore's runtime is not published.
//!
//! What is nearcore's own code here: the types and their Borsh encoding
//! (`near-primitives`), transaction and NEP-461 delegate hashing, and every signature check
//! (`near-crypto`). What is ours: the chain (one block per interval, the final head two
//! behind), the transaction and delegate-action rules written after nearcore's runtime
//! (signature, block hash validity, nonce above the key's and below height × 10⁶, access-key
//! permission, `max_block_height`, sender = transaction receiver), and the NEP-141 token
//! ([`token`]), which is a ledger of its own rather than a contract in a VM. Not modelled:
//! consensus, sharding, receipts spread over blocks, the fee table (gas has one fixed
//! price and a flat cost per transaction), refunds, and contracts other than the token.

#![forbid(unsafe_code)]

pub mod chain;
pub mod rpc;
pub mod token;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use near_crypto::PublicKey;
use near_primitives::types::AccountId;
use serde::Deserialize;
use serde_json::Value;

use chain::{AccessKey, Account, Chain, Permission};
use token::Token;

/// One access key of a genesis account.
#[derive(Debug, Clone, Deserialize)]
pub struct GenesisKey {
    /// `ed25519:…` or `secp256k1:…`.
    pub public_key: String,
    /// Empty for a full-access key; otherwise a function-call key for this receiver.
    #[serde(default)]
    pub function_call_receiver: Option<String>,
    /// The key's nonce at genesis.
    #[serde(default)]
    pub nonce: u64,
}

/// One genesis account.
#[derive(Debug, Clone, Deserialize)]
pub struct GenesisAccount {
    pub account_id: String,
    /// yoctoNEAR, decimal.
    pub amount: String,
    #[serde(default)]
    pub keys: Vec<GenesisKey>,
}

/// One genesis token contract (its account is created too).
#[derive(Debug, Clone, Deserialize)]
pub struct GenesisToken {
    pub account_id: String,
    /// Balances in the token's smallest unit, decimal; every holder is registered.
    #[serde(default)]
    pub balances: BTreeMap<String, String>,
    /// Accounts registered (NEP-145) with no balance.
    #[serde(default)]
    pub registered: Vec<String>,
}

/// What the node starts with.
#[derive(Debug, Clone, Deserialize)]
pub struct Genesis {
    /// `testnet`, `mainnet` or any other id.
    pub chain_id: String,
    /// Milliseconds between blocks (NEAR's is about 1000).
    #[serde(default = "default_interval")]
    pub block_interval_ms: u64,
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    #[serde(default)]
    pub tokens: Vec<GenesisToken>,
}

fn default_interval() -> u64 {
    1000
}

/// Why a genesis was refused.
#[derive(Debug)]
pub struct GenesisError(pub String);

impl std::fmt::Display for GenesisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn account_id(text: &str) -> Result<AccountId, GenesisError> {
    text.parse()
        .map_err(|_| GenesisError(format!("{text:?} is not a NEAR account id")))
}

fn amount(text: &str) -> Result<u128, GenesisError> {
    text.parse()
        .map_err(|_| GenesisError(format!("{text:?} is not a decimal amount")))
}

impl Genesis {
    fn build(&self) -> Result<Chain, GenesisError> {
        let mut accounts = BTreeMap::new();
        for account in &self.accounts {
            let mut keys = BTreeMap::new();
            for key in &account.keys {
                let public_key: PublicKey = key
                    .public_key
                    .parse()
                    .map_err(|_| GenesisError(format!("{:?} is not a key", key.public_key)))?;
                let permission = match &key.function_call_receiver {
                    None => Permission::FullAccess,
                    Some(receiver) => Permission::FunctionCall {
                        receiver_id: account_id(receiver)?,
                        method_names: Vec::new(),
                    },
                };
                keys.insert(
                    public_key,
                    AccessKey {
                        nonce: key.nonce,
                        permission,
                    },
                );
            }
            let entry = Account {
                amount: amount(&account.amount)?,
                keys,
            };
            accounts.insert(account_id(&account.account_id)?, entry);
        }
        let mut tokens = BTreeMap::new();
        for token in &self.tokens {
            let mut state = Token::default();
            for (holder, balance) in &token.balances {
                let holder = account_id(holder)?;
                state.registered.insert(holder.clone());
                state.balances.insert(holder, amount(balance)?);
            }
            for holder in &token.registered {
                state.registered.insert(account_id(holder)?);
            }
            let id = account_id(&token.account_id)?;
            accounts.entry(id.clone()).or_default();
            tokens.insert(id, state);
        }
        Ok(Chain::new(self.chain_id.clone(), accounts, tokens))
    }
}

/// A running node: its URL, and reads of its state for tests.
pub struct NearNode {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    chain: Arc<Mutex<Chain>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl NearNode {
    /// Starts the node on a free local port; blocks are produced until it is dropped.
    pub async fn start(genesis: &Genesis) -> Result<NearNode, GenesisError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| GenesisError(format!("cannot listen: {e}")))?;
        Self::serve(genesis, listener).await
    }

    /// Starts the node on `listener`.
    pub async fn serve(
        genesis: &Genesis,
        listener: tokio::net::TcpListener,
    ) -> Result<NearNode, GenesisError> {
        let chain = Arc::new(Mutex::new(genesis.build()?));
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| GenesisError(e.to_string()))?
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = chain.clone();
        let interval = Duration::from_millis(genesis.block_interval_ms.max(1));
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let chain = shared.clone();
                async move { axum::Json(answer_waiting(&chain, &body, interval).await) }
            }),
        );
        let producer = chain.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.tick().await;
            tokio::select! {
                _ = async {
                    loop {
                        ticks.tick().await;
                        if let Ok(mut chain) = producer.lock() {
                            chain.produce_block();
                        }
                    }
                } => {}
                _ = stopped => {}
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(NearNode {
            url,
            chain,
            _stop: stop,
        })
    }

    /// `holder`'s balance of `token`.
    pub fn ft_balance(&self, token: &str, holder: &str) -> u128 {
        let (Ok(token), Ok(holder)) = (token.parse::<AccountId>(), holder.parse::<AccountId>())
        else {
            return 0;
        };
        self.with(|c| {
            c.tokens
                .get(&token)
                .and_then(|t| t.balances.get(&holder).copied())
                .unwrap_or(0)
        })
    }

    /// `account`'s NEAR balance in yocto.
    pub fn near_balance(&self, account: &str) -> u128 {
        let Ok(account) = account.parse::<AccountId>() else {
            return 0;
        };
        self.with(|c| c.accounts.get(&account).map_or(0, |a| a.amount))
    }

    /// How many transactions the node accepted.
    pub fn transactions(&self) -> usize {
        self.with(|c| c.txs.len())
    }

    /// The head's height.
    pub fn height(&self) -> u64 {
        self.with(|c| c.height)
    }

    fn with<T>(&self, read: impl FnOnce(&Chain) -> T) -> T {
        match self.chain.lock() {
            Ok(chain) => read(&chain),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }
}

/// Answers `body`; a request that waits for a status level (`wait_until`) is answered
/// once the transaction reached it, or with nearcore's timeout error after 10 s.
async fn answer_waiting(chain: &Arc<Mutex<Chain>>, body: &Value, interval: Duration) -> Value {
    let first = rpc::answer(chain, body);
    let Some((wanted, tx_hash)) = rpc::wait_for(body, &first) else {
        return first;
    };
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let ask = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tx",
        "params": {"tx_hash": tx_hash, "wait_until": "NONE"}});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(interval / 2).await;
        let answer = rpc::answer(chain, &ask);
        if rpc::reached(&answer) >= wanted {
            return answer;
        }
        if tokio::time::Instant::now() >= deadline {
            return rpc::timeout(&id);
        }
    }
}

/// Now as RFC 3339 UTC with nanoseconds, as nearcore writes `latest_block_time`.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}
