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
use x402_protocol::networks::ChainFamily;
use x402_protocol::ChainId;

use crate::breaker::BreakerPolicy;
use crate::deprecation::V1Deprecation;
pub use crate::flags::VersionSupport;
use crate::flags::{parse_networks, Flags};

mod chain_options;
mod hardening;
mod networks;
mod settings;
pub use chain_options::{default_min_signer_balance, ChainOptions};
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
    /// How long `/settle` waits for a receipt before answering `settlement_pending`.
    pub receipt_timeout: Duration,
    /// Deep health fails when a signer holds less native currency than this (smallest unit).
    pub min_signer_balance: u128,
    /// How long one RPC call may take before the next endpoint is tried.
    pub rpc_timeout: Duration,
    /// The schemes served on this network (default `exact`; each must be one its chain
    /// crate serves).
    pub schemes: Vec<String>,
    /// What the network's chain crate read from its section.
    pub chain: ChainOptions,
}

/// The schemes a network serves when its configuration names none.
pub fn default_schemes() -> Vec<String> {
    vec!["exact".to_owned()]
}

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
    /// Caller API keys for `/verify` and `/settle` (off by default).
    pub api_keys: ApiKeySettings,
}

/// `API_KEYS` and `API_KEYS_FILE`: whether callers need a key, and the file of keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeySettings {
    /// `API_KEYS=required`: `/verify` and `/settle` answer 401 without a known key.
    pub required: bool,
    /// Keys read at start and on SIGHUP (besides those of the admin API).
    pub file: Option<std::path::PathBuf>,
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

/// Default limit on one RPC call before failing over to the next endpoint.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for a receipt.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
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
    near_private_key: Option<Secret>,
    stellar_private_key: Option<Secret>,
    log_format: Option<String>,
    v2_networks: Option<Vec<String>>,
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
    api_keys: Option<String>,
    api_keys_file: Option<String>,
    #[serde(default)]
    networks: BTreeMap<String, networks::FileNetwork>,
    /// The on/off flags of the file (`Flags::SWITCHES`), taken out before the rest is read.
    #[serde(skip)]
    switches: BTreeMap<String, bool>,
}

impl FileConfig {
    /// Reads a configuration file: the on/off flags by the flag table, the rest by its
    /// fields (unknown keys refused).
    fn parse(text: &str, path: &str) -> Result<FileConfig, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::new(path, e.to_string()))?;
        let mut switches = BTreeMap::new();
        for (name, _, _) in Flags::SWITCHES {
            match table.remove(*name) {
                None => {}
                Some(toml::Value::Boolean(on)) => {
                    switches.insert((*name).to_owned(), on);
                }
                Some(other) => {
                    return Err(ConfigError::new(
                        *name,
                        format!("a {}, not true or false", other.type_str()),
                    ))
                }
            }
        }
        let mut file: FileConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::new(path, e.to_string()))?;
        file.switches = switches;
        Ok(file)
    }
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

/// `SIGNER_TYPE`: `private-key`, the only signer this facilitator has.
fn check_signer_type(env: &dyn EnvSource, file: Option<String>) -> Result<(), ConfigError> {
    let signer_type = env
        .get("SIGNER_TYPE")
        .or(file)
        .unwrap_or_else(|| "private-key".into());
    if signer_type != "private-key" {
        return Err(ConfigError::new(
            "SIGNER_TYPE",
            format!("{signer_type:?} is not supported; the only signer type is private-key"),
        ));
    }
    Ok(())
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
                FileConfig::parse(&text, &path.display().to_string())?
            }
            None => FileConfig::default(),
        };
        Self::merge(file_config, env)
    }

    fn merge(mut file: FileConfig, env: &dyn EnvSource) -> Result<Config, ConfigError> {
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
        check_signer_type(env, file.signer_type.take())?;
        let mut notices = Vec::new();
        let networks_out = networks::all(
            env,
            std::mem::take(&mut file.networks),
            [
                ("EVM_PRIVATE_KEY", file.evm_private_key.take()),
                ("SVM_PRIVATE_KEY", file.svm_private_key.take()),
                ("NEAR_PRIVATE_KEY", file.near_private_key.take()),
                ("STELLAR_PRIVATE_KEY", file.stellar_private_key.take()),
            ],
            &mut notices,
        )?;

        let flags = settings::flags(env, versions, file.v2_networks.take(), &file.switches)?;
        let v1_deprecation = settings::v1_deprecation(
            env,
            [
                file.v1_deprecated_since.take(),
                file.v1_sunset_at.take(),
                file.v1_migration_url.take(),
            ],
        )?;
        let admin_token = listener.admin_token;
        let admin_addr = match env.get("ADMIN_ADDR").or(file.admin_addr) {
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|e| {
                ConfigError::new("ADMIN_ADDR", format!("{text:?} is not ip:port: {e}"))
            })?),
            None => None,
        };
        let (shutdown_grace, drain_timeout) = settings::shutdown(
            env,
            [file.shutdown_grace_seconds, file.drain_timeout_seconds],
        )?;
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
        let database_url = settings::database_url(env, file.database_url.take())?;
        let nonce_fetch_mode = settings::nonce_fetch_mode(env, file.nonce_fetch_mode.take())?;
        let reconcile_interval =
            settings::reconcile_interval(env, file.reconcile_interval_seconds)?;
        let api_keys = settings::api_keys(env, [file.api_keys.take(), file.api_keys_file.take()])?;
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
            api_keys,
        })
    }
}

#[cfg(test)]
mod tests;
