//! The x402 facilitator service: configuration, HTTP server and chain wiring.
//!
//! `x402-facilitator` (the binary) is a thin shell over [`serve`]; tests start the
//! same server in-process on a random port.

#![forbid(unsafe_code)]

pub mod api_keys;
pub mod app;
pub mod breaker;
pub mod chains;
pub mod config;
pub mod deprecation;
pub mod dev;
pub mod flags;
pub mod guard;
pub mod logging;
pub mod payment_ids;
pub mod redact;
pub mod served;
pub mod server;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use app::{router, AppState};
pub use config::{Config, ConfigError};

/// Why the facilitator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The settlement ledger cannot be opened: nothing may be settled unrecorded.
    #[error("settlement ledger: {0}")]
    Ledger(#[from] x402_ledger::LedgerError),
    /// A network could not be set up.
    #[error(transparent)]
    Chain(#[from] chains::ChainSetupError),
    /// Nothing is configured: a production start serves nothing rather than guess.
    #[error("no network is configured: set RPC_URL_<NETWORK> and EVM_PRIVATE_KEY, or pass --config FILE (see docs/configuration.md); for a local demo chain run `x402-facilitator dev`")]
    NothingToServe,
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source} (choose another with PORT, or `dev --port`, or stop what holds it)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The API keys file does not read (`API_KEYS_FILE`).
    #[error("API keys: {0}")]
    ApiKeys(String),
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// Shutdown could not finish the work in flight within the drain timeout.
    #[error("drain timeout: {settlements} settlements and {requests} requests still in flight")]
    DrainTimeout {
        /// Settlements still running.
        settlements: usize,
        /// Requests still open.
        requests: usize,
    },
}

/// Opens (creating and migrating) the configured settlement ledger.
pub async fn open_ledger(config: &Config) -> Result<Arc<x402_ledger::Ledger>, StartError> {
    let ledger = x402_ledger::Ledger::connect(config.database_url.expose()).await?;
    tracing::info!(
        backend = ledger.backend().as_str(),
        shared = ledger.is_shared(),
        "settlement ledger open"
    );
    Ok(Arc::new(ledger))
}

/// Builds the state for a configuration (opens the ledger, sets up every network).
pub async fn build_state(config: &Config) -> Result<Arc<AppState>, StartError> {
    if config.networks.is_empty() {
        return Err(StartError::NothingToServe);
    }
    chains::check_keys(&config.networks)?;
    let ledger = open_ledger(config).await?;
    let served = chains::build(&config.networks, &ledger, config.nonce_fetch_mode)?;
    Ok(AppState::new(config, served, ledger))
}

/// Reconciles unfinished settlements at once (start-up recovery), then every `interval`
/// those older than `min_age` (younger ones still have a request waiting on them).
fn spawn_reconciler(
    state: Arc<AppState>,
    interval: std::time::Duration,
    min_age: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut age = std::time::Duration::ZERO;
        loop {
            for chain in state.served().chains() {
                let report = chain.reconcile(age).await;
                if report.examined > 0 || report.errors > 0 {
                    tracing::info!(
                        network = %chain.network(),
                        examined = report.examined,
                        confirmed = report.confirmed,
                        failed = report.failed,
                        resent = report.resent,
                        replaced = report.replaced,
                        errors = report.errors,
                        startup = age.is_zero(),
                        "reconciled unfinished settlements"
                    );
                }
            }
            age = min_age;
            tokio::time::sleep(interval).await;
        }
    })
}

/// One line per served network at start: what it serves and whether its own checks pass
/// (node, chain, signers). Runs beside the listener, so a dead node delays nothing; a
/// network whose every RPC endpoint is down is reported here and in `/health/deep`, while
/// readiness stays up (see `docs/operations.md`).
async fn report_networks(state: Arc<AppState>) {
    for chain in state.served().chains() {
        let checks = chain.health().await;
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        let signers = chain.signer_addresses();
        if failed.is_empty() {
            tracing::info!(
                network = %chain.network(),
                signers = signers.len(),
                "network ready"
            );
        } else {
            tracing::warn!(
                network = %chain.network(),
                signers = signers.len(),
                failed = %failed.join("; "),
                "network not ready at start; /health/deep shows its checks"
            );
        }
    }
}

/// Half-opens a breaker trip once its probe delay has passed (see [`AppState::probe_breaker`]).
fn spawn_breaker_probe(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            state.probe_breaker();
        }
    })
}

/// Binds the configured address and serves until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let state = build_state(&config).await?;
    serve_state(state, &config, shutdown).await
}

