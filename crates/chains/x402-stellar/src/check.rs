//! The checks of one payment: the requirements, the payload's own checks in
//! [`crate::payload`], then two reads at once: the latest ledger (the authorization's
//! expiration window) and a simulation of the transaction this facilitator would submit
//! (itself as source, the client's operation and signed entries), whose success, events
//! and resource fee decide the rest. What the node cannot answer is our trouble, never
//! the payer's.

use serde_json::{json, Value};
use stellar_xdr::{
    ContractEventBody, ContractEventType, DiagnosticEvent, InvokeHostFunctionOp, Limits, ReadXdr,
    ScVal, SorobanTransactionData, TransactionV1Envelope,
};
use x402_protocol::{Payment, Reason, Verdict};
use x402_settlement::answers::{node_answer, node_refusal, v2_exact_basics};
use x402_settlement::jsonrpc::{CallResult, NodeError};

use crate::payload::{self, address, i128_of, Refused, Transfer, Wanted};
use crate::{StellarChain, BASE_FEE};

/// Ledgers the expiration may lie beyond the window, for clocks of client and node that
/// differ by a ledger or two (the official facilitator's tolerance).
const EXPIRATION_TOLERANCE: u32 = 2;

/// A payment that passed every check.
pub(crate) struct Ready {
    pub(crate) transfer: Transfer,
    /// The resources and resource fee of this facilitator's own simulation.
    pub(crate) data: SorobanTransactionData,
    /// The whole fee of the settlement: base fee plus the simulated resource fee.
    pub(crate) fee: u32,
}

fn refusal(refused: Refused) -> Verdict {
    Verdict::invalid(refused.reason, refused.message, refused.payer)
}

/// The payload's transaction, when it decodes (no other check).
pub(crate) fn payload_envelope(payment: &Payment) -> Option<TransactionV1Envelope> {
    let encoded = payment.payload.get("transaction")?.as_str()?;
    payload::decode(encoded).ok()
}

/// The payer the payload names: `transfer`'s `from` (no signature check).
pub(crate) fn claimed_payer(payment: &Payment) -> Option<String> {
    let envelope = payload_envelope(payment)?;
    let stellar_xdr::OperationBody::InvokeHostFunction(op) = &envelope.tx.operations.first()?.body
    else {
        return None;
    };
    let stellar_xdr::HostFunction::InvokeContract(call) = &op.host_function else {
        return None;
    };
    match call.args.first()? {
        ScVal::Address(from) => Some(address(from)),
        _ => None,
    }
}

impl StellarChain {
    /// The requirements' own checks, before the payload is read.
    fn check_requirements(&self, payment: &Payment) -> Result<i128, Verdict> {
        let invalid = |reason, message: &str| Err(Verdict::invalid(reason, message, None));
        v2_exact_basics(payment, &self.chain_id, "Stellar")?;
        let requirements = &payment.requirements;
        let sponsored = requirements
            .extra
            .as_ref()
            .and_then(|e| e.get("areFeesSponsored"));
        if sponsored.is_some_and(|s| s != &Value::Bool(true)) {
            return invalid(
                Reason::InvalidPaymentRequirements,
                "extra.areFeesSponsored must be true: this facilitator only sponsors fees",
            );
        }
        requirements
            .amount
            .as_u128()
            .and_then(|a| i128::try_from(a).ok())
            .filter(|a| *a > 0)
            .map_or_else(
                || {
                    invalid(
                        Reason::InvalidPaymentRequirements,
                        "amount is not a positive i128",
                    )
                },
                Ok,
            )
    }

