//! The node's part of a Permit2 check, in one batch: a deployless probe reads the payer's
//! balance and allowance to Permit2, the permit nonce's bit, the proxy's code and a contract
//! wallet's EIP-1271 answer, and simulates the `exact` proxy call (the `upto` proxy takes
//! calls from the witness's facilitator only, so its simulation is an `eth_call` from that
//! signer beside the probe); for settle the same batch carries the gas estimate, fees, the
//! signer's balance and nonce.

use super::*;

/// What the probe read and simulated.
struct Permit2Answer {
    balance: Option<U256>,
    allowance: Option<U256>,
    nonce_used: bool,
    proxy_deployed: bool,
    payer_has_code: bool,
    wallet_accepts: bool,
    /// `Err` carries the revert data of the simulated proxy call.
    settle: Result<(), Bytes>,
}

fn permit2_answer(result: &CallResult) -> Option<Permit2Answer> {
    let bytes = result_bytes(result)?;
    type Fields = (bool, U256, bool, U256, bool, bool, bool, bool, bool, Bytes);
    let (
        balance_read,
        balance,
        allowance_read,
        allowance,
        nonce_used,
        proxy,
        code,
        accepts,
        ok,
        revert,
    ) = Fields::abi_decode_params(&bytes).ok()?;
    Some(Permit2Answer {
        balance: balance_read.then_some(balance),
        allowance: allowance_read.then_some(allowance),
        nonce_used,
        proxy_deployed: proxy,
        payer_has_code: code,
        wallet_accepts: accepts,
        settle: if ok { Ok(()) } else { Err(revert) },
    })
}

/// The reference's reason for a revert of the proxy call, by the custom error it carries
/// (the proxy's own, or Permit2's).
pub(super) fn revert_reason_of(data: &[u8]) -> (Reason, String) {
    const ERRORS: &[(&str, Reason)] = &[
        ("InvalidAmount()", Reason::Permit2InvalidAmount),
        ("InvalidDestination()", Reason::Permit2InvalidDestination),
        ("InvalidOwner()", Reason::Permit2InvalidOwner),
        ("PaymentTooEarly()", Reason::Permit2PaymentTooEarly),
        (
            "Permit2612AmountMismatch()",
            Reason::Permit2Eip2612AmountMismatch,
        ),
        ("InvalidNonce()", Reason::Permit2InvalidNonce),
        ("InvalidSignature()", Reason::Permit2InvalidSignature),
        ("InvalidSigner()", Reason::Permit2InvalidSignature),
        (
            "InvalidContractSignature()",
            Reason::Permit2InvalidSignature,
        ),
        ("InvalidSignatureLength()", Reason::Permit2InvalidSignature),
        ("SignatureExpired(uint256)", Reason::Permit2InvalidSignature),
        (
            "AmountExceedsPermitted()",
            Reason::UptoAmountExceedsPermitted,
        ),
        (
            "UnauthorizedFacilitator()",
            Reason::UptoUnauthorizedFacilitator,
        ),
    ];
    if data.len() >= 4 {
        for (signature, reason) in ERRORS {
            if alloy::primitives::keccak256(signature.as_bytes())[..4] == data[..4] {
                return (*reason, format!("the proxy call reverts with {signature}"));
            }
        }
    }
    (
        Reason::Permit2SimulationFailed,
        format!("the simulated proxy call reverts: {}", revert_text(data)),
    )
}

impl EvmChain {
    /// Local checks, then one batch to the node; `for_settle` names the signer that will
    /// send the settlement (the batch then also reads gas, fees and its balance).
    pub(crate) async fn check_permit2(
        &self,
        payment: &Payment,
        (permit, scheme): (Permit2Payment, Permit2Scheme),
        for_settle: Option<Address>,
        read_nonce: bool,
    ) -> Result<Checked, Verdict> {
        let local = self.permit2_local_checks(payment, permit, (scheme, for_settle.is_some()))?;
        let p = &local.permit;
        let proxy = scheme.proxy();
        // The upto proxy answers only the witness's facilitator: simulated from it instead.
        let direct = scheme == Permit2Scheme::Upto;
        let simulate_from = match (direct, p.facilitator, for_settle) {
            (true, Some(facilitator), _) => facilitator,
            (_, _, Some(signer)) => signer,
            _ => self.signers[0].signer.address(),
        };
        let probed_call = if direct {
            Bytes::new()
        } else {
            local.calldata.clone()
        };
        let args = (
            p.token,
            p.from,
            proxy,
            p.nonce,
            local.digest,
            Bytes::from(local.inner_signature.clone()),
            probed_call,
        )
            .abi_encode_params();
        let mut calls: Vec<(&'static str, Value)> = vec![
            (
                "eth_call",
                json!([{"from": simulate_from.to_string(), "data": deployless_call(PERMIT2_PROBE, &args)}, "latest"]),
            ),
            // The asset must be a contract (the reference's first check of the asset).
            ("eth_getCode", json!([p.token.to_string(), "latest"])),
        ];
        if direct {
            calls.push((
                "eth_call",
                json!([{"from": simulate_from.to_string(), "to": proxy.to_string(), "data": hex(&local.calldata)}, "latest"]),
            ));
        }
        let approval_index = calls.len();
        if let Some(approval) = &local.approval {
            relay::push_approval_reads(&mut calls, &local, approval, simulate_from);
        }
        let settle_index = calls.len();
        if let Some(signer) = for_settle {
            push_settle_reads(&mut calls, signer, proxy, &local.calldata, read_nonce);
        }
        let results = self.check_batch(&calls, &local.payer).await?;
        self.judge_asset(&local, &results[1])?;
        let simulated = direct.then(|| &results[2]);
        let needs_approval = self.judge_permit2(&local, &results[0], simulated)?;
        let approval = match (&local.approval, needs_approval) {
            (Some(approval), true) => {
                let reads = &results[approval_index..settle_index];
                Some(self.judge_approval(&local, approval, reads)?)
            }
            _ => None,
        };
        let settle_data = match for_settle {
            // Settled only once the approval has landed, checked again then.
            _ if approval.is_some() => None,
            Some(_) => {
                let reads = &results[settle_index..];
                let estimate = estimate_of(&reads[0], &local.payer)?;
                Some(settle_reads(
                    &local.payer,
                    reads,
                    estimate,
                    read_nonce,
                    None,
                )?)
            }
            None => None,
        };
        Ok(Checked {
            payer: p.from,
            target: proxy,
            value: local.amount,
            calldata: local.calldata,
            valid_before: p.deadline,
            settle_data,
            approval,
        })
    }

