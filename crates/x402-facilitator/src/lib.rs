//! The x402 facilitator service: configuration, HTTP server and chain wiring.
//!
//! `x402-facilitator` (the binary) is a thin shell over [`serve`]; tests start the
//! same server in-process on a random port.

#![forbid(unsafe_code)]

pub mod app;
pub mod chains;
pub mod config;
pub mod dev;
pub mod logging;

use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use app::{router, AppState};
pub use config::{Config, ConfigError};

/// Why the facilitator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A network could not be set up.
    #[error(transparent)]
    Chain(#[from] chains::ChainSetupError),
    /// Nothing is configured: a production start serves nothing rather than guess.
    #[error("no network is configured: set RPC_URL_<NETWORK> and EVM_PRIVATE_KEY, or pass --config FILE (see docs/configuration.md); for a local demo chain run `x402-facilitator dev`")]
    NothingToServe,
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Builds the state for a configuration.
pub fn build_state(config: &Config) -> Result<std::sync::Arc<AppState>, StartError> {
    if config.networks.is_empty() {
        return Err(StartError::NothingToServe);
    }
    let handlers = chains::build_handlers(&config.networks)?;
    Ok(AppState::new(config.versions, handlers))
}

/// Binds the configured address and serves until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let state = build_state(&config)?;
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    serve_on(listener, state, &config, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve_on(
    listener: TcpListener,
    state: std::sync::Arc<AppState>,
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let local = listener.local_addr().map_err(StartError::Serve)?;
    let networks: Vec<String> = config
        .networks
        .iter()
        .map(|n| n.chain_id.to_string())
        .collect();
    tracing::info!(
        address = %local,
        x402_version_support = %config.versions,
        networks = ?networks,
        "Facilitator listening"
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartError::Serve)
}
