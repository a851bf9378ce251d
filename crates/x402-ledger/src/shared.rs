//! What instances sharing one ledger share besides settlements: payment ids and the
//! runtime flags.

use sqlx::Row;

use crate::*;

impl Ledger {
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
