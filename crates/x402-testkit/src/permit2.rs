//! Permit2 on anvil: the canonical Permit2 with its real runtime bytecode (from the npm
//! package `@uniswap/v4-periphery` 1.0.3, `lib/permit2/test/utils/DeployPermit2.sol`,
//! installed by `npm ci` in tests/js), the x402 Permit2 proxies as STAND-INS of ours with
//! their ABI and witness types (`contracts/Permit2StandIns.sol`; the real proxies ship in no
//! registry) at their canonical addresses, and an EIP-2612 token without EIP-3009.

use std::path::PathBuf;

use crate::anvil::{ChainError, LocalChain};

/// The canonical Permit2 address.
pub const PERMIT2: &str = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
/// The canonical x402 exact Permit2 proxy address.
pub const EXACT_PERMIT2_PROXY: &str = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";
/// The canonical x402 upto Permit2 proxy address.
pub const UPTO_PERMIT2_PROXY: &str = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";
/// Where the tests place `TestPermitToken` ("Permit Token", version "1").
pub const PERMIT_TOKEN: &str = "0x2612000000000000000000000000000000002612";

/// The file of the npm package that carries Permit2's runtime bytecode.
fn permit2_source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/js/node_modules/@uniswap/v4-periphery/lib/permit2/test/utils/DeployPermit2.sol",
    )
}

/// Permit2's runtime bytecode, read from the npm package's Solidity file (the one `hex"…"`
/// literal in it).
pub fn permit2_runtime_code() -> Result<String, ChainError> {
    let path = permit2_source();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ChainError::Artifact(format!(
            "{}: {e} (run `npm ci` in tests/js)",
            path.display()
        ))
    })?;
    let start = text
        .find("hex\"")
        .ok_or_else(|| ChainError::Artifact("no hex literal in DeployPermit2.sol".into()))?
        + 4;
    let end = text[start..]
        .find('"')
        .ok_or_else(|| ChainError::Artifact("unterminated hex literal".into()))?;
    let code = &text[start..start + end];
    if code.len() < 1000 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ChainError::Artifact(
            "DeployPermit2.sol's literal is not bytecode".into(),
        ));
    }
    Ok(format!("0x{code}"))
}

impl LocalChain {
    /// Places Permit2, both x402 proxy stand-ins and the EIP-2612 test token.
    pub async fn install_permit2(&self) -> Result<(), ChainError> {
        self.install_code(PERMIT2, &permit2_runtime_code()?).await?;
        self.install_contract("X402ExactPermit2ProxyStandIn", EXACT_PERMIT2_PROXY)
            .await?;
        self.install_contract("X402UptoPermit2ProxyStandIn", UPTO_PERMIT2_PROXY)
            .await?;
        self.install_contract("TestPermitToken", PERMIT_TOKEN).await
    }
}
