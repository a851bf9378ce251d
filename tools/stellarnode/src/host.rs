//! The two calls into the real Soroban host a node makes: simulation (`soroban-simulation`,
//! the preflight library stellar-rpc runs) and application of an `InvokeHostFunction`
//! operation (`soroban_env_host::e2e_invoke::invoke_host_function`, the call stellar-core
//! makes), both over a snapshot of [`Entries`].

use std::collections::BTreeMap;
use std::rc::Rc;

use soroban_env_host::budget::Budget;
use soroban_env_host::e2e_invoke::{
    entry_size_for_rent, invoke_host_function, RecordingInvocationAuthMode, TtlLedgerEntryMeta,
};
use soroban_env_host::fees::{FeeConfiguration, RentFeeConfiguration};
use soroban_env_host::storage::{EntryWithLiveUntil, SnapshotSource};
use soroban_env_host::xdr::{
    AccountId, ContractCostParamEntry, ContractCostParams, ContractCostType,
    ContractDataDurability, ContractEvent, ExtensionPoint, HostFunction, InvokeHostFunctionOp,
    LedgerEntry, LedgerKey, Limits, ReadXdr, ScVal, SorobanAuthorizationEntry,
    SorobanTransactionData, SorobanTransactionDataExt, WriteXdr,
};
use soroban_env_host::{HostError, LedgerInfo};
use soroban_simulation::simulation::{
    simulate_invoke_host_function_op, SimulationAdjustmentConfig,
};
use soroban_simulation::NetworkConfig;

/// Every ledger entry with its live-until ledger (for entries that have a TTL).
pub type Entries = BTreeMap<LedgerKey, (LedgerEntry, Option<u32>)>;

/// The ledger protocol the host accepts (soroban-env-host 30 runs protocol 30 only).
pub const PROTOCOL_VERSION: u32 = 30;
/// Per-transaction instruction limit (pubnet's order of magnitude).
const TX_MAX_INSTRUCTIONS: i64 = 100_000_000;
/// Per-transaction memory limit in bytes.
const TX_MEMORY_LIMIT: u32 = 41_943_040;

/// The ledger parameters the host is given for `sequence` closing at `timestamp`.
pub fn ledger_info(sequence: u32, timestamp: u64, network_id: [u8; 32]) -> LedgerInfo {
    LedgerInfo {
        protocol_version: PROTOCOL_VERSION,
        sequence_number: sequence,
        timestamp,
        network_id,
        base_reserve: 5_000_000,
        min_temp_entry_ttl: 16,
        min_persistent_entry_ttl: 4_096,
        max_entry_ttl: 3_110_400,
    }
}

/// One flat cost per metered host operation. The network's calibrated cost table lives in
/// its ledger, not in the host crate's public API; these flat terms make instruction counts
/// and fees non-zero and stable, not equal to pubnet's (written down in docs/networks.md).
fn cost_params(const_term: i64) -> ContractCostParams {
    let entries: Vec<ContractCostParamEntry> = ContractCostType::VARIANTS
        .iter()
        .map(|_| ContractCostParamEntry {
            ext: ExtensionPoint::V0,
            const_term,
            linear_term: 0,
        })
        .collect();
    ContractCostParams(entries.try_into().unwrap_or_default())
}

/// The fee schedule of this node: the same formulas as the network, smaller rates so that
/// a token transfer costs a few thousand stroops.
pub fn network_config() -> NetworkConfig {
    NetworkConfig {
        fee_configuration: FeeConfiguration {
            fee_per_instruction_increment: 25,
            fee_per_disk_read_entry: 100,
            fee_per_write_entry: 200,
            fee_per_disk_read_1kb: 100,
            fee_per_write_1kb: 100,
            fee_per_historical_1kb: 200,
            fee_per_contract_event_1kb: 100,
            fee_per_transaction_size_1kb: 100,
        },
        rent_fee_configuration: RentFeeConfiguration {
            fee_per_rent_1kb: 100,
            fee_per_write_1kb: 100,
            fee_per_write_entry: 200,
            persistent_rent_rate_denominator: 1_402,
            temporary_rent_rate_denominator: 2_804,
        },
        tx_max_instructions: TX_MAX_INSTRUCTIONS,
        tx_memory_limit: TX_MEMORY_LIMIT,
        cpu_cost_params: cost_params(1_000),
        memory_cost_params: cost_params(100),
        min_temp_entry_ttl: 16,
        min_persistent_entry_ttl: 4_096,
        max_entry_ttl: 3_110_400,
    }
}

