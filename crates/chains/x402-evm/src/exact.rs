//! The `exact` scheme on EVM with EIP-3009 `transferWithAuthorization`.
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

/// An EVM address, re-exported so configuration can name allowlisted contracts.
pub type EvmAddress = Address;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{eip712_domain, SolCall, SolStruct, SolValue};
use async_trait::async_trait;
use serde_json::{json, Value};
use x402_ledger::answers::{ledger_refusal, pending_answer, recorded_answer};
use x402_ledger::{
    Claim, Entry, EntryState, Ledger, NewEntry, NonceMismatch, RecordError, SignedTransaction,
};
use x402_protocol::{
    AmountRule, ChainId, HealthCheck, Payment, Reason, ReconcileReport, SchemeHandler, Settlement,
    Verdict, X402Version,
};

use crate::rpc::{CallResult, NodeError, Rpc, RpcUnavailable};

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
use cause::{is_execution_error, node_trouble};

/// The metrics this crate emits (their `# HELP` text is in the service's catalogue).
const NONCE_MISMATCHES: &str = "x402_nonce_mismatches_total";
/// See [`NONCE_MISMATCHES`].
const SETTLEMENT_REPLACEMENTS: &str = "x402_settlement_replacements_total";

/// Creation code of `contracts/Erc6492Probe.sol` (compiled by `tests/js/compile-contracts.mjs`):
/// run as an `eth_call` without `to`, it deploys a counterfactual wallet, checks its signature and
/// simulates the transfer without writing anything.
const ERC6492_PROBE: &str = include_str!("../contracts/Erc6492Probe.hex");

/// Creation code of `contracts/Eip3009VerifyProbe.sol`: balance, authorization state and the
/// transfer simulation in one `eth_call`, so the node executes one call per verify.
const VERIFY_PROBE: &str = include_str!("../contracts/Eip3009VerifyProbe.hex");

/// EIP-1271 magic value.
const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];
/// ERC-6492 signature suffix.
const ERC6492_SUFFIX: [u8; 32] = erc6492_suffix();
/// Seconds an authorization must still be valid for when checked (a block's time).
const VALID_BEFORE_MARGIN: u64 = 6;
/// Clock slack allowed on `validBefore - now <= maxTimeoutSeconds`.
const TIMEOUT_SLACK: u64 = 60;

/// How long a deployment refused for its nonce gets to show its own receipt before it is
/// taken as lost to another transaction (nodes can count a nonce before serving the receipt).
const LOST_DEPLOYMENT_WAIT: Duration = Duration::from_secs(2);

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
    /// Upper bound on the gas of one settlement.
    pub max_gas_per_settlement: u64,
    /// Upper bound on the gas of one ERC-6492 wallet deployment.
    pub max_gas_per_deployment: u64,
    /// How long `/settle` waits for the receipt.
    pub receipt_timeout: Duration,
    /// Tokens served; empty: any EIP-3009 token.
    pub assets: Vec<Address>,
    /// Factories an ERC-6492 signature may name (empty: none, the safe default).
    pub erc6492_factories: Vec<Address>,
    /// Deep health fails when a signer holds less native currency than this (wei).
    pub min_signer_balance: U256,
    /// Expected time between blocks; when set, deep health flags a head that is old or
    /// not advancing. `None` (anvil with instant mining) never calls the chain stale.
    pub expected_block_interval: Option<Duration>,
    /// Limit on one RPC call before the next endpoint is tried.
    pub rpc_timeout: Duration,
    /// The settlement ledger (records and nonces), shared by all networks.
    pub ledger: Arc<Ledger>,
    /// How nonces are checked against the chain.
    pub nonce_mode: NonceFetchMode,
}

/// Why the handler could not be built.
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

/// The authorization parsed from a payload.
#[derive(Debug, Clone)]
struct Authorization {
    from: Address,
    to: Address,
    value: U256,
    valid_after: U256,
    valid_before: U256,
    nonce: B256,
}

/// Everything verify established, reused by settle.
struct Checked {
    payer: Address,
    asset: Address,
    calldata: Bytes,
    settle_data: Option<SettleData>,
}

struct SettleData {
    gas_estimate: u64,
    gas_price: u128,
    priority_fee: u128,
    signer_balance: U256,
    /// The signer's pending nonce, when read with the batch.
    chain_nonce: Option<u64>,
    /// An ERC-6492 wallet to deploy (through an allowlisted factory) before the transfer.
    deployment: Option<Deployment>,
}

/// The factory call that deploys a counterfactual wallet, sent just before the transfer.
struct Deployment {
    factory: Address,
    calldata: Bytes,
    gas_estimate: u64,
}

/// What the deployless verify probe read and simulated.
struct VerifyAnswer {
    balance: Option<U256>,
    used: Option<bool>,
    /// `Err` carries the revert text of the simulated transfer.
    transfer: Result<(), String>,
}

fn verify_answer(result: &CallResult) -> Option<VerifyAnswer> {
    let bytes = result_bytes(result)?;
    let (balance_read, balance, state_read, used, transfer_ok, revert) =
        <(bool, U256, bool, bool, bool, Bytes)>::abi_decode_params(&bytes).ok()?;
    Some(VerifyAnswer {
        balance: balance_read.then_some(balance),
        used: state_read.then_some(used),
        transfer: if transfer_ok {
            Ok(())
        } else {
            Err(revert_text(&revert))
        },
    })
}

/// The message of `Error(string)` revert data.
fn error_string(data: &[u8]) -> Option<String> {
    if data.len() > 4 && data[..4] == [0x08, 0xc3, 0x79, 0xa0] {
        String::abi_decode(&data[4..]).ok()
    } else {
        None
    }
}

/// `Error(string)` revert data as text, else a short hex rendering.
fn revert_text(data: &[u8]) -> String {
    if let Some(text) = error_string(data) {
        return text;
    }
    if data.is_empty() {
        "reverted without a reason".to_owned()
    } else {
        format!("reverted with data {}", hex(&data[..data.len().min(68)]))
    }
}

/// What the deployless ERC-6492 probe found.
struct ProbeAnswer {
    deployed: bool,
    signature_valid: bool,
    transfer_ok: bool,
    transfer_gas: u64,
}

fn probe_answer(result: &CallResult) -> Option<ProbeAnswer> {
    let bytes = result_bytes(result)?;
    let (deployed, signature_valid, transfer_ok, gas) =
        <(bool, bool, bool, U256)>::abi_decode_params(&bytes).ok()?;
    Some(ProbeAnswer {
        deployed,
        signature_valid,
        transfer_ok,
        transfer_gas: u64::try_from(gas).ok()?,
    })
}

/// Intrinsic gas of a call transaction carrying `data` (base cost plus calldata).
fn intrinsic_gas(data: &[u8]) -> u64 {
    let zeros = data.iter().filter(|b| **b == 0).count() as u64;
    21_000 + zeros * 4 + (data.len() as u64 - zeros) * 16
}

/// `exact` on one EVM network.
pub struct ExactEvm {
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
    ledger: Arc<Ledger>,
    nonce_mode: NonceFetchMode,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_u256(value: &Value) -> Option<U256> {
    match value {
        Value::String(s) if !s.is_empty() => {
            if let Some(hex) = s.strip_prefix("0x") {
                U256::from_str_radix(hex, 16).ok()
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                U256::from_str_radix(s, 10).ok()
            } else {
                None
            }
        }
        Value::Number(n) => n.as_u64().map(U256::from),
        _ => None,
    }
}

/// Hex (with or without `0x`) to bytes; `None` for anything else, including non-ASCII
/// text from a payer (slicing such text by byte offsets could split a character).
fn parse_hex_bytes(text: &str) -> Option<Vec<u8>> {
    alloy::primitives::hex::decode(text).ok()
}

fn hex(bytes: &[u8]) -> String {
    alloy::primitives::hex::encode_prefixed(bytes)
}

fn result_bytes(result: &CallResult) -> Option<Vec<u8>> {
    match result {
        Ok(Value::String(s)) => parse_hex_bytes(s),
        _ => None,
    }
}

fn result_u64(result: &CallResult) -> Option<u64> {
    result_u128(result).and_then(|n| u64::try_from(n).ok())
}

fn result_u128(result: &CallResult) -> Option<u128> {
    match result {
        Ok(v) => parse_u256(v).and_then(|u| u128::try_from(u).ok()),
        Err(_) => None,
    }
}

/// A signer from its hex private key; `None` when it is not one.
fn signer_from(key: &str) -> Option<PrivateKeySigner> {
    PrivateKeySigner::from_str(key.trim()).ok()
}

/// Half the order of secp256k1, big-endian: the largest `s` a canonical signature has.
const SECP256K1_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// The address that signed `digest` with a 65-byte `(r, s, v)` signature. Uses
/// libsecp256k1: signature recovery dominates a verify's CPU time, and the C library is
/// several times faster than the pure-Rust curve.
fn recover_signer(digest: &B256, signature: &[u8]) -> Option<Address> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    if signature.len() != 65 {
        return None;
    }
    let parity = match signature[64] {
        0 | 27 => 0,
        1 | 28 => 1,
        _ => return None,
    };
    // EIP-2: only the lower half of `s`. A high-s signature recovers too, but EIP-3009
    // tokens refuse it on chain, so settling it would only burn the facilitator's gas.
    if signature[32..64] > SECP256K1_HALF_ORDER[..] {
        return None;
    }
    let id = RecoveryId::try_from(parity).ok()?;
    let recoverable = RecoverableSignature::from_compact(&signature[..64], id).ok()?;
    let key = recoverable
        .recover_ecdsa(secp256k1::Message::from_digest(digest.0))
        .ok()?;
    Some(Address::from_raw_public_key(
        &key.serialize_uncompressed()[1..],
    ))
}

