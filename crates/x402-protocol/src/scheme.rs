//! The two interfaces every chain crate implements: a [`Chain`] per configured network
//! (health, signers, reconciliation) and a [`Scheme`] per scheme served on it (verify,
//! settle). A second scheme on a network is a second [`Scheme`] on the same [`Chain`].

use async_trait::async_trait;

use crate::caip2::ChainId;
use crate::payment::{Payment, Settlement, Verdict};
use crate::v2::JsonObject;

/// One result of a handler's deep health check (`/health/deep`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthCheck {
    /// Stable check name, e.g. `rpc_reachable`.
    pub name: String,
    /// Whether the check passed.
    pub ok: bool,
    /// A failed critical check makes the whole deep check answer 503.
    pub critical: bool,
    /// What was seen; never contains secrets such as RPC URLs.
    pub detail: String,
}

impl HealthCheck {
    /// A check result; `critical` decides whether a failure fails the instance.
    pub fn new(name: &str, ok: bool, critical: bool, detail: impl Into<String>) -> Self {
        HealthCheck {
            name: name.to_owned(),
            ok,
            critical,
            detail: detail.into(),
        }
    }
}

/// What one pass over a handler's unfinished settlements did (start-up recovery and the
/// periodic reconciler).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// Open settlements looked at.
    pub examined: usize,
    /// Found on chain and successful.
    pub confirmed: usize,
    /// Found final and unsuccessful (reverted, expired, superseded).
    pub failed: usize,
    /// Identical signed transactions sent again (dropped or never sent).
    pub resent: usize,
    /// New transactions built because the old one could never land (ruling: only with the
    /// authorization still unused).
    pub replaced: usize,
    /// The ledger or the node could not be asked.
    pub errors: usize,
}

/// Why a chain crate refused its part of a network's configuration: the key at fault (as
/// the file or the environment spells it) and what is wrong, without the value when it
/// could be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SectionError {
    /// The setting, e.g. `commitment`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl SectionError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SectionError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// One configured network: what every scheme served on it shares (the node, the signers,
/// the ledger entries of its settlements). The service keeps one per network, whatever
/// number of schemes run on it, so health is checked and unfinished settlements are
/// reconciled once per network.
#[async_trait]
pub trait Chain: Send + Sync {
    /// The network served.
    fn network(&self) -> &ChainId;

    /// Addresses that pay for settlements on this network, for `/supported` `signers`.
    fn signer_addresses(&self) -> Vec<String>;

    /// Checks the network's own dependencies (node reachable, right chain, head advancing,
    /// signers funded). Called by `/health/deep`; must not move funds.
    async fn health(&self) -> Vec<HealthCheck>;

    /// Drives settlements left unfinished (by a crash, a node outage or a dropped
    /// transaction) to their outcome. Runs at start (`min_age` zero) and periodically.
    async fn reconcile(&self, min_age: std::time::Duration) -> ReconcileReport;
}

/// The rules of one scheme on one network: verify and settle. Each sees only
/// version-neutral [`Payment`]s, so a scheme is written once for v1 and v2.
#[async_trait]
pub trait Scheme: Send + Sync {
    /// Scheme name, e.g. `exact`.
    fn scheme(&self) -> &str;

    /// The network served.
    fn network(&self) -> &ChainId;

    /// Scheme-specific `extra` advertised in `/supported` (for example a fee payer).
    fn supported_extra(&self) -> Option<JsonObject> {
        None
    }

    /// The v2 extensions this scheme answers on its network, listed in `/supported` so a
    /// resource server knows it may offer them (for example `eip2612GasSponsoring`).
    fn extensions(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Whether the scheme serves x402 v1 requests too. A scheme whose specification is
    /// v2 only (NEAR `exact`) says no: `/supported` lists it for v2 only and a v1 request
    /// is refused naming the v2 network id that serves it.
    fn serves_v1(&self) -> bool {
        true
    }

    /// The payer the payment names, read from its payload alone (no I/O, no signature
    /// check). Refusals given before the scheme runs (flags, payment ids) carry it, so
    /// that every answer names the payer whenever the payload says who it is.
    fn claimed_payer(&self, payment: &Payment) -> Option<String>;

    /// Whether the ledger already knows this payment (a settlement was recorded for it).
    /// Flags and policies gate only new settlements: a known payment is answered from its
    /// record whatever they say. Asked only when a request is about to be refused; a ledger
    /// that cannot be read counts as "not known".
    async fn is_recorded(&self, payment: &Payment) -> bool;

    /// Checks a payment without moving funds. Never panics; every refusal is a [`Verdict`].
    async fn verify(&self, payment: &Payment) -> Verdict;

    /// Verifies again and executes the payment on chain.
    ///
    /// Must never broadcast twice for one payment, and must report the hash of anything
    /// it broadcast, whatever the outcome.
    async fn settle(&self, payment: &Payment) -> Settlement;
}
