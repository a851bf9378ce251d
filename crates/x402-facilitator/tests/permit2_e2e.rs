//! EVM `exact` with Permit2 end to end on a real anvil carrying the real Permit2 bytecode
//! (npm `@uniswap/v4-periphery` 1.0.3) and our STAND-IN of the x402 exact Permit2 proxy at
//! its canonical address: the official client signs, the official facilitator client calls
//! us, the official TypeScript facilitator answers the same payments beside us.

mod support;

use support::*;
use x402_facilitator::config::{AssetPolicy, VersionSupport};
use x402_testkit::permit2::{PERMIT_TOKEN, PLAIN_TOKEN};

const BOTH: VersionSupport = VersionSupport { v1: true, v2: true };

/// A facilitator serving `exact` and `upto` in the test USDC and the EIP-2612 test token,
/// on an anvil with Permit2 and the proxy stand-ins installed.
async fn start_with_permit2() -> Harness {
    let h = start_custom(
        &[],
        |config| {
            config.flags.x402_version_support = BOTH;
            config.networks[0].schemes = vec!["exact".into(), "upto".into()];
            if let AssetPolicy::Listed(assets) = &mut config.networks[0].assets {
                assets.push(PERMIT_TOKEN.to_owned());
                // An address without code, to see it refused as no contract.
                assets.push("0x00000000000000000000000000000000000002aa".to_owned());
            }
        },
        |_| {},
    )
    .await;
    h.chain
        .install_permit2()
        .await
        .expect("Permit2 (run `npm ci` in tests/js), the proxy stand-ins and the permit token");
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_permit2_conformance_beside_the_reference() {
    let h = start_with_permit2().await;
    let script = repo_dir().join("tests/js/permit2-conformance.mjs");
    run_script(&h, "node", &script).await;
}

/// What this test lets the facilitator send a payer for their approval's gas (70,000 gas at
/// up to 10 gwei: anvil's fees are about 1 gwei).
const MAX_FUNDING_WEI: u128 = 700_000_000_000_000;

/// `erc20ApprovalGasSponsoring` in a plain ERC-20: the official client signs the payment and
/// the approve(Permit2) transaction, we fund (within the ceiling), relay and settle; the
/// official TypeScript facilitator verifies beside us; refusals send nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_erc20_approval_sponsoring() {
    let h = start_custom(
        &[],
        |config| {
            config.flags.x402_version_support = BOTH;
            if let AssetPolicy::Listed(assets) = &mut config.networks[0].assets {
                assets.push(PLAIN_TOKEN.to_owned());
            }
        },
        |settings| {
            settings.options.erc20_approval_gas_sponsoring = true;
            settings.options.erc20_approval_max_funding_wei = MAX_FUNDING_WEI;
            // One funding per hour: the script's second payer without gas finds it spent.
            settings.options.erc20_approval_max_fundings_per_hour = 1;
        },
    )
    .await;
    h.chain
        .install_permit2()
        .await
        .expect("Permit2 (run `npm ci` in tests/js), the proxy stand-ins and the tokens");
    let script = repo_dir().join("tests/js/erc20-approval-conformance.mjs");
    run_script_with(&h, "node", &script, &[&MAX_FUNDING_WEI.to_string()]).await;
}

/// `erc20ApprovalGasSponsoring` when the facilitator's node fails (a fault proxy in front of
/// anvil): a node without `eth_simulateV1` is our trouble (`rpc_unavailable`), nothing is
/// sent; a node lost right after the payer's approval was sent leaves an answer with the
/// approval's hash and no settlement, and the same payment settles once when the node is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erc20_approval_sponsoring_when_the_node_fails() {
    let chain = chain_with_token(&[]).await;
    let proxy = FaultProxy::start(&chain.rpc_url).await;
    let h = start_on(
        chain,
        &proxy.url,
        |config| {
            config.flags.x402_version_support = BOTH;
            if let AssetPolicy::Listed(assets) = &mut config.networks[0].assets {
                assets.push(PLAIN_TOKEN.to_owned());
            }
        },
        |settings| settings.options.erc20_approval_gas_sponsoring = true,
    )
    .await;
    h.chain
        .install_permit2()
        .await
        .expect("Permit2 (run `npm ci` in tests/js), the proxy stand-ins and the tokens");
    let script = repo_dir().join("tests/js/erc20-approval-node-trouble.mjs");
    let dir = TempDir::new("erc20-approval-node-trouble");
    let file = dir.0.join("payment.json");
    let file = file.to_str().unwrap();
    let missing = "the method eth_simulateV1 does not exist/is not available";
    proxy.set(Fault::MethodError("eth_simulateV1", -32601, missing.into()));
    run_script_with(&h, "node", &script, &["no-simulate", file]).await;
    proxy.after_broadcast(Fault::RpcError);
    run_script_with(&h, "node", &script, &["cut-after-approval", file]).await;
    proxy.set(Fault::None);
    run_script_with(&h, "node", &script, &["resume", file]).await;
}
