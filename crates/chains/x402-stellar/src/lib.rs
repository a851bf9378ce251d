//! Stellar for the x402 facilitator: one [`StellarNetwork`] per network (its node, the
//! fee-paying accounts, health and reconciliation) and the `exact` scheme on it
//! (`specs/schemes/exact/scheme_exact_stellar.md`, x402 v2 only).
//!
//! A payment is a transaction whose one operation invokes a SEP-41 `transfer` on the asset
//! contract, authorized by the payer's signed address-credential entries. Verify runs the
//! payload's checks ([`payload`]) and one simulation of the transaction this facilitator
//! would submit (`check.rs`). Settle is the shared engine of `x402-settlement`: the
//! transaction, rebuilt with a fee-paying account of ours as source, is signed at a
//! ledger-allocated sequence number and recorded before it is sent.

#![forbid(unsafe_code)]

mod chain;
mod check;
pub mod config;
mod exact;
mod health;
pub mod payload;

pub use config::{StellarOptions, StellarSection};
use exact::ExactStellar;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ed25519_dalek::{Signer as _, SigningKey};
use stellar_xdr::{
    DecoratedSignature, InvokeHostFunctionOp, Limits, Memo, MuxedAccount, Operation, OperationBody,
    Preconditions, SequenceNumber, Signature, SignatureHint, SorobanTransactionData, TimeBounds,
    TimePoint, Transaction, TransactionEnvelope, TransactionExt, TransactionV1Envelope, Uint256,
    WriteXdr,
};
use x402_ledger::{Ledger, SignedTransaction as Recorded};
use x402_protocol::{Chain, ChainId, HealthCheck, ReconcileReport, Scheme};
use x402_settlement::jsonrpc::JsonRpc;
use x402_settlement::Engine;

/// The network's minimum inclusion fee for a one-operation transaction, in stroops.
pub const BASE_FEE: u32 = 100;

/// The network passphrase of a CAIP-2 Stellar id: what every signature commits to.
pub fn passphrase(chain_id: &ChainId) -> Option<&'static str> {
    match chain_id.reference() {
        "pubnet" => Some("Public Global Stellar Network ; September 2015"),
        "testnet" => Some("Test SDF Network ; September 2015"),
        _ => None,
    }
}

/// Settings of one Stellar network.
#[derive(Clone)]
pub struct StellarSettings {
    /// CAIP-2 id (`stellar:pubnet`, `stellar:testnet`).
    pub chain_id: ChainId,
    /// RPC URLs in failover order (secrets).
    pub rpc_urls: Vec<String>,
    /// Secret seeds of the fee-paying accounts, `S…` (secrets).
    pub signer_keys: Vec<String>,
    /// The network's Stellar options (its configuration section).
    pub options: StellarOptions,
    /// How long `/settle` waits for the outcome.
    pub confirm_timeout: Duration,
    /// Limit on one RPC call.
    pub rpc_timeout: Duration,
    /// Deep health fails when a fee-paying account holds fewer stroops.
    pub min_signer_stroops: i64,
    /// The settlement ledger.
    pub ledger: Arc<Ledger>,
}

/// Why the network could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StellarSetupError {
    /// Not `stellar:pubnet` or `stellar:testnet`.
    #[error("{0} is not a Stellar network this facilitator knows the passphrase of")]
    NotStellar(String),
    /// A key that is not a Stellar secret seed (the key is not echoed).
    #[error("signer key #{0} is not a Stellar secret seed (S…)")]
    BadKey(usize),
    /// No signer key.
    #[error("no signer key configured")]
    NoSigner,
    /// Bad RPC configuration.
    #[error("{0}")]
    Rpc(String),
}

/// One fee-paying account: it is the source of every settlement it sends.
pub(crate) struct Signer {
    pub(crate) address: String,
    public: [u8; 32],
    key: SigningKey,
}

impl Signer {
    fn from_seed(seed: &str) -> Option<Signer> {
        let secret = stellar_strkey::ed25519::PrivateKey::from_string(seed.trim()).ok()?;
        let key = SigningKey::from_bytes(&secret.0);
        let public = key.verifying_key().to_bytes();
        Some(Signer {
            address: format!("{}", stellar_strkey::ed25519::PublicKey(public)),
            public,
            key,
        })
    }

    /// The account as a transaction source.
    pub(crate) fn account(&self) -> MuxedAccount {
        MuxedAccount::Ed25519(Uint256(self.public))
    }
}

/// Whether `seed` is a secret seed this crate can sign with, checked at start-up before
/// anything is created on disk.
pub fn signer_key_is_valid(seed: &str) -> bool {
    Signer::from_seed(seed).is_some()
}

/// One Stellar network: its node, fee-paying accounts and settlements.
pub struct StellarNetwork {
    engine: Arc<Engine<StellarChain>>,
}

/// The schemes this crate serves on a Stellar network.
pub const SCHEMES: &[&str] = &["exact"];

