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

pub mod answers;

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

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS x402_settlements (
        network TEXT NOT NULL,
        payment_key TEXT NOT NULL,
        digest TEXT NOT NULL,
        x402_version BIGINT NOT NULL,
        payer TEXT NOT NULL,
        signer TEXT NOT NULL,
        state TEXT NOT NULL,
        tx_nonce BIGINT NOT NULL,
        tx_hash TEXT NOT NULL,
        raw_tx TEXT NOT NULL,
        prelude_tx TEXT,
        tx_hashes TEXT NOT NULL,
        outcome TEXT,
        valid_before BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (network, payment_key)
    )",
    "CREATE INDEX IF NOT EXISTS x402_settlements_state ON x402_settlements (network, state, updated_at)",
    "CREATE TABLE IF NOT EXISTS x402_signer_nonces (
        network TEXT NOT NULL,
        signer TEXT NOT NULL,
        next_nonce BIGINT NOT NULL,
        PRIMARY KEY (network, signer)
    )",
    "CREATE TABLE IF NOT EXISTS x402_payment_ids (
        id TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS x402_shared_flags (
        id BIGINT PRIMARY KEY,
        version BIGINT NOT NULL,
        body TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
];

const ENTRY_COLUMNS: &str = "network, payment_key, digest, x402_version, payer, signer, state, tx_nonce, tx_hash, raw_tx, prelude_tx, tx_hashes, outcome, valid_before, created_at, updated_at";

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
            created_at: now,
            updated_at: now,
        }
    }
}

