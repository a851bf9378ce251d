//! The SVM part of a network's configuration: the keys of its file section (the exact-SVM
//! sponsor policy and the commitment), their defaults, and the environment keys this crate
//! reads. The service reads the file and the environment and hands each network its
//! section; what the keys mean is decided here.

use std::str::FromStr;

use serde::Deserialize;
use solana_pubkey::Pubkey;
use x402_protocol::SectionError;

/// Default floor of a fee payer's balance for deep health: 0.01 SOL in lamports.
pub const DEFAULT_MIN_FEE_PAYER_LAMPORTS: u128 = 10_000_000;
/// The environment key with the fee-payer key of every SVM network that names none.
pub const SIGNER_KEY_ENV: &str = "SVM_PRIVATE_KEY";

/// The SVM keys of a `[networks."solana:…"]` file section (any other key is refused).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmSection {
    max_compute_units: Option<u32>,
    max_compute_unit_price: Option<u64>,
    optional_programs: Option<Vec<String>>,
    commitment: Option<String>,
    local_stand_in: Option<bool>,
}

/// The SVM settings of one network, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmOptions {
    /// Upper bound of the compute-unit limit a payment may set.
    pub max_compute_units: u32,
    /// Upper bound of the compute-unit price, micro-lamports per unit.
    pub max_compute_unit_price: u64,
    /// Programs allowed after the transfer (Memo and Lighthouse by default).
    pub optional_programs: Vec<String>,
    /// `confirmed` or `finalized`.
    pub commitment: String,
    /// The node is a local stand-in whose genesis does not match the CAIP-2 reference
    /// (tests, demos); deep health otherwise fails on such a mismatch.
    pub local_stand_in: bool,
}

impl Default for SvmOptions {
    fn default() -> Self {
        SvmOptions {
            max_compute_units: 400_000,
            max_compute_unit_price: 5_000_000,
            optional_programs: vec![
                "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr".into(),
                "L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95".into(),
            ],
            commitment: "confirmed".into(),
            local_stand_in: false,
        }
    }
}

impl SvmSection {
    /// The options the section says, defaults for what it leaves out.
    pub fn resolve(self) -> Result<SvmOptions, SectionError> {
        let defaults = SvmOptions::default();
        let commitment = self.commitment.unwrap_or(defaults.commitment);
        if !matches!(commitment.as_str(), "confirmed" | "finalized") {
            return Err(SectionError::new(
                "commitment",
                format!("{commitment:?} is not confirmed or finalized"),
            ));
        }
        let optional_programs = self.optional_programs.unwrap_or(defaults.optional_programs);
        if let Some(bad) = optional_programs
            .iter()
            .find(|p| Pubkey::from_str(p).is_err())
        {
            return Err(SectionError::new(
                "optional_programs",
                format!("{bad:?} is not a program address"),
            ));
        }
        Ok(SvmOptions {
            max_compute_units: self.max_compute_units.unwrap_or(defaults.max_compute_units),
            max_compute_unit_price: self
                .max_compute_unit_price
                .unwrap_or(defaults.max_compute_unit_price),
            optional_programs,
            commitment,
            local_stand_in: self.local_stand_in.unwrap_or(defaults.local_stand_in),
        })
    }
}
