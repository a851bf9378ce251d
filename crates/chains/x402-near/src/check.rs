//! The checks of one payment: the requirements, the payload's own checks in
//! [`crate::payload`], then the chain state the spec's preflight names, read concurrently
//! from the node: the head (expiry and window), the delegate's access key (full access,
//! nonce unused), the token's code, the payer's balance and the recipient's registration.
//! Any read that cannot be made fails closed, and is answered as our trouble, never the
//! payer's.
//!
//! Reads are at the optimistic head, not the final one: clients (`near-api-js`) count
//! `max_block_height` from it, and the access key's nonce there already reflects a
//! delegate action executed a block ago, so a replay is refused before the relayer pays
//! gas for a receipt that would fail.

use base64::Engine as _;
use near_primitives::action::delegate::SignedDelegateAction;
use near_primitives::hash::CryptoHash;
use serde_json::{json, Value};
use x402_protocol::{Payment, Reason, Verdict};
use x402_settlement::answers::{node_answer, node_refusal, rpc_refusal, v2_exact_basics};
use x402_settlement::jsonrpc::{CallResult, NodeError};

use crate::payload::{self, Delegated, Refused, Wanted};
use crate::NearChain;

/// A payment that passed every check.
pub(crate) struct Ready {
    pub(crate) delegated: Delegated,
    /// The head the checks read at: the relayer transaction is built on it.
    pub(crate) block_hash: CryptoHash,
    /// How many blocks the delegate action has left.
    pub(crate) remaining_blocks: u64,
}

fn refusal(refused: Refused) -> Verdict {
    Verdict::invalid(refused.reason, refused.message, refused.payer)
}

/// The payload's delegate action, when it decodes (no other check).
pub(crate) fn payload_delegate(payment: &Payment) -> Option<SignedDelegateAction> {
    let encoded = payment.payload.get("signedDelegateAction")?.as_str()?;
    payload::decode(encoded).ok()
}

/// The payer a refusal may name: the sender, once its signature verified.
pub(crate) fn claimed_payer(payment: &Payment) -> Option<String> {
    payload::verified_sender(&payload_delegate(payment)?).map(|a| a.to_string())
}

/// Blocks a delegate action may stay valid for: one per second of `maxTimeoutSeconds`
/// (the spec's mapping, `estimatedBlockSeconds = 1` on every NEAR network).
fn timeout_blocks(max_timeout_seconds: u64) -> u64 {
    max_timeout_seconds.max(1)
}

/// A `call_function` answer's bytes as JSON.
fn view_value(result: &Value) -> Option<Value> {
    let bytes: Vec<u8> = result
        .get("result")?
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect::<Option<_>>()?;
    serde_json::from_slice(&bytes).ok()
}

impl NearChain {
    /// The requirements' own checks, before the payload is read.
    fn check_requirements(&self, payment: &Payment) -> Result<u128, Verdict> {
        v2_exact_basics(payment, &self.chain_id, "NEAR")?;
        let extra = payment.requirements.extra.as_ref();
        if let Some(relayer) = extra.and_then(|e| e.get("relayerId")) {
            let ours = relayer
                .as_str()
                .is_some_and(|r| self.relayers.iter().any(|k| k.account.as_str() == r));
            if !ours {
                return Err(Verdict::invalid(
                    Reason::ExactNearRelayerNotManaged,
                    format!("extra.relayerId {relayer} is not a relayer of this facilitator"),
                    None,
                ));
            }
        }
        payment.requirements.amount.as_u128().ok_or_else(|| {
            Verdict::invalid(
                Reason::InvalidPaymentRequirements,
                "amount is not a u128",
                None,
            )
        })
    }

