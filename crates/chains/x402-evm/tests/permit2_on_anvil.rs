//! The EVM crate's Permit2 schemes against its local chain: anvil with the real Permit2
//! bytecode and our STAND-INS of the x402 proxies (`x402_testkit::permit2`), settling on the
//! shared engine with a real SQLite ledger. What a hostile payer, a racing resource server
//! and a node that is down can do: verify costs one round trip; two `upto` settles of one
//! authorization for different amounts charge once; a payer who revokes the approval after
//! verify gets a refusal and costs no gas; a node that is down is the facilitator's trouble.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use x402_evm::{EvmNetwork, EvmOptions, EvmSettings, NonceFetchMode};
use x402_ledger::Ledger;
use x402_protocol::{Payment, Scheme, VersionedRequest};
use x402_testkit::anvil::{LocalChain, DEV_ACCOUNTS};
use x402_testkit::permit2::{sign_permit2, PermitTerms, PERMIT_TOKEN};

const PAYER: &str = DEV_ACCOUNTS[1].0;
const PAYER_KEY: &str = DEV_ACCOUNTS[1].1;
const PAY_TO: &str = DEV_ACCOUNTS[2].0;
const SIGNER: &str = DEV_ACCOUNTS[0].0;

fn payment(scheme: &str, payload: &Value, accepted: &str, amount: &str) -> Payment {
    let requirements = |amount: &str| {
        json!({
            "scheme": scheme, "network": "eip155:84532", "amount": amount,
            "asset": PERMIT_TOKEN, "payTo": PAY_TO, "maxTimeoutSeconds": 60,
            "extra": {"name": "Permit Token", "version": "1", "assetTransferMethod": "permit2"}
        })
    };
    let body = json!({
        "x402Version": 2,
        "paymentPayload": {"x402Version": 2, "accepted": requirements(accepted), "payload": payload},
        "paymentRequirements": requirements(amount)
    });
    let request: VersionedRequest =
        x402_protocol::parse_request(body.to_string().as_bytes()).expect("a v2 request");
    Payment::from_request(&request).expect("a payment")
}

async fn network_on(chain: &LocalChain, rpc_url: &str) -> EvmNetwork {
    let url = format!("sqlite://{}?mode=rwc", chain.ledger_path.display());
    let ledger = Arc::new(Ledger::connect(&url).await.expect("ledger"));
    EvmNetwork::new(EvmSettings {
        chain_id: x402_protocol::ChainId::eip155(84532),
        rpc_urls: vec![rpc_url.to_owned()],
        signer_keys: vec![DEV_ACCOUNTS[0].1.to_owned()],
        options: EvmOptions::default(),
        receipt_timeout: Duration::from_secs(20),
        assets: Vec::new(),
        min_signer_balance: 1,
        rpc_timeout: Duration::from_secs(5),
        ledger,
        nonce_mode: NonceFetchMode::Cached,
    })
    .expect("network")
}

async fn chain_with_permit2() -> LocalChain {
    let chain = LocalChain::start(84532, &[]).await.expect("anvil");
    chain
        .install_permit2()
        .await
        .expect("Permit2 (run `npm ci` in tests/js) and the stand-ins");
    chain
        .fund_permit2_payer(PAYER, 1_000_000, u128::MAX)
        .await
        .unwrap();
    chain
}

/// The payer's permit for 10,000 to `PAY_TO`: `exact`, or `upto` bound to `facilitator`.
fn signed(facilitator: Option<&str>) -> Value {
    sign_permit2(&PermitTerms {
        key: PAYER_KEY,
        to: PAY_TO,
        amount: 10_000,
        facilitator,
    })
}

/// Transactions the facilitator's signer has sent (its account nonce, pending included).
async fn sent_by_signer(chain: &LocalChain) -> Value {
    chain
        .rpc("eth_getTransactionCount", json!([SIGNER, "pending"]))
        .await
        .unwrap()
}

