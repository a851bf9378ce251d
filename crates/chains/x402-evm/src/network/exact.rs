//! The `exact` scheme on EVM, with the two transfer methods the official SDKs sign:
//! EIP-3009 `transferWithAuthorization` (the payer signs an authorization of exactly the
//! amount to `payTo`; [`check`], [`judge`]) and Permit2 (a permit whose spender is the x402
//! exact proxy and whose witness names `payTo`; [`super::permit2`]). Either way the
//! facilitator then signs, records and sends the settling call ([`super::record`]) on the
//! shared engine.

use super::*;

mod check;
mod judge;

/// Reads an `exact` payload: Permit2 when it carries `permit2Authorization` (as the
/// official SDKs decide), EIP-3009 otherwise.
pub(crate) fn parse_exact(payment: &Payment) -> Result<EvmPayload, Verdict> {
    if payment.payload.contains_key(permit2::PAYLOAD_FIELD) {
        let permit = permit2::parse(payment)?;
        return Ok(EvmPayload::Permit2(
            Box::new(permit),
            permit2::Permit2Scheme::Exact,
        ));
    }
    let (auth, signature) = parse_authorization(payment)?;
    Ok(EvmPayload::Eip3009(auth, signature))
}

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
    /// The authorization's nonce is spent, in the code of its transfer method.
    fn reused_reason(&self, payment_key: &str) -> Reason {
        if payment_key.starts_with(permit2::KEY_PREFIX) {
            Reason::Permit2InvalidNonce
        } else {
            Reason::ExactEvmNonceAlreadyUsed
        }
    }

    type Parsed = EvmPayload;

    fn parse(&self, payment: &Payment) -> Option<Self::Parsed> {
        parse_exact(payment).ok()
    }

    /// EIP-3009: asset, payer and authorization nonce. Permit2: payer and permit nonce
    /// (Permit2 spends a nonce once per owner, whatever the token). One authorization moves
    /// funds once, whatever else the request says; the two forms never collide.
    fn payment_key(&self, payment: &Payment, parsed: &Self::Parsed) -> Option<String> {
        match parsed {
            EvmPayload::Eip3009(auth, _) => {
                let asset = Address::from_str(&payment.requirements.asset).ok()?;
                Some(format!("{asset:#x}/{:#x}/{:#x}", auth.from, auth.nonce))
            }
            EvmPayload::Permit2(permit, _) => Some(permit2::payment_key(permit)),
        }
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        Some(parse_exact(payment).ok()?.payer().to_checksum(None))
    }

    type Checked = Checked;

    async fn check(&self, payment: &Payment) -> Result<Checked, Verdict> {
        self.chain().check(payment, None, false).await
    }

    fn payer(checked: &Checked) -> String {
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
        chain
            .check_and_record_as(ledger, (payment, parsed), draft, signer)
            .await
    }
}

impl EngineScheme for ExactEvm {
    type Chain = EvmChain;
    const NAME: &'static str = "exact";

    fn engine(&self) -> &Engine<EvmChain> {
        &self.engine
    }

    /// The gas-sponsoring extensions, where `exact` takes Permit2 payments.
    fn extensions(&self) -> Vec<&'static str> {
        let chain = self.chain();
        chain.permit2_extensions(chain.permit2)
    }
}
