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
/// Where the plain ERC-20 test token (neither EIP-2612 nor EIP-3009) is placed.
pub const PLAIN_TOKEN: &str = "0x2020000000000000000000000000000000002020";

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
    /// Places Permit2, both x402 proxy stand-ins, the EIP-2612 test token and the plain one.
    pub async fn install_permit2(&self) -> Result<(), ChainError> {
        self.install_contract("PlainTestToken", PLAIN_TOKEN).await?;
        self.install_code(PERMIT2, &permit2_runtime_code()?).await?;
        self.install_contract("X402ExactPermit2ProxyStandIn", EXACT_PERMIT2_PROXY)
            .await?;
        self.install_contract("X402UptoPermit2ProxyStandIn", UPTO_PERMIT2_PROXY)
            .await?;
        self.install_contract("TestPermitToken", PERMIT_TOKEN).await
    }
}

/// The Permit2 messages payers sign, with each proxy's witness (the EIP-712 type names are
/// the proxies' own, so each witness has a module).
mod exact_types {
    alloy::sol! {
        struct TokenPermissions { address token; uint256 amount; }
        struct Witness { address to; uint256 validAfter; }
        struct PermitWitnessTransferFrom { TokenPermissions permitted; address spender; uint256 nonce; uint256 deadline; Witness witness; }
    }
}

mod upto_types {
    alloy::sol! {
        struct TokenPermissions { address token; uint256 amount; }
        struct Witness { address to; address facilitator; uint256 validAfter; }
        struct PermitWitnessTransferFrom { TokenPermissions permitted; address spender; uint256 nonce; uint256 deadline; Witness witness; }
    }
}

/// What a test payer signs for Permit2: the amount (the maximum for `upto`), `payTo`, and
/// for `upto` the facilitator that may settle it.
pub struct PermitTerms<'a> {
    /// The payer's private key (hex).
    pub key: &'a str,
    /// `payTo`.
    pub to: &'a str,
    /// The permitted amount.
    pub amount: u64,
    /// `None`: an `exact` permit for the exact proxy; `Some`: an `upto` permit naming this
    /// facilitator, for the upto proxy.
    pub facilitator: Option<&'a str>,
}

/// A Permit2 payload (`signature`, `permit2Authorization`) for [`PERMIT_TOKEN`] on chain
/// 84532, signed as the official client signs it (random nonce, deadline a minute ahead).
/// Panics on a malformed key or address: test inputs are ours.
pub fn sign_permit2(terms: &PermitTerms<'_>) -> serde_json::Value {
    use alloy::primitives::{Address, U256};
    use alloy::signers::local::PrivateKeySigner;
    use alloy::signers::SignerSync;
    use alloy::sol_types::{eip712_domain, SolStruct};
    let signer: PrivateKeySigner = terms.key.parse().expect("a private key");
    let address = |text: &str| text.parse::<Address>().expect("an address");
    let token = address(PERMIT_TOKEN);
    let to = address(terms.to);
    let nonce = U256::from_be_bytes(crate::eip3009::random_nonce().0);
    let deadline = U256::from(crate::eip3009::now() + 60);
    let amount = U256::from(terms.amount);
    let domain = eip712_domain! {
        name: "Permit2",
        chain_id: 84532,
        verifying_contract: address(PERMIT2),
    };
    let (spender, digest) = match terms.facilitator {
        None => {
            use exact_types::*;
            let spender = address(EXACT_PERMIT2_PROXY);
            let message = PermitWitnessTransferFrom {
                permitted: TokenPermissions { token, amount },
                spender,
                nonce,
                deadline,
                witness: Witness {
                    to,
                    validAfter: U256::ZERO,
                },
            };
            (spender, message.eip712_signing_hash(&domain))
        }
        Some(facilitator) => {
            use upto_types::*;
            let spender = address(UPTO_PERMIT2_PROXY);
            let message = PermitWitnessTransferFrom {
                permitted: TokenPermissions { token, amount },
                spender,
                nonce,
                deadline,
                witness: Witness {
                    to,
                    facilitator: address(facilitator),
                    validAfter: U256::ZERO,
                },
            };
            (spender, message.eip712_signing_hash(&domain))
        }
    };
    let signature = signer.sign_hash_sync(&digest).expect("signs");
    let mut witness = serde_json::json!({"to": to.to_checksum(None), "validAfter": "0"});
    if let Some(facilitator) = terms.facilitator {
        witness["facilitator"] = serde_json::json!(address(facilitator).to_checksum(None));
    }
    serde_json::json!({
        "signature": alloy::primitives::hex::encode_prefixed(signature.as_bytes()),
        "permit2Authorization": {
            "from": signer.address().to_checksum(None),
            "permitted": {"token": token.to_checksum(None), "amount": amount.to_string()},
            "spender": spender.to_checksum(None),
            "nonce": nonce.to_string(),
            "deadline": deadline.to_string(),
            "witness": witness,
        }
    })
}

impl LocalChain {
    /// Mints the permit token to `owner` and has `owner` (an unlocked anvil account)
    /// approve Permit2 for `allowance`.
    pub async fn fund_permit2_payer(
        &self,
        owner: &str,
        amount: u128,
        allowance: u128,
    ) -> Result<(), ChainError> {
        self.mint(PERMIT_TOKEN, owner, amount).await?;
        self.approve_permit2(owner, allowance).await
    }

    /// `owner` (an unlocked anvil account) sets its permit-token allowance to Permit2.
    pub async fn approve_permit2(&self, owner: &str, allowance: u128) -> Result<(), ChainError> {
        let word = |hex: &str| format!("{:0>64}", hex.trim_start_matches("0x").to_lowercase());
        let data = format!(
            "0x095ea7b3{}{}",
            word(PERMIT2),
            word(&format!("{allowance:x}"))
        );
        let hash = self
            .rpc(
                "eth_sendTransaction",
                serde_json::json!([{"from": owner, "to": PERMIT_TOKEN, "data": data, "gas": "0x100000"}]),
            )
            .await?;
        self.receipt(&hash).await?;
        Ok(())
    }
}
