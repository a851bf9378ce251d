//! Deep health of one SVM network: the node answers, its genesis is the network's, and
//! every fee payer can pay.

use serde_json::{json, Value};
use solana_signer::Signer;
use x402_protocol::HealthCheck;

use crate::SvmChain;

impl SvmChain {
    pub(crate) async fn deep_health(&self) -> Vec<HealthCheck> {
        let mut checks = Vec::new();
        match self.rpc.call("getGenesisHash", json!([])).await {
            Err(e) => {
                checks.push(HealthCheck::new(
                    "rpc_reachable",
                    false,
                    true,
                    e.to_string(),
                ));
                return checks;
            }
            Ok(answer) => {
                checks.push(HealthCheck::new(
                    "rpc_reachable",
                    true,
                    true,
                    "node answered",
                ));
                let genesis = answer.ok().and_then(|v| v.as_str().map(str::to_owned));
                let reference = self.chain_id.reference();
                let matches = genesis.as_deref().is_some_and(|g| g.starts_with(reference));
                let ok = matches || self.local_stand_in;
                let detail = match (&genesis, matches, self.local_stand_in) {
                    (_, true, _) => format!("genesis matches {}", self.chain_id),
                    (Some(g), false, true) => format!(
                        "local stand-in: genesis {g} is not {} (allowed by local_stand_in)",
                        self.chain_id
                    ),
                    (Some(g), false, false) => {
                        format!("genesis {g} does not match {}", self.chain_id)
                    }
                    (None, _, _) => "node gave no genesis hash".into(),
                };
                checks.push(HealthCheck::new("chain_id", ok, true, detail));
            }
        }
        for keypair in &self.fee_payers {
            let address = keypair.pubkey().to_string();
            let balance = self
                .rpc
                .call("getBalance", json!([address]))
                .await
                .ok()
                .and_then(|a| a.ok())
                .and_then(|v| v.get("value").and_then(Value::as_u64));
            let ok = balance.is_some_and(|b| b >= self.min_fee_payer_lamports);
            checks.push(HealthCheck::new(
                "signer_gas_balance",
                ok,
                true,
                format!(
                    "{address}: {} lamports (floor {})",
                    balance
                        .map(|b| b.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    self.min_fee_payer_lamports
                ),
            ));
        }
        checks
    }
}
