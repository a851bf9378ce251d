//! The node's ledger: entries, the ledger sequence and close time, the transaction queue
//! and the record of applied transactions. Ledgers close on a timer ([`Ledger::close`]);
//! transactions wait in the queue until then, as in stellar-core.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use soroban_env_host::xdr::{
    AccountEntry, AccountEntryExt, AccountId, AlphaNum4, Asset, AssetCode4, ContractEvent,
    ContractExecutable, ContractIdPreimage, CreateContractArgs, DecoratedSignature, Hash,
    HostFunction, InvokeHostFunctionOp, LedgerEntry, LedgerEntryData, LedgerEntryExt, LedgerKey,
    LedgerKeyAccount, LedgerKeyTrustLine, Limits, MuxedAccount, OperationBody, PublicKey,
    ScAddress, ScVal, SequenceNumber, String32, Thresholds, Transaction, TransactionEnvelope,
    TrustLineAsset, TrustLineEntry, TrustLineEntryExt, Uint256, WriteXdr,
};

use crate::host::{self, Entries};

/// The trustline flag that lets an account hold and move an asset.
const AUTHORIZED_FLAG: u32 = 1;

/// An accepted transaction waiting for the next ledger.
pub struct Queued {
    pub hash: [u8; 32],
    pub envelope: TransactionEnvelope,
}

/// How an applied transaction ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Success,
    Failed,
}

/// An applied transaction, as `getTransaction` reports it.
pub struct Applied {
    pub status: Status,
    pub ledger: u32,
    pub created_at: u64,
    pub application_order: u32,
    pub envelope: TransactionEnvelope,
    pub fee_charged: i64,
    pub return_value: ScVal,
    pub events: Vec<ContractEvent>,
    /// The host's error for a failed transaction (kept for the node's own log).
    pub error: Option<String>,
}

/// The whole state of the node.
pub struct Ledger {
    pub passphrase: String,
    pub network_id: [u8; 32],
    pub sequence: u32,
    pub close_time: u64,
    pub entries: Entries,
    pub queue: Vec<Queued>,
    pub applied: HashMap<[u8; 32], Applied>,
    /// Asset code → its Stellar Asset Contract id.
    pub contracts: Vec<(String, [u8; 32])>,
    seeds: u64,
}

/// The account id of an ed25519 public key.
pub fn account_id(key: [u8; 32]) -> AccountId {
    AccountId(PublicKey::PublicKeyTypeEd25519(Uint256(key)))
}

/// The ed25519 key behind a (possibly muxed) account.
pub fn muxed_key(account: &MuxedAccount) -> [u8; 32] {
    match account {
        MuxedAccount::Ed25519(Uint256(key)) => *key,
        MuxedAccount::MuxedEd25519(muxed) => muxed.ed25519.0,
    }
}

/// The key of `account`'s account entry.
pub fn account_key(account: &AccountId) -> LedgerKey {
    LedgerKey::Account(LedgerKeyAccount {
        account_id: account.clone(),
    })
}

/// The key of `account`'s trustline for `asset`.
pub fn trustline_key(account: &AccountId, asset: &AlphaNum4) -> LedgerKey {
    LedgerKey::Trustline(LedgerKeyTrustLine {
        account_id: account.clone(),
        asset: TrustLineAsset::CreditAlphanum4(asset.clone()),
    })
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A 4-character-or-shorter asset code issued by `issuer`.
pub fn credit_asset(code: &str, issuer: &AccountId) -> Result<AlphaNum4, String> {
    let bytes = code.as_bytes();
    if bytes.is_empty() || bytes.len() > 4 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(format!(
            "{code:?} is not an asset code of 1 to 4 letters or digits"
        ));
    }
    let mut padded = [0u8; 4];
    padded[..bytes.len()].copy_from_slice(bytes);
    Ok(AlphaNum4 {
        asset_code: AssetCode4(padded),
        issuer: issuer.clone(),
    })
}

impl Ledger {
    /// An empty ledger at sequence 1 for the network named by `passphrase`.
    pub fn new(passphrase: &str) -> Ledger {
        Ledger {
            passphrase: passphrase.to_string(),
            network_id: Sha256::digest(passphrase.as_bytes()).into(),
            sequence: 1,
            close_time: now(),
            entries: Entries::new(),
            queue: Vec::new(),
            applied: HashMap::new(),
            contracts: Vec::new(),
            seeds: 0,
        }
    }

    /// A fresh seed for the host's PRNG (recorded nonces come from it, so no two
    /// simulations may share one).
    pub fn next_seed(&mut self) -> [u8; 32] {
        self.seeds = self.seeds.wrapping_add(1);
        let mut hasher = Sha256::new();
        hasher.update(self.network_id);
        hasher.update(self.seeds.to_be_bytes());
        hasher.update(now().to_be_bytes());
        hasher.finalize().into()
    }

    /// The host's view of the next ledger, the one a transaction sent now would land in.
    pub fn next_info(&self) -> soroban_env_host::LedgerInfo {
        host::ledger_info(
            self.sequence.saturating_add(1),
            now().max(self.close_time),
            self.network_id,
        )
    }

    /// Writes an account entry (created or replaced) holding `stroops`.
    pub fn put_account(&mut self, account: &AccountId, stroops: i64, sub_entries: u32) {
        let seq = self
            .account(account)
            .map_or(i64::from(self.sequence) << 32, |a| a.seq_num.0);
        let entry = AccountEntry {
            account_id: account.clone(),
            balance: stroops,
            seq_num: SequenceNumber(seq),
            num_sub_entries: sub_entries,
            inflation_dest: None,
            flags: 0,
            home_domain: String32::default(),
            thresholds: Thresholds([1, 0, 0, 0]),
            signers: Default::default(),
            ext: AccountEntryExt::V0,
        };
        self.put(account_key(account), LedgerEntryData::Account(entry), None);
    }

