//! `x402-stellarnode --genesis <file.json> [--port <port>]`: the local Stellar JSON-RPC
//! stand-in (see the library's docs for what it models), for demos, benchmarks and manual
//! runs; the tests start it in-process. Prints the URL and each asset's contract id.

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: x402-stellarnode --genesis <file.json> [--port <port>]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(path) = value("--genesis") else {
        return usage();
    };
    let port: u16 = match value("--port").map(|p| p.parse()) {
        None => 0,
        Some(Ok(port)) => port,
        Some(Err(_)) => return usage(),
    };
    let genesis: x402_stellarnode::Genesis = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(genesis) => genesis,
        Err(e) => {
            eprintln!("cannot read the genesis {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    let node = match x402_stellarnode::StellarNode::serve(&genesis, listener).await {
        Ok(node) => node,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let contracts: serde_json::Map<String, serde_json::Value> = genesis
        .assets
        .iter()
        .filter_map(|code| Some((code.clone(), node.contract(code)?.into())))
        .collect();
    println!(
        "{}",
        serde_json::json!({"url": node.url, "contracts": contracts, "issuer":
            format!("{}", stellar_strkey::ed25519::PublicKey(x402_stellarnode::issuer()))})
    );
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
