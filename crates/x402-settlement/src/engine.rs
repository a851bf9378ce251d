//! The settlement state machine, once for every chain.
//!
//! payment key → ledger entry? → resume it; else check → sign and record the bytes (one
//! ledger step) → send → wait for the outcome → write it down. A crash, a node outage or a
//! dropped transaction leaves an open entry that the reconciler drives to its outcome with
//! the same steps. Nothing is sent that is not recorded first, and a payment the ledger
//! knows is answered from its entry, never with a second transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use x402_ledger::{Claim, Entry, EntryState, Ledger, Terms};
use x402_protocol::{digest_matches, Payment, Reason, ReconcileReport, Settlement};

use crate::answers::{ledger_refusal, pending_answer, recorded_answer, settle_entry};
use crate::metric;
use crate::ops::{ChainOps, Draft, NotRecorded, Polling, Recording, SchemeOps, Sent, Status};
use crate::single_flight::InFlight;

/// How many open entries one reconcile pass looks at.
const RECONCILE_BATCH: u32 = 1000;

/// One network's settlements on the shared ledger, for every scheme served on it.
pub struct Engine<C> {
    ops: C,
    ledger: Arc<Ledger>,
    in_flight: InFlight,
}

impl<C: ChainOps> Engine<C> {
    /// The engine for one network.
    pub fn new(chain: C, ledger: Arc<Ledger>) -> Self {
        Engine {
            ops: chain,
            ledger,
            in_flight: InFlight::default(),
        }
    }

    /// The chain's operations (schemes, health and the chain's own upkeep use them).
    pub fn chain(&self) -> &C {
        &self.ops
    }

    fn network(&self) -> String {
        self.ops.network().to_string()
    }

    /// Whether the ledger already knows this payment. A ledger that cannot be read counts
    /// as "not known" (the caller then refuses as it would have).
    pub async fn is_recorded<S: SchemeOps + ?Sized>(&self, scheme: &S, payment: &Payment) -> bool {
        let key = scheme
            .parse(payment)
            .and_then(|parsed| scheme.payment_key(payment, &parsed));
        let Some(key) = key else {
            return false;
        };
        matches!(self.ledger.entry(&self.network(), &key).await, Ok(Some(_)))
    }

    /// Settles a payment the ledger may or may not know; never sends twice for one payment.
    pub async fn settle<S: SchemeOps + ?Sized>(&self, scheme: &S, payment: &Payment) -> Settlement {
        let parsed_key = scheme.parse(payment).and_then(|parsed| {
            let key = scheme.payment_key(payment, &parsed)?;
            Some((parsed, key))
        });
        let Some((parsed, key)) = parsed_key else {
            // Malformed: verification names the precise reason.
            let verdict = scheme.verify(payment).await;
            return match verdict.is_valid {
                false => Settlement::from_verdict(verdict),
                true => Settlement::failed(Reason::InvalidPayload, "malformed payment", None, ""),
            };
        };
        let draft = Draft {
            network: self.network(),
            payment_key: key,
            digest: payment.request_digest(),
            version: payment.version,
            terms: Terms {
                scheme: payment.scheme.clone(),
                asset: payment.requirements.asset.clone(),
                pay_to: payment.requirements.pay_to.clone(),
                amount: payment.requirements.amount.to_string(),
                resource: payment.resource.clone(),
            },
        };
        // A duplicate of a payment being settled here waits for it, then reads its answer.
        let patience = self.ops.polling().limit + Duration::from_secs(5);
        let Some(_turn) = self.in_flight.enter(&draft.payment_key, patience).await else {
            return Settlement::failed(
                Reason::SettlementInProgress,
                "another request is settling this payment; retry shortly",
                scheme.claimed_payer(payment),
                "",
            );
        };
        match self.ledger.entry(&draft.network, &draft.payment_key).await {
            Err(e) => ledger_refusal(&draft.network, e, scheme.claimed_payer(payment)),
            Ok(Some(entry)) => self.resume(scheme, entry, &draft.digest).await,
            Ok(None) => self.settle_new(scheme, payment, &draft, parsed).await,
        }
    }

    async fn settle_new<S: SchemeOps + ?Sized>(
        &self,
        scheme: &S,
        payment: &Payment,
        draft: &Draft,
        parsed: S::Parsed,
    ) -> Settlement {
        let recording = Recording {
            ledger: &self.ledger,
            payment,
            draft,
        };
        match scheme.check_and_record(recording, parsed).await {
            Ok(Claim::Recorded(entry)) => self.drive(entry, true).await,
            // A concurrent request (here or on another instance) recorded it first.
            Ok(Claim::Existing(entry)) => self.resume(scheme, entry, &draft.digest).await,
            Err(NotRecorded::Refused(verdict)) => {
                // A duplicate racing the original sees the payment already spent: the
                // original's answer is the answer.
                if let Ok(Some(entry)) = self.ledger.entry(&draft.network, &draft.payment_key).await
                {
                    return self.resume(scheme, entry, &draft.digest).await;
                }
                Settlement::from_verdict(verdict)
            }
            Err(NotRecorded::Answer(settlement)) => settlement,
        }
    }

    /// A payment the ledger knows: its answer, never a second transaction. The same
    /// payment under another request (another resource or version) is refused: one
    /// payment pays for one request.
    async fn resume<S: SchemeOps + ?Sized>(
        &self,
        scheme: &S,
        entry: Entry,
        digest: &str,
    ) -> Settlement {
        if !digest_matches(&entry.digest, digest) {
            return Settlement::failed(
                scheme.reused_reason(&entry.payment_key),
                "this payment was already submitted for a different request",
                Some(entry.payer),
                "",
            );
        }
        match entry.state {
            EntryState::Confirmed | EntryState::Failed => {
                recorded_answer(&entry, self.ops.failed_reason())
            }
            // A retry after `settlement_pending`: the same transaction's outcome.
            EntryState::Submitted => match self.ops.status(&entry).await {
                Ok(Status::Landed(outcome)) => self.record_outcome(&entry, outcome).await,
                _ => self.drive(entry, true).await,
            },
        }
    }

