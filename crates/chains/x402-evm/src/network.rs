//! One EVM network: the node (failover [`crate::rpc`]), the signers, deep health
//! ([`health`]), transactions ([`tx`]), what the shared settlement engine of
//! `x402-settlement` needs from the chain ([`ops`]) including the replacement of
//! transactions that can never land ([`replace`]), and the schemes served on it
//! ([`exact`], [`upto`], both with payments signed for Permit2 in [`permit2`]).
//!
//! Verify does every local check first (cheap, no I/O), then asks the node everything
//! else in one JSON-RPC batch. Settle verifies again in a batch that also carries the
//! gas estimate, fee data and the signer's balance, so a settlement costs one batch,
//! one broadcast and receipt polls at the chain's pace.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, Bytes, FixedBytes, TxKind, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{eip712_domain, SolCall, SolStruct, SolValue};
use async_trait::async_trait;
use serde_json::{json, Value};
use x402_ledger::{Claim, Entry, Ledger, NonceMismatch, RecordError, SignedTransaction};
use x402_protocol::{
    Chain, ChainId, HealthCheck, Payment, Reason, ReconcileReport, Scheme, Settlement, Verdict,
    X402Version,
};
use x402_settlement::answers::{ledger_refusal, pending_answer, rpc_refusal};
use x402_settlement::{
    metric, ChainOps, Draft, Engine, EngineScheme, NotRecorded, OnEngine, Polling, Recording,
    SchemeOps, Sent, Status,
};

use crate::config::EvmOptions;
use crate::rpc::{CallResult, NodeError, Rpc, RpcUnavailable};

/// An EVM address, re-exported so configuration can name allowlisted contracts.
pub type EvmAddress = Address;

sol! {
    /// The EIP-712 message of EIP-3009.
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
    function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;
    function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    function balanceOf(address account) external view returns (uint256);
}

mod cause;
mod checked;
mod exact;
mod health;
mod ops;
mod permit2;
mod reading;
mod receipt;
mod record;
mod replace;
mod tx;
mod upto;
mod wire;
use cause::{is_execution_error, node_trouble};
use checked::{
    estimate_of, gas_of, push_settle_reads, settle_reads, Checked, Deployment, EvmPayload,
    SettleData,
};
use exact::ExactEvm;
pub use reading::{read_payload, PayloadShape};
use tx::fee_cap;
use wire::*;

/// Creation code of `contracts/Erc6492Probe.sol` (compiled by `tests/js/compile-contracts.mjs`):
/// run as an `eth_call` without `to`, it deploys a counterfactual wallet, checks its signature and
/// simulates the transfer without writing anything.
const ERC6492_PROBE: &str = include_str!("../contracts/Erc6492Probe.hex");

/// Creation code of `contracts/Eip3009VerifyProbe.sol`: balance, authorization state and the
/// transfer simulation in one `eth_call`, so the node executes one call per verify.
const VERIFY_PROBE: &str = include_str!("../contracts/Eip3009VerifyProbe.hex");

/// Creation code of `contracts/Permit2VerifyProbe.sol`: a Permit2 payment's chain reads and
/// the simulated proxy call in one `eth_call`.
const PERMIT2_PROBE: &str = include_str!("../contracts/Permit2VerifyProbe.hex");

/// EIP-1271 magic value.
const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];
/// ERC-6492 signature suffix.
const ERC6492_SUFFIX: [u8; 32] = erc6492_suffix();
/// Seconds an authorization must still be valid for when checked (a block's time).
const VALID_BEFORE_MARGIN: u64 = 6;
/// Clock slack allowed on `validBefore - now <= maxTimeoutSeconds`.
const TIMEOUT_SLACK: u64 = 60;

/// How long a transaction refused for its nonce gets to show its own receipt before it is
/// taken as lost to another transaction (nodes can count a nonce before serving the
/// receipt): a deployment before it is signed again, a transfer before it is replaced.
const OWN_RECEIPT_WAIT: Duration = Duration::from_secs(2);

