//! The `erc20ApprovalGasSponsoring` extension: a payer whose token has no EIP-2612 signs a
//! plain `approve(Permit2, amount)` transaction without sending it; the facilitator sends it
//! (first funding the payer's gas when they hold too little, up to a configured ceiling) and
//! settles once it has landed. Checked here without a node, in the reference's order and
//! codes, plus what a relay needs to be safe: the transaction is for this chain, moves no
//! native value, is of a type that cannot change the payer's account code, and approves at
//! least what the payment moves. The node's part (nonce, fee, funding, the simulation of
//! approval and settlement together) is [`EvmChain::judge_approval`].

use alloy::consensus::transaction::SignerRecoverable;
use alloy::consensus::Transaction;
use alloy::eips::eip2718::Decodable2718;

use super::*;

/// The extension's key in a v2 payment's `extensions`.
pub(crate) const EXTENSION_KEY: &str = "erc20ApprovalGasSponsoring";

sol! {
    function approve(address spender, uint256 amount) external returns (bool);
}

/// The extension's `info`, its fields read.
#[derive(Debug, Clone)]
pub(crate) struct Erc20ApprovalInfo {
    from: Address,
    asset: Address,
    spender: Address,
    amount: U256,
    signed_transaction: Vec<u8>,
}

/// A signed approval that may be relayed for a payment.
#[derive(Debug, Clone)]
pub(crate) struct SignedApproval {
    /// The payer's signed bytes, hex, exactly as they are broadcast.
    pub(crate) raw_hex: String,
    pub(crate) hash: B256,
    pub(crate) nonce: u64,
    /// What the approval may cost its sender at most: gas limit times fee cap.
    pub(crate) max_cost: U256,
    pub(crate) max_fee_per_gas: u128,
    pub(crate) gas_limit: u64,
    pub(crate) calldata: Bytes,
}

/// The extension's `info` when the payment carries the extension; `Err` says what is
/// malformed (every field the reference's schema requires, in its formats).
pub(crate) fn extension_of(payment: &Payment) -> Option<Result<Erc20ApprovalInfo, String>> {
    ExtensionInfo::of(payment, EXTENSION_KEY).map(|info| read_info(&info))
}

fn read_info(info: &ExtensionInfo<'_>) -> Result<Erc20ApprovalInfo, String> {
    let address = |key: &str| {
        info.text(key).and_then(|s| {
            let well_formed = s.len() == 42 && s.starts_with("0x");
            well_formed
                .then(|| Address::from_str(s).ok())
                .flatten()
                .ok_or_else(|| format!("info.{key} is not an address"))
        })
    };
    let amount = info.decimal("amount")?;
    info.version()?;
    let signed_transaction = info
        .hex_bytes("signedTransaction")
        .and_then(|bytes| match bytes {
            empty if empty.is_empty() => Err("info.signedTransaction is not hex".to_owned()),
            bytes => Ok(bytes),
        })?;
    Ok(Erc20ApprovalInfo {
        from: address("from")?,
        asset: address("asset")?,
        spender: address("spender")?,
        amount,
        signed_transaction,
    })
}

impl Erc20ApprovalInfo {
    /// The signed transaction, when it is one of the types relayed (legacy, EIP-2930,
    /// EIP-1559: none can carry blobs or change the payer's account code).
    pub(crate) fn decode(&self) -> Option<TxEnvelope> {
        TxEnvelope::decode_2718(&mut self.signed_transaction.as_slice())
            .ok()
            .filter(|tx| tx.is_legacy() || tx.is_eip2930() || tx.is_eip1559())
    }
}

