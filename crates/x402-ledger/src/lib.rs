//! The settlement ledger: every settlement is written down, with its signed transaction,
//! before anything is broadcast, and per-signer transaction nonces are allocated here.
//!
//! One code path serves both stores through `sqlx`'s `Any` driver: an embedded SQLite
//! file (the default, one instance) and PostgreSQL (several instances sharing signer keys).
//! Allocating a nonce, signing with it and recording the signed transaction happen in one
//! database transaction, so an allocated nonce always has a stored transaction that any
//! instance can re-broadcast: no gap stays open, two instances never sign the same nonce,
//! and no lock is held across a network call to the chain.
//!
//! The ledger knows nothing about chains: payment keys, transactions and outcomes are
//! opaque text chosen by the chain crates.

#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `sqlx` this crate is built on (tests open their own PostgreSQL connections with it).
pub use sqlx;

mod catalog;
mod entries;
mod keys;
mod nonces;
mod schema;
mod shared;
#[cfg(test)]
mod tests;

pub use catalog::{Listed, Listing, ListingFilter};
pub use keys::{KeyError, StoredKey};
pub use schema::SCHEMA_VERSION;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// The default store: a SQLite file in the working directory.
pub const DEFAULT_URL: &str = "sqlite://x402-ledger.db?mode=rwc";

/// Which store is behind the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded file; one instance.
    Sqlite,
    /// Shared server; several instances may use it at once.
    Postgres,
}

impl Backend {
    /// Name used in logs and health output.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The ledger could not do its job; settlements must not go ahead unrecorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// `DATABASE_URL` is not a `sqlite:` or `postgres:` URL.
    #[error("DATABASE_URL must start with sqlite: or postgres: (got scheme {0:?})")]
    UnsupportedUrl(String),
    /// The store cannot be reached or refused the operation (message never holds the URL).
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The store was migrated by a newer release: this one could misread its rows.
    #[error("the ledger's schema is version {found}, newer than version {known} that this release knows; run the newer release (or a later one), never an older one, on this ledger")]
    NewerSchema {
        /// The version recorded in the store.
        found: i64,
        /// The newest version this release knows.
        known: i64,
    },
}

/// Why a signed transaction was not recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The store failed; nothing was recorded, nothing may be sent.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The signer has no nonce in the ledger yet; ask the chain and try again with a floor.
    #[error("the ledger has no nonce for this signer yet")]
    NeedsChainNonce,
    /// The signing callback failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

fn unavailable(error: sqlx::Error) -> LedgerError {
    // sqlx errors name hosts and databases at most, never the password; keep the kind short.
    let text = match &error {
        sqlx::Error::PoolTimedOut => "timed out waiting for a database connection".to_owned(),
        sqlx::Error::Io(io) => format!("I/O error: {}", io.kind()),
        sqlx::Error::Database(db) => format!("database error: {}", db.message()),
        other => other.to_string(),
    };
    LedgerError::Unavailable(text)
}

/// Where a ledger URL points, for error messages: the SQLite file, or PostgreSQL's
/// `host:port/database` (user, password and options left out).
pub fn location_of(url: &str) -> String {
    let (scheme, rest) = url.split_once(':').unwrap_or(("", url));
    let rest = rest.trim_start_matches("//");
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    if scheme.eq_ignore_ascii_case("sqlite") {
        return format!("SQLite file {rest}");
    }
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("PostgreSQL at {host}")
}

/// Where a settlement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Signed and recorded; broadcast or about to be; outcome not known yet.
    Submitted,
    /// Final and successful.
    Confirmed,
    /// Final and not successful (reverted, expired, superseded).
    Failed,
}

impl EntryState {
    fn as_str(self) -> &'static str {
        match self {
            EntryState::Submitted => "submitted",
            EntryState::Confirmed => "confirmed",
            EntryState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> EntryState {
        match text {
            "confirmed" => EntryState::Confirmed,
            "failed" => EntryState::Failed,
            _ => EntryState::Submitted,
        }
    }
}

/// A signed transaction as the chain crate produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    /// Transaction hash (or signature) the answer names.
    pub hash: String,
    /// The signed bytes, hex, exactly as they are broadcast.
    pub raw: String,
    /// A transaction that must land just before (an ERC-6492 wallet deployment), hex.
    pub prelude: Option<String>,
}

