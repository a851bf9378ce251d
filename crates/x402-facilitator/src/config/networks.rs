//! The networks of the configuration: `[networks."<id>"]` file sections and the
//! `RPC_URL_<V1 NAME>` environment keys, merged by CAIP-2 id. The keys every network has
//! are read here; the rest of a section is its chain crate's ([`ChainOptions`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use x402_protocol::networks::{self, ChainFamily};
use x402_protocol::ChainId;

use super::chain_options::{default_min_signer_balance, signer_key_env};
use super::{
    default_schemes, env_suffix_to_v1_name, hardening, ChainOptions, ConfigError, EnvSource,
    NetworkConfig, Secret, DEFAULT_RECEIPT_TIMEOUT, DEFAULT_RPC_TIMEOUT,
};

/// One `[networks."<id>"]` section: the keys every network has, and the chain's own.
#[derive(Debug, Default, Deserialize)]
pub(super) struct FileNetwork {
    #[serde(default)]
    rpc_urls: Vec<Secret>,
    #[serde(default)]
    signer_keys: Vec<Secret>,
    #[serde(default)]
    assets: Vec<String>,
    min_amount: Option<String>,
    receipt_timeout_ms: Option<u64>,
    min_signer_balance: Option<String>,
    rpc_timeout_ms: Option<u64>,
    schemes: Option<Vec<String>>,
    /// Every other key: read (and unknown keys refused) by the chain crate.
    #[serde(flatten)]
    chain: toml::Table,
}

