//! `x402-facilitator`: serve x402 v1 and v2 payments.
//!
//! Usage:
//!   x402-facilitator [serve] [--config FILE]   serve the configured networks
//!   x402-facilitator dev [--port N]            local demo: anvil, test token, funded payer

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use x402_facilitator::config::{Config, ProcessEnv};
use x402_facilitator::flags::FlagUpdate;
use x402_facilitator::{build_state, dev, logging, serve_state, AppState};

const USAGE: &str = "usage: x402-facilitator [serve] [--config FILE]
       x402-facilitator dev [--port PORT]
       x402-facilitator --help | --version

  serve  serve the networks the environment (RPC_URL_<NETWORK>, EVM_PRIVATE_KEY, ...)
         and the optional TOML file configure; every setting: docs/configuration.md
  dev    a local demo: anvil, a test USDC and a funded payer (PORT, HOST, ADMIN_TOKEN and
         LOG_FORMAT apply; nothing real is touched)";

enum Command {
    Serve { config: Option<PathBuf> },
    Dev { port: Option<u16> },
    Help,
    Version,
}

fn parse_args() -> Result<Command, String> {
    let mut args = std::env::args().skip(1).peekable();
    let dev_mode = match args.peek().map(String::as_str) {
        Some("dev") => {
            args.next();
            true
        }
        Some("serve") => {
            args.next();
            false
        }
        _ => false,
    };
    let mut config = None;
    let mut port = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" if !dev_mode => {
                config = Some(PathBuf::from(args.next().ok_or("--config needs a file")?))
            }
            "--port" if dev_mode => {
                let text = args.next().ok_or("--port needs a number")?;
                port = Some(
                    text.parse()
                        .map_err(|_| format!("--port {text:?} is not a port"))?,
                )
            }
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(if dev_mode {
        Command::Dev { port }
    } else {
        Command::Serve { config }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("received shutdown signal");
}

/// On SIGHUP, re-reads the configuration (file and environment) and applies its flags.
/// Other settings need a restart; a bad file is logged and changes nothing.
async fn reload_on_sighup(state: Arc<AppState>, path: Option<PathBuf>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!(
                "SIGHUP handler could not be installed; flags reload only through the admin API"
            );
            return;
        };
        while hangups.recv().await.is_some() {
            match Config::load(path.as_deref(), &ProcessEnv) {
                Ok(config) => {
                    let update = FlagUpdate::from_flags(&config.flags);
                    match state.update_flags(&update, "sighup") {
                        Ok(changes) => {
                            tracing::info!(changes = %changes, "configuration reloaded on SIGHUP")
                        }
                        Err(e) => tracing::error!(error = %e, "SIGHUP reload refused"),
                    }
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP reload failed; flags unchanged"),
            }
            if state.keys_required() {
                if let Err(e) = state.load_keys_file().await {
                    tracing::error!(error = %e, "API keys file not reloaded; the keys stay as they were");
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (state, path);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = match parse_args() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!(
                "x402-facilitator {} (build {})",
                x402_facilitator::telemetry::VERSION,
                x402_facilitator::telemetry::COMMIT
            );
            ExitCode::SUCCESS
        }
        Command::Serve { config: path } => {
            let config = match Config::load(path.as_deref(), &ProcessEnv) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("x402-facilitator: {e}");
                    return ExitCode::from(2);
                }
            };
            x402_facilitator::redact::install(&config);
            logging::init(config.log_format);
            for notice in &config.notices {
                tracing::warn!(notice = %notice, "configuration notice");
            }
            let state = match build_state(&config).await {
                Ok(state) => state,
                Err(e) => {
                    tracing::error!(error = %e, "facilitator cannot start");
                    eprintln!("x402-facilitator: {e}");
                    return ExitCode::from(2);
                }
            };
            tokio::spawn(reload_on_sighup(state.clone(), path));
            match serve_state(state, &config, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "facilitator stopped");
                    eprintln!("x402-facilitator: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Dev { port } => {
            let settings = match dev::DevSettings::from_env(&ProcessEnv, port) {
                Ok(settings) => settings,
                Err(e) => {
                    eprintln!("x402-facilitator dev: {e}");
                    return ExitCode::from(2);
                }
            };
            logging::init(settings.log_format);
            match dev::run(settings, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("x402-facilitator dev: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
