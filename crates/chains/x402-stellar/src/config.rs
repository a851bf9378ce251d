//! The Stellar part of a network's configuration: the keys of its file section (the fee
//! cap, the ledger close estimate), their defaults, the environment key of the fee-paying
//! account's secret seed and the default floor of its balance.

use serde::Deserialize;
use x402_protocol::SectionError;

/// The environment key with the secret seed (`S…`) of every Stellar network that names
/// none; several comma-separated seeds are several fee-paying accounts.
pub const SIGNER_KEY_ENV: &str = "STELLAR_PRIVATE_KEY";
/// Default cap on the whole fee of one settlement (inclusion plus resource fee), in
/// stroops: the official facilitator's default.
pub const DEFAULT_MAX_FEE_STROOPS: u32 = 50_000;
/// Default estimate of one ledger's close time, which turns `maxTimeoutSeconds` into
/// ledgers (the spec's fallback).
pub const DEFAULT_LEDGER_SECONDS: u32 = 5;
/// Default floor of a fee-paying account's balance for deep health: 10 XLM in stroops.
pub const DEFAULT_MIN_SIGNER_STROOPS: u128 = 100_000_000;

/// The Stellar keys of a `[networks."stellar:…"]` file section (any other key is refused).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StellarSection {
    max_fee_stroops: Option<u32>,
    ledger_seconds: Option<u32>,
}

/// The Stellar settings of one network, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StellarOptions {
    /// Most this facilitator pays for one settlement (the base fee plus the resource fee
    /// its own simulation asks for); a payment that needs more is refused.
    pub max_fee_stroops: u32,
    /// Seconds per ledger used to turn `maxTimeoutSeconds` into an expiration window.
    pub ledger_seconds: u32,
}

impl Default for StellarOptions {
    fn default() -> Self {
        StellarOptions {
            max_fee_stroops: DEFAULT_MAX_FEE_STROOPS,
            ledger_seconds: DEFAULT_LEDGER_SECONDS,
        }
    }
}

impl StellarSection {
    /// The options the section says, defaults for what it leaves out.
    pub fn resolve(self) -> Result<StellarOptions, SectionError> {
        let defaults = StellarOptions::default();
        let max_fee_stroops = self.max_fee_stroops.unwrap_or(defaults.max_fee_stroops);
        if max_fee_stroops <= 100 {
            return Err(SectionError::new(
                "max_fee_stroops",
                "must be above the 100-stroop base fee",
            ));
        }
        let ledger_seconds = self.ledger_seconds.unwrap_or(defaults.ledger_seconds);
        if ledger_seconds == 0 {
            return Err(SectionError::new("ledger_seconds", "must be above 0"));
        }
        Ok(StellarOptions {
            max_fee_stroops,
            ledger_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(keys: serde_json::Value) -> Result<StellarOptions, SectionError> {
        serde_json::from_value::<StellarSection>(keys)
            .expect("known keys")
            .resolve()
    }

    #[test]
    fn the_defaults_are_the_official_fee_cap_and_five_second_ledgers() {
        let defaults = section(json!({})).unwrap();
        assert_eq!(defaults, StellarOptions::default());
        assert_eq!(defaults.max_fee_stroops, 50_000);
        assert_eq!(defaults.ledger_seconds, 5);
    }

    #[test]
    fn bad_values_name_their_key_and_unknown_keys_are_refused() {
        let key = |keys| section(keys).unwrap_err().key;
        assert_eq!(key(json!({"max_fee_stroops": 100})), "max_fee_stroops");
        assert_eq!(key(json!({"ledger_seconds": 0})), "ledger_seconds");
        assert!(serde_json::from_value::<StellarSection>(json!({"max_fee": 1})).is_err());
    }
}
