//! What every EVM scheme and transfer method shares between its checks and its
//! settlement: the payload by what the payer signed ([`EvmPayload`]) and the one dispatch
//! of its check, the scheme's first checks of the requirements, what a check hands to
//! recording ([`Checked`], [`SettleData`]) and the settle reads a check's batch carries.

use super::*;

/// A payload of an EVM scheme, by what the payer signed.
pub(crate) enum EvmPayload {
    /// `exact` with EIP-3009: the authorization and its signature.
    Eip3009(Authorization, Vec<u8>),
    /// A Permit2 permit for the scheme's proxy (boxed: it is several times larger).
    Permit2(Box<permit2::Permit2Payment>, permit2::Permit2Scheme),
}

impl EvmPayload {
    /// Who pays.
    pub(crate) fn payer(&self) -> Address {
        match self {
            EvmPayload::Eip3009(auth, _) => auth.from,
            EvmPayload::Permit2(permit, _) => permit.from,
        }
    }
}

/// Everything verify established, reused by settle.
pub(crate) struct Checked {
    pub(crate) payer: Address,
    /// The contract the settling call goes to (the asset for EIP-3009, the proxy for Permit2).
    pub(crate) target: Address,
    /// The value the authorization moves (v1 lets it exceed the requirement).
    pub(crate) value: U256,
    pub(crate) calldata: Bytes,
    pub(crate) valid_before: U256,
    pub(crate) settle_data: Option<SettleData>,
    /// A Permit2 payment's ERC-20 approval to relay before it can settle.
    pub(crate) approval: Option<permit2::ApprovalRelay>,
}

/// What settle needs beyond verify: gas, fees, the signer's balance and nonce.
pub(crate) struct SettleData {
    pub(crate) gas_estimate: u64,
    pub(crate) gas_price: u128,
    pub(crate) priority_fee: u128,
    pub(crate) signer_balance: U256,
    /// The signer's pending nonce, when read with the batch.
    pub(crate) chain_nonce: Option<u64>,
    /// An ERC-6492 wallet to deploy (through an allowlisted factory) before the transfer.
    pub(crate) deployment: Option<Deployment>,
}

/// The factory call that deploys a counterfactual wallet, sent just before the transfer.
pub(crate) struct Deployment {
    pub(crate) factory: Address,
    pub(crate) calldata: Bytes,
    pub(crate) gas_estimate: u64,
}

