//! What a chain does for the engine: the few operations that differ between chains. The
//! order they run in, and what is written to the ledger when, is the engine's alone.

use std::time::Duration;

use async_trait::async_trait;
use x402_ledger::{Claim, Entry, Ledger, NewEntry, Terms};
use x402_protocol::{ChainId, Payment, Reason, Settlement, Verdict, X402Version};

/// The parts of a ledger entry the engine knows before the chain has checked the payment.
#[derive(Debug, Clone)]
pub struct Draft {
    /// CAIP-2 id of the network.
    pub network: String,
    /// The payment's identity, from [`SchemeOps::payment_key`].
    pub payment_key: String,
    /// The request's digest ([`Payment::request_digest`]).
    pub digest: String,
    /// The request's protocol version.
    pub version: X402Version,
    /// What the request says it pays (the amount is the requirement's until the chain's
    /// check names the amount that moves).
    pub terms: Terms,
}

impl Draft {
    /// The entry to record, completed with what the chain established: who pays, who
    /// sends, until when, and the amount the signed transfer moves.
    pub fn entry(
        &self,
        payer: String,
        signer: String,
        valid_before: i64,
        amount: String,
    ) -> NewEntry {
        NewEntry {
            network: self.network.clone(),
            payment_key: self.payment_key.clone(),
            digest: self.digest.clone(),
            x402_version: match self.version {
                X402Version::V1 => 1,
                X402Version::V2 => 2,
            },
            payer,
            signer,
            valid_before,
            terms: Terms {
                amount,
                ..self.terms.clone()
            },
        }
    }
}

/// What [`SchemeOps::check_and_record`] works on.
#[derive(Clone, Copy)]
pub struct Recording<'a> {
    /// The ledger to record into.
    pub ledger: &'a Ledger,
    /// The payment to check, sign and record.
    pub payment: &'a Payment,
    /// The entry's parts the engine knows.
    pub draft: &'a Draft,
}

/// Why [`SchemeOps::check_and_record`] recorded nothing.
#[derive(Debug)]
pub enum NotRecorded {
    /// The payment failed its check. It may be a duplicate racing its original (which
    /// already spent the authorization), so the engine asks the ledger once more before
    /// answering with this verdict.
    Refused(Verdict),
    /// A final answer: the facilitator cannot settle it now (gas, ledger, node).
    Answer(Settlement),
}

/// Where a recorded transaction stands at the node, judged at the chain's finality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The node has no trace of it.
    Unseen,
    /// The node holds it (pool, or seen below the required commitment): it may still land,
    /// fail or be dropped, so nothing is concluded and nothing is sent again.
    Held,
    /// Final: `Ok` it did what it was signed for, `Err` it failed on chain (detail).
    Landed(Result<(), String>),
}

/// What sending a recorded entry's bytes led to.
#[derive(Debug)]
pub enum Sent {
    /// The node accepted the bytes (or already had them).
    Accepted,
    /// The node's refusal showed the outcome already (the transaction had landed).
    Landed(Result<(), String>),
    /// The transaction can never land and the payment is over: this failure is recorded.
    Failed(Settlement),
    /// The chain proved the recorded transaction can never land, recorded a replacement in
    /// the ledger ([`crate::note_replacement`]) and sent it: the engine follows the entry
    /// as it is now, naming the replacement. A replacement the node refused is a
    /// [`Sent::Refused`] answer naming the replacement's hash.
    Replaced(Box<Entry>),
    /// Another request or instance moved the entry on while this one tried to replace it.
    Moved,
    /// Nothing is known yet; the entry is kept and sent again later (why, no secrets).
    Unknown(String),
    /// A chain-specific answer that leaves the entry open (for example no gas to send it).
    Refused(Settlement),
}

/// How fast the engine asks for an outcome after a send.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    /// First pause between two status reads.
    pub first: Duration,
    /// The longest pause (each pause doubles up to it).
    pub longest: Duration,
    /// How long `/settle` waits before answering `settlement_pending`.
    pub limit: Duration,
}

/// What the settlement engine needs from a chain, whatever the scheme: sending recorded
/// bytes, reading where they stand, and explaining a failure.
///
/// Implementations hold no settlement state of their own: every decision that must
/// survive a crash goes through the [`Ledger`] the engine hands them.
#[async_trait]
pub trait ChainOps: Send + Sync + 'static {
    /// The network served.
    fn network(&self) -> &ChainId;

    /// The code of a transaction that failed on chain, and of a final record this build
    /// cannot read back.
    fn failed_reason(&self) -> Reason;

    /// Sends the entry's recorded bytes (again: sending the same bytes twice is harmless).
    async fn send(&self, ledger: &Ledger, entry: &Entry) -> Sent;

    /// Where the entry's transaction stands; `Err` when the node cannot be asked (text
    /// without secrets).
    async fn status(&self, entry: &Entry) -> Result<Status, String>;

    /// Whether the node's pool still holds a transaction [`ChainOps::status`] calls
    /// unseen; asked by the reconciler before it sends the bytes again.
    async fn held(&self, entry: &Entry) -> bool {
        let _ = entry;
        false
    }

    /// The answer for the entry's transaction having failed on chain with `detail`.
    async fn failure(&self, entry: &Entry, detail: &str) -> Settlement;

    /// How fast to poll for an outcome.
    fn polling(&self) -> Polling;

    /// Upkeep before a start-up reconcile pass (for example lowering nonces a reset chain
    /// left behind).
    async fn before_recovery(&self, ledger: &Ledger) {
        let _ = ledger;
    }
}

/// What the settlement engine needs from one scheme on a chain: which payment a request
/// is, and checking, signing and recording it.
#[async_trait]
pub trait SchemeOps: Send + Sync {
    /// The code for a payment already settled under another request (another resource,
    /// another version): the one the scheme's official SDK uses for a spent payment, which
    /// may depend on how it was paid (its `payment_key`).
    fn reused_reason(&self, payment_key: &str) -> Reason;

    /// The payload as the scheme reads it, once a settlement: the payment key and the check
    /// both work from it.
    type Parsed: Send + Sync;

    /// Reads the payload; `None` when it is malformed (verify then names the reason).
    fn parse(&self, payment: &Payment) -> Option<Self::Parsed>;

    /// The payment's identity in the ledger, from the payload alone: one signed payment
    /// moves funds once, whatever else the request says. Keys of two schemes on one
    /// network must never be equal. `None`: malformed.
    fn payment_key(&self, payment: &Payment, parsed: &Self::Parsed) -> Option<String>;

    /// The payer the payload names (no I/O, no signature check).
    fn claimed_payer(&self, payment: &Payment) -> Option<String>;

    /// What a passed check established.
    type Checked: Send;

    /// Checks a payment without moving funds; every refusal is a [`Verdict`].
    async fn check(&self, payment: &Payment) -> Result<Self::Checked, Verdict>;

    /// The payer a passed check established.
    fn payer(checked: &Self::Checked) -> String;

    /// The verify answer: the check's verdict, naming the payer.
    async fn verify(&self, payment: &Payment) -> Verdict {
        match self.check(payment).await {
            Ok(checked) => Verdict::valid(Self::payer(&checked)),
            Err(verdict) => verdict,
        }
    }

    /// Checks the payment again, signs what settles it and records the signed bytes in
    /// the ledger in one step, before anything is sent.
    async fn check_and_record(
        &self,
        recording: Recording<'_>,
        parsed: Self::Parsed,
    ) -> Result<Claim, NotRecorded>;
}
