//! A local Stellar JSON-RPC node for the facilitator's tests: a **stand-in**, since no
//! registry reachable here ships stellar-core or stellar-rpc (quickstart is Docker-only,
//! stellar-rpc is Go).
//!
//! What is the network's own code here: the Soroban host (`soroban-env-host` 30) applies
//! every `InvokeHostFunction` operation with the footprint and authorization enforced,
//! `soroban-simulation` (the preflight library stellar-rpc runs) answers
//! `simulateTransaction`, the built-in Stellar Asset Contract is the token, and the XDR types
//! and transaction hashing are `stellar-xdr`'s. What is ours: the ledger (one close per
//! interval, every queued transaction applied in order), stellar-core's queue rules for the
//! transactions it applies (source account, sequence number, ed25519 master-key signature,
//! time bounds, fee, one queued transaction per source account) and the JSON-RPC shapes.
//! Not modelled: consensus, surge pricing and fee refunds (the declared resource fee is
//! charged), the network's calibrated cost table and fee rates (flat terms of ours, see
//! [`host::network_config`]), classic operations (accounts and trustlines come from the
//! genesis only), multi-signature accounts, fee-bump envelopes, state archival beyond what
//! the host does itself, ledger history and events retention.

#![forbid(unsafe_code)]

pub mod host;
pub mod ledger;
pub mod rpc;
pub mod submit;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use ledger::{account_id, credit_asset, Ledger};

/// The testnet passphrase, which the official clients insist on.
pub const TESTNET_PASSPHRASE: &str = "Test SDF Network ; September 2015";

/// One genesis account.
#[derive(Debug, Clone, Deserialize)]
pub struct GenesisAccount {
    /// `G…` strkey.
    pub public_key: String,
    /// Native balance in stroops.
    pub xlm: i64,
    /// Asset code → balance in the asset's smallest unit; each becomes an authorized
    /// trustline (a balance of 0 is a trustline with nothing on it).
    #[serde(default)]
    pub balances: BTreeMap<String, i64>,
}

/// What the node starts with.
#[derive(Debug, Clone, Deserialize)]
pub struct Genesis {
    /// The network passphrase (defaults to testnet's).
    #[serde(default = "default_passphrase")]
    pub passphrase: String,
    /// Milliseconds between ledger closes (the network's are about 5000).
    #[serde(default = "default_interval")]
    pub ledger_interval_ms: u64,
    /// Credit assets (codes of up to 4 characters) issued by the node's own issuer, each
    /// with its Stellar Asset Contract deployed.
    #[serde(default)]
    pub assets: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
}

fn default_passphrase() -> String {
    TESTNET_PASSPHRASE.to_string()
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

/// The issuer of the genesis assets: a fixed key (its secret is public; it only issues).
pub fn issuer() -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let seed: [u8; 32] = Sha256::digest(b"x402-stellarnode asset issuer").into();
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
}

fn public_key(text: &str) -> Result<[u8; 32], GenesisError> {
    match stellar_strkey::Strkey::from_string(text) {
        Ok(stellar_strkey::Strkey::PublicKeyEd25519(key)) => Ok(key.0),
        _ => Err(GenesisError(format!("{text:?} is not a G… public key"))),
    }
}

impl Genesis {
    fn build(&self) -> Result<Ledger, GenesisError> {
        let mut ledger = Ledger::new(&self.passphrase);
        let issuer = account_id(issuer());
        ledger.put_account(&issuer, 100_000_000_000, 0);
        for code in &self.assets {
            let asset = credit_asset(code, &issuer).map_err(GenesisError)?;
            let id = ledger
                .deploy_asset_contract(&asset)
                .map_err(|e| GenesisError(format!("cannot deploy the {code} contract: {e}")))?;
            ledger.contracts.push((code.clone(), id));
        }
        for account in &self.accounts {
            let id = account_id(public_key(&account.public_key)?);
            let lines = u32::try_from(account.balances.len()).unwrap_or(u32::MAX);
            ledger.put_account(&id, account.xlm, lines);
            for (code, balance) in &account.balances {
                if !self.assets.contains(code) {
                    return Err(GenesisError(format!(
                        "{code} is not one of the genesis assets"
                    )));
                }
                let asset = credit_asset(code, &issuer).map_err(GenesisError)?;
                ledger.put_trustline(&id, &asset, *balance);
            }
        }
        Ok(ledger)
    }
}