/// A read-only copy of the ledger the host reads from.
struct Snapshot {
    entries: Entries,
    sequence: u32,
}

impl SnapshotSource for Snapshot {
    fn get(&self, key: &Rc<LedgerKey>) -> Result<Option<EntryWithLiveUntil>, HostError> {
        Ok(live(&self.entries, key, self.sequence).map(|(entry, ttl)| (Rc::new(entry), ttl)))
    }
}

/// The entry under `key` as the host sees it in `sequence`: an expired temporary entry is
/// gone (the network deletes it); an archived persistent one is still there for restoring.
pub fn live(
    entries: &Entries,
    key: &LedgerKey,
    sequence: u32,
) -> Option<(LedgerEntry, Option<u32>)> {
    let (entry, ttl) = entries.get(key)?;
    if let (LedgerKey::ContractData(data), Some(until)) = (key, ttl) {
        if data.durability == ContractDataDurability::Temporary && *until < sequence {
            return None;
        }
    }
    Some((entry.clone(), *ttl))
}

/// What a simulation found.
pub struct Simulated {
    /// The function's result, or the host's error in its own words.
    pub result: Result<ScVal, String>,
    /// The authorization entries (recorded when none were given).
    pub auth: Vec<SorobanAuthorizationEntry>,
    /// The contract events of a successful invocation.
    pub events: Vec<ContractEvent>,
    /// Resources and resource fee, for a successful invocation.
    pub data: Option<SorobanTransactionData>,
    pub instructions: u32,
    pub memory: u32,
}

/// Simulates `host_fn` as `source` would run it in the ledger after `sequence`: with
/// `auth` enforced when given, recorded otherwise.
pub fn simulate(
    entries: &Entries,
    info: &LedgerInfo,
    host_fn: HostFunction,
    auth: Vec<SorobanAuthorizationEntry>,
    source: &AccountId,
    seed: [u8; 32],
) -> Result<Simulated, String> {
    let mode = if auth.is_empty() {
        RecordingInvocationAuthMode::recording(true, false)
    } else {
        RecordingInvocationAuthMode::Enforcing(auth)
    };
    let snapshot = Rc::new(Snapshot {
        entries: entries.clone(),
        sequence: info.sequence_number,
    });
    let outcome = simulate_invoke_host_function_op(
        snapshot,
        &network_config(),
        &SimulationAdjustmentConfig::default_adjustment(),
        info,
        host_fn,
        mode,
        source,
        seed,
        false,
    )
    .map_err(|e| format!("simulation could not run: {e}"))?;
    Ok(Simulated {
        result: outcome
            .invoke_result
            .map_err(|e| format!("host invocation failed\n\nCaused by:\n    {e:?}")),
        auth: outcome.auth,
        events: outcome.contract_events,
        data: outcome.transaction_data,
        instructions: outcome.simulated_instructions,
        memory: outcome.simulated_memory,
    })
}

/// What applying an operation did.
pub struct Applied {
    pub return_value: ScVal,
    pub events: Vec<ContractEvent>,
}

