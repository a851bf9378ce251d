//! The EVM part of a network's configuration: the keys of its file section, their
//! defaults, and the environment keys this crate reads. The service reads the file and
//! the environment and hands each network its section; what the keys mean is decided here.

use std::time::Duration;

use serde::Deserialize;
use x402_protocol::SectionError;

use crate::EvmAddress;

/// Default gas ceiling per settlement: a `transferWithAuthorization` takes about 60–90k.
pub const DEFAULT_MAX_GAS: u64 = 200_000;
/// Default gas ceiling per ERC-6492 wallet deployment (smart wallets take 150–400k).
pub const DEFAULT_MAX_DEPLOY_GAS: u64 = 500_000;
/// Default floor of a signer's gas balance for deep health: 0.001 of the native unit (wei).
pub const DEFAULT_MIN_SIGNER_BALANCE: u128 = 1_000_000_000_000_000;
/// Default ceiling of what the facilitator sends a payer so that their ERC-20 approval can
/// pay its own gas (`erc20ApprovalGasSponsoring`): 0.0002 of the native unit, 70,000 gas
/// (the official client's approval limit) at about 2.8 gwei.
pub const DEFAULT_MAX_APPROVAL_FUNDING_WEI: u128 = 200_000_000_000_000;
/// Default number of payers' approvals the facilitator funds per hour on a network: with
/// the ceiling above, what strangers can take in an hour is bounded (0.002 native units).
pub const DEFAULT_MAX_APPROVAL_FUNDINGS_PER_HOUR: u64 = 10;
/// The environment key with the signer key of every EVM network that names none.
pub const SIGNER_KEY_ENV: &str = "EVM_PRIVATE_KEY";

/// The EVM keys of a `[networks."eip155:…"]` file section (any other key is refused).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvmSection {
    max_gas_per_settlement: Option<u64>,
    max_gas_per_deployment: Option<u64>,
    #[serde(default)]
    erc6492_factories: Vec<String>,
    expected_block_interval_ms: Option<u64>,
    permit2: Option<bool>,
    eip2612_gas_sponsoring: Option<bool>,
    erc20_approval_gas_sponsoring: Option<bool>,
    erc20_approval_max_funding_wei: Option<u128>,
    erc20_approval_max_fundings_per_hour: Option<u64>,
}

/// The EVM settings of one network, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmOptions {
    /// Upper bound on the gas of one settlement.
    pub max_gas_per_settlement: u64,
    /// Upper bound on the gas of one ERC-6492 wallet deployment.
    pub max_gas_per_deployment: u64,
    /// Factories an ERC-6492 signature may name (empty: none, the safe default).
    pub erc6492_factories: Vec<EvmAddress>,
    /// Expected time between blocks; when set, deep health flags a head that is old or
    /// not advancing. `None` (anvil with instant mining) never calls the chain stale.
    pub expected_block_interval: Option<Duration>,
    /// Whether `exact` takes Permit2 payments (through the canonical x402 exact Permit2
    /// proxy) beside EIP-3009 ones.
    pub permit2: bool,
    /// Whether a Permit2 payment may carry an EIP-2612 permit for Permit2 that the
    /// facilitator sends (and pays the gas of) inside the settling call.
    pub eip2612_gas_sponsoring: bool,
    /// Whether a Permit2 payment may carry the payer's signed ERC-20 `approve(Permit2)`
    /// transaction that the facilitator broadcasts before settling (off by default: it
    /// relays a stranger's transaction and may fund their gas).
    pub erc20_approval_gas_sponsoring: bool,
    /// The most the facilitator sends a payer who cannot pay their approval's gas; 0 never
    /// funds (such a payer is refused).
    pub erc20_approval_max_funding_wei: u128,
    /// How many approvals the facilitator funds on this network in any hour, counted in the
    /// ledger (so across instances that share it); past it a payer without gas is refused.
    pub erc20_approval_max_fundings_per_hour: u64,
}

impl Default for EvmOptions {
    fn default() -> Self {
        EvmOptions {
            max_gas_per_settlement: DEFAULT_MAX_GAS,
            max_gas_per_deployment: DEFAULT_MAX_DEPLOY_GAS,
            erc6492_factories: Vec::new(),
            expected_block_interval: None,
            permit2: true,
            eip2612_gas_sponsoring: true,
            erc20_approval_gas_sponsoring: false,
            erc20_approval_max_funding_wei: DEFAULT_MAX_APPROVAL_FUNDING_WEI,
            erc20_approval_max_fundings_per_hour: DEFAULT_MAX_APPROVAL_FUNDINGS_PER_HOUR,
        }
    }
}

impl EvmSection {
    /// The options the section says, defaults for what it leaves out.
    pub fn resolve(self) -> Result<EvmOptions, SectionError> {
        let defaults = EvmOptions::default();
        let erc6492_factories = self
            .erc6492_factories
            .iter()
            .map(|text| {
                text.parse::<EvmAddress>().map_err(|_| {
                    SectionError::new(
                        "erc6492_factories",
                        format!("ERC-6492 factory {text:?} is not an address"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EvmOptions {
            max_gas_per_settlement: self
                .max_gas_per_settlement
                .unwrap_or(defaults.max_gas_per_settlement),
            max_gas_per_deployment: self
                .max_gas_per_deployment
                .unwrap_or(defaults.max_gas_per_deployment),
            erc6492_factories,
            expected_block_interval: self.expected_block_interval_ms.map(Duration::from_millis),
            permit2: self.permit2.unwrap_or(defaults.permit2),
            eip2612_gas_sponsoring: self
                .eip2612_gas_sponsoring
                .unwrap_or(defaults.eip2612_gas_sponsoring),
            erc20_approval_gas_sponsoring: self
                .erc20_approval_gas_sponsoring
                .unwrap_or(defaults.erc20_approval_gas_sponsoring),
            erc20_approval_max_funding_wei: self
                .erc20_approval_max_funding_wei
                .unwrap_or(defaults.erc20_approval_max_funding_wei),
            erc20_approval_max_fundings_per_hour: self
                .erc20_approval_max_fundings_per_hour
                .unwrap_or(defaults.erc20_approval_max_fundings_per_hour),
        })
    }
}