/// A running node: its URL, and reads of its state for tests.
pub struct StellarNode {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    ledger: Arc<Mutex<Ledger>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl StellarNode {
    /// Starts the node on a free local port; ledgers close until it is dropped.
    pub async fn start(genesis: &Genesis) -> Result<StellarNode, GenesisError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| GenesisError(format!("cannot listen: {e}")))?;
        Self::serve(genesis, listener).await
    }

    /// Starts the node on `listener`.
    pub async fn serve(
        genesis: &Genesis,
        listener: tokio::net::TcpListener,
    ) -> Result<StellarNode, GenesisError> {
        let ledger = Arc::new(Mutex::new(genesis.build()?));
        let address = listener
            .local_addr()
            .map_err(|e| GenesisError(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = ledger.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let ledger = shared.clone();
                async move {
                    let answer = tokio::task::spawn_blocking(move || match ledger.lock() {
                        Ok(mut ledger) => rpc::answer(&mut ledger, &body),
                        Err(poisoned) => rpc::answer(&mut poisoned.into_inner(), &body),
                    })
                    .await
                    .unwrap_or(Value::Null);
                    axum::Json(answer)
                }
            }),
        );
        let closer = ledger.clone();
        let interval = Duration::from_millis(genesis.ledger_interval_ms.max(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.tick().await;
            tokio::select! {
                _ = async {
                    loop {
                        ticks.tick().await;
                        let closer = closer.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            if let Ok(mut ledger) = closer.lock() {
                                submit::close(&mut ledger);
                            }
                        })
                        .await;
                    }
                } => {}
                _ = stopped => {}
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StellarNode {
            url: format!("http://{address}"),
            ledger,
            _stop: stop,
        })
    }

    /// The `C…` contract id of a genesis asset.
    pub fn contract(&self, code: &str) -> Option<String> {
        let id = self.with(|l| l.contract(code))?;
        Some(format!("{}", stellar_strkey::Contract(id)))
    }

    /// `holder`'s (`G…`) balance of the genesis asset `code`; `None` without a trustline.
    pub fn balance(&self, code: &str, holder: &str) -> Option<i64> {
        let key = public_key(holder).ok()?;
        let asset = credit_asset(code, &account_id(issuer())).ok()?;
        self.with(|l| l.trustline_balance(&account_id(key), &asset))
    }

    /// `account`'s native balance in stroops.
    pub fn xlm(&self, account: &str) -> Option<i64> {
        let key = public_key(account).ok()?;
        self.with(|l| l.account(&account_id(key)).map(|a| a.balance))
    }

    /// `account`'s sequence number.
    pub fn sequence_number(&self, account: &str) -> Option<i64> {
        let key = public_key(account).ok()?;
        self.with(|l| l.account(&account_id(key)).map(|a| a.seq_num.0))
    }

    /// How many transactions were applied (successful or failed).
    pub fn applied(&self) -> usize {
        self.with(|l| l.applied.len())
    }

    /// Closes a ledger now, whatever the interval (tests that decide when queued
    /// transactions apply).
    pub fn close_ledger(&self) {
        match self.ledger.lock() {
            Ok(mut ledger) => submit::close(&mut ledger),
            Err(poisoned) => submit::close(&mut poisoned.into_inner()),
        }
    }

    /// The latest closed ledger.
    pub fn sequence(&self) -> u32 {
        self.with(|l| l.sequence)
    }

    fn with<T>(&self, read: impl FnOnce(&Ledger) -> T) -> T {
        match self.ledger.lock() {
            Ok(ledger) => read(&ledger),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }
}
