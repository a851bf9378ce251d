//! The checks of one payment: everything that needs no node first (scheme, network,
//! domain, asset, recipient, validity window, amount, the signature of an EOA), then one
//! batch to the node ([`super::judge`]).

use super::*;

/// What the checks without the node established.
pub(crate) struct Local {
    pub(crate) auth: Authorization,
    pub(crate) payer: String,
    pub(crate) asset: Address,
    /// The EIP-712 digest the payer signed.
    pub(crate) digest: B256,
    /// The signature without its ERC-6492 wrapping.
    pub(crate) inner_signature: Vec<u8>,
    /// The ERC-6492 factory and its calldata, when the signature is wrapped.
    pub(crate) erc6492_factory: Option<(Address, Bytes)>,
    /// Whether the signature recovers to `from` (then no contract check is needed).
    pub(crate) eoa_valid: bool,
    /// The `transferWithAuthorization` call that settles the payment.
    pub(crate) calldata: Bytes,
    /// The EIP-712 domain's name and version (`extra.name`, `extra.version`).
    pub(crate) domain_name: String,
    pub(crate) domain_version: String,
}

/// How the signed value must relate to the required amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AmountRule {
    /// v2: value must equal `amount`.
    Exact,
    /// v1: value must be at least `maxAmountRequired` (v1 specification).
    AtLeast,
}

/// How the `exact` scheme compares the authorized value with the required amount: v1's
/// `maxAmountRequired` is a ceiling the payer may meet or exceed, v2's `amount` is exact.
fn amount_rule(version: X402Version) -> AmountRule {
    match version {
        X402Version::V1 => AmountRule::AtLeast,
        X402Version::V2 => AmountRule::Exact,
    }
}

impl EvmChain {
    /// Local checks and then one batch to the node. `for_settle` names the signer that
    /// will send the settlement (the batch then also reads gas, fees and its balance).
    pub(crate) async fn check(
        &self,
        payment: &Payment,
        for_settle: Option<Address>,
        read_nonce: bool,
    ) -> Result<Checked, Verdict> {
        let parsed = parse_exact(payment)?;
        self.check_parsed(payment, parsed, for_settle, read_nonce)
            .await
    }

    /// The EIP-3009 checks of a payload already read.
    pub(crate) async fn check_eip3009(
        &self,
        payment: &Payment,
        (auth, signature): (Authorization, Vec<u8>),
        for_settle: Option<Address>,
        read_nonce: bool,
    ) -> Result<Checked, Verdict> {
        let local = self.local_checks(payment, auth, signature)?;
        let plan = self.plan(&local, for_settle, read_nonce);
        let results = self.check_batch(&plan.calls, &local.payer).await?;
        let probe = self.judge(&local, &plan, &results)?;
        let settle_data = match for_settle {
            Some(_) => {
                Some(self.settle_data(&local, &plan, &results, probe.as_ref(), read_nonce)?)
            }
            None => None,
        };
        Ok(Checked {
            payer: local.auth.from,
            target: local.asset,
            value: local.auth.value,
            calldata: local.calldata,
            valid_before: local.auth.valid_before,
            settle_data,
            approval: None,
        })
    }

    /// Every check that needs no node.
    fn local_checks(
        &self,
        payment: &Payment,
        auth: Authorization,
        signature: Vec<u8>,
    ) -> Result<Local, Verdict> {
        let payer = auth.from.to_checksum(None);
        let refuse = |reason: Reason, message: String| refusal(&payer, reason, message);
        let names = (
            "exact",
            Reason::ExactEvmScheme,
            Reason::ExactEvmNetworkMismatch,
        );
        let (asset, pay_to) = self.requirement_addresses(payment, &payer, names)?;
        let extra = payment.requirements.extra.as_ref();
        let name = extra.and_then(|e| e.get("name")).and_then(Value::as_str);
        let version = extra.and_then(|e| e.get("version")).and_then(Value::as_str);
        let (Some(name), Some(version)) = (name, version) else {
            return Err(refuse(
                Reason::ExactEvmMissingEip712Domain,
                "requirements extra.name and extra.version are required".into(),
            ));
        };
        if auth.to != pay_to {
            return Err(refuse(
                Reason::ExactEvmRecipientMismatch,
                format!("authorization.to is not payTo {pay_to}"),
            ));
        }
        check_terms(payment, &auth, &payer)?;
        let domain = eip712_domain! {
            name: name.to_owned(),
            version: version.to_owned(),
            chain_id: self.numeric_chain_id,
            verifying_contract: asset,
        };
        self.signed_call(auth, payer, asset, domain, signature)
    }

