//! Configuration: environment variables over an optional TOML file.
//!
//! The environment names are the ones the seed deployment uses (`HOST`, `PORT`,
//! `X402_VERSION_SUPPORT`, `SIGNER_TYPE`, `EVM_PRIVATE_KEY`, `RPC_URL_<V1 NAME>`); the
//! file can say more (several RPC URLs or keys per network). Any bad value stops
//! start-up with an error that names the key. The reference is `docs/configuration.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use x402_protocol::networks::{self, ChainFamily};
use x402_protocol::{ChainId, X402Version};

use crate::breaker::BreakerPolicy;
use crate::deprecation::V1Deprecation;
use crate::flags::{parse_networks, Flags};

mod hardening;
pub use hardening::{check_admin_token, AssetPolicy, RateLimits, ServerLimits};

/// A secret string (private key, RPC URL with an API key): never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// The environment variable or file key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Which protocol versions are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSupport {
    /// v1 requests accepted.
    pub v1: bool,
    /// v2 requests accepted.
    pub v2: bool,
}

impl VersionSupport {
    /// Parses `v1,v2`, `v1` or `v2` (spaces and case ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut support = VersionSupport {
            v1: false,
            v2: false,
        };
        for part in text.split(',').map(|p| p.trim().to_ascii_lowercase()) {
            match part.as_str() {
                "v1" | "1" => support.v1 = true,
                "v2" | "2" => support.v2 = true,
                other => {
                    return Err(format!(
                        "unknown version {other:?}; expected v1, v2 or v1,v2"
                    ))
                }
            }
        }
        if !support.v1 && !support.v2 {
            return Err("at least one of v1, v2 must be enabled".into());
        }
        Ok(support)
    }

    /// Whether `version` is served.
    pub fn allows(&self, version: X402Version) -> bool {
        match version {
            X402Version::V1 => self.v1,
            X402Version::V2 => self.v2,
        }
    }
}

impl fmt::Display for VersionSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.v1, self.v2) {
            (true, true) => f.write_str("v1,v2"),
            (true, false) => f.write_str("v1"),
            _ => f.write_str("v2"),
        }
    }
}

/// One network the facilitator serves.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// CAIP-2 id.
    pub chain_id: ChainId,
    /// Chain family (decides the chain crate).
    pub family: ChainFamily,
    /// RPC endpoints, tried in order.
    pub rpc_urls: Vec<Secret>,
    /// Signer private keys for this network.
    pub signer_keys: Vec<Secret>,
    /// Where the keys came from (`EVM_PRIVATE_KEY`, `networks.<id>.signer_keys`), for errors.
    pub signer_keys_from: String,
    /// The assets settled here (default: the registry's USDC; see `docs/operations.md`).
    pub assets: AssetPolicy,
    /// The smallest amount settled here, in the asset's smallest unit (at least 1).
    pub min_amount: u128,
    /// ERC-6492 factories the facilitator may call to deploy a payer's wallet.
    pub erc6492_factories: Vec<String>,
    /// Upper bound on gas a settlement may use.
    pub max_gas_per_settlement: u64,
    /// Upper bound on gas an ERC-6492 wallet deployment may use.
    pub max_gas_per_deployment: u64,
    /// How long `/settle` waits for a receipt before answering `settlement_pending`.
    pub receipt_timeout: Duration,
    /// Deep health fails when a signer holds less native currency than this (smallest unit).
    pub min_signer_balance: u128,
    /// Expected block interval; only when set does deep health judge the head stale.
    pub expected_block_interval: Option<Duration>,
    /// How long one RPC call may take before the next endpoint is tried.
    pub rpc_timeout: Duration,
    /// Sponsor policy of SVM networks (ignored elsewhere).
    pub svm: SvmOptions,
}