/// Applies `op` with the declared `data` (footprint enforced, auth enforced) and writes its
/// changes into `entries`; on failure nothing is written and the host's error is returned.
pub fn apply(
    entries: &mut Entries,
    info: &LedgerInfo,
    op: &InvokeHostFunctionOp,
    source: &AccountId,
    data: &SorobanTransactionData,
    seed: [u8; 32],
) -> Result<Applied, String> {
    let config = network_config();
    let budget = Budget::try_from_configs(
        u64::from(data.resources.instructions),
        u64::from(TX_MEMORY_LIMIT),
        config.cpu_cost_params,
        config.memory_cost_params,
    )
    .map_err(|e| format!("{e:?}"))?;
    let footprint = &data.resources.footprint;
    let mut inputs = Vec::new();
    for key in footprint
        .read_only
        .iter()
        .chain(footprint.read_write.iter())
    {
        inputs.push(footprint_input(
            &budget,
            entries,
            key,
            info.sequence_number,
        )?);
    }
    let restored: Vec<u32> = match &data.ext {
        SorobanTransactionDataExt::V1(ext) => ext.archived_soroban_entries.to_vec(),
        SorobanTransactionDataExt::V0 => Vec::new(),
    };
    let auth: Vec<Vec<u8>> = op.auth.iter().map(xdr).collect::<Result<_, _>>()?;
    let mut diagnostics = Vec::new();
    let result = invoke_host_function(
        &budget,
        false,
        xdr(&op.host_function)?,
        xdr(&data.resources)?,
        &restored,
        xdr(source)?,
        auth.into_iter(),
        info.clone(),
        inputs.into_iter(),
        seed.to_vec(),
        &mut diagnostics,
        None,
        None,
    )
    .map_err(|e| format!("{e:?}"))?;
    let value = result.encoded_invoke_result.map_err(|e| format!("{e:?}"))?;
    let return_value = ScVal::from_xdr(value, Limits::none()).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    for event in &result.encoded_contract_events {
        events.push(ContractEvent::from_xdr(event, Limits::none()).map_err(|e| e.to_string())?);
    }
    for change in result.ledger_changes {
        let key =
            LedgerKey::from_xdr(&change.encoded_key, Limits::none()).map_err(|e| e.to_string())?;
        let until = change.ttl_change.as_ref().map(|t| t.new_live_until_ledger);
        if change.read_only {
            if let (Some(until), Some(slot)) = (until, entries.get_mut(&key)) {
                slot.1 = Some(until);
            }
            continue;
        }
        match change.encoded_new_value {
            Some(bytes) => {
                let mut entry =
                    LedgerEntry::from_xdr(bytes, Limits::none()).map_err(|e| e.to_string())?;
                entry.last_modified_ledger_seq = info.sequence_number;
                let until = until.or_else(|| entries.get(&key).and_then(|(_, t)| *t));
                entries.insert(key, (entry, until));
            }
            None => {
                entries.remove(&key);
            }
        }
    }
    Ok(Applied {
        return_value,
        events,
    })
}

fn xdr<T: WriteXdr>(value: &T) -> Result<Vec<u8>, String> {
    value.to_xdr(Limits::none()).map_err(|e| e.to_string())
}

/// One footprint entry in the encoding `invoke_host_function` takes: the entry's XDR and,
/// for contract data and code, its TTL.
fn footprint_input(
    budget: &Budget,
    entries: &Entries,
    key: &LedgerKey,
    sequence: u32,
) -> Result<(Option<Vec<u8>>, Option<TtlLedgerEntryMeta>), String> {
    let Some((entry, ttl)) = live(entries, key, sequence) else {
        return Ok((None, None));
    };
    let bytes = entry.to_xdr(Limits::none()).map_err(|e| e.to_string())?;
    let meta = match (key, ttl) {
        (LedgerKey::ContractData(_) | LedgerKey::ContractCode(_), Some(until)) => {
            let size = u32::try_from(bytes.len()).map_err(|e| e.to_string())?;
            Some(TtlLedgerEntryMeta {
                live_until_ledger: until,
                entry_size_for_rent: entry_size_for_rent(budget, &entry, size)
                    .map_err(|e| format!("{e:?}"))?,
            })
        }
        _ => None,
    };
    Ok((Some(bytes), meta))
}
