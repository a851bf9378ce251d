//! Deep health of one Stellar network: the node answers and calls itself healthy, its
//! passphrase is the network's, its latest ledger closed recently, and every fee-paying
//! account holds enough to pay fees.

use serde_json::Value;
use x402_protocol::HealthCheck;

use crate::StellarChain;

/// A latest ledger older than this is a node that stopped following the network.
const STALE_LEDGER_SECONDS: u64 = 60;

impl StellarChain {
    pub(crate) async fn deep_health(&self) -> Vec<HealthCheck> {
        let mut checks = Vec::new();
        let health = match self.rpc.call("getHealth", Value::Null).await {
            Err(e) => {
                checks.push(HealthCheck::new(
                    "rpc_reachable",
                    false,
                    true,
                    e.to_string(),
                ));
                return checks;
            }
            Ok(answer) => answer.ok().unwrap_or(Value::Null),
        };
        let status = health.get("status").and_then(Value::as_str);
        checks.push(HealthCheck::new(
            "rpc_reachable",
            status == Some("healthy"),
            true,
            format!("node status {}", status.unwrap_or("unknown")),
        ));
        let network = self
            .rpc
            .call("getNetwork", Value::Null)
            .await
            .ok()
            .and_then(Result::ok);
        let passphrase = network
            .as_ref()
            .and_then(|n| n.get("passphrase"))
            .and_then(Value::as_str);
        let matches = passphrase == Some(self.passphrase);
        checks.push(HealthCheck::new(
            "network_passphrase",
            matches,
            true,
            match passphrase {
                _ if matches => format!("passphrase is {}'s", self.chain_id),
                Some(other) => format!("passphrase {other:?} is not {}'s", self.chain_id),
                None => "node gave no passphrase".into(),
            },
        ));
        checks.push(self.ledger_check(status == Some("healthy")).await);
        for signer in &self.signers {
            checks.push(self.balance_check(&signer.address).await);
        }
        checks
    }

    /// Whether the latest ledger closed recently. A node that gives no close time (older
    /// stellar-rpc) is judged by its own `getHealth`, which fails once its latest ledger is
    /// older than its configured limit.
    async fn ledger_check(&self, healthy: bool) -> HealthCheck {
        let latest = self
            .rpc
            .call("getLatestLedger", Value::Null)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Value::Null);
        let sequence = latest.get("sequence").and_then(Value::as_u64);
        let closed = latest
            .get("closeTime")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<u64>().ok());
        let age = closed.map(|c| crate::now().saturating_sub(c));
        match (sequence, age) {
            (Some(s), Some(age)) if age <= STALE_LEDGER_SECONDS => HealthCheck::new(
                "latest_ledger",
                true,
                true,
                format!("ledger {s}, closed {age} s ago"),
            ),
            (Some(s), Some(age)) => HealthCheck::new(
                "latest_ledger",
                false,
                true,
                format!("ledger {s} closed {age} s ago (limit {STALE_LEDGER_SECONDS} s)"),
            ),
            (Some(s), None) => HealthCheck::new(
                "latest_ledger",
                healthy,
                true,
                format!("ledger {s}; no close time given, judged by the node's getHealth"),
            ),
            (None, _) => {
                HealthCheck::new("latest_ledger", false, true, "node gave no latest ledger")
            }
        }
    }

    /// Whether a fee-paying account holds at least the configured floor.
    async fn balance_check(&self, address: &str) -> HealthCheck {
        let balance = self.account_balance(address).await;
        let floor = self.min_signer_stroops;
        HealthCheck::new(
            "signer_gas_balance",
            balance
                .as_ref()
                .is_ok_and(|b| i128::from(*b) >= i128::from(floor)),
            true,
            match balance {
                Ok(b) => format!("{address}: {b} stroops (floor {floor})"),
                Err(e) => format!("{address}: unknown ({e})"),
            },
        )
    }
}