/// What an SVM fee payer accepts (the exact-SVM scheme's sponsor policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmOptions {
    /// Upper bound of a payment's compute-unit limit.
    pub max_compute_units: u32,
    /// Upper bound of a payment's compute-unit price (micro-lamports per unit).
    pub max_compute_unit_price: u64,
    /// Programs allowed after the transfer.
    pub optional_programs: Vec<String>,
    /// `confirmed` or `finalized`.
    pub commitment: String,
    /// The node is a local stand-in (its genesis does not match the CAIP-2 id).
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

/// Default gas floor of an SVM fee payer for deep health: 0.01 SOL.
pub const DEFAULT_MIN_FEE_PAYER_LAMPORTS: u128 = 10_000_000;

/// The facilitator's whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub host: IpAddr,
    /// Listen port.
    pub port: u16,
    /// Served networks.
    pub networks: Vec<NetworkConfig>,
    /// `json` (production) or `pretty` (a terminal).
    pub log_format: LogFormat,
    /// Feature flags at start (they change at runtime; see `flags`).
    pub flags: Flags,
    /// Bearer token of the admin API; `None`: no admin API at all.
    pub admin_token: Option<Secret>,
    /// A separate listener for `/admin/*`; `None`: served on the main listener.
    pub admin_addr: Option<SocketAddr>,
    /// After SIGTERM, how long the listener keeps serving while readiness fails.
    pub shutdown_grace: Duration,
    /// After the grace period, how long in-flight requests may take to finish.
    pub drain_timeout: Duration,
    /// When the v2 settle breaker trips and when it probes again.
    pub breaker: BreakerPolicy,
    /// Timeouts and the connection cap of the listener.
    pub limits: ServerLimits,
    /// Per-payer and per-`payTo` settlement rate limits (off by default).
    pub rate_limits: RateLimits,
    /// The settlement ledger: `sqlite://FILE` (default, one instance) or `postgres://...`
    /// (several instances sharing signer keys). A secret: it may hold a password.
    pub database_url: Secret,
    /// How settlement nonces are checked against the chain.
    pub nonce_fetch_mode: NonceFetchMode,
    /// How often unfinished settlements are reconciled with the chain.
    pub reconcile_interval: Duration,
    /// Things the operator should change although they work (logged as warnings at start).
    pub notices: Vec<String>,
    /// `Deprecation` / `Sunset` / `Link` headers on v1 answers (empty: none).
    pub v1_deprecation: V1Deprecation,
}

/// `NONCE_FETCH_MODE`: how a signer's next nonce is checked against the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonceFetchMode {
    /// The ledger's counter; the chain is read once per signer and after a nonce error.
    #[default]
    Cached,
    /// The chain's pending nonce is read with every settlement (in the same RPC batch).
    AlwaysFresh,
}

/// Default period of the reconciler.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(10);

