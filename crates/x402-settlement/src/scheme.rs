//! A scheme whose settlements run on a network's [`Engine`] is a [`Scheme`] of the
//! service through [`OnEngine`]: the chain crate says only what is its own (the name, the
//! `/supported` extra, its [`SchemeOps`]), and verify, settle and the ledger lookup are
//! wired here once for every chain.

use async_trait::async_trait;
use x402_protocol::v2::JsonObject;
use x402_protocol::{ChainId, Payment, Scheme, Settlement, Verdict};

use crate::engine::Engine;
use crate::ops::{ChainOps, SchemeOps};

/// What a scheme on an engine says about itself.
pub trait EngineScheme: SchemeOps + 'static {
    /// The chain operations of its network.
    type Chain: ChainOps;

    /// The scheme's name, e.g. `exact`.
    const NAME: &'static str;

    /// The engine of the network it runs on.
    fn engine(&self) -> &Engine<Self::Chain>;

    /// Scheme-specific `extra` advertised in `/supported` (for example a fee payer).
    fn supported_extra(&self) -> Option<JsonObject> {
        None
    }

    /// The v2 extensions the scheme answers (see `Scheme::extensions`).
    fn extensions(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Whether v1 requests are served (see `Scheme::serves_v1`).
    fn serves_v1(&self) -> bool {
        true
    }

    /// The amount a successful settlement of `payment` moved, for schemes where the
    /// resource server names it at settle (`upto`); answered in v2 `SettleResponse.amount`.
    fn settled_amount(&self, _payment: &Payment) -> Option<String> {
        None
    }
}

/// An [`EngineScheme`] served as a [`Scheme`].
pub struct OnEngine<S>(pub S);

#[async_trait]
impl<S: EngineScheme> Scheme for OnEngine<S> {
    fn scheme(&self) -> &str {
        S::NAME
    }

    fn network(&self) -> &ChainId {
        self.0.engine().chain().network()
    }

    fn supported_extra(&self) -> Option<JsonObject> {
        self.0.supported_extra()
    }

    fn extensions(&self) -> Vec<&'static str> {
        self.0.extensions()
    }

    fn serves_v1(&self) -> bool {
        self.0.serves_v1()
    }

    fn claimed_payer(&self, payment: &Payment) -> Option<String> {
        self.0.claimed_payer(payment)
    }

    async fn is_recorded(&self, payment: &Payment) -> bool {
        self.0.engine().is_recorded(&self.0, payment).await
    }

    async fn verify(&self, payment: &Payment) -> Verdict {
        self.0.verify(payment).await
    }

    async fn settle(&self, payment: &Payment) -> Settlement {
        let mut settlement = self.0.engine().settle(&self.0, payment).await;
        if settlement.success {
            settlement.amount = self.0.settled_amount(payment);
        }
        settlement
    }
}
