//! SVM chains (Solana, Fogo) for the x402 facilitator: one [`SvmNetwork`] per network (its
//! node, fee payers, health and reconciliation) and the `exact` scheme on it.
//!
//! Verify runs the static checks of [`inspect`] (layout, fee payer isolation, compute
//! budget caps, mint, destination, amount, signatures), then signs as fee payer and
//! simulates the fully signed transaction on the node. Settle is the shared engine of
//! `x402-settlement`: the signed transaction is recorded in the ledger before it is sent,
//! confirmed at the configured commitment and answered with its signature; a retry or a
//! duplicate reads the ledger and never sends a second, different transaction.

#![forbid(unsafe_code)]

mod chain;
mod check;
pub mod config;
mod exact;
mod health;
pub mod inspect;
pub mod rpc;

pub use config::{SvmOptions, SvmSection};
use exact::ExactSvm;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use x402_ledger::Ledger;
use x402_protocol::{Chain, ChainId, HealthCheck, ReconcileReport, Scheme};
use x402_settlement::Engine;

use crate::inspect::Policy;
use crate::rpc::SolanaRpc;

/// Settings of one SVM network.
#[derive(Clone)]
pub struct SvmSettings {
    /// CAIP-2 id (`solana:<genesis hash prefix>`).
    pub chain_id: ChainId,
    /// RPC URLs in failover order (secrets).
    pub rpc_urls: Vec<String>,
    /// Fee payer keypairs, base58 of the 64-byte keypair (secrets).
    pub fee_payer_keys: Vec<String>,
    /// The network's SVM options (its configuration section).
    pub options: SvmOptions,
    /// How long `/settle` waits for confirmation.
    pub confirm_timeout: Duration,
    /// Limit on one RPC call.
    pub rpc_timeout: Duration,
    /// Deep health fails when a fee payer holds fewer lamports.
    pub min_fee_payer_lamports: u64,
    /// The settlement ledger.
    pub ledger: Arc<Ledger>,
}

/// Why the network could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SvmSetupError {
    /// Not a `solana:` id (Fogo's ids are `solana:` ids too).
    #[error("{0} is not an SVM network")]
    NotSvm(String),
    /// A key that is not a base58 64-byte keypair (the key is not echoed).
    #[error("fee payer key #{0} is not a base58 keypair")]
    BadKey(usize),
    /// No fee payer.
    #[error("no fee payer key configured")]
    NoSigner,
    /// An allowed program that is not an address.
    #[error("optional program {0:?} is not an address")]
    BadProgram(String),
    /// Bad RPC configuration.
    #[error("{0}")]
    Rpc(String),
}

/// One SVM network: its node, fee payers and settlements, shared by the schemes on it.
pub struct SvmNetwork {
    engine: Arc<Engine<SvmChain>>,
}

/// The schemes this crate serves on an SVM network.
pub const SCHEMES: &[&str] = &["exact"];

/// Everything of one SVM network the checks and the engine's chain operations use.
pub(crate) struct SvmChain {
    pub(crate) chain_id: ChainId,
    pub(crate) rpc: SolanaRpc,
    pub(crate) fee_payers: Vec<Keypair>,
    pub(crate) policy: Policy,
    pub(crate) commitment: String,
    pub(crate) confirm_timeout: Duration,
    pub(crate) local_stand_in: bool,
    pub(crate) min_fee_payer_lamports: u64,
}

/// A fee payer's keypair from its base58 64-byte form; `None` when it is not one.
fn fee_payer_keypair(key: &str) -> Option<Keypair> {
    let bytes = bs58::decode(key.trim()).into_vec().ok()?;
    Keypair::try_from(bytes.as_slice()).ok()
}

impl SvmNetwork {
    /// Whether `key` is a fee-payer key this crate can use (the base58 64-byte keypair),
    /// checked at start-up before anything is created on disk.
    pub fn fee_payer_key_is_valid(key: &str) -> bool {
        fee_payer_keypair(key).is_some()
    }

    /// Builds the network; keys are parsed here so a bad key stops start-up.
    pub fn new(settings: SvmSettings) -> Result<SvmNetwork, SvmSetupError> {
        if settings.chain_id.namespace() != "solana" {
            return Err(SvmSetupError::NotSvm(settings.chain_id.to_string()));
        }
        if settings.fee_payer_keys.is_empty() {
            return Err(SvmSetupError::NoSigner);
        }
        let mut fee_payers = Vec::new();
        for (i, key) in settings.fee_payer_keys.iter().enumerate() {
            fee_payers.push(fee_payer_keypair(key).ok_or(SvmSetupError::BadKey(i + 1))?);
        }
        let mut optional_programs = Vec::new();
        for program in &settings.options.optional_programs {
            optional_programs.push(
                Pubkey::from_str(program)
                    .map_err(|_| SvmSetupError::BadProgram(program.clone()))?,
            );
        }
        let policy = Policy {
            fee_payers: fee_payers.iter().map(Keypair::pubkey).collect(),
            max_compute_units: settings.options.max_compute_units,
            max_compute_unit_price: settings.options.max_compute_unit_price,
            optional_programs,
        };
        let rpc =
            SolanaRpc::new(&settings.rpc_urls, settings.rpc_timeout).map_err(SvmSetupError::Rpc)?;
        let ops = SvmChain {
            chain_id: settings.chain_id,
            rpc,
            fee_payers,
            policy,
            commitment: settings.options.commitment,
            confirm_timeout: settings.confirm_timeout,
            local_stand_in: settings.options.local_stand_in,
            min_fee_payer_lamports: settings.min_fee_payer_lamports,
        };
        Ok(SvmNetwork {
            engine: Arc::new(Engine::new(ops, settings.ledger)),
        })
    }

    /// The scheme `name` on this network; `None` for a scheme this crate does not serve
    /// (see [`SCHEMES`]).
    pub fn scheme(&self, name: &str) -> Option<Arc<dyn Scheme>> {
        match name {
            "exact" => Some(Arc::new(x402_settlement::OnEngine(ExactSvm {
                engine: self.engine.clone(),
            }))),
            _ => None,
        }
    }
}

#[async_trait]
impl Chain for SvmNetwork {
    fn network(&self) -> &ChainId {
        &self.engine.chain().chain_id
    }

    fn signer_addresses(&self) -> Vec<String> {
        self.engine
            .chain()
            .fee_payers
            .iter()
            .map(|k| k.pubkey().to_string())
            .collect()
    }

    async fn health(&self) -> Vec<HealthCheck> {
        self.engine.chain().deep_health().await
    }

    async fn reconcile(&self, min_age: Duration) -> ReconcileReport {
        self.engine.reconcile(min_age).await
    }
}
