//! Runs the example paid API.
//!
//! Settings (environment): `FACILITATOR_URL` (default `http://127.0.0.1:8080`), `HOST`
//! (default 127.0.0.1), `PORT` (default 4021), `PAY_TO` (default the `dev` chain's payee).
//! The network and token are the `dev` chain's: eip155:84532 with the test USDC.

use std::net::SocketAddr;

use paid_api::{app, Settings};
use x402_facilitator_client::{ClientOptions, FacilitatorClient};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("paid-api: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    let facilitator_url = env("FACILITATOR_URL", "http://127.0.0.1:8080");
    let host = env("HOST", "127.0.0.1");
    let port = env("PORT", "4021");
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("HOST/PORT {host}:{port}: {e}"))?;
    let mut settings = Settings::dev();
    if let Ok(pay_to) = std::env::var("PAY_TO") {
        settings.pay_to = pay_to;
    }
    let facilitator = FacilitatorClient::new(&facilitator_url, ClientOptions::default())
        .map_err(|e| format!("FACILITATOR_URL: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "paid API on http://{local} (payments to {} on {})",
        settings.pay_to, settings.network
    );
    println!("  GET http://{local}/weather          0.001 test USDC");
    println!("  GET http://{local}/premium/report   0.005 test USDC");
    println!("  GET http://{local}/free             free");
    println!(
        "pay it with the official client: node tests/js/pay-api.mjs v2 http://{local}/weather"
    );
    axum::serve(listener, app(facilitator, &settings))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server: {e}"))
}