/// `(max fee, priority fee)` for a transaction that replaces one that can never land: twice
/// the current gas price, and at least the price plus the tip.
fn replacement_fees(gas_price: u128, priority: u128) -> (u128, u128) {
    (
        gas_price
            .saturating_mul(2)
            .max(gas_price.saturating_add(priority)),
        priority,
    )
}

const fn erc6492_suffix() -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = if i % 2 == 0 { 0x64 } else { 0x92 };
        i += 1;
    }
    out
}

/// Where a settlement's transaction nonce floor comes from (`NONCE_FETCH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonceFetchMode {
    /// The ledger's counter; the chain is read on a signer's first settlement in this
    /// process and whenever the node reports a nonce already used.
    #[default]
    Cached,
    /// The chain's pending nonce is read with every settlement (inside the verification
    /// batch, no extra round trip) and wins when it is ahead of the ledger.
    AlwaysFresh,
}

/// Settings of one EVM network.
#[derive(Clone)]
pub struct EvmSettings {
    /// CAIP-2 id (`eip155:<chain id>`).
    pub chain_id: ChainId,
    /// RPC URLs in failover order (secrets).
    pub rpc_urls: Vec<String>,
    /// Signer private keys (hex, secrets).
    pub signer_keys: Vec<String>,
    /// The network's EVM options (its configuration section).
    pub options: EvmOptions,
    /// How long `/settle` waits for the receipt.
    pub receipt_timeout: Duration,
    /// Tokens served; empty: any EIP-3009 token.
    pub assets: Vec<Address>,
    /// Deep health fails when a signer holds less native currency than this (wei).
    pub min_signer_balance: u128,
    /// Limit on one RPC call before the next endpoint is tried.
    pub rpc_timeout: Duration,
    /// The settlement ledger (records and nonces), shared by all networks.
    pub ledger: Arc<Ledger>,
    /// How nonces are checked against the chain.
    pub nonce_mode: NonceFetchMode,
}

/// Why the network could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EvmSetupError {
    /// Not an `eip155` id.
    #[error("{0} is not an eip155 network")]
    NotEvm(String),
    /// A signer key that is not a 32-byte hex private key (the key is not echoed).
    #[error("signer key #{0} is not a valid hex private key")]
    BadKey(usize),
    /// No signer keys.
    #[error("no signer key configured")]
    NoSigner,
    /// Bad RPC configuration.
    #[error("{0}")]
    Rpc(String),
}

struct FacilitatorSigner {
    signer: PrivateKeySigner,
    /// Whether this process has recorded a settlement for the signer (so the ledger holds
    /// its nonce and cached mode need not read the chain).
    seeded: AtomicBool,
    in_flight: AtomicUsize,
}

/// One EVM network: its node, signers and settlements, shared by the schemes on it.
pub struct EvmNetwork {
    engine: Arc<Engine<EvmChain>>,
}

/// The schemes this crate serves on an EVM network.
pub const SCHEMES: &[&str] = &["exact", "upto"];

/// Everything of one EVM network the checks and the engine's chain operations use.
struct EvmChain {
    chain_id: ChainId,
    numeric_chain_id: u64,
    rpc: Rpc,
    signers: Vec<FacilitatorSigner>,
    next_signer: AtomicUsize,
    max_gas: u64,
    max_deploy_gas: u64,
    receipt_timeout: Duration,
    assets: Vec<Address>,
    erc6492_factories: Vec<Address>,
    min_signer_balance: U256,
    expected_block_interval: Option<Duration>,
    /// The head seen by the last deep health check, and when it was first seen.
    last_head: Mutex<Option<(u64, Instant)>>,
    nonce_mode: NonceFetchMode,
    permit2: bool,
    eip2612_sponsoring: bool,
    erc20_approval_sponsoring: bool,
    max_approval_funding: U256,
    max_fundings_per_hour: u64,
    /// Held from counting this hour's fundings to recording a new one, so that one
    /// instance's concurrent settlements cannot both take the last one.
    funding_gate: tokio::sync::Mutex<()>,
}

impl EvmNetwork {
    /// Whether `key` is a signer key this crate can use (checked at start-up, before
    /// anything is created on disk).
    pub fn signer_key_is_valid(key: &str) -> bool {
        signer_from(key).is_some()
    }

