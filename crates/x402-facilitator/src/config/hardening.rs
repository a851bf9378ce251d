//! The settings that keep the service from being turned against itself: the breaker's
//! rules, connection limits and timeouts, which assets strangers may make us settle, rate
//! limits, and the admin token's strength. The reference is `docs/operations.md`.

use std::time::Duration;

use x402_protocol::networks::{self, ChainFamily};
use x402_protocol::ChainId;

use super::{number_setting, ConfigError, EnvSource};
use crate::breaker::{self, BreakerPolicy};

/// Limits of the HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a connection may take to send a request head, counted from the moment it
    /// waits for one: bounds slow-loris clients and idle keep-alive connections alike.
    pub header_read_timeout: Duration,
    /// How long one request may take from its head to the answer; a settlement whose
    /// request timed out still finishes (retry the same request for its outcome).
    pub request_timeout: Duration,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
}

/// Default [`ServerLimits::header_read_timeout`]: above haproxy's 10 s keep-alive, so
/// behind the shipped load balancer nothing changes.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Default [`ServerLimits::request_timeout`]: longer than a receipt wait plus RPC retries.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Default [`ServerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Which assets a network settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetPolicy {
    /// Only these (EVM addresses compare without case, SVM mints exactly).
    Listed(Vec<String>),
    /// Any asset the payer names (`assets = ["*"]`): strangers can then make the
    /// facilitator pay gas for tokens they minted for free.
    Any,
}

impl AssetPolicy {
    /// Whether `asset` may be settled on a network of `family`.
    pub fn allows(&self, family: ChainFamily, asset: &str) -> bool {
        match self {
            AssetPolicy::Any => true,
            AssetPolicy::Listed(list) => list.iter().any(|a| match family {
                ChainFamily::Evm => a.eq_ignore_ascii_case(asset),
                _ => a == asset,
            }),
        }
    }

    /// The listed assets, empty for [`AssetPolicy::Any`] (what chain crates take).
    pub fn listed(&self) -> Vec<String> {
        match self {
            AssetPolicy::Listed(list) => list.clone(),
            AssetPolicy::Any => Vec::new(),
        }
    }
}

/// Per-payer and per-`payTo` limits on settlements; 0 turns a limit off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// New settlements one payer may start per minute.
    pub per_payer_per_minute: u32,
    /// New settlements one `payTo` may receive per minute.
    pub per_pay_to_per_minute: u32,
}

/// What the file may say about the settings of this module.
#[derive(Debug, Default, Clone)]
pub(super) struct FileHardening {
    pub breaker_min_payers: Option<usize>,
    pub breaker_min_failure_rate: Option<f64>,
    pub breaker_probe_after_seconds: Option<u64>,
    pub header_read_timeout_seconds: Option<u64>,
    pub request_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
    pub rate_limit_per_payer: Option<u32>,
    pub rate_limit_per_pay_to: Option<u32>,
}

/// The breaker's rules from `BREAKER_*`.
pub(super) fn breaker_policy(
    env: &dyn EnvSource,
    file: &FileHardening,
    threshold: Option<usize>,
    window_seconds: Option<u64>,
) -> Result<BreakerPolicy, ConfigError> {
    let defaults = BreakerPolicy::default();
    let rate = number_setting(
        env,
        "BREAKER_MIN_FAILURE_RATE",
        file.breaker_min_failure_rate,
        defaults.min_failure_rate,
    )?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(ConfigError::new(
            "BREAKER_MIN_FAILURE_RATE",
            format!("{rate} is not between 0 and 1"),
        ));
    }
    let probe = number_setting(
        env,
        "BREAKER_PROBE_AFTER_SECONDS",
        file.breaker_probe_after_seconds,
        breaker::DEFAULT_PROBE_AFTER.as_secs(),
    )?;
    let window = number_setting(
        env,
        "BREAKER_WINDOW_SECONDS",
        window_seconds,
        breaker::DEFAULT_WINDOW.as_secs(),
    )?;
    Ok(BreakerPolicy {
        threshold: number_setting(env, "BREAKER_THRESHOLD", threshold, defaults.threshold)?,
        window: Duration::from_secs(window),
        min_payers: number_setting(
            env,
            "BREAKER_MIN_PAYERS",
            file.breaker_min_payers,
            defaults.min_payers,
        )?,
        min_failure_rate: rate,
        probe_after: (probe > 0).then(|| Duration::from_secs(probe)),
    })
}

