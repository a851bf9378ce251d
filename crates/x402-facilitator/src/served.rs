//! What this process serves: one [`Chain`] per configured network and the [`Scheme`]s on
//! each. Health and reconciliation walk the chains (once per network, whatever number of
//! schemes run on it); `/verify` and `/settle` pick a scheme by (scheme, network).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use x402_protocol::{Chain, ChainId, Reason, Scheme};

/// A scheme's place: (scheme name, network).
pub type SchemeKey = (String, ChainId);

/// The chains and schemes of this process.
#[derive(Default, Clone)]
pub struct Served {
    chains: BTreeMap<ChainId, Arc<dyn Chain>>,
    schemes: HashMap<SchemeKey, Arc<dyn Scheme>>,
}

impl Served {
    /// Nothing served (a facilitator with no network configured answers every payment
    /// `invalid_network`).
    pub fn new() -> Self {
        Served::default()
    }

    /// Adds a network and the schemes served on it. A scheme for another network than the
    /// chain's is a programming error and is left out with an error log.
    pub fn add(&mut self, chain: Arc<dyn Chain>, schemes: Vec<Arc<dyn Scheme>>) {
        let network = chain.network().clone();
        for scheme in schemes {
            if scheme.network() != &network {
                tracing::error!(network = %network, scheme_network = %scheme.network(), "scheme built for another network; not served");
                continue;
            }
            self.schemes
                .insert((scheme.scheme().to_owned(), network.clone()), scheme);
        }
        self.chains.insert(network, chain);
    }

    /// Every configured network, in id order.
    pub fn chains(&self) -> impl Iterator<Item = &Arc<dyn Chain>> {
        self.chains.values()
    }

    /// Whether `network` is configured here.
    pub fn serves(&self, network: &ChainId) -> bool {
        self.chains.contains_key(network)
    }

    /// Every (scheme, network) served, sorted, with its scheme.
    pub fn schemes(&self) -> Vec<(&SchemeKey, &Arc<dyn Scheme>)> {
        let mut all: Vec<_> = self.schemes.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// The scheme for a payment, or the reason it is refused: `unsupported_scheme` on a
    /// served network, `invalid_network` otherwise.
    pub fn scheme_for(&self, scheme: &str, network: &ChainId) -> Result<&Arc<dyn Scheme>, Reason> {
        if let Some(found) = self.schemes.get(&(scheme.to_owned(), network.clone())) {
            return Ok(found);
        }
        Err(if self.serves(network) {
            Reason::UnsupportedScheme
        } else {
            Reason::InvalidNetwork
        })
    }
}
