//! EVM `exact` end to end on a real anvil: the official x402 clients, settlement
//! idempotency and RPC economy.

mod support;

use support::*;
use x402_facilitator::config::VersionSupport;

const BOTH: VersionSupport = VersionSupport { v1: true, v2: true };

fn js_dir() -> std::path::PathBuf {
    repo_dir().join("tests/js")
}

/// Runs one official-client conformance script against a fresh facilitator and anvil.
async fn run_conformance(program: &str, script: std::path::PathBuf) {
    let h = start(BOTH).await;
    run_script(&h, program, &script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_conformance() {
    // `npm ci` in tests/js provides @x402/core, @x402/evm and x402 (scripts/test.sh does it).
    run_conformance("node", js_dir().join("conformance.mjs")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_conformance() {
    // scripts/test.sh installs the PyPI `x402` package into a virtualenv and names it here.
    let python = std::env::var("X402_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = js_dir().join("../python/conformance.py");
    run_conformance(&python, script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_round_trips_per_verify_and_settle() {
    let h = start(BOTH).await;
    // Warm the signer's nonce cache with one settlement.
    let warm = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 1, random_nonce()),
        "1",
    );
    assert_eq!(h.post("/settle", &warm).await.1["success"], true);

    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
        "10000",
    );
    let before = h.evm.rpc_round_trips();
    let (_, verdict) = h.post("/verify", &body).await;
    let verify_trips = h.evm.rpc_round_trips() - before;
    assert_eq!(verdict["isValid"], true);

    let before = h.evm.rpc_round_trips();
    let (_, settled) = h.post("/settle", &body).await;
    let settle_trips = h.evm.rpc_round_trips() - before;
    assert_eq!(settled["success"], true, "{settled}");
    println!("RPC round trips: verify {verify_trips}, settle {settle_trips}");
    assert_eq!(verify_trips, 1, "a verify is one batched round trip");
    // verify batch (with gas, fees, signer balance) + broadcast + receipt poll(s)
    assert!(settle_trips <= 4, "settle took {settle_trips} round trips");

    // A repeated settle of the same payment costs no broadcast and returns the same hash.
    let before = h.evm.rpc_round_trips();
    let (_, again) = h.post("/settle", &body).await;
    assert_eq!(again["transaction"], settled["transaction"]);
    assert_eq!(
        h.evm.rpc_round_trips() - before,
        0,
        "a retry of a settled payment is answered from memory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_settles_pay_once() {
    let h = start(BOTH).await;
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 7_000, random_nonce()),
        "7000",
    );
    let payer_before = h.balance(PAYER).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = h.http.clone();
        let url = format!("{}/settle", h.url);
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }));
    }
    let mut hashes = std::collections::HashSet::new();
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(answer["success"], true, "{answer}");
        hashes.insert(answer["transaction"].as_str().unwrap().to_owned());
    }
    assert_eq!(hashes.len(), 1, "one transaction for one payment");
    assert_eq!(payer_before - h.balance(PAYER).await, 7_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_wallet_signature_is_checked_with_eip1271() {
    let h = start(BOTH).await;
    let wallet = h.chain.deploy_wallet(PAYER).await.unwrap();
    h.chain
        .mint(x402_facilitator::dev::BASE_SEPOLIA_USDC, &wallet, 50_000)
        .await
        .unwrap();
    // The owner signs the wallet's authorization; the token asks the wallet (EIP-1271).
    let payload = support::sign_for_wallet(PAYER_KEY, &wallet, PAY_TO, 10_000);
    let (_, verdict) = h.post("/verify", &v2_body(payload.clone(), "10000")).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    let (_, settled) = h.post("/settle", &v2_body(payload, "10000")).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(h.balance(&wallet).await, 40_000);

    // A signature by a stranger is refused by the wallet.
    let stranger = support::sign_for_wallet(DEV_ACCOUNTS_3_KEY, &wallet, PAY_TO, 10_000);
    let (_, verdict) = h.post("/verify", &v2_body(stranger, "10000")).await;
    assert_eq!(verdict["invalidReason"], "invalid_exact_evm_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_rpc_is_not_the_payers_fault() {
    let mut h = start(BOTH).await;
    let body = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
        "10000",
    );
    // Stop the chain: the facilitator's RPC is gone.
    h.chain.stop().await;
    let (status, verify) = h.post("/verify", &body).await;
    assert_eq!(status, 200);
    assert_eq!(verify["isValid"], false);
    assert_eq!(verify["invalidReason"], "rpc_unavailable");
    assert_eq!(verify["payer"], PAYER);
    let (status, settle) = h.post("/settle", &body).await;
    assert_eq!(status, 200);
    assert_eq!(settle["success"], false);
    assert_eq!(settle["errorReason"], "rpc_unavailable");
    assert_eq!(settle["transaction"], "");
}

/// The ERC-6492 wrapper around `inner`: `abi.encode(factory, factoryCalldata, inner) ++ magic`.
fn erc6492_wrap(factory: &str, factory_calldata: Vec<u8>, inner: &str) -> String {
    use alloy::primitives::{Address, Bytes};
    use alloy::sol_types::SolValue;
    let inner = Bytes::from(
        (0..inner.len() / 2 - 1)
            .map(|i| u8::from_str_radix(&inner[2 + 2 * i..4 + 2 * i], 16).unwrap())
            .collect::<Vec<u8>>(),
    );
    let factory: Address = factory.parse().unwrap();
    let wrapped = (factory, Bytes::from(factory_calldata), inner).abi_encode_params();
    format!("0x{}{}", hex_of(&wrapped), "6492".repeat(16))
}

/// Calldata of `TestWalletFactory.deploy(owner, salt)`.
fn factory_deploy_calldata(owner: &str, salt: u8) -> Vec<u8> {
    use alloy::primitives::{keccak256, Address, B256};
    use alloy::sol_types::SolValue;
    let owner: Address = owner.parse().unwrap();
    let mut data = keccak256("deploy(address,bytes32)")[..4].to_vec();
    data.extend((owner, B256::with_last_byte(salt)).abi_encode_params());
    data
}

/// The counterfactual address `TestWalletFactory` at `factory` gives `owner` with `salt`.
async fn counterfactual_wallet(h: &Harness, factory: &str, owner: &str, salt: u8) -> String {
    use alloy::primitives::{keccak256, Address, B256};
    use alloy::sol_types::SolValue;
    let owner: Address = owner.parse().unwrap();
    let mut data = keccak256("walletAddress(address,bytes32)")[..4].to_vec();
    data.extend((owner, B256::with_last_byte(salt)).abi_encode_params());
    let answer = h
        .chain
        .rpc(
            "eth_call",
            serde_json::json!([{"to": factory, "data": format!("0x{}", hex_of(&data))}, "latest"]),
        )
        .await
        .unwrap();
    format!("0x{}", &answer.as_str().unwrap()[26..])
}

async fn signer_nonce(h: &Harness) -> serde_json::Value {
    let params = serde_json::json!([DEV_SIGNER, "latest"]);
    h.chain
        .rpc("eth_getTransactionCount", params)
        .await
        .unwrap()
}

async fn code_of(h: &Harness, who: &str) -> serde_json::Value {
    let params = serde_json::json!([who, "latest"]);
    h.chain.rpc("eth_getCode", params).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erc6492_wallet_is_deployed_only_through_an_allowlisted_factory() {
    const ALLOWED: &str = "0x00000000000000000000000000000000000064aa";
    const STRANGER: &str = "0x00000000000000000000000000000000000064bb";
    let h = start_with(BOTH, |settings| {
        settings.options.erc6492_factories = vec![ALLOWED.parse().unwrap()];
    })
    .await;
    for factory in [ALLOWED, STRANGER] {
        h.chain
            .install_contract("TestWalletFactory", factory)
            .await
            .unwrap();
    }
    let usdc = x402_facilitator::dev::BASE_SEPOLIA_USDC;
    // A factory outside the allowlist is never called, not even in a simulation.
    let wallet = counterfactual_wallet(&h, STRANGER, PAYER, 1).await;
    h.chain.mint(usdc, &wallet, 50_000).await.unwrap();
    let mut payload = support::sign_for_wallet(PAYER_KEY, &wallet, PAY_TO, 10_000);
    let inner = payload["signature"].as_str().unwrap().to_owned();
    payload["signature"] = erc6492_wrap(STRANGER, factory_deploy_calldata(PAYER, 1), &inner).into();
    let nonce_before = signer_nonce(&h).await;
    let (_, verdict) = h.post("/verify", &v2_body(payload.clone(), "10000")).await;
    assert_eq!(
        verdict["invalidReason"], "eip6492_factory_not_allowed",
        "{verdict}"
    );
    let (_, settled) = h.post("/settle", &v2_body(payload, "10000")).await;
    assert_eq!(settled["success"], false);
    assert_eq!(settled["errorReason"], "eip6492_factory_not_allowed");
    assert_eq!(signer_nonce(&h).await, nonce_before, "no transaction sent");
    assert_eq!(code_of(&h, &wallet).await, "0x", "wallet not deployed");
    assert_eq!(h.balance(&wallet).await, 50_000);

    // An allowlisted factory whose calldata deploys some other wallet is refused.
    let wallet = counterfactual_wallet(&h, ALLOWED, PAYER, 2).await;
    h.chain.mint(usdc, &wallet, 50_000).await.unwrap();
    let mut payload = support::sign_for_wallet(PAYER_KEY, &wallet, PAY_TO, 10_000);
    let inner = payload["signature"].as_str().unwrap().to_owned();
    payload["signature"] = erc6492_wrap(ALLOWED, factory_deploy_calldata(PAYER, 3), &inner).into();
    let (_, verdict) = h.post("/verify", &v2_body(payload, "10000")).await;
    assert_eq!(
        verdict["invalidReason"], "invalid_exact_evm_payload_undeployed_smart_wallet",
        "{verdict}"
    );

    // A stranger's signature in a well-formed wrapper is refused by the probed wallet.
    let mut payload = support::sign_for_wallet(DEV_ACCOUNTS_3_KEY, &wallet, PAY_TO, 10_000);
    let inner = payload["signature"].as_str().unwrap().to_owned();
    payload["signature"] = erc6492_wrap(ALLOWED, factory_deploy_calldata(PAYER, 2), &inner).into();
    let (_, verdict) = h.post("/verify", &v2_body(payload, "10000")).await;
    assert_eq!(
        verdict["invalidReason"], "invalid_exact_evm_signature",
        "{verdict}"
    );

    // The owner's signature: verify simulates without deploying, settle deploys then pays.
    let mut payload = support::sign_for_wallet(PAYER_KEY, &wallet, PAY_TO, 10_000);
    let inner = payload["signature"].as_str().unwrap().to_owned();
    payload["signature"] = erc6492_wrap(ALLOWED, factory_deploy_calldata(PAYER, 2), &inner).into();
    let (_, verdict) = h.post("/verify", &v2_body(payload.clone(), "10000")).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    assert_eq!(code_of(&h, &wallet).await, "0x", "verify deploys nothing");
    let pay_to_before = h.balance(PAY_TO).await;
    let (_, settled) = h.post("/settle", &v2_body(payload.clone(), "10000")).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_ne!(
        code_of(&h, &wallet).await,
        "0x",
        "settle deployed the wallet"
    );
    assert_eq!(h.balance(&wallet).await, 40_000);
    assert_eq!(h.balance(PAY_TO).await - pay_to_before, 10_000);
    // A retry returns the same transaction and moves nothing.
    let (_, again) = h.post("/settle", &v2_body(payload, "10000")).await;
    assert_eq!(again["transaction"], settled["transaction"]);
    assert_eq!(h.balance(&wallet).await, 40_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_wallet_deployment_is_signed_again_before_the_transfer() {
    const FACTORY: &str = "0x00000000000000000000000000000000000064aa";
    let h = start_with(BOTH, |settings| {
        settings.options.erc6492_factories = vec![FACTORY.parse().unwrap()];
    })
    .await;
    h.chain
        .install_contract("TestWalletFactory", FACTORY)
        .await
        .unwrap();
    // One settlement: from now on the ledger counts this signer's nonces itself.
    let warm = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 1_000, random_nonce()),
        "1000",
    );
    let (_, warmed) = h.post("/settle", &warm).await;
    assert_eq!(warmed["success"], true, "{warmed}");
    // Someone else uses the key behind the ledger's back (the dev chain mints with the
    // signer key, so the wallet's mint is one such use, plus none, one or two more): the
    // nonce the deployment will be signed with is gone before it is sent, and with two or
    // more foreign uses the transfer's too.
    for (foreign, salt) in [(1, 11u8), (2, 9u8), (3, 10u8)] {
        let usdc = x402_facilitator::dev::BASE_SEPOLIA_USDC;
        let wallet = counterfactual_wallet(&h, FACTORY, PAYER, salt).await;
        h.chain.mint(usdc, &wallet, 50_000).await.unwrap();
        for _ in 1..foreign {
            h.chain
                .rpc(
                    "eth_sendTransaction",
                    serde_json::json!([{"from": DEV_SIGNER, "to": DEV_SIGNER, "value": "0x0"}]),
                )
                .await
                .unwrap();
        }
        until(10, "the key's transactions to be mined", || async {
            let latest = account_nonce(&h.chain, DEV_SIGNER, "latest").await;
            (latest == account_nonce(&h.chain, DEV_SIGNER, "pending").await).then_some(())
        })
        .await;
        let mut payload = support::sign_for_wallet(PAYER_KEY, &wallet, PAY_TO, 10_000);
        let inner = payload["signature"].as_str().unwrap().to_owned();
        payload["signature"] =
            erc6492_wrap(FACTORY, factory_deploy_calldata(PAYER, salt), &inner).into();
        let pay_to_before = h.balance(PAY_TO).await;
        let (_, settled) = h.post("/settle", &v2_body(payload.clone(), "10000")).await;
        // The wallet is deployed again before the payment, instead of a transfer that
        // reverts against an empty address; with only the deployment's nonce taken, the new
        // deployment fills the transfer's nonce and the transfer follows it.
        assert_eq!(settled["success"], true, "{foreign} foreign: {settled}");
        assert_ne!(code_of(&h, &wallet).await, "0x", "the wallet is deployed");
        assert_eq!(h.balance(&wallet).await, 40_000);
        assert_eq!(h.balance(PAY_TO).await - pay_to_before, 10_000);
        let (_, again) = h.post("/settle", &v2_body(payload, "10000")).await;
        assert_eq!(again["transaction"], settled["transaction"]);
        assert_eq!(h.balance(&wallet).await, 40_000, "a retry moves nothing");
    }
    // No nonce gap was left behind: a plain payment after all of it settles at once.
    let plain = v2_body(
        sign_authorization(PAYER_KEY, PAY_TO, 1_000, random_nonce()),
        "1000",
    );
    let (_, settled) = h.post("/settle", &plain).await;
    assert_eq!(settled["success"], true, "{settled}");
}

fn with_payment_id(mut body: serde_json::Value, id: &str) -> serde_json::Value {
    body["paymentPayload"]["extensions"] =
        serde_json::json!({"payment-identifier": {"info": {"required": false, "id": id}}});
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_identifier_binds_an_id_to_one_payment() {
    let h = start(BOTH).await;
    let id = "pay_7d5d747be160e280504c099d984bcfe0";
    let first = with_payment_id(
        v2_body(
            sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
            "10000",
        ),
        id,
    );
    let payer_before = h.balance(PAYER).await;
    let (_, settled) = h.post("/settle", &first).await;
    assert_eq!(settled["success"], true, "{settled}");
    // The same id and payment: a retry, the original transaction.
    let (_, again) = h.post("/settle", &first).await;
    assert_eq!(again["transaction"], settled["transaction"]);

    // The same id with another payment: a conflict, at verify and at settle, nothing moved.
    let other = with_payment_id(
        v2_body(
            sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
            "10000",
        ),
        id,
    );
    let (status, verdict) = h.post("/verify", &other).await;
    assert_eq!(status, 200);
    assert_eq!(verdict["invalidReason"], "payment_identifier_conflict");
    assert_eq!(verdict["payer"], PAYER, "the payload names the payer");
    let (_, refused) = h.post("/settle", &other).await;
    assert_eq!(refused["success"], false);
    assert_eq!(refused["errorReason"], "payment_identifier_conflict");
    assert_eq!(refused["network"], "eip155:84532");
    assert_eq!(refused["payer"], PAYER);
    assert_eq!(payer_before - h.balance(PAYER).await, 10_000);

    // A refused payment (nothing broadcast) does not keep its id.
    let id2 = "pay_00000000000000000000000000000002";
    let mut bad = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    bad["authorization"]["value"] = serde_json::json!("10001");
    let (_, refused) = h
        .post("/settle", &with_payment_id(v2_body(bad, "10001"), id2))
        .await;
    assert_eq!(refused["errorReason"], "invalid_exact_evm_signature");
    let good = with_payment_id(
        v2_body(
            sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
            "10000",
        ),
        id2,
    );
    let (_, settled) = h.post("/settle", &good).await;
    assert_eq!(settled["success"], true, "{settled}");
}
