//! Caller API keys for `/verify` and `/settle` (off unless `API_KEYS=required`): who may
//! call, on which networks, assets and `payTo` addresses, and how often. Only a key's
//! SHA-256 is kept (in the ledger, so instances on one PostgreSQL share the keys, their
//! revocations and their rate limits); each instance reads the keys again every second, so
//! a key revoked anywhere is refused everywhere within a second or two.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use x402_ledger::{Ledger, LedgerError, StoredKey};
use x402_protocol::{networks, ChainId, Payment, Reason};

/// The header a key may also come in (besides `Authorization: Bearer`).
pub const KEY_HEADER: &str = "x-api-key";

/// What one key may do; an empty list allows anything of its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    /// CAIP-2 ids or v1 names the key may pay on.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Assets (token contracts, mints) the key may settle.
    #[serde(default)]
    pub assets: Vec<String>,
    /// Recipients the key may settle to.
    #[serde(default)]
    pub pay_to: Vec<String>,
    /// `/verify` and `/settle` requests a minute, across instances; 0: no limit.
    #[serde(default, deserialize_with = "whole_u32")]
    pub rate_limit_per_minute: u32,
}

/// A count JSON may write as `600` or `600.0` (both integers to JSON Schema).
fn whole_u32<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match (number.as_u64(), number.as_f64()) {
        (Some(n), _) => Some(n),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => {
            Some(f as u64)
        }
        _ => None,
    };
    whole.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "expected a whole number from 0 to {}, got {number}",
            u32::MAX
        ))
    })
}

/// A key as the admin API (`{"id", ...policy}`) or the keys file (`id`, `sha256`,
/// ...policy) writes it, checked: a well-formed id and a policy whose networks are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key's id.
    pub id: String,
    /// `sha256` (the keys file's entries only).
    pub sha256: Option<String>,
    /// What the key may do.
    pub policy: KeyPolicy,
}

impl KeyEntry {
    /// Reads an entry: `id`, then `sha256` when `hashed`, and the rest as a [`KeyPolicy`]
    /// (any other field is refused, so a key itself can never be stored by mistake).
    pub fn read(entry: Value, hashed: bool) -> Result<KeyEntry, String> {
        let Value::Object(mut fields) = entry else {
            return Err("a key entry is an object".into());
        };
        let mut text = |name: &str| match fields.remove(name) {
            Some(Value::String(text)) => Ok(text),
            _ => Err(format!("a key entry needs {name} as text")),
        };
        let id = text("id")?;
        let sha256 = if hashed { Some(text("sha256")?) } else { None };
        if !valid_id(&id) {
            return Err(format!("key id {id:?} is not 1 to 64 of A-Z a-z 0-9 _ . -"));
        }
        let policy: KeyPolicy =
            serde_json::from_value(Value::Object(fields)).map_err(|e| format!("key {id}: {e}"))?;
        CallerKey::new(&id, policy.clone())?;
        Ok(KeyEntry { id, sha256, policy })
    }
}

/// A key the ring knows, ready to check a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerKey {
    /// The operator's name for it (logs, metrics, admin API).
    pub id: String,
    /// Its policy as configured.
    pub policy: KeyPolicy,
    networks: Vec<ChainId>,
}

fn same_address(a: &str, b: &str) -> bool {
    // 0x addresses are hex: their letter case is a checksum, not a different address.
    if a.starts_with("0x") && b.starts_with("0x") {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

impl CallerKey {
    /// The key for `policy`; `Err` names a network the registry does not know.
    pub fn new(id: &str, policy: KeyPolicy) -> Result<CallerKey, String> {
        let networks = policy
            .networks
            .iter()
            .map(|n| networks::resolve_network(n).map_err(|e| format!("{id}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(CallerKey {
            id: id.to_owned(),
            policy,
            networks,
        })
    }

    /// Whether the key may ask about this payment; the refusal names what is outside it.
    pub fn admits(&self, payment: &Payment) -> Result<(), (Reason, String)> {
        if !self.networks.is_empty() && !self.networks.contains(&payment.network) {
            let message = format!("API key {} may not use {}", self.id, payment.network);
            return Err((Reason::InvalidNetwork, message));
        }
        let requirements = &payment.requirements;
        let listed = |list: &[String], value: &str| {
            list.is_empty() || list.iter().any(|item| same_address(item, value))
        };
        if !listed(&self.policy.assets, &requirements.asset) {
            let message = format!(
                "API key {} may not settle asset {}",
                self.id, requirements.asset
            );
            return Err((Reason::InvalidPaymentRequirements, message));
        }
        if !listed(&self.policy.pay_to, &requirements.pay_to) {
            let message = format!("API key {} may not pay to {}", self.id, requirements.pay_to);
            return Err((Reason::InvalidPaymentRequirements, message));
        }
        Ok(())
    }
}

/// SHA-256 of a key, lower-case hex: what is stored and compared.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh key: `x402_` and 32 random bytes in hex.
pub fn new_key() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a key: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("x402_{hex}"))
}

/// Whether an id can name a key (and a metric series): 1 to 64 of `A-Z a-z 0-9 _ . -`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Why the key headers of a request do not name one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeaderError {
    /// A key header came more than once (400: a broken client).
    Repeated,
    /// `Authorization` is not `Bearer <key>`, or it and `X-API-Key` name different keys
    /// (401: no key is known to be meant).
    Unclear,
}