/// Inserts a new entry; `false` when the payment was already recorded (nothing written).
async fn insert_entry(conn: &mut sqlx::AnyConnection, entry: &Entry) -> Result<bool, LedgerError> {
    let inserted = sqlx::query(
        "INSERT INTO x402_settlements (network, payment_key, digest, x402_version, payer, signer, state, tx_nonce, tx_hash, raw_tx, prelude_tx, tx_hashes, outcome, valid_before, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'submitted', $7, $8, $9, $10, $8, NULL, $11, $12, $12)
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

    async fn migrate(&self) -> Result<(), LedgerError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        match self.backend {
            Backend::Sqlite => {
                // WAL lets readers run beside the one writer; FULL sync keeps a committed
                // record through a power cut, which a settlement needs before broadcast.
                sqlx::query("PRAGMA journal_mode=WAL")
                    .execute(&mut *conn)
                    .await
                    .map_err(unavailable)?;
            }
            Backend::Postgres => {
                // Instances starting together must not race on CREATE TABLE.
                sqlx::query("SELECT pg_advisory_lock(4020402)")
                    .execute(&mut *conn)
                    .await
                    .map_err(unavailable)?;
            }
        }
        let mut result = Ok(());
        for statement in SCHEMA {
            if let Err(e) = sqlx::query(statement).execute(&mut *conn).await {
                result = Err(unavailable(e));
                break;
            }
        }
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(4020402)")
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        result
    }

    /// A round trip to the store (deep health).
    pub async fn ping(&self) -> Result<(), LedgerError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Locks the signer's nonce row (creating it at `chain_floor` if missing) and returns
    /// the nonce to use: the ledger's, or the chain's pending nonce when that is ahead.
    async fn lock_nonce(
        &self,
        conn: &mut sqlx::AnyConnection,
        network: &str,
        signer: &str,
        chain_floor: Option<u64>,
    ) -> Result<(u64, Option<NonceMismatch>), RecordError> {
        // A write first: it takes the row lock (PostgreSQL) or the write lock (SQLite)
        // before anything is read, so concurrent allocators queue instead of failing.
        let row = sqlx::query(
            "INSERT INTO x402_signer_nonces (network, signer, next_nonce) VALUES ($1, $2, $3)
             ON CONFLICT (network, signer) DO UPDATE SET next_nonce = x402_signer_nonces.next_nonce
             RETURNING next_nonce",
        )
        .bind(network)
        .bind(signer)
        .bind(chain_floor.map_or(-1, to_db))
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
        let current: i64 = row.try_get("next_nonce").map_err(unavailable)?;
        if current < 0 {
            return Err(RecordError::NeedsChainNonce);
        }
        let current = current as u64;
        Ok(match chain_floor {
            Some(chain) if chain > current => (
                chain,
                Some(NonceMismatch {
                    ledger: current,
                    chain,
                }),
            ),
            _ => (current, None),
        })
    }

    /// Allocates `count` consecutive nonces for `entry.signer`, calls `sign` with the first,
    /// and records the signed transaction, all in one database transaction. When the
    /// payment is already recorded nothing is allocated and the existing entry comes back.
    ///
    /// `chain_floor` is the chain's pending nonce when the caller read it: the ledger never
    /// hands out a nonce below it. Without it, a signer the ledger has not seen yet gives
    /// [`RecordError::NeedsChainNonce`].
    pub async fn record_signed(
        &self,
        entry: &NewEntry,
        chain_floor: Option<u64>,
        count: u64,
        sign: impl FnOnce(u64) -> Result<SignedTransaction, String>,
    ) -> Result<(Claim, Option<NonceMismatch>), RecordError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let (nonce, mismatch) = self
            .lock_nonce(&mut tx, &entry.network, &entry.signer, chain_floor)
            .await?;
        let signed = sign(nonce).map_err(RecordError::Signing)?;
        let recorded = Entry::submitted(entry, nonce, signed, now_millis());
        if !insert_entry(&mut tx, &recorded).await? {
            // Someone recorded this payment first: give the nonce back and read theirs.
            tx.rollback().await.map_err(unavailable)?;
            return Ok((Claim::Existing(self.existing(entry).await?), None));
        }
        self.advance_nonce(&mut tx, &entry.network, &entry.signer, nonce + count)
            .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok((Claim::Recorded(recorded), mismatch))
    }

    /// Records a signed transaction that needs no account nonce from the ledger (SVM:
    /// a recent blockhash orders it); the existing entry when the payment is known.
    pub async fn record(
        &self,
        entry: &NewEntry,
        signed: &SignedTransaction,
    ) -> Result<Claim, LedgerError> {
        let recorded = Entry::submitted(entry, 0, signed.clone(), now_millis());
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        if insert_entry(&mut conn, &recorded).await? {
            Ok(Claim::Recorded(recorded))
        } else {
            Ok(Claim::Existing(self.existing(entry).await?))
        }
    }

    /// The entry someone else recorded for `entry`'s payment.
    async fn existing(&self, entry: &NewEntry) -> Result<Entry, LedgerError> {
        self.entry(&entry.network, &entry.payment_key)
            .await?
            .ok_or_else(|| LedgerError::Unavailable("entry vanished".into()))
    }

    async fn advance_nonce(
        &self,
        conn: &mut sqlx::AnyConnection,
        network: &str,
        signer: &str,
        next: u64,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE x402_signer_nonces SET next_nonce = $3 WHERE network = $1 AND signer = $2",
        )
        .bind(network)
        .bind(signer)
        .bind(to_db(next))
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Replaces the transaction of a still-open entry whose current transaction can never
    /// land (its account nonce went to another transaction): allocates a fresh nonce, signs
    /// and stores the new transaction, keeping every earlier hash. Only one caller wins:
    /// `None` when the entry moved on (another instance replaced or finished it).
    pub async fn replace_transaction(
        &self,
        entry: &Entry,
        chain_floor: Option<u64>,
        count: u64,
        sign: impl FnOnce(u64) -> Result<SignedTransaction, String>,
    ) -> Result<Option<(Entry, Option<NonceMismatch>)>, RecordError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let (nonce, mismatch) = self
            .lock_nonce(&mut tx, &entry.network, &entry.signer, chain_floor)
            .await?;
        let signed = sign(nonce).map_err(RecordError::Signing)?;
        let now = now_millis();
        let updated = sqlx::query(
            "UPDATE x402_settlements SET tx_nonce = $4, tx_hash = $5, raw_tx = $6, prelude_tx = $7,
                 tx_hashes = tx_hashes || ' ' || $5, updated_at = $8
             WHERE network = $1 AND payment_key = $2 AND tx_hash = $3 AND state = 'submitted'",
        )
        .bind(&entry.network)
        .bind(&entry.payment_key)
        .bind(&entry.tx_hash)
        .bind(to_db(nonce))
        .bind(&signed.hash)
        .bind(&signed.raw)
        .bind(signed.prelude.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if updated.rows_affected() == 0 {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(None);
        }
        self.advance_nonce(&mut tx, &entry.network, &entry.signer, nonce + count)
            .await?;
        tx.commit().await.map_err(unavailable)?;
        let mut hashes = entry.tx_hashes.clone();
        hashes.push(signed.hash.clone());
        Ok(Some((
            Entry {
                tx_nonce: nonce,
                tx_hash: signed.hash,
                raw_tx: signed.raw,
                prelude_tx: signed.prelude,
                tx_hashes: hashes,
                updated_at: now,
                ..entry.clone()
            },
            mismatch,
        )))
    }

    /// Raises the signer's next nonce to the chain's pending nonce when the chain is ahead
    /// (someone else used the key, or a transaction was replaced); reports the mismatch.
    pub async fn resync_nonce(
        &self,
        network: &str,
        signer: &str,
        chain_pending: u64,
    ) -> Result<Option<NonceMismatch>, LedgerError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let (next, mismatch) = match self
            .lock_nonce(&mut tx, network, signer, Some(chain_pending))
            .await
        {
            Ok(found) => found,
            Err(RecordError::Ledger(e)) => return Err(e),
            Err(other) => return Err(LedgerError::Unavailable(other.to_string())),
        };
        if mismatch.is_some() {
            self.advance_nonce(&mut tx, network, signer, next).await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(mismatch)
    }

    /// Lowers the signer's next nonce to the chain's pending nonce when the ledger is ahead
    /// while none of the signer's settlements is open: then no recorded transaction can
    /// fill the gap (the chain was reset, or the ledger belongs to another chain's history),
    /// and every new transaction would wait forever behind it.
    pub async fn lower_idle_nonce(
        &self,
        network: &str,
        signer: &str,
        chain_pending: u64,
    ) -> Result<Option<NonceMismatch>, LedgerError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let current = match self.lock_nonce(&mut tx, network, signer, None).await {
            Ok((current, _)) => current,
            Err(RecordError::NeedsChainNonce) => return Ok(None),
            Err(RecordError::Ledger(e)) => return Err(e),
            Err(other) => return Err(LedgerError::Unavailable(other.to_string())),
        };
        if current <= chain_pending {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM x402_settlements WHERE network = $1 AND signer = $2 AND state = 'submitted'",
        )
        .bind(network)
        .bind(signer)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let open: i64 = row.try_get("n").map_err(unavailable)?;
        if open > 0 {
            return Ok(None);
        }
        self.advance_nonce(&mut tx, network, signer, chain_pending)
            .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(NonceMismatch {
            ledger: current,
            chain: chain_pending,
        }))
    }

    /// The ledger's next nonce for a signer (tests and health output).
    pub async fn next_nonce(
        &self,
        network: &str,
        signer: &str,
    ) -> Result<Option<u64>, LedgerError> {
        let row = sqlx::query(
            "SELECT next_nonce FROM x402_signer_nonces WHERE network = $1 AND signer = $2",
        )
        .bind(network)
        .bind(signer)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let next: i64 = row.try_get("next_nonce").map_err(unavailable)?;
                Ok((next >= 0).then_some(next as u64))
            }
        }
    }

    /// One entry.
    pub async fn entry(
        &self,
        network: &str,
        payment_key: &str,
    ) -> Result<Option<Entry>, LedgerError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM x402_settlements WHERE network = $1 AND payment_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(network)
            .bind(payment_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| entry_from_row(&r).map_err(unavailable))
            .transpose()
    }

    /// Records the final outcome of the entry's current transaction. `false` when the entry
    /// already moved on (finished elsewhere, or its transaction was replaced).
    pub async fn finish(
        &self,
        entry: &Entry,
        state: EntryState,
        outcome: &str,
    ) -> Result<bool, LedgerError> {
        let done = sqlx::query(
            "UPDATE x402_settlements SET state = $4, outcome = $5, updated_at = $6
             WHERE network = $1 AND payment_key = $2 AND tx_hash = $3 AND state = 'submitted'",
        )
        .bind(&entry.network)
        .bind(&entry.payment_key)
        .bind(&entry.tx_hash)
        .bind(state.as_str())
        .bind(outcome)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    /// Entries of `network` still open whose last change is older than `min_age`, oldest
    /// first (the reconciler's work list).
    pub async fn open_entries(
        &self,
        network: &str,
        min_age: Duration,
        limit: u32,
    ) -> Result<Vec<Entry>, LedgerError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM x402_settlements
             WHERE network = $1 AND state = 'submitted' AND updated_at <= $2
             ORDER BY tx_nonce LIMIT $3"
        );
        let cutoff = now_millis() - min_age.as_millis() as i64;
        let rows = sqlx::query(&sql)
            .bind(network)
            .bind(cutoff)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| entry_from_row(r).map_err(unavailable))
            .collect()
    }

    /// Counts entries per state for a network (tests and health output).
    pub async fn count_by_state(
        &self,
        network: &str,
        state: EntryState,
    ) -> Result<u64, LedgerError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM x402_settlements WHERE network = $1 AND state = $2",
        )
        .bind(network)
        .bind(state.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let n: i64 = row.try_get("n").map_err(unavailable)?;
        Ok(n as u64)
    }

    /// Binds a client's payment id to a request digest. Returns the digest the id is bound
    /// to: `digest` itself for a first use or a retry, another one for a conflict.
    pub async fn bind_payment_id(&self, id: &str, digest: &str) -> Result<String, LedgerError> {
        sqlx::query(
            "INSERT INTO x402_payment_ids (id, digest, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(digest)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        self.payment_id(id)
            .await?
            .ok_or_else(|| LedgerError::Unavailable("payment id vanished".into()))
    }

    /// The digest a payment id is bound to, if any.
    pub async fn payment_id(&self, id: &str) -> Result<Option<String>, LedgerError> {
        let row = sqlx::query("SELECT digest FROM x402_payment_ids WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| r.try_get::<String, _>("digest").map_err(unavailable))
            .transpose()
    }

    /// Frees a payment id bound to `digest` (nothing was broadcast under it).
    pub async fn release_payment_id(&self, id: &str, digest: &str) -> Result<(), LedgerError> {
        sqlx::query("DELETE FROM x402_payment_ids WHERE id = $1 AND digest = $2")
            .bind(id)
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The shared flag document and its version, when one was ever stored.
    pub async fn shared_flags(&self) -> Result<Option<(i64, String)>, LedgerError> {
        let row = sqlx::query("SELECT version, body FROM x402_shared_flags WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((
                row.try_get("version").map_err(unavailable)?,
                row.try_get("body").map_err(unavailable)?,
            ))),
        }
    }

    /// Stores a new shared flag document; returns its version (one more than the last).
    pub async fn put_shared_flags(&self, body: &str) -> Result<i64, LedgerError> {
        let row = sqlx::query(
            "INSERT INTO x402_shared_flags (id, version, body, updated_at) VALUES (1, 1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET version = x402_shared_flags.version + 1, body = $1, updated_at = $2
             RETURNING version",
        )
        .bind(body)
        .bind(now_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        row.try_get("version").map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_location_names_host_or_file_and_never_the_password() {
        assert_eq!(
            location_of("postgres://facilitator:s3cret@db.internal:5432/x402?sslmode=require"),
            "PostgreSQL at db.internal:5432/x402"
        );
        assert_eq!(
            location_of("sqlite://x402-ledger.db?mode=rwc"),
            "SQLite file x402-ledger.db"
        );
        assert!(!location_of("postgresql://u:p@h/d").contains(":p"));
    }

    #[tokio::test]
    async fn an_unreachable_ledger_is_named_in_the_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://x402:hunter2@127.0.0.1:{port}/ledger");
        let error = Ledger::connect(&url).await.err().expect("nothing listens");
        let text = error.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}/ledger")), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    /// Removes a test database with its WAL and shared-memory files (nothing left in /tmp).
    fn remove_sqlite(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }

    fn temp_sqlite() -> (String, std::path::PathBuf) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "x402-ledger-unit-{}-{}-{}.db",
            std::process::id(),
            now_millis(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        (format!("sqlite://{}?mode=rwc", path.display()), path)
    }

    fn new_entry(key: &str) -> NewEntry {
        NewEntry {
            network: "eip155:84532".into(),
            payment_key: key.into(),
            digest: format!("digest-{key}"),
            x402_version: 2,
            payer: "0xpayer".into(),
            signer: "0xsigner".into(),
            valid_before: 2_000_000_000,
        }
    }

    fn signed(nonce: u64) -> Result<SignedTransaction, String> {
        Ok(SignedTransaction {
            hash: format!("0xhash{nonce}"),
            raw: format!("0xraw{nonce}"),
            prelude: None,
        })
    }

    #[tokio::test]
    async fn nonces_are_consecutive_and_duplicates_take_none() {
        let (url, path) = temp_sqlite();
        let ledger = Ledger::connect(&url).await.expect("ledger");
        let first = ledger.record_signed(&new_entry("a"), None, 1, signed).await;
        assert!(matches!(first, Err(RecordError::NeedsChainNonce)));
        let (claim, mismatch) = ledger
            .record_signed(&new_entry("a"), Some(7), 1, signed)
            .await
            .expect("recorded");
        assert!(mismatch.is_none());
        let Claim::Recorded(a) = claim else {
            panic!("not recorded")
        };
        assert_eq!(a.tx_nonce, 7);
        let (claim, _) = ledger
            .record_signed(&new_entry("a"), None, 1, signed)
            .await
            .expect("read back");
        let Claim::Existing(again) = claim else {
            panic!("recorded twice")
        };
        assert_eq!(again.tx_hash, "0xhash7");
        let (claim, _) = ledger
            .record_signed(&new_entry("b"), None, 2, signed)
            .await
            .expect("recorded");
        let Claim::Recorded(b) = claim else {
            panic!("not recorded")
        };
        assert_eq!(b.tx_nonce, 8, "the duplicate gave its nonce back");
        assert_eq!(
            ledger
                .next_nonce("eip155:84532", "0xsigner")
                .await
                .expect("read"),
            Some(10)
        );
        // The chain ahead of the ledger wins and is reported.
        let (claim, mismatch) = ledger
            .record_signed(&new_entry("c"), Some(15), 1, signed)
            .await
            .expect("recorded");
        assert_eq!(
            mismatch,
            Some(NonceMismatch {
                ledger: 10,
                chain: 15
            })
        );
        let Claim::Recorded(c) = claim else {
            panic!("not recorded")
        };
        assert_eq!(c.tx_nonce, 15);
        remove_sqlite(&path);
    }

    #[tokio::test]
    async fn a_failed_signature_allocates_nothing() {
        let (url, path) = temp_sqlite();
        let ledger = Ledger::connect(&url).await.expect("ledger");
        let refused = ledger
            .record_signed(&new_entry("a"), Some(3), 1, |_| Err("no key".into()))
            .await;
        assert!(matches!(refused, Err(RecordError::Signing(_))));
        assert_eq!(
            ledger
                .next_nonce("eip155:84532", "0xsigner")
                .await
                .expect("read"),
            None
        );
        assert!(ledger
            .entry("eip155:84532", "a")
            .await
            .expect("read")
            .is_none());
        remove_sqlite(&path);
    }

    #[tokio::test]
    async fn replacement_keeps_every_hash_and_only_one_caller_wins() {
        let (url, path) = temp_sqlite();
        let ledger = Ledger::connect(&url).await.expect("ledger");
        let (claim, _) = ledger
            .record_signed(&new_entry("a"), Some(0), 1, signed)
            .await
            .expect("recorded");
        let Claim::Recorded(a) = claim else {
            panic!("not recorded")
        };
        let (replaced, _) = ledger
            .replace_transaction(&a, Some(5), 1, signed)
            .await
            .expect("store up")
            .expect("replaced");
        assert_eq!(
            replaced.tx_hashes,
            vec!["0xhash0".to_owned(), "0xhash5".to_owned()]
        );
        // A second replacement from the stale view loses.
        assert!(ledger
            .replace_transaction(&a, None, 1, signed)
            .await
            .expect("store up")
            .is_none());
        let stored = ledger
            .entry("eip155:84532", "a")
            .await
            .expect("read")
            .expect("entry");
        assert_eq!(stored.tx_hashes, replaced.tx_hashes);
        assert!(!ledger
            .finish(&a, EntryState::Confirmed, "{}")
            .await
            .expect("up"));
        assert!(ledger
            .finish(&replaced, EntryState::Confirmed, "{}")
            .await
            .expect("up"));
        assert_eq!(
            ledger
                .count_by_state("eip155:84532", EntryState::Confirmed)
                .await
                .expect("up"),
            1
        );
        remove_sqlite(&path);
    }

    #[tokio::test]
    async fn payment_ids_bind_once() {
        let (url, path) = temp_sqlite();
        let ledger = Ledger::connect(&url).await.expect("ledger");
        assert_eq!(
            ledger.bind_payment_id("id-1", "d1").await.expect("up"),
            "d1"
        );
        assert_eq!(
            ledger.bind_payment_id("id-1", "d1").await.expect("up"),
            "d1"
        );
        assert_eq!(
            ledger.bind_payment_id("id-1", "d2").await.expect("up"),
            "d1"
        );
        ledger.release_payment_id("id-1", "d1").await.expect("up");
        assert_eq!(
            ledger.bind_payment_id("id-1", "d2").await.expect("up"),
            "d2"
        );
        remove_sqlite(&path);
    }

    #[tokio::test]
    async fn unsupported_urls_are_named() {
        let refused = Ledger::connect("mysql://root@localhost/x").await;
        assert!(matches!(refused, Err(LedgerError::UnsupportedUrl(s)) if s == "mysql"));
    }
}
