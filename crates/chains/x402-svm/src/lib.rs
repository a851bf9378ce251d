//! SVM chains (Solana, Fogo) for the x402 facilitator: the `exact` scheme.
//!
//! Verify runs the static checks of [`inspect`] (layout, fee payer isolation, compute
//! budget caps, mint, destination, amount, signatures), then signs as fee payer and
//! simulates the fully signed transaction on the node. Settle records the signed
//! transaction in the ledger before sending it, confirms it at the configured commitment,
//! and answers its signature; a retry or a duplicate reads the ledger and never sends a
//! second, different transaction.

#![forbid(unsafe_code)]

pub mod inspect;
pub mod rpc;

/// The Solana SDK pieces this crate is built on, for callers that build test transactions.
pub mod sdk {
    pub use base64;
    pub use bincode;
    pub use bs58;
    pub use solana_hash;
    pub use solana_instruction;
    pub use solana_keypair;
    pub use solana_message;
    pub use solana_pubkey;
    pub use solana_signature;
    pub use solana_signer;
    pub use solana_transaction;
}

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_ledger::answers::{ledger_refusal, pending_answer, recorded_answer};
use x402_ledger::{Claim, Entry, EntryState, Ledger, NewEntry, SignedTransaction};
use x402_protocol::{
    ChainId, HealthCheck, Payment, Reason, ReconcileReport, SchemeHandler, Settlement, Verdict,
    X402Version,
};

use crate::inspect::{Policy, Refused, Wanted};
use crate::rpc::{RpcUnavailable, SolanaRpc};

/// Settings of one SVM network.
#[derive(Clone)]
pub struct SvmSettings {
    /// CAIP-2 id (`solana:<genesis hash prefix>`).
    pub chain_id: ChainId,
    /// RPC URLs in failover order (secrets).
    pub rpc_urls: Vec<String>,
    /// Fee payer keypairs, base58 of the 64-byte keypair (secrets).
    pub fee_payer_keys: Vec<String>,
    /// Upper bound of the compute-unit limit a payment may set.
    pub max_compute_units: u32,
    /// Upper bound of the compute-unit price, micro-lamports per unit.
    pub max_compute_unit_price: u64,
    /// Programs allowed after the transfer (Memo and Lighthouse by default).
    pub optional_programs: Vec<String>,
    /// `confirmed` or `finalized`.
    pub commitment: String,
    /// How long `/settle` waits for confirmation.
    pub confirm_timeout: Duration,
    /// Limit on one RPC call.
    pub rpc_timeout: Duration,
    /// The node is a local stand-in whose genesis does not match the CAIP-2 reference
    /// (tests, demos); deep health otherwise fails on such a mismatch.
    pub local_stand_in: bool,
    /// Deep health fails when a fee payer holds fewer lamports.
    pub min_fee_payer_lamports: u64,
    /// The settlement ledger.
    pub ledger: Arc<Ledger>,
}

/// Why the handler could not be built.
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

/// `exact` on one SVM network.
pub struct ExactSvm {
    chain_id: ChainId,
    rpc: SolanaRpc,
    fee_payers: Vec<Keypair>,
    policy: Policy,
    commitment: String,
    confirm_timeout: Duration,
    local_stand_in: bool,
    min_fee_payer_lamports: u64,
    ledger: Arc<Ledger>,
}

/// A payment that passed every check, signed by the fee payer and simulated.
struct Ready {
    payer: String,
    fee_payer: Pubkey,
    signature: String,
    raw_b64: String,
}

/// A fee payer's keypair from its base58 64-byte form; `None` when it is not one.
fn fee_payer_keypair(key: &str) -> Option<Keypair> {
    let bytes = bs58::decode(key.trim()).into_vec().ok()?;
    Keypair::try_from(bytes.as_slice()).ok()
}

fn refusal(refused: Refused) -> Verdict {
    Verdict::invalid(refused.reason, refused.message, refused.payer)
}

