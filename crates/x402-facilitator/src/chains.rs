//! Builds one chain per configured network, by chain family, and the schemes its
//! configuration names on it.

use std::sync::Arc;

use x402_protocol::{Chain, Scheme};

#[cfg(any(
    feature = "evm",
    feature = "svm",
    feature = "near",
    feature = "stellar"
))]
use crate::config::ChainOptions;
use crate::config::{NetworkConfig, NonceFetchMode};
use crate::served::Served;

/// Why a network could not be served.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve {network}: {message}")]
pub struct ChainSetupError {
    /// The CAIP-2 id.
    pub network: String,
    /// What went wrong (never contains a key or RPC URL).
    pub message: String,
}

/// Checks every signer key before anything is created on disk (the ledger file among
/// them): a bad key is a configuration error naming where it came from.
pub fn check_keys(networks: &[NetworkConfig]) -> Result<(), crate::config::ConfigError> {
    for network in networks {
        for (i, key) in network.signer_keys.iter().enumerate() {
            let valid = match network.family {
                #[cfg(feature = "evm")]
                x402_protocol::ChainFamily::Evm => {
                    x402_evm::EvmNetwork::signer_key_is_valid(key.expose())
                }
                #[cfg(feature = "svm")]
                x402_protocol::ChainFamily::Svm => {
                    x402_svm::SvmNetwork::fee_payer_key_is_valid(key.expose())
                }
                #[cfg(feature = "near")]
                x402_protocol::ChainFamily::Near => {
                    x402_near::NearNetwork::relayer_key_is_valid(key.expose())
                }
                #[cfg(feature = "stellar")]
                x402_protocol::ChainFamily::Stellar => {
                    x402_stellar::signer_key_is_valid(key.expose())
                }
                // No chain crate to judge it (a build without that family's feature):
                // building the handler refuses the network.
                #[allow(unreachable_patterns)]
                _ => {
                    let _ = key;
                    true
                }
            };
            if !valid {
                return Err(crate::config::ConfigError {
                    key: network.signer_keys_from.clone(),
                    message: format!(
                        "key #{} for {} is not a valid {:?} signer key",
                        i + 1,
                        network.chain_id,
                        network.family
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Creates the chains and schemes of all configured networks.
pub fn build(
    networks: &[NetworkConfig],
    ledger: &Arc<x402_ledger::Ledger>,
    nonce_mode: NonceFetchMode,
) -> Result<Served, ChainSetupError> {
    let mut served = Served::new();
    for network in networks {
        let (chain, schemes) = build_one(network, ledger, nonce_mode)?;
        served.add(chain, schemes);
    }
    Ok(served)
}

/// A network's chain and the schemes configured on it.
type Built = (Arc<dyn Chain>, Vec<Arc<dyn Scheme>>);

/// The schemes `names` of one network, or the error naming the one its crate lacks.
#[cfg(any(
    feature = "evm",
    feature = "svm",
    feature = "near",
    feature = "stellar"
))]
fn schemes_of(
    network: &NetworkConfig,
    served: &[&str],
    scheme: impl Fn(&str) -> Option<Arc<dyn Scheme>>,
) -> Result<Vec<Arc<dyn Scheme>>, ChainSetupError> {
    network
        .schemes
        .iter()
        .map(|name| {
            scheme(name).ok_or_else(|| ChainSetupError {
                network: network.chain_id.to_string(),
                message: format!(
                    "scheme {name:?} is not served on this chain family (served: {})",
                    served.join(", ")
                ),
            })
        })
        .collect()
}

fn build_one(
    network: &NetworkConfig,
    ledger: &Arc<x402_ledger::Ledger>,
    nonce_mode: NonceFetchMode,
) -> Result<Built, ChainSetupError> {
    #[cfg(not(feature = "evm"))]
    let _ = nonce_mode; // only EVM chains have account nonces
    #[cfg(not(any(
        feature = "evm",
        feature = "svm",
        feature = "near",
        feature = "stellar"
    )))]
    let _ = ledger; // no chain family compiled in: nothing settles
    let fail = |message: String| ChainSetupError {
        network: network.chain_id.to_string(),
        message,
    };
    match &network.chain {
        #[cfg(feature = "evm")]
        ChainOptions::Evm(options) => {
            let assets = network
                .assets
                .listed()
                .iter()
                .map(|a| {
                    a.parse::<x402_evm::EvmAddress>()
                        .map_err(|_| fail(format!("asset {a:?} is not an address")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let settings = x402_evm::EvmSettings {
                chain_id: network.chain_id.clone(),
                rpc_urls: exposed(&network.rpc_urls),
                signer_keys: exposed(&network.signer_keys),
                options: options.clone(),
                receipt_timeout: network.receipt_timeout,
                assets,
                min_signer_balance: network.min_signer_balance,
                rpc_timeout: network.rpc_timeout,
                ledger: ledger.clone(),
                nonce_mode: match nonce_mode {
                    NonceFetchMode::Cached => x402_evm::NonceFetchMode::Cached,
                    NonceFetchMode::AlwaysFresh => x402_evm::NonceFetchMode::AlwaysFresh,
                },
            };
            let chain = x402_evm::EvmNetwork::new(settings).map_err(|e| fail(e.to_string()))?;
            let schemes = schemes_of(network, x402_evm::SCHEMES, |name| chain.scheme(name))?;
            Ok((Arc::new(chain), schemes))
        }
        #[cfg(feature = "svm")]
        ChainOptions::Svm(options) => {
            let settings = x402_svm::SvmSettings {
                chain_id: network.chain_id.clone(),
                rpc_urls: exposed(&network.rpc_urls),
                fee_payer_keys: exposed(&network.signer_keys),
                options: options.clone(),
                confirm_timeout: network.receipt_timeout,
                rpc_timeout: network.rpc_timeout,
                min_fee_payer_lamports: u64::try_from(network.min_signer_balance)
                    .unwrap_or(u64::MAX),
                ledger: ledger.clone(),
            };
            let chain = x402_svm::SvmNetwork::new(settings).map_err(|e| fail(e.to_string()))?;
            let schemes = schemes_of(network, x402_svm::SCHEMES, |name| chain.scheme(name))?;
            Ok((Arc::new(chain), schemes))
        }
        #[cfg(feature = "near")]
        ChainOptions::Near(options) => {
            let settings = x402_near::NearSettings {
                chain_id: network.chain_id.clone(),
                rpc_urls: exposed(&network.rpc_urls),
                relayer_keys: exposed(&network.signer_keys),
                options: options.clone(),
                confirm_timeout: network.receipt_timeout,
                rpc_timeout: network.rpc_timeout,
                min_relayer_yocto: network.min_signer_balance,
                ledger: ledger.clone(),
            };
            let chain = x402_near::NearNetwork::new(settings).map_err(|e| fail(e.to_string()))?;
            let schemes = schemes_of(network, x402_near::SCHEMES, |name| chain.scheme(name))?;
            Ok((Arc::new(chain), schemes))
        }
        #[cfg(feature = "stellar")]
        ChainOptions::Stellar(options) => build_stellar(network, options, ledger),
        // Only in a build without any chain family, where no network can be configured.
        #[allow(unreachable_patterns)]
        _ => Err(fail("no chain family is available in this build".into())),
    }
}

/// A Stellar network and its schemes.
#[cfg(feature = "stellar")]
fn build_stellar(
    network: &NetworkConfig,
    options: &x402_stellar::StellarOptions,
    ledger: &Arc<x402_ledger::Ledger>,
) -> Result<Built, ChainSetupError> {
    let settings = x402_stellar::StellarSettings {
        chain_id: network.chain_id.clone(),
        rpc_urls: exposed(&network.rpc_urls),
        signer_keys: exposed(&network.signer_keys),
        options: options.clone(),
        confirm_timeout: network.receipt_timeout,
        rpc_timeout: network.rpc_timeout,
        min_signer_stroops: i64::try_from(network.min_signer_balance).unwrap_or(i64::MAX),
        ledger: ledger.clone(),
    };
    let chain = x402_stellar::StellarNetwork::new(settings).map_err(|e| ChainSetupError {
        network: network.chain_id.to_string(),
        message: e.to_string(),
    })?;
    let schemes = schemes_of(network, x402_stellar::SCHEMES, |name| chain.scheme(name))?;
    Ok((Arc::new(chain), schemes))
}

/// The secrets' values, for the chain crate that uses them (they are never logged).
#[cfg(any(
    feature = "evm",
    feature = "svm",
    feature = "near",
    feature = "stellar"
))]
fn exposed(secrets: &[crate::config::Secret]) -> Vec<String> {
    secrets.iter().map(|s| s.expose().to_owned()).collect()
}
