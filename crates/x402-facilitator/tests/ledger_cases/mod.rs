//! The retryable refusals of the shared-ledger tests, in a file of their own for size.

use super::*;

/// Ruling 5: a retryable refusal (RPC down, no gas, ledger down, flag off) is never
/// remembered. The one payment is refused for each cause in turn, and once the cause is
/// gone the same request settles, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_refusals_are_not_remembered_and_the_same_payment_settles_afterwards() {
    const TOKEN: &str = "an-admin-token-for-tests";
    const VALUE: u64 = 700;
    let chain = chain_with_token(&[]).await;
    let rpc = SwitchProxy::start(chain.rpc_url.trim_start_matches("http://")).await;
    let (database_url, database) = fresh_postgres("retryable").await;
    let db = SwitchProxy::start(host_port(&database_url)).await;
    let relayed_database_url = database_url.replacen(host_port(&database_url), &db.address, 1);
    let process = Process::spawn(
        &chain,
        &[
            ("DATABASE_URL", relayed_database_url.as_str()),
            ("RPC_URL_BASE_SEPOLIA", rpc.url().as_str()),
            ("ADMIN_TOKEN", TOKEN),
            // Four facilitator-side failures in a row must not trip v2 settle here.
            ("BREAKER_THRESHOLD", "100"),
        ],
        &[],
    )
    .await;
    let http = reqwest::Client::new();
    let settle_url = format!("{}/settle", process.url);
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, VALUE, random_nonce()),
        &VALUE.to_string(),
    );
    let mark = ChainMark::take(&chain).await;
    let put_flag = |on: bool| {
        put_admin_flags(
            &http,
            process.url.clone(),
            TOKEN,
            json!({ "v2_settle_enabled": on }),
        )
    };

    // The node is unreachable.
    rpc.set(false);
    assert_refused(&http, &settle_url, &body, "rpc_unavailable").await;
    rpc.set(true);

    // The signer cannot pay gas.
    let signer_balance = drain_signer_gas(&chain).await;
    assert_refused(&http, &settle_url, &body, "facilitator_insufficient_gas").await;
    restore_signer_gas(&chain, signer_balance).await;

    // The ledger's database is unreachable.
    db.set(false);
    assert_refused(&http, &settle_url, &body, "ledger_unavailable").await;
    db.set(true);

    // An operator switched v2 settle off.
    put_flag(false).await;
    assert_refused(&http, &settle_url, &body, "feature_disabled").await;
    put_flag(true).await;

    // Nothing of the above was stored: the same request now settles, once.
    let (_, settled) = post_json(&http, &settle_url, &body).await;
    assert_eq!(settled["success"], true, "{settled}");
    let hash = settled["transaction"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("0x") && hash.len() == 66, "{settled}");
    let (_, again) = post_json(&http, &settle_url, &body).await;
    assert_eq!(again["success"], true, "{again}");
    assert_eq!(
        again["transaction"],
        hash.as_str(),
        "a retry gets the original"
    );
    mark.assert_moved(&chain, 1, VALUE).await;
    let ledger = Ledger::connect(&database_url).await.unwrap();
    assert_eq!(
        ledger
            .count_by_state(NETWORK, EntryState::Confirmed)
            .await
            .unwrap(),
        1
    );
    for state in [EntryState::Submitted, EntryState::Failed] {
        assert_eq!(ledger.count_by_state(NETWORK, state).await.unwrap(), 0);
    }
    drop(process);
    drop_postgres(&database).await;
}
