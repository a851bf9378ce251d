//! The demo: the facilitator on a local anvil node with our EIP-3009 test token.
//!
//! Runs only when asked (`x402-facilitator dev`); a production start never falls back
//! to it. The local chain is the test kit's ([`LocalChain`], `x402-testkit`): the demo,
//! the chain crate's own tests and the service's tests pay on one chain set-up.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::{ChainOptions, DEFAULT_DRAIN_TIMEOUT, DEFAULT_RECEIPT_TIMEOUT};
use crate::config::{Config, LogFormat, NetworkConfig, Secret};
use crate::flags::Flags;
use x402_protocol::{ChainFamily, ChainId};

pub use x402_testkit::anvil::{find_anvil, LocalChain, BASE_SEPOLIA_USDC, DEV_ACCOUNTS};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The local chain could not be used.
    #[error(transparent)]
    Chain(#[from] x402_testkit::anvil::ChainError),
    /// The demo's configuration is refused (a build without the EVM chain family).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The facilitator failed.
    #[error(transparent)]
    Facilitator(#[from] crate::StartError),
}

/// A facilitator configuration that serves `chain` with `signer_key`; refused in a build
/// without the EVM chain family.
pub fn facilitator_config(
    chain: &LocalChain,
    signer_key: &str,
    port: u16,
) -> Result<Config, crate::config::ConfigError> {
    let options = ChainOptions::read(ChainFamily::Evm, toml::Table::new(), "dev")?;
    Ok(Config {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        networks: vec![NetworkConfig {
            chain_id: ChainId::eip155(chain.chain_id),
            family: ChainFamily::Evm,
            rpc_urls: vec![Secret::new(chain.rpc_url.clone())],
            signer_keys: vec![Secret::new(signer_key)],
            signer_keys_from: "dev".into(),
            // The test token stands at Base Sepolia's USDC address.
            assets: crate::config::AssetPolicy::Listed(vec![BASE_SEPOLIA_USDC.to_owned()]),
            min_amount: 1,
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
            min_signer_balance: crate::config::default_min_signer_balance(ChainFamily::Evm),
            rpc_timeout: crate::config::DEFAULT_RPC_TIMEOUT,
            schemes: crate::config::default_schemes(),
            chain: options,
        }],
        log_format: LogFormat::Pretty,
        flags: Flags::default(),
        admin_token: None,
        admin_addr: None,
        shutdown_grace: Duration::ZERO,
        drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        breaker: crate::breaker::BreakerPolicy::default(),
        limits: crate::config::ServerLimits::default(),
        rate_limits: crate::config::RateLimits::default(),
        database_url: Secret::new(format!("sqlite://{}?mode=rwc", chain.ledger_path.display())),
        nonce_fetch_mode: crate::config::NonceFetchMode::Cached,
        reconcile_interval: crate::config::DEFAULT_RECONCILE_INTERVAL,
        notices: Vec::new(),
        v1_deprecation: Default::default(),
        api_keys: Default::default(),
    })
}

/// What the demo takes from the environment, as production does: `HOST` (default
/// 127.0.0.1), `PORT` (or `--port`), `ADMIN_TOKEN`, `LOG_FORMAT` (default `pretty`). The
/// ledger stays a temporary SQLite file whatever `DATABASE_URL` says: a demo never writes
/// into a real database.
#[derive(Debug, Clone)]
pub struct DevSettings {
    /// Listen address and port.
    pub addr: SocketAddr,
    /// The admin API's token, when set.
    pub admin_token: Option<Secret>,
    /// Log style.
    pub log_format: LogFormat,
}

impl DevSettings {
    /// Reads the settings; `port` (from `--port`) wins over `PORT`.
    pub fn from_env(
        env: &dyn crate::config::EnvSource,
        port: Option<u16>,
    ) -> Result<DevSettings, crate::config::ConfigError> {
        let listener = crate::config::listener_settings(env, Default::default(), "127.0.0.1")?;
        Ok(DevSettings {
            addr: SocketAddr::new(listener.host, port.unwrap_or(listener.port)),
            admin_token: listener.admin_token,
            log_format: match env.get("LOG_FORMAT") {
                Some(_) => listener.log_format,
                None => LogFormat::Pretty,
            },
        })
    }
}

/// Runs the local demo until `shutdown`.
pub async fn run(
    settings: DevSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DevError> {
    let chain = LocalChain::with_funded_payer(&[]).await?;
    let (payer, payer_key) = DEV_ACCOUNTS[1];
    let mut config = facilitator_config(&chain, DEV_ACCOUNTS[0].1, settings.addr.port())?;
    config.host = settings.addr.ip();
    config.log_format = settings.log_format;
    config.admin_token = settings.admin_token.clone();
    let listener = TcpListener::bind(SocketAddr::new(config.host, config.port))
        .await
        .map_err(|source| crate::StartError::Bind {
            addr: SocketAddr::new(config.host, config.port),
            source,
        })?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(crate::StartError::Serve)?
    );
    println!("\nx402 facilitator dev mode (local anvil, NOT a real network)");
    println!("  facilitator : {url}");
    println!(
        "  chain       : eip155:84532 (base-sepolia) at {}",
        chain.rpc_url
    );
    println!("  test USDC   : {BASE_SEPOLIA_USDC} (EIP-3009, name \"USDC\", version \"2\")");
    println!("  demo payer  : {payer} holds 1000 USDC; anvil test key {payer_key}");
    println!("\nPay it with the official x402 client (v2), from the repository root:");
    println!("  node tests/js/pay.mjs {url} {}", chain.rpc_url);
    if config.admin_token.is_some() {
        println!("\nThe admin API (ADMIN_TOKEN is set), for example v2 settle off:");
        println!("  curl -X PUT {url}/admin/flags -H \"Authorization: Bearer $ADMIN_TOKEN\" -H 'content-type: application/json' -d '{{\"v2_settle_enabled\": false}}'");
    } else {
        println!("\nTo try the admin API, start with ADMIN_TOKEN=$(openssl rand -hex 16) set.");
    }
    println!();
    let state = crate::build_state(&config).await?;
    crate::serve_on(listener, state, &config, shutdown).await?;
    drop(chain);
    Ok(())
}