    /// Builds the network; keys are parsed here so a bad key stops start-up.
    pub fn new(settings: EvmSettings) -> Result<EvmNetwork, EvmSetupError> {
        let numeric_chain_id = settings
            .chain_id
            .evm_chain_id()
            .ok_or_else(|| EvmSetupError::NotEvm(settings.chain_id.to_string()))?;
        if settings.signer_keys.is_empty() {
            return Err(EvmSetupError::NoSigner);
        }
        let mut signers = Vec::new();
        for (i, key) in settings.signer_keys.iter().enumerate() {
            let signer = signer_from(key).ok_or(EvmSetupError::BadKey(i + 1))?;
            signers.push(FacilitatorSigner {
                signer,
                seeded: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
            });
        }
        let rpc = Rpc::new(&settings.rpc_urls, settings.rpc_timeout).map_err(EvmSetupError::Rpc)?;
        let ops = EvmChain {
            chain_id: settings.chain_id,
            numeric_chain_id,
            rpc,
            signers,
            next_signer: AtomicUsize::new(0),
            max_gas: settings.options.max_gas_per_settlement,
            max_deploy_gas: settings.options.max_gas_per_deployment,
            receipt_timeout: settings.receipt_timeout,
            assets: settings.assets,
            erc6492_factories: settings.options.erc6492_factories,
            min_signer_balance: U256::from(settings.min_signer_balance),
            expected_block_interval: settings.options.expected_block_interval,
            last_head: Mutex::new(None),
            nonce_mode: settings.nonce_mode,
            permit2: settings.options.permit2,
            eip2612_sponsoring: settings.options.eip2612_gas_sponsoring,
            erc20_approval_sponsoring: settings.options.erc20_approval_gas_sponsoring,
            max_approval_funding: U256::from(settings.options.erc20_approval_max_funding_wei),
            max_fundings_per_hour: settings.options.erc20_approval_max_fundings_per_hour,
            funding_gate: tokio::sync::Mutex::new(()),
        };
        Ok(EvmNetwork {
            engine: Arc::new(Engine::new(ops, settings.ledger)),
        })
    }

    /// The scheme `name` on this network; `None` for a scheme this crate does not serve
    /// (see [`SCHEMES`]).
    pub fn scheme(&self, name: &str) -> Option<Arc<dyn Scheme>> {
        match name {
            "exact" => Some(Arc::new(OnEngine(ExactEvm {
                engine: self.engine.clone(),
            }))),
            "upto" => Some(Arc::new(OnEngine(upto::UptoEvm {
                engine: self.engine.clone(),
            }))),
            _ => None,
        }
    }

    /// Calls that moved on from a failing RPC endpoint to the next (tests and metrics).
    pub fn rpc_failovers(&self) -> u64 {
        self.engine.chain().rpc.failovers()
    }

    /// HTTP round trips made to the chain's RPC so far (for tests and metrics).
    pub fn rpc_round_trips(&self) -> u64 {
        self.engine.chain().rpc.round_trips()
    }
}

impl EvmChain {
    /// The signer with the fewest settlements in flight (ties: round robin).
    fn pick_signer(&self) -> &FacilitatorSigner {
        let start = self.next_signer.fetch_add(1, Ordering::Relaxed);
        let n = self.signers.len();
        (0..n)
            .map(|i| &self.signers[(start + i) % n])
            .min_by_key(|s| s.in_flight.load(Ordering::Relaxed))
            .unwrap_or(&self.signers[0])
    }
}

#[async_trait]
impl Chain for EvmNetwork {
    fn network(&self) -> &ChainId {
        &self.engine.chain().chain_id
    }

    fn signer_addresses(&self) -> Vec<String> {
        self.engine
            .chain()
            .signers
            .iter()
            .map(|s| s.signer.address().to_checksum(None))
            .collect()
    }

    async fn health(&self) -> Vec<HealthCheck> {
        self.engine.chain().health_checks().await
    }

    async fn reconcile(&self, min_age: Duration) -> ReconcileReport {
        self.engine.reconcile(min_age).await
    }
}
