//! The `exact` scheme on NEAR: one payment is one signed delegate action, relayed in a
//! transaction of this facilitator's relayer, checked again, recorded, then settled by the
//! shared engine.

use std::sync::Arc;

use async_trait::async_trait;
use near_primitives::action::delegate::SignedDelegateAction;
use serde_json::Value;
use x402_ledger::Claim;
use x402_protocol::{Payment, Reason, Settlement, Verdict};
use x402_settlement::answers::ledger_refusal;
use x402_settlement::{Engine, EngineScheme, NotRecorded, Recording, SchemeOps};

use crate::chain::encode;
use crate::check::{claimed_payer, payload_delegate, Ready};
use crate::NearChain;

/// `exact` on one NEAR network.
pub(crate) struct ExactNear {
    pub(crate) engine: Arc<Engine<NearChain>>,
}

/// The ledger's key of a delegate action: NEAR executes one `(sender, key, nonce)` once.
fn delegate_key(signed: &SignedDelegateAction) -> String {
    let action = &signed.delegate_action;
    format!(
        "near-delegate/{}/{}/{}",
        action.sender_id, action.public_key, action.nonce
    )
}

/// Unix seconds until which the delegate action can execute, at one block per second.
fn valid_until(remaining_blocks: u64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(now.saturating_add(remaining_blocks)).unwrap_or(i64::MAX)
}

#[async_trait]
impl SchemeOps for ExactNear {
    fn reused_reason(&self, _payment_key: &str) -> Reason {
        Reason::DuplicateSettlement
    }

    type Parsed = SignedDelegateAction;

    fn parse(&self, payment: &Payment) -> Option<SignedDelegateAction> {
        payload_delegate(payment)
    }

    fn payment_key(&self, _payment: &Payment, signed: &SignedDelegateAction) -> Option<String> {
        Some(delegate_key(signed))
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        claimed_payer(payment)
    }

    type Checked = Ready;

    async fn check(&self, payment: &Payment) -> Result<Ready, Verdict> {
        self.engine.chain().check(payment, None).await
    }

    fn payer(ready: &Ready) -> String {
        ready.delegated.payer.to_string()
    }

    async fn check_and_record(
        &self,
        to: Recording<'_>,
        signed: SignedDelegateAction,
    ) -> Result<Claim, NotRecorded> {
        let (ledger, payment, draft) = (to.ledger, to.payment, to.draft);
        let chain = self.engine.chain();
        let Some(relayer) = chain.relayer_for(&draft.payment_key) else {
            return Err(NotRecorded::Answer(Settlement::failed(
                Reason::UnexpectedSettleError,
                "no relayer key",
                None,
                String::new(),
            )));
        };
        // The relayer's nonce is read beside the check's reads, not after them.
        let (ready, floor) = tokio::join!(
            chain.check(payment, Some(signed)),
            chain.relayer_nonce(relayer)
        );
        let ready = ready.map_err(NotRecorded::Refused)?;
        let payer = ready.delegated.payer.to_string();
        let floor = floor.map_err(|e| {
            tracing::warn!(network = %chain.chain_id, error = %e, "cannot read the relayer's nonce");
            NotRecorded::Answer(Settlement::failed(
                Reason::RpcUnavailable,
                "the relayer's nonce could not be read; nothing was sent, retry later",
                Some(payer.clone()),
                String::new(),
            ))
        })?;
        let entry = draft.entry(
            payer.clone(),
            relayer.signer(),
            valid_until(ready.remaining_blocks),
            ready.delegated.amount.to_string(),
        );
        let delegate = &ready.delegated.signed;
        let sign = |nonce| Ok(encode(&relayer.sign(delegate, nonce, ready.block_hash)));
        // With a floor given and signing that cannot fail, only the store can refuse.
        ledger
            .record_signed(&entry, Some(floor.saturating_add(1)), 1, sign)
            .await
            .map(|(claim, _)| claim)
            .map_err(|e| NotRecorded::Answer(ledger_refusal(&draft.network, e, Some(payer))))
    }
}

impl EngineScheme for ExactNear {
    type Chain = NearChain;
    const NAME: &'static str = "exact";

    fn engine(&self) -> &Engine<NearChain> {
        &self.engine
    }

    /// The spec is v2 only.
    fn serves_v1(&self) -> bool {
        false
    }

    /// The relayer account, for clients that copy `extra` (the spec does not require it).
    fn supported_extra(&self) -> Option<x402_protocol::v2::JsonObject> {
        let relayer = self.engine.chain().relayers.first()?;
        let mut extra = x402_protocol::v2::JsonObject::new();
        extra.insert(
            "relayerId".into(),
            Value::String(relayer.account.to_string()),
        );
        Some(extra)
    }
}
