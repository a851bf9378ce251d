//! The checks of one payment: the static ones of [`crate::inspect`], the fee payer's
//! signature, and one simulation of the fully signed transaction on the node.

use base64::Engine as _;
use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_protocol::{Payment, Reason, Verdict};

use crate::inspect::{self, Refused, Wanted};
use crate::SvmChain;
use x402_settlement::answers::rpc_refusal;

/// A payment that passed every check, signed by the fee payer and simulated.
pub(crate) struct Ready {
    pub(crate) payer: String,
    pub(crate) fee_payer: Pubkey,
    pub(crate) signature: String,
    pub(crate) raw_b64: String,
    /// What the transfer moves, in the mint's smallest unit.
    pub(crate) amount: u64,
}

fn refusal(refused: Refused) -> Verdict {
    Verdict::invalid(refused.reason, refused.message, refused.payer)
}

/// The payload's transaction, when it decodes (no other check).
pub(crate) fn payload_transaction(payment: &Payment) -> Option<VersionedTransaction> {
    let encoded = payment.payload.get("transaction")?.as_str()?;
    inspect::decode(encoded).ok()
}

/// The transfer authority the payload names.
pub(crate) fn claimed_payer(payment: &Payment) -> Option<String> {
    let transaction = payload_transaction(payment)?;
    inspect::transfer_authority(&transaction).map(|a| a.to_string())
}

impl SvmChain {
    /// [`Self::check_payment`], with every refusal naming the transfer authority whenever
    /// the payload shows one (refusals found before the transfer is read carry none).
    pub(crate) async fn check(
        &self,
        payment: &Payment,
        parsed: Option<VersionedTransaction>,
    ) -> Result<Ready, Verdict> {
        self.check_payment(payment, parsed)
            .await
            .map_err(|mut verdict| {
                if verdict.payer.is_none() {
                    verdict.payer = claimed_payer(payment);
                }
                verdict
            })
    }

    /// Static checks, the fee payer's signature, and one simulation on the node.
    /// `parsed`: the payload's transaction when it was decoded already (settle).
    async fn check_payment(
        &self,
        payment: &Payment,
        parsed: Option<VersionedTransaction>,
    ) -> Result<Ready, Verdict> {
        if payment.scheme != "exact" || payment.payload_scheme != "exact" {
            return Err(Verdict::invalid(
                Reason::ExactSvmUnsupportedScheme,
                "scheme is not exact",
                None,
            ));
        }
        if payment.payload_network.as_ref() != Some(&self.chain_id) {
            return Err(Verdict::invalid(
                Reason::ExactSvmNetworkMismatch,
                format!("payload is for another network than {}", self.chain_id),
                None,
            ));
        }
        let Some(encoded) = payment.payload.get("transaction").and_then(Value::as_str) else {
            return Err(Verdict::invalid(
                Reason::ExactSvmUndecodable,
                "payload.transaction is missing",
                None,
            ));
        };
        let transaction = match parsed {
            Some(transaction) => transaction,
            None => inspect::decode(encoded).map_err(refusal)?,
        };
        let extra = payment.requirements.extra.as_ref();
        let text = |name: &str| extra.and_then(|e| e.get(name)).and_then(Value::as_str);
        let wanted = Wanted {
            asset: &payment.requirements.asset,
            pay_to: &payment.requirements.pay_to,
            amount: payment.requirements.amount.as_str(),
            fee_payer: text("feePayer"),
            memo: text("memo"),
        };
        let inspected = inspect::inspect(transaction, &wanted, &self.policy).map_err(refusal)?;
        let payer = inspected.payer.to_string();
        let mut signed: VersionedTransaction = inspected.transaction;
        let Some(keypair) = self
            .fee_payers
            .iter()
            .find(|k| k.pubkey() == inspected.fee_payer)
        else {
            return Err(Verdict::invalid(
                Reason::ExactSvmFeePayerNotManaged,
                "fee payer key not loaded",
                Some(payer),
            ));
        };
        signed.signatures[0] = keypair.sign_message(&signed.message.serialize());
        let raw = bincode::serialize(&signed).map_err(|e| {
            Verdict::invalid(
                Reason::UnexpectedVerifyError,
                e.to_string(),
                Some(payer.clone()),
            )
        })?;
        let raw_b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        self.simulate(&raw_b64, &payer).await?;
        Ok(Ready {
            payer,
            fee_payer: inspected.fee_payer,
            signature: signed.signatures[0].to_string(),
            raw_b64,
            amount: inspected.amount,
        })
    }

    /// One `simulateTransaction` of the fee-payer-signed transaction. A failed simulation
    /// or a transaction the node calls malformed (invalid params, bad signature) is the
    /// payer's; any other node error (rate limit, node behind, internal) is ours.
    async fn simulate(&self, raw_b64: &str, payer: &str) -> Result<(), Verdict> {
        let simulated = self
            .rpc
            .call(
                "simulateTransaction",
                json!([raw_b64, {"encoding": "base64", "sigVerify": true, "commitment": self.commitment}]),
            )
            .await
            .map_err(|e| rpc_refusal(&self.chain_id, e, Some(payer.to_owned())))?;
        let refuse = |reason, message: String| {
            Err(Verdict::invalid(reason, message, Some(payer.to_owned())))
        };
        match simulated {
            Ok(result) => match result.get("value").and_then(|v| v.get("err")) {
                Some(error) if !error.is_null() => refuse(
                    Reason::ExactSvmSimulationFailed,
                    format!("simulation failed: {error}"),
                ),
                _ => Ok(()),
            },
            Err(node) if node.code == -32602 || node.code == -32003 => refuse(
                Reason::ExactSvmSimulationFailed,
                format!("simulation refused: {}", node.message),
            ),
            Err(node) => {
                tracing::warn!(network = %self.chain_id, code = node.code, "simulateTransaction failed at the node");
                refuse(
                    Reason::RpcUnavailable,
                    format!(
                        "the node could not simulate the transaction (error {}); retry later",
                        node.code
                    ),
                )
            }
        }
    }
}