/// A readable revert reason from node error data, when it is `Error(string)`.
fn revert_reason(error: &NodeError) -> String {
    error
        .data
        .as_deref()
        .and_then(parse_hex_bytes)
        .and_then(|data| error_string(&data))
        .unwrap_or_else(|| error.message.clone())
}

/// `data` of an `eth_call` without `to` that runs `creation_code` with ABI-encoded
/// constructor `args` (a deployless probe: nothing is written to the chain).
fn deployless_call(creation_code: &str, args: &[u8]) -> String {
    format!("0x{}{}", creation_code.trim(), &hex(args)[2..])
}

impl ExactEvm {
    /// Whether `key` is a signer key this crate can use (checked at start-up, before
    /// anything is created on disk).
    pub fn signer_key_is_valid(key: &str) -> bool {
        signer_from(key).is_some()
    }

    /// Builds the handler; keys are parsed here so a bad key stops start-up.
    pub fn new(settings: EvmSettings) -> Result<ExactEvm, EvmSetupError> {
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
        Ok(ExactEvm {
            chain_id: settings.chain_id,
            numeric_chain_id,
            rpc,
            signers,
            next_signer: AtomicUsize::new(0),
            max_gas: settings.max_gas_per_settlement,
            max_deploy_gas: settings.max_gas_per_deployment,
            receipt_timeout: settings.receipt_timeout,
            assets: settings.assets,
            erc6492_factories: settings.erc6492_factories,
            min_signer_balance: settings.min_signer_balance,
            expected_block_interval: settings.expected_block_interval,
            last_head: Mutex::new(None),
            ledger: settings.ledger,
            nonce_mode: settings.nonce_mode,
        })
    }

    /// One batch to the node: chain id, head block, signer balances.
    async fn health_checks(&self) -> Vec<HealthCheck> {
        let mut calls: Vec<(&'static str, Value)> = vec![
            ("eth_chainId", json!([])),
            ("eth_getBlockByNumber", json!(["latest", false])),
        ];
        for signer in &self.signers {
            calls.push((
                "eth_getBalance",
                json!([signer.signer.address().to_string(), "latest"]),
            ));
        }
        let results = match self.rpc.batch(&calls).await {
            Ok(results) if results.len() == calls.len() => results,
            // The error text may carry the endpoint; it stays out of the health answer.
            _ => {
                return vec![HealthCheck::new(
                    "rpc_reachable",
                    false,
                    true,
                    "no RPC endpoint answered",
                )]
            }
        };
        let mut checks = vec![HealthCheck::new(
            "rpc_reachable",
            true,
            true,
            "node answered",
        )];
        let chain = results[0].as_ref().ok().and_then(parse_u256);
        let expected = U256::from(self.numeric_chain_id);
        checks.push(match chain {
            Some(id) if id == expected => {
                HealthCheck::new("chain_id", true, true, format!("chain id {id}"))
            }
            Some(id) => HealthCheck::new(
                "chain_id",
                false,
                true,
                format!("node is on chain {id}, configured {expected}"),
            ),
            None => HealthCheck::new("chain_id", false, true, "node gave no chain id"),
        });
        let block = results[1].as_ref().ok();
        let number = block
            .and_then(|b| b.get("number"))
            .and_then(parse_u256)
            .and_then(|n| u64::try_from(n).ok());
        let timestamp = block
            .and_then(|b| b.get("timestamp"))
            .and_then(parse_u256)
            .and_then(|n| u64::try_from(n).ok());
        checks.push(self.head_check(number, timestamp));
        for (signer, result) in self.signers.iter().zip(&results[2..]) {
            let address = signer.signer.address().to_checksum(None);
            let balance = result.as_ref().ok().and_then(parse_u256);
            checks.push(match balance {
                Some(b) if b >= self.min_signer_balance => HealthCheck::new(
                    "signer_gas_balance",
                    true,
                    true,
                    format!("{address}: {b} wei"),
                ),
                Some(b) => HealthCheck::new(
                    "signer_gas_balance",
                    false,
                    true,
                    format!(
                        "{address}: {b} wei, below the floor of {}",
                        self.min_signer_balance
                    ),
                ),
                None => HealthCheck::new(
                    "signer_gas_balance",
                    false,
                    true,
                    format!("{address}: node gave no balance"),
                ),
            });
        }
        checks
    }

    /// The head must be recent and advancing, judged only against a configured interval.
    fn head_check(&self, number: Option<u64>, timestamp: Option<u64>) -> HealthCheck {
        let (Some(number), Some(timestamp)) = (number, timestamp) else {
            return HealthCheck::new("head_block", false, true, "node gave no latest block");
        };
        let Some(interval) = self.expected_block_interval else {
            return HealthCheck::new(
                "head_block",
                true,
                true,
                format!("block {number} (no expected interval configured: staleness not judged)"),
            );
        };
        let allowed = interval.saturating_mul(3).max(Duration::from_secs(5));
        let age = Duration::from_secs(now_secs().saturating_sub(timestamp));
        let mut last = match self.last_head.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stuck_for = match *last {
            Some((seen, since)) if seen == number => since.elapsed(),
            _ => {
                *last = Some((number, Instant::now()));
                Duration::ZERO
            }
        };
        if age > allowed {
            HealthCheck::new(
                "head_block",
                false,
                true,
                format!(
                    "block {number} is {}s old (allowed {}s)",
                    age.as_secs(),
                    allowed.as_secs()
                ),
            )
        } else if stuck_for > allowed {
            HealthCheck::new(
                "head_block",
                false,
                true,
                format!("head stuck at block {number} for {}s", stuck_for.as_secs()),
            )
        } else {
            HealthCheck::new(
                "head_block",
                true,
                true,
                format!("block {number}, {}s old", age.as_secs()),
            )
        }
    }

    /// Calls that moved on from a failing RPC endpoint to the next (tests and metrics).
    pub fn rpc_failovers(&self) -> u64 {
        self.rpc.failovers()
    }

    /// HTTP round trips made to the chain's RPC so far (for tests and metrics).
    pub fn rpc_round_trips(&self) -> u64 {
        self.rpc.round_trips()
    }

    /// The signer with the fewest settlements in flight (ties: round robin).
    fn pick_signer(&self) -> &FacilitatorSigner {
        let start = self.next_signer.fetch_add(1, Ordering::Relaxed);
        let n = self.signers.len();
        (0..n)
            .map(|i| &self.signers[(start + i) % n])
            .min_by_key(|s| s.in_flight.load(Ordering::Relaxed))
            .unwrap_or(&self.signers[0])
    }