/// Timeouts and the connection cap.
pub(super) fn server_limits(
    env: &dyn EnvSource,
    file: &FileHardening,
) -> Result<ServerLimits, ConfigError> {
    let seconds = |key: &str, value: Option<u64>, default: Duration| {
        let n = number_setting(env, key, value, default.as_secs())?;
        if n == 0 {
            return Err(ConfigError::new(key, "must be at least 1"));
        }
        Ok(Duration::from_secs(n))
    };
    let max_connections = number_setting(
        env,
        "MAX_CONNECTIONS",
        file.max_connections,
        DEFAULT_MAX_CONNECTIONS,
    )?;
    if max_connections == 0 || max_connections > u32::MAX as usize {
        return Err(ConfigError::new(
            "MAX_CONNECTIONS",
            "must be between 1 and 4294967295",
        ));
    }
    Ok(ServerLimits {
        header_read_timeout: seconds(
            "HEADER_READ_TIMEOUT_SECONDS",
            file.header_read_timeout_seconds,
            DEFAULT_HEADER_READ_TIMEOUT,
        )?,
        request_timeout: seconds(
            "REQUEST_TIMEOUT_SECONDS",
            file.request_timeout_seconds,
            DEFAULT_REQUEST_TIMEOUT,
        )?,
        max_connections,
    })
}

/// `RATE_LIMIT_PER_PAYER` / `RATE_LIMIT_PER_PAY_TO` (settlements per minute, 0 = off).
pub(super) fn rate_limits(
    env: &dyn EnvSource,
    file: &FileHardening,
) -> Result<RateLimits, ConfigError> {
    Ok(RateLimits {
        per_payer_per_minute: number_setting(
            env,
            "RATE_LIMIT_PER_PAYER",
            file.rate_limit_per_payer,
            0,
        )?,
        per_pay_to_per_minute: number_setting(
            env,
            "RATE_LIMIT_PER_PAY_TO",
            file.rate_limit_per_pay_to,
            0,
        )?,
    })
}

/// `<PREFIX>_<V1 NAME>` of a registry network (`ASSETS_BASE_SEPOLIA`), with its value when
/// set: the key and the value.
fn network_env(env: &dyn EnvSource, prefix: &str, chain_id: &ChainId) -> Option<(String, String)> {
    let known = networks::by_chain_id(chain_id)?;
    let key = format!(
        "{prefix}_{}",
        known.v1_name.to_ascii_uppercase().replace('-', "_")
    );
    let value = env.get(&key)?;
    Some((key, value))
}

/// A network's assets: `ASSETS_<V1 NAME>` (comma list), else the file's `assets`, else the
/// registry's defaults; `*` alone means any asset.
pub(super) fn asset_policy(
    env: &dyn EnvSource,
    key: &str,
    chain_id: &ChainId,
    file_assets: &[String],
) -> Result<AssetPolicy, ConfigError> {
    let (source, listed): (String, Vec<String>) = match network_env(env, "ASSETS", chain_id) {
        Some((k, value)) => (
            k,
            value
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
        ),
        None if !file_assets.is_empty() => (format!("{key}.assets"), file_assets.to_vec()),
        None => {
            let defaults = networks::default_assets(chain_id);
            if defaults.is_empty() {
                return Err(ConfigError::new(
                        format!("{key}.assets"),
                        format!("the registry knows no asset of {chain_id}: name the assets to settle (or \"*\" for any)"),
                    ));
            }
            return Ok(AssetPolicy::Listed(
                defaults.iter().map(|a| (*a).to_owned()).collect(),
            ));
        }
    };
    if listed.iter().any(|a| a == "*") {
        if listed.len() > 1 {
            return Err(ConfigError::new(source, "\"*\" stands alone"));
        }
        return Ok(AssetPolicy::Any);
    }
    if listed.is_empty() {
        return Err(ConfigError::new(source, "no asset listed"));
    }
    Ok(AssetPolicy::Listed(listed))
}

