//! The NEAR part of a network's configuration: the keys of its file section (the relayer
//! account, the gas this facilitator sponsors, how final an outcome must be, the stand-in
//! switch), their defaults, and the environment key of the relayer's signing key.

use serde::Deserialize;
use x402_protocol::SectionError;

/// The environment key with the relayer key of every NEAR network that names none
/// (`ed25519:<base58>` or `secp256k1:<base58>`, as `near-cli` writes keys).
pub const SIGNER_KEY_ENV: &str = "NEAR_PRIVATE_KEY";
/// Default floor of the relayer's balance for deep health: 1 NEAR in yocto.
pub const DEFAULT_MIN_RELAYER_YOCTO: u128 = 1_000_000_000_000_000_000_000_000;
/// Default cap on the gas one `ft_transfer` may ask for: 30 Tgas (a NEP-141 transfer
/// burns under 5 Tgas; wallets attach 30).
pub const DEFAULT_MAX_GAS: u64 = 30_000_000_000_000;

/// The NEAR keys of a `[networks."near:…"]` file section (any other key is refused).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearSection {
    relayer_account: Option<String>,
    max_gas: Option<u64>,
    finality: Option<String>,
    local_stand_in: Option<bool>,
}

/// The NEAR settings of one network, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearOptions {
    /// The account the relayer keys belong to; `None`: each key's implicit account (the
    /// hex of its ed25519 public key).
    pub relayer_account: Option<String>,
    /// Most gas the inner `ft_transfer` may ask for (the relayer pays it).
    pub max_gas: u64,
    /// `final` (default: the block is final) or `executed` (executed optimistically, which
    /// a fork can still undo).
    pub finality: String,
    /// The node is a local stand-in whose chain id is not the CAIP-2 reference (tests,
    /// demos); deep health otherwise fails on such a mismatch.
    pub local_stand_in: bool,
}

impl Default for NearOptions {
    fn default() -> Self {
        NearOptions {
            relayer_account: None,
            max_gas: DEFAULT_MAX_GAS,
            finality: "final".into(),
            local_stand_in: false,
        }
    }
}

impl NearSection {
    /// The options the section says, defaults for what it leaves out.
    pub fn resolve(self) -> Result<NearOptions, SectionError> {
        let defaults = NearOptions::default();
        let finality = self.finality.unwrap_or(defaults.finality);
        if !matches!(finality.as_str(), "final" | "executed") {
            return Err(SectionError::new(
                "finality",
                format!("{finality:?} is not final or executed"),
            ));
        }
        if let Some(account) = &self.relayer_account {
            if account
                .parse::<near_primitives::types::AccountId>()
                .is_err()
            {
                return Err(SectionError::new(
                    "relayer_account",
                    format!("{account:?} is not a NEAR account id"),
                ));
            }
        }
        let max_gas = self.max_gas.unwrap_or(defaults.max_gas);
        if max_gas == 0 {
            return Err(SectionError::new("max_gas", "must be above 0"));
        }
        Ok(NearOptions {
            relayer_account: self.relayer_account,
            max_gas,
            finality,
            local_stand_in: self.local_stand_in.unwrap_or(defaults.local_stand_in),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The section as the service hands it over (serde reads JSON as it reads TOML).
    fn section(keys: serde_json::Value) -> Result<NearOptions, SectionError> {
        serde_json::from_value::<NearSection>(keys)
            .expect("known keys")
            .resolve()
    }

    #[test]
    fn the_defaults_are_final_30_tgas_and_implicit_accounts() {
        assert_eq!(section(json!({})).unwrap(), NearOptions::default());
        assert_eq!(NearOptions::default().max_gas, 30_000_000_000_000);
        assert_eq!(NearOptions::default().finality, "final");
        assert_eq!(NearOptions::default().relayer_account, None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let key = |keys| section(keys).unwrap_err().key;
        assert_eq!(key(json!({"finality": "optimistic"})), "finality");
        assert_eq!(key(json!({"max_gas": 0})), "max_gas");
        assert_eq!(
            key(json!({"relayer_account": "Not An Account"})),
            "relayer_account"
        );
        let named = section(json!({"relayer_account": "relayer.near", "finality": "executed"}));
        let named = named.unwrap();
        assert_eq!(named.relayer_account.as_deref(), Some("relayer.near"));
        assert_eq!(named.finality, "executed");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        assert!(serde_json::from_value::<NearSection>(json!({"max_gass": 1})).is_err());
    }
}
