//! The `exact` scheme on Stellar: one payment is the payer's signed authorization of one
//! SEP-41 `transfer`, submitted in a transaction of this facilitator's fee-paying account,
//! checked again, recorded, then settled by the shared engine.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use stellar_xdr::TransactionV1Envelope;
use x402_ledger::Claim;
use x402_protocol::{Payment, Reason, Settlement, Verdict};
use x402_settlement::answers::ledger_refusal;
use x402_settlement::{Engine, EngineScheme, NotRecorded, Recording, SchemeOps};

use crate::chain::{settlement, validity_seconds};
use crate::check::{claimed_payer, payload_envelope, Ready};
use crate::{now, StellarChain};

/// `exact` on one Stellar network.
pub(crate) struct ExactStellar {
    pub(crate) engine: Arc<Engine<StellarChain>>,
}

/// The ledger's key of a payment: the host accepts one `(address, nonce)` authorization
/// once, whoever submits it.
fn authorization_key(from: &str, nonce: i64) -> String {
    format!("stellar-auth/{from}/{nonce}")
}

#[async_trait]
impl SchemeOps for ExactStellar {
    fn reused_reason(&self, _payment_key: &str) -> Reason {
        Reason::DuplicateSettlement
    }

    type Parsed = TransactionV1Envelope;

    fn parse(&self, payment: &Payment) -> Option<TransactionV1Envelope> {
        payload_envelope(payment)
    }

    fn payment_key(&self, payment: &Payment, envelope: &TransactionV1Envelope) -> Option<String> {
        let amount = i128::try_from(payment.requirements.amount.as_u128()?).ok()?;
        let chain = self.engine.chain();
        let transfer = chain.transfer_of(payment, envelope, amount).ok()?;
        Some(authorization_key(&transfer.from, transfer.nonce))
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        claimed_payer(payment)
    }

    type Checked = Ready;

    async fn check(&self, payment: &Payment) -> Result<Ready, Verdict> {
        self.engine.chain().check(payment, None).await
    }

    fn payer(ready: &Ready) -> String {
        ready.transfer.from.clone()
    }

    async fn check_and_record(
        &self,
        to: Recording<'_>,
        envelope: TransactionV1Envelope,
    ) -> Result<Claim, NotRecorded> {
        let (ledger, payment, draft) = (to.ledger, to.payment, to.draft);
        let chain = self.engine.chain();
        let Some(signer) = chain.signer_for(&draft.payment_key) else {
            return Err(NotRecorded::Answer(Settlement::failed(
                Reason::UnexpectedSettleError,
                "no signer key",
                None,
                String::new(),
            )));
        };
        // The account's sequence is read beside the check's reads, not after them.
        let (ready, sequence) = tokio::join!(
            chain.check(payment, Some(envelope)),
            chain.account_sequence(&signer.address)
        );
        let ready = ready.map_err(NotRecorded::Refused)?;
        let payer = ready.transfer.from.clone();
        let sequence = sequence.map_err(|e| {
            tracing::warn!(network = %chain.chain_id, error = %e, "cannot read the fee-paying account's sequence");
            NotRecorded::Answer(Settlement::failed(
                Reason::RpcUnavailable,
                "the fee-paying account's sequence could not be read; nothing was sent, retry later",
                Some(payer.clone()),
                String::new(),
            ))
        })?;
        let timeout = payment.requirements.max_timeout_seconds;
        let signed = settlement(
            chain,
            signer,
            &ready.transfer.op,
            sequence.saturating_add(1),
            ready.fee,
            ready.data,
            timeout,
        )
        .map_err(|e| {
            NotRecorded::Answer(Settlement::failed(
                Reason::UnexpectedSettleError,
                format!("the settlement could not be signed ({e})"),
                Some(payer.clone()),
                String::new(),
            ))
        })?;
        let valid_before =
            i64::try_from(now().saturating_add(validity_seconds(timeout))).unwrap_or(i64::MAX);
        let entry = draft.entry(
            payer.clone(),
            signer.address.clone(),
            valid_before,
            ready.transfer.amount.to_string(),
        );
        ledger
            .record(&entry, &signed)
            .await
            .map_err(|e| NotRecorded::Answer(ledger_refusal(&draft.network, e, Some(payer))))
    }
}

impl EngineScheme for ExactStellar {
    type Chain = StellarChain;
    const NAME: &'static str = "exact";

    fn engine(&self) -> &Engine<StellarChain> {
        &self.engine
    }

    /// The spec is v2 only.
    fn serves_v1(&self) -> bool {
        false
    }

    /// `areFeesSponsored`, the `extra` the spec names.
    fn supported_extra(&self) -> Option<x402_protocol::v2::JsonObject> {
        let mut extra = x402_protocol::v2::JsonObject::new();
        extra.insert("areFeesSponsored".into(), Value::Bool(true));
        Some(extra)
    }
}
