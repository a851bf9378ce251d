//! Deep health of one NEAR network: the node answers, its chain id is the network's, its
//! head is recent, and every relayer account can pay.

use serde_json::{json, Value};
use x402_protocol::HealthCheck;

use crate::NearChain;

/// A head older than this is a node that stopped following the chain.
const STALE_HEAD_SECONDS: u64 = 60;

impl NearChain {
    pub(crate) async fn deep_health(&self) -> Vec<HealthCheck> {
        let mut checks = Vec::new();
        let status = match self.rpc.call("status", json!([])).await {
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
        checks.push(HealthCheck::new(
            "rpc_reachable",
            true,
            true,
            "node answered",
        ));
        let chain = status.get("chain_id").and_then(Value::as_str);
        let reference = self.chain_id.reference();
        let matches = chain == Some(reference);
        let detail = match (chain, matches) {
            (_, true) => format!("chain id matches {}", self.chain_id),
            (Some(c), false) if self.options.local_stand_in => format!(
                "local stand-in: chain id {c} is not {reference} (allowed by local_stand_in)"
            ),
            (Some(c), false) => format!("chain id {c} does not match {}", self.chain_id),
            (None, _) => "node gave no chain id".into(),
        };
        let ok = matches || (chain.is_some() && self.options.local_stand_in);
        checks.push(HealthCheck::new("chain_id", ok, true, detail));
        checks.push(head_check(&status));
        // Keys of one named account pay from one balance: it is read and reported once.
        for account in self.relayer_accounts() {
            let balance = self
                .rpc
                .call(
                    "query",
                    json!({"request_type": "view_account", "finality": "final", "account_id": account}),
                )
                .await
                .ok()
                .and_then(|a| a.ok())
                .and_then(|v| v.get("amount").and_then(Value::as_str).and_then(|a| a.parse::<u128>().ok()));
            let ok = balance.is_some_and(|b| b >= self.min_relayer_yocto);
            checks.push(HealthCheck::new(
                "signer_gas_balance",
                ok,
                true,
                format!(
                    "{account}: {} yoctoNEAR (floor {})",
                    balance.map_or_else(|| "unknown".into(), |b| b.to_string()),
                    self.min_relayer_yocto
                ),
            ));
        }
        checks
    }
}

/// Whether the node's latest block is recent.
fn head_check(status: &Value) -> HealthCheck {
    let sync = status.get("sync_info");
    let height = sync
        .and_then(|s| s.get("latest_block_height"))
        .and_then(Value::as_u64);
    let time = sync
        .and_then(|s| s.get("latest_block_time"))
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok());
    let age = time.and_then(|t| std::time::SystemTime::now().duration_since(t).ok());
    match (height, age) {
        (Some(h), Some(age)) if age.as_secs() <= STALE_HEAD_SECONDS => HealthCheck::new(
            "head_block",
            true,
            true,
            format!("head {h}, {} s old", age.as_secs()),
        ),
        (Some(h), Some(age)) => HealthCheck::new(
            "head_block",
            false,
            true,
            format!(
                "head {h} is {} s old (limit {STALE_HEAD_SECONDS} s)",
                age.as_secs()
            ),
        ),
        _ => HealthCheck::new("head_block", false, true, "node gave no head time"),
    }
}
