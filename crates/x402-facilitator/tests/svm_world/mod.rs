//! The SVM tests' world: a local Solana node (tools/surfnode) with the official client's
//! devnet USDC and a Token-2022 mint, a funded payer, and the facilitator serving it.

use super::*;

/// The devnet id: the official client knows only mainnet, devnet and testnet ids.
pub const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// Fogo mainnet: `solana:` and the first 32 characters of its genesis hash.
pub const FOGO: &str = "solana:CDLtwKnaCoK157uaHQDj4fHu72AyD251";
/// The official SDK's default devnet USDC mint (created on the local node).
pub const USDC_DEVNET: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";

pub struct World {
    pub node: SurfNode,
    pub network: &'static str,
    pub url: String,
    pub http: reqwest::Client,
    pub fee_payer: Pubkey,
    pub payer: Keypair,
    pub pay_to: Pubkey,
    pub mint: Pubkey,
    pub mint_2022: Pubkey,
    /// The relay between facilitator and node, when the world was built with one.
    pub proxy: Option<FaultProxy>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: TempDir,
}

pub async fn world() -> World {
    world_on(DEVNET, 20_000).await
}

/// A local node standing in for `network`, and a facilitator serving it.
pub async fn world_on(network: &'static str, receipt_timeout_ms: u64) -> World {
    world_at(network, receipt_timeout_ms, false).await
}

/// [`world_on`], with the facilitator reaching the node through a [`FaultProxy`] when
/// `relayed` (in `World::proxy`).
pub async fn world_at(network: &'static str, receipt_timeout_ms: u64, relayed: bool) -> World {
    let node = SurfNode::start().await;
    let proxy = match relayed {
        true => Some(FaultProxy::start(&node.url).await),
        false => None,
    };
    let rpc_url = proxy.as_ref().map_or(node.url.clone(), |p| p.url.clone());
    let fee_payer = Keypair::new();
    let payer = Keypair::new();
    let pay_to = Pubkey::new_unique();
    let mint: Pubkey = USDC_DEVNET.parse().unwrap();
    let mint_2022 = Pubkey::new_unique();
    node.create_mint(&mint, &TOKEN_PROGRAM).await;
    node.create_mint(&mint_2022, &TOKEN_2022_PROGRAM).await;
    node.lamports(&fee_payer.pubkey(), 10_000_000_000).await;
    node.lamports(&payer.pubkey(), 1_000_000_000).await;
    for (m, program) in [(&mint, &TOKEN_PROGRAM), (&mint_2022, &TOKEN_2022_PROGRAM)] {
        node.fund_token(&payer.pubkey(), m, program, 1_000_000_000)
            .await;
        node.fund_token(&pay_to, m, program, 0).await;
    }

    let section = format!(
        "[networks.\"{network}\"]\nrpc_urls = [\"{rpc_url}\"]\nsigner_keys = [\"{}\"]\nlocal_stand_in = true\nreceipt_timeout_ms = {receipt_timeout_ms}\nassets = [\"{mint}\", \"{mint_2022}\"]\n",
        fee_payer.to_base58_string()
    );
    let (url, shutdown, scratch) = serve_network("svm", &section).await;
    World {
        node,
        proxy,
        network,
        url,
        http: reqwest::Client::new(),
        fee_payer: fee_payer.pubkey(),
        payer,
        pay_to,
        mint,
        mint_2022,
        _shutdown: shutdown,
        _dir: scratch,
    }
}

/// A 6-decimal `TransferChecked`, as the test mints have.
pub fn transfer_checked(
    program: &Pubkey,
    source: Pubkey,
    mint: Pubkey,
    destination: Pubkey,
    authority: Pubkey,
    amount: u64,
) -> Instruction {
    build::transfer_checked(program, source, mint, destination, authority, amount, 6)
}

impl World {
    pub fn good_instructions(
        &self,
        mint: &Pubkey,
        program: &Pubkey,
        amount: u64,
    ) -> Vec<Instruction> {
        vec![
            compute_limit(20_000),
            compute_price(1),
            transfer_checked(
                program,
                associated_token_account(&self.payer.pubkey(), mint, program),
                *mint,
                associated_token_account(&self.pay_to, mint, program),
                self.payer.pubkey(),
                amount,
            ),
            memo(&format!("{:032x}", rand_tag())),
        ]
    }

    /// A v0 transaction with our fee payer first, signed by `signers`.
    pub async fn transaction(
        &self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        blockhash: Option<solana_hash::Hash>,
    ) -> String {
        let blockhash = match blockhash {
            Some(h) => h,
            None => self.node.blockhash().await,
        };
        surfnode::transaction(&self.fee_payer, instructions, signers, blockhash)
    }

    pub fn body(&self, transaction: &str, mint: &Pubkey, amount: u64) -> Value {
        let requirements = json!({
            "scheme": "exact", "network": self.network, "amount": amount.to_string(),
            "asset": mint.to_string(), "payTo": self.pay_to.to_string(), "maxTimeoutSeconds": 60,
            "extra": {"feePayer": self.fee_payer.to_string()}
        });
        json!({
            "x402Version": 2,
            "paymentPayload": {"x402Version": 2, "accepted": requirements, "payload": {"transaction": transaction}},
            "paymentRequirements": requirements
        })
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn balances(&self) -> (u64, u64, u64, u64) {
        (
            self.node
                .token_balance(&associated_token_account(
                    &self.payer.pubkey(),
                    &self.mint,
                    &TOKEN_PROGRAM,
                ))
                .await,
            self.node
                .token_balance(&associated_token_account(
                    &self.pay_to,
                    &self.mint,
                    &TOKEN_PROGRAM,
                ))
                .await,
            self.node
                .token_balance(&associated_token_account(
                    &self.payer.pubkey(),
                    &self.mint_2022,
                    &TOKEN_2022_PROGRAM,
                ))
                .await,
            self.node
                .token_balance(&associated_token_account(
                    &self.pay_to,
                    &self.mint_2022,
                    &TOKEN_2022_PROGRAM,
                ))
                .await,
        )
    }
}

pub fn rand_tag() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    nanos ^ (u128::from(N.fetch_add(1, Ordering::Relaxed)) << 64)
}
