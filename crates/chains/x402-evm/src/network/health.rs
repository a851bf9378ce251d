//! Deep health of one EVM network: the node answers on the configured chain, its head is
//! recent and advancing, and every signer can pay gas.

use super::*;

impl EvmChain {
    /// One batch to the node: chain id, head block, signer balances.
    pub(super) async fn health_checks(&self) -> Vec<HealthCheck> {
        let mut calls: Vec<(&'static str, Value)> = vec![
            ("eth_chainId", json!([])),
            ("eth_getBlockByNumber", json!(["latest", false])),
        ];
        for signer in &self.signers {
            calls.push((
                "eth_getBalance",
                json!([signer.signer.address().to_string(), "latest"]),
            ));
        }
        let results = match self.rpc.batch(&calls).await {
            Ok(results) if results.len() == calls.len() => results,
            // The error text may carry the endpoint; it stays out of the health answer.
            _ => {
                return vec![HealthCheck::new(
                    "rpc_reachable",
                    false,
                    true,
                    "no RPC endpoint answered",
                )]
            }
        };
        let mut checks = vec![HealthCheck::new(
            "rpc_reachable",
            true,
            true,
            "node answered",
        )];
        let chain = results[0].as_ref().ok().and_then(parse_u256);
        let expected = U256::from(self.numeric_chain_id);
        checks.push(match chain {
            Some(id) if id == expected => {
                HealthCheck::new("chain_id", true, true, format!("chain id {id}"))
            }
            Some(id) => HealthCheck::new(
                "chain_id",
                false,
                true,
                format!("node is on chain {id}, configured {expected}"),
            ),
            None => HealthCheck::new("chain_id", false, true, "node gave no chain id"),
        });
        let block = results[1].as_ref().ok();
        let number = block
            .and_then(|b| b.get("number"))
            .and_then(parse_u256)
            .and_then(|n| u64::try_from(n).ok());
        let timestamp = block
            .and_then(|b| b.get("timestamp"))
            .and_then(parse_u256)
            .and_then(|n| u64::try_from(n).ok());
        checks.push(self.head_check(number, timestamp));
        for (signer, result) in self.signers.iter().zip(&results[2..]) {
            let address = signer.signer.address().to_checksum(None);
            let balance = result.as_ref().ok().and_then(parse_u256);
            checks.push(match balance {
                Some(b) if b >= self.min_signer_balance => HealthCheck::new(
                    "signer_gas_balance",
                    true,
                    true,
                    format!("{address}: {b} wei"),
                ),
                Some(b) => HealthCheck::new(
                    "signer_gas_balance",
                    false,
                    true,
                    format!(
                        "{address}: {b} wei, below the floor of {}",
                        self.min_signer_balance
                    ),
                ),
                None => HealthCheck::new(
                    "signer_gas_balance",
                    false,
                    true,
                    format!("{address}: node gave no balance"),
                ),
            });
        }
        checks
    }

    /// The head must be recent and advancing, judged only against a configured interval.
    fn head_check(&self, number: Option<u64>, timestamp: Option<u64>) -> HealthCheck {
        let (Some(number), Some(timestamp)) = (number, timestamp) else {
            return HealthCheck::new("head_block", false, true, "node gave no latest block");
        };
        let Some(interval) = self.expected_block_interval else {
            return HealthCheck::new(
                "head_block",
                true,
                true,
                format!("block {number} (no expected interval configured: staleness not judged)"),
            );
        };
        let allowed = interval.saturating_mul(3).max(Duration::from_secs(5));
        let age = Duration::from_secs(now_secs().saturating_sub(timestamp));
        let mut last = match self.last_head.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stuck_for = match *last {
            Some((seen, since)) if seen == number => since.elapsed(),
            _ => {
                *last = Some((number, Instant::now()));
                Duration::ZERO
            }
        };
        if age > allowed {
            HealthCheck::new(
                "head_block",
                false,
                true,
                format!(
                    "block {number} is {}s old (allowed {}s)",
                    age.as_secs(),
                    allowed.as_secs()
                ),
            )
        } else if stuck_for > allowed {
            HealthCheck::new(
                "head_block",
                false,
                true,
                format!("head stuck at block {number} for {}s", stuck_for.as_secs()),
            )
        } else {
            HealthCheck::new(
                "head_block",
                true,
                true,
                format!("block {number}, {}s old", age.as_secs()),
            )
        }
    }
}
