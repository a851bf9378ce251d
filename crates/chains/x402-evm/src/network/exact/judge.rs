//! The one batch a check sends to the node and what its answers mean: the deployless
//! verify probe (balance, authorization state, transfer simulation), the contract wallet's
//! signature (EIP-1271, or ERC-6492 through an allowlisted factory), and for settle the gas,
//! fees, balance and nonce of the signer.

use super::check::Local;
use super::*;

/// The calls of one batch and where each answer sits.
pub(crate) struct Plan {
    pub(crate) calls: Vec<(&'static str, Value)>,
    /// The signature did not recover to `from`: the wallet's code and EIP-1271 answer.
    contract_check: bool,
    code_index: usize,
    /// An ERC-6492 factory in the allowlist: its deployless probe (and, for settle, the
    /// deployment's gas estimate right after it).
    allowed_deployment: Option<(Address, Bytes)>,
    probe_index: usize,
    settle_index: usize,
}

/// What the deployless verify probe read and simulated.
struct VerifyAnswer {
    balance: Option<U256>,
    used: Option<bool>,
    /// `Err` carries the revert text of the simulated transfer.
    transfer: Result<(), String>,
    /// The token's `name()` and `version()`, when they answered a string.
    name: Option<String>,
    version: Option<String>,
}

fn verify_answer(result: &CallResult) -> Option<VerifyAnswer> {
    let bytes = result_bytes(result)?;
    let (balance_read, balance, state_read, used, transfer_ok, revert, name, version) =
        <(bool, U256, bool, bool, bool, Bytes, Bytes, Bytes)>::abi_decode_params(&bytes).ok()?;
    let text = |answer: &Bytes| String::abi_decode(answer).ok();
    Some(VerifyAnswer {
        balance: balance_read.then_some(balance),
        used: state_read.then_some(used),
        transfer: if transfer_ok {
            Ok(())
        } else {
            Err(revert_text(&revert))
        },
        name: text(&name),
        version: text(&version),
    })
}

/// Why a simulated transfer reverts, when the token says so: the EIP-712 domain the payer
/// signed names another token name or version than the token's own (the reference's
/// diagnosis; read only after a failed simulation, since some tokens' domain name differs
/// from `name()`).
fn domain_mismatch(local: &Local, reads: &VerifyAnswer) -> Option<(Reason, String)> {
    let differs =
        |theirs: &Option<String>, ours: &str| theirs.as_deref().is_some_and(|t| t != ours);
    if differs(&reads.name, &local.domain_name) {
        let message = format!(
            "extra.name {:?} is not the token's name {:?}",
            local.domain_name,
            reads.name.as_deref().unwrap_or_default()
        );
        return Some((Reason::ExactEvmTokenNameMismatch, message));
    }
    if differs(&reads.version, &local.domain_version) {
        let message = format!(
            "extra.version {:?} is not the token's version {:?}",
            local.domain_version,
            reads.version.as_deref().unwrap_or_default()
        );
        return Some((Reason::ExactEvmTokenVersionMismatch, message));
    }
    None
}

/// What the deployless ERC-6492 probe found.
pub(crate) struct ProbeAnswer {
    deployed: bool,
    signature_valid: bool,
    transfer_ok: bool,
    transfer_gas: u64,
}

fn probe_answer(result: &CallResult) -> Option<ProbeAnswer> {
    let bytes = result_bytes(result)?;
    let (deployed, signature_valid, transfer_ok, gas) =
        <(bool, bool, bool, U256)>::abi_decode_params(&bytes).ok()?;
    Some(ProbeAnswer {
        deployed,
        signature_valid,
        transfer_ok,
        transfer_gas: u64::try_from(gas).ok()?,
    })
}

/// Intrinsic gas of a call transaction carrying `data` (base cost plus calldata).
fn intrinsic_gas(data: &[u8]) -> u64 {
    let zeros = data.iter().filter(|b| **b == 0).count() as u64;
    21_000 + zeros * 4 + (data.len() as u64 - zeros) * 16
}

impl EvmChain {
    /// The batch for `local`, with settle's reads when `for_settle` names the signer.
    pub(crate) fn plan(
        &self,
        local: &Local,
        for_settle: Option<Address>,
        read_nonce: bool,
    ) -> Plan {
        let auth = &local.auth;
        let simulate_from = for_settle.unwrap_or_else(|| self.signers[0].signer.address());
        let probe_args =
            (local.asset, auth.from, auth.nonce, local.calldata.clone()).abi_encode_params();
        let mut calls: Vec<(&'static str, Value)> = vec![(
            "eth_call",
            json!([{"from": simulate_from.to_string(), "data": deployless_call(VERIFY_PROBE, &probe_args)}, "latest"]),
        )];
        let contract_check = !local.eoa_valid;
        let code_index = calls.len();
        if contract_check {
            let is_valid = isValidSignatureCall {
                hash: local.digest,
                signature: local.inner_signature.clone().into(),
            };
            calls.push(("eth_getCode", json!([auth.from.to_string(), "latest"])));
            calls.push((
                "eth_call",
                json!([{"to": auth.from.to_string(), "data": hex(&is_valid.abi_encode())}, "latest"]),
            ));
        }
        // Factories outside the allowlist are never called, not even in simulation.
        let allowed_deployment = local
            .erc6492_factory
            .clone()
            .filter(|(factory, _)| self.erc6492_factories.contains(factory));
        let probe_index = calls.len();
        if let Some((factory, factory_calldata)) = &allowed_deployment {
            let args = (
                auth.from,
                *factory,
                factory_calldata.clone(),
                local.digest,
                Bytes::from(local.inner_signature.clone()),
                local.asset,
                local.calldata.clone(),
            )
                .abi_encode_params();
            let probe = deployless_call(ERC6492_PROBE, &args);
            calls.push(("eth_call", json!([{"data": probe}, "latest"])));
            if let Some(signer) = for_settle {
                calls.push((
                    "eth_estimateGas",
                    json!([{"from": signer.to_string(), "to": factory.to_string(), "data": hex(factory_calldata)}]),
                ));
            }
        }
        let settle_index = calls.len();
        if let Some(signer) = for_settle {
            push_settle_reads(&mut calls, signer, local.asset, &local.calldata, read_nonce);
        }
        Plan {
            calls,
            contract_check,
            code_index,
            allowed_deployment,
            probe_index,
            settle_index,
        }
    }