    /// Every check; `parsed` is the payload's transaction when decoded already.
    pub(crate) async fn check(
        &self,
        payment: &Payment,
        parsed: Option<TransactionV1Envelope>,
    ) -> Result<Ready, Verdict> {
        let amount = self.check_requirements(payment)?;
        let envelope = match parsed {
            Some(envelope) => envelope,
            None => {
                let encoded = payment
                    .payload
                    .get("transaction")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Verdict::invalid(
                            Reason::ExactStellarMalformed,
                            "payload.transaction is missing",
                            None,
                        )
                    })?;
                payload::decode(encoded).map_err(refusal)?
            }
        };
        let transfer = self
            .transfer_of(payment, &envelope, amount)
            .map_err(refusal)?;
        let window = payment
            .requirements
            .max_timeout_seconds
            .div_ceil(u64::from(self.options.ledger_seconds));
        self.check_chain_state(transfer, &payment.requirements.asset, window)
            .await
    }

    /// The payload's transfer, checked against the requirements (paying `amount`) without
    /// I/O: what both the check and the payment's ledger key read.
    pub(crate) fn transfer_of(
        &self,
        payment: &Payment,
        envelope: &TransactionV1Envelope,
        amount: i128,
    ) -> Result<Transfer, Refused> {
        let ours = self.signer_addresses();
        let wanted = Wanted {
            asset: &payment.requirements.asset,
            pay_to: &payment.requirements.pay_to,
            amount,
            ours: &ours,
        };
        payload::inspect(envelope, &wanted)
    }

    /// Simulates `op` in the unsigned transaction a check simulates.
    pub(crate) async fn simulate(&self, op: &InvokeHostFunctionOp) -> CallResult {
        let probe = self.simulation_envelope(op);
        self.rpc
            .call("simulateTransaction", json!({"transaction": probe}))
            .await
    }

    /// The whole fee of a settlement with the simulated `data`: the base fee plus its
    /// resource fee; `None` above `max_fee_stroops`.
    pub(crate) fn settlement_fee(&self, data: &SorobanTransactionData) -> Option<u32> {
        u32::try_from(data.resource_fee)
            .ok()
            .and_then(|f| f.checked_add(BASE_FEE))
            .filter(|f| *f <= self.options.max_fee_stroops)
    }

    /// The latest ledger and this facilitator's simulation, read at once, judged in the
    /// spec's order.
    async fn check_chain_state(
        &self,
        transfer: Transfer,
        asset: &str,
        window: u64,
    ) -> Result<Ready, Verdict> {
        let (latest, simulated) = tokio::join!(
            self.rpc.call("getLatestLedger", Value::Null),
            self.simulate(&transfer.op),
        );
        let judge = Judge {
            chain: self,
            payer: &transfer.from,
        };
        let latest = judge.read(latest, "getLatestLedger")?;
        let current = latest
            .get("sequence")
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(|| judge.trouble("getLatestLedger", &NodeError::unreadable()))?;
        judge.expiration(&transfer, current, window)?;
        let simulated = judge.read(simulated, "simulateTransaction")?;
        let data = match simulation(&simulated) {
            Some(Ok(data)) => data,
            Some(Err(error)) => {
                return Err(judge.refuse(
                    Reason::ExactStellarSimulationFailed,
                    format!("the simulation failed: {error}"),
                ))
            }
            None => return Err(judge.trouble("simulateTransaction", &NodeError::unreadable())),
        };
        judge.events(&simulated, &transfer, asset)?;
        let fee = self.settlement_fee(&data).ok_or_else(|| {
            judge.refuse(
                Reason::ExactStellarFeeExceedsMaximum,
                format!(
                    "the settlement would cost {} stroops of resource fee; this facilitator pays at most {} in all",
                    data.resource_fee, self.options.max_fee_stroops
                ),
            )
        })?;
        Ok(Ready {
            transfer,
            data,
            fee,
        })
    }
}

/// What a `simulateTransaction` answer says: the host's error (its `Error(…)` line) when the
/// invocation failed, else the resources and resource fee; `None` when it says neither.
pub(crate) fn simulation(simulated: &Value) -> Option<Result<SorobanTransactionData, String>> {
    if let Some(error) = simulated.get("error").and_then(Value::as_str) {
        let first = error
            .lines()
            .find(|l| l.contains("Error("))
            .unwrap_or(error);
        return Some(Err(first.trim().to_owned()));
    }
    let data = simulated.get("transactionData")?.as_str()?;
    SorobanTransactionData::from_xdr_base64(data, Limits::len(1 << 16))
        .ok()
        .map(Ok)
}

/// One payment's chain reads, judged: refusals name the payer; what the node cannot answer
/// is our trouble.
struct Judge<'a> {
    chain: &'a StellarChain,
    payer: &'a str,
}

/// One `transfer` event: from, to, amount.
type Moved = (String, String, Option<i128>);