/// Log output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Default gas ceiling per settlement: a `transferWithAuthorization` takes about 60–90k.
pub const DEFAULT_MAX_GAS: u64 = 200_000;
/// Default gas ceiling per ERC-6492 wallet deployment (smart wallets take 150–400k).
pub const DEFAULT_MAX_DEPLOY_GAS: u64 = 500_000;
/// Default limit on one RPC call before failing over to the next endpoint.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for a receipt.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default floor of a signer's gas balance for deep health: 0.001 of the native unit.
pub const DEFAULT_MIN_SIGNER_BALANCE: u128 = 1_000_000_000_000_000;
/// Default grace period after SIGTERM (load balancers need time to deregister).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default limit on draining in-flight requests after the grace period.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<String>,
    port: Option<u16>,
    x402_version_support: Option<String>,
    signer_type: Option<String>,
    evm_private_key: Option<Secret>,
    svm_private_key: Option<Secret>,
    log_format: Option<String>,
    v2_enabled: Option<bool>,
    v2_verify_enabled: Option<bool>,
    v2_settle_enabled: Option<bool>,
    v2_networks: Option<Vec<String>>,
    shadow_v2_enabled: Option<bool>,
    admin_token: Option<Secret>,
    admin_addr: Option<String>,
    shutdown_grace_seconds: Option<u64>,
    drain_timeout_seconds: Option<u64>,
    breaker_threshold: Option<usize>,
    breaker_window_seconds: Option<u64>,
    breaker_min_payers: Option<usize>,
    breaker_min_failure_rate: Option<f64>,
    breaker_probe_after_seconds: Option<u64>,
    header_read_timeout_seconds: Option<u64>,
    request_timeout_seconds: Option<u64>,
    max_connections: Option<usize>,
    rate_limit_per_payer: Option<u32>,
    rate_limit_per_pay_to: Option<u32>,
    database_url: Option<Secret>,
    nonce_fetch_mode: Option<String>,
    reconcile_interval_seconds: Option<u64>,
    v1_deprecated_since: Option<String>,
    v1_sunset_at: Option<String>,
    v1_migration_url: Option<String>,
    #[serde(default)]
    networks: BTreeMap<String, FileNetwork>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNetwork {
    #[serde(default)]
    rpc_urls: Vec<Secret>,
    #[serde(default)]
    signer_keys: Vec<Secret>,
    #[serde(default)]
    assets: Vec<String>,
    min_amount: Option<String>,
    #[serde(default)]
    erc6492_factories: Vec<String>,
    max_gas_per_settlement: Option<u64>,
    max_gas_per_deployment: Option<u64>,
    receipt_timeout_ms: Option<u64>,
    min_signer_balance: Option<String>,
    expected_block_interval_ms: Option<u64>,
    rpc_timeout_ms: Option<u64>,
    max_compute_units: Option<u32>,
    max_compute_unit_price: Option<u64>,
    optional_programs: Option<Vec<String>>,
    commitment: Option<String>,
    local_stand_in: Option<bool>,
}

/// Where configuration values come from: the process environment, or a map in tests.
pub trait EnvSource {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Option<String>;
    /// Every key that starts with `prefix`.
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }

    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(prefix))
            .collect()
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        BTreeMap::get(self, key).cloned().filter(|v| !v.is_empty())
    }

    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn parse_bool(key: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(ConfigError::new(
            key,
            format!("{other:?} is not a boolean; use true or false"),
        )),
    }
}

/// A boolean from the environment, else the file, else `default`.
fn bool_setting(
    env: &dyn EnvSource,
    key: &str,
    file: Option<bool>,
    default: bool,
) -> Result<bool, ConfigError> {
    match env.get(key) {
        Some(text) => parse_bool(key, &text),
        None => Ok(file.unwrap_or(default)),
    }
}

/// A number from the environment, else the file, else `default`.
fn number_setting<T: std::str::FromStr + Copy>(
    env: &dyn EnvSource,
    key: &str,
    file: Option<T>,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match env.get(key) {
        Some(text) => text
            .parse::<T>()
            .map_err(|e| ConfigError::new(key, format!("{text:?}: {e}"))),
        None => Ok(file.unwrap_or(default)),
    }
}

/// What the file says about the listener and the log (see [`listener_settings`]).
#[derive(Default)]
pub struct ListenerFile {
    host: Option<String>,
    port: Option<u16>,
    log_format: Option<String>,
    admin_token: Option<Secret>,
}

/// The settings production and the `dev` demo share: listen address, log format, admin
/// token.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// `HOST`.
    pub host: IpAddr,
    /// `PORT`.
    pub port: u16,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `ADMIN_TOKEN`, checked for strength.
    pub admin_token: Option<Secret>,
}