    fn parse_authorization(payment: &Payment) -> Result<(Authorization, Vec<u8>), Verdict> {
        let auth = payment
            .payload
            .get("authorization")
            .and_then(Value::as_object);
        let from_text = auth.and_then(|a| a.get("from")).and_then(Value::as_str);
        let payer = from_text.map(str::to_owned);
        let bad = |what: &str| {
            Verdict::invalid(
                Reason::InvalidPayload,
                format!("payload.{what} is missing or malformed"),
                payer.clone(),
            )
        };
        let auth = auth.ok_or_else(|| bad("authorization"))?;
        let address = |key: &str| {
            auth.get(key)
                .and_then(Value::as_str)
                .and_then(|s| Address::from_str(s).ok())
                .ok_or_else(|| bad(&format!("authorization.{key}")))
        };
        let number = |key: &str| {
            auth.get(key)
                .and_then(parse_u256)
                .ok_or_else(|| bad(&format!("authorization.{key}")))
        };
        let nonce = auth
            .get("nonce")
            .and_then(Value::as_str)
            .and_then(|s| B256::from_str(s).ok())
            .ok_or_else(|| bad("authorization.nonce"))?;
        let authorization = Authorization {
            from: address("from")?,
            to: address("to")?,
            value: number("value")?,
            valid_after: number("validAfter")?,
            valid_before: number("validBefore")?,
            nonce,
        };
        let signature = payment
            .payload
            .get("signature")
            .and_then(Value::as_str)
            .and_then(parse_hex_bytes)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("signature"))?;
        Ok((authorization, signature))
    }

    /// Local checks and then one batch to the node.
    async fn check(
        &self,
        payment: &Payment,
        for_settle: Option<Address>,
        read_nonce: bool,
    ) -> Result<Checked, Verdict> {
        let (auth, signature) = Self::parse_authorization(payment)?;
        let payer = auth.from.to_checksum(None);
        let refuse = |reason: Reason, message: String| {
            Verdict::invalid(reason, message, Some(payer.clone()))
        };

        if payment.scheme != "exact" || payment.payload_scheme != "exact" {
            return Err(refuse(
                Reason::ExactEvmScheme,
                format!("scheme {:?} is not exact", payment.payload_scheme),
            ));
        }
        if payment.payload_network.as_ref() != Some(&self.chain_id) {
            return Err(refuse(
                Reason::ExactEvmNetworkMismatch,
                format!("payload is for another network than {}", self.chain_id),
            ));
        }
        let extra = payment.requirements.extra.as_ref();
        let name = extra.and_then(|e| e.get("name")).and_then(Value::as_str);
        let version = extra.and_then(|e| e.get("version")).and_then(Value::as_str);
        let (Some(name), Some(version)) = (name, version) else {
            return Err(refuse(
                Reason::ExactEvmMissingEip712Domain,
                "requirements extra.name and extra.version are required".into(),
            ));
        };
        let asset = Address::from_str(&payment.requirements.asset).map_err(|_| {
            refuse(
                Reason::InvalidPaymentRequirements,
                "asset is not an EVM address".into(),
            )
        })?;
        if !self.assets.is_empty() && !self.assets.contains(&asset) {
            return Err(refuse(
                Reason::InvalidPaymentRequirements,
                format!("asset {asset} is not served on {}", self.chain_id),
            ));
        }
        let pay_to = Address::from_str(&payment.requirements.pay_to).map_err(|_| {
            refuse(
                Reason::InvalidPaymentRequirements,
                "payTo is not an EVM address".into(),
            )
        })?;
        if auth.to != pay_to {
            return Err(refuse(
                Reason::ExactEvmRecipientMismatch,
                format!("authorization.to is not payTo {pay_to}"),
            ));
        }
        let now = U256::from(now_secs());
        if auth.valid_before < now + U256::from(VALID_BEFORE_MARGIN) {
            return Err(refuse(
                Reason::ExactEvmValidBefore,
                "authorization has expired".into(),
            ));
        }
        if auth.valid_after > now {
            return Err(refuse(
                Reason::ExactEvmValidAfter,
                "authorization is not valid yet".into(),
            ));
        }
        let longest = U256::from(
            payment
                .requirements
                .latest_valid_until(now_secs(), TIMEOUT_SLACK),
        );
        if auth.valid_before > longest {
            return Err(refuse(
                Reason::ExactEvmValidBefore,
                format!(
                    "authorization stays valid longer than maxTimeoutSeconds ({})",
                    payment.requirements.max_timeout_seconds
                ),
            ));
        }
        let required =
            U256::from_str_radix(payment.requirements.amount.as_str(), 10).map_err(|_| {
                refuse(
                    Reason::InvalidPaymentRequirements,
                    "amount does not fit 256 bits".into(),
                )
            })?;
        let value_ok = match payment.requirements.amount_rule {
            AmountRule::Exact => auth.value == required,
            AmountRule::AtLeast => auth.value >= required,
        };
        if !value_ok {
            return Err(refuse(
                Reason::ExactEvmAuthorizationValue,
                format!(
                    "authorization value {} does not match required {required}",
                    auth.value
                ),
            ));
        }

        // Signature: EOA recovery locally; otherwise EIP-1271 (ERC-6492 unwrapped) on chain.
        let domain = eip712_domain! {
            name: name.to_owned(),
            version: version.to_owned(),
            chain_id: self.numeric_chain_id,
            verifying_contract: asset,
        };
        let message = TransferWithAuthorization {
            from: auth.from,
            to: auth.to,
            value: auth.value,
            validAfter: auth.valid_after,
            validBefore: auth.valid_before,
            nonce: auth.nonce,
        };
        let digest = message.eip712_signing_hash(&domain);
        let mut inner_signature = signature.clone();
        let mut erc6492_factory = None;
        if signature.len() > 32 && signature[signature.len() - 32..] == ERC6492_SUFFIX {
            let wrapped = &signature[..signature.len() - 32];
            match <(Address, Bytes, Bytes)>::abi_decode_params(wrapped) {
                Ok((factory, factory_calldata, inner)) => {
                    erc6492_factory = Some((factory, factory_calldata));
                    inner_signature = inner.to_vec();
                }
                Err(_) => {
                    return Err(refuse(
                        Reason::ExactEvmSignature,
                        "malformed ERC-6492 signature".into(),
                    ))
                }
            }
        }
        let eoa_valid = recover_signer(&digest, &inner_signature) == Some(auth.from);

        let simulate_from = for_settle.unwrap_or_else(|| self.signers[0].signer.address());
        let calldata: Bytes = if inner_signature.len() == 65 && erc6492_factory.is_none() {
            let v = inner_signature[64];
            let v = if v < 27 { v + 27 } else { v };
            transferWithAuthorization_0Call {
                from: auth.from,
                to: auth.to,
                value: auth.value,
                validAfter: auth.valid_after,
                validBefore: auth.valid_before,
                nonce: auth.nonce,
                v,
                r: FixedBytes::from_slice(&inner_signature[..32]),
                s: FixedBytes::from_slice(&inner_signature[32..64]),
            }
            .abi_encode()
            .into()
        } else {
            transferWithAuthorization_1Call {
                from: auth.from,
                to: auth.to,
                value: auth.value,
                validAfter: auth.valid_after,
                validBefore: auth.valid_before,
                nonce: auth.nonce,
                signature: inner_signature.clone().into(),
            }
            .abi_encode()
            .into()
        };

        let asset_hex = asset.to_string();
        let probe_args = (asset, auth.from, auth.nonce, calldata.clone()).abi_encode_params();
        let verify_probe = deployless_call(VERIFY_PROBE, &probe_args);
        let mut calls: Vec<(&'static str, Value)> = vec![(
            "eth_call",
            json!([{"from": simulate_from.to_string(), "data": verify_probe}, "latest"]),
        )];
        let contract_check = !eoa_valid;
        let code_index = calls.len();
        if contract_check {
            calls.push(("eth_getCode", json!([auth.from.to_string(), "latest"])));
            calls.push((
                "eth_call",
                json!([{"to": auth.from.to_string(), "data": hex(&isValidSignatureCall { hash: digest, signature: inner_signature.clone().into() }.abi_encode())}, "latest"]),
            ));
        }
        // A counterfactual wallet whose factory is allowlisted: the deployless probe checks
        // deployment, signature and transfer in one simulated call; settle also estimates the
        // deployment. Factories outside the allowlist are never called, not even in simulation.
        let allowed_deployment = erc6492_factory
            .as_ref()
            .filter(|(factory, _)| self.erc6492_factories.contains(factory));
        let probe_index = calls.len();
        if let Some((factory, factory_calldata)) = allowed_deployment {
            let args = (
                auth.from,
                *factory,
                factory_calldata.clone(),
                digest,
                Bytes::from(inner_signature.clone()),
                asset,
                calldata.clone(),
            )
                .abi_encode_params();
            let probe = deployless_call(ERC6492_PROBE, &args);
            calls.push(("eth_call", json!([{"data": probe}, "latest"])));
            if let Some(signer) = for_settle {
                calls.push((
                    "eth_estimateGas",
                    json!([{"from": signer.to_string(), "to": factory.to_string(), "data": hex(factory_calldata)}]),
                ));
            }
        }
        let settle_index = calls.len();
        if let Some(signer) = for_settle {
            calls.push((
                "eth_estimateGas",
                json!([{"from": signer.to_string(), "to": asset_hex, "data": hex(&calldata)}]),
            ));
            calls.push(("eth_gasPrice", json!([])));
            calls.push(("eth_maxPriorityFeePerGas", json!([])));
            calls.push(("eth_getBalance", json!([signer.to_string(), "pending"])));
            if read_nonce {
                calls.push((
                    "eth_getTransactionCount",
                    json!([signer.to_string(), "pending"]),
                ));
            }
        }

        let results = self
            .rpc
            .batch(&calls)
            .await
            .map_err(|e| self.rpc_refusal(e, &payer))?;
        if results.len() != calls.len() {
            return Err(refuse(
                Reason::RpcUnavailable,
                "node answered a batch partially".into(),
            ));
        }

        // The asset must answer like an EIP-3009 token.
        let Some(reads) = verify_answer(&results[0]) else {
            return Err(refuse(
                Reason::RpcUnavailable,
                "node did not run the verification call".into(),
            ));
        };
        let (Some(balance), Some(used)) = (reads.balance, reads.used) else {
            return Err(refuse(
                Reason::ExactEvmEip3009NotSupported,
                format!(
                    "asset {asset} does not answer as an EIP-3009 token on {}",
                    self.chain_id
                ),
            ));
        };

        let mut probe = None;
        if contract_check {
            if let Err(error) = &results[code_index] {
                return Err(refuse(
                    Reason::RpcUnavailable,
                    node_trouble("eth_getCode", error),
                ));
            }
            let code = result_bytes(&results[code_index]).unwrap_or_default();
            if code.is_empty() {
                if allowed_deployment.is_none() {
                    if erc6492_factory.is_some() {
                        return Err(refuse(
                            Reason::ExactEvmUndeployedSmartWallet,
                            "payer wallet is not deployed and its ERC-6492 factory is not in the facilitator's allowlist".into(),
                        ));
                    }
                    return Err(refuse(
                        Reason::ExactEvmSignature,
                        "signature does not recover to authorization.from".into(),
                    ));
                }
                let answer = probe_answer(&results[probe_index]).ok_or_else(|| {
                    refuse(
                        Reason::RpcUnavailable,
                        "node did not run the ERC-6492 probe".into(),
                    )
                })?;
                if !answer.deployed {
                    return Err(refuse(
                        Reason::ExactEvmUndeployedSmartWallet,
                        "the ERC-6492 factory call does not deploy the payer wallet".into(),
                    ));
                }
                if !answer.signature_valid {
                    return Err(refuse(
                        Reason::ExactEvmSignature,
                        "counterfactual wallet rejects the signature (ERC-6492)".into(),
                    ));
                }
                probe = Some(answer);
            }
        }
        // A counterfactual wallet exists only inside the probe: its answers replace the
        // EIP-1271 call and the plain transfer simulation, which both see an empty account.
        if probe.is_none() && contract_check {
            if let Err(error) = &results[code_index + 1] {
                if !is_execution_error(error) {
                    return Err(refuse(
                        Reason::RpcUnavailable,
                        node_trouble("the EIP-1271 check", error),
                    ));
                }
            }
            let magic = result_bytes(&results[code_index + 1])
                .filter(|b| b.len() >= 4)
                .map(|b| b[..4] == ERC1271_MAGIC);
            if magic != Some(true) {
                return Err(refuse(
                    Reason::ExactEvmSignature,
                    "contract wallet rejected the signature (EIP-1271)".into(),
                ));
            }
        }
        if used {
            return Err(refuse(
                Reason::ExactEvmNonceAlreadyUsed,
                "authorization nonce already used on chain".into(),
            ));
        }
        if balance < auth.value {
            return Err(refuse(
                Reason::ExactEvmInsufficientBalance,
                format!("payer balance {balance} is below {}", auth.value),
            ));
        }
        match (&probe, &reads.transfer) {
            (Some(answer), _) if !answer.transfer_ok => {
                return Err(refuse(
                    Reason::ExactEvmSimulationFailed,
                    "simulated transfer from the counterfactual wallet reverts".into(),
                ))
            }
            (None, Err(why)) => {
                return Err(refuse(
                    Reason::ExactEvmSimulationFailed,
                    format!("simulated transfer reverts: {why}"),
                ))
            }
            _ => {}
        }

        let settle_data = if for_settle.is_some() {
            let estimate = match (&probe, &results[settle_index]) {
                // The node cannot estimate a transfer from a wallet that does not exist yet;
                // the probe measured it after deploying.
                (Some(answer), _) => Some(answer.transfer_gas + intrinsic_gas(&calldata)),
                (None, Ok(v)) => parse_u256(v).and_then(|u| u64::try_from(u).ok()),
                (None, Err(error)) if is_execution_error(error) => {
                    return Err(refuse(
                        Reason::ExactEvmSimulationFailed,
                        format!("gas estimation reverts: {}", revert_reason(error)),
                    ))
                }
                // A rate limit, an internal error, a missing header: the node's trouble.
                (None, Err(error)) => {
                    return Err(refuse(
                        Reason::RpcUnavailable,
                        node_trouble("eth_estimateGas", error),
                    ))
                }
            };
            let deployment = match (&probe, allowed_deployment) {
                (Some(_), Some((factory, factory_calldata))) => {
                    let gas = match &results[probe_index + 1] {
                        Ok(v) => parse_u256(v).and_then(|u| u64::try_from(u).ok()),
                        Err(error) if !is_execution_error(error) => {
                            return Err(refuse(
                                Reason::RpcUnavailable,
                                node_trouble("the deployment gas estimate", error),
                            ))
                        }
                        Err(error) => {
                            return Err(refuse(
                                Reason::ExactEvmUndeployedSmartWallet,
                                format!(
                                    "wallet deployment cannot be estimated: {}",
                                    revert_reason(error)
                                ),
                            ))
                        }
                    };
                    let Some(gas_estimate) = gas else {
                        return Err(refuse(
                            Reason::RpcUnavailable,
                            "node did not answer the deployment gas estimate".into(),
                        ));
                    };
                    Some(Deployment {
                        factory: *factory,
                        calldata: factory_calldata.clone(),
                        gas_estimate,
                    })
                }
                _ => None,
            };
            let gas_price = result_u128(&results[settle_index + 1]);
            let priority = result_u128(&results[settle_index + 2]).unwrap_or(0);
            let signer_balance = results[settle_index + 3].as_ref().ok().and_then(parse_u256);
            let chain_nonce = results
                .get(settle_index + 4)
                .filter(|_| read_nonce)
                .and_then(|r| r.as_ref().ok())
                .and_then(parse_u256)
                .and_then(|n| u64::try_from(n).ok());
            let (Some(gas_estimate), Some(gas_price), Some(signer_balance)) =
                (estimate, gas_price, signer_balance)
            else {
                return Err(refuse(
                    Reason::RpcUnavailable,
                    "node did not answer gas and fee queries".into(),
                ));
            };
            Some(SettleData {
                gas_estimate,
                gas_price,
                priority_fee: priority,
                signer_balance,
                chain_nonce,
                deployment,
            })
        } else {
            None
        };
        Ok(Checked {
            payer: auth.from,
            asset,
            calldata,
            settle_data,
        })
    }

    fn rpc_refusal(&self, error: RpcUnavailable, payer: &str) -> Verdict {
        tracing::warn!(network = %self.chain_id, error = %error, "RPC unavailable");
        Verdict::invalid(
            Reason::RpcUnavailable,
            format!(
                "the facilitator cannot reach {} right now; retry later",
                self.chain_id
            ),
            Some(payer.to_owned()),
        )
    }

    /// The payment's identity in the ledger (asset, payer, authorization nonce): one
    /// authorization moves funds once, whatever else the request says.
    fn payment_key(payment: &Payment) -> Option<(String, Authorization)> {
        let (auth, _) = Self::parse_authorization(payment).ok()?;
        let asset = Address::from_str(&payment.requirements.asset).ok()?;
        Some((
            format!("{asset:#x}/{:#x}/{:#x}", auth.from, auth.nonce),
            auth,
        ))
    }

    /// One receipt lookup: `Some(success)` once mined.
    async fn receipt(&self, tx_hash: &str) -> Result<Option<bool>, RpcUnavailable> {
        let answer = self
            .rpc
            .call("eth_getTransactionReceipt", json!([tx_hash]))
            .await?;
        Ok(match answer {
            Ok(Value::Object(receipt)) => {
                let status = receipt.get("status").and_then(parse_u256);
                Some(status == Some(U256::from(1)))
            }
            _ => None,
        })
    }

    /// Waits for a receipt, polling fast at first (milliseconds on a dev chain), then slower.
    async fn wait_receipt(&self, tx_hash: &str) -> Result<Option<bool>, RpcUnavailable> {
        self.wait_receipt_within(tx_hash, self.receipt_timeout)
            .await
    }

    /// [`Self::wait_receipt`] for at most `limit`.
    async fn wait_receipt_within(
        &self,
        tx_hash: &str,
        limit: Duration,
    ) -> Result<Option<bool>, RpcUnavailable> {
        let deadline = Instant::now() + limit.min(self.receipt_timeout);
        let mut delay = Duration::from_millis(2);
        loop {
            if let Some(status) = self.receipt(tx_hash).await? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// The signer's pending nonce as the node sees it.
    async fn pending_nonce(&self, address: Address) -> Result<u64, RpcUnavailable> {
        let answer = self
            .rpc
            .call(
                "eth_getTransactionCount",
                json!([address.to_string(), "pending"]),
            )
            .await?;
        answer
            .ok()
            .as_ref()
            .and_then(parse_u256)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| RpcUnavailable("eth_getTransactionCount gave no number".into()))
    }

    /// Gas limit (estimate + 20 %, capped) and fee cap of a settlement transaction; the
    /// gas-affordability check and the signed transaction must agree on both.
    fn gas_plan(&self, data: &SettleData) -> (u64, u128) {
        let max_fee = data
            .gas_price
            .saturating_mul(2)
            .max(data.gas_price + data.priority_fee);
        (self.gas_limit(data.gas_estimate), max_fee)
    }

    /// Estimate + 20 %, capped at the settlement maximum.
    fn gas_limit(&self, estimate: u64) -> u64 {
        (estimate.saturating_mul(12) / 10).min(self.max_gas)
    }

    /// Estimate + 20 %, capped at the deployment maximum.
    fn deploy_gas_limit(&self, estimate: u64) -> u64 {
        (estimate.saturating_mul(12) / 10).min(self.max_deploy_gas)
    }

    /// Signs a call from `signer` at `nonce` with a fee plan `(max fee, priority fee)`.
    fn sign_transaction(
        &self,
        signer: &FacilitatorSigner,
        fees: (u128, u128),
        call: (Address, &Bytes, u64),
        nonce: u64,
    ) -> Result<(B256, Bytes), String> {
        let (to, input, gas_limit) = call;
        let (max_fee, priority_fee) = fees;
        let mut tx = TxEip1559 {
            chain_id: self.numeric_chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority_fee.min(max_fee),
            to: TxKind::Call(to),
            value: U256::ZERO,
            access_list: Default::default(),
            input: input.clone(),
        };
        let signature = signer
            .signer
            .sign_transaction_sync(&mut tx)
            .map_err(|e| e.to_string())?;
        let envelope: TxEnvelope = tx.into_signed(signature).into();
        let hash = *envelope.tx_hash();
        Ok((hash, envelope.encoded_2718().into()))
    }

    /// Sends signed bytes; "already known" counts as sent (same bytes, same hash).
    async fn broadcast(&self, raw_hex: &str) -> Result<Result<(), NodeError>, RpcUnavailable> {
        let answer = self
            .rpc
            .call("eth_sendRawTransaction", json!([raw_hex]))
            .await?;
        Ok(match answer {
            Ok(_) => Ok(()),
            Err(e) if already_known(&e) => Ok(()),
            Err(e) => Err(e),
        })
    }

    fn signer_named(&self, address: &str) -> Option<&FacilitatorSigner> {
        let address = Address::from_str(address).ok()?;
        self.signers.iter().find(|s| s.signer.address() == address)
    }

    fn report_mismatch(&self, signer: &str, mismatch: NonceMismatch) {
        metrics::counter!(NONCE_MISMATCHES, "network" => self.chain_id.to_string()).increment(1);
        tracing::warn!(
            network = %self.chain_id,
            signer = %signer,
            local_nonce = mismatch.ledger,
            chain_nonce = mismatch.chain,
            "nonce mismatch: the chain's pending nonce is ahead of the ledger's; continuing from the chain's"
        );
    }

    /// Settles a payment the ledger may or may not know.
    async fn settle_payment(&self, payment: &Payment) -> Settlement {
        let Some((key, auth)) = Self::payment_key(payment) else {
            // Malformed: let verification produce the precise reason.
            return match self.check(payment, None, false).await {
                Err(verdict) => Settlement::from_verdict(verdict),
                Ok(_) => Settlement::failed(Reason::InvalidPayload, "malformed payment", None, ""),
            };
        };
        let digest = payment.request_digest();
        let network = self.chain_id.to_string();
        match self.ledger.entry(&network, &key).await {
            Err(e) => {
                return ledger_refusal(
                    &self.chain_id.to_string(),
                    e,
                    Some(auth.from.to_checksum(None)),
                )
            }
            Ok(Some(entry)) => return self.resume(entry, &digest).await,
            Ok(None) => {}
        }
        let signer = self.pick_signer();
        signer.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.settle_new(payment, signer, key, digest, &auth).await;
        signer.in_flight.fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// Verifies, then allocates a nonce, signs and records in one ledger transaction, then
    /// broadcasts and waits for the receipt.
    async fn settle_new(
        &self,
        payment: &Payment,
        signer: &FacilitatorSigner,
        key: String,
        digest: String,
        auth: &Authorization,
    ) -> Settlement {
        let address = signer.signer.address();
        let read_nonce = self.nonce_mode == NonceFetchMode::AlwaysFresh
            || !signer.seeded.load(Ordering::Acquire);
        let checked = match self.check(payment, Some(address), read_nonce).await {
            Ok(checked) => checked,
            Err(verdict) => {
                // A duplicate racing the original (here or on another instance) sees the
                // authorization already used: the original's answer is the answer.
                if let Ok(Some(entry)) = self.ledger.entry(&self.chain_id.to_string(), &key).await {
                    return self.resume(entry, &digest).await;
                }
                return Settlement::from_verdict(verdict);
            }
        };
        let payer = checked.payer.to_checksum(None);
        let Some(data) = checked.settle_data.as_ref() else {
            return Settlement::failed(
                Reason::UnexpectedSettleError,
                "no settle data",
                Some(payer),
                "",
            );
        };
        let deploy_estimate = data.deployment.as_ref().map_or(0, |d| d.gas_estimate);
        if data.gas_estimate > self.max_gas || deploy_estimate > self.max_deploy_gas {
            return Settlement::failed(
                Reason::ExactEvmSimulationFailed,
                format!(
                    "settlement needs {} gas (cap {}) and wallet deployment {deploy_estimate} (cap {})",
                    data.gas_estimate, self.max_gas, self.max_deploy_gas
                ),
                Some(payer),
                "",
            );
        }
        let (gas_limit, max_fee) = self.gas_plan(data);
        let deploy_limit = data
            .deployment
            .as_ref()
            .map_or(0, |d| self.deploy_gas_limit(d.gas_estimate));
        if data.signer_balance < U256::from(gas_limit + deploy_limit) * U256::from(max_fee) {
            tracing::error!(network = %self.chain_id, signer = %address, "facilitator signer cannot pay gas");
            return Settlement::failed(
                Reason::FacilitatorInsufficientGas,
                "the facilitator cannot pay gas on this network right now; retry later",
                Some(payer),
                "",
            );
        }
        let fees = (max_fee, data.priority_fee);
        let new_entry = NewEntry {
            network: self.chain_id.to_string(),
            payment_key: key,
            digest: digest.clone(),
            x402_version: match payment.version {
                X402Version::V1 => 1,
                X402Version::V2 => 2,
            },
            payer: payer.clone(),
            signer: address.to_checksum(None),
            valid_before: i64::try_from(auth.valid_before).unwrap_or(i64::MAX),
        };
        // An ERC-6492 wallet is deployed by the transaction just before the transfer.
        let count = if data.deployment.is_some() { 2 } else { 1 };
        let sign = |nonce: u64| -> Result<SignedTransaction, String> {
            let mut next = nonce;
            let prelude = match &data.deployment {
                Some(d) => {
                    let call = (d.factory, &d.calldata, deploy_limit);
                    let (_, raw) = self.sign_transaction(signer, fees, call, next)?;
                    next += 1;
                    Some(hex(&raw))
                }
                None => None,
            };
            let call = (checked.asset, &checked.calldata, gas_limit);
            let (hash, raw) = self.sign_transaction(signer, fees, call, next)?;
            Ok(SignedTransaction {
                hash: hash.to_string(),
                raw: hex(&raw),
                prelude,
            })
        };
        let mut floor = data.chain_nonce;
        let (claim, mismatch) = loop {
            match self
                .ledger
                .record_signed(&new_entry, floor, count, &sign)
                .await
            {
                Ok(recorded) => break recorded,
                Err(RecordError::NeedsChainNonce) if floor.is_none() => {
                    // The ledger lost this signer (or never had it): ask the chain once.
                    match self.pending_nonce(address).await {
                        Ok(n) => floor = Some(n),
                        Err(e) => return Settlement::from_verdict(self.rpc_refusal(e, &payer)),
                    }
                }
                Err(RecordError::Ledger(e)) => {
                    return ledger_refusal(&self.chain_id.to_string(), e, Some(payer))
                }
                Err(other) => {
                    return Settlement::failed(
                        Reason::UnexpectedSettleError,
                        other.to_string(),
                        Some(payer),
                        "",
                    )
                }
            }
        };
        signer.seeded.store(true, Ordering::Release);
        if let Some(mismatch) = mismatch {
            self.report_mismatch(&new_entry.signer, mismatch);
        }
        match claim {
            Claim::Recorded(entry) => self.drive(entry, true).await,
            // A concurrent request (here or on another instance) recorded it first.
            Claim::Existing(entry) => self.resume(entry, &digest).await,
        }
    }

    /// A payment the ledger already knows: its answer, never a second transaction.
    async fn resume(&self, entry: Entry, digest: &str) -> Settlement {
        if !x402_protocol::digest_matches(&entry.digest, digest) {
            return Settlement::failed(
                Reason::ExactEvmNonceAlreadyUsed,
                "this authorization was already submitted with a different payload",
                Some(entry.payer),
                "",
            );
        }
        match entry.state {
            EntryState::Confirmed | EntryState::Failed => {
                recorded_answer(&entry, Reason::ExactEvmTransactionFailed)
            }
            EntryState::Submitted => {
                // A retry after `settlement_pending`: the same transaction's outcome.
                if let Ok(Some(status)) = self.receipt(&entry.tx_hash).await {
                    return self.record_outcome(&entry, status).await;
                }
                self.drive(entry, true).await
            }
        }
    }

    /// Writes a mined transaction's outcome; when another request or instance finished the
    /// entry first, its answer wins.
    async fn record_outcome(&self, entry: &Entry, success: bool) -> Settlement {
        let settlement = if success {
            Settlement::settled(entry.payer.clone(), entry.tx_hash.clone())
        } else {
            // The payer's doing (funds or authorization moved first) is answered as theirs.
            let (reason, message) = match self.payer_caused_revert(entry).await {
                Some(cause) => cause,
                None => (
                    Reason::ExactEvmTransactionFailed,
                    "settlement transaction reverted on chain".to_owned(),
                ),
            };
            Settlement::failed(
                reason,
                message,
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            )
        };
        let state = if success {
            EntryState::Confirmed
        } else {
            EntryState::Failed
        };
        self.finish(entry, state, settlement).await
    }

    async fn finish(&self, entry: &Entry, state: EntryState, settlement: Settlement) -> Settlement {
        self.ledger
            .settle_entry(entry, state, settlement, Reason::ExactEvmTransactionFailed)
            .await
    }

    /// Broadcasts the entry's signed transaction(s) and, with `wait`, waits for the outcome.
    async fn drive(&self, entry: Entry, wait: bool) -> Settlement {
        if let Some(prelude) = &entry.prelude_tx {
            match self.broadcast(prelude).await {
                Ok(Ok(())) => {}
                // Mined before (a re-send), or lost to another transaction at its nonce.
                Ok(Err(node)) if nonce_taken(&node) => {
                    if let Some(settlement) = self.deploy_again_if_lost(&entry).await {
                        return settlement;
                    }
                }
                Ok(Err(node)) => return self.refused_broadcast(&entry, &node),
                Err(e) => {
                    return pending_answer(&entry, format!("broadcast outcome unknown ({e})"))
                }
            }
        }
        match self.broadcast(&entry.raw_tx).await {
            Ok(Ok(())) if wait => self.conclude(&entry).await,
            Ok(Ok(())) => pending_answer(&entry, "transaction sent"),
            Ok(Err(node)) if nonce_taken(&node) => self.nonce_taken(entry, &node).await,
            Ok(Err(node)) => self.refused_broadcast(&entry, &node),
            Err(e) => pending_answer(&entry, format!("broadcast outcome unknown ({e})")),
        }
    }

    fn refused_broadcast(&self, entry: &Entry, node: &NodeError) -> Settlement {
        tracing::warn!(network = %self.chain_id, tx_hash = %entry.tx_hash, error = %node.message, "node refused a recorded settlement transaction; it stays in the ledger and is sent again");
        if node
            .message
            .to_ascii_lowercase()
            .contains("insufficient funds")
        {
            return Settlement::failed(
                Reason::FacilitatorInsufficientGas,
                "the facilitator cannot pay gas on this network right now; the signed transaction is kept and sent again; retry the same request",
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            );
        }
        pending_answer(
            entry,
            format!("node refused the broadcast ({})", node.message),
        )
    }

    /// Final answer for a broadcast transaction, or `settlement_pending`.
    async fn conclude(&self, entry: &Entry) -> Settlement {
        match self.wait_receipt(&entry.tx_hash).await {
            Ok(Some(status)) => self.record_outcome(entry, status).await,
            Ok(None) => pending_answer(entry, "transaction broadcast, not yet confirmed"),
            Err(e) => pending_answer(
                entry,
                format!("transaction broadcast, receipt unavailable ({e})"),
            ),
        }
    }

    /// An ERC-6492 deployment whose nonce went to another transaction while the transfer's
    /// nonce is still free: sent as it is, the transfer would revert against an empty
    /// wallet. The deployment is signed again at the transfer's nonce (so no gap is left)
    /// and the transfer at a fresh nonce after it. `None`: the deployment landed (or the
    /// transfer's nonce is taken too, which its own broadcast handles); go on as recorded.
    async fn deploy_again_if_lost(&self, entry: &Entry) -> Option<Settlement> {
        let deploy = decode_recorded(entry.prelude_tx.as_deref()?)?;
        let transfer = decode_recorded(&entry.raw_tx)?;
        let wallet = entry.payment_key.split('/').nth(1)?;
        let signer = self.signer_named(&entry.signer)?;
        let address = signer.signer.address().to_string();
        let calls: Vec<(&'static str, Value)> = vec![
            (
                "eth_getTransactionReceipt",
                json!([deploy.hash.to_string()]),
            ),
            ("eth_getCode", json!([wallet, "latest"])),
            ("eth_getTransactionCount", json!([address, "latest"])),
            ("eth_getTransactionCount", json!([address, "pending"])),
            ("eth_gasPrice", json!([])),
            ("eth_maxPriorityFeePerGas", json!([])),
        ];
        let results = match self.rpc.batch(&calls).await {
            Ok(results) if results.len() == calls.len() => results,
            Ok(_) => return Some(pending_answer(entry, "node answered a batch partially")),
            Err(e) => return Some(pending_answer(entry, format!("node unavailable ({e})"))),
        };
        let deployed = matches!(&results[1], Ok(Value::String(code)) if !code.trim_start_matches("0x").is_empty());
        if matches!(&results[0], Ok(Value::Object(_))) || deployed {
            return None;
        }
        let (Some(latest), Some(pending), Some(gas_price)) = (
            result_u64(&results[2]),
            result_u64(&results[3]),
            result_u128(&results[4]),
        ) else {
            return Some(pending_answer(entry, "node gave no account nonce or fee"));
        };
        if latest > transfer.nonce
            || entry.valid_before <= now_secs() as i64 + VALID_BEFORE_MARGIN as i64
        {
            // The transfer's nonce is taken too (its own broadcast finds out and builds the
            // replacement), or the authorization is about to expire (the recorded transfer
            // fills its nonce and fails; a new deployment would be wasted).
            return None;
        }
        // A node may count a nonce as used before it serves the receipt: give our own
        // deployment a moment to show up before calling it lost.
        if let Ok(Some(_)) = self
            .wait_receipt_within(&deploy.hash.to_string(), LOST_DEPLOYMENT_WAIT)
            .await
        {
            return None;
        }
        let fees = replacement_fees(gas_price, result_u128(&results[5]).unwrap_or(0));
        let sign = |nonce: u64| -> Result<SignedTransaction, String> {
            if nonce <= transfer.nonce {
                return Err(format!(
                    "fresh nonce {nonce} is not after the transfer's {}",
                    transfer.nonce
                ));
            }
            let (_, prelude) =
                self.sign_transaction(signer, fees, deploy.call(), transfer.nonce)?;
            let (hash, raw) = self.sign_transaction(signer, fees, transfer.call(), nonce)?;
            Ok(SignedTransaction {
                hash: hash.to_string(),
                raw: hex(&raw),
                prelude: Some(hex(&prelude)),
            })
        };
        let replaced = self
            .ledger
            .replace_transaction(entry, Some(pending), 1, sign)
            .await;
        Some(
            self.send_replacement(entry, replaced, "wallet deployment lost to another transaction at its nonce; deployed again at the transfer's nonce and the transfer sent after it")
                .await,
        )
    }

    /// The node says the transaction's account nonce is taken. Only when the chain proves
    /// that our transaction can never land (its nonce mined by another transaction) and
    /// the authorization is still unused and alive is a new transaction built; the ledger
    /// keeps every hash tried.
    async fn nonce_taken(&self, entry: Entry, node: &NodeError) -> Settlement {
        let Some(signer) = self.signer_named(&entry.signer) else {
            return pending_answer(&entry, "the entry's signer is not configured here");
        };
        let mut key = entry.payment_key.split('/');
        let (Some(asset), Some(from), Some(auth_nonce)) = (
            key.next().and_then(|a| Address::from_str(a).ok()),
            key.next().and_then(|a| Address::from_str(a).ok()),
            key.next().and_then(|n| B256::from_str(n).ok()),
        ) else {
            return pending_answer(&entry, "unreadable payment key");
        };
        let address = signer.signer.address().to_string();
        let state_call = authorizationStateCall {
            authorizer: from,
            nonce: auth_nonce,
        }
        .abi_encode();
        let mut calls: Vec<(&'static str, Value)> = vec![
            ("eth_getTransactionReceipt", json!([entry.tx_hash])),
            ("eth_getTransactionCount", json!([address, "latest"])),
            ("eth_getTransactionCount", json!([address, "pending"])),
            (
                "eth_call",
                json!([{"to": asset.to_string(), "data": hex(&state_call)}, "latest"]),
            ),
            ("eth_gasPrice", json!([])),
            ("eth_maxPriorityFeePerGas", json!([])),
        ];
        if entry.prelude_tx.is_some() {
            // Did the ERC-6492 wallet deployment land? If its nonce went to another
            // transaction too, the replacement must deploy the wallet again first.
            calls.push(("eth_getCode", json!([from.to_string(), "latest"])));
        }
        let results = match self.rpc.batch(&calls).await {
            Ok(results) if results.len() == calls.len() => results,
            Ok(_) => return pending_answer(&entry, "node answered a batch partially"),
            Err(e) => return pending_answer(&entry, format!("node unavailable ({e})")),
        };
        if let Ok(Value::Object(receipt)) = &results[0] {
            let status = receipt.get("status").and_then(parse_u256);
            return self
                .record_outcome(&entry, status == Some(U256::from(1)))
                .await;
        }
        let (Some(latest), Some(pending)) = (result_u64(&results[1]), result_u64(&results[2]))
        else {
            return pending_answer(&entry, "node gave no account nonce");
        };
        let Some(call) = decode_recorded(&entry.raw_tx) else {
            return pending_answer(&entry, "recorded transaction cannot be decoded");
        };
        let transfer_nonce = call.nonce;
        if latest <= transfer_nonce {
            // Another transaction holds the nonce in the pool only: not proof it wins.
            return pending_answer(
                &entry,
                format!("node refused the broadcast ({})", node.message),
            );
        }
        let used = result_bytes(&results[3]).map(|b| b.len() >= 32 && b[31] == 1);
        if used == Some(true) {
            // The authorization is spent. Most likely by this very transaction: a node can
            // count its nonce as used before it serves the receipt. Wait for the receipt
            // before concluding that someone else spent it.
            if let Ok(Some(status)) = self.wait_receipt(&entry.tx_hash).await {
                return self.record_outcome(&entry, status).await;
            }
            self.report_mismatch(
                &entry.signer,
                NonceMismatch {
                    ledger: transfer_nonce,
                    chain: latest,
                },
            );
            let settlement = Settlement::failed(
                Reason::ExactEvmNonceAlreadyUsed,
                "the authorization was used by a transaction this facilitator did not send",
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            );
            return self.finish(&entry, EntryState::Failed, settlement).await;
        }
        self.report_mismatch(
            &entry.signer,
            NonceMismatch {
                ledger: transfer_nonce,
                chain: latest,
            },
        );
        if entry.valid_before <= now_secs() as i64 + VALID_BEFORE_MARGIN as i64 {
            let settlement = Settlement::failed(
                Reason::ExactEvmValidBefore,
                "the authorization expired before its transaction could land",
                Some(entry.payer.clone()),
                entry.tx_hash.clone(),
            );
            return self.finish(&entry, EntryState::Failed, settlement).await;
        }
        let (Some(gas_price), Some(used_known)) = (result_u128(&results[4]), used) else {
            return pending_answer(&entry, "node gave no fee or authorization state");
        };
        debug_assert!(!used_known);
        let fees = replacement_fees(gas_price, result_u128(&results[5]).unwrap_or(0));
        let redeploy = match entry.prelude_tx.as_deref() {
            None => None,
            Some(prelude) => {
                let Ok(Value::String(code)) = &results[6] else {
                    return pending_answer(&entry, "node gave no wallet code");
                };
                if code.trim_start_matches("0x").is_empty() {
                    let Some(deploy) = decode_recorded(prelude) else {
                        return pending_answer(&entry, "recorded deployment cannot be decoded");
                    };
                    Some(deploy)
                } else {
                    None
                }
            }
        };
        let count = if redeploy.is_some() { 2 } else { 1 };
        let sign = |nonce: u64| -> Result<SignedTransaction, String> {
            let mut next = nonce;
            let prelude = match &redeploy {
                Some(deploy) => {
                    let (_, raw) = self.sign_transaction(signer, fees, deploy.call(), next)?;
                    next += 1;
                    Some(hex(&raw))
                }
                None => None,
            };
            let (hash, raw) = self.sign_transaction(signer, fees, call.call(), next)?;
            Ok(SignedTransaction {
                hash: hash.to_string(),
                raw: hex(&raw),
                prelude,
            })
        };
        let replaced = self
            .ledger
            .replace_transaction(&entry, Some(pending), count, sign)
            .await;
        self.send_replacement(&entry, replaced, "settlement transaction could never land (nonce taken by another transaction); sent a replacement").await
    }

    /// Sends what [`Ledger::replace_transaction`] stored (deployment first, if any) and
    /// concludes; when another request or instance moved the entry on first, its state is
    /// the answer.
    async fn send_replacement(
        &self,
        entry: &Entry,
        replaced: Result<Option<(Entry, Option<NonceMismatch>)>, RecordError>,
        why: &'static str,
    ) -> Settlement {
        let replaced = match replaced {
            Ok(Some((replaced, _))) => replaced,
            Ok(None) => {
                return match self.ledger.entry(&entry.network, &entry.payment_key).await {
                    Ok(Some(current)) if current.state != EntryState::Submitted => {
                        recorded_answer(&current, Reason::ExactEvmTransactionFailed)
                    }
                    Ok(Some(current)) => pending_answer(&current, "transaction replaced"),
                    _ => pending_answer(entry, "transaction replaced elsewhere"),
                };
            }
            Err(e) => return pending_answer(entry, format!("ledger unavailable ({e})")),
        };
        metrics::counter!(SETTLEMENT_REPLACEMENTS, "network" => self.chain_id.to_string())
            .increment(1);
        tracing::warn!(
            network = %self.chain_id,
            old_tx_hash = %entry.tx_hash,
            new_tx_hash = %replaced.tx_hash,
            "{why}"
        );
        if let Some(prelude) = &replaced.prelude_tx {
            match self.broadcast(prelude).await {
                Ok(Ok(())) => {}
                Ok(Err(node)) => return self.refused_broadcast(&replaced, &node),
                Err(e) => {
                    return pending_answer(&replaced, format!("broadcast outcome unknown ({e})"))
                }
            }
        }
        match self.broadcast(&replaced.raw_tx).await {
            Ok(Ok(())) => self.conclude(&replaced).await,
            Ok(Err(node)) => self.refused_broadcast(&replaced, &node),
            Err(e) => pending_answer(&replaced, format!("broadcast outcome unknown ({e})")),
        }
    }

    /// One pass over open ledger entries older than `min_age`: confirm what landed, send
    /// again what the node lost, replace what can never land.
    async fn reconcile_open(&self, min_age: Duration) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let network = self.chain_id.to_string();
        if min_age.is_zero() {
            self.lower_idle_nonces().await;
        }
        let entries = match self.ledger.open_entries(&network, min_age, 1000).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(network = %network, error = %e, "reconciler cannot read the ledger");
                report.errors += 1;
                return report;
            }
        };
        for entry in entries {
            report.examined += 1;
            match self.receipt(&entry.tx_hash).await {
                Ok(Some(status)) => {
                    let settled = self.record_outcome(&entry, status).await;
                    if settled.success {
                        report.confirmed += 1;
                    } else {
                        report.failed += 1;
                    }
                    tracing::info!(network = %network, tx_hash = %entry.tx_hash, success = settled.success, "reconciled settlement: found on chain");
                    continue;
                }
                Ok(None) => {}
                Err(_) => {
                    report.errors += 1;
                    continue;
                }
            }
            let in_pool = matches!(
                self.rpc
                    .call("eth_getTransactionByHash", json!([entry.tx_hash]))
                    .await,
                Ok(Ok(Value::Object(_)))
            );
            if in_pool {
                continue;
            }
            let old_hash = entry.tx_hash.clone();
            let outcome = self.drive(entry, false).await;
            match outcome.reason {
                _ if outcome.transaction != old_hash && !outcome.transaction.is_empty() => {
                    report.replaced += 1
                }
                None => report.confirmed += 1,
                Some(Reason::SettlementPending) => report.resent += 1,
                Some(r) if r.is_retryable() => report.errors += 1,
                Some(_) => report.failed += 1,
            }
            tracing::info!(network = %network, tx_hash = %outcome.transaction, reason = outcome.reason.map(Reason::as_str), "reconciled settlement: not in the node's pool, sent again");
        }
        report
    }
}