/// What a settlement pays, as the request named it and the chain checked it: kept so that a
/// caller asking after a settlement (`GET /settlements/{id}`) learns what was paid, for what.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Terms {
    /// Scheme of the payment (`exact`).
    pub scheme: String,
    /// Token contract or mint.
    pub asset: String,
    /// Recipient.
    pub pay_to: String,
    /// Amount moved, in the asset's smallest unit (what the payer signed, which v1 lets
    /// exceed the requirement).
    pub amount: String,
    /// The resource paid for (empty when the request named none).
    pub resource: String,
}

/// What the chain crate knows about a settlement before it is signed.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// CAIP-2 id.
    pub network: String,
    /// The payment's identity on its chain (asset, payer, authorization nonce).
    pub payment_key: String,
    /// Digest of the request; tells a retry from a different payment with the same key.
    pub digest: String,
    /// Protocol version of the request (1 or 2).
    pub x402_version: u8,
    /// Payer address.
    pub payer: String,
    /// The facilitator signer that pays gas.
    pub signer: String,
    /// Unix seconds after which the authorization can no longer move funds.
    pub valid_before: i64,
    /// What it pays.
    pub terms: Terms,
}

/// One settlement as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// CAIP-2 id.
    pub network: String,
    /// The payment's identity on its chain.
    pub payment_key: String,
    /// Digest of the request that created the entry.
    pub digest: String,
    /// Protocol version of that request.
    pub x402_version: u8,
    /// Payer address.
    pub payer: String,
    /// Signer address.
    pub signer: String,
    /// Where it stands.
    pub state: EntryState,
    /// Account nonce of the first transaction (the prelude's, when there is one).
    pub tx_nonce: u64,
    /// The current transaction's hash.
    pub tx_hash: String,
    /// The current transaction's signed bytes (hex).
    pub raw_tx: String,
    /// The prelude's signed bytes (hex), when there is one.
    pub prelude_tx: Option<String>,
    /// Every hash tried for this payment, oldest first (the last is `tx_hash`).
    pub tx_hashes: Vec<String>,
    /// The final answer, as the chain crate serialised it.
    pub outcome: Option<String>,
    /// Unix seconds after which the authorization is dead.
    pub valid_before: i64,
    /// What it pays; `None` for an entry recorded before schema version 2 kept it.
    pub terms: Option<Terms>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
}

/// The result of trying to record a new settlement.
#[derive(Debug, Clone)]
pub enum Claim {
    /// Recorded: this caller owns the broadcast.
    Recorded(Entry),
    /// The payment was already recorded (by this or another instance).
    Existing(Entry),
}

/// A nonce allocation that found the chain ahead of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceMismatch {
    /// What the ledger would have handed out.
    pub ledger: u64,
    /// The chain's pending nonce.
    pub chain: u64,
}