    /// Sends the entry's bytes and, with `wait`, waits for the outcome.
    async fn drive(&self, entry: Entry, wait: bool) -> Settlement {
        match self.ops.send(&self.ledger, &entry).await {
            Sent::Accepted if wait => self.conclude(&entry).await,
            Sent::Accepted => pending_answer(&entry, "transaction sent"),
            Sent::Landed(outcome) => self.record_outcome(&entry, outcome).await,
            Sent::Failed(settlement) => self.finish(&entry, EntryState::Failed, settlement).await,
            Sent::Replaced(replaced) => self.conclude(&replaced).await,
            Sent::Moved => match self.ledger.entry(&entry.network, &entry.payment_key).await {
                Ok(Some(current)) if current.state != EntryState::Submitted => {
                    recorded_answer(&current, self.ops.failed_reason())
                }
                Ok(Some(current)) => pending_answer(&current, "transaction replaced"),
                _ => pending_answer(&entry, "transaction replaced elsewhere"),
            },
            Sent::Unknown(why) => pending_answer(&entry, why),
            Sent::Refused(settlement) => settlement,
        }
    }

    /// The outcome of a sent transaction, or `settlement_pending` when it does not come
    /// within the chain's limit.
    async fn conclude(&self, entry: &Entry) -> Settlement {
        let outcome = poll(self.ops.polling(), None, || async {
            match self.ops.status(entry).await {
                Ok(Status::Landed(outcome)) => Ok(Some(outcome)),
                Ok(Status::Unseen | Status::Held) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await;
        match outcome {
            Ok(Some(outcome)) => self.record_outcome(entry, outcome).await,
            Ok(None) => pending_answer(entry, "transaction sent, not yet confirmed"),
            Err(e) => pending_answer(entry, format!("transaction sent, status unavailable ({e})")),
        }
    }

    /// Writes a landed transaction's outcome; when another request or instance finished
    /// the entry first, its answer wins.
    async fn record_outcome(&self, entry: &Entry, outcome: Result<(), String>) -> Settlement {
        match outcome {
            Ok(()) => {
                let settled = Settlement::settled(entry.payer.clone(), entry.tx_hash.clone());
                self.finish(entry, EntryState::Confirmed, settled).await
            }
            Err(detail) => {
                let failed = self.ops.failure(entry, &detail).await;
                self.finish(entry, EntryState::Failed, failed).await
            }
        }
    }

    async fn finish(&self, entry: &Entry, state: EntryState, answer: Settlement) -> Settlement {
        settle_entry(&self.ledger, entry, state, answer, self.ops.failed_reason()).await
    }

    /// One pass over open entries older than `min_age`: write down what landed, leave what
    /// the node still holds, send again what it lost, follow what the chain replaced.
    /// `min_age` zero is the start-up recovery, which runs the chain's upkeep first.
    pub async fn reconcile(&self, min_age: Duration) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let network = self.network();
        if min_age.is_zero() {
            self.ops.before_recovery(&self.ledger).await;
        }
        let entries = match self
            .ledger
            .open_entries(&network, min_age, RECONCILE_BATCH)
            .await
        {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(network = %network, error = %e, "reconciler cannot read the ledger");
                report.errors += 1;
                return report;
            }
        };
        for entry in entries {
            report.examined += 1;
            self.reconcile_one(entry, &mut report).await;
        }
        report
    }

    async fn reconcile_one(&self, entry: Entry, report: &mut ReconcileReport) {
        let network = self.network();
        match self.ops.status(&entry).await {
            Ok(Status::Landed(outcome)) => {
                let settled = self.record_outcome(&entry, outcome).await;
                match settled.success {
                    true => report.confirmed += 1,
                    false => report.failed += 1,
                }
                tracing::info!(network = %network, tx_hash = %entry.tx_hash, success = settled.success, "reconciled settlement: found on chain");
                return;
            }
            Ok(Status::Held) => return,
            Ok(Status::Unseen) => {}
            Err(_) => {
                report.errors += 1;
                return;
            }
        }
        if self.ops.held(&entry).await {
            return;
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
        tracing::info!(network = %network, tx_hash = %outcome.transaction, reason = outcome.reason.map(Reason::as_str), "reconciled settlement: not held by the node, sent again");
    }
}

/// Counts and logs a replacement transaction, as soon as the ledger holds it.
pub fn note_replacement(network: &str, old: &Entry, new: &Entry, why: &str) {
    metrics::counter!(metric::SETTLEMENT_REPLACEMENTS, "network" => network.to_owned())
        .increment(1);
    tracing::warn!(network = %network, old_tx_hash = %old.tx_hash, new_tx_hash = %new.tx_hash, "{why}");
}

/// Calls `read` until it gives `Some`, fails, or `limit` (at most the polling limit) is
/// over, pausing as `polling` says. Chains use it for their own waits too.
pub async fn poll<T, E, F, Fut>(
    polling: Polling,
    limit: Option<Duration>,
    mut read: F,
) -> Result<Option<T>, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
{
    let limit = limit.map_or(polling.limit, |l| l.min(polling.limit));
    let deadline = Instant::now() + limit;
    let mut pause = polling.first;
    loop {
        if let Some(value) = read().await? {
            return Ok(Some(value));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(polling.longest);
    }
}