impl Judge<'_> {
    fn refuse(&self, reason: Reason, message: String) -> Verdict {
        Verdict::invalid(reason, message, Some(self.payer.to_owned()))
    }

    fn trouble(&self, what: &str, node: &NodeError) -> Verdict {
        node_refusal(&self.chain.chain_id, what, node, self.payer)
    }

    /// A read every payment needs: any error is ours.
    fn read(&self, answer: CallResult, what: &str) -> Result<Value, Verdict> {
        node_answer(answer, &self.chain.chain_id, what, self.payer)
    }

    /// The entries expire after the current ledger and within the window
    /// `maxTimeoutSeconds` allows.
    fn expiration(&self, transfer: &Transfer, current: u32, window: u64) -> Result<(), Verdict> {
        let expiration = transfer.expiration_ledger;
        if expiration <= current {
            return Err(self.refuse(
                Reason::ExactStellarSignatureExpired,
                format!("the authorization expired at ledger {expiration}; the current ledger is {current}"),
            ));
        }
        let limit = u64::from(current)
            .saturating_add(window)
            .saturating_add(u64::from(EXPIRATION_TOLERANCE));
        if u64::from(expiration) > limit {
            return Err(self.refuse(
                Reason::ExactStellarExpirationTooFar,
                format!("the authorization expires at ledger {expiration}; maxTimeoutSeconds allows {limit}"),
            ));
        }
        Ok(())
    }

    /// The simulation's contract events: exactly one, a `transfer` by the asset contract
    /// of exactly the payment, and no other.
    fn events(&self, simulated: &Value, transfer: &Transfer, asset: &str) -> Result<(), Verdict> {
        let events = simulated.get("events").and_then(Value::as_array);
        let mut moved: Vec<Moved> = Vec::new();
        for event in events.into_iter().flatten() {
            let event = event
                .as_str()
                .and_then(|e| DiagnosticEvent::from_xdr_base64(e, Limits::len(1 << 16)).ok())
                .ok_or_else(|| self.trouble("simulateTransaction", &NodeError::unreadable()))?;
            if let Some(one) = self.transfer_event(&event, asset)? {
                moved.push(one);
            }
        }
        let [(from, to, amount)] = moved.as_slice() else {
            let (reason, what) = match moved.len() {
                0 => (Reason::ExactStellarNoTransferEvents, "no transfer event"),
                _ => (
                    Reason::ExactStellarMultipleTransfers,
                    "more than one transfer",
                ),
            };
            return Err(self.refuse(reason, format!("the simulation shows {what}")));
        };
        let wrong =
            |reason, what: &str| Err(self.refuse(reason, format!("the simulated transfer {what}")));
        if from != &transfer.from {
            return wrong(
                Reason::ExactStellarEventWrongFrom,
                "is from another account",
            );
        }
        if to != &transfer.to {
            return wrong(Reason::ExactStellarEventWrongTo, "pays another account");
        }
        if *amount != Some(transfer.amount) {
            return wrong(Reason::ExactStellarEventWrongAmount, "moves another amount");
        }
        Ok(())
    }

    /// A contract event as a transfer; `None` for events that are not contract events.
    fn transfer_event(
        &self,
        event: &DiagnosticEvent,
        asset: &str,
    ) -> Result<Option<Moved>, Verdict> {
        let event = &event.event;
        if event.type_ != ContractEventType::Contract {
            return Ok(None);
        }
        let ContractEventBody::V0(body) = &event.body;
        let not_transfer = || {
            self.refuse(
                Reason::ExactStellarEventNotTransfer,
                "the simulation emits a contract event that is not a transfer".into(),
            )
        };
        let [name, from, to, ..] = body.topics.as_slice() else {
            return Err(not_transfer());
        };
        if !matches!(name, ScVal::Symbol(s) if s.0.as_slice() == b"transfer") {
            return Err(not_transfer());
        }
        let by = event
            .contract_id
            .as_ref()
            .map(|id| format!("{}", stellar_strkey::Contract(id.0 .0)));
        if by.as_deref() != Some(asset) {
            return Err(self.refuse(
                Reason::ExactStellarEventWrongAsset,
                "a transfer event comes from another contract than the asset".into(),
            ));
        }
        let party = |value: &ScVal| match value {
            ScVal::Address(a) => address(a),
            _ => String::new(),
        };
        let amount = match &body.data {
            ScVal::Map(Some(map)) => map
                .iter()
                .find(|e| matches!(&e.key, ScVal::Symbol(s) if s.0.as_slice() == b"amount"))
                .and_then(|e| i128_of(&e.val)),
            other => i128_of(other),
        };
        Ok(Some((party(from), party(to), amount)))
    }
}