/// Binds the configured address and serves an already built state (the binary keeps a
/// handle on the state to reload flags on SIGHUP).
pub async fn serve_state(
    state: std::sync::Arc<AppState>,
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    serve_on(listener, state, config, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0) until `shutdown` resolves,
/// then drains: readiness fails at once, the listener keeps serving for the grace
/// period, then stops accepting while in-flight requests and settlements finish, up to
/// the drain timeout.
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
    let (signalled_tx, signalled_rx) = tokio::sync::watch::channel(false);
    let grace = config.shutdown_grace;
    let drain_timeout = config.drain_timeout;

    let admin_server = spawn_admin(&state, config, signalled_rx.clone()).await?;

    let drain_state = state.clone();
    let graceful = async move {
        shutdown.await;
        drain_state.lifecycle.begin_drain();
        let _ = signalled_tx.send(true);
        tracing::info!(
            grace_seconds = grace.as_secs_f64(),
            settlements_in_flight = drain_state.lifecycle.settlements_in_flight(),
            requests_in_flight = drain_state.lifecycle.requests_in_flight(),
            "draining: readiness fails, serving through the grace period"
        );
        // Load balancers need this long to stop sending new requests here.
        tokio::time::sleep(grace).await;
        tracing::info!(
            settlements_in_flight = drain_state.lifecycle.settlements_in_flight(),
            "grace period over: no new connections, finishing in-flight work"
        );
    };
    let mut deadline_rx = signalled_rx.clone();
    let deadline = async move {
        let _ = deadline_rx.wait_for(|s| *s).await;
        tokio::time::sleep(grace + drain_timeout).await;
    };
    tokio::pin!(deadline);

    tracing::info!(
        address = %local,
        x402_version_support = %config.flags.x402_version_support,
        networks = ?networks,
        "Facilitator listening"
    );
    let longest_receipt_wait = config
        .networks
        .iter()
        .map(|n| n.receipt_timeout)
        .max()
        .unwrap_or_default();
    let reconciler = spawn_reconciler(
        state.clone(),
        config.reconcile_interval,
        longest_receipt_wait + config.reconcile_interval,
    );
    let flag_sync = spawn_flag_sync(&state).await;
    let key_sync = spawn_key_sync(&state).await?;
    tokio::spawn(report_networks(state.clone()));
    state.lifecycle.mark_ready();
    let probe = spawn_breaker_probe(state.clone());
    let server = server::serve_http(
        listener,
        router(state.clone()),
        config.limits.clone(),
        graceful,
    );
    tokio::select! {
        served = server => served.map_err(StartError::Serve)?,
        _ = &mut deadline => return Err(drain_timeout_error(&state)),
    }
    // Connections are closed; settlements whose client hung up may still be running.
    tokio::select! {
        _ = state.lifecycle.wait_idle() => {}
        _ = &mut deadline => return Err(drain_timeout_error(&state)),
    }
    if let Some(admin) = admin_server {
        admin.abort();
    }
    reconciler.abort();
    probe.abort();
    for task in [flag_sync, key_sync].into_iter().flatten() {
        task.abort();
    }
    tracing::info!(
        completed = state.lifecycle.completed_while_draining(),
        "graceful shutdown complete"
    );
    Ok(())
}

/// The admin API on its own listener (`ADMIN_ADDR`), stopped with the drain signal.
async fn spawn_admin(
    state: &std::sync::Arc<AppState>,
    config: &Config,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, StartError> {
    let Some(addr) = config.admin_addr else {
        return Ok(None);
    };
    let admin_listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    tracing::info!(address = %addr, "Admin API listening");
    let admin = app::admin_router(state.clone());
    // The same listener as the main one: its timeouts and cap hold here too.
    let limits = config.limits.clone();
    Ok(Some(tokio::spawn(async move {
        let _ = server::serve_http(admin_listener, admin, limits, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    })))
}

/// On a shared ledger, the fleet's current flags (a tripped breaker, v2 turned off) win
/// over this instance's configuration from the first request on, and are followed.
async fn spawn_flag_sync(state: &std::sync::Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    if !state.ledger().is_shared() {
        return None;
    }
    let mut seen = state.sync_shared_flags(0).await;
    let state = state.clone();
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(app::SHARED_FLAGS_POLL).await;
            seen = state.sync_shared_flags(seen).await;
        }
    }))
}

/// With `API_KEYS=required`: the keys file stored, the keys read, and read again every
/// [`app::KEYS_POLL`] (what another instance added or revoked reaches this one).
async fn spawn_key_sync(
    state: &std::sync::Arc<AppState>,
) -> Result<Option<tokio::task::JoinHandle<()>>, StartError> {
    if !state.keys_required() {
        return Ok(None);
    }
    state.load_keys_file().await.map_err(StartError::ApiKeys)?;
    state.refresh_keys().await;
    let state = state.clone();
    Ok(Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(app::KEYS_POLL).await;
            state.refresh_keys().await;
        }
    })))
}

fn drain_timeout_error(state: &AppState) -> StartError {
    let error = StartError::DrainTimeout {
        settlements: state.lifecycle.settlements_in_flight(),
        requests: state.lifecycle.requests_in_flight(),
    };
    tracing::error!(error = %error, "shutdown did not finish in-flight work in time");
    error
}
