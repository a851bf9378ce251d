//! The EVM crate against its local chain: `exact` on a real anvil with the EIP-3009 test
//! token, settling through the shared engine on a real SQLite ledger. A payment verifies,
//! settles once (a retry answers the same hash, the chain moved the value once), and the
//! same authorization under another request is refused without a second transaction.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use x402_evm::{EvmNetwork, EvmOptions, EvmSettings, NonceFetchMode};
use x402_ledger::Ledger;
use x402_protocol::{Chain, ChainId, Payment, VersionedRequest};
use x402_testkit::anvil::{LocalChain, BASE_SEPOLIA_USDC, DEV_ACCOUNTS};
use x402_testkit::eip3009::{random_nonce, sign_authorization};

const PAYER_KEY: &str = DEV_ACCOUNTS[1].1;
const PAY_TO: &str = DEV_ACCOUNTS[2].0;

fn payment(payload: &Value, amount: &str, resource: &str) -> Payment {
    let requirements = json!({
        "scheme": "exact", "network": "eip155:84532", "amount": amount,
        "asset": BASE_SEPOLIA_USDC, "payTo": PAY_TO, "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"}
    });
    let body = json!({
        "x402Version": 2,
        "paymentPayload": {"x402Version": 2, "resource": {"url": resource}, "accepted": requirements, "payload": payload},
        "paymentRequirements": requirements
    });
    let request: VersionedRequest =
        x402_protocol::parse_request(body.to_string().as_bytes()).expect("a v2 request");
    Payment::from_request(&request).expect("a payment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_verifies_settles_once_and_refuses_the_payment_under_another_request() {
    let chain = LocalChain::start(84532, &[]).await.expect("anvil");
    chain.install_token(BASE_SEPOLIA_USDC).await.unwrap();
    chain
        .mint(BASE_SEPOLIA_USDC, DEV_ACCOUNTS[1].0, 1_000_000)
        .await
        .unwrap();
    let url = format!("sqlite://{}?mode=rwc", chain.ledger_path.display());
    let ledger = Arc::new(Ledger::connect(&url).await.expect("ledger"));
    let network = EvmNetwork::new(EvmSettings {
        chain_id: ChainId::eip155(84532),
        rpc_urls: vec![chain.rpc_url.clone()],
        signer_keys: vec![DEV_ACCOUNTS[0].1.to_owned()],
        options: EvmOptions::default(),
        receipt_timeout: Duration::from_secs(20),
        assets: Vec::new(),
        min_signer_balance: 1,
        rpc_timeout: Duration::from_secs(5),
        ledger,
        nonce_mode: NonceFetchMode::Cached,
    })
    .expect("network");
    let exact = network.scheme("exact").expect("exact is served");
    assert!(network.scheme("upto").is_some());
    assert!(network.scheme("batch-settlement").is_none());
    assert!(network.health().await.iter().all(|c| c.ok));

    let payload = sign_authorization(PAYER_KEY, PAY_TO, 2_500, random_nonce());
    // A signature that ends as ERC-6492 but whose wrapping does not decode.
    let mut garbled = payload.clone();
    garbled["signature"] = format!("0x{}{}", "ab".repeat(40), "6492".repeat(16)).into();
    let refused = exact
        .verify(&payment(&garbled, "2500", "http://shop/a"))
        .await;
    assert_eq!(
        refused.reason.map(|r| r.as_str()),
        Some("invalid_exact_evm_failed_to_parse_signature"),
        "{refused:?}"
    );
    let first = payment(&payload, "2500", "http://shop/a");
    let verdict = exact.verify(&first).await;
    assert!(verdict.is_valid, "{verdict:?}");
    assert_eq!(verdict.payer.as_deref(), Some(DEV_ACCOUNTS[1].0));

    let settled = exact.settle(&first).await;
    assert!(settled.success, "{settled:?}");
    assert!(settled.transaction.starts_with("0x"), "{settled:?}");
    assert_eq!(
        exact.settle(&first).await,
        settled,
        "a retry answers the recorded outcome"
    );
    assert!(exact.is_recorded(&first).await);
    let balance = chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap();
    assert_eq!(balance, 2_500, "moved once");

    let elsewhere = payment(&payload, "2500", "http://shop/b");
    let reused = exact.settle(&elsewhere).await;
    assert!(!reused.success);
    assert_eq!(
        reused.reason.map(|r| r.as_str()),
        Some("invalid_exact_evm_nonce_already_used"),
        "{reused:?}"
    );
    assert_eq!(reused.transaction, "", "nothing sent for it");
    assert_eq!(
        chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap(),
        2_500
    );
    assert_eq!(
        network.reconcile(Duration::ZERO).await.examined,
        0,
        "nothing left open"
    );
}