    /// Every check; `parsed` is the payload's delegate action when decoded already.
    pub(crate) async fn check(
        &self,
        payment: &Payment,
        parsed: Option<SignedDelegateAction>,
    ) -> Result<Ready, Verdict> {
        let amount = self.check_requirements(payment)?;
        let signed = match parsed {
            Some(signed) => signed,
            None => {
                let encoded = payment
                    .payload
                    .get("signedDelegateAction")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Verdict::invalid(
                            Reason::ExactNearUndecodable,
                            "payload.signedDelegateAction is missing",
                            None,
                        )
                    })?;
                payload::decode(encoded).map_err(refusal)?
            }
        };
        let relayers: Vec<_> = self.relayers.iter().map(|r| r.account.clone()).collect();
        let wanted = Wanted {
            asset: &payment.requirements.asset,
            pay_to: &payment.requirements.pay_to,
            amount,
            max_gas: self.options.max_gas,
            relayers: &relayers,
        };
        let delegated = payload::inspect(signed, &wanted).map_err(refusal)?;
        let timeout = timeout_blocks(payment.requirements.max_timeout_seconds);
        self.check_chain_state(delegated, &payment.requirements.pay_to, timeout)
            .await
    }

    /// The spec's chain-state preflight, five reads at once, judged in the spec's order.
    async fn check_chain_state(
        &self,
        delegated: Delegated,
        pay_to: &str,
        timeout: u64,
    ) -> Result<Ready, Verdict> {
        let action = &delegated.signed.delegate_action;
        let payer = action.sender_id.to_string();
        let asset = action.receiver_id.to_string();
        let view = |method: &str, account: &str| {
            let args = json!({"account_id": account}).to_string();
            json!({"request_type": "call_function", "finality": "optimistic", "account_id": asset,
                "method_name": method,
                "args_base64": base64::engine::general_purpose::STANDARD.encode(args)})
        };
        let (head, key, code, balance, storage) = tokio::join!(
            self.rpc.call("block", json!({"finality": "optimistic"})),
            self.rpc.call(
                "query",
                json!({"request_type": "view_access_key", "finality": "optimistic",
                    "account_id": payer, "public_key": action.public_key.to_string()})
            ),
            self.rpc.call(
                "query",
                json!({"request_type": "view_account", "finality": "optimistic", "account_id": asset})
            ),
            self.rpc.call("query", view("ft_balance_of", &payer)),
            self.rpc.call("query", view("storage_balance_of", pay_to)),
        );
        let judge = Judge {
            chain: self,
            payer: &payer,
        };
        let (block_hash, remaining_blocks) =
            judge.head(judge.read(head, "block")?, action.max_block_height, timeout)?;
        judge.access_key(key.map_err(|e| judge.ours(e))?, action)?;
        judge.asset_code(code.map_err(|e| judge.ours(e))?, &asset)?;
        let held = judge.view(balance, "ft_balance_of")?;
        let held = held
            .as_str()
            .and_then(|s| s.parse::<u128>().ok())
            .ok_or_else(|| judge.trouble("ft_balance_of", &NodeError::unreadable()))?;
        if held < delegated.amount {
            return Err(judge.refuse(
                Reason::InsufficientFunds,
                format!("{payer} holds {held}, the payment is {}", delegated.amount),
            ));
        }
        if judge.view(storage, "storage_balance_of")?.is_null() {
            return Err(judge.refuse(
                Reason::ExactNearRecipientNotRegistered,
                format!("{pay_to} is not registered with {asset}; this facilitator does not pay its storage"),
            ));
        }
        Ok(Ready {
            delegated,
            block_hash,
            remaining_blocks,
        })
    }
}

/// One payment's chain reads, judged: refusals name the payer; what the node cannot answer
/// is our trouble.
struct Judge<'a> {
    chain: &'a NearChain,
    payer: &'a str,
}