/// Where a settlement transaction stands at the node, judged at our commitment level.
#[derive(Debug, PartialEq)]
enum Landing {
    /// The node has no status for it: it never landed (so far).
    Unseen,
    /// Seen, but below our commitment: it may still land, fail, or be dropped with a
    /// fork, so nothing is concluded yet.
    Below,
    /// At our commitment: `Ok` transferred, `Err` failed on chain with that error.
    Final(Result<(), String>),
}

impl Landing {
    /// Classifies one entry of a `getSignatureStatuses` answer (`None` or JSON null when
    /// the node knows nothing of the signature). `commitment` is `processed`,
    /// `confirmed` or `finalized`; an error counts only once it reached that level too.
    fn of(status: Option<&Value>, commitment: &str) -> Landing {
        let Some(status) = status.filter(|s| !s.is_null()) else {
            return Landing::Unseen;
        };
        let level = status
            .get("confirmationStatus")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let reached = match commitment {
            "finalized" => level == "finalized",
            "processed" => true,
            _ => level == "confirmed" || level == "finalized",
        };
        if !reached {
            return Landing::Below;
        }
        match status.get("err").filter(|e| !e.is_null()) {
            Some(error) => Landing::Final(Err(error.to_string())),
            None => Landing::Final(Ok(())),
        }
    }
}

impl ExactSvm {
    /// Whether `key` is a fee-payer key this crate can use (the base58 64-byte keypair),
    /// checked at start-up before anything is created on disk.
    pub fn fee_payer_key_is_valid(key: &str) -> bool {
        fee_payer_keypair(key).is_some()
    }

    /// Builds the handler; keys are parsed here so a bad key stops start-up.
    pub fn new(settings: SvmSettings) -> Result<ExactSvm, SvmSetupError> {
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
        for program in &settings.optional_programs {
            optional_programs.push(
                Pubkey::from_str(program)
                    .map_err(|_| SvmSetupError::BadProgram(program.clone()))?,
            );
        }
        let policy = Policy {
            fee_payers: fee_payers.iter().map(Keypair::pubkey).collect(),
            max_compute_units: settings.max_compute_units,
            max_compute_unit_price: settings.max_compute_unit_price,
            optional_programs,
        };
        let rpc =
            SolanaRpc::new(&settings.rpc_urls, settings.rpc_timeout).map_err(SvmSetupError::Rpc)?;
        Ok(ExactSvm {
            chain_id: settings.chain_id,
            rpc,
            fee_payers,
            policy,
            commitment: settings.commitment,
            confirm_timeout: settings.confirm_timeout,
            local_stand_in: settings.local_stand_in,
            min_fee_payer_lamports: settings.min_fee_payer_lamports,
            ledger: settings.ledger,
        })
    }

    fn rpc_refusal(&self, error: RpcUnavailable, payer: Option<String>) -> Verdict {
        tracing::warn!(network = %self.chain_id, error = %error, "RPC unavailable");
        Verdict::invalid(
            Reason::RpcUnavailable,
            format!(
                "the facilitator cannot reach {} right now; retry later",
                self.chain_id
            ),
            payer,
        )
    }

    /// [`Self::check_payment`], with every refusal naming the transfer authority whenever
    /// the payload shows one (refusals found before the transfer is read carry none).
    async fn check(&self, payment: &Payment) -> Result<Ready, Verdict> {
        self.check_payment(payment).await.map_err(|mut verdict| {
            if verdict.payer.is_none() {
                verdict.payer = SchemeHandler::claimed_payer(self, payment);
            }
            verdict
        })
    }