fn reason(answer: &Option<x402_protocol::Reason>) -> Option<&'static str> {
    answer.map(|r| r.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit2_verify_is_one_round_trip_and_settles_once() {
    let chain = chain_with_permit2().await;
    let network = network_on(&chain, &chain.rpc_url).await;
    let exact = network.scheme("exact").expect("exact");
    // A signature that ends as ERC-6492 but whose wrapping does not decode.
    let mut garbled = signed(None);
    garbled["signature"] = format!("0x{}{}", "ab".repeat(40), "6492".repeat(16)).into();
    let refused = exact
        .verify(&payment("exact", &garbled, "10000", "10000"))
        .await;
    assert_eq!(
        reason(&refused.reason),
        Some("invalid_exact_evm_failed_to_parse_signature"),
        "{refused:?}"
    );
    let paid = payment("exact", &signed(None), "10000", "10000");
    let before = network.rpc_round_trips();
    let verdict = exact.verify(&paid).await;
    assert!(verdict.is_valid, "{verdict:?}");
    assert_eq!(
        network.rpc_round_trips() - before,
        1,
        "one batched round trip"
    );
    let settled = exact.settle(&paid).await;
    assert!(settled.success, "{settled:?}");
    assert_eq!(
        exact.settle(&paid).await,
        settled,
        "a retry answers the record"
    );
    assert_eq!(
        chain.balance_of(PERMIT_TOKEN, PAY_TO).await.unwrap(),
        10_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_upto_settles_of_one_authorization_charge_once() {
    let chain = chain_with_permit2().await;
    let network = network_on(&chain, &chain.rpc_url).await;
    let upto: Arc<dyn Scheme> = network.scheme("upto").expect("upto");
    let payload = signed(Some(SIGNER));
    let (a, b) = (
        payment("upto", &payload, "10000", "4000"),
        payment("upto", &payload, "10000", "7000"),
    );
    let (first, second) = tokio::join!(upto.settle(&a), upto.settle(&b));
    let answers = [&first, &second];
    let won: Vec<_> = answers.iter().filter(|s| s.success).collect();
    assert_eq!(won.len(), 1, "{first:?} {second:?}");
    let lost = answers.iter().find(|s| !s.success).expect("one refused");
    assert_eq!(
        reason(&lost.reason),
        Some("permit2_invalid_nonce"),
        "{lost:?}"
    );
    assert_eq!(lost.transaction, "", "nothing sent for the loser");
    let charged: u128 = won[0].amount.as_deref().unwrap().parse().unwrap();
    assert!(charged == 4_000 || charged == 7_000);
    assert_eq!(
        chain.balance_of(PERMIT_TOKEN, PAY_TO).await.unwrap(),
        charged
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_who_revokes_the_approval_after_verify_costs_no_gas() {
    let chain = chain_with_permit2().await;
    let network = network_on(&chain, &chain.rpc_url).await;
    let exact = network.scheme("exact").expect("exact");
    let paid = payment("exact", &signed(None), "10000", "10000");
    assert!(exact.verify(&paid).await.is_valid);
    chain.approve_permit2(PAYER, 0).await.unwrap();
    let sent_before = sent_by_signer(&chain).await;
    let settled = exact.settle(&paid).await;
    assert!(!settled.success);
    assert_eq!(
        reason(&settled.reason),
        Some("permit2_allowance_required"),
        "{settled:?}"
    );
    assert_eq!(settled.transaction, "");
    assert_eq!(
        sent_by_signer(&chain).await,
        sent_before,
        "the facilitator sent nothing"
    );
    assert_eq!(chain.balance_of(PERMIT_TOKEN, PAY_TO).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_is_down_is_the_facilitators_trouble_not_the_payers() {
    let chain = chain_with_permit2().await;
    // Nothing listens on port 1: every call is refused.
    let network = network_on(&chain, "http://127.0.0.1:1").await;
    for scheme in ["exact", "upto"] {
        let facilitator = (scheme == "upto").then_some(SIGNER);
        let paid = payment(scheme, &signed(facilitator), "10000", "10000");
        let handler = network.scheme(scheme).expect("served");
        let verdict = handler.verify(&paid).await;
        assert_eq!(
            reason(&verdict.reason),
            Some("rpc_unavailable"),
            "{verdict:?}"
        );
        assert_eq!(verdict.payer.as_deref(), Some(PAYER));
        let settled = handler.settle(&paid).await;
        assert_eq!(
            reason(&settled.reason),
            Some("rpc_unavailable"),
            "{settled:?}"
        );
        assert_eq!(settled.transaction, "");
    }
}