impl ExactEvm {
    /// At start: a ledger nonce ahead of the chain with nothing open for that signer can
    /// never be filled (a reset chain, a ledger of another chain's history); lower it.
    async fn lower_idle_nonces(&self) {
        for signer in &self.signers {
            let address = signer.signer.address();
            let Ok(pending) = self.pending_nonce(address).await else {
                continue;
            };
            let name = address.to_checksum(None);
            match self
                .ledger
                .lower_idle_nonce(&self.chain_id.to_string(), &name, pending)
                .await
            {
                Ok(Some(mismatch)) => {
                    metrics::counter!(NONCE_MISMATCHES, "network" => self.chain_id.to_string())
                        .increment(1);
                    tracing::warn!(
                        network = %self.chain_id,
                        signer = %name,
                        local_nonce = mismatch.ledger,
                        chain_nonce = mismatch.chain,
                        "nonce mismatch: the ledger was ahead of the chain with nothing in flight; lowered to the chain's pending nonce"
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(network = %self.chain_id, error = %e, "cannot check the ledger's nonces")
                }
            }
        }
    }
}

/// Whether a node refusal says it already has these exact bytes (geth: "already known",
/// anvil: "transaction already imported", others: "known transaction").
fn already_known(node: &NodeError) -> bool {
    let text = node.message.to_ascii_lowercase();
    text.contains("already known")
        || text.contains("already imported")
        || text.contains("known transaction")
        || text.contains("alreadyknown")
}

/// Whether a node refusal means the transaction's account nonce is already used.
fn nonce_taken(node: &NodeError) -> bool {
    let text = node.message.to_ascii_lowercase();
    text.contains("nonce too low")
        || text.contains("replacement transaction underpriced")
        || text.contains("nonce has already been used")
}

/// What a recorded signed transaction does, read back from its bytes (the ledger keeps
/// bytes, so re-signing and nonce checks work from what was really signed).
struct RecordedTx {
    to: Address,
    input: Bytes,
    gas_limit: u64,
    nonce: u64,
    hash: B256,
}

impl RecordedTx {
    /// `(to, input, gas limit)`, as [`ExactEvm::sign_transaction`] takes a call.
    fn call(&self) -> (Address, &Bytes, u64) {
        (self.to, &self.input, self.gas_limit)
    }
}

fn decode_recorded(raw_hex: &str) -> Option<RecordedTx> {
    use alloy::consensus::Transaction as _;
    use alloy::eips::eip2718::Decodable2718;
    let bytes = parse_hex_bytes(raw_hex)?;
    let envelope = TxEnvelope::decode_2718(&mut bytes.as_slice()).ok()?;
    Some(RecordedTx {
        to: envelope.to()?,
        input: envelope.input().clone(),
        gas_limit: envelope.gas_limit(),
        nonce: envelope.nonce(),
        hash: *envelope.tx_hash(),
    })
}

#[async_trait]
impl SchemeHandler for ExactEvm {
    fn scheme(&self) -> &str {
        "exact"
    }

