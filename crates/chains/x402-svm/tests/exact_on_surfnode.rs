//! The SVM crate against its local node (`tools/surfnode`, a stand-in for a cluster: a
//! real SVM execution engine behind a local JSON-RPC, with no other validators, forks or
//! fee market): `exact` verifies, settles once through the shared engine on a real SQLite
//! ledger (a retry answers the same signature, the tokens moved once), and the same
//! transaction under another request is refused with `duplicate_settlement`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use x402_ledger::Ledger;
use x402_protocol::{Chain, Payment, VersionedRequest};
use x402_svm::inspect::build::{compute_unit_limit, compute_unit_price, memo, transfer_checked};
use x402_svm::inspect::{associated_token_account, TOKEN_PROGRAM};
use x402_svm::{SvmNetwork, SvmOptions, SvmSettings};
use x402_testkit::surfnode::{transaction, SurfNode};

/// Solana devnet; the local node stands in for it.
const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

fn payment(
    transaction: &str,
    mint: &Pubkey,
    pay_to: &Pubkey,
    fee_payer: &Pubkey,
    resource: &str,
) -> Payment {
    let requirements = json!({
        "scheme": "exact", "network": DEVNET, "amount": "1000",
        "asset": mint.to_string(), "payTo": pay_to.to_string(), "maxTimeoutSeconds": 60,
        "extra": {"feePayer": fee_payer.to_string()}
    });
    let body = json!({
        "x402Version": 2,
        "paymentPayload": {"x402Version": 2, "resource": {"url": resource}, "accepted": requirements, "payload": {"transaction": transaction}},
        "paymentRequirements": requirements
    });
    let request: VersionedRequest =
        x402_protocol::parse_request(body.to_string().as_bytes()).expect("a v2 request");
    Payment::from_request(&request).expect("a payment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_verifies_settles_once_and_refuses_the_transaction_under_another_request() {
    let node = SurfNode::start().await;
    let (fee_payer, payer, pay_to) = (Keypair::new(), Keypair::new(), Pubkey::new_unique());
    let mint = Pubkey::new_unique();
    node.create_mint(&mint, &TOKEN_PROGRAM).await;
    node.lamports(&fee_payer.pubkey(), 10_000_000_000).await;
    node.fund_token(&payer.pubkey(), &mint, &TOKEN_PROGRAM, 5_000)
        .await;
    node.fund_token(&pay_to, &mint, &TOKEN_PROGRAM, 0).await;

    let dir = std::env::temp_dir().join(format!("x402-svm-crate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.display());
    let ledger = Arc::new(Ledger::connect(&url).await.expect("ledger"));
    let network = SvmNetwork::new(SvmSettings {
        chain_id: DEVNET.parse().unwrap(),
        rpc_urls: vec![node.url.clone()],
        fee_payer_keys: vec![fee_payer.to_base58_string()],
        options: SvmOptions {
            local_stand_in: true,
            ..SvmOptions::default()
        },
        confirm_timeout: Duration::from_secs(20),
        rpc_timeout: Duration::from_secs(5),
        min_fee_payer_lamports: 1,
        ledger,
    })
    .expect("network");
    let exact = network.scheme("exact").expect("exact is served");
    assert!(network.health().await.iter().all(|c| c.ok));

    let instructions = vec![
        compute_unit_limit(20_000),
        compute_unit_price(1),
        transfer_checked(
            &TOKEN_PROGRAM,
            associated_token_account(&payer.pubkey(), &mint, &TOKEN_PROGRAM),
            mint,
            associated_token_account(&pay_to, &mint, &TOKEN_PROGRAM),
            payer.pubkey(),
            1_000,
            6,
        ),
        memo("one payment"),
    ];
    let tx = transaction(
        &fee_payer.pubkey(),
        &instructions,
        &[&payer],
        node.blockhash().await,
    );
    let first = payment(&tx, &mint, &pay_to, &fee_payer.pubkey(), "http://shop/a");
    // The same transaction in a payload that says another scheme: the reference's code.
    let mut other_scheme = first.clone();
    other_scheme.payload_scheme = "upto".into();
    let refused = exact.verify(&other_scheme).await;
    assert_eq!(
        refused.reason.map(|r| r.as_str()),
        Some("invalid_exact_svm_unsupported_scheme"),
        "{refused:?}"
    );
    let verdict = exact.verify(&first).await;
    assert!(verdict.is_valid, "{verdict:?}");
    assert_eq!(verdict.payer, Some(payer.pubkey().to_string()));

    let settled = exact.settle(&first).await;
    assert!(settled.success, "{settled:?}");
    assert!(!settled.transaction.is_empty());
    assert_eq!(
        exact.settle(&first).await,
        settled,
        "a retry answers the recorded outcome"
    );
    let received = associated_token_account(&pay_to, &mint, &TOKEN_PROGRAM);
    assert_eq!(node.token_balance(&received).await, 1_000, "moved once");

    let elsewhere = payment(&tx, &mint, &pay_to, &fee_payer.pubkey(), "http://shop/b");
    let reused = exact.settle(&elsewhere).await;
    assert_eq!(
        reused.reason.map(|r| r.as_str()),
        Some("duplicate_settlement"),
        "{reused:?}"
    );
    assert_eq!(reused.transaction, "", "nothing sent for it");
    assert_eq!(node.token_balance(&received).await, 1_000);
    assert_eq!(
        network.reconcile(Duration::ZERO).await.examined,
        0,
        "nothing left open"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