/// `HOST`, `PORT`, `LOG_FORMAT` and `ADMIN_TOKEN` from the environment over the file.
pub fn listener_settings(
    env: &dyn EnvSource,
    file: ListenerFile,
    default_host: &str,
) -> Result<ListenerSettings, ConfigError> {
    let host_text = env
        .get("HOST")
        .or(file.host)
        .unwrap_or_else(|| default_host.into());
    let host = host_text.parse::<IpAddr>().map_err(|e| {
        ConfigError::new("HOST", format!("{host_text:?} is not an IP address: {e}"))
    })?;
    let port = number_setting(env, "PORT", file.port, 8080u16)?;
    let log_format = match env
        .get("LOG_FORMAT")
        .or(file.log_format)
        .as_deref()
        .unwrap_or("json")
    {
        "json" => LogFormat::Json,
        "pretty" => LogFormat::Pretty,
        other => {
            return Err(ConfigError::new(
                "LOG_FORMAT",
                format!("{other:?}; expected json or pretty"),
            ))
        }
    };
    let admin_token = env
        .get("ADMIN_TOKEN")
        .map(Secret::new)
        .or(file.admin_token)
        .filter(|t| !t.expose().trim().is_empty());
    if let Some(token) = &admin_token {
        check_admin_token(token.expose()).map_err(|m| ConfigError::new("ADMIN_TOKEN", m))?;
    }
    Ok(ListenerSettings {
        host,
        port,
        log_format,
        admin_token,
    })
}

/// Turns `RPC_URL_BASE_SEPOLIA` into `base-sepolia`.
fn env_suffix_to_v1_name(suffix: &str) -> String {
    suffix.to_ascii_lowercase().replace('_', "-")
}