    /// Static checks, the fee payer's signature, and one simulation on the node.
    async fn check_payment(&self, payment: &Payment) -> Result<Ready, Verdict> {
        if payment.scheme != "exact" || payment.payload_scheme != "exact" {
            return Err(Verdict::invalid(
                Reason::UnsupportedScheme,
                "scheme is not exact",
                None,
            ));
        }
        if payment.payload_network.as_ref() != Some(&self.chain_id) {
            return Err(Verdict::invalid(
                Reason::ExactSvmNetworkMismatch,
                format!("payload is for another network than {}", self.chain_id),
                None,
            ));
        }
        let Some(encoded) = payment.payload.get("transaction").and_then(Value::as_str) else {
            return Err(Verdict::invalid(
                Reason::ExactSvmUndecodable,
                "payload.transaction is missing",
                None,
            ));
        };
        let transaction = inspect::decode(encoded).map_err(refusal)?;
        let extra = payment.requirements.extra.as_ref();
        let text = |name: &str| extra.and_then(|e| e.get(name)).and_then(Value::as_str);
        let wanted = Wanted {
            asset: &payment.requirements.asset,
            pay_to: &payment.requirements.pay_to,
            amount: payment.requirements.amount.as_str(),
            fee_payer: text("feePayer"),
            memo: text("memo"),
        };
        let inspected = inspect::inspect(transaction, &wanted, &self.policy).map_err(refusal)?;
        let payer = inspected.payer.to_string();
        let mut signed: VersionedTransaction = inspected.transaction;
        let Some(keypair) = self
            .fee_payers
            .iter()
            .find(|k| k.pubkey() == inspected.fee_payer)
        else {
            return Err(Verdict::invalid(
                Reason::ExactSvmFeePayerNotManaged,
                "fee payer key not loaded",
                Some(payer),
            ));
        };
        signed.signatures[0] = keypair.sign_message(&signed.message.serialize());
        let raw = bincode::serialize(&signed).map_err(|e| {
            Verdict::invalid(
                Reason::UnexpectedVerifyError,
                e.to_string(),
                Some(payer.clone()),
            )
        })?;
        let raw_b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        self.simulate(&raw_b64, &payer).await?;
        Ok(Ready {
            payer,
            fee_payer: inspected.fee_payer,
            signature: signed.signatures[0].to_string(),
            raw_b64,
        })
    }

    /// One `simulateTransaction` of the fee-payer-signed transaction. A failed simulation
    /// or a transaction the node calls malformed (invalid params, bad signature) is the
    /// payer's; any other node error (rate limit, node behind, internal) is ours.
    async fn simulate(&self, raw_b64: &str, payer: &str) -> Result<(), Verdict> {
        let simulated = self
            .rpc
            .call(
                "simulateTransaction",
                json!([raw_b64, {"encoding": "base64", "sigVerify": true, "commitment": self.commitment}]),
            )
            .await
            .map_err(|e| self.rpc_refusal(e, Some(payer.to_owned())))?;
        let refuse = |reason, message: String| {
            Err(Verdict::invalid(reason, message, Some(payer.to_owned())))
        };
        match simulated {
            Ok(result) => match result.get("value").and_then(|v| v.get("err")) {
                Some(error) if !error.is_null() => refuse(
                    Reason::ExactSvmSimulationFailed,
                    format!("simulation failed: {error}"),
                ),
                _ => Ok(()),
            },
            Err(node) if node.code == -32602 || node.code == -32003 => refuse(
                Reason::ExactSvmSimulationFailed,
                format!("simulation refused: {}", node.message),
            ),
            Err(node) => {
                tracing::warn!(network = %self.chain_id, code = node.code, "simulateTransaction failed at the node");
                refuse(
                    Reason::RpcUnavailable,
                    format!(
                        "the node could not simulate the transaction (error {}); retry later",
                        node.code
                    ),
                )
            }
        }
    }

    /// The payment's identity in the ledger: the payer's signature over the message
    /// (one message, one payment, whoever sends it).
    /// The payload's transaction, when it decodes (no other check).
    fn payload_transaction(payment: &Payment) -> Option<VersionedTransaction> {
        let encoded = payment.payload.get("transaction")?.as_str()?;
        inspect::decode(encoded).ok()
    }

    fn payment_key(payment: &Payment) -> Option<String> {
        let transaction = Self::payload_transaction(payment)?;
        let payer_signature = transaction.signatures.get(1)?;
        Some(format!("tx/{payer_signature}"))
    }

