//! The `upto` scheme on EVM (Permit2 only): the payer authorizes at most an amount, bound
//! to one facilitator signer (the witness's `facilitator`, which this network announces as
//! `/supported` `extra.facilitatorAddress`), and the resource server names at settle the
//! amount to charge (the settle request's `amount`, never above the authorization). The
//! checks are the Permit2 ones ([`super::permit2`]); settlement is the shared engine's, sent
//! by the named signer through the x402 upto Permit2 proxy. One authorization settles once:
//! a second settle for another amount is refused with `permit2_invalid_nonce`.

use super::permit2::{self, Permit2Scheme};
use super::*;
use x402_protocol::v2::JsonObject;

/// `upto` on one EVM network.
pub(super) struct UptoEvm {
    pub(super) engine: Arc<Engine<EvmChain>>,
}

impl UptoEvm {
    fn chain(&self) -> &EvmChain {
        self.engine.chain()
    }
}

/// Reads an `upto` payload: a Permit2 permit for the upto proxy.
fn parse_upto(payment: &Payment) -> Result<EvmPayload, Verdict> {
    let permit = permit2::parse(payment)?;
    Ok(EvmPayload::Permit2(Box::new(permit), Permit2Scheme::Upto))
}

/// Whether the settle request names nothing to charge (the spec's zero settlement).
fn charges_nothing(payment: &Payment) -> bool {
    payment.requirements.amount.as_u128() == Some(0)
}

#[async_trait]
impl SchemeOps for UptoEvm {
    /// The permit's nonce is spent (the authorization settled once already).
    fn reused_reason(&self, _payment_key: &str) -> Reason {
        Reason::Permit2InvalidNonce
    }

    type Parsed = EvmPayload;

    fn parse(&self, payment: &Payment) -> Option<Self::Parsed> {
        parse_upto(payment).ok()
    }

    fn payment_key(&self, _payment: &Payment, parsed: &Self::Parsed) -> Option<String> {
        match parsed {
            EvmPayload::Permit2(permit, _) => Some(permit2::payment_key(permit)),
            EvmPayload::Eip3009(..) => None,
        }
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        Some(parse_upto(payment).ok()?.payer().to_checksum(None))
    }

    type Checked = Checked;

    async fn check(&self, payment: &Payment) -> Result<Self::Checked, Verdict> {
        let parsed = parse_upto(payment)?;
        self.chain()
            .check_parsed(payment, parsed, None, false)
            .await
    }

    fn payer(checked: &Self::Checked) -> String {
        checked.payer.to_checksum(None)
    }

    /// Sent by the signer the witness names (the proxy takes no other sender). A settle
    /// that charges nothing sends nothing and records nothing, once the authorization
    /// checks as at verify.
    async fn check_and_record(
        &self,
        recording: Recording<'_>,
        parsed: Self::Parsed,
    ) -> Result<Claim, NotRecorded> {
        let Recording {
            ledger,
            payment,
            draft,
        } = recording;
        let chain = self.chain();
        let payer = parsed.payer().to_checksum(None);
        let EvmPayload::Permit2(permit, _) = &parsed else {
            return Err(NotRecorded::Refused(Verdict::invalid(
                Reason::InvalidPayload,
                "upto pays with Permit2 only",
                Some(payer),
            )));
        };
        if charges_nothing(payment) {
            let mut at_verify = payment.clone();
            at_verify.requirements.amount =
                x402_protocol::TokenAmount::parse(&permit.amount.to_string()).map_err(|e| {
                    NotRecorded::Refused(refusal(&payer, Reason::InvalidPayload, e.to_string()))
                })?;
            chain
                .check_parsed(&at_verify, parsed, None, false)
                .await
                .map_err(NotRecorded::Refused)?;
            return Err(NotRecorded::Answer(Settlement::settled(payer, "")));
        }
        let Some(signer) = permit.facilitator.and_then(|f| chain.signer_at(f)) else {
            return Err(NotRecorded::Refused(refusal(
                &payer,
                Reason::UptoFacilitatorMismatch,
                "witness.facilitator is not a signer of this facilitator",
            )));
        };
        chain
            .check_and_record_as(ledger, (payment, parsed), draft, signer)
            .await
    }
}

impl EngineScheme for UptoEvm {
    type Chain = EvmChain;
    const NAME: &'static str = "upto";

    fn engine(&self) -> &Engine<EvmChain> {
        &self.engine
    }

    /// The signer payers must name as the witness's facilitator.
    fn supported_extra(&self) -> Option<JsonObject> {
        let signer = self.chain().signers.first()?;
        let mut extra = JsonObject::new();
        extra.insert(
            "facilitatorAddress".into(),
            Value::String(signer.signer.address().to_checksum(None)),
        );
        Some(extra)
    }

    fn extensions(&self) -> Vec<&'static str> {
        self.chain().permit2_extensions(true)
    }

    /// What the resource server named at settle.
    fn settled_amount(&self, payment: &Payment) -> Option<String> {
        Some(payment.requirements.amount.to_string())
    }
}