impl Config {
    /// Loads configuration from an optional file, then the environment on top.
    pub fn load(file: Option<&Path>, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
                })?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?
            }
            None => FileConfig::default(),
        };
        Self::merge(file_config, env)
    }

    fn merge(file: FileConfig, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let listener = listener_settings(
            env,
            ListenerFile {
                host: file.host,
                port: file.port,
                log_format: file.log_format,
                admin_token: file.admin_token,
            },
            "0.0.0.0",
        )?;
        let (host, port, log_format) = (listener.host, listener.port, listener.log_format);
        let support_text = env
            .get("X402_VERSION_SUPPORT")
            .or(file.x402_version_support)
            .unwrap_or_else(|| "v1,v2".into());
        let versions = VersionSupport::parse(&support_text)
            .map_err(|m| ConfigError::new("X402_VERSION_SUPPORT", m))?;
        let signer_type = env
            .get("SIGNER_TYPE")
            .or(file.signer_type)
            .unwrap_or_else(|| "private-key".into());
        if signer_type != "private-key" {
            return Err(ConfigError::new(
                "SIGNER_TYPE",
                format!("{signer_type:?} is not supported; the only signer type is private-key"),
            ));
        }
        let evm_key = env
            .get("EVM_PRIVATE_KEY")
            .map(Secret::new)
            .or(file.evm_private_key);
        let svm_key = env
            .get("SVM_PRIVATE_KEY")
            .map(Secret::new)
            .or(file.svm_private_key);

        // Networks from the file first, keyed by their CAIP-2 id.
        let mut by_id: BTreeMap<ChainId, (String, FileNetwork)> = BTreeMap::new();
        let mut notices = Vec::new();
        for (name, network) in file.networks {
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
        // RPC_URL_<V1 NAME> adds a network or replaces its RPC list.
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

        let mut networks_out = Vec::new();
        for (chain_id, (key, network)) in by_id {
            let family = networks::family_of(&chain_id).ok_or_else(|| {
                ConfigError::new(
                    key.clone(),
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
            if matches!(family, ChainFamily::Near | ChainFamily::Stellar) {
                return Err(ConfigError::new(
                    key,
                    format!("{chain_id} ({family:?}) is not served by this facilitator yet; the networks it serves are in docs/networks.md"),
                ));
            }
            let mut signer_keys = network.signer_keys;
            let mut signer_keys_from = format!("{key}.signer_keys");
            if signer_keys.is_empty() && family == ChainFamily::Evm {
                signer_keys.extend(evm_key.clone());
                signer_keys_from = "EVM_PRIVATE_KEY".into();
            }
            if signer_keys.is_empty() && family == ChainFamily::Svm {
                signer_keys.extend(svm_key.clone());
                signer_keys_from = "SVM_PRIVATE_KEY".into();
            }
            if signer_keys.is_empty() {
                return Err(ConfigError::new(
                    key,
                    "no signer key: set EVM_PRIVATE_KEY (EVM), SVM_PRIVATE_KEY (SVM) or signer_keys for this network",
                ));
            }
            let min_signer_balance = match &network.min_signer_balance {
                Some(text) => text.trim().parse::<u128>().map_err(|e| {
                    ConfigError::new(
                        format!("{key}.min_signer_balance"),
                        format!("{text:?}: {e}"),
                    )
                })?,
                None if family == ChainFamily::Svm => DEFAULT_MIN_FEE_PAYER_LAMPORTS,
                None => DEFAULT_MIN_SIGNER_BALANCE,
            };
            let defaults = SvmOptions::default();
            let commitment = network
                .commitment
                .clone()
                .unwrap_or(defaults.commitment.clone());
            if !matches!(commitment.as_str(), "confirmed" | "finalized") {
                return Err(ConfigError::new(
                    format!("{key}.commitment"),
                    format!("{commitment:?} is not confirmed or finalized"),
                ));
            }
            let svm = SvmOptions {
                max_compute_units: network
                    .max_compute_units
                    .unwrap_or(defaults.max_compute_units),
                max_compute_unit_price: network
                    .max_compute_unit_price
                    .unwrap_or(defaults.max_compute_unit_price),
                optional_programs: network
                    .optional_programs
                    .clone()
                    .unwrap_or(defaults.optional_programs),
                commitment,
                local_stand_in: network.local_stand_in.unwrap_or(false),
            };
            let assets = hardening::asset_policy(env, &key, &chain_id, &network.assets)?;
            let min_amount =
                hardening::min_amount(env, &key, &chain_id, network.min_amount.as_deref())?;
            networks_out.push(NetworkConfig {
                chain_id,
                family,
                rpc_urls: network.rpc_urls,
                signer_keys,
                signer_keys_from,
                assets,
                min_amount,
                erc6492_factories: network.erc6492_factories,
                max_gas_per_settlement: network.max_gas_per_settlement.unwrap_or(DEFAULT_MAX_GAS),
                max_gas_per_deployment: network
                    .max_gas_per_deployment
                    .unwrap_or(DEFAULT_MAX_DEPLOY_GAS),
                receipt_timeout: network
                    .receipt_timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_RECEIPT_TIMEOUT),
                min_signer_balance,
                expected_block_interval: network
                    .expected_block_interval_ms
                    .map(Duration::from_millis),
                rpc_timeout: network
                    .rpc_timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_RPC_TIMEOUT),
                svm,
            });
        }

        let v2_networks_text = match env.get("V2_NETWORKS") {
            Some(text) => text.split(',').map(str::to_owned).collect(),
            None => file.v2_networks.unwrap_or_default(),
        };
        let flags = Flags {
            x402_version_support: versions,
            v2_enabled: bool_setting(env, "V2_ENABLED", file.v2_enabled, true)?,
            v2_verify_enabled: bool_setting(
                env,
                "V2_VERIFY_ENABLED",
                file.v2_verify_enabled,
                true,
            )?,
            v2_settle_enabled: bool_setting(
                env,
                "V2_SETTLE_ENABLED",
                file.v2_settle_enabled,
                true,
            )?,
            v2_networks: parse_networks(&v2_networks_text)
                .map_err(|m| ConfigError::new("V2_NETWORKS", m))?,
            shadow_v2_enabled: bool_setting(
                env,
                "SHADOW_V2_ENABLED",
                file.shadow_v2_enabled,
                false,
            )?,
        };
        let admin_token = listener.admin_token;
        let admin_addr = match env.get("ADMIN_ADDR").or(file.admin_addr) {
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|e| {
                ConfigError::new("ADMIN_ADDR", format!("{text:?} is not ip:port: {e}"))
            })?),
            None => None,
        };
        let since = env.get("V1_DEPRECATED_SINCE").or(file.v1_deprecated_since);
        let sunset = env.get("V1_SUNSET_AT").or(file.v1_sunset_at);
        let link = env.get("V1_MIGRATION_URL").or(file.v1_migration_url);
        let v1_deprecation =
            V1Deprecation::new(since.as_deref(), sunset.as_deref(), link.as_deref()).map_err(
                |e| {
                    let key = match e.setting {
                        "since" => "V1_DEPRECATED_SINCE",
                        "sunset" => "V1_SUNSET_AT",
                        _ => "V1_MIGRATION_URL",
                    };
                    ConfigError::new(key, e.message)
                },
            )?;
        let shutdown_grace = Duration::from_secs(number_setting(
            env,
            "SHUTDOWN_GRACE_SECONDS",
            file.shutdown_grace_seconds,
            DEFAULT_SHUTDOWN_GRACE.as_secs(),
        )?);
        let drain_timeout = Duration::from_secs(number_setting(
            env,
            "DRAIN_TIMEOUT_SECONDS",
            file.drain_timeout_seconds,
            DEFAULT_DRAIN_TIMEOUT.as_secs(),
        )?);
        let file_hardening = hardening::FileHardening {
            breaker_min_payers: file.breaker_min_payers,
            breaker_min_failure_rate: file.breaker_min_failure_rate,
            breaker_probe_after_seconds: file.breaker_probe_after_seconds,
            header_read_timeout_seconds: file.header_read_timeout_seconds,
            request_timeout_seconds: file.request_timeout_seconds,
            max_connections: file.max_connections,
            rate_limit_per_payer: file.rate_limit_per_payer,
            rate_limit_per_pay_to: file.rate_limit_per_pay_to,
        };
        let breaker = hardening::breaker_policy(
            env,
            &file_hardening,
            file.breaker_threshold,
            file.breaker_window_seconds,
        )?;
        let limits = hardening::server_limits(env, &file_hardening)?;
        let rate_limits = hardening::rate_limits(env, &file_hardening)?;
        let database_url = env
            .get("DATABASE_URL")
            .map(Secret::new)
            .or(file.database_url)
            .filter(|u| !u.expose().trim().is_empty())
            .unwrap_or_else(|| Secret::new(x402_ledger::DEFAULT_URL));
        let scheme = database_url
            .expose()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !matches!(scheme.as_str(), "sqlite" | "postgres" | "postgresql") {
            return Err(ConfigError::new(
                "DATABASE_URL",
                format!("must start with sqlite: or postgres: (got {scheme:?})"),
            ));
        }
        let nonce_fetch_mode = match env
            .get("NONCE_FETCH_MODE")
            .or(file.nonce_fetch_mode)
            .as_deref()
            .map(str::trim)
        {
            None | Some("") | Some("cached") => NonceFetchMode::Cached,
            Some("always_fresh") => NonceFetchMode::AlwaysFresh,
            Some(other) => {
                return Err(ConfigError::new(
                    "NONCE_FETCH_MODE",
                    format!("{other:?} is not cached or always_fresh"),
                ))
            }
        };
        let reconcile_interval = Duration::from_secs(number_setting(
            env,
            "RECONCILE_INTERVAL_SECONDS",
            file.reconcile_interval_seconds,
            DEFAULT_RECONCILE_INTERVAL.as_secs(),
        )?);
        if reconcile_interval.is_zero() {
            return Err(ConfigError::new(
                "RECONCILE_INTERVAL_SECONDS",
                "must be at least 1",
            ));
        }

        Ok(Config {
            host,
            port,
            networks: networks_out,
            log_format,
            flags,
            admin_token,
            admin_addr,
            shutdown_grace,
            drain_timeout,
            breaker,
            limits,
            rate_limits,
            database_url,
            nonce_fetch_mode,
            reconcile_interval,
            notices,
            v1_deprecation,
        })
    }
}

#[cfg(test)]
mod tests;