impl EvmChain {
    /// The approval when it may be relayed for `permit`, else the reference's reason.
    pub(crate) fn erc20_approval_checks(
        &self,
        extension: &Result<Erc20ApprovalInfo, String>,
        permit: &Permit2Payment,
        payer: &str,
    ) -> Result<SignedApproval, Verdict> {
        let refuse = |reason: Reason, message: String| refusal(payer, reason, message);
        let info = extension
            .as_ref()
            .map_err(|why| refuse(Reason::Erc20ApprovalInvalidFormat, why.clone()))?;
        if info.from != permit.from {
            let message = format!("info.from {} is not the payer", info.from);
            return Err(refuse(Reason::Erc20ApprovalFromMismatch, message));
        }
        if info.asset != permit.token {
            let message = format!("info.asset {} is not the permitted token", info.asset);
            return Err(refuse(Reason::Erc20ApprovalAssetMismatch, message));
        }
        if info.spender != PERMIT2 {
            let message = format!("info.spender is not Permit2 {PERMIT2}");
            return Err(refuse(Reason::Erc20ApprovalSpenderNotPermit2, message));
        }
        let envelope = info.decode().ok_or_else(|| {
            refuse(
                Reason::Erc20ApprovalTxParseFailed,
                "info.signedTransaction is not a signed legacy, EIP-2930 or EIP-1559 transaction"
                    .into(),
            )
        })?;
        let approved = self.approve_call_checks(&envelope, info, permit, payer)?;
        let signer = envelope.recover_signer().map_err(|_| {
            refuse(
                Reason::Erc20ApprovalTxInvalidSignature,
                "no signer can be recovered from the signed transaction".into(),
            )
        })?;
        if signer != permit.from {
            let message = format!("the transaction is signed by {signer}, not the payer");
            return Err(refuse(Reason::Erc20ApprovalTxSignerMismatch, message));
        }
        if envelope.chain_id() != Some(self.numeric_chain_id) {
            let message = format!(
                "the transaction is signed for chain {:?}, not {}",
                envelope.chain_id(),
                self.numeric_chain_id
            );
            return Err(refuse(Reason::Erc20ApprovalTxInvalidSignature, message));
        }
        let max_fee_per_gas = envelope.max_fee_per_gas();
        let max_cost = U256::from(envelope.gas_limit())
            .checked_mul(U256::from(max_fee_per_gas))
            .unwrap_or(U256::MAX);
        Ok(SignedApproval {
            raw_hex: hex(&info.signed_transaction),
            hash: *envelope.tx_hash(),
            nonce: envelope.nonce(),
            max_cost,
            max_fee_per_gas,
            gas_limit: envelope.gas_limit(),
            calldata: approved,
        })
    }

    /// The transaction calls `approve(Permit2, amount)` on the token, moves no native
    /// value, and approves what the extension says and at least what the payment moves.
    fn approve_call_checks(
        &self,
        envelope: &TxEnvelope,
        info: &Erc20ApprovalInfo,
        permit: &Permit2Payment,
        payer: &str,
    ) -> Result<Bytes, Verdict> {
        let refuse = |reason: Reason, message: String| refusal(payer, reason, message);
        if envelope.to() != Some(permit.token) {
            let message = format!(
                "the transaction calls {:?}, not the token {}",
                envelope.to(),
                permit.token
            );
            return Err(refuse(Reason::Erc20ApprovalTxWrongTarget, message));
        }
        let input = envelope.input();
        if input.len() < 4 || input[..4] != approveCall::SELECTOR {
            return Err(refuse(
                Reason::Erc20ApprovalTxWrongSelector,
                "the transaction's calldata is not approve(address,uint256)".into(),
            ));
        }
        let call = approveCall::abi_decode(input).map_err(|_| {
            refuse(
                Reason::Erc20ApprovalTxInvalidCalldata,
                "the approve() arguments do not decode".into(),
            )
        })?;
        if call.spender != PERMIT2 {
            let message = format!("approve() names spender {}, not Permit2", call.spender);
            return Err(refuse(Reason::Erc20ApprovalTxWrongSpender, message));
        }
        if call.amount != info.amount || call.amount < permit.amount || !envelope.value().is_zero()
        {
            let message = format!(
                "approve() of {} with value {}: it must approve info.amount {} (at least the permitted {}) and send no native value",
                call.amount,
                envelope.value(),
                info.amount,
                permit.amount
            );
            return Err(refuse(Reason::Erc20ApprovalTxInvalidCalldata, message));
        }
        Ok(input.clone())
    }
}
