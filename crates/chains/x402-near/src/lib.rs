//! NEAR for the x402 facilitator: one [`NearNetwork`] per network (its node, relayer keys,
//! health and reconciliation) and the `exact` scheme on it (`specs/schemes/exact/
//! scheme_exact_near.md`, x402 v2 only).
//!
//! A payment is a NEP-366 `SignedDelegateAction` holding one NEP-141 `ft_transfer`,
//! decoded and verified with nearcore's own crates (`near-primitives`, `near-crypto`).
//! Verify runs the payload's checks ([`payload`]) and the spec's chain-state preflight
//! (`check.rs`). Settle is the shared engine of `x402-settlement`: the relayer transaction
//! wrapping the delegate action is signed at a ledger-allocated nonce and recorded before
//! it is sent, and succeeds only once the inner `ft_transfer` receipt succeeded.

#![forbid(unsafe_code)]

mod chain;
mod check;
pub mod config;
mod exact;
mod health;
pub mod payload;

pub use config::{NearOptions, NearSection};
use exact::ExactNear;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use near_crypto::{KeyType, PublicKey, SecretKey};
use near_primitives::action::delegate::SignedDelegateAction;
use near_primitives::action::Action;
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::AccountId;
use x402_ledger::Ledger;
use x402_protocol::{Chain, ChainId, HealthCheck, ReconcileReport, Scheme};
use x402_settlement::jsonrpc::JsonRpc;
use x402_settlement::Engine;

/// Settings of one NEAR network.
#[derive(Clone)]
pub struct NearSettings {
    /// CAIP-2 id (`near:mainnet`, `near:testnet`).
    pub chain_id: ChainId,
    /// RPC URLs in failover order (secrets).
    pub rpc_urls: Vec<String>,
    /// Relayer keys, `ed25519:<base58>` (secrets).
    pub relayer_keys: Vec<String>,
    /// The network's NEAR options (its configuration section).
    pub options: NearOptions,
    /// How long `/settle` waits for the outcome.
    pub confirm_timeout: Duration,
    /// Limit on one RPC call.
    pub rpc_timeout: Duration,
    /// Deep health fails when a relayer holds fewer yoctoNEAR.
    pub min_relayer_yocto: u128,
    /// The settlement ledger.
    pub ledger: Arc<Ledger>,
}

/// Why the network could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NearSetupError {
    /// Not a `near:` id.
    #[error("{0} is not a NEAR network")]
    NotNear(String),
    /// A key that is not a NEAR secret key (the key is not echoed).
    #[error("relayer key #{0} is not a NEAR secret key (ed25519:<base58> or secp256k1:<base58>)")]
    BadKey(usize),
    /// No implicit account without `relayer_account`: only ed25519 keys have one.
    #[error("relayer key #{0} is not ed25519, so it has no implicit account: set relayer_account")]
    NoImplicitAccount(usize),
    /// No relayer key.
    #[error("no relayer key configured")]
    NoSigner,
    /// `relayer_account` is not an account id.
    #[error("relayer_account is not a NEAR account id")]
    BadRelayerAccount,
    /// Bad RPC configuration.
    #[error("{0}")]
    Rpc(String),
}

/// One relayer key and the account it signs for.
pub(crate) struct Relayer {
    pub(crate) account: AccountId,
    pub(crate) public_key: PublicKey,
    key: SecretKey,
}

impl Relayer {
    /// The ledger's name for this key's nonce sequence: `<account>/<public key>`.
    pub(crate) fn signer(&self) -> String {
        format!("{}/{}", self.account, self.public_key)
    }

    /// The relayer transaction carrying `delegate` at `nonce`, built on `block_hash`.
    pub(crate) fn sign(
        &self,
        delegate: &SignedDelegateAction,
        nonce: u64,
        block_hash: CryptoHash,
    ) -> SignedTransaction {
        let transaction = Transaction::V0(TransactionV0 {
            signer_id: self.account.clone(),
            public_key: self.public_key.clone(),
            nonce,
            receiver_id: delegate.delegate_action.sender_id.clone(),
            block_hash,
            actions: vec![Action::Delegate(Box::new(delegate.clone()))],
        });
        let (hash, _) = transaction.get_hash_and_size();
        SignedTransaction::new(self.key.sign(hash.as_ref()), transaction)
    }
}

/// A relayer key from its text form; `None` when it is not one.
fn secret_key(text: &str) -> Option<SecretKey> {
    let key = SecretKey::from_str(text.trim()).ok()?;
    matches!(key.key_type(), KeyType::ED25519 | KeyType::SECP256K1).then_some(key)
}

/// The implicit account of an ed25519 key, the hex of its public key: the relayer account
/// when `relayer_account` is not set.
pub fn implicit_account(key: &PublicKey) -> Option<AccountId> {
    let PublicKey::ED25519(bytes) = key else {
        return None;
    };
    let hex: String = bytes.0.iter().map(|b| format!("{b:02x}")).collect();
    hex.parse().ok()
}

/// One NEAR network: its node, relayers and settlements.
pub struct NearNetwork {
    engine: Arc<Engine<NearChain>>,
}

/// The schemes this crate serves on a NEAR network.
pub const SCHEMES: &[&str] = &["exact"];

/// Everything of one NEAR network the checks and the engine's chain operations use.
pub(crate) struct NearChain {
    pub(crate) chain_id: ChainId,
    pub(crate) rpc: JsonRpc,
    pub(crate) relayers: Vec<Relayer>,
    pub(crate) options: NearOptions,
    pub(crate) confirm_timeout: Duration,
    pub(crate) min_relayer_yocto: u128,
}