/// Everything of one Stellar network the checks and the engine's chain operations use.
pub(crate) struct StellarChain {
    pub(crate) chain_id: ChainId,
    pub(crate) passphrase: &'static str,
    pub(crate) rpc: JsonRpc,
    pub(crate) signers: Vec<Signer>,
    pub(crate) options: StellarOptions,
    pub(crate) confirm_timeout: Duration,
    pub(crate) min_signer_stroops: i64,
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl StellarChain {
    /// The fee-paying accounts, `G…`, in configuration order.
    pub(crate) fn signer_addresses(&self) -> Vec<String> {
        self.signers.iter().map(|s| s.address.clone()).collect()
    }

    /// The signer a ledger entry names.
    pub(crate) fn signer_named(&self, address: &str) -> Option<&Signer> {
        self.signers.iter().find(|s| s.address == address)
    }

    /// The signer for a payment: spread over the accounts by the payment's identity, so
    /// one payment always goes to the same account.
    pub(crate) fn signer_for(&self, payment_key: &str) -> Option<&Signer> {
        self.signers.get(x402_settlement::signer_index(
            payment_key,
            self.signers.len(),
        ))
    }

    /// The unsigned transaction a check simulates: the first signer as source, the
    /// client's operation.
    pub(crate) fn simulation_envelope(&self, op: &InvokeHostFunctionOp) -> String {
        let Some(signer) = self.signers.first() else {
            return String::new();
        };
        let tx = transaction(signer, op, 0, BASE_FEE, 0, None);
        envelope(tx, Vec::new())
    }
}

/// The settlement transaction: `op` from `signer` at sequence `seq`, paying `fee`, valid
/// until `max_time` (0: no bound), with the simulated resources.
pub(crate) fn transaction(
    signer: &Signer,
    op: &InvokeHostFunctionOp,
    seq: i64,
    fee: u32,
    max_time: u64,
    data: Option<SorobanTransactionData>,
) -> Transaction {
    let operation = Operation {
        source_account: None,
        body: OperationBody::InvokeHostFunction(op.clone()),
    };
    Transaction {
        source_account: signer.account(),
        fee,
        seq_num: SequenceNumber(seq),
        cond: match max_time {
            0 => Preconditions::None,
            max => Preconditions::Time(TimeBounds {
                min_time: TimePoint(0),
                max_time: TimePoint(max),
            }),
        },
        memo: Memo::None,
        operations: vec![operation].try_into().unwrap_or_default(),
        ext: data.map_or(TransactionExt::V0, TransactionExt::V1),
    }
}

/// A v1 envelope of `tx` with `signatures`, as base64 XDR.
fn envelope(tx: Transaction, signatures: Vec<DecoratedSignature>) -> String {
    TransactionEnvelope::Tx(TransactionV1Envelope {
        tx,
        signatures: signatures.try_into().unwrap_or_default(),
    })
    .to_xdr_base64(Limits::none())
    .unwrap_or_default()
}

/// `tx` signed by `signer` on the network of `passphrase`, as the ledger records it.
pub(crate) fn sign(
    signer: &Signer,
    tx: Transaction,
    network_passphrase: &str,
) -> Result<Recorded, String> {
    let network_id = sha256(network_passphrase.as_bytes());
    let hash = tx.hash(network_id).map_err(|e| e.to_string())?;
    let signature = signer.key.sign(&hash);
    let decorated = DecoratedSignature {
        hint: SignatureHint([
            signer.public[28],
            signer.public[29],
            signer.public[30],
            signer.public[31],
        ]),
        signature: Signature(
            signature
                .to_bytes()
                .to_vec()
                .try_into()
                .map_err(|_| "signature length")?,
        ),
    };
    Ok(Recorded {
        hash: hash.iter().map(|b| format!("{b:02x}")).collect(),
        raw: envelope(tx, vec![decorated]),
        prelude: None,
    })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

impl StellarNetwork {
    /// Builds the network; keys are parsed here so a bad key stops start-up.
    pub fn new(settings: StellarSettings) -> Result<StellarNetwork, StellarSetupError> {
        let passphrase = passphrase(&settings.chain_id)
            .filter(|_| settings.chain_id.namespace() == "stellar")
            .ok_or_else(|| StellarSetupError::NotStellar(settings.chain_id.to_string()))?;
        if settings.signer_keys.is_empty() {
            return Err(StellarSetupError::NoSigner);
        }
        let mut signers = Vec::new();
        for (i, seed) in settings.signer_keys.iter().enumerate() {
            signers.push(Signer::from_seed(seed).ok_or(StellarSetupError::BadKey(i + 1))?);
        }
        let rpc = JsonRpc::new(&settings.rpc_urls, settings.rpc_timeout)
            .map_err(StellarSetupError::Rpc)?;
        let ops = StellarChain {
            chain_id: settings.chain_id,
            passphrase,
            rpc,
            signers,
            options: settings.options,
            confirm_timeout: settings.confirm_timeout,
            min_signer_stroops: settings.min_signer_stroops,
        };
        Ok(StellarNetwork {
            engine: Arc::new(Engine::new(ops, settings.ledger)),
        })
    }

    /// The scheme `name` on this network; `None` for a scheme this crate does not serve.
    pub fn scheme(&self, name: &str) -> Option<Arc<dyn Scheme>> {
        match name {
            "exact" => Some(Arc::new(x402_settlement::OnEngine(ExactStellar {
                engine: self.engine.clone(),
            }))),
            _ => None,
        }
    }
}

#[async_trait]
impl Chain for StellarNetwork {
    fn network(&self) -> &ChainId {
        &self.engine.chain().chain_id
    }

    fn signer_addresses(&self) -> Vec<String> {
        self.engine.chain().signer_addresses()
    }

    async fn health(&self) -> Vec<HealthCheck> {
        self.engine.chain().deep_health().await
    }

    async fn reconcile(&self, min_age: Duration) -> ReconcileReport {
        self.engine.reconcile(min_age).await
    }
}
