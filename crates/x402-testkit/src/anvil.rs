//! anvil, the local EVM node, with our EIP-3009 test token (`contracts/TestUSDC.sol`) at
//! Base Sepolia's USDC address: what the `dev` demo runs and every EVM test pays on.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The compiled test token (source: `contracts/TestUSDC.sol`, compiled by
/// `tests/js/compile-contracts.mjs`).
const ARTIFACT: &str = include_str!("../contracts/TestUSDC.json");

/// The compiled Permit2 stand-ins and the EIP-2612 test token (source:
/// `contracts/Permit2StandIns.sol`, compiled by the same script).
const PERMIT2_ARTIFACT: &str = include_str!("../contracts/Permit2StandIns.json");

/// Base Sepolia USDC, where the official SDKs' default asset table points.
pub const BASE_SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

/// anvil's well-known development accounts (public test keys, funded only on anvil).
pub const DEV_ACCOUNTS: [(&str, &str); 4] = [
    (
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    ),
    (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    ),
    (
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3d71b5d6c8bd0ba8",
    ),
    (
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    ),
];

/// Why the local chain could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// anvil not found.
    #[error("anvil not found: run `npm ci` in tests/js or set ANVIL_BIN")]
    NoAnvil,
    /// anvil did not start.
    #[error("anvil failed to start: {0}")]
    Start(String),
    /// An RPC call to anvil failed.
    #[error("anvil RPC {method} failed: {message}")]
    Rpc {
        /// Method.
        method: String,
        /// Error.
        message: String,
    },
    /// The artifact is unreadable.
    #[error("test token artifact: {0}")]
    Artifact(String),
}

/// Finds the anvil binary: `ANVIL_BIN`, then the npm package under `tests/js`, then PATH.
pub fn find_anvil() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ANVIL_BIN") {
        return Some(PathBuf::from(path));
    }
    let relative = "tests/js/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        let candidate = d.join(relative);
        if candidate.exists() {
            return Some(candidate);
        }
        dir = d.parent().map(PathBuf::from);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    if manifest.exists() {
        return Some(manifest);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("anvil"))
            .find(|p| p.exists())
    })
}

/// What [`LocalChain::with_funded_payer`] mints to the demo payer: 1000 test USDC.
pub const DEMO_PAYER_FUNDS: u128 = 1_000_000_000;

/// A running anvil, killed on drop.
pub struct LocalChain {
    child: Child,
    /// HTTP RPC URL.
    pub rpc_url: String,
    /// Numeric chain id.
    pub chain_id: u64,
    /// A SQLite ledger file of this chain's own (a ledger's nonces belong to one chain's
    /// history; a fresh dev chain must not inherit another one's), in a temporary
    /// directory removed on drop.
    pub ledger_path: PathBuf,
    http: reqwest::Client,
}

