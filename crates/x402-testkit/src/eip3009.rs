//! EIP-3009 authorizations signed the way the official clients sign them, for the test
//! token at Base Sepolia's USDC address (`name` USDC, `version` 2, chain 84532).

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use alloy::sol_types::{eip712_domain, SolStruct};
use serde_json::{json, Value};

use crate::anvil::BASE_SEPOLIA_USDC;

alloy::sol! {
    /// The EIP-712 message of EIP-3009, as payers sign it.
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// The EIP-3009 transfer with `(v, r, s)`, as a payer could send it themselves.
    function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs an EIP-3009 authorization for the test token, like an official client would.
pub fn sign_authorization(key: &str, to: &str, value: u64, nonce: B256) -> Value {
    let signer: PrivateKeySigner = key.parse().unwrap();
    sign_as(key, &signer.address().to_checksum(None), to, value, nonce)
}

/// Signs with `key` an authorization whose `from` is a contract wallet.
pub fn sign_for_wallet(key: &str, wallet: &str, to: &str, value: u64) -> Value {
    sign_as(key, wallet, to, value, random_nonce())
}

/// Signs with `key` an authorization from `from` (valid from ten minutes ago for one
/// minute). Panics on a malformed key or address: test inputs are ours.
pub fn sign_as(key: &str, from: &str, to: &str, value: u64, nonce: B256) -> Value {
    // One clock reading: the signed message and the JSON must carry the same times.
    let now = now();
    sign_window(key, from, to, value, nonce, (now - 600, now + 60))
}

/// Signs with `key` an authorization from `from` valid in `(valid_after, valid_before)`
/// (Unix seconds): an expired payment is one whose window is past.
pub fn sign_window(
    key: &str,
    from: &str,
    to: &str,
    value: u64,
    nonce: B256,
    (valid_after, valid_before): (u64, u64),
) -> Value {
    let signer: PrivateKeySigner = key.parse().unwrap();
    let from_address: Address = from.parse().unwrap();
    let asset: Address = BASE_SEPOLIA_USDC.parse().unwrap();
    let domain = eip712_domain! {
        name: "USDC",
        version: "2",
        chain_id: 84532,
        verifying_contract: asset,
    };
    let message = TransferWithAuthorization {
        from: from_address,
        to: to.parse().unwrap(),
        value: U256::from(value),
        validAfter: U256::from(valid_after),
        validBefore: U256::from(valid_before),
        nonce,
    };
    let signature = signer
        .sign_hash_sync(&message.eip712_signing_hash(&domain))
        .unwrap();
    json!({
        "signature": format!("0x{}", hex_of(&signature.as_bytes())),
        "authorization": {
            "from": from_address.to_checksum(None),
            "to": to,
            "value": value.to_string(),
            "validAfter": valid_after.to_string(),
            "validBefore": valid_before.to_string(),
            "nonce": nonce.to_string(),
        }
    })
}

/// Lower-case hex without `0x`.
pub fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh authorization nonce: unique per process and call.
pub fn random_nonce() -> B256 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    alloy::primitives::keccak256(format!("{}-{nanos}-{n}", std::process::id()))
}
