//! Builds one scheme handler per configured network, by chain family.

use std::sync::Arc;

use x402_protocol::SchemeHandler;

use crate::app::HandlerMap;
use crate::config::{NetworkConfig, NonceFetchMode};

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
                    x402_evm::ExactEvm::signer_key_is_valid(key.expose())
                }
                #[cfg(feature = "svm")]
                x402_protocol::ChainFamily::Svm => {
                    x402_svm::ExactSvm::fee_payer_key_is_valid(key.expose())
                }
                // No chain crate to judge it: building the handler refuses the network.
                _ => true,
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

/// Creates the handlers for all configured networks.
pub fn build_handlers(
    networks: &[NetworkConfig],
    ledger: &Arc<x402_ledger::Ledger>,
    nonce_mode: NonceFetchMode,
) -> Result<HandlerMap, ChainSetupError> {
    let mut handlers = HandlerMap::new();
    for network in networks {
        let handler = build_one(network, ledger, nonce_mode)?;
        handlers.insert(
            (handler.scheme().to_owned(), network.chain_id.clone()),
            handler,
        );
    }
    Ok(handlers)
}

fn build_one(
    network: &NetworkConfig,
    ledger: &Arc<x402_ledger::Ledger>,
    nonce_mode: NonceFetchMode,
) -> Result<Arc<dyn SchemeHandler>, ChainSetupError> {
    #[cfg(not(feature = "evm"))]
    let _ = nonce_mode; // only EVM chains have account nonces
    #[cfg(not(any(feature = "evm", feature = "svm")))]
    let _ = ledger; // no chain family compiled in: nothing settles
    let fail = |message: String| ChainSetupError {
        network: network.chain_id.to_string(),
        message,
    };
    match network.family {
        #[cfg(feature = "evm")]
        x402_protocol::ChainFamily::Evm => {
            let parse_all = |items: &[String], what: &str| {
                items
                    .iter()
                    .map(|a| {
                        x402_evm_address(a)
                            .ok_or_else(|| fail(format!("{what} {a:?} is not an address")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            let settings = x402_evm::EvmSettings {
                chain_id: network.chain_id.clone(),
                rpc_urls: exposed(&network.rpc_urls),
                signer_keys: exposed(&network.signer_keys),
                max_gas_per_settlement: network.max_gas_per_settlement,
                max_gas_per_deployment: network.max_gas_per_deployment,
                receipt_timeout: network.receipt_timeout,
                assets: parse_all(&network.assets.listed(), "asset")?,
                erc6492_factories: parse_all(&network.erc6492_factories, "ERC-6492 factory")?,
                min_signer_balance: x402_evm::alloy::primitives::U256::from(
                    network.min_signer_balance,
                ),
                expected_block_interval: network.expected_block_interval,
                rpc_timeout: network.rpc_timeout,
                ledger: ledger.clone(),
                nonce_mode: match nonce_mode {
                    NonceFetchMode::Cached => x402_evm::NonceFetchMode::Cached,
                    NonceFetchMode::AlwaysFresh => x402_evm::NonceFetchMode::AlwaysFresh,
                },
            };
            x402_evm::ExactEvm::new(settings)
                .map(|h| Arc::new(h) as Arc<dyn SchemeHandler>)
                .map_err(|e| fail(e.to_string()))
        }
        #[cfg(feature = "svm")]
        x402_protocol::ChainFamily::Svm => {
            let settings = x402_svm::SvmSettings {
                chain_id: network.chain_id.clone(),
                rpc_urls: exposed(&network.rpc_urls),
                fee_payer_keys: exposed(&network.signer_keys),
                max_compute_units: network.svm.max_compute_units,
                max_compute_unit_price: network.svm.max_compute_unit_price,
                optional_programs: network.svm.optional_programs.clone(),
                commitment: network.svm.commitment.clone(),
                confirm_timeout: network.receipt_timeout,
                rpc_timeout: network.rpc_timeout,
                local_stand_in: network.svm.local_stand_in,
                min_fee_payer_lamports: u64::try_from(network.min_signer_balance)
                    .unwrap_or(u64::MAX),
                ledger: ledger.clone(),
            };
            x402_svm::ExactSvm::new(settings)
                .map(|h| Arc::new(h) as Arc<dyn SchemeHandler>)
                .map_err(|e| fail(e.to_string()))
        }
        other => Err(fail(format!(
            "the {other:?} chain family is not available in this build"
        ))),
    }
}

/// The secrets' values, for the chain crate that uses them (they are never logged).
#[cfg(any(feature = "evm", feature = "svm"))]
fn exposed(secrets: &[crate::config::Secret]) -> Vec<String> {
    secrets.iter().map(|s| s.expose().to_owned()).collect()
}

#[cfg(feature = "evm")]
fn x402_evm_address(text: &str) -> Option<x402_evm::exact::EvmAddress> {
    text.parse().ok()
}
