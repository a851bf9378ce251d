//! `x402-surfnode --port P --ws-port W`: an offline Solana JSON-RPC node on 127.0.0.1 for
//! the facilitator's tests (surfpool-core on LiteSVM: SPL Token and Token-2022 present, a
//! slot every 400 ms, cheat codes to create mints and fund token accounts). Prints
//! `ready http://127.0.0.1:P` once it serves.

use std::time::Duration;

use surfpool_core::surfnet::svm::{SurfnetSvm, SurfnetSvmConfig};
use surfpool_types::{RpcConfig, SimnetConfig, SimnetEvent, SurfpoolConfig};

fn port_after(args: &[String], flag: &str) -> Option<u16> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(ws_port)) = (port_after(&args, "--port"), port_after(&args, "--ws-port"))
    else {
        eprintln!("usage: x402-surfnode --port P --ws-port W");
        std::process::exit(2);
    };
    let (svm, events, geyser) = match SurfnetSvm::new(SurfnetSvmConfig::default()) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("cannot create the SVM: {e:?}");
            std::process::exit(1);
        }
    };
    let config = SurfpoolConfig {
        simnets: vec![SimnetConfig {
            offline_mode: true,
            remote_rpc_url: None,
            ..SimnetConfig::default()
        }],
        rpc: RpcConfig {
            bind_host: "127.0.0.1".into(),
            bind_port: port,
            ws_port,
            ..RpcConfig::default()
        },
        ..SurfpoolConfig::default()
    };
    let (commands_tx, commands_rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("no runtime: {e}");
                std::process::exit(1);
            }
        };
        let result = runtime.block_on(surfpool_core::start_local_surfnet(
            svm,
            config,
            commands_tx,
            commands_rx,
            geyser,
        ));
        if let Err(e) = result {
            eprintln!("surfnet stopped: {e}");
            std::process::exit(1);
        }
    });
    let mut announced = false;
    loop {
        match events.recv_timeout(Duration::from_secs(3600)) {
            Ok(SimnetEvent::CoreStarted(_)) if !announced => {
                announced = true;
                println!("ready http://127.0.0.1:{port}");
            }
            Ok(SimnetEvent::Aborted(why)) => {
                eprintln!("surfnet aborted: {why}");
                std::process::exit(1);
            }
            Ok(SimnetEvent::ErrorLog(_, message)) => eprintln!("surfnet error: {message}"),
            Ok(_) => {}
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => std::process::exit(0),
        }
    }
}