impl KeyHeaderError {
    /// What the answer says.
    pub fn message(self) -> &'static str {
        match self {
            KeyHeaderError::Repeated => "send each key header once",
            KeyHeaderError::Unclear => "Authorization must be Bearer <key>, and name the key X-API-Key names when both are sent",
        }
    }
}

/// The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
pub fn presented_key(headers: &HeaderMap) -> Result<Option<String>, KeyHeaderError> {
    let one = |name| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (_, Some(_)) => Err(KeyHeaderError::Repeated),
            (value, None) => Ok(value.map(|v| v.to_str().unwrap_or_default().to_owned())),
        }
    };
    let bearer = match one(header::AUTHORIZATION.as_str())? {
        None => None,
        Some(value) => match value.strip_prefix("Bearer ") {
            Some(key) => Some(key.trim().to_owned()),
            None => return Err(KeyHeaderError::Unclear),
        },
    };
    let plain = one(KEY_HEADER)?.map(|k| k.trim().to_owned());
    match (bearer, plain) {
        (Some(a), Some(b)) if a != b => Err(KeyHeaderError::Unclear),
        (a, b) => Ok(a.or(b).filter(|k| !k.is_empty())),
    }
}

/// The keys this instance accepts, by hash, refreshed from the ledger.
#[derive(Default)]
pub struct KeyRing {
    by_hash: RwLock<HashMap<String, Arc<CallerKey>>>,
}

impl KeyRing {
    /// The key with this text, if it is known (looked up by its hash).
    pub fn find(&self, key: &str) -> Option<Arc<CallerKey>> {
        let hash = hash_key(key);
        match self.by_hash.read() {
            Ok(keys) => keys.get(&hash).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&hash).cloned(),
        }
    }

    /// Reads every key from the ledger; a stored policy that no longer reads (a network
    /// removed from the registry) leaves that key out, logged. Returns the ids known now.
    pub async fn refresh(&self, ledger: &Ledger) -> Result<Vec<String>, LedgerError> {
        let mut next = HashMap::new();
        for stored in ledger.api_keys().await? {
            let key = serde_json::from_str::<KeyPolicy>(&stored.policy)
                .map_err(|e| e.to_string())
                .and_then(|policy| CallerKey::new(&stored.id, policy));
            match key {
                Ok(key) => {
                    next.insert(stored.key_hash, Arc::new(key));
                }
                Err(e) => {
                    tracing::error!(key_id = %stored.id, error = %e, "API key left out: its policy does not read")
                }
            }
        }
        let ids = next.values().map(|k| k.id.clone()).collect();
        match self.by_hash.write() {
            Ok(mut keys) => *keys = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(ids)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<toml::Table>,
}

/// The keys of a keys file, checked (ids, hashes, networks), ready for the ledger.
pub fn read_keys_file(path: &Path) -> Result<Vec<StoredKey>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let file: KeysFile = toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
    let mut out: Vec<StoredKey> = Vec::new();
    for table in file.keys {
        let entry = serde_json::to_value(table).map_err(|e| format!("{shown}: {e}"))?;
        let key = KeyEntry::read(entry, true).map_err(|e| format!("{shown}: {e}"))?;
        if out.iter().any(|k| k.id == key.id) {
            return Err(format!("{shown}: key id {:?} is given twice", key.id));
        }
        let hash = key.sha256.unwrap_or_default().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{shown}: key {} needs sha256 = 64 hex digits",
                key.id
            ));
        }
        let policy = key.policy;
        out.push(StoredKey {
            id: key.id,
            key_hash: hash,
            policy: serde_json::to_string(&policy).map_err(|e| e.to_string())?,
            source: "file".into(),
            updated_at: 0,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
