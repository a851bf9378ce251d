//! The `exact` scheme on EVM with EIP-3009 `transferWithAuthorization`: the payer signs an
//! authorization of exactly the amount to `payTo`; the facilitator checks it ([`check`],
//! [`judge`]), then signs, records and sends the transfer ([`record`]) on the shared engine.

use super::*;

mod check;
mod judge;
mod record;
pub(super) use check::SettleData;

/// `exact` on one EVM network.
pub(super) struct ExactEvm {
    pub(super) engine: Arc<Engine<EvmChain>>,
}

impl ExactEvm {
    fn chain(&self) -> &EvmChain {
        self.engine.chain()
    }
}

#[async_trait]
impl SchemeOps for ExactEvm {
    /// The authorization's nonce is spent: the code the official EVM SDK gives.
    fn reused_reason(&self) -> Reason {
        Reason::ExactEvmNonceAlreadyUsed
    }

    /// The authorization and its signature.
    type Parsed = (Authorization, Vec<u8>);

    fn parse(&self, payment: &Payment) -> Option<Self::Parsed> {
        parse_authorization(payment).ok()
    }

    /// Asset, payer and authorization nonce: one authorization moves funds once, whatever
    /// else the request says.
    fn payment_key(&self, payment: &Payment, (auth, _): &Self::Parsed) -> Option<String> {
        let asset = Address::from_str(&payment.requirements.asset).ok()?;
        Some(format!("{asset:#x}/{:#x}/{:#x}", auth.from, auth.nonce))
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        let (auth, _) = parse_authorization(payment).ok()?;
        Some(auth.from.to_checksum(None))
    }

    type Checked = check::Checked;

    async fn check(&self, payment: &Payment) -> Result<check::Checked, Verdict> {
        self.chain().check(payment, None, false).await
    }

    fn payer(checked: &check::Checked) -> String {
        checked.payer.to_checksum(None)
    }

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
        let signer = chain.pick_signer();
        signer.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = chain
            .check_and_record_as(ledger, (payment, parsed), draft, signer)
            .await;
        signer.in_flight.fetch_sub(1, Ordering::Relaxed);
        result
    }
}

impl EngineScheme for ExactEvm {
    type Chain = EvmChain;
    const NAME: &'static str = "exact";

    fn engine(&self) -> &Engine<EvmChain> {
        &self.engine
    }
}