impl Drop for LocalChain {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(dir) = self.ledger_path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// ABI word of an address.
fn word_address(address: &str) -> String {
    format!(
        "{:0>64}",
        address.trim_start_matches("0x").to_ascii_lowercase()
    )
}

/// ABI word of a number.
fn word_u128(value: u128) -> String {
    format!("{value:064x}")
}

impl LocalChain {
    /// Starts anvil on a free loopback port with `chain_id` and any extra flags.
    pub async fn start(chain_id: u64, extra_args: &[&str]) -> Result<LocalChain, ChainError> {
        let anvil = find_anvil().ok_or(ChainError::NoAnvil)?;
        let mut child = Command::new(anvil)
            .args(["--host", "127.0.0.1", "--port", "0", "--chain-id"])
            .arg(chain_id.to_string())
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ChainError::Start(e.to_string()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ChainError::Start("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let address = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.trim().strip_prefix("Listening on ") {
                    return Some(rest.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ChainError::Start("anvil printed no listening address".into()))?;
        // Keep draining stdout so anvil never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // In a directory of its own: removing the directory on drop also keeps a facilitator
        // process that is still shutting down from creating the file again.
        let ledger_dir = std::env::temp_dir().join(format!(
            "x402-dev-ledger-{}-{}-{stamp}",
            std::process::id(),
            address.replace([':', '.'], "_")
        ));
        std::fs::create_dir_all(&ledger_dir).map_err(|e| ChainError::Start(e.to_string()))?;
        let ledger_path = ledger_dir.join("ledger.db");
        Ok(LocalChain {
            child,
            rpc_url: format!("http://{address}"),
            chain_id,
            ledger_path,
            http: reqwest::Client::new(),
        })
    }

    /// The chain the demo and the tests pay on: Base Sepolia's id (84532) with `extra_args`,
    /// the test USDC at Base Sepolia's USDC address, and 1000 USDC (6 decimals) minted to
    /// the demo payer (`DEV_ACCOUNTS[1]`).
    pub async fn with_funded_payer(extra_args: &[&str]) -> Result<LocalChain, ChainError> {
        let chain = LocalChain::start(84532, extra_args).await?;
        chain.install_token(BASE_SEPOLIA_USDC).await?;
        chain
            .mint(BASE_SEPOLIA_USDC, DEV_ACCOUNTS[1].0, DEMO_PAYER_FUNDS)
            .await?;
        Ok(chain)
    }

    /// Stops the node (tests use it to cut the facilitator's RPC).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// One JSON-RPC call.
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        let fail = |message: String| ChainError::Rpc {
            method: method.to_owned(),
            message,
        };
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let answer: Value = self
            .http
            .post(&self.rpc_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?
            .json()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if let Some(error) = answer.get("error") {
            return Err(fail(error.to_string()));
        }
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Places the test token's runtime code at `address`.
    pub async fn install_token(&self, address: &str) -> Result<(), ChainError> {
        self.install_contract("TestUSDC", address).await
    }

    /// Places the runtime code of test contract `name` (one without constructor state, such
    /// as `TestUSDC` or `TestWalletFactory`) at `address`.
    pub async fn install_contract(&self, name: &str, address: &str) -> Result<(), ChainError> {
        for text in [ARTIFACT, PERMIT2_ARTIFACT] {
            let artifact: Value =
                serde_json::from_str(text).map_err(|e| ChainError::Artifact(e.to_string()))?;
            if let Some(code) = artifact["contracts"][name]["deployedBytecode"].as_str() {
                return self.install_code(address, code).await;
            }
        }
        Err(ChainError::Artifact(format!("no {name} deployedBytecode")))
    }

    /// Places runtime `code` (hex) at `address`.
    pub async fn install_code(&self, address: &str, code: &str) -> Result<(), ChainError> {
        self.rpc("anvil_setCode", json!([address, code])).await?;
        Ok(())
    }

    /// Deploys the EIP-1271 test wallet owned by `owner`; returns its address.
    pub async fn deploy_wallet(&self, owner: &str) -> Result<String, ChainError> {
        let artifact: Value =
            serde_json::from_str(ARTIFACT).map_err(|e| ChainError::Artifact(e.to_string()))?;
        let code = artifact["contracts"]["TestWallet"]["bytecode"]
            .as_str()
            .ok_or_else(|| ChainError::Artifact("no TestWallet bytecode".into()))?;
        let data = format!("{code}{}", word_address(owner));
        let hash = self
            .rpc(
                "eth_sendTransaction",
                json!([{"from": DEV_ACCOUNTS[0].0, "data": data, "gas": "0x200000"}]),
            )
            .await?;
        let receipt = self.receipt(&hash).await?;
        receipt["contractAddress"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ChainError::Start("wallet deployment has no address".into()))
    }

    pub(crate) async fn receipt(&self, hash: &Value) -> Result<Value, ChainError> {
        for _ in 0..2000 {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash])).await?;
            if !receipt.is_null() {
                return Ok(receipt);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(ChainError::Start("transaction not mined".into()))
    }

    /// Mints test tokens to `to` (from anvil's first account).
    pub async fn mint(&self, token: &str, to: &str, amount: u128) -> Result<(), ChainError> {
        let data = format!("0x40c10f19{}{}", word_address(to), word_u128(amount));
        let hash = self
            .rpc(
                "eth_sendTransaction",
                json!([{"from": DEV_ACCOUNTS[0].0, "to": token, "data": data, "gas": "0x100000"}]),
            )
            .await?;
        self.receipt(&hash).await?;
        Ok(())
    }

    /// Token balance of `owner`.
    pub async fn balance_of(&self, token: &str, owner: &str) -> Result<u128, ChainError> {
        let data = format!("0x70a08231{}", word_address(owner));
        let answer = self
            .rpc("eth_call", json!([{"to": token, "data": data}, "latest"]))
            .await?;
        let text = answer.as_str().unwrap_or("0x0").trim_start_matches("0x");
        let text = text.trim_start_matches('0');
        if text.is_empty() {
            return Ok(0);
        }
        u128::from_str_radix(text, 16).map_err(|e| ChainError::Rpc {
            method: "balanceOf".into(),
            message: e.to_string(),
        })
    }
}