    async fn settle_payment(&self, payment: &Payment) -> Settlement {
        let Some(key) = Self::payment_key(payment) else {
            return match self.check(payment).await {
                Err(verdict) => Settlement::from_verdict(verdict),
                Ok(_) => Settlement::failed(Reason::InvalidPayload, "malformed payment", None, ""),
            };
        };
        let digest = payment.request_digest();
        let network = self.chain_id.to_string();
        match self.ledger.entry(&network, &key).await {
            Err(e) => {
                let payer = self.claimed_payer(payment);
                return ledger_refusal(&self.chain_id.to_string(), e, payer);
            }
            Ok(Some(entry)) => return self.resume(entry, &digest).await,
            Ok(None) => {}
        }
        let ready = match self.check(payment).await {
            Ok(ready) => ready,
            Err(verdict) => {
                // A duplicate racing its original sees the transaction already processed.
                if let Ok(Some(entry)) = self.ledger.entry(&network, &key).await {
                    return self.resume(entry, &digest).await;
                }
                return Settlement::from_verdict(verdict);
            }
        };
        let new_entry = NewEntry {
            network,
            payment_key: key,
            digest: digest.clone(),
            x402_version: match payment.version {
                X402Version::V1 => 1,
                X402Version::V2 => 2,
            },
            payer: ready.payer.clone(),
            signer: ready.fee_payer.to_string(),
            valid_before: 0,
        };
        let signed = SignedTransaction {
            hash: ready.signature.clone(),
            raw: ready.raw_b64.clone(),
            prelude: None,
        };
        match self.ledger.record(&new_entry, &signed).await {
            Ok(Claim::Recorded(entry)) => self.send_and_confirm(entry, true).await,
            Ok(Claim::Existing(entry)) => self.resume(entry, &digest).await,
            Err(e) => ledger_refusal(&self.chain_id.to_string(), e, Some(ready.payer)),
        }
    }

    async fn resume(&self, entry: Entry, digest: &str) -> Settlement {
        if !x402_protocol::digest_matches(&entry.digest, digest) {
            // One payment pays for one request: the transaction is not answered as a
            // success for another resource or another version.
            return Settlement::failed(
                Reason::DuplicateSettlement,
                "this transaction was already settled for a different request",
                Some(entry.payer),
                "",
            );
        }
        match entry.state {
            EntryState::Confirmed | EntryState::Failed => {
                recorded_answer(&entry, Reason::ExactSvmTransactionFailed)
            }
            EntryState::Submitted => match self.status(&entry.tx_hash).await {
                Ok(Landing::Final(status)) => self.finish(&entry, status).await,
                _ => self.send_and_confirm(entry, true).await,
            },
        }
    }

    /// Where `signature` stands at the node (see [`Landing`]).
    async fn status(&self, signature: &str) -> Result<Landing, RpcUnavailable> {
        let answer = self
            .rpc
            .call(
                "getSignatureStatuses",
                json!([[signature], {"searchTransactionHistory": true}]),
            )
            .await?;
        let Ok(result) = answer else {
            return Ok(Landing::Unseen);
        };
        let status = result.get("value").and_then(|v| v.get(0));
        Ok(Landing::of(status, &self.commitment))
    }

    async fn finish(&self, entry: &Entry, status: Result<(), String>) -> Settlement {
        let (state, settlement) = match status {
            Ok(()) => (
                EntryState::Confirmed,
                Settlement::settled(entry.payer.clone(), entry.tx_hash.clone()),
            ),
            Err(error) => (
                EntryState::Failed,
                Settlement::failed(
                    Reason::ExactSvmTransactionFailed,
                    format!("transaction failed on chain: {error}"),
                    Some(entry.payer.clone()),
                    entry.tx_hash.clone(),
                ),
            ),
        };
        self.ledger
            .settle_entry(entry, state, settlement, Reason::ExactSvmTransactionFailed)
            .await
    }