/// The smallest amount settled on a network: `MIN_AMOUNT_<V1 NAME>`, else the file's
/// `min_amount`, else 1 (a zero amount is never settled).
pub(super) fn min_amount(
    env: &dyn EnvSource,
    key: &str,
    chain_id: &ChainId,
    file_value: Option<&str>,
) -> Result<u128, ConfigError> {
    let (source, text) = match network_env(env, "MIN_AMOUNT", chain_id) {
        Some(found) => found,
        None => match file_value {
            Some(v) => (format!("{key}.min_amount"), v.to_owned()),
            None => return Ok(1),
        },
    };
    let value = text
        .trim()
        .parse::<u128>()
        .map_err(|e| ConfigError::new(source.clone(), format!("{text:?}: {e}")))?;
    if value == 0 {
        return Err(ConfigError::new(
            source,
            "must be at least 1: a zero amount is never settled",
        ));
    }
    Ok(value)
}

/// The admin token must be hard to guess: at least 24 characters, none of them blank or
/// a control character, at least 10 distinct ones, and no character making up more than a
/// quarter of it. A random 32-character hex or base64 string (`openssl rand -hex 16`)
/// passes; `aaaa…`, `123412341234…` and padded words do not.
pub fn check_admin_token(token: &str) -> Result<(), String> {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() < 24 {
        return Err("must be at least 24 characters (try `openssl rand -hex 16`)".into());
    }
    if chars.iter().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let mut counts = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_insert(0usize) += 1;
    }
    if counts.len() < 10 {
        return Err("must use at least 10 different characters".into());
    }
    if counts.values().any(|n| n * 4 > chars.len()) {
        return Err("one character makes up more than a quarter of it".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_admin_tokens_are_refused() {
        for weak in [
            "               x",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "1234123412341234123412341234",
            "password password password",
            "short-but-random-9f8a",
            "aaaaaaaaaaaaaaaaaabcdefghijklmnop",
        ] {
            assert!(check_admin_token(weak).is_err(), "{weak:?}");
        }
        assert!(check_admin_token("4f1c9a7e2b6d08355e9c1a7f3b2d6e40").is_ok());
        assert!(check_admin_token("Zq8-vR2_kP5wN7mX3tY9bC4h").is_ok());
    }

    #[test]
    fn assets_default_to_the_registry_and_star_means_any() {
        let env = std::collections::BTreeMap::new();
        let base = ChainId::eip155(84532);
        let policy = asset_policy(&env, "RPC_URL_BASE_SEPOLIA", &base, &[]).unwrap();
        assert!(policy.allows(
            ChainFamily::Evm,
            "0x036cbd53842c5426634e7929541ec2318f3dcf7e"
        ));
        assert!(!policy.allows(
            ChainFamily::Evm,
            "0x0000000000000000000000000000000000000001"
        ));
        let local = ChainId::eip155(31337);
        let err = asset_policy(&env, "networks.eip155:31337", &local, &[]).unwrap_err();
        assert_eq!(err.key, "networks.eip155:31337.assets");
        let any = asset_policy(&env, "k", &local, &["*".into()]).unwrap();
        assert_eq!(any, AssetPolicy::Any);
        let mut env = std::collections::BTreeMap::new();
        env.insert("ASSETS_BASE_SEPOLIA".to_owned(), "0xAb, 0xcD".to_owned());
        let listed = asset_policy(&env, "k", &base, &[]).unwrap();
        assert_eq!(
            listed,
            AssetPolicy::Listed(vec!["0xAb".into(), "0xcD".into()])
        );
        assert!(!AssetPolicy::Listed(vec!["Mint".into()]).allows(ChainFamily::Svm, "mint"));
    }

    #[test]
    fn a_zero_minimum_is_refused() {
        let mut env = std::collections::BTreeMap::new();
        let base = ChainId::eip155(84532);
        assert_eq!(min_amount(&env, "k", &base, None).unwrap(), 1);
        assert_eq!(min_amount(&env, "k", &base, Some("500")).unwrap(), 500);
        env.insert("MIN_AMOUNT_BASE_SEPOLIA".to_owned(), "0".to_owned());
        assert_eq!(
            min_amount(&env, "k", &base, None).unwrap_err().key,
            "MIN_AMOUNT_BASE_SEPOLIA"
        );
    }
}
