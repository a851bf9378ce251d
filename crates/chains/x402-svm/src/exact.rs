//! The `exact` scheme on SVM: one payment is one payer-signed transaction, completed by
//! the facilitator's fee payer, checked and simulated, then settled by the shared engine.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_ledger::{Claim, SignedTransaction};
use x402_protocol::{Payment, Reason, Verdict};
use x402_settlement::answers::ledger_refusal;
use x402_settlement::{Engine, EngineScheme, NotRecorded, Recording, SchemeOps};

use crate::check::{claimed_payer, payload_transaction, Ready};
use crate::SvmChain;

/// `exact` on one SVM network.
pub(crate) struct ExactSvm {
    pub(crate) engine: Arc<Engine<SvmChain>>,
}

#[async_trait]
impl SchemeOps for ExactSvm {
    fn reused_reason(&self, _payment_key: &str) -> Reason {
        Reason::DuplicateSettlement
    }

    /// The payload's transaction.
    type Parsed = VersionedTransaction;

    fn parse(&self, payment: &Payment) -> Option<VersionedTransaction> {
        payload_transaction(payment)
    }

    /// The payer's signature over the message: one message, one payment, whoever sends it.
    fn payment_key(
        &self,
        _payment: &Payment,
        transaction: &VersionedTransaction,
    ) -> Option<String> {
        let payer_signature = transaction.signatures.get(1)?;
        Some(format!("tx/{payer_signature}"))
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        claimed_payer(payment)
    }

    type Checked = Ready;

    async fn check(&self, payment: &Payment) -> Result<Ready, Verdict> {
        self.engine.chain().check(payment, None).await
    }

    fn payer(ready: &Ready) -> String {
        ready.payer.clone()
    }

    async fn check_and_record(
        &self,
        to: Recording<'_>,
        transaction: VersionedTransaction,
    ) -> Result<Claim, NotRecorded> {
        let (ledger, payment, draft) = (to.ledger, to.payment, to.draft);
        let ready = self
            .engine
            .chain()
            .check(payment, Some(transaction))
            .await
            .map_err(NotRecorded::Refused)?;
        let amount = ready.amount.to_string();
        let entry = draft.entry(ready.payer.clone(), ready.fee_payer.to_string(), 0, amount);
        let signed = SignedTransaction {
            hash: ready.signature,
            raw: ready.raw_b64,
            prelude: None,
        };
        ledger
            .record(&entry, &signed)
            .await
            .map_err(|e| NotRecorded::Answer(ledger_refusal(&draft.network, e, Some(ready.payer))))
    }
}

impl EngineScheme for ExactSvm {
    type Chain = SvmChain;
    const NAME: &'static str = "exact";

    fn engine(&self) -> &Engine<SvmChain> {
        &self.engine
    }

    /// The fee payer a client must name in its transaction.
    fn supported_extra(&self) -> Option<x402_protocol::v2::JsonObject> {
        let fee_payer = self.engine.chain().fee_payers.first()?;
        let mut extra = x402_protocol::v2::JsonObject::new();
        extra.insert(
            "feePayer".into(),
            Value::String(fee_payer.pubkey().to_string()),
        );
        Some(extra)
    }
}