    /// The signature: EOA recovery here; anything else (EIP-1271, ERC-6492 unwrapped) is
    /// left to the node. Builds the call that settles the payment.
    fn signed_call(
        &self,
        auth: Authorization,
        payer: String,
        asset: Address,
        domain: alloy::sol_types::Eip712Domain,
        signature: Vec<u8>,
    ) -> Result<Local, Verdict> {
        let message = TransferWithAuthorization {
            from: auth.from,
            to: auth.to,
            value: auth.value,
            validAfter: auth.valid_after,
            validBefore: auth.valid_before,
            nonce: auth.nonce,
        };
        let digest = message.eip712_signing_hash(&domain);
        let (erc6492_factory, inner_signature) = match erc6492_parts(&signature) {
            Ok(Some((factory, factory_calldata, inner))) => {
                (Some((factory, factory_calldata)), inner)
            }
            Ok(None) => (None, signature),
            Err(refused) => {
                return Err(Verdict {
                    payer: Some(payer),
                    ..refused
                })
            }
        };
        let eoa_valid = recover_signer(&digest, &inner_signature) == Some(auth.from);
        let calldata = transfer_calldata(&auth, &inner_signature, erc6492_factory.is_none());
        Ok(Local {
            auth,
            payer,
            asset,
            digest,
            inner_signature,
            erc6492_factory,
            eoa_valid,
            calldata,
            domain_name: domain.name.as_deref().unwrap_or_default().to_owned(),
            domain_version: domain.version.as_deref().unwrap_or_default().to_owned(),
        })
    }
}

/// The validity window and the amount.
fn check_terms(payment: &Payment, auth: &Authorization, payer: &str) -> Result<(), Verdict> {
    let refuse = |reason: Reason, message: String| refusal(payer, reason, message);
    let now = U256::from(now_secs());
    if auth.valid_before < now + U256::from(VALID_BEFORE_MARGIN) {
        return Err(refuse(
            Reason::ExactEvmValidBefore,
            "authorization has expired".into(),
        ));
    }
    if auth.valid_after > now {
        return Err(refuse(
            Reason::ExactEvmValidAfter,
            "authorization is not valid yet".into(),
        ));
    }
    let requirements = &payment.requirements;
    let longest = U256::from(requirements.latest_valid_until(now_secs(), TIMEOUT_SLACK));
    if auth.valid_before > longest {
        return Err(refuse(
            Reason::ExactEvmValidBefore,
            format!(
                "authorization stays valid longer than maxTimeoutSeconds ({})",
                requirements.max_timeout_seconds
            ),
        ));
    }
    let required = U256::from_str_radix(requirements.amount.as_str(), 10).map_err(|_| {
        refuse(
            Reason::InvalidPaymentRequirements,
            "amount does not fit 256 bits".into(),
        )
    })?;
    let value_ok = match amount_rule(payment.version) {
        AmountRule::Exact => auth.value == required,
        AmountRule::AtLeast => auth.value >= required,
    };
    if !value_ok {
        // The official packages name it per version; so do we.
        let reason = match payment.version {
            X402Version::V1 => Reason::ExactEvmAuthorizationValue,
            X402Version::V2 => Reason::ExactEvmAuthorizationValueMismatch,
        };
        return Err(refuse(
            reason,
            format!(
                "authorization value {} does not match required {required}",
                auth.value
            ),
        ));
    }
    Ok(())
}

/// `transferWithAuthorization` with `(v, r, s)` for a plain 65-byte signature, else with
/// the signature as bytes (contract wallets).
fn transfer_calldata(auth: &Authorization, signature: &[u8], plain: bool) -> Bytes {
    if signature.len() == 65 && plain {
        let v = signature[64];
        let v = if v < 27 { v + 27 } else { v };
        return transferWithAuthorization_0Call {
            from: auth.from,
            to: auth.to,
            value: auth.value,
            validAfter: auth.valid_after,
            validBefore: auth.valid_before,
            nonce: auth.nonce,
            v,
            r: FixedBytes::from_slice(&signature[..32]),
            s: FixedBytes::from_slice(&signature[32..64]),
        }
        .abi_encode()
        .into();
    }
    transferWithAuthorization_1Call {
        from: auth.from,
        to: auth.to,
        value: auth.value,
        validAfter: auth.valid_after,
        validBefore: auth.valid_before,
        nonce: auth.nonce,
        signature: signature.to_vec().into(),
    }
    .abi_encode()
    .into()
}
