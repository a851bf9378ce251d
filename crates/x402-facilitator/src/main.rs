//! `x402-facilitator`: serve x402 v1 and v2 payments.
//!
//! Usage:
//!   x402-facilitator [serve] [--config FILE]   serve the configured networks
//!   x402-facilitator dev [--port N]            local demo: anvil, test token, funded payer

use std::path::PathBuf;
use std::process::ExitCode;

use x402_facilitator::config::{Config, LogFormat, ProcessEnv};
use x402_facilitator::{dev, logging, serve};

const USAGE: &str =
    "usage: x402-facilitator [serve] [--config FILE]\n       x402-facilitator dev [--port PORT]";

enum Command {
    Serve { config: Option<PathBuf> },
    Dev { port: Option<u16> },
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
            "-h" | "--help" => return Err(USAGE.into()),
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
        Command::Serve { config } => {
            let config = match Config::load(config.as_deref(), &ProcessEnv) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("x402-facilitator: {e}");
                    return ExitCode::from(2);
                }
            };
            logging::init(config.log_format);
            match serve(config, shutdown_signal()).await {
                Ok(()) => {
                    tracing::info!("graceful shutdown complete");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "facilitator stopped");
                    eprintln!("x402-facilitator: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Dev { port } => {
            logging::init(LogFormat::Pretty);
            match dev::run(port, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("x402-facilitator dev: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