    fn network(&self) -> &ChainId {
        &self.chain_id
    }

    fn signer_addresses(&self) -> Vec<String> {
        self.signers
            .iter()
            .map(|s| s.signer.address().to_checksum(None))
            .collect()
    }

    async fn health(&self) -> Vec<HealthCheck> {
        self.health_checks().await
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        let (auth, _) = Self::parse_authorization(payment).ok()?;
        Some(auth.from.to_checksum(None))
    }

    async fn is_recorded(&self, payment: &Payment) -> bool {
        let Some((key, _)) = Self::payment_key(payment) else {
            return false;
        };
        matches!(
            self.ledger.entry(&self.chain_id.to_string(), &key).await,
            Ok(Some(_))
        )
    }

    async fn verify(&self, payment: &Payment) -> Verdict {
        match self.check(payment, None, false).await {
            Ok(checked) => Verdict::valid(checked.payer.to_checksum(None)),
            Err(verdict) => verdict,
        }
    }

    async fn settle(&self, payment: &Payment) -> Settlement {
        self.settle_payment(payment).await
    }

    async fn reconcile(&self, min_age: Duration) -> ReconcileReport {
        self.reconcile_open(min_age).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::SignerSync;

    #[test]
    fn libsecp256k1_recovery_agrees_with_alloy() {
        let signer = PrivateKeySigner::random();
        for i in 0..32u8 {
            let digest = alloy::primitives::keccak256([i]);
            let signature = signer.sign_hash_sync(&digest).unwrap();
            let bytes = signature.as_bytes();
            assert_eq!(recover_signer(&digest, &bytes), Some(signer.address()));
            // v as 0/1 is accepted too; anything else is not a signature.
            let mut raw = bytes;
            raw[64] -= 27;
            assert_eq!(recover_signer(&digest, &raw), Some(signer.address()));
            raw[64] = 29;
            assert_eq!(recover_signer(&digest, &raw), None);
            // Another digest recovers someone else.
            let other = alloy::primitives::keccak256([i, i]);
            assert_ne!(recover_signer(&other, &bytes), Some(signer.address()));
        }
        assert_eq!(recover_signer(&B256::ZERO, &[0u8; 64]), None);
    }

    #[test]
    fn hex_parsing_refuses_non_ascii_without_panicking() {
        assert_eq!(parse_hex_bytes("0x0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(parse_hex_bytes("0aff"), Some(vec![0x0a, 0xff]));
        for bad in ["0xaé1", "aé1", "0x0", "0xzz", "é", "0x\u{1F600}00"] {
            assert_eq!(parse_hex_bytes(bad), None, "{bad}");
        }
    }
}
