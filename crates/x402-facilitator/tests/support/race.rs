//! Racing our settlement: a competing transaction of the payer's lands in the same block.

use serde_json::{json, Value};
use x402_facilitator::dev::{LocalChain, BASE_SEPOLIA_USDC};

use super::{pending_transactions, post_json, until, DEV_SIGNER, PAYER};

/// A token `transfer` sent from an unlocked dev account with a tip far above the
/// facilitator's, so that anvil orders it first in the next block.
pub async fn send_first(chain: &LocalChain, from: &str, to: &str, data: String) -> Value {
    chain
        .rpc(
            "eth_sendTransaction",
            json!([{
                "from": from, "to": to, "data": data, "gas": "0x30000",
                "maxFeePerGas": "0x2540be40000", "maxPriorityFeePerGas": "0x174876e8000"
            }]),
        )
        .await
        .unwrap()
}

pub fn transfer_data(to: &str, amount: u128) -> String {
    format!(
        "0xa9059cbb{:0>64}{amount:064x}",
        to.trim_start_matches("0x").to_ascii_lowercase()
    )
}

/// Settles `body` with automine off; once our transaction is in the pool, `first` runs (the
/// payer's competing transaction), then one block is mined. Returns the settle answer.
pub async fn race(
    chain: &LocalChain,
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    first: impl std::future::Future<Output = Value>,
) -> Value {
    chain.rpc("evm_setAutomine", json!([false])).await.unwrap();
    let settle_url = format!("{url}/settle");
    let request = {
        let (http, body) = (http.clone(), body.clone());
        tokio::spawn(async move { post_json(&http, &settle_url, &body).await.1 })
    };
    until(30, "our settlement in the pool", || async {
        (pending_transactions(chain).await >= 1).then_some(())
    })
    .await;
    first.await;
    chain.rpc("evm_mine", json!([])).await.unwrap();
    chain.rpc("evm_setAutomine", json!([true])).await.unwrap();
    request.await.unwrap()
}

/// Settles `body` while the payer empties their whole test-USDC balance in the block our
/// transaction lands in (their transfer ordered first): our transaction reverts.
pub async fn race_payer_drain(
    chain: &LocalChain,
    http: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Value {
    let balance = chain.balance_of(BASE_SEPOLIA_USDC, PAYER).await.unwrap();
    let drain = send_first(
        chain,
        PAYER,
        BASE_SEPOLIA_USDC,
        transfer_data(DEV_SIGNER, balance),
    );
    race(chain, http, url, body, drain).await
}