/// The settlement ledger.
pub struct Ledger {
    pool: AnyPool,
    backend: Backend,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const ENTRY_COLUMNS: &str = "network, payment_key, digest, x402_version, payer, signer, state, tx_nonce, tx_hash, raw_tx, prelude_tx, tx_hashes, outcome, valid_before, created_at, updated_at, scheme, asset, pay_to, amount, resource";

/// The terms of a row: all five columns, or none (a row from before schema version 2).
fn terms_from_row(row: &AnyRow) -> Result<Option<Terms>, sqlx::Error> {
    let column = |name: &str| row.try_get::<Option<String>, _>(name);
    let (Some(scheme), Some(asset), Some(pay_to), Some(amount), Some(resource)) = (
        column("scheme")?,
        column("asset")?,
        column("pay_to")?,
        column("amount")?,
        column("resource")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(Terms {
        scheme,
        asset,
        pay_to,
        amount,
        resource,
    }))
}

fn entry_from_row(row: &AnyRow) -> Result<Entry, sqlx::Error> {
    let hashes: String = row.try_get("tx_hashes")?;
    Ok(Entry {
        network: row.try_get("network")?,
        payment_key: row.try_get("payment_key")?,
        digest: row.try_get("digest")?,
        x402_version: row.try_get::<i64, _>("x402_version")? as u8,
        payer: row.try_get("payer")?,
        signer: row.try_get("signer")?,
        state: EntryState::parse(&row.try_get::<String, _>("state")?),
        tx_nonce: row.try_get::<i64, _>("tx_nonce")? as u64,
        tx_hash: row.try_get("tx_hash")?,
        raw_tx: row.try_get("raw_tx")?,
        prelude_tx: row.try_get("prelude_tx")?,
        tx_hashes: hashes.split_whitespace().map(str::to_owned).collect(),
        outcome: row.try_get("outcome")?,
        valid_before: row.try_get("valid_before")?,
        terms: terms_from_row(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Nonces are stored as BIGINT; a chain nonce never comes near 2^63.
fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Entry {
    /// A new entry in state `submitted` for `entry`'s payment, carrying `signed` at `nonce`.
    fn submitted(entry: &NewEntry, nonce: u64, signed: SignedTransaction, now: i64) -> Entry {
        Entry {
            network: entry.network.clone(),
            payment_key: entry.payment_key.clone(),
            digest: entry.digest.clone(),
            x402_version: entry.x402_version,
            payer: entry.payer.clone(),
            signer: entry.signer.clone(),
            state: EntryState::Submitted,
            tx_nonce: nonce,
            tx_hashes: vec![signed.hash.clone()],
            tx_hash: signed.hash,
            raw_tx: signed.raw,
            prelude_tx: signed.prelude,
            outcome: None,
            valid_before: entry.valid_before,
            terms: Some(entry.terms.clone()),
            created_at: now,
            updated_at: now,
        }
    }
}

/// Inserts a new entry; `false` when the payment was already recorded (nothing written).
async fn insert_entry(conn: &mut sqlx::AnyConnection, entry: &Entry) -> Result<bool, LedgerError> {
    let terms = entry.terms.as_ref();
    let inserted = sqlx::query(
        "INSERT INTO x402_settlements (network, payment_key, digest, x402_version, payer, signer, state, tx_nonce, tx_hash, raw_tx, prelude_tx, tx_hashes, outcome, valid_before, created_at, updated_at, scheme, asset, pay_to, amount, resource)
         VALUES ($1, $2, $3, $4, $5, $6, 'submitted', $7, $8, $9, $10, $8, NULL, $11, $12, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (network, payment_key) DO NOTHING",
    )
    .bind(&entry.network)
    .bind(&entry.payment_key)
    .bind(&entry.digest)
    .bind(i64::from(entry.x402_version))
    .bind(&entry.payer)
    .bind(&entry.signer)
    .bind(to_db(entry.tx_nonce))
    .bind(&entry.tx_hash)
    .bind(&entry.raw_tx)
    .bind(entry.prelude_tx.as_deref())
    .bind(entry.valid_before)
    .bind(entry.created_at)
    .bind(terms.map(|t| t.scheme.as_str()))
    .bind(terms.map(|t| t.asset.as_str()))
    .bind(terms.map(|t| t.pay_to.as_str()))
    .bind(terms.map(|t| t.amount.as_str()))
    .bind(terms.map(|t| t.resource.as_str()))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(inserted.rows_affected() == 1)
}

impl Ledger {
    /// Opens (creating and migrating when needed) the ledger at `url`.
    pub async fn connect(url: &str) -> Result<Ledger, LedgerError> {
        sqlx::any::install_default_drivers();
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let backend = match scheme.as_str() {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            _ => return Err(LedgerError::UnsupportedUrl(scheme)),
        };
        let location = location_of(url);
        let options: AnyConnectOptions = url.parse().map_err(|_| {
            LedgerError::Unavailable(format!("DATABASE_URL for {location} cannot be parsed"))
        })?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            // A settlement must fail fast (retryable) rather than hang when the store is down.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await
            .map_err(|e| match unavailable(e) {
                LedgerError::Unavailable(why) => {
                    LedgerError::Unavailable(format!("{location}: {why}"))
                }
                other => other,
            })?;
        let ledger = Ledger { pool, backend };
        ledger.migrate().await?;
        Ok(ledger)
    }

    /// Which store this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether several instances can share this ledger (and so flags and breaker trips).
    pub fn is_shared(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// A round trip to the store (deep health).
    pub async fn ping(&self) -> Result<(), LedgerError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