    /// The verify verdict of the batch's answers; `Some` probe for a counterfactual wallet.
    pub(crate) fn judge(
        &self,
        local: &Local,
        plan: &Plan,
        results: &[CallResult],
    ) -> Result<Option<ProbeAnswer>, Verdict> {
        let refuse = |reason: Reason, message: String| refusal(&local.payer, reason, message);
        // The asset must answer like an EIP-3009 token.
        let Some(reads) = verify_answer(&results[0]) else {
            return Err(refuse(
                Reason::RpcUnavailable,
                "node did not run the verification call".into(),
            ));
        };
        let (Some(balance), Some(used)) = (reads.balance, reads.used) else {
            return Err(refuse(
                Reason::ExactEvmEip3009NotSupported,
                format!(
                    "asset {} does not answer as an EIP-3009 token on {}",
                    local.asset, self.chain_id
                ),
            ));
        };
        let probe = self.judge_contract_signature(local, plan, results)?;
        if used {
            return Err(refuse(
                Reason::ExactEvmNonceAlreadyUsed,
                "authorization nonce already used on chain".into(),
            ));
        }
        if balance < local.auth.value {
            return Err(refuse(
                Reason::ExactEvmInsufficientBalance,
                format!("payer balance {balance} is below {}", local.auth.value),
            ));
        }
        match (&probe, &reads.transfer) {
            (Some(answer), _) if !answer.transfer_ok => Err(refuse(
                Reason::ExactEvmSimulationFailed,
                "simulated transfer from the counterfactual wallet reverts".into(),
            )),
            (None, Err(why)) => {
                let (reason, message) = domain_mismatch(local, &reads).unwrap_or((
                    Reason::ExactEvmSimulationFailed,
                    format!("simulated transfer reverts: {why}"),
                ));
                Err(refuse(reason, message))
            }
            _ => Ok(probe),
        }
    }