    /// Sends the recorded bytes (again) and, with `wait`, waits for the commitment.
    async fn send_and_confirm(&self, entry: Entry, wait: bool) -> Settlement {
        let sent = self
            .rpc
            .call(
                "sendTransaction",
                json!([entry.raw_tx, {"encoding": "base64", "skipPreflight": true, "maxRetries": 0}]),
            )
            .await;
        match sent {
            Err(e) => return pending_answer(&entry, format!("send outcome unknown ({e})")),
            Ok(Err(node)) => {
                let text = node.message.to_ascii_lowercase();
                if text.contains("already been processed") {
                    // Landed earlier: its status decides.
                } else if text.contains("blockhash not found") {
                    // The blockhash expired: a transaction the node has never seen never
                    // lands now. One seen below our commitment is still waited for.
                    if let Ok(Landing::Unseen) = self.status(&entry.tx_hash).await {
                        let failed = Settlement::failed(
                            Reason::ExactSvmTransactionFailed,
                            "the transaction's blockhash expired before it landed",
                            Some(entry.payer.clone()),
                            entry.tx_hash.clone(),
                        );
                        return self
                            .ledger
                            .settle_entry(
                                &entry,
                                EntryState::Failed,
                                failed,
                                Reason::ExactSvmTransactionFailed,
                            )
                            .await;
                    }
                } else {
                    tracing::warn!(network = %self.chain_id, signature = %entry.tx_hash, error = %node.message, "node refused a recorded settlement transaction");
                    return pending_answer(
                        &entry,
                        format!("node refused the send ({})", node.message),
                    );
                }
            }
            Ok(Ok(_)) => {}
        }
        if !wait {
            return pending_answer(&entry, "transaction sent");
        }
        let deadline = Instant::now() + self.confirm_timeout;
        let mut delay = Duration::from_millis(20);
        loop {
            match self.status(&entry.tx_hash).await {
                Ok(Landing::Final(status)) => return self.finish(&entry, status).await,
                Ok(Landing::Unseen | Landing::Below) => {}
                Err(e) => return pending_answer(&entry, format!("status unavailable ({e})")),
            }
            let now = Instant::now();
            if now >= deadline {
                return pending_answer(&entry, "transaction sent, not yet confirmed");
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_millis(400));
        }
    }

    async fn deep_health(&self) -> Vec<HealthCheck> {
        let mut checks = Vec::new();
        match self.rpc.call("getGenesisHash", json!([])).await {
            Err(e) => {
                checks.push(HealthCheck::new(
                    "rpc_reachable",
                    false,
                    true,
                    e.to_string(),
                ));
                return checks;
            }
            Ok(answer) => {
                checks.push(HealthCheck::new(
                    "rpc_reachable",
                    true,
                    true,
                    "node answered",
                ));
                let genesis = answer.ok().and_then(|v| v.as_str().map(str::to_owned));
                let reference = self.chain_id.reference();
                let matches = genesis.as_deref().is_some_and(|g| g.starts_with(reference));
                let ok = matches || self.local_stand_in;
                let detail = match (&genesis, matches, self.local_stand_in) {
                    (_, true, _) => format!("genesis matches {}", self.chain_id),
                    (Some(g), false, true) => format!(
                        "local stand-in: genesis {g} is not {} (allowed by local_stand_in)",
                        self.chain_id
                    ),
                    (Some(g), false, false) => {
                        format!("genesis {g} does not match {}", self.chain_id)
                    }
                    (None, _, _) => "node gave no genesis hash".into(),
                };
                checks.push(HealthCheck::new("chain_id", ok, true, detail));
            }
        }
        for keypair in &self.fee_payers {
            let address = keypair.pubkey().to_string();
            let balance = self
                .rpc
                .call("getBalance", json!([address]))
                .await
                .ok()
                .and_then(|a| a.ok())
                .and_then(|v| v.get("value").and_then(Value::as_u64));
            let ok = balance.is_some_and(|b| b >= self.min_fee_payer_lamports);
            checks.push(HealthCheck::new(
                "signer_gas_balance",
                ok,
                true,
                format!(
                    "{address}: {} lamports (floor {})",
                    balance
                        .map(|b| b.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    self.min_fee_payer_lamports
                ),
            ));
        }
        checks
    }

    async fn reconcile_open(&self, min_age: Duration) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let network = self.chain_id.to_string();
        let Ok(entries) = self.ledger.open_entries(&network, min_age, 1000).await else {
            report.errors += 1;
            return report;
        };
        for entry in entries {
            report.examined += 1;
            match self.status(&entry.tx_hash).await {
                Ok(Landing::Final(status)) => {
                    let settled = self.finish(&entry, status).await;
                    if settled.success {
                        report.confirmed += 1;
                    } else {
                        report.failed += 1;
                    }
                }
                Ok(Landing::Unseen | Landing::Below) => {
                    let outcome = self.send_and_confirm(entry, false).await;
                    match outcome.reason {
                        Some(Reason::SettlementPending) => report.resent += 1,
                        _ => report.failed += 1,
                    }
                }
                Err(_) => report.errors += 1,
            }
        }
        report
    }
}