impl NearChain {
    /// The relayer a ledger entry names (`<account>/<public key>`).
    pub(crate) fn relayer_named(&self, signer: &str) -> Option<&Relayer> {
        self.relayers.iter().find(|r| r.signer() == signer)
    }

    /// The accounts the relayer keys sign for, each once, in configuration order.
    pub(crate) fn relayer_accounts(&self) -> Vec<String> {
        let mut accounts: Vec<String> = Vec::new();
        for relayer in &self.relayers {
            let account = relayer.account.to_string();
            if !accounts.contains(&account) {
                accounts.push(account);
            }
        }
        accounts
    }

    /// The relayer for a payment: spread over the keys by the payment's identity, so one
    /// payment always goes to the same key.
    pub(crate) fn relayer_for(&self, payment_key: &str) -> Option<&Relayer> {
        self.relayers.get(x402_settlement::signer_index(
            payment_key,
            self.relayers.len(),
        ))
    }
}

impl NearNetwork {
    /// Whether `key` is a relayer key this crate can use, checked at start-up before
    /// anything is created on disk.
    pub fn relayer_key_is_valid(key: &str) -> bool {
        secret_key(key).is_some()
    }

    /// Builds the network; keys are parsed here so a bad key stops start-up.
    pub fn new(settings: NearSettings) -> Result<NearNetwork, NearSetupError> {
        if settings.chain_id.namespace() != "near" {
            return Err(NearSetupError::NotNear(settings.chain_id.to_string()));
        }
        if settings.relayer_keys.is_empty() {
            return Err(NearSetupError::NoSigner);
        }
        let named: Option<AccountId> = match &settings.options.relayer_account {
            Some(account) => Some(
                account
                    .parse()
                    .map_err(|_| NearSetupError::BadRelayerAccount)?,
            ),
            None => None,
        };
        let mut relayers = Vec::new();
        for (i, text) in settings.relayer_keys.iter().enumerate() {
            let key = secret_key(text).ok_or(NearSetupError::BadKey(i + 1))?;
            let public_key = key.public_key();
            let account = match &named {
                Some(account) => account.clone(),
                None => {
                    implicit_account(&public_key).ok_or(NearSetupError::NoImplicitAccount(i + 1))?
                }
            };
            relayers.push(Relayer {
                account,
                public_key,
                key,
            });
        }
        let rpc =
            JsonRpc::new(&settings.rpc_urls, settings.rpc_timeout).map_err(NearSetupError::Rpc)?;
        let ops = NearChain {
            chain_id: settings.chain_id,
            rpc,
            relayers,
            options: settings.options,
            confirm_timeout: settings.confirm_timeout,
            min_relayer_yocto: settings.min_relayer_yocto,
        };
        Ok(NearNetwork {
            engine: Arc::new(Engine::new(ops, settings.ledger)),
        })
    }

    /// The scheme `name` on this network; `None` for a scheme this crate does not serve.
    pub fn scheme(&self, name: &str) -> Option<Arc<dyn Scheme>> {
        match name {
            "exact" => Some(Arc::new(x402_settlement::OnEngine(ExactNear {
                engine: self.engine.clone(),
            }))),
            _ => None,
        }
    }
}

#[async_trait]
impl Chain for NearNetwork {
    fn network(&self) -> &ChainId {
        &self.engine.chain().chain_id
    }

    fn signer_addresses(&self) -> Vec<String> {
        self.engine.chain().relayer_accounts()
    }

    async fn health(&self) -> Vec<HealthCheck> {
        self.engine.chain().deep_health().await
    }

    async fn reconcile(&self, min_age: Duration) -> ReconcileReport {
        self.engine.reconcile(min_age).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn network(
        keys: &[&str],
        relayer_account: Option<&str>,
    ) -> Result<NearNetwork, NearSetupError> {
        let options = NearOptions {
            relayer_account: relayer_account.map(str::to_owned),
            ..NearOptions::default()
        };
        NearNetwork::new(NearSettings {
            chain_id: ChainId::parse("near:testnet").expect("id"),
            rpc_urls: vec!["http://127.0.0.1:1".into()],
            relayer_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            options,
            confirm_timeout: Duration::from_secs(1),
            rpc_timeout: Duration::from_secs(1),
            min_relayer_yocto: 0,
            ledger: Arc::new(Ledger::connect("sqlite::memory:").await.expect("ledger")),
        })
    }

    #[tokio::test]
    async fn an_ed25519_key_relays_from_its_implicit_account() {
        let key = SecretKey::from_seed(KeyType::ED25519, "relayer");
        let built = network(&[&key.to_string()], None).await.expect("network");
        let accounts = built.signer_addresses();
        let PublicKey::ED25519(public) = key.public_key() else {
            unreachable!("an ed25519 seed")
        };
        let hex: String = public.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(accounts, vec![hex]);
    }

    #[tokio::test]
    async fn a_secp256k1_key_needs_a_named_account_and_a_bad_key_is_not_echoed() {
        let key = SecretKey::from_seed(KeyType::SECP256K1, "relayer").to_string();
        let refused = network(&[&key], None).await.err().expect("refused");
        assert!(
            matches!(refused, NearSetupError::NoImplicitAccount(1)),
            "{refused}"
        );
        let named = network(&[&key], Some("relayer.near"))
            .await
            .expect("network");
        assert_eq!(named.signer_addresses(), vec!["relayer.near".to_owned()]);
        let bad = network(&["ed25519:NotAKeyAtAll"], None)
            .await
            .err()
            .expect("refused");
        assert!(matches!(bad, NearSetupError::BadKey(1)));
        assert!(!bad.to_string().contains("NotAKeyAtAll"), "{bad}");
        assert!(network(&[], None).await.is_err());
    }
}
