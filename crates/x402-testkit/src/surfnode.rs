//! The local Solana node of the tests (`tools/surfnode`: surfpool on LiteSVM, a real SVM
//! execution engine behind a local JSON-RPC; a stand-in for a cluster: no other
//! validators, no forks, no fee market) and v0 payment transactions built as wallets
//! build them.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_message::{v0, VersionedMessage};
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use tokio::io::AsyncBufReadExt;

use crate::free_port;

/// A running local Solana node (`tools/surfnode`, the binary `X402_SURFNODE` names),
/// killed on drop.
pub struct SurfNode {
    _child: tokio::process::Child,
    /// Its JSON-RPC URL.
    pub url: String,
    http: reqwest::Client,
}

impl SurfNode {
    /// Starts the node on free ports and waits until it says it is ready.
    pub async fn start() -> SurfNode {
        let binary = std::env::var("X402_SURFNODE").expect(
            "X402_SURFNODE names the local Solana node binary; scripts/test.sh builds it (tools/surfnode)",
        );
        let mut child = tokio::process::Command::new(binary)
            .args([
                "--port",
                &free_port().to_string(),
                "--ws-port",
                &free_port().to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("surfnode starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("ready ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("surfnode prints ready");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        SurfNode {
            _child: child,
            url,
            http: reqwest::Client::new(),
        }
    }

    /// One JSON-RPC call; a node error fails the test.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        let answer: Value = self
            .http
            .post(&self.url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .expect("node answers")
            .json()
            .await
            .expect("JSON");
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Creates a 6-decimal mint owned by `program` at `mint`.
    pub async fn create_mint(&self, mint: &Pubkey, program: &Pubkey) {
        let mut data = Vec::with_capacity(82);
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(Pubkey::new_unique().as_ref());
        data.extend_from_slice(&u64::MAX.to_le_bytes());
        data.push(6);
        data.push(1);
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(&[0u8; 32]);
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        self.rpc(
            "surfnet_setAccount",
            json!([mint.to_string(), {"lamports": 1_461_600, "data": hex, "owner": program.to_string(), "executable": false}]),
        )
        .await;
    }

    /// Sets `owner`'s associated token account of `mint` to `amount`.
    pub async fn fund_token(&self, owner: &Pubkey, mint: &Pubkey, program: &Pubkey, amount: u64) {
        self.rpc(
            "surfnet_setTokenAccount",
            json!([owner.to_string(), mint.to_string(), {"amount": amount, "state": "initialized"}, program.to_string()]),
        )
        .await;
    }

    /// Sets `who`'s lamports.
    pub async fn lamports(&self, who: &Pubkey, amount: u64) {
        self.rpc(
            "surfnet_setAccount",
            json!([who.to_string(), {"lamports": amount}]),
        )
        .await;
    }

    /// The token amount of the token account `account`.
    pub async fn token_balance(&self, account: &Pubkey) -> u64 {
        let answer = self
            .rpc("getTokenAccountBalance", json!([account.to_string()]))
            .await;
        answer["value"]["amount"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("token balance")
    }

    /// The latest blockhash.
    pub async fn blockhash(&self) -> solana_hash::Hash {
        let answer = self.rpc("getLatestBlockhash", json!([])).await;
        answer["value"]["blockhash"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("blockhash")
    }
}

/// A v0 transaction with `fee_payer` first, signed by `signers` (the fee payer's slot
/// stays empty unless it signs), base64 as a payment payload carries it.
pub fn transaction(
    fee_payer: &Pubkey,
    instructions: &[Instruction],
    signers: &[&Keypair],
    blockhash: solana_hash::Hash,
) -> String {
    let message = v0::Message::try_compile(fee_payer, instructions, &[], blockhash)
        .expect("message compiles");
    let keys = message.account_keys.clone();
    let required = usize::from(message.header.num_required_signatures);
    let versioned = VersionedMessage::V0(message);
    let bytes = versioned.serialize();
    let mut signatures = vec![Default::default(); required];
    for signer in signers {
        if let Some(i) = keys.iter().position(|k| *k == signer.pubkey()) {
            if i < required {
                signatures[i] = signer.sign_message(&bytes);
            }
        }
    }
    let tx = VersionedTransaction {
        signatures,
        message: versioned,
    };
    base64::engine::general_purpose::STANDARD.encode(bincode::serialize(&tx).unwrap())
}
