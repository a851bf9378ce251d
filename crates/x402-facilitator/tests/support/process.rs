//! The real facilitator binary as a child process, its JSON log lines collected.

use std::sync::Arc;

use serde_json::Value;
use x402_facilitator::dev::{LocalChain, DEV_ACCOUNTS};

/// The real `x402-facilitator` binary as a child process, with its JSON log lines
/// collected so tests can wait for (and assert on) what it logged.
pub struct Process {
    pub child: tokio::process::Child,
    pub url: String,
    logs: Arc<std::sync::Mutex<Vec<Value>>>,
    logged: Arc<tokio::sync::Notify>,
}

impl Process {
    /// Starts the binary serving `chain` with the dev signer; `env` adds or overrides
    /// settings; waits until it listens.
    pub async fn spawn(chain: &LocalChain, env: &[(&str, &str)], args: &[&str]) -> Process {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402-facilitator"));
        command
            .args(args)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("RPC_URL_BASE_SEPOLIA", &chain.rpc_url)
            .env("EVM_PRIVATE_KEY", DEV_ACCOUNTS[0].1)
            .env("SHUTDOWN_GRACE_SECONDS", "0")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", chain.ledger_path.display()),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("facilitator binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let logged = Arc::new(tokio::sync::Notify::new());
        let (sink, notify) = (logs.clone(), logged.clone());
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                // Lines that are not JSON are kept as strings: nothing printed goes unseen.
                let value = serde_json::from_str::<Value>(&line).unwrap_or(Value::String(line));
                sink.lock().unwrap().push(value);
                notify.notify_waiters();
            }
            notify.notify_waiters();
        });
        let mut process = Process {
            child,
            url: String::new(),
            logs,
            logged,
        };
        let listening = process
            .wait_log(|l| l["message"] == "Facilitator listening")
            .await;
        process.url = format!("http://{}", listening["address"].as_str().unwrap());
        process
    }

    /// Waits (up to 60 s) for a log line matching `matches` and returns it.
    pub async fn wait_log(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let wait = async {
            loop {
                let notified = self.logged.notified();
                if let Some(line) = self.logs.lock().unwrap().iter().find(|l| matches(l)) {
                    return line.clone();
                }
                notified.await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "log line not seen; logs so far:\n{:#?}",
                    self.logs.lock().unwrap()
                )
            })
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.lock().unwrap().clone()
    }

    /// The warnings and errors logged so far: where a failed test's cause usually is.
    pub fn warnings(&self) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
            .collect()
    }

    /// Kills the process outright (SIGKILL): no drain, no cleanup.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("kill");
        let _ = self.child.wait().await;
    }

    /// Sends a Unix signal (`TERM`, `HUP`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits (up to `seconds`) for the process to exit.
    pub async fn wait_exit(&mut self, seconds: u64) -> std::process::ExitStatus {
        tokio::time::timeout(std::time::Duration::from_secs(seconds), self.child.wait())
            .await
            .expect("process exits in time")
            .expect("exit status")
    }
}