    /// An asset without code cannot pay (`asset_not_deployed_contract`, as the reference).
    fn judge_asset(&self, local: &Permit2Local, code: &CallResult) -> Result<(), Verdict> {
        match code {
            Ok(Value::String(code)) if code.trim_start_matches("0x").is_empty() => Err(refusal(
                &local.payer,
                Reason::AssetNotDeployedContract,
                format!(
                    "asset {} has no code on {}",
                    local.permit.token, self.chain_id
                ),
            )),
            Ok(_) => Ok(()),
            Err(error) => Err(refusal(
                &local.payer,
                Reason::RpcUnavailable,
                node_trouble("eth_getCode", error),
            )),
        }
    }

    /// The verdict of the probe's answer, most specific reason first; `Ok(true)` when the
    /// payment can pay only after its relayed ERC-20 approval (judged apart).
    fn judge_permit2(
        &self,
        local: &Permit2Local,
        result: &CallResult,
        simulated: Option<&CallResult>,
    ) -> Result<bool, Verdict> {
        let refuse = |reason: Reason, message: String| refusal(&local.payer, reason, message);
        let Some(answer) = permit2_answer(result) else {
            let message = match result {
                Err(error) => node_trouble("the Permit2 verification call", error),
                Ok(_) => "node did not run the Permit2 verification call".into(),
            };
            return Err(refuse(Reason::RpcUnavailable, message));
        };
        let amount = local.amount;
        if !answer.proxy_deployed {
            return Err(refuse(
                Reason::Permit2ProxyNotDeployed,
                format!(
                    "the x402 Permit2 proxy {} has no code on {}",
                    local.scheme.proxy(),
                    self.chain_id
                ),
            ));
        }
        // Permit2's own rule: ecrecover for an account without code, EIP-1271 otherwise.
        let signed = if answer.payer_has_code {
            answer.wallet_accepts
        } else {
            local.eoa_valid
        };
        if !signed {
            return Err(refuse(
                Reason::Permit2InvalidSignature,
                "the signature is not the payer's over this permit".into(),
            ));
        }
        if answer.nonce_used {
            return Err(refuse(
                Reason::Permit2InvalidNonce,
                "the permit's nonce is already spent in Permit2".into(),
            ));
        }
        let Some(balance) = answer.balance else {
            return Err(refuse(
                Reason::Permit2SimulationFailed,
                format!("asset {} does not answer balanceOf", local.permit.token),
            ));
        };
        if balance < amount {
            return Err(refuse(
                Reason::Permit2InsufficientBalance,
                format!("payer balance {balance} is below {amount}"),
            ));
        }
        let approved = answer.allowance.is_some_and(|a| a >= amount);
        if !approved && local.approval.is_some() {
            // The probe's simulation runs without the approval: the relay's own decides.
            return Ok(true);
        }
        if !approved && local.permit.eip2612.is_none() {
            return Err(refuse(
                Reason::Permit2AllowanceRequired,
                "the payer has not approved Permit2 for this amount and sent no EIP-2612 permit"
                    .into(),
            ));
        }
        let settle = match simulated {
            None => answer.settle,
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) if is_execution_error(error) => Err(error
                .data
                .as_deref()
                .and_then(parse_hex_bytes)
                .unwrap_or_default()
                .into()),
            Some(Err(error)) => {
                return Err(refuse(
                    Reason::RpcUnavailable,
                    node_trouble("the upto proxy simulation", error),
                ))
            }
        };
        if let Err(data) = &settle {
            let (reason, message) = revert_reason_of(data);
            return Err(refuse(reason, message));
        }
        Ok(false)
    }
}
