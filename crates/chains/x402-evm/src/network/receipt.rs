//! What a mined settlement's receipt proves. A status of 1 says the call did not revert; it
//! does not say the token moved what the payer authorized (a token can return without
//! transferring, or transfer another amount). So a settlement succeeds only when the
//! receipt also holds the `Transfer` its authorization promised: emitted by the asset, from
//! the payer, to the payee, of exactly the value. Anything else is a failure with the hash
//! (`invalid_exact_evm_transfer_event_mismatch`), counted as ours, as the reference does.

use super::*;
use cause::TransferTerms;

/// `keccak256("Transfer(address,address,uint256)")`.
const TRANSFER_TOPIC: B256 = FixedBytes(alloy::hex!(
    "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
));

/// The detail the engine carries from [`outcome_of`] to the failure answer.
pub(super) const TRANSFER_EVENT_MISMATCH: &str = "transfer event mismatch";

/// Whether the receipt says the transaction did not revert.
pub(super) fn succeeded(receipt: &Value) -> bool {
    receipt.get("status").and_then(parse_u256) == Some(U256::from(1))
}

/// The outcome of `entry`'s transfer by its receipt: `Ok` when it did not revert and moved
/// what was authorized; a receipt without `logs` cannot be checked and is taken by status.
pub(super) fn outcome_of(receipt: &Value, entry: &Entry) -> Result<(), String> {
    if !succeeded(receipt) {
        return Err("reverted".into());
    }
    let (Some(terms), Some(logs)) = (
        cause::transfer_terms(&entry.raw_tx),
        receipt.get("logs").and_then(Value::as_array),
    ) else {
        return Ok(());
    };
    if logs.iter().any(|log| is_promised_transfer(log, &terms)) {
        Ok(())
    } else {
        Err(TRANSFER_EVENT_MISMATCH.into())
    }
}

fn word_of(text: Option<&Value>) -> Option<[u8; 32]> {
    let bytes = parse_hex_bytes(text?.as_str()?)?;
    bytes.try_into().ok()
}

/// One log: the asset's `Transfer(from, to, value)` with exactly the authorized terms.
fn is_promised_transfer(log: &Value, terms: &TransferTerms) -> bool {
    let emitter = log
        .get("address")
        .and_then(Value::as_str)
        .and_then(|a| Address::from_str(a).ok());
    let topics = log.get("topics").and_then(Value::as_array);
    let Some(topics) = topics.filter(|t| t.len() == 3) else {
        return false;
    };
    let address_word = |address: Address| {
        let mut word = [0u8; 32];
        word[12..].copy_from_slice(address.as_slice());
        word
    };
    emitter == Some(terms.asset)
        && word_of(topics.first()) == Some(TRANSFER_TOPIC.0)
        && word_of(topics.get(1)) == Some(address_word(terms.from))
        && word_of(topics.get(2)) == Some(address_word(terms.to))
        && word_of(log.get("data")) == Some(terms.value.to_be_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSET: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    const FROM: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

    fn terms(value: u64) -> TransferTerms {
        TransferTerms {
            asset: Address::from_str(ASSET).unwrap(),
            from: Address::from_str(FROM).unwrap(),
            to: Address::from_str(TO).unwrap(),
            value: U256::from(value),
            spend: cause::Spend::Eip3009(B256::ZERO),
        }
    }

    fn topic(address: &str) -> String {
        format!("0x{:0>64}", address.trim_start_matches("0x").to_lowercase())
    }

    /// A `Transfer` log as a node writes it.
    fn transfer_log(asset: &str, from: &str, to: &str, value: u64) -> Value {
        json!({
            "address": asset.to_lowercase(),
            "topics": [format!("0x{}", alloy::hex::encode(TRANSFER_TOPIC)), topic(from), topic(to)],
            "data": format!("0x{value:064x}"),
        })
    }

    #[test]
    fn only_the_promised_transfer_counts() {
        let promised = terms(1_000);
        assert!(is_promised_transfer(
            &transfer_log(ASSET, FROM, TO, 1_000),
            &promised
        ));
        let others = [
            transfer_log(ASSET, FROM, TO, 999),
            transfer_log(ASSET, FROM, FROM, 1_000),
            transfer_log(ASSET, TO, TO, 1_000),
            transfer_log(
                "0x0000000000000000000000000000000000000001",
                FROM,
                TO,
                1_000,
            ),
        ];
        for log in &others {
            assert!(!is_promised_transfer(log, &promised), "{log}");
        }
        let mut approval = transfer_log(ASSET, FROM, TO, 1_000);
        approval["topics"][0] = json!(topic(
            "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
        ));
        assert!(
            !is_promised_transfer(&approval, &promised),
            "an Approval is not a Transfer"
        );
        for broken in [
            json!({}),
            json!({"address": ASSET, "topics": "x"}),
            json!({"address": 5}),
        ] {
            assert!(!is_promised_transfer(&broken, &promised));
        }
        let mut long_data = transfer_log(ASSET, FROM, TO, 1_000);
        long_data["data"] = json!(format!("0x{:064x}{:064x}", 1_000, 0));
        assert!(!is_promised_transfer(&long_data, &promised));
    }
}