/// The signer keys that serve every network of a family naming none
/// (`EVM_PRIVATE_KEY`, `SVM_PRIVATE_KEY`, `NEAR_PRIVATE_KEY`, `STELLAR_PRIVATE_KEY`, or the same keys in the file).
struct SignerDefaults(BTreeMap<&'static str, Secret>);

impl SignerDefaults {
    /// The environment over the file, for each key.
    fn read<const N: usize>(
        env: &dyn EnvSource,
        from_file: [(&'static str, Option<Secret>); N],
    ) -> Self {
        let mut keys = BTreeMap::new();
        for (name, file) in from_file {
            if let Some(key) = env.get(name).map(Secret::new).or(file) {
                keys.insert(name, key);
            }
        }
        SignerDefaults(keys)
    }
}

/// The file's networks, then `RPC_URL_<V1 NAME>`, which adds a network or replaces its
/// RPC list; keyed by CAIP-2 id with the key that named each (for errors).
fn collect(
    file_networks: BTreeMap<String, FileNetwork>,
    env: &dyn EnvSource,
    notices: &mut Vec<String>,
) -> Result<BTreeMap<ChainId, (String, FileNetwork)>, ConfigError> {
    let mut by_id: BTreeMap<ChainId, (String, FileNetwork)> = BTreeMap::new();
    for (name, network) in file_networks {
        if let Some(known) = networks::by_retired_caip2(&name) {
            notices.push(format!(
                "networks.\"{name}\": a retired spelling, served as {} ({}); requests must use that id",
                known.caip2, known.v1_name
            ));
        }
        let id = networks::resolve_network(&name)
            .map_err(|e| ConfigError::new(format!("networks.{name}"), e.to_string()))?;
        by_id.insert(id, (format!("networks.{name}"), network));
    }
    for key in env.keys_with_prefix("RPC_URL_") {
        let Some(value) = env.get(&key) else { continue };
        let name = env_suffix_to_v1_name(&key["RPC_URL_".len()..]);
        let known = networks::by_v1_name(&name).ok_or_else(|| {
            ConfigError::new(
                key.clone(),
                format!("{name:?} is not a known v1 network name (see docs/networks.md)"),
            )
        })?;
        let entry = by_id
            .entry(known.chain_id())
            .or_insert_with(|| (key.clone(), FileNetwork::default()));
        entry.0 = key.clone();
        entry.1.rpc_urls = value
            .split(',')
            .map(|u| Secret::new(u.trim()))
            .filter(|u| !u.expose().is_empty())
            .collect();
    }
    Ok(by_id)
}

/// RPC URLs present and `http(s)`, and a family this facilitator serves.
fn family_and_endpoints(
    chain_id: &ChainId,
    key: &str,
    network: &FileNetwork,
) -> Result<ChainFamily, ConfigError> {
    let family = networks::family_of(chain_id).ok_or_else(|| {
        ConfigError::new(
            key,
            format!(
                "no chain family serves namespace {:?}",
                chain_id.namespace()
            ),
        )
    })?;
    if network.rpc_urls.is_empty() {
        return Err(ConfigError::new(key, "no RPC URL configured"));
    }
    for url in &network.rpc_urls {
        let u = url.expose();
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(ConfigError::new(
                key,
                "RPC URLs must start with http:// or https://",
            ));
        }
    }
    Ok(family)
}

/// One network's configuration: the shared keys here, its section by its chain crate.
fn network_config(
    chain_id: ChainId,
    key: String,
    network: FileNetwork,
    defaults: &SignerDefaults,
    env: &dyn EnvSource,
) -> Result<NetworkConfig, ConfigError> {
    let family = family_and_endpoints(&chain_id, &key, &network)?;
    let mut signer_keys = network.signer_keys;
    let mut signer_keys_from = format!("{key}.signer_keys");
    if signer_keys.is_empty() {
        if let Some((name, secret)) = signer_key_env(family)
            .and_then(|name| defaults.0.get(name).map(|secret| (name, secret)))
        {
            signer_keys.push(secret.clone());
            signer_keys_from = name.to_owned();
        }
    }
    if signer_keys.is_empty() {
        return Err(ConfigError::new(
            key,
            "no signer key: set EVM_PRIVATE_KEY (EVM), SVM_PRIVATE_KEY (SVM), NEAR_PRIVATE_KEY (NEAR), STELLAR_PRIVATE_KEY (Stellar) or signer_keys for this network",
        ));
    }
    let min_signer_balance = match &network.min_signer_balance {
        Some(text) => text.trim().parse::<u128>().map_err(|e| {
            ConfigError::new(
                format!("{key}.min_signer_balance"),
                format!("{text:?}: {e}"),
            )
        })?,
        None => default_min_signer_balance(family),
    };
    let schemes = network.schemes.unwrap_or_else(default_schemes);
    if schemes.is_empty() {
        return Err(ConfigError::new(
            format!("{key}.schemes"),
            "lists no scheme; leave it out to serve exact",
        ));
    }
    let chain = ChainOptions::read(family, network.chain, &key)?;
    let assets = hardening::asset_policy(env, &key, &chain_id, &network.assets)?;
    let min_amount = hardening::min_amount(env, &key, &chain_id, network.min_amount.as_deref())?;
    Ok(NetworkConfig {
        chain_id,
        family,
        rpc_urls: network.rpc_urls,
        signer_keys,
        signer_keys_from,
        assets,
        min_amount,
        receipt_timeout: network
            .receipt_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_RECEIPT_TIMEOUT),
        min_signer_balance,
        rpc_timeout: network
            .rpc_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_RPC_TIMEOUT),
        schemes,
        chain,
    })
}

/// Every configured network, in CAIP-2 order; `signer_keys` are the keys that serve each
/// family naming none, from the file (the environment wins).
pub(super) fn all(
    env: &dyn EnvSource,
    file_networks: BTreeMap<String, FileNetwork>,
    signer_keys: [(&'static str, Option<Secret>); 4],
    notices: &mut Vec<String>,
) -> Result<Vec<NetworkConfig>, ConfigError> {
    let defaults = SignerDefaults::read(env, signer_keys);
    let by_id = collect(file_networks, env, notices)?;
    by_id
        .into_iter()
        .map(|(chain_id, (key, network))| network_config(chain_id, key, network, &defaults, env))
        .collect()
}