/// Settle's reads, appended to a check's batch: the gas estimate of the settling call
/// (`target`, `calldata`) from `signer`, gas price, tip, the signer's balance and, when
/// `read_nonce`, its pending nonce.
pub(crate) fn push_settle_reads(
    calls: &mut Vec<(&'static str, Value)>,
    signer: Address,
    target: Address,
    calldata: &Bytes,
    read_nonce: bool,
) {
    let signer = signer.to_string();
    calls.push((
        "eth_estimateGas",
        json!([{"from": signer, "to": target.to_string(), "data": hex(calldata)}]),
    ));
    calls.push(("eth_gasPrice", json!([])));
    calls.push(("eth_maxPriorityFeePerGas", json!([])));
    calls.push(("eth_getBalance", json!([signer, "pending"])));
    if read_nonce {
        calls.push(("eth_getTransactionCount", json!([signer, "pending"])));
    }
}

/// The gas estimate's answer: a revert is the payment's (simulation failed), any other
/// error the node's trouble.
pub(crate) fn estimate_of(result: &CallResult, payer: &str) -> Result<Option<u64>, Verdict> {
    match result {
        Ok(v) => Ok(gas_of(v)),
        Err(error) if is_execution_error(error) => Err(refusal(
            payer,
            Reason::ExactEvmSimulationFailed,
            format!("gas estimation reverts: {}", revert_reason(error)),
        )),
        // A rate limit, an internal error, a missing header: the node's trouble.
        Err(error) => Err(refusal(
            payer,
            Reason::RpcUnavailable,
            node_trouble("eth_estimateGas", error),
        )),
    }
}

/// A gas estimate's answer as a number.
pub(crate) fn gas_of(value: &Value) -> Option<u64> {
    parse_u256(value).and_then(|u| u64::try_from(u).ok())
}

/// The answers of [`push_settle_reads`] (`results` starts at the estimate) with the
/// settlement's gas `estimate`.
pub(crate) fn settle_reads(
    payer: &str,
    results: &[CallResult],
    estimate: Option<u64>,
    read_nonce: bool,
    deployment: Option<Deployment>,
) -> Result<SettleData, Verdict> {
    let at = |offset: usize| results.get(offset);
    let gas_price = at(1).and_then(result_u128);
    let priority_fee = at(2).and_then(result_u128).unwrap_or(0);
    let signer_balance = at(3).and_then(|r| r.as_ref().ok()).and_then(parse_u256);
    let chain_nonce = at(4)
        .filter(|_| read_nonce)
        .and_then(|r| r.as_ref().ok())
        .and_then(gas_of);
    let (Some(gas_estimate), Some(gas_price), Some(signer_balance)) =
        (estimate, gas_price, signer_balance)
    else {
        return Err(refusal(
            payer,
            Reason::RpcUnavailable,
            "node did not answer gas and fee queries",
        ));
    };
    Ok(SettleData {
        gas_estimate,
        gas_price,
        priority_fee,
        signer_balance,
        chain_nonce,
        deployment,
    })
}

impl EvmChain {
    /// The scheme and network the payload names (refused with the scheme's reasons), then
    /// the asset (served here) and `payTo` of the requirements: what every EVM scheme and
    /// transfer method checks first.
    pub(crate) fn requirement_addresses(
        &self,
        payment: &Payment,
        payer: &str,
        (scheme, scheme_reason, network_reason): (&str, Reason, Reason),
    ) -> Result<(Address, Address), Verdict> {
        let refuse = |reason: Reason, message: String| refusal(payer, reason, message);
        if payment.scheme != scheme || payment.payload_scheme != scheme {
            return Err(refuse(
                scheme_reason,
                format!("scheme {:?} is not {scheme}", payment.payload_scheme),
            ));
        }
        if payment.payload_network.as_ref() != Some(&self.chain_id) {
            return Err(refuse(
                network_reason,
                format!("payload is for another network than {}", self.chain_id),
            ));
        }
        let asset = Address::from_str(&payment.requirements.asset).map_err(|_| {
            refuse(
                Reason::InvalidPaymentRequirements,
                "asset is not an EVM address".into(),
            )
        })?;
        if !self.assets.is_empty() && !self.assets.contains(&asset) {
            return Err(refuse(
                Reason::InvalidPaymentRequirements,
                format!("asset {asset} is not served on {}", self.chain_id),
            ));
        }
        let pay_to = Address::from_str(&payment.requirements.pay_to).map_err(|_| {
            refuse(
                Reason::InvalidPaymentRequirements,
                "payTo is not an EVM address".into(),
            )
        })?;
        Ok((asset, pay_to))
    }

    /// A check's batch, answered whole: the node that cannot answer it is our trouble,
    /// never the payer's.
    pub(crate) async fn check_batch(
        &self,
        calls: &[(&'static str, Value)],
        payer: &str,
    ) -> Result<Vec<CallResult>, Verdict> {
        let results = self
            .rpc
            .batch(calls)
            .await
            .map_err(|e| rpc_refusal(&self.chain_id, e, Some(payer.to_owned())))?;
        if results.len() != calls.len() {
            return Err(refusal(
                payer,
                Reason::RpcUnavailable,
                "node answered a batch partially",
            ));
        }
        Ok(results)
    }

    /// [`Self::check`] of a payload already read, by its transfer method.
    pub(crate) async fn check_parsed(
        &self,
        payment: &Payment,
        parsed: EvmPayload,
        for_settle: Option<Address>,
        read_nonce: bool,
    ) -> Result<Checked, Verdict> {
        match parsed {
            EvmPayload::Eip3009(auth, signature) => {
                self.check_eip3009(payment, (auth, signature), for_settle, read_nonce)
                    .await
            }
            EvmPayload::Permit2(permit, scheme) => {
                self.check_permit2(payment, (*permit, scheme), for_settle, read_nonce)
                    .await
            }
        }
    }
}
