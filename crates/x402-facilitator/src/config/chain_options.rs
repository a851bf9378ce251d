//! Each network's chain section, read by its chain crate: the service keeps the keys every
//! network has (RPC URLs, signer keys, assets, amounts, timeouts, schemes) and hands the
//! rest of `[networks."<id>"]` to the crate of the network's family, which knows its keys,
//! their defaults and the environment keys it reads.

use x402_protocol::ChainFamily;

use super::ConfigError;

/// A network's chain-specific options, as its chain crate resolved them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainOptions {
    /// An EVM network.
    #[cfg(feature = "evm")]
    Evm(x402_evm::EvmOptions),
    /// An SVM network (Solana, Fogo).
    #[cfg(feature = "svm")]
    Svm(x402_svm::SvmOptions),
    /// A NEAR network.
    #[cfg(feature = "near")]
    Near(x402_near::NearOptions),
    /// A Stellar network.
    #[cfg(feature = "stellar")]
    Stellar(x402_stellar::StellarOptions),
}

impl ChainOptions {
    /// The chain crate of `family` reads `section` (the keys the service does not own);
    /// `key` names the section in errors. A family whose crate is not in this build is
    /// refused here, before anything is opened.
    pub fn read(family: ChainFamily, section: toml::Table, key: &str) -> Result<Self, ConfigError> {
        let at = |e: x402_protocol::SectionError| {
            ConfigError::new(format!("{key}.{}", e.key), e.message)
        };
        let unreadable = |e: toml::de::Error| ConfigError::new(key, e.message().to_owned());
        let _ = (&at, &unreadable, &section);
        match family {
            #[cfg(feature = "evm")]
            ChainFamily::Evm => {
                let section: x402_evm::EvmSection =
                    toml::Value::Table(section).try_into().map_err(unreadable)?;
                Ok(ChainOptions::Evm(section.resolve().map_err(at)?))
            }
            #[cfg(feature = "svm")]
            ChainFamily::Svm => {
                let section: x402_svm::SvmSection =
                    toml::Value::Table(section).try_into().map_err(unreadable)?;
                Ok(ChainOptions::Svm(section.resolve().map_err(at)?))
            }
            #[cfg(feature = "near")]
            ChainFamily::Near => {
                let section: x402_near::NearSection =
                    toml::Value::Table(section).try_into().map_err(unreadable)?;
                Ok(ChainOptions::Near(section.resolve().map_err(at)?))
            }
            #[cfg(feature = "stellar")]
            ChainFamily::Stellar => {
                let section: x402_stellar::StellarSection =
                    toml::Value::Table(section).try_into().map_err(unreadable)?;
                Ok(ChainOptions::Stellar(section.resolve().map_err(at)?))
            }
            // A build without that family's feature.
            #[allow(unreachable_patterns)]
            other => Err(ConfigError::new(
                key,
                format!("the {other:?} chain family is not available in this build"),
            )),
        }
    }
}

/// The environment key whose signer key serves every network of `family` that names none.
pub fn signer_key_env(family: ChainFamily) -> Option<&'static str> {
    match family {
        #[cfg(feature = "evm")]
        ChainFamily::Evm => Some(x402_evm::config::SIGNER_KEY_ENV),
        #[cfg(feature = "svm")]
        ChainFamily::Svm => Some(x402_svm::config::SIGNER_KEY_ENV),
        #[cfg(feature = "near")]
        ChainFamily::Near => Some(x402_near::config::SIGNER_KEY_ENV),
        #[cfg(feature = "stellar")]
        ChainFamily::Stellar => Some(x402_stellar::config::SIGNER_KEY_ENV),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The default floor of a signer's gas balance on a network of `family`.
pub fn default_min_signer_balance(family: ChainFamily) -> u128 {
    match family {
        #[cfg(feature = "svm")]
        ChainFamily::Svm => x402_svm::config::DEFAULT_MIN_FEE_PAYER_LAMPORTS,
        #[cfg(feature = "near")]
        ChainFamily::Near => x402_near::config::DEFAULT_MIN_RELAYER_YOCTO,
        #[cfg(feature = "stellar")]
        ChainFamily::Stellar => x402_stellar::config::DEFAULT_MIN_SIGNER_STROOPS,
        #[cfg(feature = "evm")]
        _ => x402_evm::config::DEFAULT_MIN_SIGNER_BALANCE,
        #[cfg(not(feature = "evm"))]
        _ => 0,
    }
}