#[async_trait]
impl SchemeHandler for ExactSvm {
    fn scheme(&self) -> &str {
        "exact"
    }

    fn network(&self) -> &ChainId {
        &self.chain_id
    }

    fn supported_extra(&self) -> Option<x402_protocol::v2::JsonObject> {
        let mut extra = x402_protocol::v2::JsonObject::new();
        extra.insert(
            "feePayer".into(),
            Value::String(self.fee_payers[0].pubkey().to_string()),
        );
        Some(extra)
    }

    fn signer_addresses(&self) -> Vec<String> {
        self.fee_payers
            .iter()
            .map(|k| k.pubkey().to_string())
            .collect()
    }

    async fn health(&self) -> Vec<HealthCheck> {
        self.deep_health().await
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        let transaction = Self::payload_transaction(payment)?;
        inspect::transfer_authority(&transaction).map(|a| a.to_string())
    }

    async fn is_recorded(&self, payment: &Payment) -> bool {
        let Some(key) = Self::payment_key(payment) else {
            return false;
        };
        matches!(
            self.ledger.entry(&self.chain_id.to_string(), &key).await,
            Ok(Some(_))
        )
    }

    async fn verify(&self, payment: &Payment) -> Verdict {
        match self.check(payment).await {
            Ok(ready) => Verdict::valid(ready.payer),
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
    use super::Landing;
    use serde_json::json;

    #[test]
    fn a_signature_the_node_does_not_know_is_unseen() {
        assert_eq!(Landing::of(None, "confirmed"), Landing::Unseen);
        assert_eq!(
            Landing::of(Some(&json!(null)), "confirmed"),
            Landing::Unseen
        );
    }

    #[test]
    fn nothing_is_concluded_below_the_commitment_not_even_an_error() {
        let processed_ok = json!({"confirmationStatus": "processed", "err": null});
        let processed_err = json!({"confirmationStatus": "processed", "err": {"InstructionError": [2, {"Custom": 1}]}});
        let confirmed_ok = json!({"confirmationStatus": "confirmed", "err": null});
        assert_eq!(
            Landing::of(Some(&processed_ok), "confirmed"),
            Landing::Below
        );
        assert_eq!(
            Landing::of(Some(&processed_err), "confirmed"),
            Landing::Below
        );
        assert_eq!(
            Landing::of(Some(&confirmed_ok), "finalized"),
            Landing::Below
        );
        assert_eq!(
            Landing::of(Some(&json!({"err": null})), "confirmed"),
            Landing::Below,
            "no level given is no level reached"
        );
    }

    #[test]
    fn at_the_commitment_the_outcome_is_final() {
        let confirmed_ok = json!({"confirmationStatus": "confirmed", "err": null});
        let finalized_err = json!({"confirmationStatus": "finalized", "err": {"InstructionError": [2, {"Custom": 1}]}});
        assert_eq!(
            Landing::of(Some(&confirmed_ok), "confirmed"),
            Landing::Final(Ok(()))
        );
        assert_eq!(
            Landing::of(
                Some(&json!({"confirmationStatus": "processed", "err": null})),
                "processed"
            ),
            Landing::Final(Ok(()))
        );
        match Landing::of(Some(&finalized_err), "confirmed") {
            Landing::Final(Err(error)) => assert!(error.contains("InstructionError"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