    /// Writes `entry` back (a fee charged, a sequence number used).
    pub fn store_account(&mut self, entry: AccountEntry) {
        let key = account_key(&entry.account_id);
        self.put(key, LedgerEntryData::Account(entry), None);
    }

    /// Writes an authorized trustline of `account` for `asset` holding `balance`.
    pub fn put_trustline(&mut self, account: &AccountId, asset: &AlphaNum4, balance: i64) {
        let entry = TrustLineEntry {
            account_id: account.clone(),
            asset: TrustLineAsset::CreditAlphanum4(asset.clone()),
            balance,
            limit: i64::MAX,
            flags: AUTHORIZED_FLAG,
            ext: TrustLineEntryExt::V0,
        };
        self.put(
            trustline_key(account, asset),
            LedgerEntryData::Trustline(entry),
            None,
        );
    }

    fn put(&mut self, key: LedgerKey, data: LedgerEntryData, ttl: Option<u32>) {
        let entry = LedgerEntry {
            last_modified_ledger_seq: self.sequence,
            data,
            ext: LedgerEntryExt::V0,
        };
        self.entries.insert(key, (entry, ttl));
    }

    /// `account`'s entry, when it exists.
    pub fn account(&self, account: &AccountId) -> Option<AccountEntry> {
        match self.entries.get(&account_key(account)) {
            Some((
                LedgerEntry {
                    data: LedgerEntryData::Account(entry),
                    ..
                },
                _,
            )) => Some(entry.clone()),
            _ => None,
        }
    }

    /// `account`'s balance of `asset` (its trustline), when it has one.
    pub fn trustline_balance(&self, account: &AccountId, asset: &AlphaNum4) -> Option<i64> {
        match self.entries.get(&trustline_key(account, asset)) {
            Some((
                LedgerEntry {
                    data: LedgerEntryData::Trustline(line),
                    ..
                },
                _,
            )) => Some(line.balance),
            _ => None,
        }
    }

    /// Deploys the Stellar Asset Contract of `asset` through the host, as a
    /// `CreateContract` transaction would, and returns its contract id.
    pub fn deploy_asset_contract(&mut self, asset: &AlphaNum4) -> Result<[u8; 32], String> {
        let host_fn = HostFunction::CreateContract(CreateContractArgs {
            contract_id_preimage: ContractIdPreimage::Asset(Asset::CreditAlphanum4(asset.clone())),
            executable: ContractExecutable::StellarAsset,
        });
        let info = self.next_info();
        let seed = self.next_seed();
        let simulated = host::simulate(
            &self.entries,
            &info,
            host_fn.clone(),
            Vec::new(),
            &asset.issuer,
            seed,
        )?;
        let data = simulated.data.ok_or_else(|| match simulated.result {
            Err(e) => e,
            Ok(_) => "the simulation gave no resources".to_string(),
        })?;
        let op = InvokeHostFunctionOp {
            host_function: host_fn,
            auth: simulated
                .auth
                .try_into()
                .map_err(|_| "too many auth entries")?,
        };
        let seed = self.next_seed();
        let applied = host::apply(&mut self.entries, &info, &op, &asset.issuer, &data, seed)?;
        match applied.return_value {
            ScVal::Address(ScAddress::Contract(id)) => {
                let Hash(bytes) = id.0;
                Ok(bytes)
            }
            other => Err(format!("CreateContract returned {other:?}")),
        }
    }

    /// The contract id of `code`'s asset contract.
    pub fn contract(&self, code: &str) -> Option<[u8; 32]> {
        self.contracts
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, id)| *id)
    }

    /// The hash of `tx` on this network.
    pub fn tx_hash(&self, tx: &Transaction) -> Result<[u8; 32], String> {
        tx.hash(self.network_id).map_err(|e| e.to_string())
    }

    /// Whether `signatures` hold a valid signature of `hash` by `key`, and whether every
    /// one of them is that key's (stellar-core refuses extra signatures).
    pub fn signed_by(
        hash: &[u8; 32],
        signatures: &[DecoratedSignature],
        key: &[u8; 32],
    ) -> (bool, bool) {
        let Ok(verifying) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
            return (false, false);
        };
        let mut valid = false;
        let mut all_used = true;
        for sig in signatures {
            let Ok(bytes) = <[u8; 64]>::try_from(sig.signature.0.as_slice()) else {
                all_used = false;
                continue;
            };
            let signature = ed25519_dalek::Signature::from_bytes(&bytes);
            if sig.hint.0 == key[28..32] && verifying.verify_strict(hash, &signature).is_ok() {
                valid = true;
            } else {
                all_used = false;
            }
        }
        (valid, all_used)
    }

    /// The transaction inside a v1 envelope with one `InvokeHostFunction` operation,
    /// the only kind this node applies.
    pub fn invoke_op(tx: &Transaction) -> Option<&InvokeHostFunctionOp> {
        match (
            tx.operations.len(),
            tx.operations.first().map(|op| &op.body),
        ) {
            (1, Some(OperationBody::InvokeHostFunction(op))) => Some(op),
            _ => None,
        }
    }

    /// The XDR of `value` in base64.
    pub fn base64(value: &impl WriteXdr) -> String {
        value.to_xdr_base64(Limits::none()).unwrap_or_default()
    }
}
