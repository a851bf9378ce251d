//! The ledger's schema, versioned. Each step of [`MIGRATIONS`] makes one schema version;
//! the version reached is recorded in the database, so an instance of an older release
//! that finds a newer schema refuses to start instead of writing rows it cannot read,
//! and instances of two releases on one PostgreSQL agree on what the tables hold.

use sqlx::Row;

use crate::*;

/// Version 1: the schema of release 0.1 (which created it without recording a version;
/// every statement is idempotent, so such a ledger migrates to version 1 as it is).
const V1: &[&str] = &[
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

/// Version 2: what each settlement pays (scheme, asset, payee, amount, resource), and the
/// digest indexed, so that a settlement can be looked up by its request's digest or by the
/// payment id bound to it. Rows of version 1 keep NULL terms (their answers say so).
const V2: &[&str] = &[
    "ALTER TABLE x402_settlements ADD COLUMN scheme TEXT",
    "ALTER TABLE x402_settlements ADD COLUMN asset TEXT",
    "ALTER TABLE x402_settlements ADD COLUMN pay_to TEXT",
    "ALTER TABLE x402_settlements ADD COLUMN amount TEXT",
    "ALTER TABLE x402_settlements ADD COLUMN resource TEXT",
    "CREATE INDEX IF NOT EXISTS x402_settlements_digest ON x402_settlements (digest)",
];

/// Version 3: the discovery catalog (the `bazaar` extension), one row a resource, written
/// when a payment that carries the extension settles.
const V3: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS x402_discovery (
        resource_key TEXT PRIMARY KEY,
        resource TEXT NOT NULL,
        kind TEXT NOT NULL,
        x402_version BIGINT NOT NULL,
        accepts TEXT NOT NULL,
        extension TEXT NOT NULL,
        description TEXT,
        mime_type TEXT,
        network TEXT NOT NULL,
        scheme TEXT NOT NULL,
        pay_to TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS x402_discovery_updated ON x402_discovery (updated_at)",
];

/// Version 4: caller API keys (their SHA-256 and policy, never the key) and their
/// per-minute use, shared by the instances on one PostgreSQL.
const V4: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS x402_api_keys (
        id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        policy TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS x402_api_key_usage (
        key_id TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        used BIGINT NOT NULL,
        PRIMARY KEY (key_id, window_start)
    )",
];

/// The schema steps, oldest first: step `i` makes schema version `i + 1`. A step is only
/// ever appended, never edited once released.
const MIGRATIONS: &[&[&str]] = &[V1, V2, V3, V4];

/// The newest schema version this release knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Where the version is recorded (one row).
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS x402_schema_version (
        id BIGINT PRIMARY KEY,
        version BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )";

impl Ledger {
    /// Brings the schema to [`SCHEMA_VERSION`], one instance at a time.
    pub(crate) async fn migrate(&self) -> Result<(), LedgerError> {
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
        let result = migrate_on(&mut conn).await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(4020402)")
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        result
    }

    /// The schema version recorded in the store (0: none recorded).
    pub async fn schema_version(&self) -> Result<i64, LedgerError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        recorded_version(&mut conn).await
    }
}

async fn recorded_version(conn: &mut sqlx::AnyConnection) -> Result<i64, LedgerError> {
    sqlx::query(VERSION_TABLE)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    let row = sqlx::query("SELECT version FROM x402_schema_version WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    match row {
        Some(row) => row.try_get("version").map_err(unavailable),
        None => Ok(0),
    }
}

/// Runs the steps after the recorded version, each in its own database transaction with
/// the version it reaches.
async fn migrate_on(conn: &mut sqlx::AnyConnection) -> Result<(), LedgerError> {
    let found = recorded_version(conn).await?;
    if found > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(unavailable)?;
        for statement in *step {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        sqlx::query(
            "INSERT INTO x402_schema_version (id, version, updated_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
        )
        .bind(version)
        .bind(now_millis())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        tracing::info!(schema_version = version, "ledger schema migrated");
    }
    Ok(())
}
