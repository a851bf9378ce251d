//! Caller API keys: only their SHA-256 and their policy are kept, and per-minute use
//! counters, so that instances on one PostgreSQL agree on who may call, on a revocation
//! and on a rate limit.

use sqlx::Row;

use crate::*;

/// A caller key as stored (the key itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The operator's name for the key (metric label, admin API path).
    pub id: String,
    /// SHA-256 of the key, lower-case hex.
    pub key_hash: String,
    /// What the key may do, as JSON (the facilitator's `KeyPolicy`).
    pub policy: String,
    /// `file` (the keys file owns it) or `admin` (the admin API does).
    pub source: String,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
}

/// Why a key was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// Another key already has this hash (the same key twice).
    #[error("another key id already holds this key")]
    DuplicateKey,
    /// The store failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Ledger {
    /// Every stored key.
    pub async fn api_keys(&self) -> Result<Vec<StoredKey>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, key_hash, policy, source, updated_at FROM x402_api_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    id: row.try_get("id").map_err(unavailable)?,
                    key_hash: row.try_get("key_hash").map_err(unavailable)?,
                    policy: row.try_get("policy").map_err(unavailable)?,
                    source: row.try_get("source").map_err(unavailable)?,
                    updated_at: row.try_get("updated_at").map_err(unavailable)?,
                })
            })
            .collect()
    }

    /// Stores a key under its id (replacing the key and policy an id had).
    pub async fn put_api_key(&self, key: &StoredKey) -> Result<(), KeyError> {
        let now = now_millis();
        let result = sqlx::query(
            "INSERT INTO x402_api_keys (id, key_hash, policy, source, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash,
                policy = excluded.policy, source = excluded.source, updated_at = excluded.updated_at",
        )
        .bind(&key.id)
        .bind(&key.key_hash)
        .bind(&key.policy)
        .bind(&key.source)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(KeyError::DuplicateKey)
            }
            Err(other) => Err(KeyError::Ledger(unavailable(other))),
        }
    }

    /// Revokes a key; `false` when no key had this id.
    pub async fn delete_api_key(&self, id: &str) -> Result<bool, LedgerError> {
        let done = sqlx::query("DELETE FROM x402_api_keys WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes the keys the keys file owns exactly `keys`: each stored, and every other key
    /// of source `file` revoked. Keys added through the admin API are left alone.
    pub async fn replace_file_keys(&self, keys: &[StoredKey]) -> Result<usize, KeyError> {
        let mut revoked = 0;
        for stored in self.api_keys().await? {
            let kept = keys.iter().any(|k| k.id == stored.id);
            if stored.source == "file" && !kept && self.delete_api_key(&stored.id).await? {
                revoked += 1;
            }
        }
        for key in keys {
            self.put_api_key(key).await?;
        }
        Ok(revoked)
    }

    /// Counts one use of `key_id` in the minute starting at `window_start` (Unix seconds)
    /// and returns the uses counted in it so far; older minutes are forgotten when a new
    /// one begins (one statement a call, two on a minute's first).
    pub async fn count_key_use(&self, key_id: &str, window_start: i64) -> Result<u64, LedgerError> {
        let row = sqlx::query(
            "INSERT INTO x402_api_key_usage (key_id, window_start, used) VALUES ($1, $2, 1)
             ON CONFLICT (key_id, window_start) DO UPDATE SET used = x402_api_key_usage.used + 1
             RETURNING used",
        )
        .bind(key_id)
        .bind(window_start)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let used: i64 = row.try_get("used").map_err(unavailable)?;
        if used == 1 {
            sqlx::query("DELETE FROM x402_api_key_usage WHERE key_id = $1 AND window_start < $2")
                .bind(key_id)
                .bind(window_start)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(used.max(0) as u64)
    }
}