    /// A signature that did not recover to `from`: the deployed wallet's EIP-1271 answer,
    /// or the ERC-6492 probe of a wallet not deployed yet.
    fn judge_contract_signature(
        &self,
        local: &Local,
        plan: &Plan,
        results: &[CallResult],
    ) -> Result<Option<ProbeAnswer>, Verdict> {
        if !plan.contract_check {
            return Ok(None);
        }
        let refuse = |reason: Reason, message: String| refusal(&local.payer, reason, message);
        if let Err(error) = &results[plan.code_index] {
            return Err(refuse(
                Reason::RpcUnavailable,
                node_trouble("eth_getCode", error),
            ));
        }
        let code = result_bytes(&results[plan.code_index]).unwrap_or_default();
        if code.is_empty() {
            if plan.allowed_deployment.is_none() {
                if local.erc6492_factory.is_some() {
                    return Err(refuse(
                        Reason::Eip6492FactoryNotAllowed,
                        "payer wallet is not deployed and its ERC-6492 factory is not in the facilitator's allowlist".into(),
                    ));
                }
                return Err(refuse(
                    Reason::ExactEvmSignature,
                    "signature does not recover to authorization.from".into(),
                ));
            }
            let answer = probe_answer(&results[plan.probe_index]).ok_or_else(|| {
                refuse(
                    Reason::RpcUnavailable,
                    "node did not run the ERC-6492 probe".into(),
                )
            })?;
            if !answer.deployed {
                return Err(refuse(
                    Reason::ExactEvmUndeployedSmartWallet,
                    "the ERC-6492 factory call does not deploy the payer wallet".into(),
                ));
            }
            if !answer.signature_valid {
                return Err(refuse(
                    Reason::ExactEvmSignature,
                    "counterfactual wallet rejects the signature (ERC-6492)".into(),
                ));
            }
            // The wallet exists only inside the probe: its answers replace the EIP-1271
            // call and the plain transfer simulation, which both see an empty account.
            return Ok(Some(answer));
        }
        let eip1271 = &results[plan.code_index + 1];
        if let Err(error) = eip1271 {
            if !is_execution_error(error) {
                return Err(refuse(
                    Reason::RpcUnavailable,
                    node_trouble("the EIP-1271 check", error),
                ));
            }
        }
        let magic = result_bytes(eip1271)
            .filter(|b| b.len() >= 4)
            .map(|b| b[..4] == ERC1271_MAGIC);
        if magic != Some(true) {
            return Err(refuse(
                Reason::ExactEvmSignature,
                "contract wallet rejected the signature (EIP-1271)".into(),
            ));
        }
        Ok(None)
    }

    /// Gas, fees, balance and nonce of the signer, and the wallet deployment to send first.
    pub(crate) fn settle_data(
        &self,
        local: &Local,
        plan: &Plan,
        results: &[CallResult],
        probe: Option<&ProbeAnswer>,
        read_nonce: bool,
    ) -> Result<SettleData, Verdict> {
        let estimate = match probe {
            // The node cannot estimate a transfer from a wallet that does not exist yet;
            // the probe measured it after deploying.
            Some(answer) => Some(answer.transfer_gas + intrinsic_gas(&local.calldata)),
            None => estimate_of(&results[plan.settle_index], &local.payer)?,
        };
        let deployment = match (probe, &plan.allowed_deployment) {
            (Some(_), Some(deployment)) => Some(self.deployment(local, plan, results, deployment)?),
            _ => None,
        };
        settle_reads(
            &local.payer,
            &results[plan.settle_index..],
            estimate,
            read_nonce,
            deployment,
        )
    }

    /// The allowlisted factory's deployment and its gas estimate.
    fn deployment(
        &self,
        local: &Local,
        plan: &Plan,
        results: &[CallResult],
        (factory, calldata): &(Address, Bytes),
    ) -> Result<Deployment, Verdict> {
        let refuse = |reason: Reason, message: String| refusal(&local.payer, reason, message);
        let gas = match &results[plan.probe_index + 1] {
            Ok(v) => gas_of(v),
            Err(error) if !is_execution_error(error) => {
                return Err(refuse(
                    Reason::RpcUnavailable,
                    node_trouble("the deployment gas estimate", error),
                ))
            }
            Err(error) => {
                return Err(refuse(
                    Reason::ExactEvmUndeployedSmartWallet,
                    format!(
                        "wallet deployment cannot be estimated: {}",
                        revert_reason(error)
                    ),
                ))
            }
        };
        let Some(gas_estimate) = gas else {
            return Err(refuse(
                Reason::RpcUnavailable,
                "node did not answer the deployment gas estimate".into(),
            ));
        };
        Ok(Deployment {
            factory: *factory,
            calldata: calldata.clone(),
            gas_estimate,
        })
    }
}
