//! The stand-in's NEP-141 token: a ledger of its own written after the reference
//! `near-contract-standards` fungible token (not run in a VM: rustc here has no wasm32
//! target). It keeps what the x402 checks and transfers touch: balances, NEP-145
//! registration, `ft_transfer` with its one-yocto rule, and the NEP-297 transfer event.

use std::collections::{BTreeMap, BTreeSet};

use near_primitives::types::AccountId;
use serde_json::{json, Value};

/// NEP-145 storage balance bound of the reference token (0.00125 NEAR).
pub const STORAGE_BALANCE: u128 = 1_250_000_000_000_000_000_000;

/// One token contract's state.
#[derive(Debug, Clone, Default)]
pub struct Token {
    pub balances: BTreeMap<AccountId, u128>,
    pub registered: BTreeSet<AccountId>,
    /// Transfers refused, as an issuer pauses a stablecoin (Circle's USDC can be paused):
    /// views still answer, so a payment verifies and then fails on chain.
    pub paused: bool,
}

#[derive(serde::Deserialize)]
struct AccountArg {
    account_id: AccountId,
}

#[derive(serde::Deserialize)]
struct TransferArgs {
    receiver_id: AccountId,
    amount: String,
    #[serde(default)]
    memo: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct StorageDepositArgs {
    #[serde(default)]
    account_id: Option<AccountId>,
}

impl Token {
    /// A view call's JSON answer, or the panic message.
    pub fn view(&self, method: &str, args: &[u8]) -> Result<Value, String> {
        match method {
            "ft_balance_of" => {
                let args: AccountArg = parse(args)?;
                let balance = self.balances.get(&args.account_id).copied().unwrap_or(0);
                Ok(json!(balance.to_string()))
            }
            "storage_balance_of" => {
                let args: AccountArg = parse(args)?;
                Ok(match self.registered.contains(&args.account_id) {
                    true => json!({"total": STORAGE_BALANCE.to_string(), "available": "0"}),
                    false => Value::Null,
                })
            }
            "ft_total_supply" => Ok(json!(self
                .balances
                .values()
                .fold(0u128, |a, b| a.saturating_add(*b))
                .to_string())),
            "ft_metadata" => Ok(json!({"spec": "ft-1.0.0", "name": "Test USD Coin",
                "symbol": "USDC", "decimals": 6, "icon": null, "reference": null,
                "reference_hash": null})),
            _ => Err(format!("MethodNotFound {method}")),
        }
    }

    /// A change call from `predecessor` with `deposit` attached; `Err` is the panic.
    pub fn call(
        &mut self,
        predecessor: &AccountId,
        method: &str,
        args: &[u8],
        deposit: u128,
        logs: &mut Vec<String>,
    ) -> Result<(), String> {
        match method {
            "ft_transfer" => self.ft_transfer(predecessor, args, deposit, logs),
            "storage_deposit" => {
                let args: StorageDepositArgs = match args.is_empty() {
                    true => StorageDepositArgs::default(),
                    false => parse(args)?,
                };
                if deposit < STORAGE_BALANCE {
                    return Err(
                        "The attached deposit is less than the minimum storage balance".into(),
                    );
                }
                let account = args.account_id.unwrap_or_else(|| predecessor.clone());
                self.registered.insert(account);
                Ok(())
            }
            _ => Err(format!("MethodNotFound {method}")),
        }
    }

    fn ft_transfer(
        &mut self,
        sender: &AccountId,
        args: &[u8],
        deposit: u128,
        logs: &mut Vec<String>,
    ) -> Result<(), String> {
        if deposit != 1 {
            return Err("Requires attached deposit of exactly 1 yoctoNEAR".into());
        }
        if self.paused {
            return Err("Pausable: paused".into());
        }
        let args: TransferArgs = parse(args)?;
        let amount: u128 = args
            .amount
            .parse()
            .map_err(|_| "Failed to deserialize input from JSON.".to_owned())?;
        if &args.receiver_id == sender {
            return Err("Sender and receiver should be different".into());
        }
        if amount == 0 {
            return Err("The amount should be a positive number".into());
        }
        for account in [sender, &args.receiver_id] {
            if !self.registered.contains(account) {
                return Err(format!("The account {account} is not registered"));
            }
        }
        let from = self.balances.get(sender).copied().unwrap_or(0);
        let Some(left) = from.checked_sub(amount) else {
            return Err("The account doesn't have enough balance".into());
        };
        let to = self.balances.get(&args.receiver_id).copied().unwrap_or(0);
        let Some(credited) = to.checked_add(amount) else {
            return Err("Balance overflow".into());
        };
        self.balances.insert(sender.clone(), left);
        self.balances.insert(args.receiver_id.clone(), credited);
        let mut event = json!({"old_owner_id": sender, "new_owner_id": args.receiver_id,
            "amount": amount.to_string()});
        if let Some(memo) = args.memo {
            event["memo"] = json!(memo);
        }
        logs.push(format!(
            "EVENT_JSON:{}",
            json!({"standard": "nep141", "version": "1.0.0", "event": "ft_transfer", "data": [event]})
        ));
        Ok(())
    }
}

fn parse<T: serde::de::DeserializeOwned>(args: &[u8]) -> Result<T, String> {
    serde_json::from_slice(args).map_err(|_| "Failed to deserialize input from JSON.".to_owned())
}