impl Judge<'_> {
    fn refuse(&self, reason: Reason, message: String) -> Verdict {
        Verdict::invalid(reason, message, Some(self.payer.to_owned()))
    }

    fn ours(&self, error: x402_settlement::failover::RpcUnavailable) -> Verdict {
        rpc_refusal(&self.chain.chain_id, error, Some(self.payer.to_owned()))
    }

    fn trouble(&self, what: &str, node: &NodeError) -> Verdict {
        node_refusal(&self.chain.chain_id, what, node, self.payer)
    }

    /// A read every payment needs: any error is ours.
    fn read(&self, answer: CallResult, what: &str) -> Result<Value, Verdict> {
        node_answer(answer, &self.chain.chain_id, what, self.payer)
    }

    /// A token view's JSON value.
    fn view(&self, answer: CallResult, method: &str) -> Result<Value, Verdict> {
        let answer = self.read(answer, method)?;
        view_value(&answer).ok_or_else(|| self.trouble(method, &NodeError::unreadable()))
    }

    /// The head's hash, and the blocks left: above 0 and within the timeout's window.
    fn head(&self, block: Value, max: u64, timeout: u64) -> Result<(CryptoHash, u64), Verdict> {
        let (height, hash) =
            head_of(&block).ok_or_else(|| self.trouble("block", &NodeError::unreadable()))?;
        if max <= height {
            return Err(self.refuse(
                Reason::NearDelegateActionExpired,
                format!("max_block_height {max} is not above the head {height}"),
            ));
        }
        let remaining = max - height;
        if remaining > timeout {
            return Err(self.refuse(
                Reason::NearDelegateActionWindowTooLong,
                format!("max_block_height is {remaining} blocks ahead; maxTimeoutSeconds allows {timeout}"),
            ));
        }
        Ok((hash, remaining))
    }

    /// The token account exists and has code.
    fn asset_code(&self, answer: Result<Value, NodeError>, asset: &str) -> Result<(), Verdict> {
        let account = match answer {
            Err(node) if is_unknown(&node) => {
                return Err(self.refuse(
                    Reason::ExactNearAssetNotContract,
                    format!("the token account {asset} does not exist"),
                ))
            }
            Err(node) => return Err(self.trouble("view_account", &node)),
            Ok(account) => account,
        };
        let code_hash = account.get("code_hash").and_then(Value::as_str);
        if code_hash.is_none_or(|h| h == CryptoHash::default().to_string()) {
            return Err(self.refuse(
                Reason::ExactNearAssetNotContract,
                format!("the token account {asset} has no contract code"),
            ));
        }
        Ok(())
    }

    /// The delegate's key: a full-access key of the payer whose nonce it is above.
    fn access_key(
        &self,
        answer: Result<Value, NodeError>,
        action: &near_primitives::action::delegate::DelegateAction,
    ) -> Result<(), Verdict> {
        let key = match answer {
            Err(node) if is_unknown(&node) => {
                return Err(self.refuse(
                    Reason::ExactNearAccessKeyInvalid,
                    format!("{} has no access key {}", self.payer, action.public_key),
                ))
            }
            Err(node) => return Err(self.trouble("view_access_key", &node)),
            Ok(key) => key,
        };
        if key.get("error").is_some() {
            // Older nodes answer an unknown key as a result with an error text.
            return Err(self.refuse(
                Reason::ExactNearAccessKeyInvalid,
                "the delegate's key is not a key of the payer".into(),
            ));
        }
        if key.get("permission") != Some(&json!("FullAccess")) {
            return Err(self.refuse(
                Reason::ExactNearAccessKeyInvalid,
                "the delegate's key is not a full-access key (function-call keys cannot attach the 1 yoctoNEAR ft_transfer needs)".into(),
            ));
        }
        let Some(key_nonce) = key.get("nonce").and_then(Value::as_u64) else {
            return Err(self.trouble("view_access_key", &NodeError::unreadable()));
        };
        if action.nonce <= key_nonce {
            return Err(self.refuse(
                Reason::NearDelegateActionNonceReused,
                format!(
                    "delegate nonce {} is not above the key's nonce {key_nonce}",
                    action.nonce
                ),
            ));
        }
        Ok(())
    }
}

/// Whether a node error says the account or key does not exist.
pub(crate) fn is_unknown(node: &NodeError) -> bool {
    matches!(
        node.cause.as_deref(),
        Some("UNKNOWN_ACCOUNT" | "UNKNOWN_ACCESS_KEY")
    )
}

/// A block's height and hash from a `block` answer.
pub(crate) fn head_of(block: &Value) -> Option<(u64, CryptoHash)> {
    let header = block.get("header")?;
    let height = header.get("height")?.as_u64()?;
    let hash = header.get("hash")?.as_str()?.parse().ok()?;
    Some((height, hash))
}
